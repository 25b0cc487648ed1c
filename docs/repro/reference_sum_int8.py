"""Minimal reproduction: LiteRT's reference kernel of an int8 SUM returns wrong values.

One op, tf.reduce_sum over axis 1 of a (1, 49, 256) tensor, converted full-integer (int8 in and
out). The optimised kernel (BUILTIN_WITHOUT_DEFAULT_DELEGATES) and XNNPACK (AUTO) return the
exactly quantized sum; the reference kernel (BUILTIN_REF) does not, whatever the input.
Needs tensorflow (to convert) and ai-edge-litert. Written for an upstream report; see
docs/platforms.md#reference-kernels.
"""

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

SHAPE, AXIS = (1, 49, 256), 1


@tf.function(input_signature=[tf.TensorSpec(SHAPE, tf.float32)])
def reduce_sum(x):
    return tf.reduce_sum(x, axis=AXIS)


converter = tf.lite.TFLiteConverter.from_concrete_functions([reduce_sum.get_concrete_function()], reduce_sum)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
rng = np.random.default_rng(0)
converter.representative_dataset = lambda: ([rng.uniform(-1, 3, SHAPE).astype(np.float32)] for _ in range(20))
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = converter.inference_output_type = tf.int8
model = converter.convert()

x = np.random.default_rng(1).integers(-128, 128, SHAPE, dtype=np.int8)
for resolver in ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "BUILTIN_REF"):
    it = Interpreter(model_content=model, experimental_op_resolver_type=getattr(OpResolverType, resolver))
    it.allocate_tensors()
    (i,), (o,) = it.get_input_details(), it.get_output_details()
    it.set_tensor(i["index"], x)
    it.invoke()
    y = it.get_tensor(o["index"]).astype(np.int32)
    (si, zi), (so, zo) = i["quantization"], o["quantization"]
    exact = np.clip(np.round(((x.astype(np.float64) - zi) * si).sum(AXIS) / so) + zo, -128, 127)
    print(
        f"{resolver:34s} max |y - exact| = {np.abs(y - exact).max():3.0f} steps; y[:6] = {y[0, :6]}, exact[:6] = {exact[0, :6].astype(int)}"
    )
print(f"input scale {si:.5g}, zero point {zi}; output scale {so:.5g}, zero point {zo}; tensorflow {tf.__version__}")
