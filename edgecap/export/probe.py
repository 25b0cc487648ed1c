"""The rate probes of ``edgecap bench``: one fully connected layer of 16.8 M MACs, in int8 and in float32.

``edgecap bench`` times them in the same run as the models, so that each model's MACs divided
by this machine's rates (its ``floor_ms``: integer MACs at the int8 rate, float MACs, such as
the float32 stem of an int8 file, at the float32 rate) read as a ratio to what the hardware
can do. The shipped files ``edgecap/assets/int8_probe.tflite`` and
``edgecap/assets/float32_probe.tflite`` were written by::

    python -m edgecap.export.probe edgecap/assets
"""

from __future__ import annotations

import sys

import numpy as np

ROWS, DIM = 64, 512  # int8 probe: 64 × 512 × 512 MACs
FLOAT_ROWS, FLOAT_DIM = 256, 256  # float32 probe: 256 × 256 × 256, the same MACs in a file of the same size


def make_int8_probe() -> bytes:
    """A full-integer int8 TFLite file: ``x float32 (64, 512)`` → ``Dense(512)(x)`` (16.8 M MACs)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((DIM,), batch_size=ROWS), keras.layers.Dense(DIM)])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.normal(size=(ROWS, DIM)).astype(np.float32)] for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def make_float_probe() -> bytes:
    """A float32 TFLite file: ``x float32 (256, 256)`` → ``Dense(256)(x)`` (16.8 M MACs)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((FLOAT_DIM,), batch_size=FLOAT_ROWS), keras.layers.Dense(FLOAT_DIM)])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


if __name__ == "__main__":
    from pathlib import Path

    from edgecap.utils import atomic_write_bytes

    atomic_write_bytes(Path(sys.argv[1]) / "int8_probe.tflite", make_int8_probe())
    atomic_write_bytes(Path(sys.argv[1]) / "float32_probe.tflite", make_float_probe())
