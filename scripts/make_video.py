"""Write a test video of photo scenes, as a camera would film them: each photo slowly panned and
zoomed, with sensor noise and a slow brightness drift; a hard cut between scenes. For the video
tests, `edgecap bench --video` and the scene threshold (docs/runtime.md#video-and-cameras).

    python scripts/make_video.py examples/*.jpg --out /tmp/scenes.mp4 --seconds 20 --size 1280x720 --fps 30

With one photo and --seconds 60 it is the static scene of the bench.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def scene_frames(photo: Image.Image, frames: int, size: tuple[int, int], rng: np.random.Generator, motion: float):
    """``frames`` RGB frames (H, W, 3) uint8 of one photo: a crop window drifting by ``motion``
    of the photo and zooming in slightly, noise σ 3 grey levels, brightness ±4 %."""
    w, h = size
    photo = photo.convert("RGB").resize((int(w * 1.25), int(h * 1.25)), Image.Resampling.BILINEAR)
    pw, ph = photo.size
    for i in range(frames):
        a = i / max(1, frames - 1)
        zoom = 1.0 - 0.1 * motion * a  # the window's share of the photo
        cw, ch = pw * 0.8 * zoom, ph * 0.8 * zoom
        x = (pw - cw) * (0.5 + motion * (a - 0.5))
        y = (ph - ch) * 0.5
        crop = photo.resize((w, h), Image.Resampling.BILINEAR, box=(x, y, x + cw, y + ch))
        pixels = np.asarray(crop, np.float32) * (1.0 + 0.04 * np.sin(6.28 * a))
        pixels += rng.normal(0.0, 3.0, pixels.shape)
        yield np.clip(pixels, 0, 255).astype(np.uint8)


def write_video(
    photos: Sequence[str | Path],
    out: str | Path,
    seconds: float = 2.0,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    motion: float = 0.1,
    seed: int = 0,
    codec: str = "libx264",
) -> Path:
    """A video of ``seconds`` per photo at ``fps``; returns ``out``. Scene k starts at ``k * seconds``.
    An MP4's index comes first (faststart), as a streamed file's does."""
    import av

    rng = np.random.default_rng(seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if out.suffix in (".mp4", ".mov", ".m4v") else {}
    with av.open(str(out), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for photo in photos:
            with Image.open(photo) as img:
                for pixels in scene_frames(img, round(seconds * fps), size, rng, motion):
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per photo")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    parser.add_argument("--motion", type=float, default=0.1, help="pan across this share of the photo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    out = write_video(args.photos, args.out, args.seconds, args.fps, (w, h), args.motion, args.seed)
    print(f"{out}: {len(args.photos)} scenes x {args.seconds} s at {args.fps} fps, {w}x{h}")


if __name__ == "__main__":
    main()
