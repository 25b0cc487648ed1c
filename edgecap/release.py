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

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")


def release(run_dir: str | Path, out_dir: str | Path, data_root: str | None = None, modes=("float32", "float16", "dynamic", "int8"), threads=(1, 2), version: str = "0.1.0", command: str = "") -> dict:
    """Release ``run_dir`` into ``out_dir``; returns the model card as a dict (see module docstring).

    Raises:
        ValueError: ``modes`` lacks ``int8`` (the built-in model). ExportError: an export failed verification.
    """
    from edgecap.evaluation.evaluate import evaluate
    from edgecap.export.command import run_export
    from edgecap.paths import DEFAULT_PRESET
    from edgecap.runtime.presets import SUFFIX
    from edgecap.training.trainer import BEST, CONFIG, DECODING, STATE, VOCAB, load_run

    if "int8" not in modes:
        raise ValueError("the released model is the int8 file: modes must include 'int8'")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    cfg, vocab, model = load_run(run_dir)
    if cfg.model.architecture == "alignment":
        return release_alignment(run_dir, out_dir, cfg, data_root, ("float32", "int8"), threads, version, command)
    name = f"{cfg.model.model_name()}_{cfg.data.dataset}"
    k, lp, nr = cfg.decode.beam_size, cfg.decode.length_penalty, cfg.decode.no_repeat_ngram_size
    card: dict = {"name": name, "run": str(run_dir), "version": version, "model": dataclasses.asdict(cfg.model), "beam_size": k, "length_penalty": lp, "no_repeat_ngram_size": nr, "command": command, "results": {}, "sizes_mb": {}, "verify": {}}
    previous = run_dir / f"{name}.card.json"  # releasing a released folder again keeps its provenance
    if (run_dir / STATE).is_file():
        state = json.loads((run_dir / STATE).read_text())
        card["training"] = {"objective": cfg.train.objective, "init_from": cfg.train.init_from, "ema_momentum": cfg.train.ema_momentum, "best_epoch": state["best_epoch"], "epochs_run": state["epoch"], "best_dev_cider_d": state["best_cider_d"], "selection_decoding": cfg.train.selection_decoding}
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
            rep = evaluate(result.path, "test", k, lp, cfg.decode.max_length, data_root, num_threads=2, no_repeat_ngram_size=nr)
            card["results"][f"tflite {mode}"] = rep["metrics"]
        # put the release in place: the int8 file with its test scores in its metadata
        # the one Keras checkpoint kept, for `edgecap export` offline (not rewritten when the run is the released folder itself)
        if name == DEFAULT_PRESET and run_dir.resolve() != out_dir.resolve():
            for file in (CONFIG, VOCAB, DECODING, BEST):
                if (ckpt / file).is_file():
                    with atomic_path(out_dir / file) as tmp:
                        (compress_weights if file == BEST else shutil.copy)(ckpt / file, tmp)
        released = _keep_int8(files["int8"], card, out_dir / f"{name}{SUFFIX}")
    return _finish(card, released, threads, str(run_dir), out_dir, model_card_markdown, t0)


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
    """Semantic attention: its attribute detector's test mAP, P@10 and R@10 beside the
    frequency baseline (:func:`edgecap.evaluation.evaluate.evaluate_attributes`), from the
    detector run ``model.detector``, or from the previous card when that run is not here."""
    from edgecap.evaluation.evaluate import evaluate_attributes

    if getattr(cfg.model, "architecture", "") != "semantic_attention":
        return None
    run = Path(cfg.model.detector)
    if (run / "best.weights.h5").is_file():
        report = evaluate_attributes(run, "test", data_root)
        return {"run": str(run), **{k: report[k] for k in ("images", "attributes", "k", "metrics", "frequency_baseline")}}
    return json.loads(previous.read_text()).get("detector") if previous.is_file() else None


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


def _finish(card: dict, released: Path, threads, keras_run: str, out_dir: Path, markdown, t0: float) -> dict:
    """Benchmark ``released`` and write the card (JSON and ``markdown(card)``)."""
    from edgecap.bench import format_report

    # in a fresh process, so that its peak memory is the runtime's, not this TensorFlow process's
    with tempfile.TemporaryDirectory(prefix="edgecap-bench-") as work:
        bench_json = Path(work) / "bench.json"
        subprocess.run([sys.executable, "-m", "edgecap.cli", "bench", "--model", str(released), "--threads", ",".join(map(str, threads)), "--keras-run", keras_run, "--json", str(bench_json)], check=True)
        card["bench"] = json.loads(bench_json.read_text())
    card["bench_text"] = format_report(card["bench"])
    card["seconds"] = round(time.time() - t0)
    atomic_write_text(out_dir / f"{card['name']}.card.json", json.dumps(card, indent=1))
    atomic_write_text(out_dir / f"{card['name']}.md", markdown(card))
    return card


def release_alignment(run_dir: Path, out_dir: Path, cfg, data_root: str | None, modes, threads, version: str, command: str) -> dict:
    """:func:`release` for the image–sentence alignment model: Flickr8k test R@K of Keras and of
    every exported file through the runtime (:func:`edgecap.evaluation.evaluate.evaluate_retrieval`),
    the int8 file kept as ``<name>_int8.tflite`` with its test R@K in its metadata, the card."""
    from edgecap.evaluation.evaluate import evaluate_retrieval
    from edgecap.export.command import run_export
    from edgecap.runtime.presets import SUFFIX
    from edgecap.training.trainer import STATE

    name = f"{cfg.model.model_name()}_{cfg.data.dataset}"
    card: dict = {"name": name, "task": "retrieval", "run": str(run_dir), "version": version, "model": dataclasses.asdict(cfg.model), "command": command, "results": {}, "sizes_mb": {}, "verify": {}}
    if (run_dir / STATE).is_file():
        state = json.loads((run_dir / STATE).read_text())
        card["training"] = {"best_epoch": state["best_epoch"], "epochs_run": state["epoch"], "best_dev_rsum": state["best_rsum"], "dev_images": cfg.data.dev_limit or 1000, "ema_momentum": cfg.train.ema_momentum}
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
            card["results"][f"tflite {mode}"] = evaluate_retrieval(result.path, "test", data_root, num_threads=2)["metrics"]
        released = _keep_int8(files["int8"], card, out_dir / f"{name}{SUFFIX}")
    return _finish(card, released, threads, "none", out_dir, alignment_card_markdown, t0)


RECALLS = ("R@1", "R@5", "R@10", "med r")


def _alignment_encoder(m: dict) -> str:
    w = m.get("encoder_weights") or "imagenet"
    if w == "imagenet":
        return "ImageNet weights, frozen"
    if w == "export":
        return "frozen: the built-in captioner's encoder, its top block fine-tuned on the training captions"
    return f"frozen: the encoder of {w}"


def alignment_card_markdown(card: dict) -> str:
    m = card["model"]
    dropout = f"; dropout {m['dropout']} on the word and region vectors" if m.get("dropout") else ""
    momentum = card.get("training", {}).get("ema_momentum")
    ema = f"; weight averaging (EMA {momentum}), the averaged weights selected and exported" if momentum else ""
    lines = [
        f"# edgecap built-in model `{card['name']}`: image–sentence alignment (Karpathy & Fei-Fei), Flickr8k",
        "",
        f"Generated by `{card['command'] or 'edgecap release RUN_DIR'}` (version {card['version']}); every number below comes from that run.",
        "",
        f"- Architecture: Karpathy & Fei-Fei 2015, §3.1. Regions: MobileNetV2's 7×7 grid cells ({_alignment_encoder(m)}) plus the whole image (their mean), "
        f"each mapped to the {m['hidden_dim']}-d multimodal space by one linear map (grid cells stand in for the paper's 19 RCNN detections). "
        f"Words: {m['embedding_dim']}-d learned word vectors, a bidirectional ReLU RNN (§3.1.2), up to {m['max_words']} words. Score: eq. 8, Σ_t max_i v_iᵀ s_t.",
        f"- Training: the max-margin loss of eq. 9 in both directions ({'summed over negatives' if m['loss'] == 'sum' else 'hardest negative (VSE++) after a summed warm-up'}, margin {m['margin']})"
        f"{'; region and word vectors scaled to unit length before eq. 8 (cosines, as in VSE)' if m.get('normalize') else ''}"
        f"{dropout}{ema}.",
    ]
    if card.get("int8_float_layers"):
        lines.append(f"- The int8 file keeps the encoder's stem in float32 (layers matching `{card['int8_float_layers']}`); every other layer is int8.")
    if "training" in card:
        t = card["training"]
        lines.append(f"- Selection: best epoch {t['best_epoch']} of {t['epochs_run']} run by dev R-sum (the six R@K) on {t['dev_images']} dev images: {t['best_dev_rsum']:.1f}.")
    lines += ["", "## Flickr8k test split (1,000 images, 5,000 sentences)", "",
              "Image annotation (image → sentences) and image search (sentence → image); R@K in %, med r the median rank.", "",
              "| model | size MB | annotation " + " | ".join(RECALLS) + " | search " + " | ".join(RECALLS) + " |", "|---" * 10 + "|"]
    rows = dict(card["results"])
    rows["paper: BRNN (Table 1, Flickr8K)"] = card["paper"]
    for name, r in rows.items():
        mode = name.split()[-1] if name.startswith("tflite") else None
        size = f"{card['sizes_mb'][mode]:.2f}" if mode else "—"
        lines.append(f"| {name} | {size} | " + " | ".join(f"{r[f'{d} {k}']:.1f}" for d in ("annotation", "search") for k in RECALLS) + " |")
    lines += ["", "## Export verification (100 dev images and their 500 sentences, against Keras)", "", "| mode | region vectors relative Δ | word vectors relative Δ | R-sum Keras → file |", "|---|---|---|---|"]
    for mode, v in card["verify"].items():
        lines.append(f"| {mode} | {v['regions_relative']:.3f} | {v['words_relative']:.3f} | {v['rsum_keras']:.1f} → {v['rsum_file']:.1f} |")
    lines += ["", "## Speed (`edgecap bench`, this machine)", "", "```", card["bench_text"], "```", ""]
    lines += ["## Limits", "", "- Trained on 6,000 Flickr photos of people and animals, with their English captions; other scenes and words rank poorly.",
              "- Vocabulary: words seen at least 5 times in the training captions; a query of only other words is refused.",
              "- Flickr8k is for research use; cite Hodosh et al. (2013) when reporting numbers.", ""]
    return "\n".join(lines)


def model_card_markdown(card: dict) -> str:
    r = card["results"]
    keras = r["keras float32"]
    lines = [
        f"# edgecap built-in model `{card.get('name', 'show_attend_tell_flickr8k')}`: {_title(card.get('model'))}, Flickr8k",
        "",
        f"Generated by `{card['command'] or 'edgecap release RUN_DIR'}` (version {card['version']}); every number below comes from that run.",
        "",
        f"- Architecture: {_architecture(card.get('model'))}",
        "- Data: Flickr8k (Hodosh, Young & Hockenmaier 2013, JAIR 47), standard 6000/1000/1000 split; "
        "checkpoint selected on dev CIDEr-D; decoding chosen on dev.",
        f"- Decoding: beam size {card['beam_size']}, length penalty {card['length_penalty']}, no-repeat n-gram size {card.get('no_repeat_ngram_size', 0)} (0 = off).",
    ]
    if card.get("int8_float_layers"):
        lines.append(f"- The int8 file: int8 weights and activations except the encoder's stem (layers matching `{card['int8_float_layers']}`), "
                     "kept in float32 (`edgecap export --int8`; `--full-integer` quantizes it too, less accurately).")
    if "training" in card:
        t = card["training"]
        how = "teacher-forced cross-entropy"
        if _attention(card.get("model")) == "hard":
            how += " plus the REINFORCE terms of Xu et al. eq. 12 for the sampled locations"
        if t.get("objective") == "self_critical":
            how = f"self-critical sequence training on CIDEr-D (Rennie et al. 2017; leave-one-out baseline, Luo 2020) from the cross-entropy run `{t['init_from']}`"
        elif t.get("init_from"):
            how += f", continued from the run `{t['init_from']}`"
        if t.get("ema_momentum"):
            how += f", weights averaged (EMA, momentum {t['ema_momentum']}) for selection and the checkpoint"
        lines.append(f"- Training: {how}; best epoch {t['best_epoch']} of {t['epochs_run']} run (dev CIDEr-D {_selection(t)}).")
    lines += ["", "## Flickr8k test split (1,000 images), ×100", "", "| model | size MB | " + " | ".join(METRICS) + " | ΔBLEU-4 | ΔCIDEr-D |", "|---" * (len(METRICS) + 4) + "|"]
    for name, m in r.items():
        mode = name.split()[-1] if name.startswith("tflite") else None
        size = f"{card['sizes_mb'][mode]:.2f}" if mode else "—"
        delta = f"{m['BLEU-4'] - keras['BLEU-4']:+.2f} | {m['CIDEr-D'] - keras['CIDEr-D']:+.2f}" if mode else "— | —"
        lines.append(f"| {name} | {size} | " + " | ".join(f"{m[k]:.2f}" for k in METRICS) + f" | {delta} |")
    lines += ["", _paper(card.get("model")), ""]
    if "detector" in card:
        d = card["detector"]
        lines += [f"## The attribute detector (`{d['run']}`), Flickr8k test split ({d['images']} images, {d['attributes']} attributes), ×100", "",
                  "A photo's true attributes are the attribute words of its five captions.", "",
                  f"| detector | mAP | P@{d['k']} | R@{d['k']} |", "|---|---|---|---|",
                  f"| always the {d['k']} attributes most frequent in training | " + " | ".join(f"{d['frequency_baseline'][m]:.1f}" for m in ("mAP", f"P@{d['k']}", f"R@{d['k']}")) + " |",
                  "| noisy-OR MIL detector (Fang et al. 2015) | " + " | ".join(f"{d['metrics'][m]:.1f}" for m in ("mAP", f"P@{d['k']}", f"R@{d['k']}")) + " |", ""]
    lines += ["## Export verification (100 dev images, greedy, against Keras)", "", "| mode | log-prob mean abs Δ | token agreement | identical captions | BLEU-4 Keras → file |", "|---|---|---|---|---|"]
    for mode, v in card["verify"].items():
        lines.append(f"| {mode} | {v['logprob_mean_abs']:.2e} | {v['token_agreement']:.3f} | {v['exact_match']:.3f} | {v['bleu4_keras']:.2f} → {v['bleu4_tflite']:.2f} |")
    if "decoding_selection" in card:
        lines += ["", "## Decoding selected on dev (CIDEr-D, Keras)", "", "| beam size | length penalty | no-repeat n-gram | dev CIDEr-D | dev BLEU-4 | words |", "|---|---|---|---|---|---|"]
        for row in card["decoding_selection"]["table"]:
            bleu = f"{row['BLEU-4']:.2f}" if "BLEU-4" in row else "—"
            lines.append(f"| {row['beam_size']} | {row['length_penalty']} | {row.get('no_repeat_ngram_size', 0)} | {row['CIDEr-D']:.2f} | {bleu} | {row['mean_words']:.1f} |")
    lines += ["", "## Speed (`edgecap bench`, this machine)", "", "```", card["bench_text"], "```", ""]
    lines += ["## Limits", "", "- Trained on 6,000 Flickr photos of people and animals: it describes such scenes; elsewhere it guesses.",
              "- English only; vocabulary of words seen at least 5 times in the training captions.",
              "- Flickr8k is for research use; cite Hodosh et al. (2013) when reporting numbers.", ""]
    return "\n".join(lines)


def _is_sat(model: dict | None) -> bool:
    return (model or {}).get("architecture", "show_attend_tell") == "show_attend_tell"


def _is_semantic(model: dict | None) -> bool:
    return (model or {}).get("architecture") == "semantic_attention"


def _title(model: dict | None) -> str:
    if _is_sat(model):
        return f"Show, Attend and Tell ({_attention(model)} attention)"
    if _is_semantic(model):
        return "semantic attention (You et al.)"
    return "multimodal RNN (Karpathy & Fei-Fei)"


def _architecture(model: dict | None) -> str:
    """One sentence on the model family, from the card's ``model`` section."""
    encoder = f"MobileNetV2 ({_encoder_training(model)})"
    if _is_sat(model):
        return (f"Xu et al. 2015 {_attention(model)} attention{_hard(model)}; {encoder} annotation grid 7×7×1280; "
                "LSTM decoder, deep output layer, doubly stochastic attention penalty." + _sizes(model))
    m = model or {}
    if _is_semantic(m):
        parts = [name for flag, name in ((m.get("input_attention"), "input attention φ (eq. 4–5)"), (m.get("output_attention"), "output attention ψ (eq. 6–7, E tied)")) if flag]
        extra = ""
        if m.get("visual_attention"):
            extra += (f" Beside them, not in the paper: Xu et al.'s soft attention over the 7×7 grid (annotation vectors projected 1280 → {m['projection_dim']}, "
                      f"attention MLP {m['attention_dim']}), its context added to each LSTM input and to the output layer's input.")
        if m.get("image_every_step"):
            extra += " Not in the paper: the image vector also added to every LSTM input."
        return (f"You et al. 2016 semantic attention (§3): {encoder} annotation grid; the global image vector enters the LSTM once (eq. 1); "
                f"{' and '.join(parts) or 'no attention'} over the top {m['top_k']} of {m['num_attributes']} attributes found by a noisy-OR "
                f"multiple-instance detector (Fang et al. 2015) over the grid cells, frozen, its top-k selection inside `encode`; "
                f"embedding and LSTM {m['hidden_dim']}; attention regulariser λ {m['attention_regularization']} (§3.4, p {m['norm_p']}, q {m['norm_q']})." + extra)
    cell = "the paper's ReLU RNN" if m.get("cell") == "rnn" else "an LSTM"
    return (f"Karpathy & Fei-Fei 2015 multimodal RNN generator (§3.2, eq. 13): {encoder} annotation grid average-pooled to one 1280-d image vector, "
            f"entering the recurrence once, as a bias at the first step; {cell}. Embedding {m.get('embedding_dim')}, hidden size {m.get('hidden_dim')}.")


def _paper(model: dict | None) -> str:
    if _is_semantic(model):
        return ("Paper (You et al. 2016): no Flickr8k figures; on Flickr30k BLEU-4 23.0, METEOR 18.9. "
                "The built-in soft-attention model `show_attend_tell_flickr8k` (its card) is the comparison on Flickr8k.")
    if _is_sat(model):
        return "Paper (Xu et al. 2015, Table 1, Flickr8k): soft attention BLEU-4 19.5, METEOR 18.93; hard attention BLEU-4 21.3, METEOR 20.30."
    return "Paper (Karpathy & Fei-Fei 2015, Flickr8k generation; also in Xu et al. 2015, Table 1): BLEU-1 57.9, BLEU-4 16.0."


def _attention(model: dict | None) -> str:
    return (model or {}).get("attention", "soft")


def _hard(model: dict | None) -> str:
    m = model or {}
    if m.get("attention") != "hard":
        return ""
    return (f" (REINFORCE with a moving-average baseline, λ_r {m['reward_weight']}, entropy bonus λ_e {m['entropy_weight']}, expected context for an image with probability "
            f"{m['expected_context_prob']}; decoded with the {'expected context' if m['hard_decoding'] == 'expected' else 'arg-max location'})")


def _selection(training: dict) -> str:
    """``"greedy 42.86"`` or ``"with the [decode] beam search 45.91"``."""
    mode = "greedy" if training["selection_decoding"] == "greedy" else "with the [decode] beam search"
    return f"{mode} {training['best_dev_cider_d']:.2f}"


def _encoder_training(model: dict | None) -> str:
    layer = (model or {}).get("fine_tune_from")
    return f"ImageNet weights; frozen up to `{layer}`, trained from there on with the decoder" if layer else "ImageNet weights, frozen"


def _sizes(model: dict | None) -> str:
    if not model:
        return ""
    text = f" Embedding {model['embedding_dim']}, LSTM {model['hidden_dim']}, attention MLP {model['attention_dim']}"
    if model.get("projection_dim"):
        text += f", annotation vectors projected 1280 → {model['projection_dim']} by one shared linear map"
    return text + "."
