"""Photos per second of ``edgecap caption DIR --json`` with 1 and with more worker processes.

Runs each setting ``--repeats`` times as a user would (a fresh process, model loading included),
keeps the fastest, checks that every setting wrote the same records (timings aside), and prints
the machine's load average before and after, since another busy process halves what two
workers can gain on two cores.

Usage: python scripts/workers_speed.py [--images DIR] [--limit 1000] [--workers 1,2] [--repeats 3]
       [caption options, e.g. --model NAME --tagger none]
Default images: the first --limit Flickr8k test photos in ../shared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from edgecap.bench import caption_dir_run


def flickr_test_photos(limit: int) -> Path:
    """A temporary folder of links to the first ``limit`` Flickr8k test photos."""
    from edgecap.utils import shared_dir

    flickr = shared_dir() / "data" / "flickr8k"
    names = (flickr / "Flickr_8k.testImages.txt").read_text().split()[:limit]
    folder = Path(tempfile.mkdtemp(prefix="workers-speed-"))
    for name in names:
        (folder / name).symlink_to(flickr / "Images" / name)
    return folder


def run(images: Path, workers: int, extra: list[str]) -> tuple[float, list[dict]]:
    """Seconds for one ``edgecap caption`` process, and its records without timings."""
    return caption_dir_run(images, None, ("--workers", str(workers), *extra))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    args, extra = parser.parse_known_args()
    images = args.images or flickr_test_photos(args.limit)
    count = sum(1 for p in images.iterdir() if p.is_file())
    print(f"{count} photos in {images}; cores {os.cpu_count()}; load average before {os.getloadavg()}")
    baseline, first = None, None
    for workers in map(int, args.workers.split(",")):
        best, records = float("inf"), None
        for _ in range(args.repeats):
            seconds, records = run(images, workers, extra)
            best = min(best, seconds)
        rate = count / best
        baseline = baseline or rate
        first = first or records
        same = "same records" if records == first else "RECORDS DIFFER"
        print(
            f"--workers {workers}: {best:.2f} s (fastest of {args.repeats}), {rate:.1f} photos/s, {rate / baseline:.2f}x, {same}"
        )
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
