"""Built-in models by name (no TensorFlow): ``Captioner.from_preset(NAME)``, ``edgecap models``.

A built-in model is an int8 file ``<name>_int8.tflite`` in the released folder (``export/`` in
the repository, ``edgecap/released`` in an installed package); its name, task and the test
scores ``edgecap release`` measured are in its own metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgecap.paths import DEFAULT_PRESET, released_dir

SUFFIX = "_int8.tflite"


@dataclass
class Preset:
    """One built-in model.

    Attributes:
        name: e.g. ``show_attend_tell_flickr8k``.
        path: its ``.tflite`` file.
        task: e.g. ``captioning``.
        architecture: model family.
        size_mb: file size in MB (10^6 bytes).
        scores: test-split metrics (×100) recorded at release, e.g. ``{"BLEU-4": 19.4, ...}``.
    """

    name: str
    path: Path
    task: str
    architecture: str
    size_mb: float
    scores: dict = field(default_factory=dict)


def preset_names(task: str | None = None) -> list[str]:
    """Names of the built-in models; with ``task`` (e.g. ``"captioning"``) only those of that task."""
    names = sorted(p.name[: -len(SUFFIX)] for p in released_dir().glob(f"*{SUFFIX}"))
    if task is None:
        return names
    return [p.name for p in list_presets() if p.task == task]


def preset_path(name: str) -> Path:
    """The file of built-in model ``name``.

    Raises:
        ValueError: no built-in model of that name (the message lists them).
    """
    path = released_dir() / f"{name}{SUFFIX}"
    if not path.is_file():
        raise ValueError(
            f"{name!r} is not a built-in model; built-in models: {', '.join(preset_names()) or 'none installed'}"
        )
    return path


def default_preset() -> Path:
    return preset_path(DEFAULT_PRESET)


def list_presets() -> list[Preset]:
    """Every built-in model with its metadata (files that do not read are skipped)."""
    from edgecap.runtime.metadata import ModelFileError, read_file

    out = []
    for name in preset_names():
        path = released_dir() / f"{name}{SUFFIX}"
        try:
            _, meta = read_file(path)
        except ModelFileError:
            continue
        out.append(
            Preset(
                name,
                path,
                meta.task,
                meta.architecture,
                path.stat().st_size / 1e6,
                dict(meta.extra.get("test_scores", {})),
            )
        )
    return out


def resolve_model(name_or_path: str | Path | None) -> Path:
    """``--model`` value → file: an existing path, else a built-in model's name; None → the default model.

    Raises:
        ValueError: neither a file nor a built-in model (names it, lists the built-in ones).
    """
    if name_or_path is None:
        return default_preset()
    path = Path(name_or_path)
    if path.is_file() or (path.exists() and str(name_or_path) not in preset_names()):
        return path  # a folder or FIFO too: loading it says what it is
    if path.suffix == ".tflite" or path.parent != Path("."):
        raise ValueError(
            f"{name_or_path}: no such model file (built-in models: {', '.join(preset_names()) or 'none installed'})"
        )
    try:
        return preset_path(str(name_or_path))
    except ValueError:
        raise ValueError(
            f"{name_or_path!r} is neither a model file nor a built-in model; built-in models: {', '.join(preset_names()) or 'none installed'}"
        ) from None


# --- built-in taggers ------------------------------------------------------------------------
TAGGER_FOLDER = "taggers"  #: under the released folder: ``<name>.tflite``, ``.labels.txt``, ``.words.json``, ``.md``


def tagger_names() -> list[str]:
    """Names of the built-in taggers (``Tagger.from_preset``)."""
    return sorted(p.stem for p in (released_dir() / TAGGER_FOLDER).glob("*.tflite"))


def tagger_path(name: str) -> Path:
    """The ``.tflite`` file of built-in tagger ``name``.

    Raises:
        ValueError: no built-in tagger of that name (the message lists them).
    """
    path = released_dir() / TAGGER_FOLDER / f"{name}.tflite"
    if not path.is_file():
        raise ValueError(
            f"{name!r} is not a built-in tagger; built-in taggers: {', '.join(tagger_names()) or 'none installed'}"
        )
    return path
