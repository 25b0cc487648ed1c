"""The ``edgecap export`` job: load a run, convert, verify, and only then put the file in place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgecap.export.exporter import export_model, representative_dataset
from edgecap.export.staging import ExportResult, calibration_and_check, keep_if_verified
from edgecap.export.verify import verify_export
from edgecap.utils import atomic_write_text, work_dir


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

    tags_decl = model.step_contract().tags
    calib_tags = check_tags = None
    if tags_decl is not None:  # the photos' tags, as the runtime's tagger gives them
        from edgecap.data.tags import tag_rows, tags_for

        calib_tags = tag_rows(tags_for(tags_decl, vocab, calib, desc="tagging calibration photos"))
        check_tags = tag_rows(tags_for(tags_decl, vocab, check, desc="tagging verification photos"))

    def calibration():
        return representative_dataset(
            model, [it.path for it in calib], [it.captions[0] for it in calib], vocab, tags=calib_tags
        )

    extra = {
        "source_run": str(source),
        "dataset": cfg.data.dataset,
        "calibration_images": len(calib) if mode == "int8" else 0,
    }
    adapted = _adaptation(source)
    if adapted:
        extra["adapted_from"] = {k: adapted[k] for k in ("from_name", "from_checkpoint_sha256", "data", "photos")}
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
        captioner = Captioner.from_file(staged, CaptionerOptions(beam_size=1, taggers=()), allow_unverified=True)
        report = verify_export(
            model,
            captioner,
            [it.path for it in check],
            [it.captions for it in check],
            mode,
            cfg.decode.max_length,
            tags=check_tags,
        )
        result = keep_if_verified(staged, output, report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if adapted:
        atomic_write_text(
            output.with_suffix(".md"), adaptation_card(output, Path(source), adapted, vocab, report, len(calib), mode)
        )
    return result


def _adaptation(source: str | Path) -> dict | None:
    """The run's :data:`~edgecap.runs.ADAPTED` record, or None for a run that is no adaptation."""
    from edgecap.runs import ADAPTED

    path = Path(source) / ADAPTED
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def adaptation_card(output: Path, run: Path, adapted: dict, vocab, report, calibration_images: int, mode: str) -> str:
    """The card of a file exported from an adapted run (``edgecap adapt``), in Markdown: what
    it was adapted from and on which photos, the new words, the epochs, the verification."""
    from edgecap.runs import STATE

    old = adapted["from_vocabulary"]
    new_words = vocab.words[old:]
    photos = adapted["photos"]
    state = json.loads((run / STATE).read_text()) if (run / STATE).is_file() else {"history": []}
    field, what = (
        ("dev_cross_entropy", "the dev captions' cross-entropy (nats a word)")
        if "best_minus_dev_cross_entropy" in state
        else ("dev_cider_d", "dev CIDEr-D (greedy)")
    )
    epochs = ", ".join(f"{h['epoch']}: {h.get(field, float('nan')):.3f}" for h in state["history"])
    test = (
        f"{photos['test']} test photos (never trained on, never used to choose)"
        if photos.get("test")
        else "no test photos"
    )
    lines = [
        f"# `{output.name}`: `{adapted['from_name']}` adapted to `{adapted['data']}`",
        "",
        f"- **Adapted from**: `{adapted['from_name']}` ({adapted['from']}, checkpoint sha256 `{adapted['from_checkpoint_sha256'][:16]}…`), {old:,} words.",
        f"- **On**: `{adapted['data']}`: {photos['train']} training photos, {photos['dev']} dev photos (the epoch is chosen on them), {test}.",
        f"- **Vocabulary**: {len(vocab):,} words, {len(new_words)} new: {', '.join(new_words[:40])}{' …' if len(new_words) > 40 else ''}.",
        f"- **Training**: the encoder frozen, the decoder trained; {what} after each epoch (0: the starting weights): {epochs or 'none recorded'}; kept: epoch {state.get('best_epoch', '?')}.",
        f"- **Export**: {mode}, calibrated on {calibration_images} training photos, verified against Keras on {report.images} photos (the dev photos, then training photos): {report.summary()}",
        "",
        f"Score it on the held-out photos: `edgecap evaluate {output} --config {run / 'config.toml'} --split test`.",
        "A few hundred photos teach a model your words and your photos' subjects; scores on a few dozen photos move by several points from one photo to the next.",
        "",
    ]
    return "\n".join(lines)
