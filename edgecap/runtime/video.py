"""Video files, cameras and streams as frames for the running modes, read with PyAV (FFmpeg), and
caption spans as subtitles (WebVTT, SubRip) written with webvtt-py: ``pip install 'edgecap[video]'``.

from edgecap.runtime import Captioner
captioner = Captioner.from_preset("show_attend_tell_flickr8k")
for span in captioner.caption_video("clip.mp4", every=1.0):
    print(f"{span.start:.1f}-{span.end:.1f} s: {span.text}")
"""

from __future__ import annotations

import io
import math
import os
import stat
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from edgecap.runtime.running_modes import CaptionSpan, VideoFrame, grid_means, normalised, sample_step

#: File name endings read as videos by ``edgecap caption`` (anything else is a photo).
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".flv", ".wmv", ".3gp", ".ogv"}
)
SUBTITLE_FORMATS = ("vtt", "srt")


class VideoError(ValueError):
    """A video, camera or stream cannot be opened or read (the message names it, and the time)."""


def is_video(path: str | Path) -> bool:
    """Whether ``edgecap caption`` reads this path as a video (by its name's ending)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _av():
    try:
        import av
    except ImportError:
        raise VideoError("video input needs PyAV: pip install 'edgecap[video]'") from None
    return av


def camera_url(camera: str | Path | int) -> tuple[str, str | None]:
    """``(url, FFmpeg input format)`` of ``--camera``: an index is a V4L2 device (``/dev/videoN``,
    Raspberry Pi and Jetson USB or CSI cameras through V4L2); anything else a URL or a path as FFmpeg
    reads it (``rtsp://``, ``http://``, a device path)."""
    text = str(camera)
    if text.isdigit():
        return f"/dev/video{int(text)}", "v4l2"
    return text, None


class VideoSource:
    """One video file, camera or stream, opened with PyAV.

    Args:
        source: a video file's path, or with ``camera`` a camera index or URL.
        camera: read ``source`` as a camera (:func:`camera_url`); frames then keep arriving until
            the stream ends or the reader stops.
        timeout: seconds to wait for a network stream to open or to send data.

    Raises:
        VideoError: missing or special file, nothing FFmpeg can open, no video stream, or PyAV
            not installed (one line, naming the source).
    """

    def __init__(self, source: str | Path | int, camera: bool = False, timeout: float = 10.0):
        av = _av()
        self.name = str(source)
        fmt = None
        if camera:
            url, fmt = camera_url(source)
            self.name = url
        else:
            url = str(source)
            _check_file(Path(url))
        options = {"rtsp_transport": "tcp"} if url.startswith("rtsp://") else {}
        try:
            self.container = av.open(url, format=fmt, options=options, timeout=timeout)
        except (av.error.FFmpegError, OSError, ValueError) as e:
            what = (
                "cannot open the video" if not camera else "cannot open the camera" if fmt else "cannot open the stream"
            )
            raise VideoError(f"{self.name}: {what} ({_reason(e)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(f"{self.name}: no video stream (streams: {_kinds(self.container)})")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"  # frame and slice threads in FFmpeg's decoder
        rate = self.stream.average_rate or self.stream.base_rate or Fraction(30)
        self.frame_duration = float(1 / rate)  #: seconds between frames (the last span's tail)
        self.duration = _declared_duration(self.container, self.stream)  #: seconds, None if unknown
        self.live = camera
        self.position = 0.0  #: seconds: the last decoded frame's time

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def frames(self, every: float = 1.0, thumbnail: int = 8) -> Iterator[VideoFrame]:
        """The frames to consider, one per ``every`` seconds (0: every frame), each with its grey
        thumbnail (from the luma plane) and its RGB pixels made only if asked for.

        Raises:
            VideoError: the data stops being readable (damaged or truncated file, a lost
                stream): names the source and the time reached, after the frames so far.
        """
        if every < 0 or not math.isfinite(every):
            raise ValueError(f"every must be a finite number of seconds >= 0, got {every}")
        av = _av()
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()  # keeps its scaler between frames
        origin: float | None = None
        due = 0.0
        last = 0.0
        try:
            for frame in self.container.decode(self.stream):
                if frame.time is None:
                    continue
                if origin is None:  # a camera's clock, or a stream that starts late
                    origin = frame.time if self.live else min(frame.time, self._start())
                t = frame.time - origin
                last = self.position = t
                if t + 1e-6 < due:
                    continue
                if every:
                    due = (math.floor(t / every + 1e-6) + 1) * every
                thumb = _luma_thumbnail(frame, thumbnail)
                if thumb is None:  # not planar YUV: FFmpeg's scaler (its filter widens with the scale)
                    small = reformatter.reformat(
                        frame, width=thumbnail, height=thumbnail, format="gray", interpolation="BILINEAR"
                    )
                    thumb = normalised(small.to_ndarray().astype(np.float32) / 255.0)
                yield VideoFrame(t, _rgb(frame), thumb)
        except av.error.FFmpegError as e:
            raise VideoError(f"{self.name}: unreadable at {last:.1f} s ({_reason(e)})") from None
        if not self.live and self.duration and last + max(every, self.frame_duration) + 1.0 < self.duration:
            raise VideoError(
                f"{self.name}: the frames end at {last:.1f} s of the {self.duration:.1f} s it declares (truncated?)"
            )

    def with_progress(self, frames: Iterable[VideoFrame]) -> Iterator[VideoFrame]:
        """``frames`` with a progress bar on stderr in the video's seconds (tqdm: elapsed, ETA;
        no total for a camera)."""
        from tqdm.auto import tqdm

        total = None if self.live or not self.duration else round(self.duration, 1)
        bar = tqdm(total=total, desc=Path(self.name).name, unit="s", leave=False, dynamic_ncols=True, disable=None)
        with bar:
            for frame in frames:
                bar.update(round(frame.time, 1) - bar.n)
                yield frame

    def _start(self) -> float:
        s = self.stream
        return float(s.start_time * s.time_base) if s.start_time is not None and s.time_base else 0.0


#: 8-bit pixel formats whose first plane is the luma (Y), limited range unless "j" (full)
_LUMA_FORMATS = frozenset({"yuv420p", "yuv422p", "yuv444p", "yuv411p", "yuv440p", "nv12", "nv21", "nv16"})
_FULL_RANGE_LUMA = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj411p", "yuvj440p", "gray"})


def _luma_thumbnail(frame, side: int) -> np.ndarray | None:
    """The grey thumbnail straight from the decoded luma plane, as
    :func:`~edgecap.runtime.running_modes.thumbnail` makes it from RGB (the same samples and
    cells), with no colour conversion or scaling of the whole frame; None for other formats."""
    name = frame.format.name
    if name not in _LUMA_FORMATS and name not in _FULL_RANGE_LUMA:
        return None
    plane = frame.planes[0]
    h, w = frame.height, frame.width
    luma = np.frombuffer(plane, np.uint8).reshape(h, plane.line_size)[:, :w]
    step = sample_step(h, w, side)
    sub = luma[::step, ::step]
    if min(sub.shape) < side:
        return None
    cells = grid_means(sub, side)
    grey = cells / 255.0 if name in _FULL_RANGE_LUMA else (cells - 16.0) / 219.0
    return normalised(grey)


def _rgb(frame):
    return lambda: frame.to_ndarray(format="rgb24")


def _check_file(path: Path) -> None:
    try:
        info = os.stat(path)
    except OSError as e:
        raise VideoError(f"{path}: {e.strerror or e}") from None
    if not stat.S_ISREG(info.st_mode):
        raise VideoError(f"{path}: not a regular file")
    if info.st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")


def _declared_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1e6  # AV_TIME_BASE
    return None


def _kinds(container) -> str:
    return ", ".join(s.type for s in container.streams) or "none"


def _reason(e: BaseException) -> str:
    return str(getattr(e, "strerror", None) or e).strip() or type(e).__name__


def timestamp(seconds: float, sep: str = ".") -> str:
    """``HH:MM:SS.mmm`` (``sep`` ``","`` for SubRip)."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def subtitles(spans: Iterable[CaptionSpan], fmt: str = "vtt") -> str:
    """Caption spans as a subtitle file's text: ``"vtt"`` (WebVTT, what an HTML ``<video>``
    track reads) or ``"srt"`` (SubRip), written by webvtt-py.

    Raises:
        ValueError: another format. VideoError: webvtt-py not installed.
    """
    if fmt not in SUBTITLE_FORMATS:
        raise ValueError(f"subtitle format must be one of {SUBTITLE_FORMATS}, got {fmt!r}")
    try:
        import webvtt
    except ImportError:
        raise VideoError("subtitles need webvtt-py: pip install 'edgecap[video]'") from None
    vtt = webvtt.WebVTT()
    for span in spans:
        vtt.captions.append(webvtt.Caption(timestamp(span.start), timestamp(span.end), span.text))
    out = io.StringIO()
    vtt.write(out, format=fmt)
    return out.getvalue()


def span_record(source: str, span: CaptionSpan | None, record: dict) -> dict:
    """The JSON record of one span: ``video``, ``start`` and ``end`` in seconds, ``frames``, then
    the photo record's keys (:func:`edgecap.runtime.captioner.caption_record`) less ``image``;
    ``span`` None: a video that failed (``start`` and ``end`` null, the record its error)."""
    record = {k: v for k, v in record.items() if k != "image"}
    if span is None:
        return {"video": source, "start": None, "end": None, "frames": 0, **record}
    return {"video": source, "start": round(span.start, 3), "end": round(span.end, 3), "frames": span.frames, **record}
