"""``edgecap adapt``: a built-in model (or any run) continued on a folder of your own captioned photos.

The run it makes is an ordinary run directory (:mod:`edgecap.runs`): ``edgecap export DIR
--int8`` calibrates on the folder's training photos, verifies on its dev photos and writes the
card that says what the model was adapted from and on what (:data:`edgecap.runs.ADAPTED`).

What adapting changes in the starting run's configuration (:func:`adaptation_config`):

- the data: the folder (``data.dataset = "folder"``), split by its ``splits.txt`` or by
  ``data.dev_fraction``/``data.test_fraction`` with ``data.split_seed``; no unpaired text;
- the vocabulary: the starting run's words keep their ids and rows; the folder's training
  captions' words seen ``data.min_count`` times are appended (``data.extend_vocabulary``), their
  rows starting at the mean of the old ones (``train.new_word_init = "mean"``);
- the encoder: frozen whole (``model.fine_tune_from = ""``), with the starting run's weights
  (its fine-tuned layers included): only the decoder trains, on cached annotation vectors;
- a short schedule: :data:`SCHEDULE`, early stopping on the dev photos' CIDEr-D.

Any of it can be overridden with ``section.key=value`` like ``edgecap train``.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgecap.config import Config
from edgecap.paths import released_dir
from edgecap.runs import ADAPTED, BEST, CONFIG, VOCAB, RunError, read_splits
from edgecap.runtime.vocabulary import Vocabulary
from edgecap.utils import atomic_write_text, sha256_file

#: the training schedule of an adaptation (``[train]`` keys); a few hundred photos give a few
#: steps an epoch, so no warm-up and no weight averaging, a constant small learning rate, and
#: early stopping after three epochs without a better dev CIDEr-D.
SCHEDULE = dict(
    objective="cross_entropy",
    epochs=15,
    batch_size=32,
    learning_rate=2e-4,
    lr_decay="constant",
    warmup_steps=0,
    ema_momentum=0.0,
    patience=3,
    max_steps_per_epoch=0,
    text_fraction=0.0,
    new_word_init="mean",
    selection_decoding="loss",
)


def starting_run(name_or_run: str | Path) -> Path:
    """The run directory an adaptation starts from: a run directory, or a built-in model's name
    when its checkpoint is released with it (the default model's is, in the released folder).

    Raises:
        RunError: neither a run directory nor a built-in model with a released checkpoint (says which).
    """
    path = Path(name_or_run)
    if path.is_dir():
        for name in (CONFIG, VOCAB, BEST):
            if not (path / name).is_file():
                raise RunError(f"{path / name}: missing; --model must be an edgecap run directory or a built-in model")
        return path.resolve()
    released = released_dir()
    if (released / CONFIG).is_file():
        cfg = Config.load(released / CONFIG)
        if f"{cfg.model.model_name()}_{cfg.data.dataset}" == str(name_or_run):
            return released.resolve()
    from edgecap.runtime.presets import preset_names

    if str(name_or_run) in preset_names():
        raise RunError(
            f"built-in model {name_or_run!r} is released as an int8 file only, without its Keras checkpoint; "
            f"adapt the default model ({_released_name()}) or a run directory of your own"
        )
    raise RunError(
        f"{name_or_run}: neither a run directory nor a built-in model; built-in models: {', '.join(preset_names())}"
    )


def _released_name() -> str:
    cfg = Config.load(released_dir() / CONFIG)
    return f"{cfg.model.model_name()}_{cfg.data.dataset}"


def adaptation_config(
    init: Path,
    folder: str | Path,
    dev_fraction: float = 0.2,
    test_fraction: float = 0.0,
    split_seed: int = 0,
    min_count: int = 2,
    overrides: list[str] | tuple[str, ...] = (),
) -> Config:
    """The configuration of a run that adapts run ``init`` to the photos of ``folder``.

    Args:
        init: the starting run directory (:func:`starting_run`).
        folder: captioned photos (:func:`edgecap.data.readers.read_caption_folder`).
        dev_fraction: share of the folder's photos held out for early stopping, in [0, 1)
            (unused when the folder has a ``splits.txt`` or a Karpathy file).
        test_fraction: share held out for scoring only, in [0, 1).
        split_seed: the seed of that draw.
        min_count: a new word joins the vocabulary when the training captions use it this often.
        overrides: ``section.key=value`` strings applied last.

    Returns:
        the configuration, validated.

    Raises:
        ConfigError: a bad override or value.
    """
    cfg = Config.load(init / CONFIG)
    d = cfg.data
    d.dataset, d.root, d.karpathy_json, d.caption_text = "folder", str(Path(folder).resolve()), "", ""
    d.train_limit = d.dev_limit = 0
    d.horizontal_flip = False
    d.dev_fraction, d.test_fraction, d.split_seed = dev_fraction, test_fraction, split_seed
    d.min_count, d.extend_vocabulary = min_count, True
    cfg.model.encoder_weights = str(init)  # the run's encoder, fine-tuned layers included
    if hasattr(cfg.model, "fine_tune_from"):
        cfg.model.fine_tune_from = ""
    for key, value in SCHEDULE.items():
        setattr(cfg.train, key, value)
    cfg.train.init_from = str(init)
    cfg.apply_overrides(list(overrides))
    return cfg.validate(f"adapting {init} to {folder}")


def record_adaptation(run_dir: str | Path, init: Path, cfg: Config, data_root: str | None = None) -> dict:
    """Write the run's :data:`~edgecap.runs.ADAPTED` (what it starts from, on which photos) and return it.

    Raises:
        DatasetError: the folder is malformed or a split is empty (file named).
    """
    splits = ("train", "dev", "test") if cfg.data.test_fraction or _has_test(cfg, data_root) else ("train", "dev")
    data = read_splits(cfg, splits, data_root)
    record = {
        "from": str(init),
        "from_name": _released_name() if init == released_dir().resolve() else init.name,
        "from_checkpoint_sha256": sha256_file(init / BEST),
        "from_vocabulary": len(Vocabulary.load(init / VOCAB)),
        "data": cfg.data.root,
        "photos": {s: len(items) for s, items in data.items()},
        "split": {
            "dev_fraction": cfg.data.dev_fraction,
            "test_fraction": cfg.data.test_fraction,
            "seed": cfg.data.split_seed,
        },
    }
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(run_dir) / ADAPTED, json.dumps(record, indent=1))
    return record


def _has_test(cfg: Config, data_root: str | None) -> bool:
    from edgecap.data.readers import DatasetError

    try:
        read_splits(cfg, ("test",), data_root)
    except DatasetError:
        return False
    return True


def adapt(
    name_or_run: str | Path,
    folder: str | Path,
    run_dir: str | Path,
    dev_fraction: float = 0.2,
    test_fraction: float = 0.0,
    split_seed: int = 0,
    min_count: int = 2,
    overrides: list[str] | tuple[str, ...] = (),
    cache_dir=None,
) -> Path:
    """Adapt a built-in model or run to ``folder`` (see the module docstring); resumable like
    ``edgecap train`` (the same arguments continue a killed run).

    Returns:
        the best checkpoint's path.

    Raises:
        RunError, ConfigError, DatasetError: with the offending file named. ValueError: the
            model is not a captioner.
    """
    init = starting_run(name_or_run)
    cfg = adaptation_config(init, folder, dev_fraction, test_fraction, split_seed, min_count, overrides)
    from edgecap.models import registry

    train = registry.task_of(cfg.model.architecture).stage("adapt")  # ValueError for a model that cannot
    record_adaptation(run_dir, init, cfg)
    return train(cfg, run_dir, None, cache_dir)
