"""Run configuration: dataclasses read from / written to TOML (no TensorFlow).

A run directory's ``config.toml`` records everything needed to reproduce it. Unknown keys
are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecap.models import registry
from edgecap.models.model_config import ModelConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A config file or override is malformed, names a key that does not exist, or a value is out of range."""


DATASETS = ("flickr8k", "karpathy", "folder")
#: keys that moved into a family's [model] section; a run's config.toml from before still loads
#: (the value goes to the family when it has the key, and is dropped when it never applied to it)
MOVED = {("train", "doubly_stochastic"): "doubly_stochastic"}
LR_DECAYS = ("cosine", "constant")
SELECTION_DECODINGS = ("greedy", "decode", "loss")
DISTRIBUTES = ("auto", "mirrored", "multi_worker", "none")
MIXED_PRECISIONS = ("auto", "on", "off")
OBJECTIVES = ("cross_entropy", "self_critical")
NEW_WORD_INITS = ("random", "mean")


@dataclass
class DataConfig:
    dataset: str = "flickr8k"  #: "flickr8k" (native layout), "karpathy" or "folder" (photos + captions.txt)
    root: str = "../shared/data/flickr8k"  #: relative: against the working directory, then the repository root
    karpathy_json: str = ""
    min_count: int = 5  #: vocabulary: keep words seen at least this often in train
    max_length: int = 20  #: words per training caption (longer ones are cut)
    train_limit: int = 0  #: use only the first N training images (0 = all); for tests
    dev_limit: int = 0  #: use only the first N dev images for model selection (0 = all)
    horizontal_flip: bool = (
        False  #: cross-entropy augmentation: half the examples see the mirrored photo ("left" ↔ "right" in the caption)
    )
    caption_text: str = (
        ""  #: folder of unpaired captions (``*.tsv``: ``SOURCE/ID<TAB>caption``) for the language side; "" = none
    )
    caption_text_min_count: int = (
        20  #: words of caption_text seen this often join the vocabulary (after the paired words)
    )
    dev_fraction: float = 0.0  #: "folder" without a splits.txt: share of photos held out for dev (0 and test_fraction 0 = every split is the whole folder)
    test_fraction: float = 0.0  #: "folder" without a splits.txt: share of photos held out for test
    split_seed: int = 0  #: "folder": the seed of the dev/test draw
    extend_vocabulary: bool = False  #: with train.init_from: the training captions' words seen min_count times join the init run's vocabulary (after its words, whose ids stay)
    extra_train: str = ""  #: more captioned photo folders (comma-separated, read as data.dataset "folder"; e.g. "../shared/data/coco_train") whose every photo trains beside the dataset's train split; "" = none
    extra_dev: str = ""  #: more dev folders (comma-separated; e.g. "../shared/data/coco_dev") scored beside the dataset's dev split: the per-epoch selection is the mean of each dev set's score


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    lr_decay: str = "cosine"  #: "cosine" or "constant"
    min_lr_ratio: float = 0.05
    clipnorm: float = 5.0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    ema_momentum: float = (
        0.0  #: Polyak averaging of the weights (e.g. 0.999); selection and checkpoints use the average. 0 = off
    )
    patience: int = 4  #: epochs without a better dev CIDEr-D before stopping
    selection_decoding: str = "greedy"  #: the per-epoch selection: dev CIDEr-D of "greedy" or "decode" (the [decode] section's beam search) captions, or "loss": the dev captions' teacher-forced cross-entropy, no decoding (steadier on a few dozen photos)
    seed: int = 1234
    distribute: str = (
        "auto"  #: "auto" (mirrored when >1 GPU), "mirrored", "multi_worker" (several machines, from $TF_CONFIG), "none"
    )
    mixed_precision: str = "auto"  #: "auto" (on a GPU), "on", "off"
    max_steps_per_epoch: int = 0  #: 0 = whole training set; for tests
    jit_compile: bool = True  #: XLA-compile the training step (cross-entropy only)
    objective: str = "cross_entropy"  #: "cross_entropy" (teacher forcing) or "self_critical" (SCST on CIDEr-D)
    init_from: str = ""  #: run directory whose best checkpoint and vocabulary start this run (required by SCST)
    num_samples: int = 5  #: SCST: captions sampled per image (batch_size counts images)
    new_word_init: str = "random"  #: with a vocabulary wider than train.init_from's: the new words' embedding rows and output weights start "random" (the layer's initializer) or at the "mean" of the old words'
    text_fraction: float = 0.0  #: share of training examples that are data.caption_text sentences without a photo (a zero image; language-side training), 0 = none
    annotation_dropout: float = 0.0  #: a tag-conditioned model (model.tag_slots): share of paired examples whose photo is zeroed, its tags kept (the decoder learns to write from tags alone)
    person_free_share: float = 0.0  #: share of paired examples drawn from photos whose references name no person (fewer than two of five), and of text sentences drawn from those that name none (CHAIR's person words); 0 = the data's own shares (about 1 in 4 of the photos)


@dataclass
class DecodeConfig:
    beam_size: int = 3
    length_penalty: float = 0.0
    max_length: int = 20
    no_repeat_ngram_size: int = 0  #: 0 = off; n >= 2 forbids repeating any n-gram in a caption


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(
        default_factory=lambda: registry.get("show_attend_tell").config()
    )  #: the architecture's own dataclass
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    # --- reading and writing -------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<config>") -> "Config":
        cfg = cls()
        cfg.update(raw, source)
        return cfg

    def update(self, raw: dict[str, Any], source: str = "<config>") -> None:
        """Merge a nested dict into this config, type-checking each value.

        Raises:
            ConfigError: unknown section or key, or a value of the wrong type (names ``source``).
        """
        for section, values in raw.items():
            if section not in {f.name for f in dataclasses.fields(self)}:
                raise ConfigError(
                    f"{source}: unknown section [{section}]; known: {[f.name for f in dataclasses.fields(self)]}"
                )
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{section}] must be a table")
            if section == "model" and "architecture" in values:  # another family: its own [model] dataclass
                try:
                    cls = registry.get(values["architecture"]).config
                except (ValueError, TypeError) as e:
                    raise ConfigError(f"{source}: model.architecture: {e}") from None
                if type(self.model) is not cls:
                    self.model = cls()
            target = getattr(self, section)
            known = {f.name: f for f in dataclasses.fields(target)}
            for key, value in values.items():
                if (section, key) in MOVED and key not in known:
                    if hasattr(self.model, MOVED[section, key]):
                        self.update({"model": {MOVED[section, key]: value}}, source)
                    continue
                if key not in known:
                    raise ConfigError(f"{source}: unknown key {section}.{key}; known: {sorted(known)}")
                default = getattr(target, key)
                if isinstance(default, bool) or not isinstance(default, (int, float, str)):
                    ok = isinstance(value, type(default))
                elif isinstance(default, float):
                    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                    value = float(value) if ok else value
                else:
                    ok = isinstance(value, type(default)) and not isinstance(value, bool)
                if not ok:
                    raise ConfigError(f"{source}: {section}.{key} must be {type(default).__name__}, got {value!r}")
                setattr(target, key, value)

    def problems(self) -> list[str]:
        """Every value out of its range or not among its choices (empty when all is well)."""

        def value(key: str):
            section, name = key.split(".")
            return getattr(getattr(self, section), name)

        choices = (
            ("data.dataset", DATASETS),
            ("train.lr_decay", LR_DECAYS),
            ("train.selection_decoding", SELECTION_DECODINGS),
            ("train.distribute", DISTRIBUTES),
            ("train.mixed_precision", MIXED_PRECISIONS),
            ("train.objective", OBJECTIVES),
            ("train.new_word_init", NEW_WORD_INITS),
        )
        positive = (
            "data.min_count",
            "data.max_length",
            "train.epochs",
            "train.batch_size",
            "train.patience",
            "decode.beam_size",
            "decode.max_length",
            "data.caption_text_min_count",
        )
        non_negative = (
            "data.train_limit",
            "data.dev_limit",
            "train.warmup_steps",
            "train.max_steps_per_epoch",
            "train.clipnorm",
            "train.weight_decay",
        )
        rules = [
            *((key, lambda v, c=c: v in c, f"one of {c}") for key, c in choices),
            *((key, lambda v: v >= 1, "a positive integer") for key in positive),
            *((key, lambda v: v >= 0, ">= 0") for key in non_negative),
            *(
                (key, lambda v: 0.0 <= v < 1.0, "in [0, 1)")
                for key in (
                    "train.learning_rate",
                    "train.label_smoothing",
                    "train.ema_momentum",
                    "train.text_fraction",
                    "train.annotation_dropout",
                    "train.person_free_share",
                    "data.dev_fraction",
                    "data.test_fraction",
                )
            ),
            ("train.min_lr_ratio", lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
            ("decode.length_penalty", math.isfinite, "a finite number"),
            ("decode.no_repeat_ngram_size", lambda v: v == 0 or v >= 2, "0 (off) or >= 2"),
        ]
        out = [f"{key} must be {expected}, got {value(key)!r}" for key, ok, expected in rules if not ok(value(key))]
        d = self.data
        if d.dev_fraction + d.test_fraction >= 1.0:
            out.append(
                f"data.dev_fraction + data.test_fraction must leave training photos, got {d.dev_fraction} + {d.test_fraction}"
            )
        if (d.dev_fraction or d.test_fraction) and d.dataset != "folder":
            out.append(
                f"data.dev_fraction and data.test_fraction split a 'folder' dataset; {d.dataset!r} has its own splits"
            )
        if d.extend_vocabulary and not self.train.init_from:
            out.append("data.extend_vocabulary widens the vocabulary of train.init_from: set it")
        if self.train.text_fraction and not self.data.caption_text:
            out.append("train.text_fraction needs data.caption_text (the unpaired captions)")
        if self.train.text_fraction and self.train.objective != "cross_entropy":
            out.append("train.text_fraction trains with teacher forcing: set train.objective = 'cross_entropy'")
        if self.train.annotation_dropout and not getattr(self.model, "tag_slots", 0):
            out.append("train.annotation_dropout zeroes photos whose tags the model still reads: set model.tag_slots")
        if self.train.person_free_share and self.train.objective != "cross_entropy":
            out.append("train.person_free_share weights teacher-forced examples: set train.objective = 'cross_entropy'")
        if self.train.objective == "self_critical" and self.train.num_samples < 2:
            out.append(f"train.num_samples must be >= 2 for self-critical training, got {self.train.num_samples}")
        return out + self.model.validate() + _size_problems(self.model)

    def validate(self, source: str = "<config>") -> "Config":
        """Check every range and choice (no TensorFlow needed, so it fails in well under a second).

        Returns:
            this config.

        Raises:
            ConfigError: listing every problem, naming ``source``.
        """
        problems = self.problems()
        if problems:
            raise ConfigError(f"{source}: " + "; ".join(problems))
        return self

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        """Raises: ConfigError naming the file (missing, unreadable, bad TOML, unknown key)."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from e
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not a text file in UTF-8 ({e.reason} at byte {e.start})") from None
        except OSError as e:  # a folder, no permission, a device
            raise ConfigError(f"{path}: cannot read the config ({e.strerror or e})") from None
        return cls.from_dict(raw, str(path))

    def apply_overrides(self, overrides: list[str]) -> None:
        """Apply ``section.key=value`` strings (value parsed as TOML, bare words as strings).

        Raises:
            ConfigError: malformed override or unknown key.
        """
        for item in overrides:
            key, sep, text = item.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot:
                raise ConfigError(f"override {item!r}: expected section.key=value")
            try:
                value = tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError:
                value = text
            self.update({section: {name: value}}, f"override {item!r}")

    def to_toml(self) -> str:
        lines = []
        for section in dataclasses.fields(self):
            lines.append(f"[{section.name}]")
            for f in dataclasses.fields(getattr(self, section.name)):
                v = getattr(getattr(self, section.name), f.name)
                lines.append(f"{f.name} = {_toml_value(v)}")
            lines.append("")
        return "\n".join(lines)

    def save(self, path: str | Path) -> None:
        from edgecap.utils import atomic_write_text

        atomic_write_text(path, self.to_toml())


MAX_PARAMETERS = 2_000_000_000  #: 8 GB of float32 weights: a config past it is refused before a model is built
_VOCABULARY_GUESS = 50_000  #: words, for the estimate (the vocabulary is not known before the data is read)


def _size_problems(model: ModelConfig) -> list[str]:
    """A crude upper bound of the parameters the ``[model]`` sizes (every ``*_dim`` field) ask for:
    a recurrent layer over all of them, ``4 d²``, and word embedding and output layers,
    ``2 V d``, with ``d`` their sum. A value such as ``hidden_dim = 10**8`` is refused here,
    in well under a second, rather than dying out of memory in TensorFlow."""
    dims = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.name.endswith("_dim")}
    d = sum(v for v in dims.values() if isinstance(v, int) and not isinstance(v, bool) and v > 0)
    estimate = 4 * d * d + 2 * _VOCABULARY_GUESS * d
    if estimate <= MAX_PARAMETERS:
        return []
    sizes = ", ".join(f"model.{k} = {v}" for k, v in dims.items())
    return [
        f"the model sizes ({sizes}) ask for about {estimate:.1e} parameters, over the limit of {MAX_PARAMETERS:.0e}"
    ]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def default_config(name: str = "show_attend_tell_flickr8k.toml") -> Config:
    """A shipped config, by file name (default: the built-in captioner's, ``edgecap/configs/show_attend_tell_flickr8k.toml``)."""
    from importlib import resources

    return Config.load(Path(str(resources.files("edgecap") / "configs" / name)))
