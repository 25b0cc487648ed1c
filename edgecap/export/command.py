"""The ``edgecap export`` job: load a run, convert, verify, and only then put the file in place."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgecap.export.exporter import export_model, representative_dataset
from edgecap.export.staging import ExportResult, calibration_and_check, keep_if_verified
from edgecap.export.verify import verify_export
from edgecap.utils import work_dir


def run_export(
    source: str | Path,
    mode: str,
    output: str | Path | None,
    data_root: str | None = None,
    calibration_images: int = 300,
    verify_images: int = 100,
    version: str = "0",
    full_integer: bool = False,
) -> ExportResult:
    """Export ``source`` (a run directory) in ``mode``; verify against Keras; write ``output``.

    The model's task (:mod:`edgecap.models.registry`) says how: a captioner here, the
    alignment model by :func:`edgecap.export.embedding.run_alignment_export`; a task with no
    export of its own is refused.

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
    from edgecap.models import registry
    from edgecap.runs import load_run

    cfg, vocab, model = load_run(source)
    return registry.task_of(cfg.model.architecture).stage("export")(
        source, cfg, vocab, model, mode, output, data_root, calibration_images, verify_images, version, full_integer
    )


def export_captioner(
    source: str | Path,
    cfg,
    vocab,
    model,
    mode: str,
    output: str | Path | None,
    data_root: str | None,
    calibration_images: int,
    verify_images: int,
    version: str,
    full_integer: bool,
) -> ExportResult:
    """:func:`run_export` for a captioner (a loaded run: ``cfg``, ``vocab``, ``model``): one file
    with the ``encode`` and ``decode_step`` signatures of its step contract."""
    from edgecap.runtime import Captioner, CaptionerOptions

    calib, check = calibration_and_check(cfg, data_root, calibration_images, verify_images)
    name = f"{cfg.model.model_name()}_{cfg.data.dataset}"
    output = Path(output) if output else Path(f"{name}_{mode}.tflite")

    def calibration():
        return representative_dataset(model, [it.path for it in calib], [it.captions[0] for it in calib], vocab)

    extra = {
        "source_run": str(source),
        "dataset": cfg.data.dataset,
        "calibration_images": len(calib) if mode == "int8" else 0,
    }
    # Everything before verification passes lives in one scratch folder beside the output
    # (removed at the end, or by the next export if this process is killed), and the staged
    # file is marked unverified, so the runtime refuses it wherever it ends up.
    scratch = work_dir(output.resolve().parent, f".{output.name}.export-")
    try:
        staged = export_model(
            model,
            vocab,
            scratch / "staged.tflite",
            mode,
            calibration if mode == "int8" else None,
            name=name,
            version=version,
            architecture=cfg.model.architecture,
            max_length=cfg.decode.max_length,
            beam_size=cfg.decode.beam_size,
            length_penalty=cfg.decode.length_penalty,
            no_repeat_ngram_size=cfg.decode.no_repeat_ngram_size,
            extra=extra,
            verified=False,
            scratch_dir=scratch,
            full_integer=full_integer,
        )
        captioner = Captioner.from_file(staged, CaptionerOptions(beam_size=1), allow_unverified=True)
        report = verify_export(
            model, captioner, [it.path for it in check], [it.captions for it in check], mode, cfg.decode.max_length
        )
        return keep_if_verified(staged, output, report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
