"""Output that fails: a full disk or a size limit under --json, an unwritable --attention-dir, a
missing plotting extra. One line naming what failed, whole JSON lines only, nothing captioned
before a check that could be made first."""

import json
import resource
import signal
import subprocess
import sys

from click.testing import CliRunner

CAPTION = [sys.executable, "-m", "edgecap.cli", "caption", "--json", "--tagger", "none"]


def test_a_full_disk_under_json_is_one_line_and_no_partial_record(examples, tmp_path):
    out = subprocess.run([*CAPTION, str(examples)], capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines(keepends=True)
    assert out.returncode == 0 and len(lines) == 3
    limit = len(lines[0].encode()) + len(lines[1].encode()) // 2  # the second record cannot fit

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    target = tmp_path / "captions.jsonl"
    with open(target, "w") as f:
        failed = subprocess.run(
            [*CAPTION, str(examples)], stdout=f, stderr=subprocess.PIPE, text=True, timeout=120, preexec_fn=limited
        )
    assert failed.returncode == 1 and failed.stderr.strip().splitlines()[-1].startswith(
        "error: standard output: cannot write"
    )
    assert "Traceback" not in failed.stderr
    written = target.read_text()  # whole records only: the cut one is gone
    assert written.endswith("\n") and [json.loads(x)["image"] for x in written.splitlines()] == [
        json.loads(lines[0])["image"]
    ]
    with open("/dev/full", "w") as full:
        refused = subprocess.run([*CAPTION, str(examples)], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert refused.returncode == 1 and "No space left on device" in refused.stderr and "Traceback" not in refused.stderr


def test_an_attention_dir_that_cannot_be_written_is_refused_before_the_first_photo(examples, tmp_path):
    (tmp_path / "a_file").write_text("")
    out = subprocess.run(
        [*CAPTION, "--attention-dir", str(tmp_path / "a_file" / "figures"), str(examples)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and out.stdout == ""
    assert (
        out.stderr.strip()
        == f"error: --attention-dir {tmp_path / 'a_file' / 'figures'}: cannot write there (Not a directory)"
    )


def test_attention_figures_without_matplotlib_are_refused_before_the_first_photo(examples, monkeypatch):
    import importlib.util

    from edgecap.cli import main

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else find_spec(name, *a)
    )
    result = CliRunner().invoke(main, ["caption", "--tagger", "none", "--attention-dir", "figures", str(examples)])
    assert result.exit_code == 1 and "pip install 'edgecap[plot]'" in result.output and ".jpg:" not in result.output
