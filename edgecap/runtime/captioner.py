"""``Captioner``: caption photos with an edgecap ``.tflite`` file, without TensorFlow.

    from edgecap.runtime import Captioner, CaptionerOptions
    captioner = Captioner.from_file("model.tflite", CaptionerOptions(beam_size=3))
    result = captioner.caption("photo.jpg")
    print(result.text)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecap.decoding import NoRepeatNGram, beam_search, decoding_processors, greedy_search
from edgecap.decoding.search import Hypothesis
from edgecap.runtime import metadata as md
from edgecap.runtime.interpreter import BACKENDS, Signature, make_interpreter
from edgecap.runtime.preprocessing import ImageInput, load_image


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
    """

    beam_size: int | None = None
    length_penalty: float | None = None
    no_repeat_ngram_size: int | None = None
    max_length: int | None = None
    num_results: int = 1
    num_threads: int | None = None
    backends: tuple[str, ...] = BACKENDS

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


@dataclass
class Caption:
    """One caption.

    Attributes:
        text: words joined by spaces.
        tokens: the words.
        token_ids: their vocabulary ids.
        log_prob: total log-probability in nats, ``<end>`` included.
        attention: ``float32 (len(tokens), grid, grid)``, where the model looked for each word.
    """

    text: str
    tokens: list[str]
    token_ids: list[int]
    log_prob: float
    attention: np.ndarray


@dataclass
class CaptionResult:
    """The best caption (``text``, ``tokens``, ``log_prob``, ``attention``) plus the n-best list."""

    best: Caption
    nbest: list[Caption] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

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


class TFLiteStep:
    """The ``decode_step`` signature as a :class:`edgecap.decoding.StepFunction` over ``(h, c)``.

    The annotation vectors of the image are set in the interpreter only when the number of
    beams changes: all beams of one image share them.
    """

    def __init__(self, signature: Signature, annotations: np.ndarray):
        self.signature = signature
        self.annotations = annotations  # (1, L, D)
        self._batch = -1

    def __call__(self, tokens: np.ndarray, state):
        h, c = state
        if tokens.shape[0] != self._batch:
            self._batch = tokens.shape[0]
            out = self.signature(tokens=tokens, h=h, c=c, annotations=np.repeat(self.annotations, self._batch, axis=0))
        else:
            out = self.signature(tokens=tokens, h=h, c=c)
        return out["log_probs"], (out["h"], out["c"]), out["alpha"]


class Captioner:
    """Caption images with one edgecap ``.tflite`` file (encode + decode_step signatures)."""

    def __init__(self, model_content: bytes, metadata: md.ModelMetadata, options: CaptionerOptions | None = None, source: str = "<model>"):
        self.options = options or CaptionerOptions()
        self.metadata = metadata
        self.source = source
        try:
            self.interpreter, self.backend = make_interpreter(model_content, self.options.num_threads, self.options.backends)
            self.encode_signature = Signature(self.interpreter, "encode")
            self.step_signature = Signature(self.interpreter, "decode_step")
        except ValueError as e:
            raise md.ModelFileError(f"{source}: the interpreter cannot load this model ({e})") from e
        m = metadata
        self.vocabulary = m.vocabulary
        no_repeat = m.no_repeat_ngram_size if self.options.no_repeat_ngram_size is None else self.options.no_repeat_ngram_size
        self.suppress = decoding_processors(m.pad_id, m.start_id, m.end_id, m.unk_id, no_repeat)

    @classmethod
    def from_file(cls, path: str | Path, options: CaptionerOptions | None = None) -> "Captioner":
        """Load a model file.

        Raises:
            ModelFileError: missing, empty, corrupt, or not an edgecap model (names ``path``).
            NoInterpreterError: no TFLite interpreter installed.
        """
        data, meta = md.read_file(path)
        return cls(data, meta, options, str(path))

    # --- stages ----------------------------------------------------------------------------
    def preprocess(self, image: ImageInput) -> np.ndarray:
        """Any photo → ``uint8 (1, S, S, 3)``. Raises ImageLoadError naming the file."""
        return load_image(image, self.metadata.image_size)[None]

    def encode(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``uint8 (1, S, S, 3)`` → ``(annotations (1, L, D), h0 (1, H), c0 (1, H))``."""
        out = self.encode_signature(image=pixels)
        return out["annotations"], out["h"], out["c"]

    def search(self, annotations: np.ndarray, h: np.ndarray, c: np.ndarray, beam_size: int | None = None) -> list[Hypothesis]:
        """Greedy (beam 1) or beam search from encoded state; n-best hypotheses, best first."""
        o, m = self.options, self.metadata
        k = beam_size or o.beam_size or m.beam_size
        max_length = o.max_length or m.max_length
        length_penalty = m.length_penalty if o.length_penalty is None else o.length_penalty
        step = TFLiteStep(self.step_signature, annotations)
        if k == 1:
            return greedy_search(step, (h, c), m.start_id, m.end_id, max_length, self.suppress)
        return beam_search(step, (h, c), m.start_id, m.end_id, k, max_length, length_penalty, min(o.num_results, k), self.suppress)

    def _to_caption(self, hyp: Hypothesis) -> Caption:
        g = self.metadata.grid
        words = [self.vocabulary[i] for i in hyp.tokens]
        attention = hyp.attention if hyp.attention is not None else np.zeros((0, g * g), np.float32)
        return Caption(" ".join(words), words, list(hyp.tokens), hyp.log_prob, np.asarray(attention, np.float32).reshape(-1, g, g))

    # --- the one public mode ----------------------------------------------------------------
    def caption(self, image: ImageInput) -> CaptionResult:
        """Caption one photo (path, bytes, PIL image or uint8 array).

        Raises:
            ImageLoadError: the input is not a readable image (names the file).
        """
        t0 = time.perf_counter()
        pixels = self.preprocess(image)
        t1 = time.perf_counter()
        annotations, h, c = self.encode(pixels)
        t2 = time.perf_counter()
        hyps = self.search(annotations, h, c)
        t3 = time.perf_counter()
        captions = [self._to_caption(hy) for hy in hyps]
        timings = {"preprocess": (t1 - t0) * 1e3, "encode": (t2 - t1) * 1e3, "decode": (t3 - t2) * 1e3}
        return CaptionResult(captions[0], captions, timings)
