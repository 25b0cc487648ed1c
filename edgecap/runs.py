"""A run directory: what ``edgecap train`` writes and every later stage reads.

::

    config.toml          the full configuration of the run
    vocab.json           the vocabulary built from the training captions
    last.weights.h5      model + optimizer after the last finished epoch
    state.json           epoch, best dev score, early-stopping counter, history
    best.weights.h5      model of the epoch with the best dev score (what export uses)
    decoding.json        decoding chosen on dev (``edgecap select-decoding``), optional
    attributes.json      an attribute detector's attribute vocabulary
    adapted.json         what an adapted run started from, on which photos (``edgecap adapt``)
    logs/                TensorBoard

Training (:mod:`edgecap.training`), evaluation, export and release read runs through this
module only; it knows the models through the registry, never one family.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgecap.config import Config, ConfigError
from edgecap.data.features import SplitData, cached_features
from edgecap.data.readers import CaptionedImage, DatasetError, FolderSplit, read_caption_folder, read_dataset
from edgecap.paths import resolve_data_root
from edgecap.runtime.vocabulary import Vocabulary
from edgecap.utils import atomic_path

__all__ = [
    "ADAPTED",
    "ATTRIBUTES",
    "BEST",
    "CONFIG",
    "DECODING",
    "LAST",
    "STATE",
    "VOCAB",
    "RunError",
    "SplitData",
    "build_model",
    "check_run",
    "load_run",
    "load_split_features",
    "extra_dev_name",
    "folders",
    "read_splits",
    "run_encoder_weights",
]

CONFIG, VOCAB, LAST, STATE, BEST = "config.toml", "vocab.json", "last.weights.h5", "state.json", "best.weights.h5"
DECODING = "decoding.json"  #: beam size and length penalty chosen on dev (edgecap select-decoding)
ATTRIBUTES = "attributes.json"  #: an attribute detector's attribute vocabulary
ADAPTED = "adapted.json"  #: an adapted run's origin: the run it started from, the photos (edgecap adapt)


class RunError(ValueError):
    """A run directory is inconsistent (config or vocabulary mismatch, missing files)."""


def run_encoder_weights(weights: str | None, backbone: str, cache_dir=None) -> str | None:
    """``model.encoder_weights`` as :func:`~edgecap.models.backbones.build_encoder` takes it.

    An edgecap run directory (say, the built-in captioner's ``export/``) stands for the encoder
    of its best checkpoint, fine-tuned layers included: it is written once as a backbone
    weights file, ``<cache>/encoders/<backbone>-<sha256 of the checkpoint>.weights.h5``, and
    that file's path is returned (so the feature cache is keyed by what the encoder holds).
    Anything else is returned unchanged.

    Raises:
        RunError: the directory is not a run, or its model has another backbone.
    """
    if not weights or not Path(weights).is_dir():
        return weights
    run = Path(weights)
    if not (run / CONFIG).is_file() or not (run / BEST).is_file():
        raise RunError(
            f"{run}: model.encoder_weights names a directory that is not an edgecap run (no {CONFIG} and {BEST})"
        )
    theirs = Config.load(run / CONFIG).model.backbone
    if theirs != backbone:
        raise RunError(f"{run / CONFIG}: its encoder is a {theirs}, this model's a {backbone}")
    from edgecap.data.features import default_cache_dir
    from edgecap.models.backbones import backbone_network
    from edgecap.utils import sha256_file

    out = (
        (Path(cache_dir) if cache_dir else default_cache_dir())
        / "encoders"
        / f"{backbone}-{sha256_file(run / BEST)[:24]}.weights.h5"
    )
    if not out.is_file():
        with atomic_path(out) as tmp:
            backbone_network(load_run(run)[2].encoder).save_weights(tmp)
    return str(out)


def build_model(cfg: Config, vocab_size: int, encoder_weights: str | None = None, cache_dir=None):
    """The configured model (``model.architecture`` from the registry), built.

    ``encoder_weights`` overrides ``model.encoder_weights`` (see :func:`run_encoder_weights`).

    Raises:
        ConfigError: an architecture the registry does not know.
    """
    from edgecap.models import registry

    try:
        arch = registry.get(cfg.model.architecture)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    weights = run_encoder_weights(
        cfg.model.encoder_weights if encoder_weights is None else encoder_weights, cfg.model.backbone, cache_dir
    )
    return arch.build(cfg.model, vocab_size, weights, cfg.train)


def folders(value: str) -> list[str]:
    """The folders of a comma-separated setting (``data.extra_train``, ``data.extra_dev``)."""
    return [f.strip() for f in value.split(",") if f.strip()]


def extra_dev_name(folder: str) -> str:
    """The split name an extra dev folder is read under: ``dev:<folder name>`` (``dev:coco_dev``)."""
    return "dev:" + Path(folder).name


def read_splits(
    cfg: Config, splits: tuple[str, ...], data_root: str | None = None, extra_dev: bool = False
) -> dict[str, list[CaptionedImage]]:
    """The configured dataset's ``splits`` (train/dev cut to ``data.train_limit``/``dev_limit``).

    ``train`` also holds every photo of the ``data.extra_train`` folders (each cut to
    ``train_limit`` on its own), after the dataset's. With ``extra_dev`` and ``dev`` among
    ``splits``, each ``data.extra_dev`` folder is one more split, ``dev:<folder name>``.

    Raises:
        DatasetError: a folder or its captions file is missing or malformed (named), or two
            training photos of different folders have the same file name.
    """
    d = cfg.data
    root = resolve_data_root(d.root, data_root)
    data = read_dataset(
        d.dataset,
        root,
        splits,
        resolve_data_root(d.karpathy_json) if d.karpathy_json else None,
        FolderSplit(d.dev_fraction, d.test_fraction, d.split_seed),
    )
    if d.train_limit and "train" in data:
        data["train"] = data["train"][: d.train_limit]
    if d.dev_limit and "dev" in data:
        data["dev"] = data["dev"][: d.dev_limit]
    if "train" in data and d.extra_train:
        seen = {it.image_id: root for it in data["train"]}
        for folder in folders(d.extra_train):
            path = resolve_data_root(folder)
            items = read_caption_folder(path, ("train",), split=FolderSplit(0.0, 0.0))["train"]
            for it in items[: d.train_limit or None]:
                if it.image_id in seen:
                    raise DatasetError(
                        f"{path}: photo {it.image_id} has the name of a training photo of {seen[it.image_id]}"
                    )
                seen[it.image_id] = path
                data["train"].append(it)
    if extra_dev and "dev" in data:
        for folder in folders(d.extra_dev):
            items = read_caption_folder(resolve_data_root(folder), ("dev",), split=FolderSplit(0.0, 0.0))["dev"]
            data[extra_dev_name(folder)] = items[: d.dev_limit or None]
    return data


def load_split_features(
    cfg: Config,
    splits: tuple[str, ...],
    data_root: str | None = None,
    cache_dir=None,
    mirrored: tuple[str, ...] = (),
    extra_dev: bool = False,
) -> dict[str, SplitData]:
    """Read the dataset and the cached annotation vectors of ``splits``.

    With ``model.fine_tune_from`` the cache holds the output of the frozen layers before it
    instead (:func:`edgecap.models.backbones.encoder_stem`), in a cache of its own.

    Args:
        mirrored: splits whose photos are also encoded flipped left to right; the result then
            holds them under ``"<split>-mirrored"`` too.
        extra_dev: also the ``data.extra_dev`` folders, as ``dev:<folder name>`` (:func:`read_splits`).
    """
    from edgecap.models.backbones import (
        build_encoder,
        frozen_encoder,
        frozen_output_name,
        get_backbone,
        resolve_weights,
    )

    data = read_splits(cfg, splits, data_root, extra_dev)
    weights = resolve_weights(run_encoder_weights(cfg.model.encoder_weights, cfg.model.backbone, cache_dir))
    spec = get_backbone(cfg.model.backbone)
    split_at = cfg.model.fine_tune_from
    encoders: list = []

    def make_encoder():  # built once, and only when a split is not cached yet
        if not encoders:
            encoders.append(frozen_encoder(build_encoder(cfg.model.backbone, weights), split_at))
        return encoders[0]

    name = frozen_output_name(spec.name, split_at)

    def split_data(s: str, mirror: bool = False) -> SplitData:
        return SplitData(
            data[s], cached_features(make_encoder, name, weights, spec.image_size, data[s], cache_dir, s, mirror)
        )

    out = {s: split_data(s) for s in data}
    out.update({f"{s}-mirrored": split_data(s, True) for s in mirrored})
    return out


def check_run(run_dir: str | Path, data_root: str | None = None, splits: tuple[str, ...] = ()) -> Config:
    """What :func:`load_run` and the stages after it need, checked without TensorFlow (in well
    under a second): the run's files, its config, and the dataset's ``splits``.

    Returns:
        the run's configuration.

    Raises:
        RunError: a file missing. ConfigError: the config. DatasetError: the data (file named).
    """
    run_dir = Path(run_dir)
    for name in (CONFIG, VOCAB, BEST):
        if not (run_dir / name).is_file():
            raise RunError(f"{run_dir / name}: missing; is {run_dir} an edgecap run directory with a checkpoint?")
    cfg = Config.load(run_dir / CONFIG)
    if splits:
        read_splits(cfg, splits, data_root)
    return cfg


def load_run(run_dir: str | Path, which: str = BEST):
    """``(config, vocabulary, model)`` of a run directory, weights from ``which`` (best by default).

    The decoding chosen on dev (``decoding.json``), when present, replaces ``config.decode``.

    The encoder is built without downloading anything: its weights come from the checkpoint.

    Raises:
        RunError: files missing, or the checkpoint does not fit the vocabulary/config.
    """
    run_dir = Path(run_dir)
    for name in (CONFIG, VOCAB, which):
        if not (run_dir / name).is_file():
            raise RunError(f"{run_dir / name}: missing; is {run_dir} an edgecap run directory?")
    cfg = Config.load(run_dir / CONFIG)
    if (run_dir / DECODING).is_file():
        chosen = json.loads((run_dir / DECODING).read_text())
        cfg.decode.beam_size, cfg.decode.length_penalty = chosen["beam_size"], chosen["length_penalty"]
        cfg.decode.no_repeat_ngram_size = chosen.get("no_repeat_ngram_size", 0)
    vocab = Vocabulary.load(run_dir / VOCAB)
    model = build_model(cfg, len(vocab), encoder_weights="none")
    try:
        model.load_weights(run_dir / which)
    except (ValueError, KeyError) as e:
        raise RunError(
            f"{run_dir / which}: does not fit the model of {run_dir / CONFIG} with {len(vocab)} words in {run_dir / VOCAB} ({e})"
        ) from e
    return cfg, vocab, model
