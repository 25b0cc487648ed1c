"""How the tests' bare-clone fixture depends on its random encoder's draw.

Without ``../shared`` the tests train their tiny models on a random MobileNetV2
(``conftest.bare_data``, drawn from ``conftest.BARE_SEED``). For each seed, this repeats the
steps of ``tests/test_adapt.py::test_adapt_extends_the_vocabulary_and_the_exported_int8_file_verifies``
without ``../shared``: the tiny run, its adaptation to the photos with a new word, and the int8
export, and prints the export's verification against Keras (token agreement: the share of
greedy words chosen alike; the bar is 0.50). About a minute per seed.

Usage: python scripts/bare_fixture_agreement.py [--seeds 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12, help="seeds 0 .. N-1")
    args = parser.parse_args()
    os.environ["EDGECAP_SHARED"] = "/nonexistent/shared"  # as a bare clone
    os.environ["EDGECAP_CACHE_DIR"] = tempfile.mkdtemp(prefix="edgecap-cache-")
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    warnings.simplefilter("ignore")

    from test_adapt import _with_a_new_word

    from edgecap.export.command import run_export
    from edgecap.export.exporter import ExportError
    from edgecap.training.adapt import adapt
    from edgecap.training.trainer import train

    import conftest

    for seed in range(args.seeds):
        conftest.BARE_SEED = seed
        conftest._BARE.clear()
        tmp = Path(tempfile.mkdtemp(prefix=f"edgecap-bare-seed{seed}-"))
        train(conftest.tiny_config(tmp / "tiny", False, max_steps_per_epoch=15), tmp / "tiny")  # as conftest.tiny_run
        folder = _with_a_new_word(conftest.bare_data()[0], tmp / "bare")
        overrides = ["train.epochs=1", "train.learning_rate=0.0", "train.batch_size=8", "train.max_steps_per_epoch=3"]
        adapt(tmp / "tiny", folder, tmp / "run", 0.25, 0.25, 5, 1, overrides)  # as the test
        try:
            result = run_export(
                tmp / "run", "int8", tmp / "adapted_int8.tflite", calibration_images=16, verify_images=24
            )
            summary = result.report.summary()
        except ExportError as e:
            summary = str(e).splitlines()[-1]
        print(f"seed {seed}: {summary}", flush=True)


if __name__ == "__main__":
    main()
