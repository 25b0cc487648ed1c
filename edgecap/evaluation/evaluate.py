"""``edgecap evaluate``: caption a split with a training run (Keras) or a ``.tflite`` file and score it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm.auto import tqdm

from edgecap.config import Config, default_config
from edgecap.evaluation.chair import chair
from edgecap.evaluation.metrics import coco_caption_scores
from edgecap.utils import atomic_write_text


def _features_for_run(cfg: Config, model, items, split: str, cache_dir=None):
    """Annotation vectors ``(N, L, D)`` of ``items`` under the run's encoder (a captioner's or an
    alignment model's; cached when its weights file is here)."""
    from edgecap.data.features import cached_features
    from edgecap.models.backbones import WeightsError, frozen_encoder, frozen_output_name, resolve_weights
    from edgecap.models.keras_step import cached_annotations
    from edgecap.runs import RunError, run_encoder_weights

    spec = model.spec
    try:
        weights = resolve_weights(run_encoder_weights(cfg.model.encoder_weights, cfg.model.backbone, cache_dir))
    except (WeightsError, RunError):  # weights file not here: the checkpoint's own encoder, keyed by nothing reusable
        weights = "imagenet"
    if weights in ("imagenet", "none"):
        from edgecap.data.features import encode_images

        return encode_images(model.encoder, items, spec.image_size, desc=f"encoding {split}")
    split_at = (
        cfg.model.fine_tune_from
    )  # the cache holds what the frozen layers give; the checkpoint's own layers do the rest
    return cached_annotations(
        model,
        cached_features(
            lambda: frozen_encoder(model.encoder, split_at),
            frozen_output_name(spec.name, split_at),
            weights,
            spec.image_size,
            items,
            cache_dir,
            split,
        ),
    )


def evaluate(
    source: str | Path,
    split: str = "test",
    beam_size: int | None = None,
    length_penalty: float | None = None,
    max_length: int | None = None,
    data_root: str | None = None,
    config: str | Path | None = None,
    limit: int = 0,
    num_threads: int | None = None,
    spice: bool = False,
    no_repeat_ngram_size: int | None = None,
    kernels: str = "default",
    taggers: tuple[str, ...] = (),
    duplicates: str = "refuse",
) -> dict:
    """Caption every image of ``split`` and compute the COCO caption metrics and CHAIR (×100;
    :mod:`edgecap.evaluation.chair`: the ground-truth objects from the references' words).

    Args:
        source: a run directory (Keras, best checkpoint), a ``.tflite`` file (runtime), or a
            ``.jsonl`` file of captions already made by ``edgecap caption --json`` (e.g. on a
            device: :func:`read_caption_records`), scored as they are.
        split: ``train`` | ``dev`` | ``test``.
        beam_size, length_penalty, max_length, no_repeat_ngram_size: decoding settings; ``None``
            takes the model's own (chosen on dev by ``edgecap select-decoding``, kept in the
            run's ``decoding.json`` and in an exported file's metadata).
        data_root: dataset folder override.
        config: dataset config for a ``.tflite`` source (default: the run's / the shipped config).
        limit: first N images only (0 = all).
        num_threads, kernels: interpreter settings for a ``.tflite`` source
            (:class:`edgecap.runtime.CaptionerOptions`).
        taggers: built-in tagger names whose tags constrain the captions as in ``edgecap
            caption`` (a ``.tflite`` source only; :mod:`edgecap.runtime.guidance`).
        duplicates: a ``.jsonl`` source's rule for two records of one photo
            (:func:`read_caption_records`).

    Returns:
        ``{"source", "split", "images", "beam_size", "length_penalty", "no_repeat_ngram_size", "taggers", "constrained", "metrics", "hallucinated", "seconds", "captions"}``;
        ``metrics`` has ``"CHAIRs"`` and ``"CHAIRi"`` beside BLEU-1..4, METEOR, ROUGE-L and CIDEr-D,
        ``hallucinated`` the ten most hallucinated categories as ``[category, captions naming it
        wrongly, captions naming it]``.

    Raises:
        ValueError: ``taggers`` with a run directory; a ``.jsonl`` source naming a photo that is
            not in ``split``, a malformed, oversized or repeated record (:func:`read_caption_records`).
    """
    from edgecap.runs import read_splits

    source = Path(source)
    t0 = time.time()
    constrained = 0
    if taggers and source.is_dir():
        raise ValueError(
            f"{source}: tags constrain the runtime's search: evaluate an exported .tflite file with --tagger"
        )
    from edgecap.data.tags import tags_for

    if source.suffix == ".jsonl":
        cfg = Config.load(config) if config else default_config()
        items = read_splits(cfg, (split,), data_root)[split]
        captions, items = read_caption_records(source, items, split, duplicates)
        beam_size = length_penalty = no_repeat_ngram_size = None  # as the file's maker chose
    elif source.is_dir():
        from edgecap.models.keras_step import KerasStep, caption_features
        from edgecap.runs import load_run

        cfg, vocab, model = load_run(source)
        beam_size, length_penalty, max_length, no_repeat_ngram_size = _or_defaults(
            cfg.decode, beam_size, length_penalty, max_length, no_repeat_ngram_size
        )
        items = read_splits(cfg, (split,), data_root)[split]
        items = items[:limit] if limit else items
        feats = _features_for_run(cfg, model, items, split)
        hyps = caption_features(
            KerasStep(model),
            feats,
            vocab,
            beam_size,
            length_penalty,
            max_length,
            progress=True,
            no_repeat_ngram_size=no_repeat_ngram_size,
            tags=tags_for(model.step_contract().tags, vocab, items),  # a tag-conditioned model's
        )
        captions = {it.image_id: " ".join(vocab.decode(h.tokens)) for it, h in zip(items, hyps)}
    else:
        from edgecap.runtime import Captioner, CaptionerOptions

        cfg = Config.load(config) if config else default_config()
        items = read_splits(cfg, (split,), data_root)[split]
        items = items[:limit] if limit else items
        captioner = Captioner.from_file(
            source,
            CaptionerOptions(
                beam_size=beam_size,
                length_penalty=length_penalty,
                max_length=max_length,
                no_repeat_ngram_size=no_repeat_ngram_size,
                num_threads=num_threads,
                kernels=kernels,
                taggers=tuple(taggers),
                return_attention=False,
            ),
        )
        beam_size, length_penalty, max_length, no_repeat_ngram_size = _or_defaults(
            captioner.metadata, beam_size, length_penalty, max_length, no_repeat_ngram_size
        )
        captions = {}
        for it in tqdm(items, desc=f"captioning {split} (beam {beam_size})", unit="img"):
            result = captioner.caption(it.path)
            captions[it.image_id] = result.text
            constrained += bool(result.constraints)
    refs = {it.image_id: it.captions for it in items}
    metrics = coco_caption_scores(refs, captions, spice=spice)
    hallucination = chair(refs, captions)
    metrics.update({"CHAIRs": hallucination.chair_s, "CHAIRi": hallucination.chair_i})
    return {
        "source": str(source),
        "split": split,
        "images": len(items),
        "beam_size": beam_size,
        "length_penalty": length_penalty,
        "no_repeat_ngram_size": no_repeat_ngram_size,
        "max_length": max_length,
        "taggers": list(taggers),
        "constrained": constrained,  # captions made to say a tag
        "metrics": metrics,
        "hallucinated": hallucination.most_hallucinated(10),  # [(category, captions naming it wrongly, naming it)]
        "seconds": round(time.time() - t0, 1),
        "captions": [{"image_id": k, "caption": v} for k, v in captions.items()],
    }


#: the longest line of a caption file read (a record is a few hundred bytes; its n-best and tags
#: a few KB): beyond it the line is refused before it is parsed
MAX_RECORD_BYTES = 1 << 20
#: the longest caption scored, in characters (the runtime writes at most max_length words)
MAX_CAPTION_CHARS = 2000
DUPLICATES = ("refuse", "first", "last")


def read_caption_records(
    path: Path, items: list, split: str = "test", duplicates: str = "refuse"
) -> tuple[dict[str, str], list]:
    """The captions of an ``edgecap caption --json`` file for the photos of a split, matched by
    file name; records with an ``error`` are left out. Needs no TensorFlow.

    Args:
        path: the JSON Lines file.
        items: the split's photos.
        duplicates: two records of one photo (the same path twice, or two folders' photos of
            the same file name): ``"refuse"``, or keep the ``"first"`` or the ``"last"``.

    Returns:
        ``({image_id: caption}, the items captioned)``.

    Raises:
        ValueError: naming ``file:line``: a line over :data:`MAX_RECORD_BYTES` (refused before it
            is parsed), not a caption record (not JSON, nested too deeply, ``image`` or
            ``caption`` of another type), a caption over :data:`MAX_CAPTION_CHARS`, a photo not
            in the split, two records of one photo (both lines named) unless ``duplicates``
            says which wins; or no photo of the split at all.
    """
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {DUPLICATES}, got {duplicates!r}")
    by_name = {it.path.name: it for it in items}
    captions: dict[str, str] = {}
    seen: dict[str, tuple[int, str]] = {}  # image id -> (line, the record's image)
    with open(path, encoding="utf-8", errors="strict") as f:
        for n, name, image, caption in _records(f, path):
            if caption is None:
                continue
            if name not in by_name:
                raise ValueError(f"{path}:{n}: {name} is not a photo of the {split} split")
            image_id = by_name[name].image_id
            if image_id in seen:
                first, other = seen[image_id]
                if duplicates == "refuse":
                    raise ValueError(
                        f"{path}:{n}: {image} is the photo of line {first} ({other}) again; "
                        "say which record counts (--duplicates first|last)"
                    )
                if duplicates == "first":
                    continue
            seen[image_id] = (n, image)
            captions[image_id] = caption
    if not captions:
        raise ValueError(f"{path}: no caption of a {split} photo")
    return captions, [it for it in items if it.image_id in captions]


def _records(f, path: Path):
    """``(line number, file name, image, caption or None for an error record)`` of each record."""
    n = 0
    while True:
        try:
            line = f.readline(MAX_RECORD_BYTES + 1)
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}:{n + 1}: not UTF-8 ({e.reason} at byte {e.start})") from None
        if not line:
            return
        n += 1
        if len(line) > MAX_RECORD_BYTES:
            raise ValueError(f"{path}:{n}: a line over {MAX_RECORD_BYTES} bytes is not a caption record")
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except RecursionError:
            raise ValueError(f"{path}:{n}: JSON nested too deeply for a caption record") from None
        except ValueError as e:
            raise ValueError(f"{path}:{n}: not a caption record of `edgecap caption --json` ({e})") from None
        image = record.get("image") if isinstance(record, dict) else None
        caption, error = (record.get("caption"), record.get("error")) if isinstance(record, dict) else (None, None)
        if not isinstance(image, str) or not image:
            raise ValueError(f"{path}:{n}: a caption record needs 'image', a path (got {type(image).__name__})")
        if error is not None:
            yield n, Path(image).name, image, None
            continue
        if not isinstance(caption, str):
            raise ValueError(f"{path}:{n}: 'caption' must be a string, got {type(caption).__name__}")
        if len(caption) > MAX_CAPTION_CHARS:
            raise ValueError(f"{path}:{n}: a caption of {len(caption)} characters (at most {MAX_CAPTION_CHARS})")
        yield n, Path(image).name, image, caption


def evaluate_retrieval(
    source: str | Path,
    split: str = "test",
    data_root: str | None = None,
    config: str | Path | None = None,
    limit: int = 0,
    num_threads: int | None = None,
    kernels: str = "default",
) -> dict:
    """Image annotation and image search on ``split`` (Karpathy & Fei-Fei 2015, Table 1): every
    image against every reference sentence (1,000 × 5,000 on Flickr8k test), scored by eq. 8.

    Args:
        source: an alignment run directory (Keras, best checkpoint) or ``.tflite`` file (runtime).
        config: dataset config for a ``.tflite`` source (default: the shipped alignment config).
        limit, num_threads, kernels: as in :func:`evaluate`.

    Returns:
        ``{"source", "split", "images", "sentences", "metrics": {"annotation R@1", ..., "search med r"}, "paper_flickr8k_brnn", "seconds"}``
        (R@K in %, median ranks 1-based). For a ``.tflite`` file, ``"index search R@1"``, ... too:
        image search as ``Retriever.search`` answers it, through a photo index of the split
        (:func:`index_search_scores`).
    """
    import numpy as np

    from edgecap.evaluation.retrieval import PAPER_FLICKR8K_BRNN, recall_at_k
    from edgecap.runs import read_splits
    from edgecap.runtime.alignment_scores import score_matrix

    source = Path(source)
    t0 = time.time()
    if source.is_dir():
        from edgecap.evaluation.retrieval import evaluate_split
        from edgecap.runs import SplitData, load_run

        cfg, vocab, model = load_run(source)
        items = read_splits(cfg, (split,), data_root)[split]
        items = items[:limit] if limit else items
        metrics = evaluate_split(
            model, SplitData(items, _features_for_run(cfg, model, items, split)), vocab, progress=True
        )
    else:
        from edgecap.runtime import PhotoIndex, Retriever, RetrieverOptions

        cfg = Config.load(config) if config else default_config("visual_semantic_alignment_flickr8k.toml")
        items = read_splits(cfg, (split,), data_root)[split]
        items = items[:limit] if limit else items
        retriever = Retriever.from_file(source, RetrieverOptions(num_threads=num_threads, kernels=kernels))
        regions = np.stack(
            [retriever.embed_image(it.path) for it in tqdm(items, desc=f"embedding {split} photos", unit="img")]
        )
        sentences = [c for it in items for c in it.captions]
        words = retriever.embed_sentences(sentences, strict=False)
        owner = np.repeat(np.arange(len(items)), [len(it.captions) for it in items])
        metrics = recall_at_k(score_matrix(regions, words), owner)
        via_index = index_search_scores(
            PhotoIndex.from_vectors([str(it.path) for it in items], regions, retriever.metadata.flatbuffer_sha256),
            words,
        )
        metrics.update({f"index {k}": v for k, v in recall_at_k(via_index, owner).items() if k.startswith("search")})
    return {
        "source": str(source),
        "split": split,
        "images": len(items),
        "sentences": sum(len(it.captions) for it in items),
        "metrics": metrics,
        "paper_flickr8k_brnn": PAPER_FLICKR8K_BRNN,
        "seconds": round(time.time() - t0, 1),
    }


def evaluate_attributes(source: str | Path, split: str = "test", data_root: str | None = None, limit: int = 0) -> dict:
    """Score an attribute detector run on ``split``: mAP, P@k and R@k (×100, k = 10 or all of a
    smaller vocabulary; :func:`edgecap.evaluation.attributes.attribute_scores`) beside the trivial
    detector that always answers the k attributes most frequent in the training captions.

    Raises:
        RunError, AttributeVocabularyError, DatasetError: with the offending file named.
    """
    from edgecap.evaluation.attributes import attribute_scores, detect, frequency_baseline, top_k
    from edgecap.models.semantic_attention.attributes import AttributeVocabulary
    from edgecap.runs import ATTRIBUTES, load_run, read_splits

    source, t0 = Path(source), time.time()
    cfg, _, model = load_run(source)
    attributes = AttributeVocabulary.load(source / ATTRIBUTES, cfg.model.num_attributes)
    data = read_splits(cfg, ("train", split), data_root)
    items = data[split][:limit] if limit else data[split]
    labels = attributes.labels([it.captions for it in items])
    probabilities = detect(model, _features_for_run(cfg, model, items, split))
    baseline = frequency_baseline(attributes.labels([it.captions for it in data["train"]]), len(items))
    k = top_k(len(attributes))
    return {
        "source": str(source),
        "split": split,
        "images": len(items),
        "attributes": len(attributes),
        "k": k,
        "metrics": attribute_scores(probabilities, labels, k),
        "frequency_baseline": attribute_scores(baseline, labels, k),
        "seconds": round(time.time() - t0, 1),
    }


def caption_report(r: dict) -> str:
    """A captioning report (:func:`evaluate`) as ``edgecap evaluate`` prints it."""
    tags = f", tags of {', '.join(r['taggers'])}: {r['constrained']} captions constrained" if r.get("taggers") else ""
    decoding = (
        "captions as made"
        if r["beam_size"] is None
        else f"beam {r['beam_size']}, length penalty {r['length_penalty']}, no-repeat n-gram {r['no_repeat_ngram_size']}"
    )
    text = f"{r['source']} on {r['split']} ({r['images']} images, {decoding}{tags}):\n  " + "  ".join(
        f"{k} {v:.2f}" for k, v in r["metrics"].items()
    )
    if r.get("hallucinated"):
        text += "\n  most hallucinated (captions naming it wrongly / naming it): " + ", ".join(
            f"{c} {k}/{n}" for c, k, n in r["hallucinated"][:5]
        )
    return text


def index_search_scores(index, sentences: list):
    """``float32 (N, M)`` the scores image search through ``index`` (a
    :class:`~edgecap.runtime.PhotoIndex`) gives: for each sentence ``float (T, h)``, eq. 8 on its
    int4 region vectors for the candidates its pooled vectors pre-select, -inf for the other
    photos (a sentence of no words scores 0 everywhere, as in :func:`score_matrix`)."""
    import numpy as np

    out = np.full((len(index), len(sentences)), -np.inf, np.float32)
    for j, words in enumerate(sentences):
        if len(words):
            rows, scores = index.rank(words)
            out[rows, j] = scores
        else:
            out[:, j] = 0.0
    return out


def retrieval_report(r: dict) -> str:
    """A retrieval report (:func:`evaluate_retrieval`) as ``edgecap evaluate`` prints it, the paper's figures beside."""
    lines = [f"{r['source']} on {r['split']} ({r['images']} images, {r['sentences']} sentences):"]
    for direction in ("annotation", "search", "index search"):
        ours = "  ".join(
            f"{k[len(direction) + 1 :]} {v:.1f}" for k, v in r["metrics"].items() if k.startswith(direction)
        )
        if not ours:
            continue
        paper = "  ".join(
            f"{k.split(' ', 1)[1]} {v:.1f}" for k, v in r["paper_flickr8k_brnn"].items() if k.startswith(direction)
        )
        lines.append(f"  image {direction:12}  {ours}   (paper, Flickr8K BRNN: {paper or '-'})")
    return "\n".join(lines)


def attribute_report(r: dict) -> str:
    """An attribute detector report (:func:`evaluate_attributes`) as ``edgecap evaluate`` prints it."""
    k = r["k"]
    lines = [f"{r['source']} on {r['split']} ({r['images']} images, {r['attributes']} attributes):"]
    for name, m in (("detector", r["metrics"]), (f"{k} most frequent", r["frequency_baseline"])):
        lines.append(f"  {name:18}  mAP {m['mAP']:.1f}  P@{k} {m[f'P@{k}']:.1f}  R@{k} {m[f'R@{k}']:.1f}")
    return "\n".join(lines)


def _or_defaults(defaults, beam_size, length_penalty, max_length, no_repeat_ngram_size) -> tuple:
    """The given decoding settings, each ``None`` replaced by the model's (``DecodeConfig`` or ``ModelMetadata``)."""
    given = {
        "beam_size": beam_size,
        "length_penalty": length_penalty,
        "max_length": max_length,
        "no_repeat_ngram_size": no_repeat_ngram_size,
    }
    return tuple(getattr(defaults, k) if v is None else v for k, v in given.items())


def write_report(report: dict, path: str | Path) -> None:
    atomic_write_text(path, json.dumps(report, indent=1, ensure_ascii=False))


def select_decoding(
    run_dir: str | Path,
    beam_sizes=(1, 3, 5),
    length_penalties=(0.0, 0.25, 0.5, 0.75, 1.0),
    split: str = "dev",
    data_root: str | None = None,
    no_repeat_ngram_sizes=(0,),
) -> dict:
    """Choose beam size, length penalty (and n-gram blocking) by CIDEr-D on the dev split; write ``decoding.json``.

    Every (beam size, length penalty, no-repeat n-gram size) is decoded with the run's best Keras checkpoint;
    the winner becomes the run's default decoding (read by :func:`load_run`, stored in
    exported files' metadata).

    Returns:
        ``{"beam_size", "length_penalty", "no_repeat_ngram_size", "table": [{"beam_size", "length_penalty", "no_repeat_ngram_size", "CIDEr-D", "BLEU-4", "mean_words"}]}``.
    """
    from edgecap.data.tags import tags_for
    from edgecap.evaluation.metrics import bleu4, cider_d
    from edgecap.models.keras_step import KerasStep, caption_features
    from edgecap.runs import DECODING, load_run, read_splits

    run_dir = Path(run_dir)
    cfg, vocab, model = load_run(run_dir)
    items = read_splits(cfg, (split,), data_root)[split]
    feats = _features_for_run(cfg, model, items, split)
    refs = {it.image_id: it.captions for it in items}
    step = KerasStep(model)
    tags = tags_for(model.step_contract().tags, vocab, items)
    table = []
    for n in no_repeat_ngram_sizes:
        for k in beam_sizes:
            for lp in length_penalties if k > 1 else (0.0,):
                hyps = caption_features(
                    step, feats, vocab, k, lp, cfg.decode.max_length, progress=True, no_repeat_ngram_size=n, tags=tags
                )
                caps = {it.image_id: " ".join(vocab.decode(h.tokens)) for it, h in zip(items, hyps)}
                row = {
                    "beam_size": k,
                    "length_penalty": lp,
                    "no_repeat_ngram_size": n,
                    "CIDEr-D": cider_d(refs, caps),
                    "BLEU-4": bleu4(refs, caps),
                    "mean_words": sum(len(h.tokens) for h in hyps) / len(hyps),
                }
                table.append(row)
                print(
                    f"beam {k} length penalty {lp} no-repeat n-gram {n}: dev CIDEr-D {row['CIDEr-D']:.2f}, BLEU-4 {row['BLEU-4']:.2f}, {row['mean_words']:.1f} words",
                    flush=True,
                )
    best = max(table, key=lambda r: r["CIDEr-D"])
    out = {
        "beam_size": best["beam_size"],
        "length_penalty": best["length_penalty"],
        "no_repeat_ngram_size": best["no_repeat_ngram_size"],
        "selected_on": split,
        "table": table,
    }
    atomic_write_text(run_dir / DECODING, json.dumps(out, indent=1))
    return out
