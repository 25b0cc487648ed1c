"""The shared corpus of hostile model files (scripts/make_hostile_models.py; issue 48, class 6):
each refused by the Python runtime with its class of reason, as the Java core's
HostileFilesTest refuses the same files."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from edgecap.runtime.metadata import ModelFileError, read_file

REPO = Path(__file__).resolve().parents[1]

#: what the Python runtime's message says for each class of reason
PATTERNS = {
    "archive": r"damaged edgecap metadata \(.*(declares|archive entries)",
    "json": r"damaged edgecap metadata \((JSON nested too deeply|JSONDecodeError)",
    "digest": r"digest",
    "fields": r"metadata fields? .*must",
    "contract": r"tensor 'h': .*(>= 1|too large)",
    "unverified": r"not verified",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    spec = importlib.util.spec_from_file_location("make_hostile_models", REPO / "scripts" / "make_hostile_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("hostile")
    manifest = module.write_corpus(out)
    assert set(manifest.values()) == set(module.CLASSES) == set(PATTERNS)
    return out, manifest


def test_every_hostile_file_is_refused_with_its_class_of_reason(corpus):
    folder, manifest = corpus
    for name, kind in manifest.items():
        path = folder / name
        with pytest.raises(ModelFileError) as refused:
            _, meta = read_file(path)
            meta.step_contract(str(path))  # the contract is read when a runtime loads the file
        message = str(refused.value)
        assert message.startswith(str(path)) and "\n" not in message, message
        assert re.search(PATTERNS[kind], message), (name, message)
