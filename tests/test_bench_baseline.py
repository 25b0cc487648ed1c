"""``edgecap bench --baseline REV`` times the same file with another revision's code in the same run."""

from pathlib import Path

import pytest

from edgecap.bench import checkout, format_report, run_bench
from edgecap.runtime.presets import preset_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout of edgecap")
def test_a_baseline_revision_is_timed_beside_the_code(examples, monkeypatch):
    monkeypatch.setenv("EDGECAP_BENCH_SYNTHETIC_PHOTOS", "2000")
    model = preset_path("visual_semantic_alignment_flickr8k")
    report = run_bench([model], [1], examples, repeats=3, keras_run="none", baseline="HEAD")
    now, then = report["results"]
    assert "baseline" not in now and then["baseline"] == "HEAD" and Path(then["model"]).name == model.name
    assert Path(then["model"]) != model and then["query_ms"] > 0
    assert "now against HEAD: text query over 1000 photos" in format_report(report)


def test_an_unknown_revision_is_one_error(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout of edgecap")
    with pytest.raises(ValueError, match="--baseline no-such-revision"):
        checkout("no-such-revision", tmp_path)


def test_the_report_says_what_invoke_and_preprocessing_alone_are_against_the_baseline():
    """On the committed run (docs/bench/2026-12-06-frontier.json): the part no search change can remove."""
    import json

    report = json.loads((ROOT / "docs" / "bench" / "2026-12-06-frontier.json").read_text())
    now = {Path(r["model"]).name: r for r in report["results"] if "baseline" not in r}
    then = {Path(r["model"]).name: r for r in report["results"] if "baseline" in r}
    text = format_report(report)
    for name, new in now.items():
        fixed = new["invoke_ms"]["beam3"] + new["preprocess_ms"]["beam3"]
        assert fixed < new["beam3_ms"]
        assert f"{fixed / then[name]['beam3_ms']:.2f}x the baseline's whole caption" in text
    assert "Invoke and preprocessing alone" not in format_report({**report, "results": list(then.values())})
