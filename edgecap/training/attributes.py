"""``edgecap train`` for the attribute detector of semantic attention: the noisy-OR
multiple-instance loss on cached features, selected on dev mAP.

The run directory has the files of a captioner run (:mod:`edgecap.training.trainer`) plus
``attributes.json``, the attribute vocabulary built from the training captions.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from edgecap.config import Config, ConfigError
from edgecap.data.pipeline import image_dataset
from edgecap.evaluation.attributes import attribute_scores, detect, top_k
from edgecap.models.keras_step import cached_annotations
from edgecap.models.semantic_attention.attributes import AttributeVocabulary
from edgecap.runs import ATTRIBUTES, SplitData, build_model, load_split_features
from edgecap.training.trainer import (
    SelectionCheckpoint,
    _optimizer,
    _strategy,
    fit_run,
    run_state,
    start_run,
    steps_per_epoch,
)


class AttributeCheckpoint(SelectionCheckpoint):
    """After each epoch: dev mAP, best/last checkpoints, state, early stopping."""

    best_key, label = "best_map", "dev mAP"

    def __init__(self, run_dir: Path, dev: SplitData, attributes: AttributeVocabulary, cfg: Config, state: dict):
        super().__init__(run_dir, dev, None, cfg, state)
        self.labels = attributes.labels([it.captions for it in dev.items])

    def measure(self) -> tuple[float, dict, str]:
        k = top_k(self.labels.shape[1])
        m = attribute_scores(detect(self.model, cached_annotations(self.model, self.dev.features)), self.labels, k)
        return m["mAP"], {"dev_map": m["mAP"], **m}, f" — P@{k} {m[f'P@{k}']:.1f}, R@{k} {m[f'R@{k}']:.1f}"


def train(
    cfg: Config, run_dir: str | Path, data_root: str | None = None, cache_dir=None, callbacks: list | None = None
) -> Path:
    """Train (or resume) the attribute detector; returns the best checkpoint's path.

    The attribute vocabulary (``model.num_attributes`` words) is built from the training
    captions when the run starts and saved as ``attributes.json``.

    Raises:
        ConfigError, RunError, DatasetError, WeightsError: with the offending file named.
    """
    run_dir, cfg, resuming = start_run(run_dir, cfg)
    t, m = cfg.train, cfg.model
    if t.objective != "cross_entropy" or t.init_from:
        raise ConfigError(
            "the attribute detector trains with its noisy-OR loss from scratch: leave train.objective and train.init_from at their defaults"
        )
    strategy = _strategy(cfg)
    data = load_split_features(cfg, ("train", "dev"), data_root, cache_dir)
    train_split, dev = data["train"], data["dev"]
    state, _ = run_state(run_dir, cfg, resuming, None, train_split, AttributeCheckpoint.best_key)
    if resuming:
        attributes = AttributeVocabulary.load(run_dir / ATTRIBUTES, m.num_attributes)
    else:
        attributes = AttributeVocabulary.from_captions([it.captions for it in train_split.items], m.num_attributes)
        attributes.save(run_dir / ATTRIBUTES)
    labels = tf.constant(attributes.labels([it.captions for it in train_split.items]))  # (N, A) uint8
    dataset = image_dataset(train_split.features, t.batch_size, shuffle=True, seed=t.seed + state["epoch"]).map(
        lambda f, idx: ({"annotations": f}, tf.gather(labels, idx))
    )
    steps = steps_per_epoch(len(train_split.items), t)
    with strategy.scope():
        model = build_model(cfg, 0, cache_dir=cache_dir)
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
        AttributeCheckpoint(run_dir, dev, attributes, cfg, state),
        callbacks,
    )
