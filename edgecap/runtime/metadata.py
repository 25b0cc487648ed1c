"""The edgecap metadata packed inside a ``.tflite`` file (no TensorFlow).

Following the TFLite model-metadata convention for associated files, the flatbuffer is
followed by a zip archive: the interpreter reads the flatbuffer and ignores the rest, and any
zip reader (Python's ``zipfile``, Android's ``ZipInputStream``) finds the files. The archive
holds ``edgecap.json`` (everything the runtime needs) and ``vocab.txt`` (one word a line).

Format 2 declares the step contract (:mod:`edgecap.runtime.contract`): every state and memory
tensor the signatures carry. Format 1 files (exported before it) still load: their contract
is read off the signatures. Format 3 adds ``flatbuffer_sha256``, the SHA-256 digest of the
flatbuffer, checked at load: a flipped bit or a truncated download in the weights is refused.
The digest is not a signature: anyone who changes the flatbuffer can write a matching digest
(``pack`` does exactly that), so it protects against damage, not against a deliberate edit.
It also adds ``verified``: False while ``edgecap export`` has not (yet) checked the file
against Keras, and the runtime refuses such a file.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgecap.runtime.contract import ContractError, StepContract

METADATA_NAME = "edgecap.json"
VOCAB_NAME = "vocab.txt"
FORMAT_VERSION = 3
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
#: Fields of format 1 that format 2 replaced by the step contract.
_FORMAT1_ONLY = ("grid", "hidden_dim", "annotation_dim")


class ModelFileError(ValueError):
    """A ``.tflite`` file is missing, corrupt, not an edgecap model, or lacks its metadata."""


@dataclass
class ModelMetadata:
    """What the runtime needs besides the graph.

    Attributes:
        name, version: model name and version string.
        architecture: registry name of the model family, e.g. ``"show_attend_tell"``.
        quantization: ``"float32" | "float16" | "dynamic" | "int8"``.
        vocabulary: words in id order (``<pad> <start> <end> <unk>`` first).
        pad_id, start_id, end_id, unk_id: special token ids.
        image_size: encoder input side in pixels; the image input is ``uint8 (1, S, S, 3)``.
        normalization: the in-graph pixel normalisation (informative: it is inside the graph).
        contract: the step contract as a dict (:meth:`StepContract.to_dict`); None in a
            format 1 file, whose contract is read off its signatures (``legacy_grid`` is then
            the side of its attention grid).
        task: what the file does, e.g. ``"captioning"``.
        max_length: default most words per caption.
        beam_size, length_penalty, no_repeat_ngram_size: default decoding, as selected on the dev split.
        extra: free-form provenance (training run, dataset, metrics).
        flatbuffer_sha256: hex SHA-256 of the flatbuffer, written by :func:`pack` (format 3;
            empty in older files, which are loaded unchecked).
        verified: the file passed ``edgecap export``'s check against Keras (False for a
            staged or rejected export, which the runtime refuses).
    """

    name: str
    version: str
    architecture: str
    quantization: str
    vocabulary: list[str]
    image_size: int
    normalization: str
    contract: dict | None = None
    task: str = "captioning"
    pad_id: int = 0
    start_id: int = 1
    end_id: int = 2
    unk_id: int = 3
    max_length: int = 20
    beam_size: int = 3
    length_penalty: float = 0.0
    no_repeat_ngram_size: int = 0
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)
    flatbuffer_sha256: str = ""
    verified: bool = True
    legacy_grid: int = 0

    def step_contract(self, source: str = "<model>") -> StepContract | None:
        """The declared :class:`StepContract` (None for a format 1 file).

        Raises:
            ModelFileError: a malformed declaration (names ``source``).
        """
        if self.contract is None:
            return None
        try:
            return StepContract.from_dict(self.contract, source)
        except ContractError as e:
            raise ModelFileError(str(e)) from None


#: Limits from the format, checked before anything is read or inflated. A TFLite flatbuffer
#: addresses at most 2 GiB (32-bit offsets), and the appended archive is a few megabytes.
MAX_MODEL_BYTES = 2**31
#: One archive entry once inflated: the metadata JSON with a vocabulary of MAX_VOCABULARY words
#: of up to 40 characters stays below it.
MAX_ENTRY_BYTES = 64 * 2**20
MAX_ENTRIES = 16  #: entries of the appended archive (edgecap writes 2)
MAX_VOCABULARY = 1_000_000  #: words


def digest(model_bytes: bytes) -> str:
    """Hex SHA-256 of a flatbuffer (``bytes`` before the metadata archive)."""
    return hashlib.sha256(model_bytes).hexdigest()


def pack(model_bytes: bytes, metadata: ModelMetadata, verified: bool = True) -> bytes:
    """Append the metadata archive to a TFLite flatbuffer, with the flatbuffer's digest.

    Args:
        model_bytes: the flatbuffer alone (see :func:`flatbuffer` to strip an old archive).
        metadata: written as format :data:`FORMAT_VERSION` whatever it was read as.
        verified: False marks a file the runtime must refuse (an export not yet checked).
    """
    buf = io.BytesIO()
    fields = {k: v for k, v in asdict(metadata).items() if k != "legacy_grid"}
    fields.update(format_version=FORMAT_VERSION, flatbuffer_sha256=digest(model_bytes), verified=verified)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(METADATA_NAME, json.dumps(fields, ensure_ascii=False, indent=1))
        zf.writestr(VOCAB_NAME, "\n".join(metadata.vocabulary) + "\n")
    return model_bytes + buf.getvalue()


def flatbuffer(data: bytes) -> bytes:
    """The TFLite flatbuffer of a packed file: everything before the metadata archive."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return data[: _archive_start(zf)]


def _archive_start(zf: zipfile.ZipFile) -> int:
    """Offset of the appended archive's first entry: where the flatbuffer ends."""
    return min(info.header_offset for info in zf.infolist())


def _read_entry(zf: zipfile.ZipFile, name: str, source: str) -> bytes:
    """One archive entry, its sizes checked against the limits before it is inflated.

    Raises:
        KeyError: no such entry. ModelFileError: too many entries, or an entry too large.
    """
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise ModelFileError(
            f"{source}: damaged edgecap metadata ({len(infos)} archive entries, at most {MAX_ENTRIES})"
        )
    info = zf.getinfo(name)
    if info.file_size > MAX_ENTRY_BYTES or info.compress_size > MAX_ENTRY_BYTES:
        raise ModelFileError(
            f"{source}: damaged edgecap metadata ({name} declares {info.file_size:,} bytes, at most {MAX_ENTRY_BYTES:,})"
        )
    return zf.read(info)  # zipfile stops at the declared size: a bomb cannot inflate past it


def _is_tflite(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == b"TFL3"


#: field → (accepted types, check of the value or None, what is expected). ``extra``,
#: ``contract`` and the vocabulary's words are checked further in :func:`validate`.
_INT = (int,)
_NUM = (int, float)
_SCHEMA = {
    "name": ((str,), None, "a string"),
    "version": ((str,), None, "a string"),
    "architecture": ((str,), bool, "a non-empty string"),
    "quantization": ((str,), QUANTIZATIONS.__contains__, f"one of {QUANTIZATIONS}"),
    "vocabulary": ((list,), lambda v: len(v) >= 4, "a list of at least 4 words"),
    "image_size": (_INT, lambda v: 8 <= v <= 4096, "an integer in 8..4096"),
    "normalization": ((str,), None, "a string"),
    "contract": ((dict, type(None)), None, "an object"),
    "task": ((str,), bool, "a non-empty string"),
    "pad_id": (_INT, lambda v: v >= 0, "an integer >= 0"),
    "start_id": (_INT, lambda v: v >= 0, "an integer >= 0"),
    "end_id": (_INT, lambda v: v >= 0, "an integer >= 0"),
    "unk_id": (_INT, lambda v: v >= 0, "an integer >= 0"),
    "max_length": (_INT, lambda v: 1 <= v <= 1000, "an integer in 1..1000"),
    "beam_size": (_INT, lambda v: 1 <= v <= 100, "an integer in 1..100"),
    "length_penalty": (_NUM, lambda v: math.isfinite(v) and -10 <= v <= 10, "a number in -10..10"),
    "no_repeat_ngram_size": (_INT, lambda v: v == 0 or 2 <= v <= 100, "0 or an integer in 2..100"),
    "format_version": (_INT, None, "an integer"),
    "extra": ((dict,), None, "an object"),
    "flatbuffer_sha256": (
        (str,),
        lambda v: v == "" or (len(v) == 64 and all(c in "0123456789abcdef" for c in v)),
        "64 hex digits",
    ),
    "verified": ((bool,), None, "true or false"),
    "legacy_grid": (_INT, lambda v: 0 <= v <= 1000, "an integer in 0..1000"),
}


def validate(meta: ModelMetadata, source: str = "<model>") -> None:
    """Check every field's type and range, and the fields against each other.

    Raises:
        ModelFileError: naming ``source`` and the first bad field.
    """
    for name, (types, ok, expected) in _SCHEMA.items():
        value = getattr(meta, name)
        if (
            not isinstance(value, types)
            or (isinstance(value, bool) and bool not in types)
            or (ok is not None and not ok(value))
        ):
            raise ModelFileError(f"{source}: metadata field {name!r} must be {expected}, got {value!r:.80}")
    if len(meta.vocabulary) > MAX_VOCABULARY:
        raise ModelFileError(
            f"{source}: metadata field 'vocabulary' has {len(meta.vocabulary):,} words, at most {MAX_VOCABULARY:,}"
        )
    if not all(isinstance(w, str) and w and not any(c.isspace() for c in w) for w in meta.vocabulary):
        raise ModelFileError(
            f"{source}: metadata field 'vocabulary' must hold non-empty words without spaces or line breaks"
        )
    n = len(meta.vocabulary)
    specials = ("pad_id", "start_id", "end_id", "unk_id")
    for special in specials:
        if getattr(meta, special) >= n:
            raise ModelFileError(
                f"{source}: metadata field {special!r} is {getattr(meta, special)}, outside the vocabulary of {n} words"
            )
    if len({getattr(meta, s) for s in specials}) < len(specials):
        raise ModelFileError(
            f"{source}: metadata fields {', '.join(specials)} must be four different words, got {[getattr(meta, s) for s in specials]}"
        )


def read(
    data: bytes, source: str = "<model>", check_digest: bool = True, allow_unverified: bool = False
) -> ModelMetadata:
    """Metadata of a packed model file's bytes, validated (:func:`validate`).

    Args:
        data: the whole file.
        source: the name errors give (the file's path).
        check_digest: compare the flatbuffer with its SHA-256 digest (format 3; one hash pass
            over the file); False skips it.
        allow_unverified: accept ``verified: false`` (see :func:`read_file`).

    Raises:
        ModelFileError: not a TFLite flatbuffer; no, damaged or malformed edgecap metadata; a
            flatbuffer that does not match its digest; an export that was not verified (names
            ``source``).
    """
    if not _is_tflite(data):
        raise ModelFileError(f"{source}: not a TFLite model file (no 'TFL3' identifier)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            model_end = _archive_start(zf)
            raw = json.loads(_read_entry(zf, METADATA_NAME, source).decode("utf-8"))
    except KeyError:
        raise ModelFileError(
            f"{source}: a TFLite model without edgecap metadata ({METADATA_NAME}); export it with 'edgecap export'"
        ) from None
    except zipfile.BadZipFile as e:
        if b"PK\x05\x06" not in data[-65_557:]:  # no end-of-archive record: nothing was appended
            raise ModelFileError(
                f"{source}: a TFLite model without edgecap metadata ({METADATA_NAME}); export it with 'edgecap export'"
            ) from None
        raise ModelFileError(f"{source}: damaged edgecap metadata ({e})") from None
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError(f"{source}: damaged edgecap metadata (JSON nested too deeply)") from None
    except (
        json.JSONDecodeError, UnicodeDecodeError, zlib.error, ValueError, EOFError, OSError, RuntimeError,
        NotImplementedError, zipfile.LargeZipFile, struct.error, OverflowError, MemoryError,
    ) as e:  # fmt: skip
        # RuntimeError: an encrypted entry; NotImplementedError: a compression method zipfile lacks
        raise ModelFileError(f"{source}: damaged edgecap metadata ({type(e).__name__}: {e})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("format_version", 0), int):
        raise ModelFileError(f"{source}: damaged edgecap metadata (not an object with an integer format_version)")
    if raw.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{source}: metadata format {raw.get('format_version')} is newer than this edgecap understands ({FORMAT_VERSION}); upgrade edgecap"
        )
    if raw.get("format_version", 0) >= 2 and not isinstance(raw.get("contract"), dict):
        raise ModelFileError(
            f"{source}: edgecap metadata without a step contract; re-export the model with 'edgecap export'"
        )
    try:
        if raw.get("format_version", 0) < 2:  # exported before the step contract
            legacy = {k: raw.pop(k, None) for k in _FORMAT1_ONLY}
            raw["legacy_grid"] = int(legacy["grid"] or 0)
        meta = ModelMetadata(**raw)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{source}: edgecap metadata has missing or unknown fields ({e})") from e
    validate(meta, source)
    if meta.format_version >= 3 and not meta.flatbuffer_sha256:
        raise ModelFileError(
            f"{source}: metadata format {meta.format_version} without the flatbuffer's digest; the file is damaged or was not written by edgecap"
        )
    if check_digest and meta.flatbuffer_sha256 and digest(data[:model_end]) != meta.flatbuffer_sha256:
        raise ModelFileError(
            f"{source}: the model's weights do not match their SHA-256 digest: the file is damaged (a bad download or copy?); download or export it again"
        )
    if not meta.verified and not allow_unverified:
        raise ModelFileError(
            f"{source}: this export was not verified against Keras (an interrupted or rejected 'edgecap export'); export it again"
        )
    return meta


_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}  # fmt: skip


def read_file(
    path: str | Path, check_digest: bool = True, allow_unverified: bool = False
) -> tuple[bytes, ModelMetadata]:
    """``(file bytes, metadata)`` of a model file.

    Args:
        check_digest: see :func:`read`.
        allow_unverified: load an export that has not passed verification (``edgecap export``
            uses it to verify its staged file).

    Raises:
        ModelFileError: missing, empty, unreadable, foreign or damaged file (names ``path``).
    """
    path = Path(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # refused without opening: a FIFO would block
            raise ModelFileError(
                f"{path}: not a model file but {_KINDS.get(stat.S_IFMT(info.st_mode), 'a special file')}"
            )
        if info.st_size > MAX_MODEL_BYTES:  # a sparse giant is refused before it is read
            raise ModelFileError(
                f"{path}: {info.st_size:,} bytes, more than a TFLite model can be ({MAX_MODEL_BYTES:,})"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: model file not found") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the model file ({e.strerror or e})") from None
    if not data:
        raise ModelFileError(f"{path}: empty model file (0 bytes)")
    return data, read(data, str(path), check_digest, allow_unverified)
