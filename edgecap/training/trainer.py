"""``edgecap train`` for captioners: teacher-forced training on cached features, with
resumable checkpoints (the run directory's files: :mod:`edgecap.runs`).

Every file is written atomically; killed at any point, the next ``edgecap train`` on the
same directory continues from the last finished epoch.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import keras
import tensorflow as tf

from edgecap.config import Config, ConfigError, TrainConfig
from edgecap.data.pipeline import (
    caption_dataset,
    encode_captions,
    encode_texts,
    image_dataset,
    mirror_token_map,
    person_free,
)
from edgecap.data.readers import read_caption_text
from edgecap.evaluation.metrics import cider_d
from edgecap.models.keras_step import KerasStep, cached_annotations, caption_features
from edgecap.paths import resolve_data_root
from edgecap.runs import (
    BEST,
    CONFIG,
    LAST,
    STATE,
    VOCAB,
    RunError,
    SplitData,
    build_model,
    load_run,
    load_split_features,
)
from edgecap.runtime.vocabulary import Vocabulary
from edgecap.utils import atomic_path, atomic_write_text

log = logging.getLogger(__name__)


def _dev_cider(model, dev: SplitData, vocab: Vocabulary, cfg: Config) -> float:
    d = cfg.decode
    k, lp, n = (
        (1, 0.0, 0)
        if cfg.train.selection_decoding == "greedy"
        else (d.beam_size, d.length_penalty, d.no_repeat_ngram_size)
    )
    hyps = caption_features(
        KerasStep(model),
        cached_annotations(model, dev.features),
        vocab,
        k,
        lp,
        d.max_length,
        no_repeat_ngram_size=n,
        tags=dev.tags,
    )
    return cider_d(dev.references, {it.image_id: " ".join(vocab.decode(h.tokens)) for it, h in zip(dev.items, hyps)})


def dev_cross_entropy(model, dev: SplitData, vocab: Vocabulary, max_length: int, batch_size: int = 64) -> float:
    """Mean teacher-forced cross-entropy of ``dev``'s reference captions, in nats a word (the
    ``<end>`` token counted): the selection score ``train.selection_decoding = "loss"`` uses,
    far steadier than a CIDEr-D of a few dozen photos."""
    index, captions = encode_captions(dev.items, vocab, max_length)
    dataset = caption_dataset(dev.features, index, captions, batch_size, shuffle=False, seed=0)
    total, words = 0.0, 0.0
    for inputs, targets in dataset:
        logits = model(inputs, training=False)  # (B, T, V)
        mask = tf.cast(targets != vocab.pad_id, tf.float32)  # (B, T)
        nll = tf.keras.losses.sparse_categorical_crossentropy(targets, tf.cast(logits, tf.float32), from_logits=True)
        total += float(tf.reduce_sum(nll * mask))
        words += float(tf.reduce_sum(mask))
    return total / max(words, 1.0)


class SelectionCheckpoint(keras.callbacks.Callback):
    """After each epoch: a dev score, best/last checkpoints, state, early stopping.

    The captioners' score is dev CIDEr-D (``train.selection_decoding``); another task subclasses
    it with its own :meth:`measure`, state key and label.
    """

    best_key, label = "best_cider_d", "dev CIDEr-D"
    sign = 1.0  #: the score as printed is sign × score (-1: a loss, lower is better)

    def __init__(
        self,
        run_dir: Path,
        dev: SplitData,
        vocab: Vocabulary,
        cfg: Config,
        state: dict,
        measure_start: bool = False,
        extra_devs: dict[str, SplitData] | None = None,
    ):
        super().__init__()
        self.run_dir, self.dev, self.vocab, self.cfg, self.state = run_dir, dev, vocab, cfg, state
        self.measure_start = measure_start
        self.extra_devs = extra_devs or {}  #: more dev sets (data.extra_dev): the score is the mean over all
        if cfg.train.selection_decoding == "loss":  # no decoding: minus the dev captions' cross-entropy
            self.best_key, self.label, self.sign = "best_minus_dev_cross_entropy", "dev cross-entropy", -1.0

    def on_train_begin(self, logs=None):
        """With ``measure_start`` (a warm-started run, before its first epoch): score the starting
        weights as epoch 0 and keep them as the best checkpoint until an epoch beats them, so a
        continued run never ends worse on dev than where it started."""
        if not self.measure_start or self.state["epoch"] or self.state["history"]:
            return
        score, fields, detail = self.measure()
        score = agreed(score)
        self.state["history"].append({"epoch": 0, **fields})
        self.state.update({self.best_key: score, "best_epoch": 0})
        if is_chief():
            for name in (BEST, LAST):  # a run killed in epoch 1 resumes from here
                with atomic_path(self.run_dir / name) as tmp:
                    self.model.save_weights(tmp)
            atomic_write_text(self.run_dir / STATE, json.dumps(self.state, indent=1))
        print(f"epoch 0 (the starting weights): {self.label} {self.sign * score:.3f}{detail}", flush=True)

    def measure(self) -> tuple[float, dict, str]:
        """``(score, fields for the epoch's history, detail for the log line)``; higher is better.

        With extra dev sets the score is the mean of every set's, each set's in the fields
        (``dev:coco_dev_cider_d``) and the detail."""
        if self.cfg.train.selection_decoding == "loss":
            key, one = (
                "dev_cross_entropy",
                lambda dev: -dev_cross_entropy(self.model, dev, self.vocab, self.cfg.data.max_length),
            )
        else:
            key, one = "dev_cider_d", lambda dev: _dev_cider(self.model, dev, self.vocab, self.cfg)
        score = one(self.dev)
        fields = {key: self.sign * score}
        if not self.extra_devs:
            return score, fields, ""
        scores = [score]
        for name, dev in self.extra_devs.items():
            scores.append(one(dev))
            fields[f"{name}_{key.removeprefix('dev_')}"] = self.sign * scores[-1]
        detail = " (mean of " + ", ".join(f"{k} {v:.3f}" for k, v in fields.items()) + ")"
        return sum(scores) / len(scores), fields, detail

    def on_epoch_end(self, epoch, logs=None):
        t0 = time.time()
        score, fields, detail = self.measure()
        score = agreed(score)  # every worker decides on the same number
        chief = is_chief()  # only the chief writes; the other workers keep the state in memory
        st = self.state
        st["history"].append({"epoch": epoch + 1, **fields, **{k: float(v) for k, v in (logs or {}).items()}})
        if score > st[self.best_key]:
            st.update({self.best_key: score, "best_epoch": epoch + 1, "wait": 0})
            if chief:
                with atomic_path(self.run_dir / BEST) as tmp:
                    self.model.save_weights(tmp)
        else:
            st["wait"] += 1
        st["epoch"] = epoch + 1
        if chief:
            with atomic_path(self.run_dir / LAST) as tmp:
                self.model.save_weights(tmp)
            atomic_write_text(self.run_dir / STATE, json.dumps(st, indent=1))
        print(
            f"epoch {epoch + 1}: {self.label} {self.sign * score:.3f}{detail} (best {self.sign * st[self.best_key]:.3f} at epoch {st['best_epoch']}, selection {time.time() - t0:.0f}s)",
            flush=True,
        )
        if st["wait"] >= self.cfg.train.patience:
            print(f"early stopping: no better {self.label} for {st['wait']} epochs")
            self.model.stop_training = True


_MULTI_WORKER: list = []  # the process's one MultiWorkerMirroredStrategy (it can be made only once)


def is_chief() -> bool:
    """Whether this process writes the run's files: always, except on the workers of a
    multi-worker run other than the chief (TF_CONFIG's ``chief``, else ``worker`` 0)."""
    if not _MULTI_WORKER:
        return True
    resolver = _MULTI_WORKER[0].cluster_resolver
    cluster = resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster
    )


def agreed(score: float) -> float:
    """``score`` averaged over the workers of a multi-worker run (the same number on every
    worker, so that they keep the same epoch and stop together); as it is otherwise."""
    if not _MULTI_WORKER:
        return score
    return float(_MULTI_WORKER[0].reduce("MEAN", tf.constant(score, tf.float32), axis=None))


def multi_worker_fit(model) -> None:
    """Let ``model.fit`` run under ``MultiWorkerMirroredStrategy`` in Keras 3, which does not
    (keras-team/keras#20585, open): its symbolic build all-reduces the first data batch, and
    its train function reduces each scalar log with ``axis=0``; both raise. Here the build
    takes this worker's first replica's batch, and the train function runs ``train_step`` on
    every replica (gradients are all-reduced inside it, as always) and reads the logs of the
    first local replica. Nothing else of ``fit`` changes."""
    import types

    strategy = model.distribute_strategy

    def local(value):
        return (
            strategy.experimental_local_results(value)[0]
            if isinstance(value, tf.distribute.DistributedValues)
            else value
        )

    def symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(local, next(it))
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function

        @tf.function
        def one_step(data):
            return tf.nest.map_structure(local, strategy.run(self.train_step, args=(data,)))

        self.train_function = lambda iterator: one_step(next(iterator))
        return self.train_function

    if type(model)._maybe_symbolic_build is keras.Model._maybe_symbolic_build:  # not a model's own (SCST's)
        model._maybe_symbolic_build = types.MethodType(symbolic_build, model)
    model.make_train_function = types.MethodType(make_train_function, model)


def _strategy(cfg: Config) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy of ``train.distribute``.

    ``"multi_worker"``: ``tf.distribute.MultiWorkerMirroredStrategy`` configured from
    ``$TF_CONFIG`` (as Kubernetes, Vertex AI and Slurm wrappers set it), made once per process,
    before TensorFlow runs anything (:func:`start_run` makes it first). ``train.batch_size``
    is the global batch, split evenly over all replicas of all workers; the learning rate is
    not scaled.
    """
    mode = cfg.train.distribute  # one of config.DISTRIBUTES
    if mode == "multi_worker":
        if not _MULTI_WORKER:
            _MULTI_WORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
        return _MULTI_WORKER[0]
    gpus = tf.config.list_logical_devices("GPU")
    if mode == "mirrored" or (mode == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def _optimizer(cfg: Config, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    t = cfg.train
    total = max(1, t.epochs * steps_per_epoch)
    if t.lr_decay == "cosine":
        warmup = min(t.warmup_steps, total // 2)
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else t.learning_rate,
            max(1, total - warmup),
            alpha=t.min_lr_ratio,
            warmup_target=t.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    else:  # "constant" (Config.validate knows no other)
        lr = t.learning_rate
    ema = {"use_ema": True, "ema_momentum": t.ema_momentum} if t.ema_momentum else {}
    if t.weight_decay:
        return keras.optimizers.AdamW(lr, weight_decay=t.weight_decay, clipnorm=t.clipnorm or None, **ema)
    return keras.optimizers.Adam(lr, clipnorm=t.clipnorm or None, **ema)


class AveragedWeights(keras.callbacks.SwapEMAWeights):
    """Puts the averaged (EMA) weights in the model at each epoch's end, for selection and checkpoints.

    Checkpoints then hold the average as the model's weights and the raw weights in the
    optimizer's average slot; a resumed run (``resumed=True``) swaps them back before training.
    """

    def __init__(self, resumed: bool = False):
        super().__init__(swap_on_epoch=True)
        self._ema_weights_in_model = resumed


def _check_resume(run_dir: Path, cfg: Config) -> Config:
    saved = Config.load(run_dir / CONFIG)
    if saved.to_toml() != cfg.to_toml():
        raise RunError(
            f"{run_dir / CONFIG}: the run directory was started with a different configuration; resume it without changes or choose a new --run-dir"
        )
    return saved


def start_run(run_dir: str | Path, cfg: Config) -> tuple[Path, Config, bool]:
    """``(run_dir, config, resuming)``: the saved config when ``run_dir`` holds a started run
    (checked equal to ``cfg``), validated; the random seed set.

    Raises:
        ConfigError: a bad value. RunError: the run was started with another configuration.
    """
    run_dir = Path(run_dir)
    if cfg.train.distribute == "multi_worker":  # before TensorFlow runs anything: collectives are set up at startup
        _strategy(cfg)
    resuming = (run_dir / STATE).is_file()
    if resuming:
        cfg = _check_resume(run_dir, cfg)
    cfg.validate("config")
    keras.utils.set_random_seed(cfg.train.seed)
    return run_dir, cfg, resuming


def run_state(
    run_dir: Path,
    cfg: Config,
    resuming: bool,
    init: Path | None,
    train_split: SplitData,
    best_key: str,
    text: list[str] | None = None,
) -> tuple[dict, Vocabulary]:
    """``(state, vocabulary)`` of a run: read back when resuming; else a fresh state (``best_key``
    the selection score's name) and the vocabulary of ``init`` or of the training captions,
    widened with the words of the unpaired ``text`` (``data.caption_text``), saved with the
    config into a new ``run_dir``."""
    if resuming:
        return json.loads((run_dir / STATE).read_text()), Vocabulary.load(run_dir / VOCAB)
    vocab = (
        Vocabulary.load(init / VOCAB)
        if init
        else Vocabulary.build((c for it in train_split.items for c in it.captions), cfg.data.min_count)
    )
    if init and cfg.data.extend_vocabulary:  # the training captions' new words, after init's (adapting a model)
        vocab = vocab.extended((c for it in train_split.items for c in it.captions), cfg.data.min_count)
    if text:  # the unpaired text's words, after the paired ones (whose ids, and rows in init, stay)
        vocab = vocab.extended(text, cfg.data.caption_text_min_count)
    if is_chief():
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / CONFIG)
        vocab.save(run_dir / VOCAB)
    return {"epoch": 0, best_key: -1.0, "best_epoch": 0, "wait": 0, "history": []}, vocab


def steps_per_epoch(examples: int, t: TrainConfig) -> int:
    """Full batches per epoch, capped by ``train.max_steps_per_epoch``.

    Raises:
        ConfigError: not one full batch.
    """
    steps = examples // t.batch_size
    if t.max_steps_per_epoch:
        steps = min(steps, t.max_steps_per_epoch)
    if steps < 1:
        raise ConfigError(f"train.batch_size {t.batch_size} is larger than the {examples} training examples")
    return steps


def _initial_run(cfg: Config) -> Path | None:
    """The run directory named by ``train.init_from``, checked to hold a model like ``cfg``'s.

    Raises:
        ConfigError: SCST without ``init_from``. RunError: files missing or another model.
    """
    if not cfg.train.init_from:
        if cfg.train.objective == "self_critical":
            raise ConfigError(
                "train.objective = 'self_critical' starts from a trained run: set train.init_from to its run directory"
            )
        return None
    init = Path(cfg.train.init_from)
    for name in (CONFIG, VOCAB, BEST):
        if not (init / name).is_file():
            raise RunError(f"{init / name}: missing; train.init_from must be an edgecap run directory")
    if Config.load(init / CONFIG).model.architecture != cfg.model.architecture:
        raise RunError(
            f"{init / CONFIG}: another model.architecture than this run's; train.init_from needs the same family"
        )
    return init


def warm_start(model, init: Path, vocab_size: int | None = None, new_words: str = "random") -> None:
    """Copy the weights of run ``init``'s best checkpoint into ``model``, layer by layer.

    The two configs may differ in what does not shape a weight (dropout, ``fine_tune_from``,
    soft or hard attention); each of ``model``'s layers (encoder, decoder) must have its
    counterpart in ``init``, weight for weight. Variables of the model itself, outside its
    layers (hard attention's REINFORCE baseline, non-trainable), keep their initial values.

    A layer of ``model`` may have weights that ``init``'s lacks (a decoder given tag inputs): they
    keep their initial values, and the others are matched by name.

    With ``vocab_size`` larger than ``init``'s vocabulary (a vocabulary widened by unpaired
    text or by the training captions, :meth:`Vocabulary.extended`), a weight with a vocabulary
    axis (word embeddings, the output layer) takes ``init``'s rows for the old words; the new
    words' rows keep their initial values (``new_words="random"``) or start at the mean of the
    old rows (``"mean"``: a new word starts as an average word), except output biases, which
    start at the lowest old bias (a new word starts as unlikely as the rarest known one, so
    training on photos is not disturbed).

    Raises:
        RunError: a layer or weight without its counterpart, or of another shape (named).
    """
    _, init_vocab, source = load_run(init)
    old_v = len(init_vocab)
    if [type(x).__name__ for x in model.layers] != [type(x).__name__ for x in source.layers]:
        raise RunError(
            f"{init / BEST}: its layers {[x.name for x in source.layers]} differ from this model's {[x.name for x in model.layers]}"
        )
    for ours, theirs in zip(model.layers, source.layers):
        pairs = list(zip(ours.weights, theirs.weights))
        if len(ours.weights) != len(theirs.weights):  # a layer that grew (tag inputs): match by name
            by_name = {_local_path(w): w for w in theirs.weights}
            missing = [w.path for w in theirs.weights if _local_path(w) not in {_local_path(v) for v in ours.weights}]
            if missing:
                raise RunError(
                    f"{init / BEST}: layer {theirs.name} has weights this model lacks ({', '.join(missing)}); train.init_from needs a run of the same sizes"
                )
            pairs = [(v, by_name[_local_path(v)]) for v in ours.weights if _local_path(v) in by_name]
            new = [v.path for v in ours.weights if _local_path(v) not in by_name]
            print(f"warm start: {', '.join(new)} start afresh (not in {init / BEST})")
        for v, w in pairs:
            if tuple(v.shape) == tuple(w.shape):
                v.assign(w.value)
                continue
            axes = [i for i, (a, b) in enumerate(zip(v.shape, w.shape)) if a != b]
            if not (vocab_size and len(v.shape) == len(w.shape) and len(axes) == 1) or (
                v.shape[axes[0]],
                w.shape[axes[0]],
            ) != (vocab_size, old_v):
                raise RunError(
                    f"{init / BEST}: weight {w.path} has shape {tuple(w.shape)}, this model's {tuple(v.shape)}; train.init_from needs a run of the same sizes"
                )
            value = keras.ops.convert_to_numpy(v.value).copy()
            old = keras.ops.convert_to_numpy(w.value)
            index = [slice(None)] * len(v.shape)
            index[axes[0]] = slice(0, old_v)
            value[tuple(index)] = old
            new = [slice(None)] * len(v.shape)
            new[axes[0]] = slice(old_v, None)
            if len(v.shape) == 1:  # an output bias: new words start as unlikely as the rarest old word
                value[old_v:] = old.min()
            elif new_words == "mean":
                value[tuple(new)] = old.mean(axis=axes[0], keepdims=True)
            v.assign(value)


def _training_tags(
    decl, vocab: Vocabulary, train_split: SplitData, devs: list[SplitData], text, run_dir: Path, cache_dir, seed: int
) -> tuple[dict, dict | None]:
    """A tag-conditioned run's tags: the tag tensors of the training photos and (for text
    training) of the sentences, and each dev split's (set on it, for the selection).

    The photos' tags are the built-in tagger's (:func:`edgecap.data.tags.cached_tags`); the
    sentences' are pseudo-tags drawn at the rates measured on the training photos, which are
    written to the run directory (``tag_rates.json``)."""
    from edgecap.data.tags import cached_tags, category_words, measure_tag_rates, pseudo_tags, tag_arrays, tags_for

    for split in devs:
        split.tags = tags_for(decl, vocab, split.items, cache_dir, "tagging dev photos")
    tags = cached_tags(train_split.items, decl.tagger, cache_dir, "tagging training photos")
    photo = tag_arrays(tags, decl, vocab.index)
    if not text:
        return photo, None
    categories = category_words(decl.tagger)
    rates = measure_tag_rates(train_split.items, tags, categories, decl.min_score)
    if is_chief():
        atomic_write_text(run_dir / "tag_rates.json", json.dumps(rates.to_json(), indent=1))
    return photo, tag_arrays(pseudo_tags(text, rates, categories, seed), decl, vocab.index)


def _local_path(weight) -> str:
    """A weight's path without the model's name, which differs between two built models
    (``show_attend_tell_1/tag_projection/kernel`` → ``tag_projection/kernel``)."""
    return weight.path.split("/", 1)[-1]


def train(
    cfg: Config, run_dir: str | Path, data_root: str | None = None, cache_dir=None, callbacks: list | None = None
) -> Path:
    """Train (or resume) a captioner; returns the path of the best checkpoint.

    ``train.objective`` picks teacher-forced cross-entropy (Xu et al. 2015) or self-critical
    sequence training on CIDEr-D (:mod:`edgecap.training.self_critical`), which starts from the
    best checkpoint and vocabulary of ``train.init_from``.

    Args:
        cfg: the configuration (ignored in favour of the saved one when resuming; must match it).
        run_dir: run directory; if it holds a ``state.json`` the run resumes after its last epoch.
        data_root: dataset folder override.
        cache_dir: feature cache folder (default ``$EDGECAP_CACHE_DIR`` or ``~/.cache/edgecap``).
        callbacks: extra Keras callbacks.

    Raises:
        ConfigError, RunError, DatasetError, WeightsError: with the offending file named.
    """
    run_dir, cfg, resuming = start_run(run_dir, cfg)
    t = cfg.train
    init = None if resuming else _initial_run(cfg)
    if t.mixed_precision == "on" or (t.mixed_precision == "auto" and tf.config.list_logical_devices("GPU")):
        keras.mixed_precision.set_global_policy("mixed_float16")

    strategy = _strategy(cfg)
    if t.objective == "self_critical" and cfg.model.fine_tune_from:
        raise ConfigError("train.objective = 'self_critical' trains the decoder only; leave model.fine_tune_from empty")
    flip = cfg.data.horizontal_flip and t.objective == "cross_entropy"
    data = load_split_features(
        cfg, ("train", "dev"), data_root, cache_dir, mirrored=("train",) if flip else (), extra_dev=True
    )
    train_split, dev = data["train"], data["dev"]
    extra_devs = {s: split for s, split in data.items() if s.startswith("dev:")}
    # the photos that train with their captions: their lines of the unpaired text would count twice
    paired = {Path(it.image_id).stem for it in train_split.items} if cfg.data.extra_train else ()
    text = read_caption_text(resolve_data_root(cfg.data.caption_text), paired) if cfg.data.caption_text else None
    best_key = "best_minus_dev_cross_entropy" if t.selection_decoding == "loss" else SelectionCheckpoint.best_key
    state, vocab = run_state(run_dir, cfg, resuming, init, train_split, best_key, text)
    # A resumed run draws a new shuffle order rather than replaying the first epoch's.
    seed = t.seed + state["epoch"]
    self_critical = t.objective == "self_critical"
    with strategy.scope():
        model = build_model(
            cfg, len(vocab), cache_dir=cache_dir
        )  # frozen encoder layers: training reads their cached output
    tags_decl = model.step_contract().tags
    if tags_decl is not None and self_critical:
        raise ConfigError("model.tag_slots trains with teacher forcing: set train.objective = 'cross_entropy'")
    photo_tags = text_tags = None
    if tags_decl is not None:  # the tagger's tags of every photo; pseudo-tags for the text
        photo_tags, text_tags = _training_tags(
            tags_decl, vocab, train_split, [dev, *extra_devs.values()], text, run_dir, cache_dir, t.seed
        )
    if self_critical:  # a batch is batch_size images, each with num_samples sampled captions
        examples = len(train_split.items)
        dataset = image_dataset(train_split.features, t.batch_size, shuffle=True, seed=seed)
    else:  # a batch is batch_size (image, reference caption) pairs
        index, captions = encode_captions(train_split.items, vocab, cfg.data.max_length)
        examples = len(index)
        mirrored = dict(mirrored=data["train-mirrored"].features, mirror_ids=mirror_token_map(vocab)) if flip else {}
        if t.text_fraction:  # an epoch still sees each paired caption about once
            mirrored.update(text_captions=encode_texts(text, vocab, cfg.data.max_length), text_fraction=t.text_fraction)
            examples = round(examples / (1.0 - t.text_fraction))
        if photo_tags is not None:
            mirrored.update(tags=photo_tags, text_tags=text_tags, annotation_dropout=t.annotation_dropout)
        if t.person_free_share:  # against the data's person prior (issue 44)
            free, text_free = person_free(train_split.items, index, text if t.text_fraction else ())
            shares = f"{free.mean():.1%} of the captions" + (
                f", {text_free.mean():.1%} of the sentences" if len(text_free) else ""
            )
            print(f"person-free: {shares}; drawn at {t.person_free_share:.0%}")
            mirrored.update(favoured=free, text_favoured=text_free, favoured_share=t.person_free_share)
        dataset = caption_dataset(
            train_split.features, index, captions, t.batch_size, shuffle=True, seed=seed, **mirrored
        )
    steps = steps_per_epoch(examples, t)
    with strategy.scope():
        if self_critical:  # the same weights, trained on sampled captions
            from edgecap.training.self_critical import self_critical as scst_variant

            model = scst_variant(model)
        if not resuming:
            model.prepare(vocab)
        if init:  # before compiling: the optimizer starts afresh
            warm_start(model, init, len(vocab), t.new_word_init)
            print(f"starting from {init / BEST}")
        if self_critical:
            from edgecap.training.self_critical import CorpusCiderD

            reward = CorpusCiderD([it.captions for it in train_split.items])
            model.configure_self_critical(vocab, reward, t.num_samples, cfg.decode.max_length, t.seed)
            model.compile(optimizer=_optimizer(cfg, steps), jit_compile=False)  # the reward runs on the host
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=vocab.pad_id)
            if t.label_smoothing:
                loss = _smoothed_loss(t.label_smoothing, vocab.pad_id)
            model.compile(optimizer=_optimizer(cfg, steps), loss=loss, jit_compile=t.jit_compile)
        model.optimizer.build(model.trainable_variables)
    return fit_run(
        model,
        dataset,
        steps,
        run_dir,
        cfg,
        state,
        resuming,
        SelectionCheckpoint(run_dir, dev, vocab, cfg, state, measure_start=init is not None, extra_devs=extra_devs),
        callbacks,
    )


def fit_run(
    model,
    dataset,
    steps: int,
    run_dir: Path,
    cfg: Config,
    state: dict,
    resuming: bool,
    selection: SelectionCheckpoint,
    callbacks: list | None = None,
) -> Path:
    """Fit a compiled model epoch by epoch, from the last checkpoint when ``resuming``, with
    weight averaging (``train.ema_momentum``), ``selection`` and TensorBoard; returns the best
    checkpoint's path."""
    t = cfg.train
    if resuming:
        model.load_weights(run_dir / LAST)
        print(
            f"resuming {run_dir} after epoch {state['epoch']} (best {selection.label} {selection.sign * state[selection.best_key]:.3f})"
        )
        if state["wait"] >= t.patience or state["epoch"] >= t.epochs:
            print("training had already finished")
            return run_dir / BEST
    averaging = [AveragedWeights(resumed=resuming)] if t.ema_momentum else []  # must run before the selection
    logs = [keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False)] if is_chief() else []
    callbacks = [keras.callbacks.TerminateOnNaN(), *averaging, selection, *logs, *(callbacks or [])]
    if _MULTI_WORKER:
        multi_worker_fit(model)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)  # each worker takes its share of every global batch
    model.fit(
        dataset.repeat(),
        epochs=t.epochs,
        initial_epoch=state["epoch"],
        steps_per_epoch=steps,
        callbacks=callbacks,
        shuffle=False,
        verbose=1 if _interactive() else 2,
    )
    return run_dir / BEST


def _smoothed_loss(smoothing: float, pad_id: int):
    def loss(y_true, logits):
        y_true = tf.cast(y_true, tf.int32)
        vocab = tf.shape(logits)[-1]
        onehot = tf.one_hot(y_true, vocab)
        per_token = keras.losses.categorical_crossentropy(
            onehot, tf.cast(logits, tf.float32), from_logits=True, label_smoothing=smoothing
        )
        mask = tf.cast(y_true != pad_id, tf.float32)
        return tf.reduce_sum(per_token * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)

    return loss


def _interactive() -> bool:
    import sys

    return sys.stdout.isatty()
