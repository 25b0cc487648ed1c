"""Record what the installed interpreter backend makes of ``examples/`` with every built-in model,
and compare two such records (LiteRT against tflite-runtime).

Captioners: ``edgecap caption --json`` (beam 3, 3-best, the default tagger, so the tags are
recorded too); retrieval models: ``edgecap search --json`` for three sentences. One JSON Lines
file per model and kernel set, ``MODEL.KERNELS.jsonl``, in OUT, and the backend's name in
``OUT/backend.txt``. ``.ci/run`` records with LiteRT, then runs ``tests/test_tflite_runtime.py``
in a venv with tflite-runtime only, which records again and compares.

Usage: python scripts/backend_record.py OUT [--kernels builtin,default]
       python scripts/backend_record.py --compare A B
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

QUERIES = ("a cat", "a child holding a cup", "a man in a space suit")
#: log-probabilities closer than this count as equal (the decoder's int8 log-probs step by 1/16)
LOG_PROB_TOLERANCE = 1e-3


def record(out: Path, kernels: tuple[str, ...]) -> str:
    """Write ``out/MODEL.KERNELS.jsonl`` for every built-in model and kernel set; return the backend.

    Raises:
        RuntimeError: a command failed (its output in the message).
    """
    from click.testing import CliRunner

    from edgecap.cli import main as cli
    from edgecap.paths import examples_dir
    from edgecap.runtime import Captioner
    from edgecap.runtime.presets import list_presets

    out.mkdir(parents=True, exist_ok=True)
    runner = CliRunner()
    presets = list_presets()
    for preset in presets:
        for k in kernels:
            if preset.task == "captioning":
                args = ["caption", str(examples_dir()), "--model", preset.name, "--beam-size", "3", "--nbest", "3"]
            else:
                args = ["search", *QUERIES, "--images", str(examples_dir()), "--model", preset.name, "--top", "3"]
            result = runner.invoke(cli, [*args, "--json", "--kernels", k])
            if result.exit_code != 0:
                raise RuntimeError(f"edgecap {' '.join(args)} --kernels {k}: exit {result.exit_code}: {result.stderr}")
            lines = [json.loads(line) for line in result.stdout.splitlines()]
            for line in lines:
                line.pop("timings_ms", None)
                if "image" in line:
                    line["image"] = Path(line["image"]).name
            (out / f"{preset.name}.{k}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    backend = Captioner.from_preset(next(p.name for p in presets if p.task == "captioning")).backend
    (out / "backend.txt").write_text(backend + "\n")
    return backend


def _close(a, b) -> bool:
    """Equal JSON values, numbers to :data:`LOG_PROB_TOLERANCE`."""
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and math.isclose(a, b, abs_tol=LOG_PROB_TOLERANCE)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


def compare(a: Path, b: Path) -> dict[str, list[str]]:
    """File name → the differences between the two records (``[]``: the same lines).

    Raises:
        FileNotFoundError: ``b`` lacks a file of ``a``.
    """
    out = {}
    for left in sorted(a.glob("*.jsonl")):
        lines_a = [json.loads(x) for x in left.read_text().splitlines()]
        lines_b = [json.loads(x) for x in (b / left.name).read_text().splitlines()]
        diffs = [] if len(lines_a) == len(lines_b) else [f"{len(lines_a)} lines against {len(lines_b)}"]
        for x, y in zip(lines_a, lines_b):
            if not _close(x, y):
                what = x.get("image") or x.get("query")
                best = (x.get("caption"), x.get("log_prob"), y.get("caption"), y.get("log_prob"))
                diffs.append(
                    f"{what}: {best[0]!r} ({best[1]}) / {best[2]!r} ({best[3]})" if best[0] else f"{what}: {x} / {y}"
                )
        out[left.name] = diffs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--kernels", default="builtin,default")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = parser.parse_args()
    if args.compare:
        a, b = args.compare
        names = [(p / "backend.txt").read_text().strip() for p in (a, b)]
        for name, diffs in compare(a, b).items():
            print(f"{name}: {'same' if not diffs else f'{len(diffs)} differ'} ({names[0]} / {names[1]})")
            for d in diffs:
                print("  " + d)
        return
    if args.out is None:
        parser.error("OUT or --compare A B")
    print(record(args.out, tuple(args.kernels.split(","))))


if __name__ == "__main__":
    main()
