"""The README is for users: short, and everything it shows works. Every ``edgecap`` command in
its code blocks exists with the options it uses, and its Python snippet runs on a bare clone
(no ``../shared``, the runtime alone)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _edgecap_commands() -> list[list[str]]:
    """Each ``edgecap ...`` command of the bash blocks, as words (continuation lines joined,
    comments and the shell around it dropped)."""
    out = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|;", line.split(" #", 1)[0]):
                words = shlex.split(part.strip(), comments=True)
                if words and words[0] == "edgecap":
                    out.append(words[1:])
    return out


def test_the_readme_is_short():
    assert len(README.splitlines()) <= 300


def test_every_command_in_the_readme_exists_with_its_options():
    from edgecap.cli import main

    commands = _edgecap_commands()
    assert len(commands) >= 10 and {c[0] for c in commands} >= {
        "caption",
        "train",
        "export",
        "evaluate",
        "search",
        "align",
    }
    for words in commands:
        result = CliRunner().invoke(main, [words[0], "--help"])
        assert result.exit_code == 0, (words, result.output)
        for option in (w.split("=", 1)[0] for w in words[1:] if w.startswith("--")):
            assert option in result.output, (
                f"edgecap {words[0]}: no option {option} (README: edgecap {' '.join(words)})"
            )


def _run_on_a_bare_clone(snippet: str) -> list[str]:
    env = {
        **os.environ,
        "EDGECAP_SHARED": "/nonexistent/shared",
        "EDGECAP_DATA_ROOT": "",
        "EDGECAP_ENCODER_WEIGHTS": "",
    }
    probe = "import sys\n" + snippet + "\nassert 'tensorflow' not in sys.modules, 'the runtime imported TensorFlow'\n"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


@pytest.mark.slow
def test_the_python_snippets_run_on_a_bare_clone():
    captioning, tags = _blocks("python")
    lines = _run_on_a_bare_clone(captioning)
    assert len(lines) == 3 and lines[2].startswith("(") and ", 7, 7)" in lines[2], lines
    lines = _run_on_a_bare_clone(tags)
    assert len(lines) == 2 and "cat" in lines[0].split() and "['cat']" in lines[0] and "coffee" in lines[1], lines
