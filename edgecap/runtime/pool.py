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
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from edgecap.runtime.captioner import Captioner, CaptionerOptions, CaptionResult
from edgecap.runtime.interpreter import usable_cores
from edgecap.runtime.preprocessing import ImageLoadError

_captioner: Captioner | None = None  # the worker process's own


def default_workers() -> int:
    """The CPU cores this process may use."""
    return usable_cores()


def worker_options(options: CaptionerOptions) -> CaptionerOptions:
    """A worker's options: what is unset runs on one core, the captioner's interpreter and the
    taggers' alike, and the taggers run before the encode on the worker's own thread (the
    workers share the cores; docs/runtime.md#workers)."""
    options = dataclasses.replace(options, overlap_taggers=False)
    if options.num_threads is None:
        options = dataclasses.replace(options, num_threads=1)
    if options.tagger_options.num_threads is None:
        options = dataclasses.replace(
            options, tagger_options=dataclasses.replace(options.tagger_options, num_threads=1)
        )
    return options


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


#: pools started again after a worker died, before the photos left get error records
MAX_RESTARTS = 3


def caption_in_workers(
    path: str | Path,
    options: CaptionerOptions,
    images: Iterable[str | Path],
    workers: int,
    on_retry: Callable[[str], None] | None = None,
) -> Iterator[tuple[str, CaptionResult | None, str | None]]:
    """Caption ``images`` with ``workers`` processes; ``(image, result, error)`` in input order.

    At most ``2 × workers`` photos are in flight, so a large folder is not queued at once.
    Unset thread counts become 1 (one core per worker, :func:`worker_options`).

    A worker that dies (killed, out of memory) breaks the pool: the photos in flight that had
    no result yet are sent once more to a fresh pool (``on_retry(image)`` for each), and a photo
    that is in flight when a second pool breaks gets an error record; after
    :data:`MAX_RESTARTS` broken pools every photo left gets one. So every input path ends as a
    result or as an error naming it.

    Args:
        path: the model file (each worker loads it).
        options: as for :class:`Captioner`.
        images: photo paths.
        workers: processes, ≥ 1.
        on_retry: called with each photo sent again after a worker died.

    Raises:
        ValueError: ``workers`` < 1.
        ModelFileError, NoInterpreterError: a worker could not load or run the model.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    options = worker_options(options)
    pools = _Pools(str(path), options, workers)
    pending: deque[_InFlight] = deque()
    try:
        for image in images:
            pending.append(pools.submit(_InFlight(str(image))))
            if len(pending) >= 2 * workers:
                yield pools.result(pending, on_retry)
        while pending:
            yield pools.result(pending, on_retry)
    finally:  # also on Ctrl-C or when the caller stops early: no worker is left behind
        pools.close()


@dataclasses.dataclass
class _InFlight:
    image: str
    future: Future | None = None
    attempts: int = 0  #: pools that broke while it was in flight
    lost: str = ""  #: why it will not be captioned (set when it is given up)


class _Pools:
    """The current process pool, started again when a worker dies."""

    def __init__(self, path: str, options: CaptionerOptions, workers: int):
        self.args, self.workers, self.restarts = (path, options), workers, 0
        self.pool: ProcessPoolExecutor | None = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent may hold interpreter thread pools, which a fork would copy half-made
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, context, initializer=_load, initargs=self.args)

    def submit(self, entry: _InFlight) -> _InFlight:
        """Send the photo to the pool (to a broken one: its future fails at once)."""
        if self.pool is None:
            entry.lost = f"{entry.image}: not captioned: worker processes kept dying ({self.restarts} pools lost)"
            return entry
        try:
            entry.future = self.pool.submit(_caption, entry.image)
        except BrokenProcessPool as e:
            entry.future = Future()
            entry.future.set_exception(e)
        return entry

    def result(self, pending: deque[_InFlight], on_retry) -> tuple[str, CaptionResult | None, str | None]:
        """The first pending photo's ``(image, result, error)``, through any broken pools."""
        while True:
            entry = pending[0]
            if entry.lost:
                pending.popleft()
                return entry.image, None, entry.lost
            assert entry.future is not None
            try:
                value = entry.future.result()
            except (BrokenProcessPool, CancelledError):
                self._restart(pending, on_retry)
                continue
            pending.popleft()
            return (entry.image, *value)

    def _restart(self, pending: deque[_InFlight], on_retry) -> None:
        """A fresh pool for the photos the broken one held: each sent once more, or given up."""
        self.close()  # the pool's manager thread has failed every future it held when this returns
        self.restarts += 1
        self.pool = self._start() if self.restarts <= MAX_RESTARTS else None
        for entry in pending:
            future = entry.future
            if entry.lost or (future is not None and future.done() and not _lost_with_pool(future)):
                continue  # given up already, or its result (or its own error) is waiting
            entry.attempts += 1
            if entry.attempts > 1:
                entry.lost = f"{entry.image}: not captioned: a worker process died with it twice"
                continue
            if on_retry is not None and self.pool is not None:
                on_retry(entry.image)
            self.submit(entry)

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
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


def _lost_with_pool(future: Future) -> bool:
    return future.cancelled() or isinstance(future.exception(), BrokenProcessPool)
