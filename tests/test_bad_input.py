"""Bad input of every kind, as an adversarial user would try it: damaged, inconsistent and
half-exported model files are refused at load naming the file; a batch of good and bad photo
paths captions every good one and names every bad one; huge photos stay small in memory."""

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecap.paths import released_dir
from edgecap.runtime import Captioner, CaptionerOptions, ModelFileError
from edgecap.runtime import metadata as md
from edgecap.runtime.presets import DEFAULT_PRESET, preset_names, preset_path


def _flipped(data: bytes, offset: int, mask: int = 0xFF) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)


def _flatbuffer_flips_refused(path: Path, n: int, seed: int) -> None:
    data = path.read_bytes()
    end = len(md.flatbuffer(data))
    rng = random.Random(seed)
    for offset in sorted(rng.sample(range(end), n)):
        with pytest.raises(ModelFileError, match="digest"):
            md.read(_flipped(data, offset, rng.randrange(1, 256)), f"flip@{offset}")


def test_flipped_bytes_in_the_weights_are_refused_by_the_digest(tiny_float32, tmp_path):
    _flatbuffer_flips_refused(tiny_float32, 30, seed=0)
    data = tiny_float32.read_bytes()
    middle = len(md.flatbuffer(data)) // 2
    bad = tmp_path / "flipped.tflite"
    bad.write_bytes(_flipped(data, middle))
    with pytest.raises(ModelFileError, match=r"flipped\.tflite.*SHA-256 digest.*damaged"):
        Captioner.from_file(bad)
    assert md.read(bad.read_bytes(), check_digest=False).name == md.read(data).name  # the check can be skipped


@pytest.mark.skipif(
    not (released_dir() / f"{DEFAULT_PRESET}_int8.tflite").is_file(), reason="no built-in model in export/"
)
def test_thirty_flips_anywhere_in_each_builtin_flatbuffer_are_refused():
    for seed, name in enumerate(preset_names()):
        _flatbuffer_flips_refused(preset_path(name), 30, seed=seed)


def _repacked(path: Path, tmp_path: Path, name: str, **fields) -> Path:
    """``path`` with metadata fields replaced (written as raw JSON: any type goes)."""
    import io
    import zipfile

    data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        raw = json.loads(zf.read(md.METADATA_NAME))
    raw.update(fields)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(md.METADATA_NAME, json.dumps(raw))
    out = tmp_path / name
    out.write_bytes(md.flatbuffer(data) + buf.getvalue())
    return out


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(beam_size="3"), "'beam_size' must be an integer in 1..100"),
        (dict(beam_size=0), "'beam_size' must be an integer in 1..100"),
        (dict(length_penalty=float("nan")), "'length_penalty' must be a number"),
        (dict(quantization="int4"), "'quantization' must be one of"),
        (dict(start_id=10**6), "'start_id' is 1000000, outside the vocabulary"),
        (dict(vocabulary=["<pad>", "<start>", "<end>", 7]), "'vocabulary' must hold non-empty words"),
        (dict(extra=[1, 2]), "'extra' must be an object"),
        (
            dict(image_size=225),
            r"encode's 'image' input has shape \[1, 224, 224, 3\], the metadata says image_size 225",
        ),
        (dict(flatbuffer_sha256="00" * 32), "SHA-256 digest"),
        (dict(flatbuffer_sha256=""), "without the flatbuffer's digest"),
        (dict(format_version="3"), "integer format_version"),
        (dict(verified=False), "not verified"),
    ],
)
def test_metadata_of_the_wrong_type_or_range_is_refused_at_load(tiny_float32, tmp_path, fields, message):
    bad = _repacked(tiny_float32, tmp_path, "bad.tflite", **fields)
    with pytest.raises(ModelFileError, match=rf"bad\.tflite.*{message}"):
        Captioner.from_file(bad)


def test_an_unverified_export_loads_only_when_asked(tiny_float32, tmp_path):
    staged = _repacked(tiny_float32, tmp_path, "staged.tflite", verified=False)
    captioner = Captioner.from_file(staged, CaptionerOptions(beam_size=1, max_length=3), allow_unverified=True)
    assert len(captioner.caption(np.zeros((64, 64, 3), np.uint8)).tokens) <= 3


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(position=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_any_byte_flip_gives_a_model_file_error_or_a_working_model(tiny_float32, position, mask):
    """Fuzz the loader: a flip in the flatbuffer is always refused; one in the metadata archive is
    refused or harmless (a field the reader ignores), never another exception."""
    data = tiny_float32.read_bytes()
    offset = int(position * len(data))
    damaged = _flipped(data, offset, mask)
    try:
        captioner = Captioner(
            damaged, md.read(damaged, "fuzz.tflite"), CaptionerOptions(beam_size=2, max_length=3), "fuzz.tflite"
        )
    except ModelFileError as e:
        assert "fuzz.tflite" in str(e)
        return
    assert offset >= len(md.flatbuffer(data)), "a flipped weight byte loaded"
    assert len(captioner.caption(np.zeros((32, 32, 3), np.uint8)).tokens) <= 3


def test_a_killed_export_leaves_nothing_that_loads_and_the_next_export_cleans_up(tiny_run, tmp_path):
    out = tmp_path / "out" / "model.tflite"
    script = textwrap.dedent(f"""
        import os, signal, warnings
        warnings.simplefilter("ignore")
        from edgecap.export import command
        command.verify_export = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # killed while verifying
        command.run_export({str(tiny_run)!r}, "float32", {str(out)!r}, verify_images=4)
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert killed.returncode == -9, killed.stderr[-2000:]
    left = [p for p in out.parent.rglob("*") if p.is_file()]
    assert not out.exists() and left, "the staged file should still be there, inside the scratch folder"
    for path in left:  # the staged model, the SavedModel's files: none of them loads
        with pytest.raises(ModelFileError):
            Captioner.from_file(path)
    assert any("not verified" in _load_error(p) for p in left if p.suffix == ".tflite")

    from edgecap.export.command import run_export

    run_export(tiny_run, "float32", out, verify_images=4)
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "model.tflite",
        "model.tflite.verify.json",
    ]  # the killed export's folder is gone
    assert Captioner.from_file(out).metadata.verified


def _load_error(path: Path) -> str:
    try:
        Captioner.from_file(path)
    except ModelFileError as e:
        return str(e)
    return ""


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edgecap.cli", *args], capture_output=True, text=True, timeout=600)


def test_a_batch_of_good_and_bad_paths_captions_every_good_photo_and_names_every_bad_one(
    tiny_float32, examples, tmp_path
):
    import shutil

    good = tmp_path / "good"
    good.mkdir()
    for p in examples.glob("*.jpg"):
        shutil.copy(p, good / p.name)
    empty = tmp_path / "empty"
    empty.mkdir()
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    long_name = tmp_path / ("y" * 300 + ".jpg")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes((examples / "coffee.jpg").read_bytes()[:3000])
    bad = {
        str(long_name): "File name too long",
        str(fifo): "not a regular file (a FIFO",
        "/dev/zero": "not a regular file (a character device",
        str(empty): "no images in this folder",
        str(tmp_path / "none.jpg"): "No such file",
        str(truncated): "truncated",
        "-": "not read from standard input",
    }
    out = _cli(
        "caption",
        str(long_name),
        str(good),
        str(fifo),
        "/dev/zero",
        str(empty),
        str(tmp_path / "none.jpg"),
        str(truncated),
        "-",
        "--model",
        str(tiny_float32),
        "--json",
    )
    assert out.returncode == 2, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert sorted(Path(x["image"]).name for x in lines if x["error"] is None) == [
        "astronaut.jpg",
        "chelsea.jpg",
        "coffee.jpg",
    ]
    errors = {x["image"]: x["error"] for x in lines if x["error"] is not None}
    assert set(errors) == set(bad)
    for path, why in bad.items():
        assert path in errors[path] and why in errors[path], errors[path]
        assert why in out.stderr
    assert "Traceback" not in out.stderr


def test_a_damaged_model_ends_the_batch_with_one_error_naming_it(tiny_float32, examples, tmp_path):
    bad = tmp_path / "damaged.tflite"
    data = tiny_float32.read_bytes()
    bad.write_bytes(_flipped(data, len(md.flatbuffer(data)) // 3))
    out = _cli("caption", str(examples), "--model", str(bad))
    assert (
        out.returncode == 1
        and "damaged.tflite" in out.stderr
        and "digest" in out.stderr
        and "Traceback" not in out.stderr
    )
    assert out.stdout == ""


def test_full_integer_without_int8_is_refused_by_name(tmp_path):
    out = _cli("export", "--float16", "--full-integer", "-o", str(tmp_path / "m.tflite"))
    assert (
        out.returncode != 0 and "--full-integer applies to --int8 only" in out.stderr and "Traceback" not in out.stderr
    )
    assert not list(tmp_path.iterdir())


def test_commands_that_need_tensorflow_say_which_extra_to_install(tmp_path):
    """A base install (runtime only) gets one line saying to install edgecap[train], not a ModuleNotFoundError."""
    script = textwrap.dedent("""
        import importlib.util, sys
        real = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name in ("tensorflow", "keras") else real(name, *a)
        from edgecap.cli import main
        main(["export", "--int8"])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "pip install 'edgecap[train]'" in out.stderr and "Traceback" not in out.stderr, (
        out.stderr
    )


def test_a_huge_jpeg_is_captioned_in_little_memory(tmp_path):
    """A 9400×9400 JPEG (88 M pixels) decoded at 1/8 size: the CLI's peak RSS stays under 200 MB."""
    from PIL import Image

    huge = tmp_path / "huge.jpg"
    Image.linear_gradient("L").convert("RGB").resize((9400, 9400)).save(huge, quality=70)
    script = textwrap.dedent(f"""
        import resource, subprocess, sys
        out = subprocess.run([sys.executable, "-m", "edgecap.cli", "caption", {str(huge)!r}], capture_output=True, text=True)
        print(out.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, out.stdout.strip()[:200], out.stderr[-500:])
    """)
    code, peak_mb, rest = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    ).stdout.split(" ", 2)
    assert code == "0" and "huge.jpg: " in rest, rest
    assert int(peak_mb) < 200, f"peak RSS {peak_mb} MB"
