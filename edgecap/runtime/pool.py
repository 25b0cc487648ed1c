"""Caption many photos on several cores: one process per worker, each with its own interpreter.

Threads would share one GIL, which the search's Python holds for a good part of every caption
(``Invoke`` releases it, the search does not); processes do not. Each worker loads the model
once (:func:`_load`), then captions the photos it is sent; the results come back in the order
of the photos, whatever the order they finish in. A photo that cannot be read costs only itself
(its error comes back in its place); a model that fails stops everything, as with one process.

Inside one photo, ``num_threads`` still splits each ``Invoke`` over cores; with several workers
keep it at 1 (the default here), or workers × threads exceeds the cores.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from edgecap.runtime.captioner import Captioner, CaptionerOptions, CaptionResult
from edgecap.runtime.preprocessing import ImageLoadError

_captioner: Captioner | None = None  # the worker process's own


def default_workers() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _load(path: str, options: CaptionerOptions) -> None:
    """Worker start: ignore Ctrl-C (the parent stops the pool) and load the model once."""
    global _captioner
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _captioner = Captioner.from_file(path, options)


def _caption(image: str) -> tuple[CaptionResult | None, str | None]:
    """``(result, None)``, or ``(None, error)`` for a photo that cannot be read."""
    assert _captioner is not None, "worker not initialised"
    try:
        return _captioner.caption(image), None
    except ImageLoadError as e:
        return None, str(e)


def caption_in_workers(
    path: str | Path, options: CaptionerOptions, images: Iterable[str | Path], workers: int
) -> Iterator[tuple[str, CaptionResult | None, str | None]]:
    """Caption ``images`` with ``workers`` processes; ``(image, result, error)`` in input order.

    At most ``2 × workers`` photos are in flight, so a large folder is not queued at once.
    ``options.num_threads`` None becomes 1 (one core per worker).

    Args:
        path: the model file (each worker loads it).
        options: as for :class:`Captioner`.
        images: photo paths.
        workers: processes, ≥ 1.

    Raises:
        ValueError: ``workers`` < 1.
        ModelFileError, NoInterpreterError: a worker could not load or run the model.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if options.num_threads is None:
        options = dataclasses.replace(options, num_threads=1)
    # spawn, not fork: the parent may hold interpreter thread pools, which a fork would copy half-made
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, context, initializer=_load, initargs=(str(path), options))
    pending: deque[tuple[str, Future]] = deque()
    try:
        it = iter(images)
        for image in it:
            pending.append((str(image), pool.submit(_caption, str(image))))
            if len(pending) >= 2 * workers:
                done_image, future = pending.popleft()
                yield (done_image, *future.result())
        while pending:
            done_image, future = pending.popleft()
            yield (done_image, *future.result())
    finally:  # also on Ctrl-C or when the caller stops early: no worker is left behind
        processes = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        if manager is not None:
            # Its end closes the pool's wake-up pipe. Still running at interpreter exit, that close
            # races the wake-up which exit writes down the pipe, unlocked in CPython 3.11, and
            # "OSError: [Errno 9] Bad file descriptor" is printed after the last caption.
            manager.join(timeout=60)
