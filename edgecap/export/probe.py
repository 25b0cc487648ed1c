"""The int8 rate probe of ``edgecap bench``: one full-integer 512 × 512 fully connected layer on 64 rows.

``edgecap bench`` times it in the same run as the models, so that each model's MACs divided
by this machine's int8 rate (its ``floor_ms``) reads as a ratio to what the hardware can do.
The shipped file ``edgecap/assets/int8_probe.tflite`` was written by::

    python -m edgecap.export.probe edgecap/assets/int8_probe.tflite
"""

from __future__ import annotations

import sys

import numpy as np

ROWS, DIM = 64, 512


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


if __name__ == "__main__":
    from edgecap.utils import atomic_write_bytes

    atomic_write_bytes(sys.argv[1], make_int8_probe())
