"""Refusals that need no TensorFlow come before it is imported: one line, at once (issue 31)."""

import subprocess
import sys

import pytest

PROBE = """
import sys
from edgecap.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    print("EXIT", e.code, "tensorflow" in sys.modules, file=sys.stderr)
"""


def _refusal(*args: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert lines[-1] == "EXIT 1 False", out.stderr  # exit 1, TensorFlow never imported
    assert len(lines) == 2 and lines[0].startswith("error: "), out.stderr
    return lines[0]


@pytest.fixture
def run_without_checkpoint(tmp_path):
    from edgecap.config import Config

    run = tmp_path / "run"
    run.mkdir()
    Config().save(run / "config.toml")
    (run / "vocab.json").write_text('{"words": ["<pad>", "<start>", "<end>", "<unk>"]}')
    return run


def test_data_problems_are_refused_before_tensorflow(tmp_path):
    assert "Flickr8k.token.txt: file not found" in _refusal(
        "train", "--run-dir", str(tmp_path / "r"), "--data-root", str(tmp_path)
    )
    folder = tmp_path / "photos"
    folder.mkdir()
    from PIL import Image

    Image.new("RGB", (32, 32)).save(folder / "a.jpg")
    (folder / "captions.txt").write_text("a.jpg\ta black square\n")
    (folder / "splits.txt").write_text("a.jpg\ttrain\n")
    message = _refusal("train", "--run-dir", str(tmp_path / "r"), "data.dataset=folder", f"data.root={str(folder)!r}")
    assert "splits.txt: split 'dev' is empty" in message


def test_a_run_without_its_checkpoint_is_refused_before_tensorflow(run_without_checkpoint):
    for command in ("evaluate", "export"):
        assert f"{run_without_checkpoint / 'best.weights.h5'}: missing" in _refusal(
            command, str(run_without_checkpoint)
        )


def test_absurd_sizes_and_unreadable_configs_are_refused_before_tensorflow(tmp_path):
    message = _refusal("train", "--run-dir", str(tmp_path / "r"), "model.hidden_dim=100000000")
    assert "model.hidden_dim = 100000000" in message and "over the limit" in message
    binary = tmp_path / "weights.toml"
    binary.write_bytes(bytes(range(256)) * 4)
    assert f"{binary}: not a text file in UTF-8" in _refusal(
        "train", "--config", str(binary), "--run-dir", str(tmp_path / "r")
    )
