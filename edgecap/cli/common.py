"""What the commands share: one-line failures, the TensorFlow check, the photos of a command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def fail(message: str, code: int = 1):
    """Print ``error: MESSAGE`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def tensorflow_command() -> None:
    """Quiet TensorFlow's C++ logs, and say which extra to install if it is missing."""
    import importlib.util

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    missing = [m for m in ("tensorflow", "keras") if importlib.util.find_spec(m) is None]
    if missing:
        fail(
            f"this command trains or converts models and needs {' and '.join(missing)}: pip install 'edgecap[train]' "
            "(captioning with an exported .tflite needs only the base install)"
        )


def photo_paths(paths) -> Iterator[tuple[Path, str | None]]:
    """``(path, None)`` for each photo to caption, ``(path, error)`` for each argument that cannot
    give any: checked when its turn comes, so one bad argument does not stop the others."""
    for p in map(Path, paths):
        if str(p) == "-" and not p.exists():
            yield p, "-: photos are not read from standard input; give a file or folder path"
            continue
        try:
            if not p.is_dir():
                yield p, None  # a file, or a path whose problem load_image reports with its cause
                continue
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and not q.is_dir())
        except OSError as e:
            yield p, f"{p}: {e.strerror or e}"
            continue
        if not found:
            yield p, f"{p}: no images in this folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        yield from ((q, None) for q in found)


def photo_list(paths) -> list[Path]:
    """Every photo of the given files and folders, sorted by path (the rows of a score matrix).

    Raises:
        ValueError: a path that does not exist, or a folder without photos (named).
    """
    photos = []
    for image, error in photo_paths(paths):
        if error is not None:
            raise ValueError(error)
        if not image.is_file():
            raise ValueError(f"{image}: no such photo or folder")
        photos.append(image)
    if not photos:
        raise ValueError("no photos given")
    return sorted(set(photos))


def writable(path: str, what: str) -> None:
    """Raises ValueError naming ``path`` when its folder does not exist or is not writable (before any long work)."""
    folder = Path(path).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK) or Path(path).is_dir():
        raise ValueError(f"{what} {path}: cannot be written (no such folder, not writable, or a folder)")
