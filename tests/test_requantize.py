"""The built-in COCO detector: Google's uint8 file rewritten as int8 with per-channel weights."""

from pathlib import Path

import numpy as np
import pytest

from edgecap.export.requantize import RequantizeError, detection_agreement, uint8_to_int8
from edgecap.runtime.interpreter import make_interpreter
from edgecap.runtime.ops import by_arithmetic, model_object, operators, subgraph_macs_by_op
from edgecap.runtime.preprocessing import load_image
from edgecap.runtime.presets import tagger_path

from conftest import SHARED

ORIGINAL = SHARED / "weights" / "taggers" / "detect.tflite"
COCO_DEV = SHARED / "data" / "coco_dev" / "Images"


def _outputs(content: bytes, photos: list[Path]) -> list[list[np.ndarray]]:
    interpreter, _ = make_interpreter(content, 1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    result = []
    for p in photos:
        interpreter.set_tensor(inp, load_image(p, 300)[None])
        interpreter.invoke()
        result.append([interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()])
    return result


def test_the_built_in_detector_is_int8_inside_with_a_uint8_input():
    content = tagger_path("coco_detector").read_bytes()
    ops = operators(content)
    convs = [o for o in ops if o.name in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) == 47 and {o.weight_type for o in convs} == {"INT8"}
    assert ops[0].name == "QUANTIZE" and "DEQUANTIZE" in [o.name for o in ops]
    graph = model_object(content).subgraphs[0]
    weights = [graph.tensors[op.inputs[1]] for op in graph.operators if len(op.inputs) > 2]
    assert all(len(w.quantization.scale) == w.shape[w.quantization.quantizedDimension] for w in weights if w.type == 9)
    interpreter, _ = make_interpreter(content, 1)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    assert inp["dtype"] == np.uint8 and list(inp["shape"]) == [1, 300, 300, 3]
    shapes = {d["index"]: list(d["shape"]) for d in interpreter.get_tensor_details()}
    macs = by_arithmetic(subgraph_macs_by_op(content, 0, shapes.__getitem__))
    assert macs["float"] == 0 and macs["int8"] > 5e8  # every convolution integer; SSD-MobileNet at 300x300
    with pytest.raises(IndexError, match="no subgraph 1"):
        subgraph_macs_by_op(content, 1, shapes.__getitem__)


def test_a_uint8_file_with_an_operator_the_rewrite_does_not_know_is_refused():
    with pytest.raises(RequantizeError, match="operator .* is not one the int8 rewrite knows"):
        uint8_to_int8(tagger_path("imagenet_classifier").read_bytes())  # ADD, AVERAGE_POOL_2D, SOFTMAX


@pytest.mark.skipif(not (ORIGINAL.is_file() and COCO_DEV.is_dir()), reason="needs ../shared (detect.tflite, coco_dev)")
def test_the_rewrite_is_the_built_in_file_and_moves_detections_no_more_than_a_runtime_does():
    original = ORIGINAL.read_bytes()
    rewritten = uint8_to_int8(original)
    assert rewritten == tagger_path("coco_detector").read_bytes()  # scripts/requantize_tagger.py made it
    photos = sorted(COCO_DEV.glob("*.jpg"))[:12]
    before, after = _outputs(original, photos), _outputs(rewritten, photos)
    moved = detection_agreement(before, after)
    assert moved["detections"] > 30
    assert moved["unmatched"] <= 0.1 * moved["detections"] and moved["mean_dscore"] < 0.02
    same_top = [b[1][0, 0] == a[1][0, 0] and abs(b[2][0, 0] - a[2][0, 0]) < 0.05 for b, a in zip(before, after)]
    assert sum(same_top) >= 10  # the best detection: same class, nearly the same score
