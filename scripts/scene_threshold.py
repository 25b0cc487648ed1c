"""Choose the scene-change threshold (``SceneOptions.threshold``) on a test video: photos filmed as
``scripts/make_video.py`` films them (pan, zoom, noise, brightness drift), a hard cut between
them. Prints, for thumbnails of each size, how far the frames of one scene drift from its first
frame (what must stay below the threshold) and how far each cut goes from the scene before it
(what must lie above).

    python scripts/scene_threshold.py ../shared/data/coco_dev --photos 40 --seconds 3 --motion 0.1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from make_video import write_video  # noqa: E402

from edgecap.runtime.running_modes import SceneGate, SceneOptions  # noqa: E402
from edgecap.runtime.video import VideoSource  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a folder of photos (e.g. ../shared/data/coco_dev)")
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--motion", type=float, default=0.3)
    parser.add_argument("--sizes", default="8,16,32", help="thumbnail sides to compare")
    args = parser.parse_args()
    photos = sorted(p for p in Path(args.folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    photos = photos[: args.photos]
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(photos, Path(tmp) / "scenes.mp4", args.seconds, args.fps, (640, 360), args.motion)
        per_scene = round(args.seconds * args.fps)
        print(f"{len(photos)} scenes x {args.seconds} s at {args.fps} fps, pan {args.motion}; change in 0..1")
        print("| thumbnail | within a scene: median / p99 / max | a cut: min / p1 / median |")
        print("| --- | --- | --- |")
        for side in (int(s) for s in args.sizes.split(",")):
            with VideoSource(video) as source:
                thumbs = [f.thumbnail for f in source.frames(0, side)]
            within, cuts = [], []
            gate = SceneGate(SceneOptions(thumbnail=side))
            for k in range(len(photos)):
                scene = thumbs[k * per_scene : (k + 1) * per_scene]
                gate.last_thumbnail = scene[0]
                within += [gate.change(t) for t in scene[1:]]
                if k:
                    before = thumbs[(k - 1) * per_scene : k * per_scene]
                    cuts.append(min(float(np.abs(scene[0] - b).mean()) for b in before))
            w, c = np.asarray(within), np.asarray(cuts)
            print(
                f"| {side} | {np.median(w):.3f} / {np.percentile(w, 99):.3f} / {w.max():.3f} "
                f"| {c.min():.3f} / {np.percentile(c, 1):.3f} / {np.median(c):.3f} |"
            )


if __name__ == "__main__":
    main()
