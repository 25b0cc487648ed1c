"""Model families and tasks by name (no TensorFlow).

Adding a captioner is a folder under ``edgecap/models/`` (its config dataclass, Keras model,
step and tests) and one :func:`register` call here; export, the runtime and the trainer work
from the model's step contract. Config classes are imported eagerly (they are plain
dataclasses), models only when built, so reading a config never imports TensorFlow.

A family's *task* (:class:`Task`: captioning, retrieval, attribute detection) says which
function trains, evaluates, exports, releases and benchmarks it, so that the command line,
export, release and bench hold no branch on the task or the family. The functions are named
as ``"module:function"`` strings and imported when a stage runs: this module imports none of
the stages (they sit above it).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _load(target: str) -> Callable:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Task:
    """What one kind of model is for, and which function runs each stage of its life.

    Every stage is ``"module:function"`` (imported when it runs) or ``""`` where the task has
    no such stage; :meth:`stage` then raises with ``why_not[stage]``.

    Attributes:
        name: registry key, as a run's architecture and an exported file's metadata name it.
        train: ``f(cfg, run_dir, data_root, cache_dir) -> best checkpoint path``.
        evaluate: ``f(source, split, **options) -> report dict`` (a run directory or a file).
        report: ``f(report) -> str``, the report as ``edgecap evaluate`` prints it.
        export: ``f(source, cfg, vocab, model, mode, output, data_root, calibration_images,
            verify_images, version, full_integer) -> ExportResult`` for a loaded run.
        release: ``f(run_dir, out_dir, data_root, threads, version, command) -> card dict``.
        bench: ``f(model_path, threads, photos, repeats) -> dict``, timing an exported file.
        card: ``f(card dict) -> str``, a released model's card in Markdown.
        adapt: ``f(cfg, run_dir, data_root, cache_dir) -> best checkpoint path``, training a run
            that continues another on a folder of the user's photos (``edgecap adapt``).
        headline: the test metrics ``edgecap models`` shows, with ``digits`` decimals.
        why_not: for each stage left ``""``, why.
    """

    name: str
    train: str
    evaluate: str
    report: str
    export: str = ""
    release: str = ""
    bench: str = ""
    card: str = ""
    adapt: str = ""
    headline: tuple[str, ...] = ()
    digits: int = 2
    why_not: tuple[tuple[str, str], ...] = ()

    def stage(self, stage: str) -> Callable:
        """The function of ``stage`` (``"train"``, ``"evaluate"``, ...), imported.

        Raises:
            ValueError: the task has no such stage (saying why).
        """
        target = getattr(self, stage, "")
        if not target:
            raise ValueError(dict(self.why_not).get(stage, f"a {self.name} model has no {stage} stage"))
        return _load(target)

    def run(self, stage: str, *args, **options):
        """Call ``stage`` with ``args`` and those of ``options`` that its function takes (the
        command line passes every option it has; a retrieval evaluation takes no beam size)."""
        fn = self.stage(stage)
        names = inspect.signature(fn).parameters
        return fn(*args, **{k: v for k, v in options.items() if k in names})


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    _TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """Raises: ValueError naming the known tasks."""
    try:
        return _TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {sorted(_TASKS)}") from None


def task_of(architecture: str) -> Task:
    """The task of a registered family.

    Raises:
        ValueError: an unknown architecture or task.
    """
    return get_task(get(architecture).task)


@dataclass(frozen=True)
class Architecture:
    """One model family.

    Attributes:
        name: registry key, the ``model.architecture`` value.
        config: its ``[model]`` dataclass (a :class:`ModelConfig` subclass).
        builder: ``"module:function"`` of ``f(model_config, vocab_size, encoder_weights, train_config) -> keras.Model``.
        task: a registered :class:`Task`'s name: ``"captioning"`` (a
            :class:`~edgecap.models.base.StepwiseCaptioner`), ``"retrieval"`` (an image–sentence
            embedding) or ``"attributes"`` (a visual attribute detector).
    """

    name: str
    config: type
    builder: str
    task: str = "captioning"

    def build(self, model_config, vocab_size: int, encoder_weights: str | None = None, train_config=None):
        return _load(self.builder)(model_config, vocab_size, encoder_weights, train_config)


_REGISTRY: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    _REGISTRY[arch.name] = arch
    return arch


def get(name: str) -> Architecture:
    """Raises: ValueError naming the known architectures."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model architecture {name!r}; known: {sorted(_REGISTRY)}") from None


def model_config(raw: dict, source: str = "<model>", strict: bool = True):
    """A ``[model]`` table as its family's config dataclass (the family named by ``architecture``;
    none: Show, Attend and Tell's, as the first cards and configs had none).

    Args:
        raw: the table, e.g. a run's ``config.toml`` ``[model]`` section or a card's ``model``.
        strict: refuse keys the family does not have; else drop them (an old card's).

    Raises:
        ValueError: an unknown architecture, or with ``strict`` an unknown key (naming ``source``).
    """
    cls = get(raw.get("architecture", "show_attend_tell")).config
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if strict and unknown:
        raise ValueError(
            f"{source}: unknown key(s) model.{', model.'.join(unknown)} for architecture {raw.get('architecture')!r}"
        )
    return cls(**{k: v for k, v in raw.items() if k in names})


def read_model_config(path: str | Path):
    """The ``[model]`` section of a run's ``config.toml`` as its family's dataclass (no other
    section is read; :class:`edgecap.config.Config` reads the whole run configuration).

    Raises:
        ValueError: the file is missing or not TOML, or :func:`model_config` refuses it (naming the file).
    """
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("model", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: cannot read its [model] section ({e})") from None
    return model_config(raw, str(path))


# --- the tasks -----------------------------------------------------------------------------
register_task(
    Task(
        "captioning",
        train="edgecap.training.trainer:train",
        evaluate="edgecap.evaluation.evaluate:evaluate",
        report="edgecap.evaluation.evaluate:caption_report",
        export="edgecap.export.command:export_captioner",
        release="edgecap.release:release_captioner",
        bench="edgecap.bench:bench_file",
        card="edgecap.release:model_card_markdown",
        adapt="edgecap.training.trainer:train",
        headline=("BLEU-4", "METEOR", "CIDEr-D"),
    )
)
register_task(
    Task(
        "retrieval",
        train="edgecap.training.ranking:train",
        evaluate="edgecap.evaluation.evaluate:evaluate_retrieval",
        report="edgecap.evaluation.evaluate:retrieval_report",
        export="edgecap.export.embedding:run_alignment_export",
        release="edgecap.release:release_alignment",
        bench="edgecap.bench:bench_retrieval_file",
        card="edgecap.release:alignment_card_markdown",
        headline=("annotation R@1", "annotation R@10", "search R@1", "search R@10"),
        digits=1,
        why_not=(("adapt", "edgecap adapt continues a captioner; train an alignment model with edgecap train"),),
    )
)
register_task(
    Task(
        "attributes",
        train="edgecap.training.attributes:train",
        evaluate="edgecap.evaluation.evaluate:evaluate_attributes",
        report="edgecap.evaluation.evaluate:attribute_report",
        why_not=(
            (
                "export",
                "an attribute detector is not exported on its own; it runs inside the encode signature of a semantic attention captioner",
            ),
            ("release", "an attribute detector is released inside the semantic attention captioner that uses it"),
            ("adapt", "edgecap adapt continues a captioner; train an attribute detector with edgecap train"),
        ),
    )
)

# --- the registered families ------------------------------------------------------------------
from edgecap.models.alignment.config import AlignmentConfig  # noqa: E402
from edgecap.models.multimodal_rnn.config import MultimodalRNNConfig  # noqa: E402
from edgecap.models.semantic_attention.config import AttributeDetectorConfig, SemanticAttentionConfig  # noqa: E402
from edgecap.models.show_attend_tell.config import ShowAttendTellConfig  # noqa: E402

register(
    Architecture("show_attend_tell", ShowAttendTellConfig, "edgecap.models.show_attend_tell.model:build")
)  # Xu et al. 2015, soft or hard attention
register(
    Architecture("multimodal_rnn", MultimodalRNNConfig, "edgecap.models.multimodal_rnn.model:build")
)  # Karpathy & Fei-Fei 2015, §3.2
register(
    Architecture("alignment", AlignmentConfig, "edgecap.models.alignment.model:build", task="retrieval")
)  # Karpathy & Fei-Fei 2015, §3.1
register(
    Architecture("semantic_attention", SemanticAttentionConfig, "edgecap.models.semantic_attention.model:build")
)  # You et al. 2016
register(
    Architecture(
        "attribute_detector",
        AttributeDetectorConfig,
        "edgecap.models.semantic_attention.detector:build",
        task="attributes",
    )
)  # Fang et al. 2015, for You et al. 2016
