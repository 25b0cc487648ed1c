"""Scoring captions made elsewhere (`edgecap evaluate CAPTIONS.jsonl`) without TensorFlow, and the
records it refuses (issue 48, class 4): each a one-line error naming the file and line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pycocoevalcap")

#: run the command with TensorFlow and Keras made unimportable, as the base install has them
NO_TENSORFLOW = """
import sys
class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ImportError(f"{name} is not installed (blocked by the test)")
        return None
sys.meta_path.insert(0, _NoTensorFlow())
from edgecap.cli import main
sys.argv = ["edgecap", *sys.argv[1:]]
main()
"""


@pytest.fixture(scope="module")
def folder_config(examples, tmp_path_factory) -> Path:
    """The example photos as a dataset of their own (every split the whole folder)."""
    config = tmp_path_factory.mktemp("config") / "examples.toml"
    config.write_text(f'[data]\ndataset = "folder"\nroot = "{examples}"\nmin_count = 1\n')
    return config


def _evaluate(records: list, folder_config: Path, tmp_path: Path, *args, raw: str | None = None):
    path = tmp_path / "captions.jsonl"
    path.write_text(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in records))
    return path, subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, "evaluate", str(path), "--config", str(folder_config), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _record(image: str, caption) -> dict:
    return {"image": image, "caption": caption, "error": None}


def test_a_caption_file_is_scored_without_tensorflow(examples, folder_config, tmp_path):
    records = [_record(f"/pi/{p.name}", "a cat sitting on a bench") for p in sorted(examples.glob("*.jpg"))]
    records.append({"image": "/pi/broken.jpg", "caption": None, "error": "broken.jpg: not an image"})
    _, out = _evaluate(records, folder_config, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "CIDEr-D" in out.stdout and "CHAIRs" in out.stdout


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (json.dumps(_record("chelsea.jpg", 42)), ":1: 'caption' must be a string, got int"),
        (json.dumps(_record("chelsea.jpg", ["a", "cat"])), ":1: 'caption' must be a string, got list"),
        (json.dumps({"image": 7, "caption": "a cat"}), ":1: a caption record needs 'image'"),
        ("[" * 200_000 + "]" * 200_000, ":1: JSON nested too deeply"),
        (json.dumps(_record("chelsea.jpg", "a cat " * 1000)), ":1: a caption of 6000 characters"),
        (json.dumps(_record("chelsea.jpg", "a " * 3_000_000)), ":1: a line over 1048576 bytes"),
        ("{not json", ":1: not a caption record"),
    ],
    ids=["number", "list", "no-image", "deep", "long-caption", "huge-line", "not-json"],
)
def test_hostile_records_are_refused_in_one_line(folder_config, tmp_path, raw, expected):
    path, out = _evaluate([], folder_config, tmp_path, raw=raw + "\n")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.count("\n") == 1 and f"{path}{expected}" in out.stderr, out.stderr


def test_two_records_of_one_photo_are_refused_unless_a_flag_says_which_wins(folder_config, tmp_path):
    twice = [_record("/a/chelsea.jpg", "a cat"), _record("/a/coffee.jpg", "a cup"), _record("/b/chelsea.jpg", "a dog")]
    path, out = _evaluate(twice, folder_config, tmp_path)
    assert (
        out.returncode == 1 and f"{path}:3: /b/chelsea.jpg is the photo of line 1 (/a/chelsea.jpg) again" in out.stderr
    )
    reports = {}
    for rule in ("first", "last"):
        report = tmp_path / f"{rule}.json"
        _, out = _evaluate(twice, folder_config, tmp_path, "--duplicates", rule, "--output", str(report))
        assert out.returncode == 0, out.stderr[-2000:]
        reports[rule] = {c["image_id"]: c["caption"] for c in json.loads(report.read_text())["captions"]}
    assert reports["first"]["chelsea.jpg"] == "a cat" and reports["last"]["chelsea.jpg"] == "a dog"
