"""The rate probes of ``edgecap bench``: one fully connected layer of 16.8 M MACs, in int8 and in
float32, and one layer of each convolution kind MobileNetV2 is made of (:data:`LAYER_PROBES`).

``edgecap bench`` times them in the same run as the models, so that each model's MACs divided
by this machine's rates (its ``floor_ms``: integer MACs at the int8 rate, float MACs, such as
the float32 stem of an int8 file, at the float32 rate) read as a ratio to what the hardware
can do; the layer probes give each operator kind its own rate (the per-op floor). The shipped
files ``edgecap/assets/*_probe.tflite`` were written by::

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


#: operator kind → (input shape, the layer): MobileNetV2's three kinds of convolution at one of
#: its own sizes. Files ``int8_<kind>_probe.tflite`` and ``float32_<kind>_probe.tflite``.
LAYER_PROBES = {
    "conv": ((224, 224, 3), dict(layer="Conv2D", filters=32, kernel_size=3, strides=2, padding="same")),  # Conv1
    "conv1x1": ((28, 28, 192), dict(layer="Conv2D", filters=64, kernel_size=1)),  # a block's projection
    "depthwise": ((28, 28, 192), dict(layer="DepthwiseConv2D", kernel_size=3, padding="same")),
}


def make_layer_probe(kind: str, int8: bool) -> bytes:
    """One layer of :data:`LAYER_PROBES` as a TFLite file, full-integer int8 or float32."""
    import keras
    import tensorflow as tf

    shape, spec = LAYER_PROBES[kind]
    spec = dict(spec)
    layer = getattr(keras.layers, spec.pop("layer"))(**spec)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape, batch_size=1), layer])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        rng = np.random.default_rng(0)
        converter.representative_dataset = lambda: ([rng.normal(size=(1, *shape)).astype(np.float32)] for _ in range(8))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


if __name__ == "__main__":
    from pathlib import Path

    from edgecap.utils import atomic_write_bytes

    atomic_write_bytes(Path(sys.argv[1]) / "int8_probe.tflite", make_int8_probe())
    atomic_write_bytes(Path(sys.argv[1]) / "float32_probe.tflite", make_float_probe())
    for kind in LAYER_PROBES:
        atomic_write_bytes(Path(sys.argv[1]) / f"int8_{kind}_probe.tflite", make_layer_probe(kind, True))
        atomic_write_bytes(Path(sys.argv[1]) / f"float32_{kind}_probe.tflite", make_layer_probe(kind, False))
