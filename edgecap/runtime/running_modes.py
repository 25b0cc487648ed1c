"""Running modes of a :class:`~edgecap.runtime.Captioner` (after MediaPipe Tasks' ``RunningMode``):
single photos, the frames of a video, and a live stream, with captions only where the scene changed.

- IMAGE: ``caption(image)``, one photo at a time.
- VIDEO: ``caption_for_video(frame, timestamp_ms)``, frames in time order, answered at once.
- LIVE_STREAM: ``caption_async(frame, timestamp_ms)``, answered by the options' result callback
  on another thread; a newer frame replaces the one waiting (:class:`LiveStream`).

In VIDEO and LIVE_STREAM a frame is captioned only when its scene changed since the last
captioned frame (:class:`SceneGate`); the others hold the last caption. Nothing here imports the
captioner: its methods hand a caption function to these pieces.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecap.runtime.preprocessing import ImageInput, load_image


class RunningMode(enum.Enum):
    """How frames come to the captioner (MediaPipe Tasks' ``RunningMode``)."""

    IMAGE = "image"  #: single photos: ``caption()``
    VIDEO = "video"  #: decoded frames in time order: ``caption_for_video()``
    LIVE_STREAM = "live_stream"  #: a camera: ``caption_async()`` and the result callback


@dataclass(frozen=True)
class SceneOptions:
    """When a frame of a video or a stream gets a new caption.

    Attributes:
        threshold: the scene change that asks for a new caption: the mean absolute difference,
            in 0..1 of the pixel range, between the grey thumbnails of this frame and of the last
            captioned one, each less its own mean (a brightness drift does not count). 0.06 was
            chosen on a test video (docs/runtime.md#video-and-cameras): within one filmed photo
            (camera noise, a slow pan and zoom) the change stayed at or below 0.045, a cut
            between two photos was 0.095 or more.
        min_interval: seconds after a caption before a changed scene is captioned again.
        max_interval: seconds after which even an unchanged scene is captioned again.
        thumbnail: side of the grey thumbnail in pixels.

    Raises:
        ValueError: a negative threshold or interval, ``max_interval`` below ``min_interval``,
            or a thumbnail under 2 pixels.
    """

    threshold: float = 0.06
    min_interval: float = 1.0
    max_interval: float = 10.0
    thumbnail: int = 8

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if not 0.0 <= self.min_interval <= self.max_interval:
            raise ValueError(
                f"intervals must satisfy 0 <= min_interval <= max_interval, got {self.min_interval} and {self.max_interval}"
            )
        if self.thumbnail < 2:
            raise ValueError(f"thumbnail must be >= 2 pixels, got {self.thumbnail}")


def thumbnail(image: ImageInput, side: int = 8) -> np.ndarray:
    """A frame's grey thumbnail, less its mean: ``float32 (side, side)`` in -1..1.

    A ``uint8 (H, W, 3)`` RGB array (a decoded frame: picamera2, OpenCV after BGR→RGB, PyAV) is
    read directly (:func:`grid_means`, ITU-R BT.601 luma weights); any other image through the
    photo loader first."""
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.dtype == np.uint8 and image.shape[-1] == 3):
        image = load_image(image, None)
    step = sample_step(image.shape[0], image.shape[1], side)
    sub = image[::step, ::step].astype(np.float32)  # (h, w, 3)
    grey = sub @ np.asarray([0.299, 0.587, 0.114], np.float32)
    return normalised(grid_means(grey, side) / 255.0)


def sample_step(height: int, width: int, side: int) -> int:
    """Every how many pixels a thumbnail reads a row and a column: about 8 samples a cell."""
    return max(1, min(height, width) // (side * 8))


def grid_means(grey: np.ndarray, side: int) -> np.ndarray:
    """``float32 (side, side)``: the means of a ``(h, w)`` grey image's cells (its last rows and
    columns that do not fill a cell are left out). Raises ValueError below ``side`` pixels."""
    rows, cols = grey.shape[0] // side, grey.shape[1] // side
    if rows == 0 or cols == 0:
        raise ValueError(
            f"a frame of {grey.shape[1]}x{grey.shape[0]} samples is smaller than a {side}x{side} thumbnail"
        )
    cells = grey[: rows * side, : cols * side].reshape(side, rows, side, cols)
    return cells.mean(axis=(1, 3), dtype=np.float32)


def normalised(grey: np.ndarray) -> np.ndarray:
    """A grey thumbnail in 0..1 less its own mean: ``float32`` of the same shape."""
    grey = np.asarray(grey, np.float32)
    return grey - grey.mean()


class SceneGate:
    """Which frames of one video or stream to caption: the first; then each frame whose scene
    changed by ``threshold`` or more since the last captioned frame, at least ``min_interval``
    seconds after it; and any frame ``max_interval`` seconds after it.

    One gate serves one stream; not thread-safe (the running modes hold it under their lock).
    """

    def __init__(self, options: SceneOptions | None = None):
        self.options = options or SceneOptions()
        self.last_thumbnail: np.ndarray | None = None
        self.last_ms: float | None = None

    def change(self, thumb: np.ndarray) -> float:
        """Mean absolute difference from the last captioned frame's thumbnail (1.0 before any)."""
        if self.last_thumbnail is None:
            return 1.0
        return float(np.abs(thumb - self.last_thumbnail).mean())

    def decide(self, thumb: np.ndarray, timestamp_ms: float) -> tuple[bool, float]:
        """``(caption this frame, its change)``; a frame to caption becomes the reference."""
        change = self.change(thumb)
        o = self.options
        if self.last_ms is None:
            new = True
        else:
            elapsed = (timestamp_ms - self.last_ms) / 1e3
            new = elapsed >= o.max_interval or (elapsed >= o.min_interval and change >= o.threshold)
        if new:
            self.last_thumbnail, self.last_ms = thumb, timestamp_ms
        return new, change


@dataclass
class VideoCaptionResult:
    """The caption in force at one frame of a video or stream.

    Attributes:
        timestamp_ms: the frame's time.
        result: the caption (a :class:`~edgecap.runtime.CaptionResult`): this frame's when
            ``new``, else the last captioned frame's, held.
        new: this frame was captioned (its scene changed, or ``max_interval`` passed).
        captioned_ms: the time of the frame the caption was made from.
        change: the scene change measured at this frame (:attr:`SceneOptions.threshold`'s scale).
    """

    timestamp_ms: int
    result: Any
    new: bool
    captioned_ms: int
    change: float

    @property
    def text(self) -> str:
        return self.result.text


class FrameClock:
    """Strictly increasing timestamps of one running mode (ValueError naming both otherwise)."""

    def __init__(self, mode: RunningMode):
        self.mode = mode
        self.last: int | None = None

    def check(self, timestamp_ms: int) -> int:
        timestamp_ms = int(timestamp_ms)
        if self.last is not None and timestamp_ms <= self.last:
            raise ValueError(f"{self.mode.name} timestamps must increase: got {timestamp_ms} ms after {self.last} ms")
        self.last = timestamp_ms
        return timestamp_ms


class VideoStream:
    """VIDEO mode over one caption function: :meth:`caption_for_video` gates each frame and
    captions it or holds the last caption. Thread-safe (one frame at a time)."""

    def __init__(self, caption: Callable[[ImageInput], Any], options: SceneOptions | None = None):
        self._caption = caption
        self.gate = SceneGate(options)
        self.clock = FrameClock(RunningMode.VIDEO)
        self._held: VideoCaptionResult | None = None
        self._lock = threading.Lock()

    def caption_for_video(
        self, frame: ImageInput | Callable[[], ImageInput], timestamp_ms: int, thumb: np.ndarray | None = None
    ) -> VideoCaptionResult:
        """Gate one frame (a function that makes it is called only if needed); ``thumb``: its
        :func:`thumbnail` when the caller has it."""
        with self._lock:
            timestamp_ms = self.clock.check(timestamp_ms)
            if thumb is None:  # the thumbnail needs the pixels: make them once
                frame = frame() if callable(frame) else frame
                thumb = thumbnail(frame, self.gate.options.thumbnail)
            new, change = self.gate.decide(thumb, timestamp_ms)
            if new or self._held is None:
                pixels = frame() if callable(frame) else frame
                self._held = VideoCaptionResult(timestamp_ms, self._caption(pixels), True, timestamp_ms, change)
                return self._held
            held = self._held
            return VideoCaptionResult(timestamp_ms, held.result, False, held.captioned_ms, change)


class LiveStream:
    """LIVE_STREAM mode: frames handed in by :meth:`caption_async` are captioned on one worker
    thread and answered by ``callback(result, timestamp_ms)`` (``result`` a
    :class:`VideoCaptionResult`), in timestamp order.

    While a frame is being captioned, at most one waits: a newer frame replaces it (the replaced
    frame gets no callback). Nothing queues without bound, and no frame is captioned after a newer
    one. The callback runs on the worker thread; an exception it raises is kept and raised by the
    next :meth:`caption_async` (and by :meth:`flush`).

    Args:
        caption: the caption function (a photo → a caption result).
        callback: ``callback(result, timestamp_ms)``.
        options: the scene rule.
    """

    def __init__(
        self,
        caption: Callable[[ImageInput], Any],
        callback: Callable[[VideoCaptionResult, int], None],
        options: SceneOptions | None = None,
    ):
        self.video = VideoStream(caption, options)
        self.callback = callback
        self.clock = FrameClock(RunningMode.LIVE_STREAM)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._waiting: tuple[ImageInput, int] | None = None
        self._busy = False
        self._error: BaseException | None = None
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgecap-live")
        self.dropped = 0  #: frames replaced before they were captioned

    def caption_async(self, frame: ImageInput, timestamp_ms: int) -> None:
        """Hand in a frame; returns at once. Raises ValueError for a timestamp not after the last
        one or a closed stream, and the callback's or the caption's last exception, if any."""
        with self._lock:
            self._raise_error()
            if self._closed:
                raise ValueError("caption_async after close(): this stream is closed")
            timestamp_ms = self.clock.check(timestamp_ms)
            if self._waiting is not None:
                self.dropped += 1
            self._waiting = (frame, timestamp_ms)
            if not self._busy:
                self._busy = True
                self._pool.submit(self._drain)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the waiting frame (if any) is answered; False on timeout. Raises the
        callback's or the caption's exception, if any."""
        with self._lock:
            done = self._idle.wait_for(lambda: not self._busy, timeout)
            self._raise_error()
            return done

    def close(self) -> None:
        """Answer the waiting frame, then stop the worker thread; later frames are refused."""
        with self._lock:
            self._closed = True
        self.flush()
        self._pool.shutdown(wait=True)

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _drain(self) -> None:
        while True:
            with self._lock:
                if self._waiting is None or self._error is not None:
                    self._waiting = None
                    self._busy = False
                    self._idle.notify_all()
                    return
                frame, timestamp_ms = self._waiting
                self._waiting = None
            try:
                result = self.video.caption_for_video(frame, timestamp_ms)
                self.callback(result, timestamp_ms)
            except BaseException as e:  # kept for the caller's thread
                with self._lock:
                    self._error = e


@dataclass
class VideoFrame:
    """One decoded frame of a video source.

    Attributes:
        time: seconds from the start of the video.
        image: the frame, or a function that makes it (decoded to RGB only when captioned).
        thumbnail: its :func:`thumbnail`, if the source made one itself (None: made from ``image``).
    """

    time: float
    image: ImageInput | Callable[[], ImageInput]
    thumbnail: np.ndarray | None = None


@dataclass
class CaptionSpan:
    """A stretch of video that one caption describes, from a captioned frame to the next.

    Attributes:
        start: seconds, the captioned frame's time.
        end: seconds, the next captioned frame's time (or the end of the video).
        result: the caption (a :class:`~edgecap.runtime.CaptionResult`).
        frames: frames considered in the span (the captioned one included).
    """

    start: float
    end: float
    result: Any
    frames: int = 1

    @property
    def text(self) -> str:
        return self.result.text


def spans(
    frames: Iterable[VideoFrame],
    caption: Callable[[ImageInput], Any],
    options: SceneOptions | None = None,
    end: Callable[[], float] | None = None,
) -> Iterator[CaptionSpan]:
    """The caption spans of a video: each frame goes through a :class:`VideoStream`, and a span
    is yielded when the next caption starts (the last one when the frames end).

    Args:
        frames: the frames to consider, in time order.
        caption: the caption function.
        options: the scene rule.
        end: the last span's end, asked when the frames end (default: the last frame's time);
            not after a failure, when the last span ends at the last frame read.
    """
    stream = VideoStream(caption, options)
    current: CaptionSpan | None = None
    last_time = 0.0
    failure: Exception | None = None
    try:
        for frame in frames:
            last_time = frame.time
            result = stream.caption_for_video(frame.image, round(frame.time * 1e3), frame.thumbnail)
            if not result.new and current is not None:
                current.frames += 1
                continue
            if current is not None:
                current.end = frame.time
                yield current
            current = CaptionSpan(frame.time, frame.time, result.result)
    except Exception as e:  # the source failed mid-way: the span so far first, then the error
        failure = e
    if current is not None:
        current.end = max(current.start, end() if end and failure is None else last_time)
        yield current
    if failure is not None:
        raise failure
