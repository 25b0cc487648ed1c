"""What the commands share: one-line failures, the TensorFlow check, the photos of a command line."""

from __future__ import annotations

import functools
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import click

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
#: edgecap.runtime.interpreter.KERNELS, spelled out so that `--help` needs no numpy (a test
#: keeps the two equal)
KERNELS = ("default", "builtin", "reference")


def kernel_options(command):
    """``--kernels default|builtin|reference`` (the command receives ``kernels``), and the older
    flag ``--reference-kernels`` (hidden), which means ``--kernels reference``."""

    @functools.wraps(command)
    def wrapper(*args, reference_kernels: bool = False, **kwargs):
        if reference_kernels:
            kwargs["kernels"] = "reference"
        return command(*args, **kwargs)

    wrapper = click.option("--reference-kernels", is_flag=True, hidden=True, help="Same as --kernels reference.")(
        wrapper
    )
    return click.option(
        "--kernels",
        type=click.Choice(KERNELS),
        default="default",
        show_default=True,
        help="The interpreter's kernels. default: optimised, with XNNPACK (fastest; int8 rounding differs between x86 and arm64); builtin: optimised, without XNNPACK; reference: TFLite's reference kernels, slower, but the same integer arithmetic on every CPU (a float32 stem still differs in its last bits; docs/platforms.md).",
    )(wrapper)


def fail(message: str, code: int = 1):
    """Print ``error: MESSAGE`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class OutputError(OSError):
    """Standard output cannot be written (a full disk, a file size limit, a closed pipe)."""


class WholeLines:
    """Standard output a line at a time, each line whole: written with ``os.write`` until done,
    and when a write fails part-way (a full disk) cut back off a regular file, so the output
    holds only whole lines (JSON Lines stay valid). Under a test runner whose stdout has no file
    descriptor, plain ``sys.stdout`` writes.
    """

    def __init__(self) -> None:
        sys.stdout.flush()
        try:
            self.fd: int | None = sys.stdout.fileno()
            self.regular = stat.S_ISREG(os.fstat(self.fd).st_mode)
        except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
            self.fd, self.regular = None, False

    def line(self, text: str) -> None:
        """Write ``text`` and a newline. Raises OutputError with the cause (one line)."""
        data = (text + "\n").encode("utf-8", "replace")
        if self.fd is None:
            sys.stdout.write(data.decode("utf-8"))
            sys.stdout.flush()
            return
        start = os.lseek(self.fd, 0, os.SEEK_CUR) if self.regular else None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as e:
            if start is not None:  # cut the partial line off
                try:
                    os.ftruncate(self.fd, start)
                    os.lseek(self.fd, start, os.SEEK_SET)
                except OSError:
                    pass
            raise OutputError(e.errno, f"standard output: cannot write ({e.strerror or e})") from None


def writable_folder(folder: str | Path, option: str) -> Path:
    """``folder``, created if needed and checked writable before any work is done; otherwise
    exits through :func:`fail` with one line naming ``option``, the folder and the cause."""
    import tempfile

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".edgecap-write-check-"):
            pass
    except OSError as e:
        fail(f"{option} {folder}: cannot write there ({e.strerror or e})")
    return folder


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
