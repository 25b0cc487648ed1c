"""``edgecap train`` for the image–sentence alignment model: the ranking loss on cached features.

The run directory has the same files as a captioner's (:mod:`edgecap.training.trainer`):
``config.toml``, ``vocab.json``, ``last.weights.h5``, ``best.weights.h5`` and ``state.json``,
each written atomically, so an interrupted run resumes after its last finished epoch. The
best epoch is the one with the highest dev R-sum (the six R@K figures of
:func:`edgecap.evaluation.retrieval.recall_at_k`).
"""

from __future__ import annotations

from pathlib import Path

from edgecap.config import Config, ConfigError
from edgecap.data.pipeline import encode_sentences, sentence_dataset
from edgecap.evaluation.retrieval import evaluate_split, rsum
from edgecap.models.keras_step import cached_annotations
from edgecap.runs import BEST, SplitData, build_model, load_split_features
from edgecap.training.trainer import (
    SelectionCheckpoint,
    _initial_run,
    _optimizer,
    _strategy,
    fit_run,
    run_state,
    start_run,
    steps_per_epoch,
    warm_start,
)


class RecallCheckpoint(SelectionCheckpoint):
    """After each epoch: dev R-sum, best/last checkpoints, state, early stopping."""

    best_key, label = "best_rsum", "dev R-sum"

    def measure(self) -> tuple[float, dict, str]:
        m = evaluate_split(
            self.model, SplitData(self.dev.items, cached_annotations(self.model, self.dev.features)), self.vocab
        )
        detail = " — " + ", ".join(
            f"{d} R@1/5/10 {m[f'{d} R@1']:.1f}/{m[f'{d} R@5']:.1f}/{m[f'{d} R@10']:.1f}"
            for d in ("annotation", "search")
        )
        return rsum(m), {"dev_rsum": rsum(m), **m}, detail


def train(
    cfg: Config, run_dir: str | Path, data_root: str | None = None, cache_dir=None, callbacks: list | None = None
) -> Path:
    """Train (or resume) the alignment model with the ranking loss of eq. 9; returns the best checkpoint's path.

    ``train.init_from`` starts from another alignment run's best checkpoint and vocabulary
    (e.g. the hardest-negative loss after a run of the summed one). A batch holds
    ``train.batch_size`` (image, sentence) pairs; every other image of the batch
    is a negative for a sentence and every other sentence a negative for an image, except
    the sentences of the same photo. With ``model.loss = "hardest"`` the summed loss runs
    for ``model.warmup_epochs`` epochs first.

    Raises:
        ConfigError, RunError, DatasetError, WeightsError: with the offending file named.
    """
    run_dir, cfg, resuming = start_run(run_dir, cfg)
    t, m = cfg.train, cfg.model
    if t.objective != "cross_entropy":
        raise ConfigError("the alignment model trains with its ranking loss only: leave train.objective at its default")
    init = (
        None if resuming else _initial_run(cfg)
    )  # train.init_from: continue another alignment run (e.g. with model.loss = "hardest")
    strategy = _strategy(cfg)
    data = load_split_features(cfg, ("train", "dev"), data_root, cache_dir)
    train_split, dev = data["train"], data["dev"]
    state, vocab = run_state(run_dir, cfg, resuming, init, train_split, RecallCheckpoint.best_key)
    index, tokens = encode_sentences(train_split.items, vocab, m.max_words)
    dataset = sentence_dataset(
        train_split.features, index, tokens, t.batch_size, shuffle=True, seed=t.seed + state["epoch"]
    )
    steps = steps_per_epoch(len(index), t)
    with strategy.scope():
        model = build_model(cfg, len(vocab), cache_dir=cache_dir)
        if init:
            warm_start(model, init)
            print(f"starting from {init / BEST}")
        elif m.word_vectors and not resuming:
            from edgecap.models.alignment.model import load_word_vectors

            matrix, found = load_word_vectors(m.word_vectors, vocab.words, m.embedding_dim)
            model.word_embedding.embeddings.assign(matrix)
            print(f"word vectors: {found} of {len(vocab)} words from {m.word_vectors}")
        model.hardest_from_step = m.warmup_epochs * steps
        model.compile(optimizer=_optimizer(cfg, steps), jit_compile=t.jit_compile)
        model.optimizer.build(model.trainable_variables)
    return fit_run(
        model,
        dataset,
        steps,
        run_dir,
        cfg,
        state,
        resuming,
        RecallCheckpoint(run_dir, dev, vocab, cfg, state),
        callbacks,
    )
