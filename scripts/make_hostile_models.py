"""Write a corpus of hostile model files, read by every runtime's tests (issue 48, class 6): each
file is the built-in default model with its metadata archive rewritten to break one rule, and
``manifest.json`` names the class of reason each must be refused for. Python:
tests/test_hostile_models.py; Java: android_demo/core (HostileFilesTest, under -Xmx256m).

    python scripts/make_hostile_models.py --out android_demo/core/build/hostile
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

from edgecap.paths import default_model
from edgecap.runtime.metadata import METADATA_NAME, VOCAB_NAME, digest, flatbuffer

#: the classes of reason: what each runtime's message must say for a file of that class
CLASSES = ("archive", "json", "digest", "fields", "contract", "unverified")


def _archive(entries: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _with(fields: dict, **changes) -> dict:
    out = json.loads(json.dumps(fields))
    for key, value in changes.items():
        out[key] = value(out[key]) if callable(value) else value
    return out


def _shape(fields: dict, shape: list) -> dict:
    out = json.loads(json.dumps(fields))
    out["contract"]["tensors"][0]["shape"] = shape
    return out


def cases(fields: dict) -> dict[str, tuple[str, Callable[[bytes], bytes]]]:
    """name → (class, function of the flatbuffer giving the whole file)."""

    def packed(meta: dict | str, extra: dict | None = None) -> Callable[[bytes], bytes]:
        def make(flat: bytes) -> bytes:
            text = meta if isinstance(meta, str) else json.dumps({**meta, "flatbuffer_sha256": digest(flat)})
            return flat + _archive({METADATA_NAME: text, VOCAB_NAME: "\n".join(fields["vocabulary"]), **(extra or {})})

        return make

    def damaged(flat: bytes) -> bytes:
        body = bytearray(flat)
        body[len(body) // 2] ^= 0x01
        return bytes(body) + _archive({METADATA_NAME: json.dumps({**fields, "flatbuffer_sha256": digest(flat)})})

    def no_digest(flat: bytes) -> bytes:
        return flat + _archive({METADATA_NAME: json.dumps({**fields, "flatbuffer_sha256": ""})})

    return {
        # a small file whose metadata inflates to 100 MB (whitespace deflates 1000:1)
        "metadata_bomb": ("archive", packed(json.dumps(fields)[:-1] + " " * 100_000_000 + "}")),
        "many_entries": ("archive", packed(fields, {f"pad{i}.txt": "x" for i in range(40)})),
        "deep_json": ("json", packed("[" * 200_000 + "]" * 200_000)),
        "not_json": ("json", packed("{not json")),
        "no_digest": ("digest", no_digest),
        "damaged_weights": ("digest", damaged),
        "same_special_ids": ("fields", packed(_with(fields, unk_id=fields["pad_id"]))),
        "line_break_in_a_word": ("fields", packed(_with(fields, vocabulary=lambda v: [*v[:10], "a\nb", *v[11:]]))),
        "max_length_0": ("fields", packed(_with(fields, max_length=0))),
        "beam_size_1000": ("fields", packed(_with(fields, beam_size=1000))),
        "image_size_5": ("fields", packed(_with(fields, image_size=5))),
        "max_length_a_float": ("fields", packed(_with(fields, max_length=20.5))),
        "length_penalty_huge": ("fields", packed(_with(fields, length_penalty=1e308))),
        "negative_shape": ("contract", packed(_shape(fields, [-512]))),
        "overflowing_shape": ("contract", packed(_shape(fields, [2**40]))),
        "huge_tensor": ("contract", packed(_shape(fields, [65536, 65536]))),
        "unverified": ("unverified", packed(_with(fields, verified=False))),
    }


def write_corpus(out: str | Path, model: str | Path | None = None) -> dict[str, str]:
    """Write the corpus into ``out``; returns ``{file name: class}`` (also ``out/manifest.json``)."""
    data = Path(model or default_model()).read_bytes()
    flat = flatbuffer(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        fields = json.loads(zf.read(METADATA_NAME))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, (kind, make) in cases(fields).items():
        (out / f"{name}.tflite").write_bytes(make(flat))
        manifest[f"{name}.tflite"] = kind
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", help="the model to break (default: the built-in default model)")
    args = parser.parse_args()
    manifest = write_corpus(args.out, args.model)
    print(f"{args.out}: {len(manifest)} hostile model files and manifest.json")


if __name__ == "__main__":
    main()
