"""``edgecap release``: make a training run a built-in model, with its model card.

Exports every mode (each verified against Keras), scores the Keras model and every exported
file on the test split with the same decoding, benchmarks the int8 file, and keeps the int8
file as the built-in model ``<name>_int8.tflite`` (``<name>`` e.g.
``show_attend_tell_flickr8k``), its test scores written into its metadata, with the card
``<name>.md`` and ``<name>.card.json``. The default model's release also copies its best
checkpoint (weights only), config and vocabulary into ``export/``, so that ``edgecap export``
works offline. Every number in the card comes from this one command.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgecap.utils import atomic_path, atomic_write_text

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "CHAIRs", "CHAIRi")


def release(
    run_dir: str | Path,
    out_dir: str | Path,
    data_root: str | None = None,
    modes: tuple[str, ...] | None = None,
    threads=(1, 2),
    version: str = "0.1.0",
    command: str = "",
) -> dict:
    """Release ``run_dir`` into ``out_dir`` as its task does it (:mod:`edgecap.models.registry`:
    :func:`release_captioner` or :func:`release_alignment`); returns the model card as a dict.

    ``modes``: the export modes scored beside Keras; None takes the task's own (a captioner's
    four, the alignment model's float32 and int8).

    Raises:
        ValueError: ``modes`` lacks ``int8`` (the built-in model), or the task has no release.
        RunError: not a run directory. ExportError: an export failed verification.
    """
    from edgecap.models import registry
    from edgecap.runs import CONFIG, RunError

    if modes is not None and "int8" not in modes:
        raise ValueError("the released model is the int8 file: modes must include 'int8'")
    if not (Path(run_dir) / CONFIG).is_file():
        raise RunError(f"{Path(run_dir) / CONFIG}: missing; is {run_dir} an edgecap run directory?")
    release_task = registry.task_of(registry.read_model_config(Path(run_dir) / CONFIG).architecture).stage("release")
    chosen = {} if modes is None else {"modes": tuple(modes)}
    return release_task(run_dir, out_dir, data_root, threads=threads, version=version, command=command, **chosen)


def release_captioner(
    run_dir: str | Path,
    out_dir: str | Path,
    data_root: str | None = None,
    modes=("float32", "float16", "dynamic", "int8"),
    threads=(1, 2),
    version: str = "0.1.0",
    command: str = "",
) -> dict:
    """:func:`release` for a captioner (see the module docstring)."""
    from edgecap.evaluation.evaluate import evaluate
    from edgecap.export.command import run_export
    from edgecap.paths import DEFAULT_PRESET
    from edgecap.runs import BEST, CONFIG, DECODING, STATE, VOCAB, folders, load_run
    from edgecap.runtime.presets import SUFFIX

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    cfg, vocab, model = load_run(run_dir)
    name = f"{cfg.model.model_name()}_{cfg.data.dataset}"
    k, lp, nr = cfg.decode.beam_size, cfg.decode.length_penalty, cfg.decode.no_repeat_ngram_size
    card: dict = {
        "name": name,
        "run": str(run_dir),
        "version": version,
        "model": dataclasses.asdict(cfg.model),
        "beam_size": k,
        "length_penalty": lp,
        "no_repeat_ngram_size": nr,
        "command": command,
        "results": {},
        "sizes_mb": {},
        "verify": {},
        "data": {
            "extra_train": [Path(f).name for f in folders(cfg.data.extra_train)],
            "caption_text": bool(cfg.data.caption_text),
        },
    }
    previous = run_dir / f"{name}.card.json"  # releasing a released folder again keeps its provenance
    if (run_dir / STATE).is_file():
        state = json.loads((run_dir / STATE).read_text())
        card["training"] = {
            "objective": cfg.train.objective,
            "init_from": cfg.train.init_from,
            "ema_momentum": cfg.train.ema_momentum,
            "best_epoch": state["best_epoch"],
            "epochs_run": state["epoch"],
            "best_dev_cider_d": state.get("best_cider_d"),
            "best_dev_cross_entropy": -state["best_minus_dev_cross_entropy"]
            if "best_minus_dev_cross_entropy" in state
            else None,
            "selection_decoding": cfg.train.selection_decoding,
        }
    elif previous.is_file():
        earlier = json.loads(previous.read_text())
        card["training"], card["run"] = earlier.get("training"), earlier.get("run", card["run"])
    if (run_dir / DECODING).is_file():
        card["decoding_selection"] = json.loads((run_dir / DECODING).read_text())
    t0 = time.time()
    keras_report = evaluate(run_dir, "test", k, lp, cfg.decode.max_length, data_root, no_repeat_ngram_size=nr)
    card["results"]["keras float32"] = keras_report["metrics"]
    detector = _detector_scores(cfg, data_root, previous)
    if detector:
        card["detector"] = detector
    baseline = _baseline(cfg.model.card_baseline(), out_dir)
    if baseline:
        card["baseline"] = baseline
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgecap-release-") as work:
        # the released checkpoint: weights only
        ckpt = Path(work) / "ckpt"
        ckpt.mkdir()
        model.save_weights(ckpt / BEST)
        for file in (CONFIG, VOCAB, DECODING):
            if (run_dir / file).is_file():
                shutil.copy(run_dir / file, ckpt / file)
        files = {}
        for mode in modes:
            result = run_export(ckpt, mode, Path(work) / f"{mode}.tflite", data_root, version=version)
            files[mode] = result.path
            card["sizes_mb"][mode] = result.size_bytes / 1e6
            card["verify"][mode] = result.report.as_dict()
            rep = evaluate(
                result.path, "test", k, lp, cfg.decode.max_length, data_root, num_threads=2, no_repeat_ngram_size=nr
            )
            card["results"][f"tflite {mode}"] = rep["metrics"]
        # put the release in place: the int8 file with its test scores in its metadata
        # the one Keras checkpoint kept, for `edgecap export` offline (not rewritten when the run is the released folder itself)
        if name == DEFAULT_PRESET and run_dir.resolve() != out_dir.resolve():
            for file in (CONFIG, VOCAB, DECODING, BEST):
                if (ckpt / file).is_file():
                    with atomic_path(out_dir / file) as tmp:
                        (compress_weights if file == BEST else shutil.copy)(ckpt / file, tmp)
        released = _keep_int8(files["int8"], card, out_dir / f"{name}{SUFFIX}")
    return _finish(card, released, threads, str(run_dir), out_dir, t0)


def compress_weights(source: str | Path, target: str | Path) -> None:
    """Copy a Keras ``.weights.h5`` file with every array stored through HDF5's byte shuffle and
    gzip filters (h5py): the same float32 values, which ``load_weights`` reads as before, in a
    smaller file (the built-in captioner's checkpoint: 27.05 → 24.88 MB)."""
    import h5py

    def copy_attrs(src, dst) -> None:
        for key, value in src.attrs.items():
            dst.attrs[key] = value

    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        copy_attrs(src, dst)

        def visit(name, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                chunked = dict(compression="gzip", compression_opts=9, shuffle=True) if obj.size >= 64 else {}
                copy_attrs(obj, dst.create_dataset(name, data=obj[()], **chunked))
            else:
                copy_attrs(obj, dst.require_group(name))

        src.visititems(visit)


def _detector_scores(cfg, data_root: str | None, previous: Path) -> dict | None:
    """A captioner steered by an attribute detector (a ``model.detector`` run: semantic
    attention): the detector's test mAP, P@10 and R@10 beside the frequency baseline
    (:func:`edgecap.evaluation.evaluate.evaluate_attributes`), from that run, or from the
    previous card when the run is not here; ``None`` for a family without a detector."""
    from edgecap.evaluation.evaluate import evaluate_attributes

    if not getattr(cfg.model, "detector", ""):
        return None
    run = Path(cfg.model.detector)
    if (run / "best.weights.h5").is_file():
        report = evaluate_attributes(run, "test", data_root)
        return {
            "run": str(run),
            **{k: report[k] for k in ("images", "attributes", "k", "metrics", "frequency_baseline")},
        }
    return json.loads(previous.read_text()).get("detector") if previous.is_file() else None


def _baseline(name: str, out_dir: Path) -> dict | None:
    """The Keras and int8 test rows of built-in model ``name`` from its card in ``out_dir``
    (what a family's card compares itself with: :meth:`ModelConfig.card_baseline`), or None."""
    if not name or not (Path(out_dir) / f"{name}.card.json").is_file():
        return None
    theirs = json.loads((Path(out_dir) / f"{name}.card.json").read_text())
    rows = {k: v for k, v in theirs["results"].items() if k in ("keras float32", "tflite int8")}
    return {"name": name, "results": rows, "sizes_mb": {"int8": round(theirs["sizes_mb"]["int8"], 2)}}


def _keep_int8(path: Path, card: dict, released: Path) -> Path:
    """Write the int8 file ``path`` to ``released`` with its test scores in its metadata (and
    note in ``card`` which layers it kept in float32)."""
    from edgecap.runtime import metadata as md

    data, meta = md.read_file(path)
    card["int8_float_layers"] = meta.extra.get("int8_float_layers", "")
    meta.extra["test_scores"] = {m: round(v, 2) for m, v in card["results"]["tflite int8"].items()}
    with atomic_path(released) as tmp:
        tmp.write_bytes(md.pack(md.flatbuffer(data), meta))
    return released


def _finish(card: dict, released: Path, threads, keras_run: str, out_dir: Path, t0: float) -> dict:
    """Benchmark ``released`` and write the card (JSON and Markdown, :func:`render_card`)."""
    from edgecap.bench import format_report

    # in a fresh process, so that its peak memory is the runtime's, not this TensorFlow process's
    with tempfile.TemporaryDirectory(prefix="edgecap-bench-") as work:
        bench_json = Path(work) / "bench.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "edgecap.cli",
                "bench",
                "--model",
                str(released),
                "--threads",
                ",".join(map(str, threads)),
                "--keras-run",
                keras_run,
                "--json",
                str(bench_json),
            ],
            check=True,
        )
        card["bench"] = json.loads(bench_json.read_text())
    card["bench_text"] = format_report(card["bench"])
    card["seconds"] = round(time.time() - t0)
    atomic_write_text(out_dir / f"{card['name']}.card.json", json.dumps(card, indent=1))
    atomic_write_text(out_dir / f"{card['name']}.md", render_card(card))
    return card


def release_alignment(
    run_dir: str | Path,
    out_dir: str | Path,
    data_root: str | None = None,
    modes=("float32", "int8"),
    threads=(1, 2),
    version: str = "0.1.0",
    command: str = "",
) -> dict:
    """:func:`release` for the image–sentence alignment model: Flickr8k test R@K of Keras and of
    the exported files (float32 and int8 by default) through the runtime (:func:`edgecap.evaluation.evaluate.evaluate_retrieval`),
    the int8 file kept as ``<name>_int8.tflite`` with its test R@K in its metadata, the card."""
    from edgecap.config import Config
    from edgecap.evaluation.evaluate import evaluate_retrieval
    from edgecap.export.command import run_export
    from edgecap.runs import CONFIG, STATE
    from edgecap.runtime.presets import SUFFIX

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    cfg = Config.load(run_dir / CONFIG)
    name = f"{cfg.model.model_name()}_{cfg.data.dataset}"
    card: dict = {
        "name": name,
        "task": "retrieval",
        "run": str(run_dir),
        "version": version,
        "model": dataclasses.asdict(cfg.model),
        "command": command,
        "results": {},
        "sizes_mb": {},
        "verify": {},
    }
    if (run_dir / STATE).is_file():
        state = json.loads((run_dir / STATE).read_text())
        card["training"] = {
            "best_epoch": state["best_epoch"],
            "epochs_run": state["epoch"],
            "best_dev_rsum": state["best_rsum"],
            "dev_images": cfg.data.dev_limit or 1000,
            "ema_momentum": cfg.train.ema_momentum,
        }
    t0 = time.time()
    keras_report = evaluate_retrieval(run_dir, "test", data_root)
    card["results"]["keras float32"] = keras_report["metrics"]
    card["paper"] = keras_report["paper_flickr8k_brnn"]
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgecap-release-") as work:
        files = {}
        for mode in modes:
            result = run_export(run_dir, mode, Path(work) / f"{mode}.tflite", data_root, version=version)
            files[mode] = result.path
            card["sizes_mb"][mode] = result.size_bytes / 1e6
            card["verify"][mode] = result.report.as_dict()
            card["results"][f"tflite {mode}"] = evaluate_retrieval(result.path, "test", data_root, num_threads=2)[
                "metrics"
            ]
        released = _keep_int8(files["int8"], card, out_dir / f"{name}{SUFFIX}")
    return _finish(card, released, threads, "none", out_dir, t0)


RECALLS = ("R@1", "R@5", "R@10", "med r")


def alignment_card_markdown(card: dict) -> str:
    """A retrieval model's card (Markdown) from its card dict (:func:`release_alignment`); the
    model's own lines come from its config's ``card_*`` methods."""
    model = card_model_config(card["model"])
    momentum = card.get("training", {}).get("ema_momentum")
    ema = f"; weight averaging (EMA {momentum}), the averaged weights selected and exported" if momentum else ""
    lines = [
        f"# edgecap built-in model `{card['name']}`: {model.card_title()}, Flickr8k",
        "",
        f"Generated by `{card['command'] or 'edgecap release RUN_DIR'}` (version {card['version']}); every number below comes from that run.",
        "",
        f"- Architecture: {model.card_architecture()}",
        f"- Training: {model.card_training()}{ema}.",
    ]
    if card.get("int8_float_layers"):
        lines.append(
            f"- The int8 file keeps the encoder's stem in float32 (layers matching `{card['int8_float_layers']}`); every other layer is int8."
        )
    if "training" in card:
        t = card["training"]
        lines.append(
            f"- Selection: best epoch {t['best_epoch']} of {t['epochs_run']} run by dev R-sum (the six R@K) on {t['dev_images']} dev images: {t['best_dev_rsum']:.1f}."
        )
    lines += [
        "",
        "## Flickr8k test split (1,000 images, 5,000 sentences)",
        "",
        "Image annotation (image → sentences) and image search (sentence → image); R@K in %, med r the median rank.",
        "",
        "| model | size MB | annotation " + " | ".join(RECALLS) + " | search " + " | ".join(RECALLS) + " |",
        "|---" * 10 + "|",
    ]
    rows = dict(card["results"])
    rows["paper: BRNN (Table 1, Flickr8K)"] = card["paper"]
    for name, r in rows.items():
        mode = name.split()[-1] if name.startswith("tflite") else None
        size = f"{card['sizes_mb'][mode]:.2f}" if mode else "—"
        lines.append(
            f"| {name} | {size} | "
            + " | ".join(f"{r[f'{d} {k}']:.1f}" for d in ("annotation", "search") for k in RECALLS)
            + " |"
        )
    lines += [
        "",
        "## Export verification (100 dev images and their 500 sentences, against Keras)",
        "",
        "| mode | region vectors relative Δ | word vectors relative Δ | R-sum Keras → file |",
        "|---|---|---|---|",
    ]
    for mode, v in card["verify"].items():
        lines.append(
            f"| {mode} | {v['regions_relative']:.3f} | {v['words_relative']:.3f} | {v['rsum_keras']:.1f} → {v['rsum_file']:.1f} |"
        )
    lines += ["", "## Speed (`edgecap bench`, this machine)", "", "```", card["bench_text"], "```", ""]
    lines += [
        "## Limits",
        "",
        "- Trained on 6,000 Flickr photos of people and animals, with their English captions; other scenes and words rank poorly.",
        "- Vocabulary: words seen at least 5 times in the training captions; a query of only other words is refused.",
        "- Flickr8k is for research use; cite Hodosh et al. (2013) when reporting numbers.",
        "",
    ]
    return "\n".join(lines)


def model_card_markdown(card: dict) -> str:
    """A captioner's model card (Markdown) from its card dict (:func:`release`; the
    ``<name>.card.json`` beside a released file). What it says of the model comes from the
    family's config (:meth:`~edgecap.models.model_config.ModelConfig.card_architecture` and the
    other ``card_*`` methods), so this function knows no family."""
    r = card["results"]
    keras = r["keras float32"]
    model = card_model_config(card.get("model"))
    lines = [
        f"# edgecap built-in model `{card.get('name', 'show_attend_tell_flickr8k')}`: {model.card_title()}, Flickr8k",
        "",
        f"Generated by `{card['command'] or 'edgecap release RUN_DIR'}` (version {card['version']}); every number below comes from that run.",
        "",
        f"- Architecture: {model.card_architecture()}",
        f"- Data: {_training_data(card.get('data'))}",
        f"- Decoding: beam size {card['beam_size']}, length penalty {card['length_penalty']}, no-repeat n-gram size {card.get('no_repeat_ngram_size', 0)} (0 = off).",
    ]
    if card.get("int8_float_layers"):
        lines.append(
            f"- The int8 file: int8 weights and activations except the encoder's stem (layers matching `{card['int8_float_layers']}`), "
            "kept in float32 (`edgecap export --int8`; `--full-integer` quantizes it too, less accurately)."
        )
    if "training" in card:
        t = card["training"]
        how = model.card_training()
        if t.get("objective") == "self_critical":
            how = f"self-critical sequence training on CIDEr-D (Rennie et al. 2017; leave-one-out baseline, Luo 2020) from the cross-entropy run `{t['init_from']}`"
        elif t.get("init_from"):
            how += f", continued from the run `{t['init_from']}`"
        if t.get("ema_momentum"):
            how += f", weights averaged (EMA, momentum {t['ema_momentum']}) for selection and the checkpoint"
        lines.append(
            f"- Training: {how}; best epoch {t['best_epoch']} of {t['epochs_run']} run (dev CIDEr-D {_selection(t)})."
        )
    lines += [
        "",
        "## Flickr8k test split (1,000 images), ×100",
        "",
        "| model | size MB | " + " | ".join(METRICS) + " | ΔBLEU-4 | ΔCIDEr-D |",
        "|---" * (len(METRICS) + 4) + "|",
    ]
    for name, m in r.items():
        mode = name.split()[-1] if name.startswith("tflite") else None
        size = f"{card['sizes_mb'][mode]:.2f}" if mode else "—"
        delta = f"{m['BLEU-4'] - keras['BLEU-4']:+.2f} | {m['CIDEr-D'] - keras['CIDEr-D']:+.2f}" if mode else "— | —"
        lines.append(f"| {name} | {size} | " + " | ".join(_cell(m, k) for k in METRICS) + f" | {delta} |")
    if "baseline" in card:  # another built-in model, as its own card scored it (same split and decoding rules)
        b = card["baseline"]
        for name, m in b["results"].items():
            lines.append(
                f"| `{b['name']}`, {name} (its card) | {b['sizes_mb'].get(name.split()[-1], 0) or '—'} | "
                + " | ".join(_cell(m, k) for k in METRICS)
                + " | — | — |"
            )
    lines += ["", model.card_paper(), ""]
    notes = model.card_notes()
    if notes:
        lines += ["## Notes (from the experiments, not from this run)", "", *notes, ""]
    if "detector" in card:
        d = card["detector"]
        lines += [
            f"## The attribute detector (`{d['run']}`), Flickr8k test split ({d['images']} images, {d['attributes']} attributes), ×100",
            "",
            "A photo's true attributes are the attribute words of its five captions.",
            "",
            f"| detector | mAP | P@{d['k']} | R@{d['k']} |",
            "|---|---|---|---|",
            f"| always the {d['k']} attributes most frequent in training | "
            + " | ".join(f"{d['frequency_baseline'][m]:.1f}" for m in ("mAP", f"P@{d['k']}", f"R@{d['k']}"))
            + " |",
            "| noisy-OR MIL detector (Fang et al. 2015) | "
            + " | ".join(f"{d['metrics'][m]:.1f}" for m in ("mAP", f"P@{d['k']}", f"R@{d['k']}"))
            + " |",
            "",
        ]
    lines += [
        "## Export verification (100 dev images, greedy, against Keras)",
        "",
        "| mode | log-prob mean abs Δ | token agreement | identical captions | BLEU-4 Keras → file |",
        "|---|---|---|---|---|",
    ]
    for mode, v in card["verify"].items():
        lines.append(
            f"| {mode} | {v['logprob_mean_abs']:.2e} | {v['token_agreement']:.3f} | {v['exact_match']:.3f} | {v['bleu4_keras']:.2f} → {v['bleu4_tflite']:.2f} |"
        )
    if "decoding_selection" in card:
        lines += [
            "",
            "## Decoding selected on dev (CIDEr-D, Keras)",
            "",
            "| beam size | length penalty | no-repeat n-gram | dev CIDEr-D | dev BLEU-4 | words |",
            "|---|---|---|---|---|---|",
        ]
        for row in card["decoding_selection"]["table"]:
            bleu = f"{row['BLEU-4']:.2f}" if "BLEU-4" in row else "—"
            lines.append(
                f"| {row['beam_size']} | {row['length_penalty']} | {row.get('no_repeat_ngram_size', 0)} | {row['CIDEr-D']:.2f} | {bleu} | {row['mean_words']:.1f} |"
            )
    lines += ["", "## Speed (`edgecap bench`, this machine)", "", "```", card["bench_text"], "```", ""]
    if "platforms" in card:  # Markdown lines measured after the release (scripts/check_arm.sh)
        lines += ["## Platforms (docs/platforms.md)", "", *card["platforms"], ""]
    lines += [
        "## Limits",
        "",
        "- Trained on 6,000 Flickr photos of people and animals: it describes such scenes; elsewhere it guesses.",
        "- English only; vocabulary of words seen at least 5 times in the training captions.",
        "- Flickr8k is for research use; cite Hodosh et al. (2013) when reporting numbers.",
        "",
    ]
    return "\n".join(lines)


def _cell(metrics: dict, key: str) -> str:
    """A metric's table cell; "—" for one its card was made without (cards made before CHAIR)."""
    return f"{metrics[key]:.2f}" if key in metrics else "—"


def _training_data(data: dict | None) -> str:
    """The card's data line: Flickr8k, and the other photos and text the run learned from."""
    text = "Flickr8k (Hodosh, Young & Hockenmaier 2013, JAIR 47), standard 6000/1000/1000 split"
    extra = (data or {}).get("extra_train") or []
    if extra:
        text += f"; with the captioned photos of {', '.join(f'`{f}`' for f in extra)}"
    if (data or {}).get("caption_text"):
        text += "; the decoder also learned from captions without photos (`data.caption_text`)"
    dev = "dev CIDEr-D (the mean over Flickr8k dev and `data.extra_dev`)" if extra else "dev CIDEr-D"
    return f"{text}; checkpoint selected on {dev}; decoding chosen on dev."


def render_card(card: dict) -> str:
    """A released model's card (its ``<name>.card.json``) in Markdown, as its task writes it."""
    from edgecap.models import registry

    return registry.task_of(card_model_config(card.get("model")).architecture).stage("card")(card)


def card_model_config(model: dict | None):
    """The family's config dataclass (:mod:`edgecap.models.registry`) rebuilt from a card's
    ``model`` section; keys the family no longer has are dropped, missing ones take their
    defaults. A card without ``architecture`` is Show, Attend and Tell's (the first cards).

    Raises:
        ValueError: an architecture the registry does not know.
    """
    from edgecap.models import registry

    return registry.model_config(dict(model or {}), "card", strict=False)


def _selection(training: dict) -> str:
    """``"greedy 42.86"`` or ``"with the [decode] beam search 45.91"``."""
    if training["selection_decoding"] == "loss":
        return f"on the dev captions' cross-entropy, {training['best_dev_cross_entropy']:.3f} nats a word"
    mode = "greedy" if training["selection_decoding"] == "greedy" else "with the [decode] beam search"
    return f"{mode} {training['best_dev_cider_d']:.2f}"
