"""What every export shares: the photos it calibrates and verifies on, and the rule that a file
reaches its path only once it passed verification (:mod:`edgecap.export.command` for captioners,
:mod:`edgecap.export.embedding` for the alignment model)."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecap.data.readers import CaptionedImage, DatasetError
from edgecap.export.exporter import ExportError
from edgecap.runtime import metadata as md
from edgecap.utils import atomic_write_bytes, atomic_write_text


@dataclass
class ExportResult:
    """A verified export.

    Attributes:
        path: the written ``.tflite`` file.
        size_bytes: its size.
        report: the verification report (:class:`~edgecap.export.verify.VerifyReport`, or an
            :class:`~edgecap.export.embedding.EmbeddingReport` for an alignment model).
    """

    path: Path
    size_bytes: int
    report: object


def spread(items: list, n: int) -> list:
    """``n`` items evenly spaced over ``items`` (varied photos for calibration)."""
    if n >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).astype(int)]


def example_items() -> list[CaptionedImage]:
    """The photos in ``examples/``, each with a placeholder caption."""
    from edgecap.paths import examples_dir

    photos = sorted(p for p in examples_dir().glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [CaptionedImage(p.name, p, ["a photo"]) for p in photos]


def calibration_and_check(
    cfg, data_root: str | None, calibration_images: int, verify_images: int
) -> tuple[list[CaptionedImage], list[CaptionedImage]]:
    """``(calibration photos, verification photos)``: spread over the run's training and dev
    splits (a dev split smaller than ``verify_images`` topped up with training photos: the
    check is agreement with Keras, and a BLEU-4 on a dozen photos is noise); without the dataset on this machine, the example photos for both (with a warning:
    an int8 file calibrated on three photos is poor and usually fails verification)."""
    from edgecap.runs import read_splits

    try:
        splits = read_splits(cfg, ("train", "dev"), data_root)
        check = spread(splits["dev"], verify_images)
        if len(check) < verify_images:  # a small folder: training photos too (agreement, not quality, is checked)
            dev = {it.image_id for it in check}
            check += spread([it for it in splits["train"] if it.image_id not in dev], verify_images - len(check))
        return spread(splits["train"], calibration_images), check
    except DatasetError as e:
        examples = example_items()
        warnings.warn(
            f"{e}; calibrating and verifying on the {len(examples)} example photos instead. int8 calibration needs a few hundred real photos "
            "of the training set: point --data-root (or $EDGECAP_DATA_ROOT) at the dataset folder",
            stacklevel=3,
        )
        return examples, examples


def keep_if_verified(staged: Path, output: Path, report) -> ExportResult:
    """Write ``report`` as ``<output>.verify.json``; then the staged file as ``output``, marked
    verified, if the report passed.

    Raises:
        ExportError: verification failed; the staged file is kept as ``<output>.rejected``,
            still marked unverified so that the runtime refuses it.
    """
    atomic_write_text(output.with_name(output.name + ".verify.json"), json.dumps(report.as_dict(), indent=1))
    if not report.passed:
        rejected = output.with_name(output.name + ".rejected")
        os.replace(staged, rejected)
        raise ExportError(
            f"{output}: verification failed; the file is kept as {rejected} (marked unverified: "
            f"load it with allow_unverified=True to inspect it)\n{report.summary()}"
        )
    data, meta = md.read_file(staged, allow_unverified=True)
    atomic_write_bytes(output, md.pack(md.flatbuffer(data), meta, verified=True))
    return ExportResult(output, output.stat().st_size, report)
