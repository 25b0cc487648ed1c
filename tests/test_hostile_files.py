"""Hostile model and index files: damage anywhere in the appended archive, metadata bombs, giant
sparse files, deep JSON, values that load but cannot run, special files, edited indexes. Each is
one ModelFileError / PhotoIndexError naming the file, refused before anything large is read."""

import io
import json
import os
import struct
import tracemalloc
import zipfile
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecap.runtime import ModelFileError
from edgecap.runtime import metadata as md
from edgecap.runtime.photo_index import INDEX_FORMAT, PhotoIndex, PhotoIndexError
from edgecap.runtime.presets import preset_path

MODEL = preset_path("multimodal_rnn_flickr8k")  # the smallest built-in captioner


@pytest.fixture(scope="module")
def packed():
    data = MODEL.read_bytes()
    return data, md.flatbuffer(data), md.read(data)


def _archive(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return buf.getvalue()


def _refused(data: bytes, message: str, tmp_path, name="hostile.tflite") -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match=message) as e:
        md.read_file(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(writes=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6))
def test_any_damage_to_the_archive_is_refused_in_one_line_or_harmless(packed, writes):
    """Bytes overwritten anywhere in the zip (local headers, deflate data, central directory,
    end record): a ModelFileError naming the file, or metadata equal to the original's."""
    data, flat, meta = packed
    damaged = bytearray(data)
    for position, value in writes:
        damaged[len(flat) + int(position * (len(data) - len(flat)))] = value
    try:
        got = md.read(bytes(damaged), "fuzz.tflite")
    except ModelFileError as e:
        assert str(e).startswith("fuzz.tflite: ")
        return
    assert got.vocabulary == meta.vocabulary and got.contract == meta.contract


def test_zip_features_zipfile_cannot_read_are_refused(packed, tmp_path):
    data, flat, _ = packed
    archive = bytearray(data[len(flat) :])
    central = archive.find(b"PK\x01\x02")  # the central directory's first entry: the metadata JSON
    encrypted = bytearray(archive)
    encrypted[central + 8] |= 0x01  # general purpose flag bit 0: encrypted
    _refused(flat + bytes(encrypted), r"damaged edgecap metadata \(RuntimeError", tmp_path)
    method = bytearray(archive)
    method[central + 10 : central + 12] = struct.pack("<H", 99)  # AES: a method zipfile does not know
    _refused(flat + bytes(method), r"damaged edgecap metadata \(NotImplementedError", tmp_path)


def test_a_metadata_bomb_is_refused_before_it_is_inflated(packed, tmp_path):
    _, flat, _ = packed
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(md.METADATA_NAME, "w") as f:
        for _ in range(80):
            f.write(b" " * 2**20)  # 80 MiB of JSON whitespace, ~80 KB deflated
    tracemalloc.start()
    try:
        _refused(flat + bomb.getvalue(), "declares 83,886,080 bytes", tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(flat) + 2**24, f"peak {peak / 2**20:.0f} MiB"


def test_a_sparse_giant_file_is_refused_before_it_is_read(tmp_path):
    giant = tmp_path / "giant.tflite"
    with open(giant, "wb") as f:
        f.truncate(md.MAX_MODEL_BYTES + 1)  # sparse: no disk used
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"giant.tflite: 2,147,483,649 bytes, more than a TFLite model can be"):
            md.read_file(giant)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_deeply_nested_metadata_is_refused(packed, tmp_path):
    _, flat, _ = packed
    _refused(flat + _archive({md.METADATA_NAME: b"[" * 200_000 + b"]" * 200_000}), "nested too deeply", tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(end_id=1), "must be four different words"),
        (dict(vocabulary_word="two\nlines"), "without spaces or line breaks"),
        (dict(vocabulary_word="a b"), "without spaces or line breaks"),
        (dict(vocabulary_size=md.MAX_VOCABULARY + 1), "at most 1,000,000"),
    ],
)
def test_values_that_load_but_cannot_run_are_refused(packed, tmp_path, change, message):
    _, flat, meta = packed
    vocabulary = list(meta.vocabulary)
    if "vocabulary_word" in change:
        vocabulary[10] = change.pop("vocabulary_word")
    if "vocabulary_size" in change:
        vocabulary += [f"w{i}" for i in range(change.pop("vocabulary_size") - len(vocabulary))]
    _refused(md.pack(flat, replace(meta, vocabulary=vocabulary, **change)), message, tmp_path)


def test_a_folder_or_fifo_given_as_the_model_is_named_as_such(tmp_path):
    from edgecap.cli import main

    fifo = tmp_path / "pipe.tflite"
    os.mkfifo(fifo)
    for path, kind in ((tmp_path, "a folder"), (fifo, "a FIFO")):
        result = CliRunner().invoke(main, ["caption", "--model", str(path), str(MODEL)])
        assert result.exit_code == 1 and f"{path}: not a model file but {kind}" in result.output


def test_a_foreign_file_in_the_released_folder_is_skipped_by_models(tmp_path, monkeypatch):
    import shutil

    from edgecap.cli import main
    from edgecap.runtime import presets

    folder = tmp_path / "released"
    shutil.copytree(presets.released_dir(), folder, ignore=shutil.ignore_patterns("*.h5"))
    (folder / "stranger_int8.tflite").write_bytes(b"not a model")
    (folder / "taggers" / "stranger.tflite").write_bytes(b"not a tagger")
    monkeypatch.setattr(presets, "released_dir", lambda: folder)
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0 and "multimodal_rnn_flickr8k" in result.stdout and "stranger" not in result.stdout
    assert "skipped" in result.stderr and "stranger.tflite" in result.stderr


def _index_file(tmp_path, name="photos.npz", **arrays) -> str:
    path = tmp_path / name
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _header(format=1, **fields) -> np.ndarray:
    header = {"format": format, "model_digest": "ab" * 32, "paths": ["a.jpg", "b.jpg"], **fields}
    return np.frombuffer(json.dumps(header).encode(), np.uint8)


def _v2(**arrays) -> dict:
    """A whole format-2 index of 2 photos, 3 regions of 4 dimensions, with ``arrays`` replaced."""
    whole = dict(
        header=_header(INDEX_FORMAT, dim=4),
        regions=np.zeros((2, 3, 2), np.uint8),
        region_scales=np.zeros((2, 3), np.float32),
        pooled=np.zeros((2, 4), np.int8),
        pooled_scales=np.zeros((2,), np.float32),
    )
    return {k: v for k, v in {**whole, **arrays}.items() if v is not None}


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(header=_header()), "not an edgecap photo index"),  # no regions
        (
            dict(header=_header(), regions=np.zeros((2, 3, 4), np.float16), extra=np.zeros(1)),
            "not an edgecap photo index",
        ),
        (dict(header=_header(paths="a.jpg"), regions=np.zeros((2, 3, 4), np.float16)), "damaged index header"),
        (dict(header=_header(paths=[1, 2]), regions=np.zeros((2, 3, 4), np.float16)), "damaged index header"),
        (dict(header=_header(), regions=np.zeros((2, 3, 4), np.float64)), "expected float16"),
        (dict(header=_header(), regions=np.zeros((3, 3, 4), np.float16)), "2 photos but region vectors"),
        (dict(header=np.zeros(3, np.float32), regions=np.zeros((2, 3, 4), np.float16)), "expected uint8 bytes"),
        (
            dict(header=np.frombuffer(b"[" * 100_000, np.uint8), regions=np.zeros((2, 3, 4), np.float16)),
            "RecursionError",
        ),
        (_v2(pooled=None), "not an edgecap photo index"),
        (_v2(header=_header(3, dim=4)), "unknown index format 3"),
        (_v2(header=_header(INDEX_FORMAT)), "dim must be a positive integer"),
        (_v2(regions=np.zeros((2, 3, 4), np.float16)), "regions is float16 .2, 3, 4., expected uint8"),
        (_v2(region_scales=np.zeros((2, 4), np.float32)), "region_scales is float32 .2, 4., expected float32 .2, 3."),
        (_v2(pooled=np.zeros((2, 5), np.int8)), "pooled is int8 .2, 5., expected int8 .2, 4."),
        (_v2(pooled_scales=np.zeros((3,), np.float64)), "pooled_scales is float64"),
        (dict(header=_header(INDEX_FORMAT, dim=4), regions=np.zeros((2, 3, 2), np.uint8)), "for format 2"),
    ],
)
def test_an_edited_index_is_refused_in_one_line(tmp_path, arrays, message):
    path = _index_file(tmp_path, **arrays)
    with pytest.raises(PhotoIndexError, match=message) as e:
        PhotoIndex.load(path)
    assert str(path) in str(e.value)


def test_an_index_whose_arrays_claim_more_than_the_file_holds_is_refused(tmp_path):
    path = _index_file(tmp_path, header=_header(), regions=np.zeros((2, 3, 4), np.float16))
    data = bytearray(path.read_bytes())
    at = data.find(b"'shape': (2, 3, 4)")
    for edit, message in (
        (b"'shape': (9, 3, 4)", "more than it holds"),
        (b"'shape': (9999999,", "unreadable array header"),
    ):
        data[at : at + 18] = edit[:18]
        path.write_bytes(bytes(data))
        with pytest.raises(PhotoIndexError, match=message):
            PhotoIndex.load(path)
    compressed = tmp_path / "compressed.npz"
    np.savez_compressed(compressed, header=_header(), regions=np.zeros((2, 3, 4), np.float16))
    with pytest.raises(PhotoIndexError, match="is compressed"):
        PhotoIndex.load(compressed)
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(PhotoIndexError, match="not an index file"):
        PhotoIndex.load(fifo)


def test_the_giant_and_the_bomb_are_refused_under_a_memory_limit(packed, tmp_path):
    """The same two files read by a process that may map at most 1 GiB: refused by name, not a MemoryError."""
    import subprocess
    import sys
    import textwrap

    _, flat, _ = packed
    giant = tmp_path / "giant.tflite"
    with open(giant, "wb") as f:
        f.truncate(3 * 2**30)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(md.METADATA_NAME, "w") as f:
        for _ in range(1200):
            f.write(bytes(2**20))  # 1.2 GiB inflated, ~1.2 MB on disk
    (tmp_path / "bomb.tflite").write_bytes(flat + bomb.getvalue())
    script = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
        from edgecap.runtime import metadata as md
        for name in ("giant.tflite", "bomb.tflite"):
            try:
                md.read_file({str(tmp_path)!r} + "/" + name)
            except md.ModelFileError as e:
                print(e)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "giant.tflite: 3,221,225,472 bytes, more than a TFLite model can be" in lines[0]
    assert "bomb.tflite: damaged edgecap metadata (edgecap.json declares 1,258,291,200 bytes" in lines[1]
