"""Small helpers shared by every stage (no TensorFlow)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Whatever is written to the yielded path appears at ``path`` whole or not at all, so an
    interrupted run never leaves a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes[-2:]), dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temporaries(path: str | Path) -> None:
    """Remove the temporary files :func:`atomic_path` made for ``path`` and a killed process left.

    Call it where only one process writes ``path`` (a resumable job's own progress file).
    """
    path = Path(path)
    for tmp in path.parent.glob(f".{path.name}.*.tmp*"):
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def work_dir(parent: str | Path, prefix: str) -> Path:
    """A new folder ``<parent>/<prefix><pid>-<random>`` for one process's scratch files.

    Folders of the same prefix left by processes that are no longer running (killed before
    they could clean up) are removed first.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob(f"{prefix}*"):
        pid = old.name[len(prefix) :].split("-", 1)[0]
        if old.is_dir() and pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def shared_dir() -> Path:
    """The ``shared/`` folder beside the checkout: ``$EDGECAP_SHARED`` or ``<repo>/../shared``."""
    env = os.environ.get("EDGECAP_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared"
