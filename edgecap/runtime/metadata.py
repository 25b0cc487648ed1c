"""The edgecap metadata packed inside a ``.tflite`` file (no TensorFlow).

Following the TFLite model-metadata convention for associated files, the flatbuffer is
followed by a zip archive: the interpreter reads the flatbuffer and ignores the rest, and any
zip reader (Python's ``zipfile``, Android's ``ZipInputStream``) finds the files. The archive
holds ``edgecap.json`` (everything the runtime needs) and ``vocab.txt`` (one word a line).

Format 2 declares the step contract (:mod:`edgecap.runtime.contract`): every state and memory
tensor the signatures carry. Format 1 files (exported before it) still load: their contract
is read off the signatures.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgecap.runtime.contract import ContractError, StepContract

METADATA_NAME = "edgecap.json"
VOCAB_NAME = "vocab.txt"
FORMAT_VERSION = 2
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


def pack(model_bytes: bytes, metadata: ModelMetadata) -> bytes:
    """Append the metadata archive to a TFLite flatbuffer."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        fields = {k: v for k, v in asdict(metadata).items() if k != "legacy_grid"}
        zf.writestr(METADATA_NAME, json.dumps(fields, ensure_ascii=False, indent=1))
        zf.writestr(VOCAB_NAME, "\n".join(metadata.vocabulary) + "\n")
    return model_bytes + buf.getvalue()


def flatbuffer(data: bytes) -> bytes:
    """The TFLite flatbuffer of a packed file: everything before the metadata archive."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return data[: min(info.header_offset for info in zf.infolist())]


def _is_tflite(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == b"TFL3"


def read(data: bytes, source: str = "<model>") -> ModelMetadata:
    """Metadata of a packed model file's bytes.

    Raises:
        ModelFileError: not a TFLite flatbuffer, or no/malformed edgecap metadata (names ``source``).
    """
    if not _is_tflite(data):
        raise ModelFileError(f"{source}: not a TFLite model file (no 'TFL3' identifier)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            raw = json.loads(zf.read(METADATA_NAME).decode("utf-8"))
    except (zipfile.BadZipFile, KeyError):
        raise ModelFileError(f"{source}: a TFLite model without edgecap metadata ({METADATA_NAME}); export it with 'edgecap export'") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{source}: corrupt edgecap metadata ({e})") from e
    if raw.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"{source}: metadata format {raw.get('format_version')} is newer than this edgecap understands ({FORMAT_VERSION}); upgrade edgecap")
    if raw.get("format_version", 0) < 2:  # exported before the step contract
        legacy = {k: raw.pop(k, None) for k in _FORMAT1_ONLY}
        raw["legacy_grid"] = int(legacy["grid"] or 0)
    elif not isinstance(raw.get("contract"), dict):
        raise ModelFileError(f"{source}: edgecap metadata without a step contract; re-export the model with 'edgecap export'")
    try:
        return ModelMetadata(**raw)
    except TypeError as e:
        raise ModelFileError(f"{source}: edgecap metadata has missing or unknown fields ({e})") from e


def read_file(path: str | Path) -> tuple[bytes, ModelMetadata]:
    """``(file bytes, metadata)``. Raises: ModelFileError (missing, empty or foreign file)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    data = path.read_bytes()
    if not data:
        raise ModelFileError(f"{path}: empty model file (0 bytes)")
    return data, read(data, str(path))
