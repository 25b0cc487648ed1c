"""Videos, cameras and the running modes (issue 45): videos made in the test from the example
photos with scripts/make_video.py (panned, zoomed, noisy, as a camera films them)."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av")
webvtt = pytest.importorskip("webvtt")

from edgecap.runtime import Captioner, CaptionerOptions  # noqa: E402
from edgecap.runtime.running_modes import RunningMode, SceneOptions  # noqa: E402
from edgecap.runtime.video import VideoError, VideoSource, subtitles  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCENE_SECONDS = 2.0


def _make_video():
    spec = importlib.util.spec_from_file_location("make_video", REPO / "scripts" / "make_video.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_video


write_video = _make_video()


@pytest.fixture(scope="module")
def photos(examples) -> list[Path]:
    return sorted(examples.glob("*.jpg"))


@pytest.fixture(scope="module")
def scenes(photos, tmp_path_factory) -> Path:
    """Three scenes of 2 s at 10 fps."""
    return write_video(photos, tmp_path_factory.mktemp("video") / "scenes.mp4", SCENE_SECONDS, fps=10)


@pytest.fixture(scope="module")
def captioner() -> Captioner:
    return Captioner.from_preset("show_attend_tell_flickr8k", CaptionerOptions(num_threads=1))


def _frame_at(video: Path, seconds: float) -> np.ndarray:
    with VideoSource(video) as source:
        for frame in source.frames(0):
            if abs(frame.time - seconds) < 1e-3:
                return frame.image()
    raise AssertionError(f"no frame at {seconds} s")


@pytest.mark.parametrize("every", [0.0, 0.5])
def test_three_scenes_give_three_spans_each_captioned_as_its_first_frame(captioner, scenes, every):
    spans = list(captioner.caption_video(scenes, every=every))
    assert len(spans) == 3, [(s.start, s.end, s.text) for s in spans]
    step = every or 0.1
    for k, span in enumerate(spans):
        assert abs(span.start - k * SCENE_SECONDS) <= step + 1e-6, span.start
        assert span.end == pytest.approx(spans[k + 1].start if k < 2 else 3 * SCENE_SECONDS)
        assert span.text == captioner.caption(_frame_at(scenes, span.start)).text


def test_a_static_scene_is_captioned_once_per_max_interval(photos, tmp_path):
    video = write_video(photos[:1], tmp_path / "static.mp4", seconds=20, fps=5, size=(160, 120), motion=0.0)
    options = CaptionerOptions(num_threads=1, taggers=(), scene=SceneOptions(min_interval=1.0, max_interval=5.0))
    spans = list(Captioner.from_preset("show_attend_tell_flickr8k", options).caption_video(video, every=0))
    assert [s.start for s in spans] == [0.0, 5.0, 10.0, 15.0]  # 100 frames, 20 / 5 captions
    assert sum(s.frames for s in spans) == 100


def test_video_mode_holds_the_caption_and_refuses_time_going_back(photos):
    options = CaptionerOptions(num_threads=1, taggers=(), running_mode=RunningMode.VIDEO)
    captioner = Captioner.from_preset("show_attend_tell_flickr8k", options)
    a, b = (np.asarray(Image.open(p).convert("RGB")) for p in photos[:2])
    first = captioner.caption_for_video(a, 0)
    held = captioner.caption_for_video(a, 1500)
    changed = captioner.caption_for_video(b, 3000)
    assert first.new and not held.new and held.text == first.text and held.captioned_ms == 0
    assert changed.new and changed.change > options.scene.threshold
    with pytest.raises(ValueError, match="3000 ms"):
        captioner.caption_for_video(b, 3000)
    with pytest.raises(ValueError, match="VIDEO"):
        captioner.caption_async(b, 4000)
    with pytest.raises(ValueError, match="LIVE_STREAM"):
        CaptionerOptions(running_mode=RunningMode.LIVE_STREAM)


def test_live_stream_faster_than_captioning_stays_bounded_and_in_order(photos):
    """5,000 frames handed in as fast as they come, two scenes alternating every 500 frames."""
    seen: list[tuple[int, bool]] = []
    order_lock = threading.Lock()

    def callback(result, timestamp_ms):
        with order_lock:
            seen.append((timestamp_ms, result.new))

    options = CaptionerOptions(
        num_threads=1, taggers=(), running_mode=RunningMode.LIVE_STREAM, result_callback=callback
    )
    frames = [np.asarray(Image.open(p).convert("RGB").resize((64, 48))) for p in photos[:2]]
    with Captioner.from_preset("show_attend_tell_flickr8k", options) as captioner:
        tracemalloc.start()
        for i in range(5000):
            captioner.caption_async(frames[(i // 500) % 2].copy(), i * 33)
            if i == 1000:
                captioner.flush()
                base = tracemalloc.take_snapshot()
        captioner.flush()
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(base, "filename"))
        tracemalloc.stop()
        dropped = captioner._live.dropped
    with pytest.raises(ValueError, match="closed"):
        captioner.caption_async(frames[0], 5000 * 33)
    stamps = [t for t, _ in seen]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert stamps[-1] == 4999 * 33  # the newest frame is always answered
    assert dropped > 0 and len(seen) + dropped == 5000  # replaced, never queued
    captioned = [t for t, new in seen if new]
    assert (
        seen[0][1]
        and all(  # a new caption only for a changed scene, or after max_interval
            (b // 33 // 500) % 2 != (a // 33 // 500) % 2 or b - a >= 10_000 for a, b in zip(captioned, captioned[1:])
        )
    )
    assert grown < 2_000_000, grown


def test_subtitles_parse_back_with_the_spans_times(captioner, scenes, tmp_path):
    spans = list(captioner.caption_video(scenes, every=0.5))
    (tmp_path / "a.vtt").write_text(subtitles(spans, "vtt"))
    (tmp_path / "a.srt").write_text(subtitles(spans, "srt"))
    for parsed in (webvtt.read(tmp_path / "a.vtt"), webvtt.from_srt(tmp_path / "a.srt")):
        assert [c.text for c in parsed.captions] == [s.text for s in spans]
        times = [(_seconds(c.start), _seconds(c.end)) for c in parsed.captions]
        assert times == [(pytest.approx(s.start, abs=1e-3), pytest.approx(s.end, abs=1e-3)) for s in spans]


def _seconds(stamp: str) -> float:
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgecap.cli", "caption", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def test_cli_writes_spans_as_json_lines_and_subtitles(scenes):
    out = _cli(scenes, "--json", "--every", "0.5")
    assert out.returncode == 0, out.stderr[-2000:]
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["start"] for r in records] == [0.0, 2.0, 4.0] and records[-1]["end"] == 6.0
    assert all(r["video"] == str(scenes) and r["caption"] and r["tags"] is not None for r in records)
    vtt = _cli(scenes, "--every", "0.5", "--format", "vtt")
    assert [c.text for c in webvtt.from_string(vtt.stdout).captions] == [r["caption"] for r in records]


def test_cli_truncated_video_writes_the_spans_so_far_then_names_the_file_and_time(scenes, tmp_path):
    damaged = tmp_path / "truncated.mp4"
    data = scenes.read_bytes()
    damaged.write_bytes(data[: len(data) * 2 // 3])
    out = _cli(damaged, "--json", "--every", "0.5")
    records = [json.loads(line) for line in out.stdout.splitlines()]
    errors = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(errors) == 1 and "Traceback" not in out.stderr
    assert str(damaged) in errors[0] and " s " in errors[0], errors
    assert records[0]["caption"] and records[-1]["error"] == errors[0].removeprefix("error: ")
    assert 1 <= len(records) - 1 <= 3


def test_cli_refuses_unreadable_sources_in_one_line(tmp_path):
    import av

    audio_only = tmp_path / "sound.mp4"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        container.mux(stream.encode())
    not_video = tmp_path / "text.mp4"
    not_video.write_text("not a video\n")
    for args, expected in (
        ([audio_only], "no video stream"),
        ([not_video], "cannot open the video"),
        (["--camera", "97"], "/dev/video97: cannot open the camera"),
    ):
        out = _cli(*args)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and expected in out.stderr, out.stderr
    with pytest.raises(VideoError, match="no such file|No such file"):
        list(Captioner.from_preset("show_attend_tell_flickr8k").caption_video(tmp_path / "missing.mp4"))


def test_ctrl_c_mid_video_exits_130_with_whole_records(photos, tmp_path):
    video = write_video(photos * 40, tmp_path / "long.mp4", seconds=1.0, fps=4, size=(96, 72))
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgecap.cli", "caption", str(video), "--json", "--every", "0", "--tagger", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    lines = [first, *rest.splitlines(keepends=True)]
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert 1 <= len(lines) < 120 and all(json.loads(line)["caption"] for line in lines)


def test_scene_options_are_checked():
    with pytest.raises(ValueError, match="min_interval"):
        SceneOptions(min_interval=5, max_interval=1)
    with pytest.raises(ValueError, match="threshold"):
        SceneOptions(threshold=-0.1)


def test_bench_video_reports_decoding_against_the_pipeline_and_live_latency(scenes):
    from edgecap.bench_video import format_video_report, run_video_bench
    from edgecap.runtime.presets import resolve_model

    report = run_video_bench(resolve_model(None), scenes, threads=1)
    assert report["frames"] == 60 and report["captions"] == 3
    live = report["live_stream"]
    assert live["frames"] == 60 and live["captioned"] >= 3 and live["latency"]["median_ms"] > 0
    text = format_video_report(report)
    assert "decoding alone" in text and "the whole pipeline (3 captions)" in text
