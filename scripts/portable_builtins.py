"""Rewrite the released built-in int8 files with :func:`edgecap.export.portable_ops.rewrite`.

``edgecap export`` applies the rewrite to every new int8 file; this applies it once to the files
released before it, in place, keeping their metadata (with the new flatbuffer digest) and adding
``extra.portable_ops``: what was replaced. A file with nothing to replace is left untouched.

Before writing, each file's captions of ``examples/`` (beam 3, default kernels) are compared
before and after and printed; the test-set figures are rerun with ``edgecap evaluate``
(docs/platforms.md#reference-kernels).

Usage: python scripts/portable_builtins.py [--dir export] [--dry-run]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from edgecap.export.portable_ops import rewrite
from edgecap.paths import examples_dir
from edgecap.runtime import Captioner, CaptionerOptions
from edgecap.runtime import metadata as md
from edgecap.utils import atomic_write_bytes


def captions(data: bytes, meta: md.ModelMetadata) -> list[tuple[str, float]]:
    if meta.task != "captioning":
        return []
    captioner = Captioner(data, meta, CaptionerOptions(beam_size=3, return_attention=False, taggers=()))
    return [(r.best.text, r.best.log_prob) for r in map(captioner.caption, sorted(examples_dir().glob("*.jpg")))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[1] / "export")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    for path in sorted(args.dir.glob("*_int8.tflite")):
        data = path.read_bytes()
        meta = md.read(data, str(path))
        flatbuffer, report = rewrite(md.flatbuffer(data))
        if not report.changed:
            print(f"{path.name}: nothing to replace")
            continue
        extra = {**meta.extra, "portable_ops": {"sums_as_means": report.sums, "float_ops": report.float_ops}}
        new_meta = dataclasses.replace(meta, extra=extra)
        new = md.pack(flatbuffer, new_meta)
        print(
            f"{path.name}: {len(report.sums)} SUM → MEAN, {len(report.float_ops)} ops to float32, {report.skipped or 'none skipped'}"
        )
        for (a, pa), (b, pb) in zip(captions(data, meta), captions(new, md.read(new, str(path)))):
            print(f"  {'same' if a == b else 'DIFFERENT'}: {a!r} ({pa:.3f}) → {b!r} ({pb:.3f})")
        if not args.dry_run:
            atomic_write_bytes(path, new)


if __name__ == "__main__":
    main()
