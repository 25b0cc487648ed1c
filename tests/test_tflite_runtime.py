"""tflite-runtime 2.14 as the runtime's backend (the only one with wheels for 32-bit Raspberry Pi
OS), with every built-in model. Runs in a venv where it is the only backend: ``.ci/run`` makes
``.venv-tflite-runtime`` (``pip install -e ".[tflite-runtime]" --no-deps`` and what the base
install needs, without ai-edge-litert), records LiteRT's outputs first with
``scripts/backend_record.py`` and points ``EDGECAP_LITERT_RECORD`` at them. Skipped elsewhere."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tflite_runtime")
if importlib.util.find_spec("ai_edge_litert") is not None:
    pytest.skip("LiteRT is installed: tflite-runtime would not be the backend", allow_module_level=True)

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "backend_record.py"


@pytest.fixture(scope="module")
def record(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tflite_runtime")
    done = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "backend.txt").read_text().strip() == "tflite_runtime"
    return out


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_builtin_model_runs_on_tflite_runtime(record):
    from edgecap.runtime.presets import list_presets

    for preset in list_presets():
        for kernels in ("builtin", "default"):
            lines = _lines(record / f"{preset.name}.{kernels}.jsonl")
            if preset.task == "captioning":
                assert len(lines) == 3 and all(line["error"] is None for line in lines), preset.name
                assert all(line["caption"] and math.isfinite(line["log_prob"]) for line in lines), preset.name
            else:
                assert len(lines) == 3 and all(len(line["results"]) == 3 for line in lines), preset.name


@pytest.mark.skipif(
    not os.environ.get("EDGECAP_LITERT_RECORD"), reason="EDGECAP_LITERT_RECORD: LiteRT's record to compare with"
)
def test_tflite_runtime_agrees_with_litert_under_the_builtin_kernels(record):
    """With the optimised builtin kernels (no XNNPACK) the two backends differ only where the
    int8 encoder's float32 stem accumulates in another order (docs/platforms.md#tflite-runtime):
    LiteRT's best caption is among tflite-runtime's 3 best, within 4 quantization steps of
    log-probability, and the retrieval rankings are the same. The default kernels' differences
    (XNNPACK versions) are printed by .ci/run, not asserted."""
    litert = Path(os.environ["EDGECAP_LITERT_RECORD"])
    for path in sorted(litert.glob("*.builtin.jsonl")):
        theirs, ours = _lines(path), _lines(record / path.name)
        assert len(theirs) == len(ours), path.name
        for a, b in zip(theirs, ours):
            if "caption" in a:
                found = {n["caption"]: n["log_prob"] for n in b["nbest"]}
                assert a["caption"] in found and abs(found[a["caption"]] - a["log_prob"]) <= 0.25, (path.name, a, b)
                assert [t["word"] for t in a["tags"]] == [t["word"] for t in b["tags"]], path.name
            else:
                assert [r["path"] for r in a["results"]] == [r["path"] for r in b["results"]], (path.name, a, b)
