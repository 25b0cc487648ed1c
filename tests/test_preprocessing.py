"""load_image accepts any real photo and refuses bad input with the file named."""

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from edgecap.runtime.preprocessing import ImageLoadError, decode_once, load_image


@pytest.fixture
def photo(examples):
    return Image.open(examples / "chelsea.jpg")  # 451x300, not square


def test_any_size_becomes_224_rgb_uint8(photo):
    out = load_image(photo)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    assert out.min() < 30 and out.max() > 200  # a real photo, not a constant


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "I", "F"])
def test_modes(photo, mode, tmp_path):
    ref = load_image(photo).astype(int)
    img = (
        photo.convert(mode)
        if mode not in ("I;16", "I", "F")
        else Image.fromarray(
            (np.asarray(photo.convert("L"), np.float32) * (257.0 if mode != "F" else 1.0)).astype(
                {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
            )
        )
    )
    out = load_image(img)
    assert out.shape == (224, 224, 3)
    grey = mode in ("L", "LA", "I;16", "I", "F")
    target = ref.mean(axis=2) if grey else ref
    got = out.astype(int).mean(axis=2) if grey else out.astype(int)
    assert np.abs(got - target).mean() < 12


def test_png_16bit_from_disk(photo, tmp_path):
    arr = np.asarray(photo.convert("L"), np.uint16) * 257
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    out = load_image(path).astype(int)
    assert Image.open(path).mode.startswith("I")
    assert np.abs(out - load_image(photo.convert("L")).astype(int)).mean() < 2  # scaled, not clipped to white


def test_exif_orientation_is_applied(photo, tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    photo.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    upright = load_image(photo).astype(int)
    assert np.abs(load_image(path).astype(int) - upright).mean() < 12


def test_bytes_and_arrays(photo):
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    assert np.array_equal(load_image(buf.getvalue()), load_image(photo))
    assert load_image(np.asarray(photo)).shape == (224, 224, 3)
    with pytest.raises(ImageLoadError):
        load_image(np.zeros((4, 4, 2), np.uint8))


def test_bad_files_name_the_file(tmp_path, examples):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes((examples / "coffee.jpg").read_bytes()[:2000])
    for path, why in [
        (text, "not an image"),
        (empty, "empty"),
        (truncated, "truncated"),
        (tmp_path / "none.jpg", "No such file"),
    ]:
        with pytest.raises(ImageLoadError, match=f"{path.name}.*{why}"):
            load_image(path)


def test_decompression_bomb_is_refused(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)  # 400 Mpixel, a few KB on disk
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ImageLoadError, match="bomb.png.*decompression bomb"):
        load_image(bomb)


def test_os_errors_and_special_files_are_named_with_their_own_cause(tmp_path, examples):
    import os

    long_name = tmp_path / ("x" * 300 + ".jpg")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening it for reading would block: it must be refused unopened
    cases = [
        (long_name, "File name too long"),
        (fifo, "not a regular file .a FIFO"),
        (Path("/dev/zero"), "not a regular file .a character device"),
        (tmp_path, "not a regular file .a folder"),
    ]
    for path, why in cases:
        with pytest.raises(ImageLoadError, match=f"{why}"):
            load_image(path)
    if os.geteuid() != 0:  # root reads anything: the permission case needs another user
        locked = tmp_path / "locked.jpg"
        locked.write_bytes((examples / "coffee.jpg").read_bytes())
        locked.chmod(0)
        with pytest.raises(ImageLoadError, match="locked.jpg: Permission denied"):
            load_image(locked)


def test_huge_jpeg_is_decoded_at_reduced_size_and_the_pixel_limit_refuses_the_rest(photo, tmp_path):
    big = tmp_path / "big.jpg"
    photo.resize((4000, 3000)).save(big, quality=90)  # 12 MP
    out = load_image(big)
    ref = load_image(photo).astype(int)
    assert out.shape == (224, 224, 3) and np.abs(out.astype(int) - ref).mean() < 6  # the same picture
    assert load_image(big, max_pixels=1_000_000).shape == (224, 224, 3)  # decoded at 1/8: 500x375
    with pytest.raises(ImageLoadError, match="big.jpg: 500x375 pixels is over the limit of 100000"):
        load_image(big, max_pixels=100_000)
    png = tmp_path / "big.png"
    photo.resize((2000, 1500)).save(png)  # not a JPEG: decoded at full size, so the limit counts all of it
    with pytest.raises(ImageLoadError, match="big.png: 2000x1500 pixels is over the limit of 1000000"):
        load_image(png, max_pixels=1_000_000)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=3000),
    cut=st.integers(0, 20_000),
    flip=st.tuples(st.integers(0, 20_000), st.integers(1, 255)),
)
def test_any_bytes_give_an_image_or_an_image_load_error(data, cut, flip, examples):
    """Fuzz: random bytes, and truncated or byte-flipped real photos, never raise anything else."""
    real = bytearray((examples / "coffee.jpg").read_bytes()[: max(cut, 1)])
    i, x = flip
    if i < len(real):
        real[i] ^= x
    for candidate in (data, bytes(real), b"\x89PNG\r\n\x1a\n" + data, b"\xff\xd8\xff" + data):
        try:
            out = load_image(candidate)
        except ImageLoadError:
            continue
        assert out.shape == (224, 224, 3) and out.dtype == np.uint8


def test_one_decode_gives_each_size_the_pixels_of_its_own_decode(photo, tmp_path, examples):
    """decode_once: the captioner (224) and the detector (300) share one decode only where it
    changes no pixel; a JPEG whose sizes ask for different DCT scales is left to each."""
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated, grey, png = tmp_path / "rotated.jpg", tmp_path / "grey.jpg", tmp_path / "photo.png"
    photo.transpose(Image.Transpose.ROTATE_90).save(rotated, exif=exif, quality=95)
    photo.convert("L").save(grey)
    photo.convert("RGBA").save(png)
    big = tmp_path / "big.jpg"  # 224 asks for 1/8 scale, 300 too: shared
    photo.resize((4000, 3000)).save(big)
    for source in (examples / "chelsea.jpg", rotated, grey, png, big, big.read_bytes()):
        shared = decode_once(source, (224, 300))
        assert isinstance(shared, Image.Image) and shared.mode == "RGB"
        for size in (224, 300):
            assert np.array_equal(load_image(shared, size), load_image(source, size))
    middle = tmp_path / "middle.jpg"  # 224 asks for 1/2 scale, 300 for none: each decodes its own
    photo.resize((640, 480)).save(middle)
    assert decode_once(middle, (224, 300)) == middle
    assert decode_once(photo, (224, 300)) is photo  # already decoded
    with pytest.raises(ImageLoadError, match="missing.jpg"):
        decode_once(tmp_path / "missing.jpg", (224, 300))
    (tmp_path / "not.jpg").write_bytes(b"no image here")
    with pytest.raises(ImageLoadError, match="not.jpg: not an image"):  # left to load_image, which names it
        load_image(decode_once(tmp_path / "not.jpg", (224, 300)), 224)
