"""Cold start of ``edgecap caption PHOTO``: a fresh process each time, the fastest of N.

Byte-compiled files are allowed (``PYTHONDONTWRITEBYTECODE`` is cleared, and one run before the
timed ones writes them), as after a ``pip install``; otherwise every start compiles the sources.

Usage: python scripts/cold_start.py [--repeats 9] [--photo PHOTO] [caption options, e.g. --tagger none]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--photo", default=str(Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"))
    args, extra = parser.parse_known_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmd = [sys.executable, "-m", "edgecap.cli", "caption", args.photo, *extra]
    subprocess.run(cmd, env=env, capture_output=True, check=True)  # writes the .pyc files
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    print(f"{' '.join(cmd[3:])}: fastest of {args.repeats} {min(times):.3f} s; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
