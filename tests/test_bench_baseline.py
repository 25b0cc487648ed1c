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


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout of edgecap")
def test_a_baseline_tree_reads_its_own_built_in_files(tmp_path):
    """An editable install maps edgecap.released to this checkout's export/: the baseline's
    tree must not time today's taggers with yesterday's code."""
    import os
    import subprocess
    import sys

    source = checkout("HEAD", tmp_path)
    code = "from edgecap.runtime.presets import tagger_path, preset_path; print(tagger_path('coco_detector')); print(preset_path('show_attend_tell_flickr8k'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(source)},
        cwd=source,
        capture_output=True,
        text=True,
    )
    paths = [Path(line).resolve() for line in out.stdout.split()]
    assert len(paths) == 2 and all(p.is_relative_to(source.resolve()) and p.is_file() for p in paths), out.stderr[
        -2000:
    ]


def test_caption_dir_times_the_whole_folder_and_compares_records(tmp_path, examples):
    import shutil

    from edgecap.bench import _same_records, caption_dir_rate

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(examples / name, folder / name)
    (folder / "notes.txt").write_text("not a photo")
    rate = caption_dir_rate(folder, runs=1)
    records = rate["records"]
    assert rate["photos"] == 2 and rate["photos_per_s"] > 0 and rate["seconds"] > 0
    assert {Path(r["image"]).name for r in records} == {"chelsea.jpg", "coffee.jpg"}
    assert all(r["caption"] and "timings_ms" not in r for r in records)
    changed = [{**records[0], "caption": "a different caption"}, records[1]]
    same = _same_records(records, changed)
    assert same == {"records": 1, "captions": 1, "tags": 2, "constraints": 2, "of": 2}
    report = {"photos": 2, "repeats": 3, "machine": "m", "results": [], "caption_dir": {"folder": str(folder), **rate}}
    report["caption_dir"]["baseline"] = {"revision": "HEAD", "seconds": 1.0, "photos_per_s": 2.0, "same": same}
    text = format_report(report)
    assert "edgecap caption DIR (every default) on 2 photos" in text and "the same records on 1 of 2 photos" in text


def test_the_report_sets_the_default_pipeline_and_caption_dir_against_the_baseline():
    """On a committed run (docs/bench/2026-12-07-flickr8k-test-1000.json, issue 46's done-when)."""
    import json

    report = json.loads((ROOT / "docs" / "bench" / "2026-12-07-flickr8k-test-1000.json").read_text())
    now, then = (next(r for r in report["results"] if ("baseline" in r) is b) for b in (False, True))
    a, b = now["tags"]["pipeline_beam3_ms"], then["tags"]["pipeline_beam3_ms"]
    text = format_report(report)
    assert f"the default pipeline (beam 3, with tags): {a:.2f} against {b:.2f} ms ({a / b:.2f}x)" in text
    c = report["caption_dir"]
    assert f"{c['photos_per_s'] / c['baseline']['photos_per_s']:.2f}x; the same records on" in text
