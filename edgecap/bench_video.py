"""``edgecap bench --video FILE``: what captioning a video costs beside decoding it, and LIVE_STREAM's
latency from a frame's arrival to its callback (issue 45). Figures of one run on one machine:
compare them with each other, not across machines."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np

from edgecap.runtime import Captioner, CaptionerOptions
from edgecap.runtime.running_modes import RunningMode
from edgecap.runtime.video import VideoSource


def _decode_only(video: Path) -> tuple[int, float]:
    """Frames and seconds to decode every frame, nothing else."""
    with VideoSource(video) as source:
        t0 = time.perf_counter()
        n = sum(1 for _ in source.container.decode(source.stream))
        return n, time.perf_counter() - t0


def _gated(video: Path, thumbnail: int) -> tuple[int, float]:
    """Frames and seconds to decode every frame and make its thumbnail (the scene rule's input)."""
    with VideoSource(video) as source:
        t0 = time.perf_counter()
        n = sum(1 for _ in source.frames(0, thumbnail))
        return n, time.perf_counter() - t0


def _pipeline(captioner: Captioner, video: Path) -> tuple[int, float]:
    """Captions and seconds of ``caption_video(every=0)``: every frame considered."""
    t0 = time.perf_counter()
    spans = list(captioner.caption_video(video, every=0))
    return len(spans), time.perf_counter() - t0


def _live(model: Path, options: CaptionerOptions, video: Path) -> dict:
    """LIVE_STREAM fed the file's frames at their own pace (as a camera gives them): the latency
    from ``caption_async`` to the callback, for every answered frame and for the captioned ones."""
    arrivals: dict[int, float] = {}
    answered: list[tuple[float, bool]] = []
    lock = threading.Lock()

    def callback(result, timestamp_ms: int) -> None:
        now = time.perf_counter()
        with lock:
            answered.append(((now - arrivals.pop(timestamp_ms)) * 1e3, result.new))

    live_options = dataclasses.replace(options, running_mode=RunningMode.LIVE_STREAM, result_callback=callback)
    live = Captioner.from_file(model, live_options)
    frames = 0
    with VideoSource(video) as source, live:
        start = time.perf_counter()
        for frame in source.container.decode(source.stream):
            if frame.time is None:
                continue
            pixels = frame.to_ndarray(format="rgb24")
            delay = start + frame.time - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            ms = round(frame.time * 1e3)
            with lock:
                arrivals[ms] = time.perf_counter()
            live.caption_async(pixels, ms)
            frames += 1  # a frame replaced before its turn gets no callback
        live.flush()
    every = np.asarray([ms for ms, _ in answered])
    new = np.asarray([ms for ms, is_new in answered if is_new])

    def stats(values: np.ndarray) -> dict:
        if not len(values):
            return {"median_ms": None, "p95_ms": None}
        return {"median_ms": round(float(np.median(values)), 2), "p95_ms": round(float(np.percentile(values, 95)), 2)}

    return {
        "frames": frames,
        "answered": len(answered),
        "captioned": int(len(new)),
        "latency": stats(every),
        "latency_captioned": stats(new),
    }


def run_video_bench(model: Path, video: Path, threads: int = 1, live: bool = True) -> dict:
    """The figures of ``edgecap bench --video``.

    Returns:
        a dict: ``frames``, ``seconds`` (the video's), frames/s of decoding alone, of decoding
        with the scene rule's thumbnails, and of the whole pipeline with every frame considered
        (``--every 0``), its captions, and LIVE_STREAM's latency (``live``).
    """
    options = CaptionerOptions(num_threads=threads)
    captioner = Captioner.from_file(model, options)
    with VideoSource(video) as source:
        seconds = source.duration
        size = f"{source.stream.width}x{source.stream.height}"
        rate = 1 / source.frame_duration
    frames, decode_s = _decode_only(video)
    _, gated_s = _gated(video, options.scene.thumbnail)
    captions, pipeline_s = _pipeline(captioner, video)
    report = {
        "video": str(video),
        "size": size,
        "fps": round(rate, 2),
        "seconds": round(seconds, 2) if seconds else None,
        "frames": frames,
        "threads": threads,
        "model": str(model),
        "decode_fps": round(frames / decode_s, 1),
        "decode_and_thumbnail_fps": round(frames / gated_s, 1),
        "pipeline_fps": round(frames / pipeline_s, 1),
        "captions": captions,
        "scene": dataclasses.asdict(options.scene),
    }
    if live:
        report["live_stream"] = _live(model, options, video)
    return report


def format_video_report(r: dict) -> str:
    lines = [
        f"video {r['video']}: {r['size']}, {r['fps']} fps, {r['seconds']} s, {r['frames']} frames; model {Path(r['model']).name}, {r['threads']} thread(s)",
        f"scene rule: {r['scene']}",
        "",
        "| every frame considered (--every 0) | frames/s |",
        "| --- | --- |",
        f"| decoding alone | {r['decode_fps']} |",
        f"| decoding + the scene rule's thumbnails | {r['decode_and_thumbnail_fps']} |",
        f"| the whole pipeline ({r['captions']} captions) | {r['pipeline_fps']} |",
    ]
    live = r.get("live_stream")
    if live:
        a, c = live["latency"], live["latency_captioned"]
        lines += [
            "",
            f"LIVE_STREAM, frames fed at the file's pace: {live['frames']} frames, {live['answered']} answered, {live['captioned']} captioned",
            "| from caption_async to the callback | median ms | p95 ms |",
            "| --- | --- | --- |",
            f"| every answered frame | {a['median_ms']} | {a['p95_ms']} |",
            f"| captioned frames | {c['median_ms']} | {c['p95_ms']} |",
        ]
    return "\n".join(lines)
