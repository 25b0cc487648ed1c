"""Where things are: the released default model, the data root, the example photos (no TensorFlow)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

DATA_ROOT_ENV = "EDGECAP_DATA_ROOT"
DEFAULT_PRESET = "show_attend_tell_flickr8k"  #: the built-in model used when none is named
DEFAULT_MODEL_NAME = f"{DEFAULT_PRESET}_int8.tflite"
DEFAULT_RETRIEVAL_PRESET = "visual_semantic_alignment_flickr8k"  #: the built-in model `edgecap search` and `edgecap align` use when none is named


def released_dir() -> Path:
    """The released default model's folder (``export/`` in the repository, ``edgecap/released`` in a wheel)."""
    try:
        return Path(str(resources.files("edgecap.released")))
    except ModuleNotFoundError:  # running from a source tree that is not installed
        return repo_root() / "export"


def default_model() -> Path:
    """The built-in int8 ``.tflite`` file."""
    return released_dir() / DEFAULT_MODEL_NAME


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def examples_dir() -> Path:
    """The free-licence sample photos shipped with the repository."""
    return repo_root() / "examples"


def resolve_data_root(configured: str, override: str | None = None) -> Path:
    """The dataset folder: ``override`` (CLI) > ``$EDGECAP_DATA_ROOT`` > ``configured``.

    A relative ``configured`` path is tried against the working directory, then against the
    repository root (so ``../shared/data/flickr8k`` works from anywhere inside a checkout).
    """
    chosen = override or os.environ.get(DATA_ROOT_ENV) or configured
    p = Path(chosen).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve()
    alt = repo_root() / p
    return alt.resolve() if alt.exists() else p.resolve()
