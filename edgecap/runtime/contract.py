"""The stepwise-decoder contract every edgecap captioner follows (no TensorFlow).

A captioner's exported file has two signatures:

- ``encode``: ``image uint8 (1, S, S, 3)`` → every *state* tensor ``(1, *shape)`` and every
  *memory* tensor ``(1, *shape)``;
- ``decode_step``: ``tokens int32 (B,)``, every state tensor ``(B, *shape)`` and every memory
  tensor (``(1, *shape)``, shared by the B beams; ``(B, *shape)`` if declared ``per_beam``) →
  ``log_probs float32 (B, V)``, the new state tensors under the same names, and optionally an
  attention map ``(B, *attention.shape)``.

A contract may also declare *items* (:class:`ItemsDecl`): words that ``encode`` finds in the
photo (semantic attention's attributes), returned as vocabulary ids with scores and never fed
to ``decode_step``; an attention map ``over="items"`` weighs those words.

A contract may declare *tags* (:class:`TagsDecl`): two memory tensors that ``encode`` does not
make, filled by the runtime from a tagger's words (vocabulary ids and scores, padded with id 0
and score 0): the photo's CNN encode and the tagger run side by side, and the step reads both.

*State* is recurrent (an LSTM's ``h`` and ``c``): beam search reorders its rows by the beams'
parent indices every step. *Memory* is what depends on the image alone (projected annotation
vectors, attention keys): computed once by ``encode`` and never reordered. The declaration is
stored in the file's metadata (:class:`StepContract.to_dict`), and the runtime, the int8
representative dataset, the export verification and ``edgecap bench`` work from it alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

TOKENS, LOG_PROBS, IMAGE = "tokens", "log_probs", "image"
ROLES = ("state", "memory")
DTYPES = ("float32", "int32")
#: bounds of a declared tensor's row: far above any captioner's (a 7×7×2048 memory is 100,352
#: values), far below what would exhaust a phone's memory
MAX_DIMENSION = 65536
MAX_VALUES = 1 << 24
RESERVED = {TOKENS, LOG_PROBS, IMAGE}
OVER = ("grid", "items")


class ContractError(ValueError):
    """A step contract is malformed, or a model file's signatures do not match its declaration."""


@dataclass(frozen=True)
class TensorDecl:
    """One state or memory tensor.

    Attributes:
        name: signature input/output name (not one of ``tokens``, ``log_probs``, ``image``).
        shape: per-row shape, without the batch dimension, e.g. ``(512,)`` or ``(49, 256)``.
        role: ``"state"`` (reordered by beam parents) or ``"memory"`` (shared by the beams).
        dtype: ``"float32"`` or ``"int32"``.
        per_beam: memory only: the step takes it with B rows (repeated per beam) instead of 1.
    """

    name: str
    shape: tuple[int, ...]
    role: str
    dtype: str = "float32"
    per_beam: bool = False

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if not self.name or self.name in RESERVED:
            raise ContractError(f"tensor name {self.name!r} is empty or reserved ({sorted(RESERVED)})")
        if self.role not in ROLES:
            raise ContractError(f"tensor {self.name!r}: role must be one of {ROLES}, got {self.role!r}")
        if self.dtype not in DTYPES:
            raise ContractError(f"tensor {self.name!r}: dtype must be one of {DTYPES}, got {self.dtype!r}")
        if any(d < 1 for d in self.shape):
            raise ContractError(f"tensor {self.name!r}: every dimension must be >= 1, got {self.shape}")
        if any(d > MAX_DIMENSION for d in self.shape) or math.prod(self.shape) > MAX_VALUES:
            raise ContractError(
                f"tensor {self.name!r}: shape {self.shape} is too large (dimensions at most {MAX_DIMENSION}, at most {MAX_VALUES:,} values a row)"
            )
        if self.per_beam and self.role != "memory":
            raise ContractError(f"tensor {self.name!r}: only memory can be per_beam")


@dataclass(frozen=True)
class AttentionDecl:
    """An attention map returned with each word.

    Attributes:
        output: the ``decode_step`` output name.
        shape: how one row ``(prod(shape),)`` is laid out for display, e.g. ``(7, 7)`` for a
            grid of image locations, or ``(10,)`` for weights over 10 attribute words.
        over: what is attended: ``"grid"`` (image locations) or ``"items"``.
    """

    output: str
    shape: tuple[int, ...]
    over: str = "grid"

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.output in RESERVED or not self.output:
            raise ContractError(f"attention output name {self.output!r} is empty or reserved")
        if self.over not in OVER:
            raise ContractError(f"attention {self.output!r}: over must be one of {OVER}, got {self.over!r}")

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class ItemsDecl:
    """Words ``encode`` picks for the photo (e.g. the top-k visual attributes of semantic
    attention), in the order an ``over="items"`` attention map weighs them.

    Attributes:
        ids: ``encode`` output ``int32 (1, size)``: vocabulary ids of the words.
        scores: ``encode`` output ``float32 (1, size)``: their scores (probabilities for attributes).
        size: how many words.
        rows: memory tensors with one row per item, in the items' order (shape ``(size, ...)``):
            export verification compares them item by item, whatever order the two models
            picked the items in.
    """

    ids: str
    scores: str
    size: int
    rows: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "rows", tuple(self.rows))
        for name in (self.ids, self.scores):
            if not name or name in RESERVED:
                raise ContractError(f"items output name {name!r} is empty or reserved")
        if self.ids == self.scores or self.size < 1:
            raise ContractError(
                f"items: ids and scores need two names and size >= 1, got {self.ids!r}, {self.scores!r}, {self.size}"
            )


@dataclass(frozen=True)
class TagsDecl:
    """Memory tensors the runtime fills from a tagger, not from ``encode``: up to ``size`` tags as
    vocabulary ids (``int32 (1, size)``, 0 = no tag) and scores (``float32 (1, size)``, 0 for no
    tag), best first, of the tags scored at least ``min_score`` by ``tagger``.

    Attributes:
        ids, scores: the two memory tensors' names (declared in the contract's tensors).
        size: K, the most tags a photo gives.
        min_score: tags scored below this are left out (what the model was trained with).
        tagger: the built-in tagger whose words the model learned (``"coco_detector"``).
    """

    ids: str
    scores: str
    size: int
    min_score: float = 0.0
    tagger: str = ""

    def __post_init__(self):
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "min_score", float(self.min_score))
        if self.ids == self.scores or not self.ids or not self.scores or self.size < 1:
            raise ContractError(
                f"tags: ids and scores need two names and size >= 1, got {self.ids!r}, {self.scores!r}, {self.size}"
            )
        if not 0.0 <= self.min_score <= 1.0:
            raise ContractError(f"tags: min_score must be in [0, 1], got {self.min_score}")


@dataclass(frozen=True)
class StepContract:
    """What a captioner's ``encode`` returns and its ``decode_step`` carries.

    Attributes:
        tensors: state and memory declarations, in signature order (state first by convention).
        attention: the attention map output, or None.
        items: the words ``encode`` picks for the photo, or None.
        tags: the memory tensors the runtime fills from a tagger, or None.

    Raises:
        ContractError: duplicate names, no state, an attention output named like a tensor, an
            ``over="items"`` attention without items, or tags that are not memory tensors of
            shape ``(size,)``, ids int32 and scores float32.
    """

    tensors: tuple[TensorDecl, ...]
    attention: AttentionDecl | None = None
    items: ItemsDecl | None = None
    tags: TagsDecl | None = None
    _by_name: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "tensors", tuple(self.tensors))
        names = [t.name for t in self.tensors]
        if len(set(names)) != len(names):
            raise ContractError(f"duplicate tensor names in {names}")
        if not self.state:
            raise ContractError("a step contract needs at least one state tensor")
        if self.attention is not None and self.attention.output in names:
            raise ContractError(f"attention output {self.attention.output!r} has the name of a state or memory tensor")
        if self.items is not None and {self.items.ids, self.items.scores} & set(names):
            raise ContractError(
                f"items outputs {self.items.ids!r}, {self.items.scores!r}: one has the name of a state or memory tensor"
            )
        if self.items is not None:
            for name in self.items.rows:
                t = next((t for t in self.tensors if t.name == name), None)
                if t is None or t.role != "memory" or t.shape[:1] != (self.items.size,):
                    raise ContractError(
                        f"items rows: {name!r} is not a memory tensor of shape ({self.items.size}, ...)"
                    )
        if self.attention is not None and self.attention.over == "items" and self.items is None:
            raise ContractError(f"attention {self.attention.output!r} is over items, but the contract declares none")
        if self.tags is not None:
            for name, dtype in ((self.tags.ids, "int32"), (self.tags.scores, "float32")):
                t = next((t for t in self.tensors if t.name == name), None)
                if t is None or t.role != "memory" or t.shape != (self.tags.size,) or t.dtype != dtype or t.per_beam:
                    raise ContractError(
                        f"tags: {name!r} is not a shared memory tensor of shape ({self.tags.size},) and dtype {dtype}"
                    )
        self._by_name.update({t.name: t for t in self.tensors})

    @property
    def state(self) -> tuple[TensorDecl, ...]:
        return tuple(t for t in self.tensors if t.role == "state")

    @property
    def memory(self) -> tuple[TensorDecl, ...]:
        return tuple(t for t in self.tensors if t.role == "memory")

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.state)

    @property
    def memory_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.memory)

    @property
    def tag_names(self) -> tuple[str, ...]:
        """The memory tensors filled from tags (``()`` without tags)."""
        return (self.tags.ids, self.tags.scores) if self.tags is not None else ()

    @property
    def encoded_memory_names(self) -> tuple[str, ...]:
        """The memory tensors ``encode`` makes (every memory tensor but the tags)."""
        return tuple(n for n in self.memory_names if n not in self.tag_names)

    @property
    def encode_names(self) -> tuple[str, ...]:
        """Every ``encode`` output: state, memory (but the tags), then the items' ids and scores."""
        items = (self.items.ids, self.items.scores) if self.items is not None else ()
        return tuple(t.name for t in self.tensors if t.name not in self.tag_names) + items

    def __getitem__(self, name: str) -> TensorDecl:
        return self._by_name[name]

    # --- metadata -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out: dict = {
            "tensors": [
                {
                    "name": t.name,
                    "shape": list(t.shape),
                    "role": t.role,
                    "dtype": t.dtype,
                    **({"per_beam": True} if t.per_beam else {}),
                }
                for t in self.tensors
            ]
        }
        if self.attention is not None:
            out["attention"] = {
                "output": self.attention.output,
                "shape": list(self.attention.shape),
                "over": self.attention.over,
            }
        if self.items is not None:
            out["items"] = {
                "ids": self.items.ids,
                "scores": self.items.scores,
                "size": self.items.size,
                "rows": list(self.items.rows),
            }
        if self.tags is not None:
            out["tags"] = {
                "ids": self.tags.ids,
                "scores": self.tags.scores,
                "size": self.tags.size,
                "min_score": self.tags.min_score,
                "tagger": self.tags.tagger,
            }
        return out

    @classmethod
    def from_dict(cls, raw: Mapping, source: str = "<contract>") -> "StepContract":
        """Raises: ContractError naming ``source`` for a malformed declaration."""
        try:
            tensors = tuple(
                TensorDecl(
                    t["name"], tuple(t["shape"]), t["role"], t.get("dtype", "float32"), bool(t.get("per_beam", False))
                )
                for t in raw["tensors"]
            )
            att = raw.get("attention")
            attention = AttentionDecl(att["output"], tuple(att["shape"]), att.get("over", "grid")) if att else None
            it = raw.get("items")
            items = ItemsDecl(it["ids"], it["scores"], it["size"], tuple(it.get("rows", ()))) if it else None
            tg = raw.get("tags")
            tags = (
                TagsDecl(
                    str(tg["ids"]), str(tg["scores"]), tg["size"], tg.get("min_score", 0.0), str(tg.get("tagger", ""))
                )
                if tg
                else None
            )
            return cls(tensors, attention, items, tags)
        except ContractError as e:
            raise ContractError(f"{source}: {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise ContractError(f"{source}: malformed step contract ({type(e).__name__}: {e})") from None

    # --- checking a file's signatures against the declaration ------------------------------------
    def check_signatures(
        self,
        encode_outputs: Mapping[str, Sequence[int]],
        step_inputs: Mapping[str, Sequence[int]],
        step_outputs: Mapping[str, Sequence[int]],
        source: str = "<model>",
    ) -> None:
        """Check that the signatures carry every declared tensor with its shape.

        Args:
            encode_outputs, step_inputs, step_outputs: name → shape signature (``-1`` for a
                dynamic dimension) of each signature tensor.

        Raises:
            ContractError: naming ``source`` and the first tensor that is absent or of another shape.
        """

        def expect(where: str, table: Mapping, name: str, shape: tuple, batch_free: bool) -> None:
            if name not in table:
                raise ContractError(
                    f"{source}: the metadata declares {name!r}, but the {where} has no such tensor (it has {sorted(table)}); re-export the model"
                )
            got = tuple(int(d) for d in table[name])
            if len(got) != len(shape) + 1 or got[1:] != shape or (not batch_free and got[0] not in (-1, 1)):
                raise ContractError(
                    f"{source}: {where} tensor {name!r} has shape {list(got)}, the metadata declares {['B', *shape]}; re-export the model"
                )

        for t in self.tensors:
            if t.name not in self.tag_names:
                expect("encode output", encode_outputs, t.name, t.shape, False)
            expect("decode_step input", step_inputs, t.name, t.shape, True)
            if t.role == "state":
                expect("decode_step output", step_outputs, t.name, t.shape, True)
        if TOKENS not in step_inputs or LOG_PROBS not in step_outputs:
            raise ContractError(
                f"{source}: decode_step must take {TOKENS!r} and return {LOG_PROBS!r}; re-export the model"
            )
        extra = set(step_inputs) - {TOKENS, *(t.name for t in self.tensors)}
        if extra:
            raise ContractError(
                f"{source}: decode_step takes {sorted(extra)}, which the metadata does not declare; re-export the model"
            )
        if self.attention is not None:
            expect("decode_step output", step_outputs, self.attention.output, (self.attention.size,), True)
        if self.items is not None:
            expect("encode output", encode_outputs, self.items.ids, (self.items.size,), False)
            expect("encode output", encode_outputs, self.items.scores, (self.items.size,), False)


def infer_contract(
    encode_outputs: Mapping[str, Sequence[int]],
    step_inputs: Mapping[str, Sequence[int]],
    step_outputs: Mapping[str, Sequence[int]],
    grid: int | None = None,
) -> StepContract:
    """The contract of a file exported before contracts were declared (metadata format 1).

    Those files' ``decode_step`` took every ``encode`` output: the ones it also returns are
    state, the others memory, repeated per beam; any other output is the attention map over a
    ``grid`` × ``grid`` image grid.

    Raises:
        ContractError: the signatures do not have that form.
    """
    tensors = []
    for name in sorted(encode_outputs):
        shape = tuple(int(d) for d in encode_outputs[name])[1:]
        if name not in step_inputs:
            raise ContractError(f"encode output {name!r} is not a decode_step input")
        role = "state" if name in step_outputs else "memory"
        tensors.append(TensorDecl(name, shape, role, per_beam=role == "memory"))
    tensors.sort(key=lambda t: t.role != "state")
    extra = [n for n in step_outputs if n != LOG_PROBS and n not in encode_outputs]
    attention = (
        AttentionDecl(extra[0], (grid, grid) if grid else tuple(int(d) for d in step_outputs[extra[0]])[1:])
        if len(extra) == 1
        else None
    )
    return StepContract(tuple(tensors), attention)
