"""``Captioner``: caption photos with an edgecap ``.tflite`` file, without TensorFlow.

from edgecap.runtime import Captioner, CaptionerOptions
captioner = Captioner.from_file("model.tflite", CaptionerOptions(beam_size=3))
result = captioner.caption("photo.jpg")
print(result.text)
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecap.decoding import (
    LogitsProcessorList,
    NoRepeatNGram,
    beam_search,
    constrained_beam_search,
    decoding_processors,
    greedy_search,
)
from edgecap.decoding.search import Hypothesis
from edgecap.runtime import metadata as md
from edgecap.runtime.contract import IMAGE, LOG_PROBS, TOKENS, ContractError, StepContract, infer_contract
from edgecap.runtime.guidance import (
    DEFAULT_TAGGERS,
    ConstraintOptions,
    choose_constraints,
    keep_constrained,
    per_word,
    untagged_words,
)
from edgecap.runtime.interpreter import (
    BACKENDS,
    Signature,
    check_kernels,
    make_interpreter,
    quiet_native_logs,
    usable_cores,
)
from edgecap.runtime.preprocessing import DEFAULT_MAX_PIXELS, ImageInput, decode_once, load_image
from edgecap.runtime.running_modes import (
    CaptionSpan,
    LiveStream,
    RunningMode,
    SceneOptions,
    VideoCaptionResult,
    VideoStream,
    spans,
)
from edgecap.runtime.tag_inputs import tag_input_arrays
from edgecap.runtime.tagger import Tag, Tagger, TaggerOptions

#: The taggers' interpreter threads in one process when their options leave it unset (at most the
#: cores). 1 since the int8 detector (issue 46): it starts before the encode, which runs on the
#: other core, and ends about when the encode does; a second detector thread took the encode's
#: core (docs/runtime.md#workers). ``--workers`` processes use 1 each too
#: (:func:`edgecap.runtime.pool.worker_options`).
TAGGER_THREADS = 1


@dataclass
class CaptionerOptions:
    """How to decode.

    Attributes:
        beam_size: 1 = greedy search; K > 1 = beam search with K beams (None: the model's default).
        length_penalty: α in ``log P / length^α`` for ranking finished beams (None: the model's default).
        no_repeat_ngram_size: 0 = off, n >= 2 = never repeat an n-gram (None: the model's default).
        max_length: most words per caption (None: the model's default).
        num_results: n-best captions to return (<= beam_size).
        num_threads: interpreter CPU threads (None: backend default).
        backends: interpreter packages to try, in order.
        return_attention: read each word's attention map back from the interpreter (False
            saves that copy per step when only the words are wanted).
        quiet: silence the interpreter's own log lines (e.g. "Created TensorFlow Lite XNNPACK
            delegate") while the model loads.
        check_digest: compare the file's weights with the SHA-256 digest in its metadata at
            load (refuses a damaged file; False saves that hash pass over the file).
        max_pixels: refuse photos with more pixels than this once decoded (JPEGs far larger
            than the model input are decoded at 1/2, 1/4 or 1/8 size first).
        kernels: ``"default"`` | ``"builtin"`` | ``"reference"``
            (:func:`edgecap.runtime.interpreter.make_interpreter`): ``"reference"`` runs the
            integer operators identically on every CPU, slower; a portability check.
        taggers: built-in tagger names (``edgecap models``) or ``.tflite`` paths whose tags come
            with each caption (:attr:`CaptionResult.tags`), and fill a tag-conditioned model's
            tag inputs; the default is the default pipeline's, as ``edgecap caption`` runs with
            no flags (:data:`~edgecap.runtime.guidance.DEFAULT_TAGGERS`); ``()``: none (the
            model alone; a tag-conditioned model then sees no tags).
        tagger_options: score threshold, max results and category lists of every tagger.
        overlap_taggers: run the taggers on a second thread beside the photo's encode (a
            caption's latency); False runs them first on the calling thread, which costs about
            2 ms less CPU a photo: what ``--workers`` processes use, where other processes fill
            the cores (docs/runtime.md#workers). The captions do not change.
        constrain: let the taggers' words constrain the beam search (Anderson et al. 2017;
            :mod:`edgecap.runtime.guidance` decides which and when); False: tags are only reported.
        constraints: the rules of ``constrain``.
        running_mode: IMAGE (:meth:`Captioner.caption`), VIDEO (:meth:`Captioner.caption_for_video`)
            or LIVE_STREAM (:meth:`Captioner.caption_async`), after MediaPipe Tasks
            (:mod:`edgecap.runtime.running_modes`); ``caption()`` and ``caption_video()`` work in any.
        result_callback: LIVE_STREAM's ``callback(result, timestamp_ms)``, ``result`` a
            :class:`~edgecap.runtime.running_modes.VideoCaptionResult`; called on a worker thread.
        scene: which frames of a video or stream get a new caption.

    Raises:
        ValueError: a value out of its range (beam size, n-best size, n-gram size, length,
            threads, pixels), unknown ``kernels``, or LIVE_STREAM without a result callback
            (or a callback in another mode).
    """

    beam_size: int | None = None
    length_penalty: float | None = None
    no_repeat_ngram_size: int | None = None
    max_length: int | None = None
    num_results: int = 1
    num_threads: int | None = None
    backends: tuple[str, ...] = BACKENDS
    return_attention: bool = True
    quiet: bool = True
    check_digest: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    kernels: str = "default"
    taggers: tuple[str, ...] = DEFAULT_TAGGERS
    tagger_options: TaggerOptions = field(default_factory=TaggerOptions)
    overlap_taggers: bool = True
    constrain: bool = True
    constraints: ConstraintOptions = field(default_factory=ConstraintOptions)
    running_mode: RunningMode = RunningMode.IMAGE
    result_callback: Callable[[VideoCaptionResult, int], None] | None = None
    scene: SceneOptions = field(default_factory=SceneOptions)

    def __post_init__(self):
        if self.beam_size is not None and self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if self.num_results < 1 or (self.beam_size is not None and self.num_results > self.beam_size):
            raise ValueError(f"num_results must be in 1..beam_size ({self.beam_size}), got {self.num_results}")
        if self.no_repeat_ngram_size is not None:
            NoRepeatNGram(self.no_repeat_ngram_size)  # raises ValueError for 1 or < 0
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {self.max_length}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")
        check_kernels(self.kernels)
        if (self.running_mode is RunningMode.LIVE_STREAM) != (self.result_callback is not None):
            raise ValueError(
                f"result_callback must be given in LIVE_STREAM mode and only then (running_mode {self.running_mode.name})"
            )


@dataclass
class Caption:
    """One caption.

    Attributes:
        text: words joined by spaces.
        tokens: the words.
        token_ids: their vocabulary ids.
        log_prob: total log-probability in nats, ``<end>`` included.
        attention: ``float32 (len(tokens), *shape)`` with the shape the model declares (e.g.
            ``(7, 7)``: where it looked for each word; ``(2, k)`` for semantic attention: the
            input and the output attention over the k attributes of
            :attr:`CaptionResult.attributes`); ``(len(tokens), 0)`` when the model has no
            attention output or it was not asked for.
    """

    text: str
    tokens: list[str]
    token_ids: list[int]
    log_prob: float
    attention: np.ndarray


@dataclass
class CaptionResult:
    """The best caption (``text``, ``tokens``, ``log_prob``, ``attention``) plus the n-best list.

    Attributes:
        attributes: ``(word, probability)`` of the words the model detects in the photo before
            it writes (semantic attention's top-k visual attributes, in the order the model
            ranks them, which need not sort the probabilities; an ``over="items"`` attention
            weighs them in this order); empty for other models.
        attention_over: what each word's ``attention`` weighs, as the model's step contract
            declares it: ``"grid"`` (image locations), ``"items"`` (the ``attributes``), or
            ``None`` when the model returns no attention.
        tags: what the taggers named in the photo, best first (empty without taggers).
        constraints: the tag words the caption was constrained to contain (empty: the free caption).
        constraints_met: False when constraints were tried but not met, or lost to the free
            caption by more than the margin (the free caption is returned then).
    """

    best: Caption
    nbest: list[Caption] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    attributes: list[tuple[str, float]] = field(default_factory=list)
    attention_over: str | None = None
    tags: list[Tag] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    constraints_met: bool = True

    @property
    def text(self) -> str:
        return self.best.text

    @property
    def tokens(self) -> list[str]:
        return self.best.tokens

    @property
    def log_prob(self) -> float:
        return self.best.log_prob

    @property
    def attention(self) -> np.ndarray:
        return self.best.attention


def caption_record(image, result: CaptionResult | None = None, error: str | None = None) -> dict:
    """The record of one photo, as ``edgecap caption --json`` and the Beam pipeline
    (:mod:`edgecap.beam`) write it: the same keys for a caption and a failure.

    Args:
        image: the photo's path or name (written as a string).
        result: its caption; None for a photo that failed, with ``error`` its one-line message.
    """
    if result is None:
        return {
            "image": str(image),
            "caption": None,
            "log_prob": None,
            "nbest": [],
            "attributes": [],
            "tags": [],
            "constraints": [],
            "timings_ms": {},
            "error": error,
        }
    return {
        "image": str(image),
        "caption": result.text,
        "log_prob": result.log_prob,
        "nbest": [{"caption": c.text, "log_prob": c.log_prob} for c in result.nbest],
        "attributes": [{"word": w, "probability": round(p, 4)} for w, p in result.attributes],
        "tags": [t.to_json() for t in result.tags],
        "constraints": result.constraints,
        "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
        "error": None,
    }


class TFLiteStep:
    """The ``decode_step`` signature as a :class:`edgecap.decoding.StepFunction` over the contract's state.

    One image's memory is bound to it and set in the interpreter on the first call only (a
    ``per_beam`` memory is repeated to the number of beams then); each call passes the tokens
    and state and reads back the log-probabilities, the new state and, if asked, the attention.

    Args:
        signature: the ``decode_step`` :class:`Signature`.
        contract: the model's step contract.
        memory: name → ``(1, *shape)`` array of each memory tensor.
        attention: read the attention output back.
    """

    def __init__(
        self, signature: Signature, contract: StepContract, memory: dict[str, np.ndarray], attention: bool = True
    ):
        self.signature = signature
        self.state_names = contract.state_names
        self.memory = memory
        self.per_beam = {t.name for t in contract.memory if t.per_beam}
        self.attention = contract.attention.output if attention and contract.attention is not None else None
        self.outputs = [LOG_PROBS, *self.state_names] + ([self.attention] if self.attention else [])
        self._batch = -1

    def __call__(self, tokens: np.ndarray, state):
        inputs = dict(zip(self.state_names, state))
        inputs[TOKENS] = tokens
        if tokens.shape[0] != self._batch:  # first call, or another number of beams
            self._batch = tokens.shape[0]
            inputs.update(
                {n: np.repeat(v, self._batch, axis=0) if n in self.per_beam else v for n, v in self.memory.items()}
            )
        out = self.signature.run(inputs, self.outputs)
        return out[LOG_PROBS], tuple(out[n] for n in self.state_names), out[self.attention] if self.attention else None


class Captioner:
    """Caption images with one edgecap ``.tflite`` file (``encode`` + ``decode_step`` signatures).

    Works from the step contract in the file's metadata alone, whatever the model family.

    Thread-safe: one interpreter serves every thread, behind a lock held from a photo's
    ``encode`` to its last search step (the decode step keeps the photo's memory in the
    interpreter between calls), so captions from several threads are those of serial calls;
    photo decoding and resizing run outside the lock and overlap. For photos in parallel, use
    one ``Captioner`` per thread. A :meth:`step_function` is bound to the interpreter: call it
    from one thread at a time, holding ``captioner.lock``.

    Raises:
        ModelFileError: the interpreter refuses or cannot run the model, or its signatures do
            not match the declared contract (names ``source``). ``metadata`` is expected as
            :func:`edgecap.runtime.metadata.read` returns it, checked against its schema.
    """

    TASK = "captioning"  #: the metadata ``task`` of the files it runs

    def __init__(
        self,
        model_content: bytes,
        metadata: md.ModelMetadata,
        options: CaptionerOptions | None = None,
        source: str = "<model>",
    ):
        self.options = options or CaptionerOptions()
        self.metadata = metadata
        self.source = source
        if metadata.task != self.TASK:
            raise md.ModelFileError(
                f"{source}: a {metadata.task} model ({metadata.architecture}), not a captioner; use it with 'edgecap search' or edgecap.runtime.Retriever"
            )
        web = metadata.extra.get("web")  # an object: the metadata schema checked it
        if web:
            raise md.ModelFileError(
                f"{source}: a web file (decode_step's batch fixed for LiteRT.js); caption with the released file it was made from"
            )
        try:
            self.interpreter, self.backend = make_interpreter(
                model_content, self.options.num_threads, self.options.backends, self.options.kernels
            )
            self.encode_signature = Signature(self.interpreter, "encode")
            self.step_signature = Signature(self.interpreter, "decode_step")
        except (ValueError, RuntimeError, KeyError) as e:
            raise md.ModelFileError(
                f"{source}: the interpreter cannot load this model ({type(e).__name__}: {e})"
            ) from e
        self._check_image_input()
        self.contract = self._contract()
        m = metadata
        self.vocabulary = m.vocabulary
        no_repeat = (
            m.no_repeat_ngram_size if self.options.no_repeat_ngram_size is None else self.options.no_repeat_ngram_size
        )
        self.suppress = decoding_processors(m.pad_id, m.start_id, m.end_id, m.unk_id, no_repeat)
        specials = {m.pad_id, m.start_id, m.end_id, m.unk_id}
        #: caption word → id, for tags (the special tokens left out: a tag never names one)
        self.word_index = {w: i for i, w in enumerate(self.vocabulary) if i not in specials}
        self.taggers = [self._load_tagger(t) for t in self.options.taggers]
        self._pool: ThreadPoolExecutor | None = None
        self.lock = threading.RLock()  #: held while the interpreter holds one photo's memory
        mode, scene, callback = self.options.running_mode, self.options.scene, self.options.result_callback
        self._video = VideoStream(self.caption, scene) if mode is RunningMode.VIDEO else None
        self._live = LiveStream(self.caption, callback, scene) if callback is not None else None
        self._warm_up()

    def _load_tagger(self, name_or_path: str) -> Tagger:
        """A built-in tagger by name, or a tagger file; it runs with the captioner's kernels, and,
        unless its options say otherwise, with :data:`TAGGER_THREADS` threads, beside the
        photo's encode (docs/runtime.md#workers)."""
        options = dataclasses.replace(self.options.tagger_options, kernels=self.options.kernels)
        if options.num_threads is None:
            options = dataclasses.replace(options, num_threads=min(TAGGER_THREADS, usable_cores()))
        if Path(name_or_path).suffix == ".tflite" or Path(name_or_path).is_file():
            return Tagger.create_from_model_path(name_or_path, options)
        return Tagger.from_preset(name_or_path, options)

    def _warm_up(self) -> None:
        """One ``encode`` and one ``decode_step`` at load, so that a model that cannot run fails
        here, naming the file, and not at the first photo; the interpreter's tensors are sized."""
        S = self.metadata.image_size
        try:
            with quiet_native_logs(self.options.quiet):
                state, memory = self.encode(np.zeros((1, S, S, 3), np.uint8), [])
                log_probs, _, _ = self.step_function(memory, attention=False)(
                    np.full((1,), self.metadata.start_id, np.int32), state
                )
        except (RuntimeError, ValueError, KeyError, IndexError, TypeError) as e:
            raise md.ModelFileError(f"{self.source}: the model does not run ({type(e).__name__}: {e})") from e
        if log_probs.shape != (1, len(self.vocabulary)):
            raise md.ModelFileError(
                f"{self.source}: decode_step gives {log_probs.shape[1]} log-probabilities for a vocabulary of {len(self.vocabulary)} words; re-export the model"
            )

    def _check_image_input(self) -> None:
        S = self.metadata.image_size
        shape = self.encode_signature.input_shapes.get(IMAGE)
        if shape is None or [int(d) for d in shape][1:] != [S, S, 3]:
            raise md.ModelFileError(
                f"{self.source}: encode's {IMAGE!r} input has shape {shape}, the metadata says image_size {S} (expected [1, {S}, {S}, 3]); re-export the model"
            )

    def _contract(self) -> StepContract:
        shapes = (
            self.encode_signature.output_shapes,
            self.step_signature.input_shapes,
            self.step_signature.output_shapes,
        )
        try:
            contract = self.metadata.step_contract(self.source)
            if contract is None:  # metadata format 1: read it off the signatures
                contract = infer_contract(*shapes, grid=self.metadata.legacy_grid or None)
            contract.check_signatures(*shapes, source=self.source)
        except ContractError as e:
            raise md.ModelFileError(
                str(e) if self.source in str(e) else f"{self.source}: {e}; re-export the model"
            ) from None
        return contract

    @classmethod
    def from_file(
        cls, path: str | Path, options: CaptionerOptions | None = None, allow_unverified: bool = False
    ) -> "Captioner":
        """Load a model file.

        Args:
            path: an edgecap ``.tflite`` file.
            options: decoding and loading options.
            allow_unverified: load an export that has not passed verification (only
                ``edgecap export`` checking its own staged file needs this).

        Raises:
            ModelFileError: missing, empty, damaged (digest mismatch), inconsistent, not
                verified, or not an edgecap model (names ``path``).
            NoInterpreterError: no TFLite interpreter installed.
        """
        options = options or CaptionerOptions()
        data, meta = md.read_file(path, options.check_digest, allow_unverified)
        return cls(data, meta, options, str(path))

    @classmethod
    def from_preset(cls, name: str, options: CaptionerOptions | None = None) -> "Captioner":
        """Load a built-in model by name (see ``edgecap models``).

        Raises:
            ValueError: no built-in model of that name (the message lists them).
        """
        from edgecap.runtime.presets import preset_path

        return cls.from_file(preset_path(name), options)

    # --- stages ----------------------------------------------------------------------------
    def preprocess(self, image: ImageInput) -> np.ndarray:
        """Any photo → ``uint8 (1, S, S, 3)``. Raises ImageLoadError naming the file."""
        return load_image(image, self.metadata.image_size, self.options.max_pixels)[None]

    def encode(
        self, pixels: np.ndarray, tags: list[Tag] | None = None
    ) -> tuple[tuple[np.ndarray, ...], dict[str, np.ndarray]]:
        """``uint8 (1, S, S, 3)`` → ``(state, memory)``: the state tensors in contract order, each
        ``(1, *shape)``, and the memory tensors by name (a tag-conditioned model's tag tensors
        filled from ``tags``: :meth:`tag_memory`)."""
        state, memory, _ = self.encode_with_items(pixels)
        memory.update(self.tag_memory(tags))
        return state, memory

    def tag_memory(self, tags: list[Tag] | None) -> dict[str, np.ndarray]:
        """The memory tensors a tag-conditioned model reads the photo's tags from
        (:func:`~edgecap.runtime.tag_inputs.tag_input_arrays`; ``tags`` None: no tags); ``{}``
        for a model without tag inputs."""
        tags_decl = self.contract.tags
        return {} if tags_decl is None else tag_input_arrays(tags, tags_decl, self.word_index)

    def encode_with_items(
        self, pixels: np.ndarray
    ) -> tuple[tuple[np.ndarray, ...], dict[str, np.ndarray], list[tuple[str, float]]]:
        """:meth:`encode` (no tag tensors), and the ``(word, score)`` items the contract declares
        (``[]`` if none)."""
        c = self.contract
        with self.lock:
            out = self.encode_signature(image=pixels)
        items = (
            []
            if c.items is None
            else [(self.vocabulary[int(i)], float(p)) for i, p in zip(out[c.items.ids][0], out[c.items.scores][0])]
        )
        return tuple(out[n] for n in c.state_names), {n: out[n] for n in c.encoded_memory_names}, items

    def step_function(self, memory: dict[str, np.ndarray], attention: bool | None = None) -> TFLiteStep:
        """The ``decode_step`` signature with one image's memory bound (attention: default from the options)."""
        return TFLiteStep(
            self.step_signature,
            self.contract,
            memory,
            self.options.return_attention if attention is None else attention,
        )

    def search(
        self,
        state: tuple,
        memory: dict[str, np.ndarray],
        beam_size: int | None = None,
        constraints: list[list[int]] | None = None,
        processors: list | None = None,
    ) -> list[Hypothesis]:
        """Greedy (beam 1), beam, or constrained beam search (``constraints``: sets of word ids, one
        of each to appear; greedy search becomes constrained beam search with one beam per state)
        from one image's encoded state; n-best hypotheses, best first. ``processors``: more
        logits processors after the model's own (e.g. :func:`~edgecap.runtime.guidance.untagged_words`)."""
        o, m = self.options, self.metadata
        suppress = self.suppress if not processors else LogitsProcessorList([*self.suppress, *processors])
        k = beam_size or o.beam_size or m.beam_size
        max_length = o.max_length or m.max_length
        length_penalty = m.length_penalty if o.length_penalty is None else o.length_penalty
        step = self.step_function(memory)
        n = min(o.num_results, k)
        with self.lock:  # the step function sets the photo's memory once, then every step reads it
            if constraints:
                return constrained_beam_search(
                    step, state, m.start_id, m.end_id, constraints, len(self.vocabulary), k, max_length,
                    length_penalty, n, suppress,
                )  # fmt: skip
            if k == 1:
                return greedy_search(step, state, m.start_id, m.end_id, max_length, suppress)
            return beam_search(step, state, m.start_id, m.end_id, k, max_length, length_penalty, n, suppress)

    def tag(self, image: ImageInput) -> list[Tag]:
        """Every tagger's tags of one photo, best first (a word named twice keeps its best score)."""
        return self._tag_each([image] * len(self.taggers))

    def _tag_each(self, inputs: list) -> list[Tag]:
        """:meth:`tag` with one input per tagger (a photo, or the pixels its preprocess made)."""
        best: dict[str, Tag] = {}
        for tagger, image in zip(self.taggers, inputs):
            for t in tagger.tag(image):
                if t.word not in best or t.score > best[t.word].score:
                    best[t.word] = t
        return sorted(best.values(), key=lambda t: (-t.score, t.word))

    def guard(self, tags: list[Tag]) -> list:
        """The logits processors a tag-conditioned model's search gets from the photo's tags
        (:func:`~edgecap.runtime.guidance.untagged_words`); ``[]`` for other models."""
        if self.contract.tags is None:
            return []
        penalty = untagged_words(tags, self.word_index, self.options.constraints)
        return [penalty] if penalty is not None else []

    def constrain(
        self,
        state: tuple,
        memory: dict[str, np.ndarray],
        free: list[Hypothesis],
        tags: list[Tag],
        processors: list | None = None,
    ) -> tuple[list[Hypothesis], list[str], bool]:
        """Given the free search's hypotheses, the constrained search over the tags that
        :func:`~edgecap.runtime.guidance.choose_constraints` picks, kept if
        :func:`~edgecap.runtime.guidance.keep_constrained` says so.

        Returns:
            ``(hypotheses, constraint words, met)``: the free hypotheses, ``[]`` and True when no
            tag constrains; False for ``met`` when the constrained caption was tried and not kept.
        """
        if not (self.options.constrain and tags and free):
            return free, [], True
        chosen = choose_constraints(tags, self.word_index, free[0].tokens, self.options.constraints, per_word(free[0]))
        if not chosen:
            return free, [], True
        hyps = self.search(state, memory, constraints=[ids for _, ids in chosen], processors=processors)
        if hyps and keep_constrained(free[0], hyps[0], self.options.constraints.margin):
            return hyps, [t.word for t, _ in chosen], True
        return free, [], False

    def _tag_in_background(self, image: ImageInput):
        """Start the taggers on another thread (the interpreters' ``Invoke`` releases the GIL), so
        that they run while this thread encodes and searches (with ``overlap_taggers`` False,
        run them here and now).

        Where one decode serves the captioner and every tagger (:func:`decode_once`), the photo
        is decoded once and each tagger's pixels are made here, before the captioner's own: the
        detector is the longer path, and another thread would start them only when this one
        releases the GIL at the encode's ``Invoke``. Otherwise each decodes its own, the taggers
        on their thread. Returns ``(future, image)``: the tags to come (None without taggers)
        and the photo for :meth:`preprocess`.

        Raises:
            ImageLoadError: the photo cannot be read (names the file).
        """
        if not self.taggers:
            return None, image
        sizes = (self.metadata.image_size, *(t.image_size for t in self.taggers))
        limit = min([self.options.max_pixels, *(t.options.max_pixels for t in self.taggers)])
        decoded = decode_once(image, sizes, limit)
        if decoded is image:  # not decoded here (different JPEG scales, or pixels already)
            inputs = [image] * len(self.taggers)
        else:
            image = decoded
            inputs = [t.preprocess(image) for t in self.taggers]
        if not self.options.overlap_taggers:
            done: Future = Future()
            done.set_result(self._tag_each(inputs))
            return done, image
        with self.lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgecap-tagger")
        return self._pool.submit(self._tag_each, inputs), image

    def _to_caption(self, hyp: Hypothesis) -> Caption:
        words = [self.vocabulary[i] for i in hyp.tokens]
        att = self.contract.attention
        if hyp.attention is None or att is None:
            attention = np.zeros((len(words), 0), np.float32)
        else:
            attention = np.asarray(hyp.attention, np.float32).reshape(-1, *att.shape)
        return Caption(" ".join(words), words, list(hyp.tokens), hyp.log_prob, attention)

    # --- the one public mode ----------------------------------------------------------------
    def caption(self, image: ImageInput) -> CaptionResult:
        """Caption one photo (path, bytes, PIL image or uint8 array).

        Raises:
            ImageLoadError: the input is not a readable image (names the file).
            ModelFileError: the interpreter fails on this model (names the model file).
        """
        t0 = time.perf_counter()
        tagging, image = self._tag_in_background(image)
        pixels = self.preprocess(image)
        t1 = time.perf_counter()
        try:
            with self.lock:  # from encode to the last step (photo decoding above overlaps)
                state, memory, attributes = self.encode_with_items(pixels)
                t2 = time.perf_counter()
                guard: list = []
                if self.contract.tags is not None:  # the step reads the tags: wait for them first
                    tags = tagging.result() if tagging is not None else []
                    memory.update(self.tag_memory(tags))
                    guard = self.guard(tags)
                    t3 = time.perf_counter()
                    free = self.search(state, memory, processors=guard)
                    t4 = time.perf_counter()
                    wait, search = t3 - t2, t4 - t3
                else:  # the taggers run on while the free search does
                    free = self.search(state, memory)
                    t3 = time.perf_counter()
                    tags = tagging.result() if tagging is not None else []
                    t4 = time.perf_counter()
                    wait, search = t4 - t3, t3 - t2
                hyps, constraints, met = self.constrain(state, memory, free, tags, guard)
        except RuntimeError as e:  # the interpreter's own failures: the model, not the photo
            raise md.ModelFileError(f"{self.source}: the model failed while captioning ({e})") from e
        t5 = time.perf_counter()
        captions = [self._to_caption(hy) for hy in hyps]
        timings = {"preprocess": (t1 - t0) * 1e3, "encode": (t2 - t1) * 1e3, "decode": (search + t5 - t4) * 1e3}
        if tagging is not None:
            timings["tag_wait"] = wait * 1e3  # the taggers' time not hidden behind encode (and decode)
        return CaptionResult(
            captions[0],
            captions,
            timings,
            attributes,
            self.contract.attention.over if self.contract.attention else None,
            tags,
            constraints,
            met,
        )

    # --- video and live-stream modes (edgecap.runtime.running_modes) --------------------------
    def caption_for_video(self, frame: ImageInput, timestamp_ms: int) -> VideoCaptionResult:
        """VIDEO mode: one decoded frame (e.g. a ``uint8 (H, W, 3)`` array from picamera2 or
        OpenCV, RGB) at its time; captioned if its scene changed (``options.scene``), else the
        last caption held (``result.new`` says which).

        Raises:
            ValueError: not in VIDEO mode, or a timestamp not after the last one (names both).
            ImageLoadError, ModelFileError: as :meth:`caption`.
        """
        if self._video is None:
            raise ValueError(f"caption_for_video needs running_mode VIDEO, not {self.options.running_mode.name}")
        return self._video.caption_for_video(frame, timestamp_ms)

    def caption_async(self, frame: ImageInput, timestamp_ms: int) -> None:
        """LIVE_STREAM mode: hand in a camera frame and return at once; ``options.result_callback``
        gets ``(result, timestamp_ms)`` on a worker thread, in timestamp order. While a frame is
        captioned at most one waits: a newer frame replaces it (:class:`~edgecap.runtime.running_modes.LiveStream`).

        Raises:
            ValueError: not in LIVE_STREAM mode, or a timestamp not after the last one. The
                callback's (or a caption's) exception, raised by the next call after it.
        """
        if self._live is None:
            raise ValueError(f"caption_async needs running_mode LIVE_STREAM, not {self.options.running_mode.name}")
        self._live.caption_async(frame, timestamp_ms)

    def flush(self, timeout: float | None = None) -> bool:
        """LIVE_STREAM: wait until the waiting frame is answered (True at once in other modes)."""
        return True if self._live is None else self._live.flush(timeout)

    def close(self) -> None:
        """Answer LIVE_STREAM's waiting frame and stop the worker threads (the object stays usable
        for :meth:`caption`; ``caption_async`` then raises ValueError)."""
        if self._live is not None:
            self._live.close()
        with self.lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> "Captioner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def caption_video(
        self, source: str | Path | int, every: float = 1.0, camera: bool = False, progress: bool = False
    ) -> Iterator[CaptionSpan]:
        """Caption a video file (anything FFmpeg reads; PyAV, ``pip install 'edgecap[video]'``) or,
        with ``camera``, a camera index or stream URL: one :class:`~edgecap.runtime.running_modes.CaptionSpan`
        per new caption, in time order, each yielded when the next starts.

        Args:
            source: a path; with ``camera``, a V4L2 index (``/dev/videoN``) or a URL (``rtsp://``).
            every: seconds between the frames considered (0: every frame); a considered frame is
                captioned if the scene changed (``options.scene``).
            camera: read ``source`` as a camera or stream.
            progress: a progress bar on stderr (the video's seconds, ETA).

        Raises:
            VideoError: the source cannot be opened, has no video stream, or stops being
                readable (after the spans so far). ValueError: a negative ``every``.
        """
        from edgecap.runtime.video import VideoSource

        with VideoSource(source, camera) as video:
            frames = video.frames(every, self.options.scene.thumbnail)
            if progress:
                frames = video.with_progress(frames)
            yield from spans(frames, self.caption, self.options.scene, lambda: video.position + video.frame_duration)
