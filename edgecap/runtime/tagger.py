"""``Tagger``: words for what a pretrained classifier or detector sees in a photo (no TensorFlow).

The interface follows MediaPipe Tasks' ``ImageClassifier`` / ``ObjectDetector``: an options
dataclass (score threshold, max results, category allow/deny lists) and
``create_from_model_path``. A tagger is three files side by side: the ``.tflite`` model, its
labels (one a line, as the model's publisher ships them) and ``<name>.words.json``, the mapping
from each label to the caption words any of which names it (made from WordNet by
``scripts/make_tag_words.py``). Tags come back as caption words with scores (and boxes for a
detector), ready to become constraints of :func:`edgecap.decoding.constrained_beam_search`.

from edgecap.runtime import Tagger
tagger = Tagger.from_preset("coco_detector")
for tag in tagger.tag("photo.jpg"):
    print(tag.word, tag.score, tag.box)
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecap.runtime.interpreter import BACKENDS, check_kernels, make_interpreter, quiet_native_logs
from edgecap.runtime.metadata import ModelFileError
from edgecap.runtime.preprocessing import DEFAULT_MAX_PIXELS, ImageInput, load_image

KINDS = ("classifier", "detector")
MAX_LABELS = 100_000  #: more lines than any classifier's labels: a bigger file is refused before it is read
MAX_WORDS_FILE_BYTES = 16 * 1024 * 1024
UNUSED_LABEL = "???"  #: a detector's label of a class id it does not use (COCO's gaps)


@dataclass(frozen=True)
class Tag:
    """One thing a tagger names in a photo.

    Attributes:
        word: the caption word that names it (the mapping's first form), e.g. ``"cat"``.
        score: the tagger's confidence in [0, 1]: a classifier's probability summed over the
            labels that map to ``word`` (tabby + Egyptian cat → cat), a detector's best box score.
        source: the tagger's name, e.g. ``"coco_detector"``.
        label: the tagger's own label of the best-scoring class, e.g. ``"Egyptian cat"``.
        forms: every caption word that names it (``("cat", "cats")``): a disjunctive constraint;
            ``()`` for a detector class its mapping leaves to the captioner (the COCO detector's
            person: ``word`` is then the label): a tag a tag-conditioned model sees, never a constraint.
        box: a detector's ``(ymin, xmin, ymax, xmax)`` in [0, 1] of the photo; None for a classifier.
    """

    word: str
    score: float
    source: str
    label: str
    forms: tuple[str, ...]
    box: tuple[float, float, float, float] | None = None

    def to_json(self) -> dict:
        out = {"word": self.word, "score": round(self.score, 4), "source": self.source, "label": self.label}
        if self.box is not None:
            out["box"] = [round(v, 4) for v in self.box]
        return out


def detector_word(label: str, forms: tuple[str, ...]) -> tuple[str, str] | None:
    """``(name, word)`` of a detector's tag for ``label`` (its first part before a comma) with
    these mapped ``forms``: the first form, or the name itself for a one-word label mapped to no
    form (the COCO detector's person: seen by a tag-conditioned model, never forced); None for a
    label that gives no tag (an unused class id, a several-word label mapped to nothing)."""
    name = label.split(",")[0].strip()
    if forms:
        return name, forms[0]
    if not name or name == UNUSED_LABEL or " " in name:
        return None
    return name, name


@dataclass
class TaggerOptions:
    """Which tags to return (MediaPipe's ``ClassifierOptions`` / ``DetectorOptions``).

    Attributes:
        score_threshold: drop tags scored below this (0..1).
        max_results: most tags returned, best first (-1: all).
        category_allowlist: keep only tags whose word or label is listed (empty: all).
        category_denylist: drop tags whose word or label is listed.
        num_threads: interpreter CPU threads (None: backend default; inside a
            :class:`~edgecap.runtime.Captioner`, ``TAGGER_THREADS`` (1), and 1 in ``--workers``
            processes).
        backends: interpreter packages to try, in order.
        quiet: silence the interpreter's own log lines while the model loads.
        max_pixels: refuse photos with more pixels than this once decoded.
        kernels: ``"default"`` | ``"builtin"`` | ``"reference"`` (the same integer arithmetic
            on every CPU; see :func:`edgecap.runtime.interpreter.make_interpreter`).

    Raises:
        ValueError: a threshold outside [0, 1], ``max_results`` 0 or below -1, both lists naming
            the same category, or ``num_threads`` < 1.
    """

    score_threshold: float = 0.0
    max_results: int = 5
    category_allowlist: tuple[str, ...] = ()
    category_denylist: tuple[str, ...] = ()
    num_threads: int | None = None
    backends: tuple[str, ...] = BACKENDS
    quiet: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    kernels: str = "default"

    def __post_init__(self):
        check_kernels(self.kernels)
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {self.score_threshold}")
        if self.max_results == 0 or self.max_results < -1:
            raise ValueError(f"max_results must be >= 1 or -1 (all), got {self.max_results}")
        both = set(self.category_allowlist) & set(self.category_denylist)
        if both:
            raise ValueError(f"categories both allowed and denied: {sorted(both)}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")


@dataclass
class TagWords:
    """A tagger's label → caption-word mapping (``<name>.words.json``).

    Attributes:
        kind: ``"classifier"`` or ``"detector"``.
        labels: the labels file's lines.
        words: per label, the caption words naming it (empty: never a tag).
        label_offset: output index (class id) ``i`` is line ``i + label_offset`` of the labels.
    """

    kind: str
    labels: list[str]
    words: list[tuple[str, ...]]
    label_offset: int = 0


def _read_bounded(path: Path, limit: int, what: str) -> str:
    try:
        size = path.stat().st_size
        if size > limit:
            raise ModelFileError(f"{path}: {what} of {size} bytes is over the limit of {limit}")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: cannot read the {what} ({e})") from None


def read_tag_words(words_path: str | Path, labels_path: str | Path) -> TagWords:
    """Read and check a mapping against its labels file.

    Raises:
        ModelFileError: a file is missing, unreadable or over its size limit; the mapping is not
            JSON, nested too deeply, holds NaN or infinities, or a field of another type or
            beyond its bounds (every field checked as it is, never converted); its labels differ
            from the labels file's (length or text); or a word is not one lowercase caption token
            or is a ``<special>`` one. One line naming the file (and the field).
    """
    words_path, labels_path = Path(words_path), Path(labels_path)
    labels = _read_bounded(labels_path, MAX_LABELS * 200, "labels file").splitlines()
    if not labels or len(labels) > MAX_LABELS:
        raise ModelFileError(f"{labels_path}: expected 1..{MAX_LABELS} labels, one a line, got {len(labels)}")
    try:
        raw = json.loads(_read_bounded(words_path, MAX_WORDS_FILE_BYTES, "word mapping"), parse_constant=_no_constant)
    except RecursionError:
        raise ModelFileError(f"{words_path}: not a tag word mapping (JSON nested too deeply)") from None
    except ValueError as e:
        raise ModelFileError(f"{words_path}: not a tag word mapping (not JSON: {e})") from None
    kind, offset, pairs = _mapping_fields(raw, words_path)
    if kind not in KINDS:
        raise ModelFileError(f"{words_path}: kind must be one of {KINDS}, got {kind!r}")
    if len(pairs) != len(labels):
        raise ModelFileError(
            f"{words_path}: maps {len(pairs)} labels, but {labels_path.name} has {len(labels)}; remake it with scripts/make_tag_words.py"
        )
    for n, ((label, words), line) in enumerate(zip(pairs, labels)):
        if label != line:
            raise ModelFileError(
                f"{words_path}: label {n} is {label!r}, but line {n} of {labels_path.name} is {line!r}"
            )
        bad = [w for w in words if not w or w != w.lower() or any(c.isspace() for c in w) or w[0] + w[-1] == "<>"]
        if bad:
            raise ModelFileError(
                f"{words_path}: label {label!r} maps to {bad!r}, not lowercase one-word caption tokens (nor <special> ones)"
            )
    return TagWords(kind, labels, [w for _, w in pairs], offset)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number a tag word mapping holds")


def _mapping_fields(raw, path: Path) -> tuple[str, int, list[tuple[str, tuple[str, ...]]]]:
    """``(kind, label_offset, [(label, words)])`` of a parsed mapping, every field of its exact
    type and bounded: a wrong type is refused, never converted (a string is not a list of words).

    Raises:
        ModelFileError: naming ``path`` and the field.
    """

    def refuse(field: str, expected: str, got) -> ModelFileError:
        return ModelFileError(f"{path}: {field} must be {expected}, got {type(got).__name__}")

    if not isinstance(raw, dict):
        raise refuse("the mapping", "a JSON object", raw)
    kind, entries, offset = raw.get("kind"), raw.get("labels"), raw.get("label_offset", 0)
    if not isinstance(kind, str):
        raise refuse("'kind'", "a string", kind)
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_LABELS:
        raise ModelFileError(f"{path}: 'label_offset' must be an integer in 0..{MAX_LABELS}, got {offset!r:.40}")
    if not isinstance(entries, list) or len(entries) > MAX_LABELS:
        raise refuse("'labels'", f"a list of at most {MAX_LABELS} entries", entries)
    pairs = []
    for n, entry in enumerate(entries):
        label = entry.get("label") if isinstance(entry, dict) else None
        words = entry.get("words") if isinstance(entry, dict) else None
        if not isinstance(label, str):
            raise refuse(f"labels[{n}].label", "a string", label)
        if (
            not isinstance(words, list)
            or len(words) > 64
            or not all(isinstance(w, str) and len(w) <= 64 for w in words)
        ):
            raise refuse(f"labels[{n}].words", "a list of at most 64 words (strings of 64 characters or fewer)", words)
        pairs.append((label, tuple(words)))
    return kind, offset, pairs


class Tagger:
    """Caption words for what a TFLite classifier or detector sees (MediaPipe's ImageClassifier /
    ObjectDetector, with labels mapped to caption words).

    A classifier file has one ``uint8`` or ``float32`` image input ``(1, S, S, 3)`` and one
    output ``(1, N)`` of class scores (N = labels in the file). A detector file has the
    ``TFLite_Detection_PostProcess`` outputs: boxes ``(1, n, 4)``, classes ``(1, n)``, scores
    ``(1, n)``, count ``(1,)``. Photos are resized to ``S×S`` as a whole, like the captioner's.

    Calls are serialised by a lock: one ``Tagger`` is safe to share between threads.

    Args:
        model_content: the ``.tflite`` bytes.
        words: the label → caption-word mapping.
        options: score threshold, max results, lists.
        name: the tagger's name, reported as each tag's ``source``.
        source: the model's path, for errors.

    Raises:
        ModelFileError: the interpreter refuses the file, or its inputs/outputs are not those of
            a classifier/detector of the declared kind and label count (names ``source``).
    """

    def __init__(
        self,
        model_content: bytes,
        words: TagWords,
        options: TaggerOptions | None = None,
        name: str = "tagger",
        source: str = "<tagger>",
    ):
        self.options = options or TaggerOptions()
        self.words, self.name, self.source, self.kind = words, name, source, words.kind
        self._lock = threading.Lock()
        try:
            with quiet_native_logs(self.options.quiet):
                self.interpreter, self.backend = make_interpreter(
                    model_content, self.options.num_threads, self.options.backends, self.options.kernels
                )
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelFileError(f"{source}: the interpreter cannot load this tagger ({type(e).__name__}: {e})") from e
        self._check_shapes()

    def _check_shapes(self) -> None:
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or list(inputs[0]["shape"][[0, 3]]) != [1, 3]:
            raise ModelFileError(
                f"{self.source}: a tagger takes one (1, S, S, 3) image, this file takes {[list(d['shape']) for d in inputs]}"
            )
        self.input = inputs[0]
        self.image_size = int(self.input["shape"][1])
        shapes = [list(d["shape"]) for d in outputs]
        n_labels = len(self.words.labels) - self.words.label_offset
        if self.kind == "classifier":
            if len(outputs) != 1 or shapes[0] != [1, n_labels]:
                raise ModelFileError(
                    f"{self.source}: a classifier of {n_labels} labels must have one (1, {n_labels}) output, this file has {shapes}"
                )
        elif len(outputs) != 4 or len(shapes[0]) != 3 or shapes[0][2] != 4 or shapes[3] != [1]:
            raise ModelFileError(
                f"{self.source}: a detector must have the outputs boxes (1, n, 4), classes (1, n), scores (1, n), count (1,); this file has {shapes}"
            )
        self.outputs = outputs

    @classmethod
    def create_from_model_path(
        cls,
        path: str | Path,
        options: TaggerOptions | None = None,
        labels_path: str | Path | None = None,
        words_path: str | Path | None = None,
    ) -> "Tagger":
        """Load a tagger file with its labels (default ``<stem>.labels.txt``) and word mapping
        (default ``<stem>.words.json``) beside it.

        Raises:
            ModelFileError: a file missing, unreadable or inconsistent (names it).
            NoInterpreterError: no TFLite interpreter installed.
        """
        path = Path(path)
        labels_path = Path(labels_path) if labels_path else path.with_suffix(".labels.txt")
        words_path = Path(words_path) if words_path else path.with_suffix(".words.json")
        words = read_tag_words(words_path, labels_path)
        try:
            content = path.read_bytes()
        except OSError as e:
            raise ModelFileError(f"{path}: cannot read the tagger ({e.strerror or e})") from None
        return cls(content, words, options, path.stem, str(path))

    @classmethod
    def from_preset(cls, name: str, options: TaggerOptions | None = None) -> "Tagger":
        """A built-in tagger by name (``edgecap models`` lists them).

        Raises:
            ValueError: no built-in tagger of that name (the message lists them).
        """
        from edgecap.runtime.presets import tagger_path

        return cls.create_from_model_path(tagger_path(name), options)

    # --- running ---------------------------------------------------------------------------
    def _run(self, pixels: np.ndarray) -> list[np.ndarray]:
        d = self.input
        x = pixels[None]
        if d["dtype"] == np.float32:  # a float model: scale 0..255 to [-1, 1] as MobileNet does
            x = (x.astype(np.float32) - 127.5) / 127.5
        with self._lock:
            self.interpreter.set_tensor(d["index"], x.astype(d["dtype"], copy=False))
            self.interpreter.invoke()
            return [self._dequantize(o) for o in self.outputs]

    def _dequantize(self, detail: dict) -> np.ndarray:
        value = self.interpreter.get_tensor(detail["index"])
        scale, zero = detail.get("quantization", (0.0, 0))
        if value.dtype != np.float32 and scale:
            return (value.astype(np.float32) - zero) * np.float32(scale)
        return value.astype(np.float32)

    def preprocess(self, image: ImageInput) -> np.ndarray:
        """Any photo → ``uint8 (S, S, 3)``. Raises ImageLoadError naming the file."""
        return load_image(image, self.image_size, self.options.max_pixels)

    def tag(self, image: ImageInput) -> list[Tag]:
        """The tags of one photo (path, bytes, PIL image or uint8 array), best first.

        A classifier's labels that map to no caption word are skipped, a detector's are tags
        without forms (seen, never forced); tags naming the same word are merged (a
        classifier's probabilities summed, a detector's best box kept).

        Raises:
            ImageLoadError: the input is not a readable image (names the file).
            ModelFileError: the interpreter fails on this model (names the model file).
        """
        pixels = self.preprocess(image)
        try:
            outputs = self._run(pixels)
        except RuntimeError as e:
            raise ModelFileError(f"{self.source}: the tagger failed ({e})") from e
        return self._select(self._classify(outputs) if self.kind == "classifier" else self._detect(outputs))

    def _label(self, index: int) -> tuple[str, tuple[str, ...]]:
        line = index + self.words.label_offset
        if not 0 <= line < len(self.words.labels):
            return "", ()
        return self.words.labels[line], self.words.words[line]

    def _classify(self, outputs: list[np.ndarray]) -> list[Tag]:
        probs = outputs[0][0]  # (N,)
        by_word: dict[str, list] = {}
        for i in np.argsort(-probs, kind="stable")[:50].tolist():  # the top 50 hold nearly all the mass
            label, forms = self._label(i)
            if not forms or probs[i] <= 0:
                continue
            entry = by_word.setdefault(forms[0], [0.0, label, forms])
            entry[0] += float(probs[i])
        return [Tag(w, min(s, 1.0), self.name, label, forms) for w, (s, label, forms) in by_word.items()]

    def _detect(self, outputs: list[np.ndarray]) -> list[Tag]:
        boxes, classes, scores, count = outputs
        n = int(min(max(count[0], 0), scores.shape[1]))
        best: dict[str, Tag] = {}
        for j in range(n):
            label, forms = self._label(int(classes[0, j]))
            named = detector_word(label, forms)
            if named is None:
                continue
            name, word = named
            score = float(scores[0, j])
            if word not in best or score > best[word].score:
                box = tuple(float(v) for v in np.clip(boxes[0, j], 0.0, 1.0))
                best[word] = Tag(word, score, self.name, name, forms, box)  # type: ignore[arg-type]
        return list(best.values())

    def _select(self, tags: list[Tag]) -> list[Tag]:
        o = self.options
        allow, deny = set(o.category_allowlist), set(o.category_denylist)
        tags = [
            t
            for t in tags
            if t.score >= o.score_threshold
            and not ({t.word, t.label} & deny)
            and (not allow or {t.word, t.label} & allow)
        ]
        tags.sort(key=lambda t: (-t.score, t.word))
        return tags if o.max_results == -1 else tags[: o.max_results]
