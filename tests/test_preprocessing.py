"""load_image accepts any real photo and refuses bad input with the file named."""

import io

import numpy as np
import pytest
from PIL import Image

from edgecap.runtime.preprocessing import ImageLoadError, load_image


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
    img = photo.convert(mode) if mode not in ("I;16", "I", "F") else Image.fromarray((np.asarray(photo.convert("L"), np.float32) * (257.0 if mode != "F" else 1.0)).astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]))
    out = load_image(img)
    assert out.shape == (224, 224, 3)
    grey = mode in ("L", "LA", "I;16", "I", "F")
    target = ref.mean(axis=2) if grey else ref
    got = out.astype(int).mean(axis=2) if grey else out.astype(int)
    assert np.abs(got - target).mean() < 12


def test_png_16bit_from_disk(photo, tmp_path):
    arr = (np.asarray(photo.convert("L"), np.uint16) * 257)
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
    for path, why in [(text, "not an image"), (empty, "empty"), (truncated, "truncated"), (tmp_path / "none.jpg", "no such file")]:
        with pytest.raises(ImageLoadError, match=f"{path.name}.*{why}"):
            load_image(path)


def test_decompression_bomb_is_refused(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)  # 400 Mpixel, a few KB on disk
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ImageLoadError, match="bomb.png.*decompression bomb"):
        load_image(bomb)
