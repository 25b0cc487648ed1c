"""The files the browser runs: each built-in captioner with its ``decode_step`` batch fixed.

LiteRT.js (``@litertjs/core``, the WASM build) runs an edgecap file as it is, except the step:
it refuses an input of shape ``(1, 512)`` for a signature tensor declared ``(-1, 512)``, so a
dynamic batch cannot be fed at all. A copy whose step inputs and outputs declare a static batch
``K`` runs exactly (probed in issue 47). :func:`static_step` makes that copy from the released
flatbuffer; the weights, the operators and ``encode`` are untouched, so every number the step
computes is the released file's. The browser's search runs its ``2^m · K`` rows (constrained
beam search) as ``2^m`` calls of ``K`` rows, and greedy search as one row padded to ``K``.

A web file carries the released file's metadata with its own flatbuffer digest (checked by the
Python runtime's :func:`edgecap.runtime.metadata.read` and by ``web/src/metadata.js``), and
``extra.web = {"step_batch": K, "source_sha256": <the released flatbuffer's digest>}``.

:func:`build` writes the web files of every built-in captioner and the detector, and
``manifest.json``, the one list the page reads (files, sizes, digests, and the pipeline's rules
exported from :mod:`edgecap.runtime.guidance` and :mod:`edgecap.runtime.objects`, so that the
JavaScript core has no copy of them). Needs only the TFLite schema that ships with the
interpreter package (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from edgecap.runtime import metadata as md
from edgecap.runtime.ops import model_object, pack_model
from edgecap.utils import atomic_write_bytes, atomic_write_text, sha256_file

STEP_SIGNATURE = "decode_step"
#: the manifest's format; the page refuses another
MANIFEST_VERSION = 1


class WebFileError(ValueError):
    """A model file cannot be made into a web file (names the file and the reason)."""


def static_step(flatbuffer: bytes, batch: int, source: str = "<model>") -> bytes:
    """The flatbuffer with ``decode_step``'s batch dimension fixed to ``batch``.

    Every input and output tensor of the step signature whose first dimension is dynamic
    (``shape_signature[0] == -1``: the tokens, the state, the log-probabilities, the attention)
    declares ``batch`` instead; the memory inputs (``(1, ...)``, shared by the beams) keep
    theirs. Intermediate tensors are left to the interpreter's shape propagation.

    Args:
        flatbuffer: a ``.tflite`` flatbuffer (no trailing metadata).
        batch: rows per step call, 1..1024.
        source: the file's name, for errors.

    Returns:
        The new flatbuffer (``TFL3``).

    Raises:
        WebFileError: ``batch`` out of range, no ``decode_step`` signature, or a step without a
            dynamic batch.
        ImportError: no TFLite schema module installed.
    """
    if not 1 <= batch <= 1024:
        raise WebFileError(f"{source}: the step batch must be in 1..1024, got {batch}")
    model = model_object(flatbuffer)
    sigs = [sd for sd in model.signatureDefs or [] if (sd.signatureKey or b"").decode() == STEP_SIGNATURE]
    if not sigs:
        raise WebFileError(f"{source}: no {STEP_SIGNATURE!r} signature: not a stepwise captioner")
    sd = sigs[0]
    graph = model.subgraphs[sd.subgraphIndex]
    changed = 0
    for tm in [*(sd.inputs or []), *(sd.outputs or [])]:
        t = graph.tensors[tm.tensorIndex]
        sig = list(t.shapeSignature) if t.shapeSignature is not None else []
        if not sig or sig[0] != -1:
            continue
        sig[0] = batch
        shape = list(t.shape)
        shape[0] = batch
        t.shapeSignature, t.shape = sig, shape
        changed += 1
    if not changed:
        raise WebFileError(f"{source}: {STEP_SIGNATURE!r} has no dynamic batch dimension to fix")
    return pack_model(model, len(flatbuffer))


def static_outputs(flatbuffer: bytes, shapes: list[list[int]], source: str = "<model>") -> bytes:
    """The flatbuffer with its main subgraph's outputs declared with these shapes.

    The COCO detector's ``TFLite_Detection_PostProcess`` outputs are unranked in the file (their
    sizes come from the custom operator's options once it runs); LiteRT.js refuses an unranked
    output ("Element type NONE is not supported"). ``shapes`` are the allocated shapes an
    interpreter reports after one run (:func:`detector_output_shapes`).

    Raises:
        WebFileError: ``shapes`` not one per output.
    """
    model = model_object(flatbuffer)
    graph = model.subgraphs[0]
    if len(shapes) != len(graph.outputs):
        raise WebFileError(f"{source}: {len(graph.outputs)} outputs, {len(shapes)} shapes given")
    for i, shape in zip(graph.outputs, shapes):
        graph.tensors[i].shape = list(shape)
        graph.tensors[i].shapeSignature = list(shape)
    return pack_model(model, len(flatbuffer))


def detector_output_shapes(path: Path) -> list[list[int]]:
    """The output shapes of a detector file after one run on a grey photo (the interpreter's own)."""
    import numpy as np

    from edgecap.runtime.interpreter import make_interpreter, quiet_native_logs

    with quiet_native_logs():  # the interpreter's "INFO: Created ... delegate" line
        interpreter = make_interpreter(Path(path).read_bytes())[0]
        interpreter.allocate_tensors()
        d = interpreter.get_input_details()[0]
        interpreter.set_tensor(d["index"], np.full(d["shape"], 128, d["dtype"]))
        interpreter.invoke()
    return [list(interpreter.get_tensor(o["index"]).shape) for o in interpreter.get_output_details()]


def web_file(path: Path, batch: int | None = None) -> bytes:
    """A released edgecap file made into its web file (:func:`static_step`, metadata re-packed).

    Args:
        path: the released file (its digest is checked as it is read).
        batch: the step's static batch; default the model's own beam size.

    Raises:
        ModelFileError: ``path`` is not a readable, verified edgecap model.
        WebFileError: see :func:`static_step`.
    """
    data, meta = md.read_file(path)
    return _web_bytes(data, meta, batch or meta.beam_size, str(path))


def _web_bytes(data: bytes, meta: md.ModelMetadata, batch: int, source: str) -> bytes:
    patched = static_step(md.flatbuffer(data), batch, source)
    web = {**meta.extra, "web": {"step_batch": batch, "source_sha256": meta.flatbuffer_sha256}}
    return md.pack(patched, dataclasses.replace(meta, extra=web))


@dataclass
class WebFile:
    """One entry of the manifest.

    Attributes:
        name: preset name, e.g. ``"show_attend_tell_flickr8k"``.
        file: file name beside the manifest.
        bytes: its size.
        sha256: hex SHA-256 of the whole file (the page's URL carries it, for the cache).
        step_batch: the step's static batch.
        source_sha256: the released flatbuffer's digest it was made from.
    """

    name: str
    file: str
    bytes: int
    sha256: str
    step_batch: int
    source_sha256: str


def _pipeline_rules() -> dict:
    """The default pipeline's rules, as the Python runtime applies them (module docstring)."""
    from edgecap.runtime.guidance import DEFAULT_TAGGERS, ConstraintOptions
    from edgecap.runtime.objects import SYNONYMS

    rules = asdict(ConstraintOptions())
    rules["untagged_penalty"] = rules["untagged_penalty"] if rules["untagged_penalty"] != float("inf") else None
    return {
        "taggers": list(DEFAULT_TAGGERS),
        "constraints": rules,
        "synonyms": {k: list(v) for k, v in SYNONYMS.items()},
    }


def build(out: Path, names: list[str] | None = None, progress=None) -> dict:
    """Write the web files of the built-in captioners and the detector, and ``manifest.json``.

    A file already there, made from the same release and with the manifest's digest, is kept
    (the demo's server runs this at every start; then it costs a hash of each file). Files are
    written atomically.

    Args:
        out: folder for the files (made if missing).
        names: captioner presets; default every built-in captioner.
        progress: called with each file name as it is written, or None.

    Returns:
        The manifest (also written to ``out/manifest.json``).

    Raises:
        ModelFileError, WebFileError: a released file cannot be read or made into a web file.
    """
    from edgecap.runtime.presets import default_preset, preset_names, preset_path, tagger_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    old, old_taggers = {}, []
    if (out / "manifest.json").is_file():
        try:
            previous = json.loads((out / "manifest.json").read_text())
            old = {e["name"]: e for e in previous["models"]}
            old_taggers = list(previous["taggers"])
        except (ValueError, KeyError, TypeError):
            old, old_taggers = {}, []
    entries = []
    for name in names or preset_names(task="captioning"):
        src = preset_path(name)
        data, meta = md.read_file(src)  # one read: the digest checked, the beam size
        k, src_digest = meta.beam_size, meta.flatbuffer_sha256
        file = f"{name}.web{k}.tflite"
        prev = old.get(name, {})
        if (
            prev.get("source_sha256") == src_digest
            and prev.get("file") == file
            and (out / file).is_file()
            and sha256_file(out / file) == prev.get("sha256")
        ):
            entries.append(WebFile(**{f: prev[f] for f in WebFile.__dataclass_fields__}))
            continue
        web = _web_bytes(data, meta, k, str(src))
        atomic_write_bytes(out / file, web)
        if progress:
            progress(file)
        entries.append(WebFile(name, file, len(web), hashlib.sha256(web).hexdigest(), k, src_digest))
    taggers = []
    for tagger in _pipeline_rules()["taggers"]:
        src = tagger_path(tagger)
        dst = out / f"{src.stem}.web.tflite"
        src_digest = sha256_file(src)
        prev = next((t for t in old_taggers if t.get("name") == tagger), None)
        if not (
            prev
            and prev.get("source_sha256") == src_digest
            and dst.is_file()
            and sha256_file(dst) == prev.get("sha256")
        ):
            atomic_write_bytes(dst, static_outputs(src.read_bytes(), detector_output_shapes(src), str(src)))
            if progress:
                progress(dst.name)
        words = src.with_name(src.stem + ".words.json")
        labels = src.with_name(src.stem + ".labels.txt")
        for extra in (words, labels):
            shutil.copyfile(extra, out / extra.name)
        taggers.append(
            {"name": tagger, "file": dst.name, "bytes": dst.stat().st_size, "sha256": sha256_file(dst),
             "source_sha256": src_digest, "words": words.name, "labels": labels.name}
        )  # fmt: skip
    manifest = {
        "format": MANIFEST_VERSION,
        "default": default_preset().name.removesuffix("_int8.tflite"),
        "models": [asdict(e) for e in entries],
        "taggers": taggers,
        "pipeline": _pipeline_rules(),
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    return manifest
