"""The int8 rewrites of edgecap.export.portable_ops: the same numbers on every kernel set."""

import numpy as np
import pytest

from edgecap.export.portable_ops import rewrite
from edgecap.paths import released_dir
from edgecap.runtime import metadata as md
from edgecap.runtime.ops import operators

SHAPE = (1, 49, 16)  # (B, L, D): the soft-attention context vector sums over L


def _int8_model(fn) -> bytes:
    """``fn`` over a float (1, 49, 16) input, converted full-integer (int8 in and out)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(SHAPE, tf.float32)])
    def f(x):
        return fn(x)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.uniform(-1, 3, SHAPE).astype(np.float32)] for _ in range(20))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def _run(model: bytes, x: np.ndarray, resolver) -> tuple[np.ndarray, tuple, tuple]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    it.set_tensor(i["index"], x)
    it.invoke()
    return it.get_tensor(o["index"]).astype(np.int32), i["quantization"], o["quantization"]


def _resolvers():
    from ai_edge_litert.interpreter import OpResolverType as R

    return {"default": R.AUTO, "builtin": R.BUILTIN_WITHOUT_DEFAULT_DELEGATES, "reference": R.BUILTIN_REF}


@pytest.fixture(scope="module")
def photo_like() -> np.ndarray:
    return np.random.default_rng(1).integers(-128, 128, SHAPE, dtype=np.int8)


def test_a_rewritten_int8_sum_is_the_exact_sum_under_every_kernel_set(photo_like):
    import tensorflow as tf

    model, report = rewrite(_int8_model(lambda x: tf.reduce_sum(x, axis=1)))
    assert len(report.sums) == 1 and not report.skipped
    assert [op.name for op in operators(model)] == ["RESHAPE", "MEAN"]
    for kernels, resolver in _resolvers().items():
        y, (si, zi), (so, zo) = _run(model, photo_like, resolver)
        exact = np.clip(np.round(((photo_like.astype(np.float64) - zi) * si).sum(axis=1) / so) + zo, -128, 127)
        assert np.abs(y - exact).max() <= 1, kernels  # one step of rounding at most


def test_int8_log_and_a_sub_with_a_tiny_output_scale_become_float32(photo_like):
    """``tf.reduce_logsumexp`` gives all three: SUM, LOG, and ``max − max`` (output scale ~1e-8)."""
    import tensorflow as tf

    original = _int8_model(lambda x: tf.reduce_logsumexp(x, axis=1))
    model, report = rewrite(original)
    kinds = {name.rsplit("/", 1)[-1] for name in report.float_ops}
    assert report.sums and "Log" in kinds and "IsFinite" in kinds, report
    s = pytest.importorskip("ai_edge_litert.schema_py_generated")
    m = s.Model.GetRootAs(model, 0)
    codes = {(m.OperatorCodes(i).BuiltinCode(), m.OperatorCodes(i).Version()) for i in range(m.OperatorCodesLength())}
    assert (s.BuiltinOperator.LOG, 2) not in codes and (s.BuiltinOperator.LOG, 1) in codes
    assert (s.BuiltinOperator.SUM, 2) not in codes  # unused codes are dropped: a runtime resolves every one
    resolvers = _resolvers()
    before, *_ = _run(original, photo_like, resolvers["default"])
    outputs = {k: _run(model, photo_like, r)[0] for k, r in resolvers.items()}
    for kernels, y in outputs.items():
        assert np.abs(y - before).max() <= 2, kernels  # the same function, to quantization steps
    assert np.abs(outputs["reference"] - outputs["default"]).max() <= 1


def test_nothing_to_replace_returns_the_file_unchanged(photo_like):
    import tensorflow as tf

    model = _int8_model(lambda x: tf.reduce_max(x, axis=1))
    new, report = rewrite(model)
    assert new is model and not report.changed


@pytest.mark.skipif(not any(released_dir().glob("*_int8.tflite")), reason="no built-in model in export/")
def test_every_builtin_int8_file_is_already_rewritten():
    for path in sorted(released_dir().glob("*_int8.tflite")):
        assert not rewrite(md.flatbuffer(path.read_bytes()))[1].changed, path.name
