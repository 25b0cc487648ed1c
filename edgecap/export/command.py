"""The ``edgecap export`` job: load a run, convert, verify, and only then put the file in place."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecap.data.readers import CaptionedImage, DatasetError
from edgecap.export.exporter import export_model, representative_dataset
from edgecap.export.verify import VerifyReport, verify_export
from edgecap.runtime import metadata as md
from edgecap.utils import atomic_write_bytes, atomic_write_text, work_dir


@dataclass
class ExportResult:
    path: Path
    size_bytes: int
    report: VerifyReport  #: an EmbeddingReport for an alignment model


def _spread(items: list, n: int) -> list:
    """``n`` items evenly spaced over ``items`` (varied photos for calibration)."""
    if n >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).astype(int)]


def _example_items() -> list[CaptionedImage]:
    from edgecap.paths import examples_dir

    photos = sorted(p for p in examples_dir().glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [CaptionedImage(p.name, p, ["a photo"]) for p in photos]


def run_export(source: str | Path, mode: str, output: str | Path | None, data_root: str | None = None, calibration_images: int = 300, verify_images: int = 100, version: str = "0",
               full_integer: bool = False) -> ExportResult:
    """Export ``source`` (a run directory) in ``mode``; verify against Keras; write ``output``.

    ``output`` None writes ``./<model name>_<dataset>_<mode>.tflite``. Calibration uses
    training photos and verification dev photos of the run's dataset; when the dataset is not
    on this machine both fall back to the photos in ``examples/`` (with a warning: an int8
    model calibrated on three photos is poor and usually fails verification).

    ``int8`` keeps the encoder's stem in float32 (``spec.int8_float_layers``) unless
    ``full_integer``.

    Also writes ``<output>.verify.json``: the verification report (agreement with Keras on
    the check photos, see :class:`edgecap.export.verify.VerifyReport`), pass or fail.

    Raises:
        ExportError: verification failed (the file is kept as ``<output>.rejected``, marked
            unverified so that the runtime refuses it).

    Returns:
        the written file, its size and the verification report.
    """
    from edgecap.export.exporter import ExportError
    from edgecap.runtime import Captioner, CaptionerOptions
    from edgecap.training.trainer import load_run, read_splits

    cfg, vocab, model = load_run(source)
    from edgecap.models import registry

    task = registry.get(cfg.model.architecture).task
    if task == "attributes":
        raise ExportError(f"{source}: an attribute detector is not exported on its own; it runs inside the encode signature of a semantic attention captioner")
    if task == "retrieval":
        from edgecap.export.embedding import run_alignment_export

        return run_alignment_export(source, cfg, vocab, model, mode, output, data_root, calibration_images, verify_images, version, full_integer)
    try:
        splits = read_splits(cfg, ("train", "dev"), data_root)
        calib, check = _spread(splits["train"], calibration_images), _spread(splits["dev"], verify_images)
    except DatasetError as e:
        warnings.warn(f"{e}; calibrating and verifying on the {len(_example_items())} example photos instead. int8 calibration needs a few hundred real photos "
                      "of the training set: point --data-root (or $EDGECAP_DATA_ROOT) at the dataset folder", stacklevel=2)
        calib = check = _example_items()
    name = f"{cfg.model.model_name()}_{cfg.data.dataset}"
    output = Path(output) if output else Path(f"{name}_{mode}.tflite")

    def calibration():
        return representative_dataset(model, [it.path for it in calib], [it.captions[0] for it in calib], vocab)

    extra = {"source_run": str(source), "dataset": cfg.data.dataset, "calibration_images": len(calib) if mode == "int8" else 0}
    # Everything before verification passes lives in one scratch folder beside the output
    # (removed at the end, or by the next export if this process is killed), and the staged
    # file is marked unverified, so the runtime refuses it wherever it ends up.
    scratch = work_dir(output.resolve().parent, f".{output.name}.export-")
    try:
        staged = export_model(model, vocab, scratch / "staged.tflite", mode, calibration if mode == "int8" else None, name=name, version=version, architecture=cfg.model.architecture,
                              max_length=cfg.decode.max_length, beam_size=cfg.decode.beam_size, length_penalty=cfg.decode.length_penalty,
                              no_repeat_ngram_size=cfg.decode.no_repeat_ngram_size, extra=extra, verified=False, scratch_dir=scratch, full_integer=full_integer)
        captioner = Captioner.from_file(staged, CaptionerOptions(beam_size=1), allow_unverified=True)
        report = verify_export(model, captioner, [it.path for it in check], [it.captions for it in check], mode, cfg.decode.max_length)
        atomic_write_text(output.with_name(output.name + ".verify.json"), json.dumps(report.as_dict(), indent=1))
        if not report.passed:
            rejected = output.with_name(output.name + ".rejected")
            os.replace(staged, rejected)
            raise ExportError(f"{output}: verification failed; the file is kept as {rejected} (marked unverified: "
                              f"load it with Captioner.from_file(..., allow_unverified=True) to inspect it)\n{report.summary()}")
        data, meta = md.read_file(staged, allow_unverified=True)
        atomic_write_bytes(output, md.pack(md.flatbuffer(data), meta, verified=True))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ExportResult(output, output.stat().st_size, report)
