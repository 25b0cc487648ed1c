"""Image loading and resizing shared by training and the on-device runtime (Pillow + numpy).

Training and inference go through :func:`load_image`, so a photo is resized on the device
exactly as the training images were. Normalisation (pixels → [-1, 1] for MobileNetV2) is
*not* done here: it lives inside the model graph, whose input is ``uint8``.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageInput = Union[str, Path, bytes, "Image.Image", np.ndarray]

#: Default limit on the pixels of a photo once decoded (JPEGs after reduced-size decoding):
#: 40 MP is about 120 MB of RGB.
DEFAULT_MAX_PIXELS = 40_000_000
_FILE_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class ImageLoadError(ValueError):
    """An input is not a readable image (missing, empty, truncated, corrupt, too large)."""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode → 8-bit RGB; transparency is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB") if img.mode != "RGB" else img


def _open(source: ImageInput) -> tuple["Image.Image | BinaryIO", str]:
    if isinstance(source, Image.Image):
        return source, "<PIL image>"
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8:
            raise ImageLoadError(f"<array>: expected a uint8 array, got {arr.dtype}")
        if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4)):
            return Image.fromarray(arr), "<array>"
        raise ImageLoadError(f"<array>: expected shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if isinstance(source, bytes):
        return io.BytesIO(source), "<bytes>"
    return _read_file(Path(source)), str(source)


def _read_file(path: Path) -> BinaryIO:
    """A regular file opened for reading; every OS error is an ImageLoadError with its own cause."""
    try:
        info = os.stat(path)
        kind = stat.S_IFMT(info.st_mode)
        if kind != stat.S_IFREG:  # refused without opening: a FIFO would block, /dev/zero never ends
            raise ImageLoadError(f"{path}: not a regular file ({_FILE_KINDS.get(kind, 'a special file')})")
        if info.st_size == 0:
            raise ImageLoadError(f"{path}: empty file (0 bytes)")
        return open(path, "rb")
    except OSError as e:
        raise ImageLoadError(f"{path}: {e.strerror or e}") from None


def _decode(fp, name: str, size: int | None, max_pixels: int) -> Image.Image:
    """Open and decode; a JPEG far larger than ``size`` is decoded at 1/2, 1/4 or 1/8 scale."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # max_pixels is checked below, after draft
            img = Image.open(fp)  # raises DecompressionBombError beyond twice Pillow's limit, before decoding
            if size is not None and img.format == "JPEG":
                img.draft("RGB", (size, size))  # DCT scaling: never below the requested size
            if img.width * img.height > max_pixels:
                raise ImageLoadError(
                    f"{name}: {img.width}x{img.height} pixels is over the limit of {max_pixels} (--max-pixels)"
                )
            img.load()
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageLoadError(f"{name}: image too large, refused as a decompression bomb ({e})") from e
    except UnidentifiedImageError as e:
        raise ImageLoadError(f"{name}: not an image file Pillow can read") from e
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as e:  # truncated or corrupt data
        raise ImageLoadError(f"{name}: corrupt or truncated image ({e})") from e
    return img


def _drafted_size(data: bytes, size: int | None) -> tuple[int, int] | None:
    """The size Pillow decodes an encoded photo at for ``load_image(..., size)`` (a JPEG's DCT
    scaling; None: no scaling, the photo's own size), read from the header alone; None if
    Pillow cannot read the header."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if size is not None and img.format == "JPEG":
                    img.draft("RGB", (size, size))
                return img.size
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.DecompressionBombError):
        return None


def _one_scale(data: bytes, sizes: tuple[int, ...]) -> bool:
    """Whether every size in ``sizes`` decodes the photo at the same DCT scale (and Pillow reads
    its header). A draft never decodes below the requested size, so a photo under twice the
    smallest size on a side is decoded whole for every size: one header read decides."""
    whole = _drafted_size(data, None)
    if whole is None:
        return False
    if min(whole) < 2 * min(sizes):
        return True
    drafted = {_drafted_size(data, s) for s in set(sizes)}
    return len(drafted) == 1


def decode_once(source: ImageInput, sizes: tuple[int, ...], max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInput:
    """One decode of a photo for several models' sizes (the captioner's and its taggers').

    Each ``load_image(result, s)`` then gives the same pixels as ``load_image(source, s)`` for
    every ``s`` in ``sizes``: the photo is decoded, turned upright (EXIF) and made RGB once, and
    each model resizes it its own way. A JPEG is decoded once only when every size asks for the
    same DCT scale (:func:`load_image`'s ``Image.draft``); otherwise, and for a photo already
    decoded (a PIL image or an array), ``source`` is returned as it is and each model decodes
    its own. Thread-safe to share: the returned image is only read (resized) afterwards.

    Args:
        source: a path, encoded bytes, a PIL image or a ``uint8`` array.
        sizes: the square sides (pixels) the photo will be resized to.
        max_pixels: as in :func:`load_image`.

    Returns:
        an RGB ``PIL.Image.Image`` decoded once, or ``source`` itself.

    Raises:
        ImageLoadError: as :func:`load_image` (names the file).
    """
    if isinstance(source, (Image.Image, np.ndarray)) or not sizes:
        return source
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes):
        data = source
    else:
        with _read_file(Path(source)) as f:
            try:
                data = f.read()
            except OSError as e:
                raise ImageLoadError(f"{name}: {e.strerror or e}") from None
    if not _one_scale(data, sizes):
        return source  # different DCT scales (or a header Pillow cannot read): each decodes its own
    img = _decode(io.BytesIO(data), name, max(sizes), max_pixels)
    try:
        img = ImageOps.exif_transpose(img) or img
        return _to_rgb(img)
    except (OSError, ValueError) as e:
        raise ImageLoadError(f"{name}: cannot convert image ({e})") from e


def load_image(source: ImageInput, size: int | None = 224, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read any photo and resize it for the encoder.

    EXIF orientation is applied; greyscale, RGBA, palette, CMYK and 16-bit images become RGB.
    The whole image is resized to ``size``×``size`` *without* keeping the aspect ratio
    (bilinear, antialiased), which is how the Flickr8k training images were made.

    Args:
        source: a path, encoded bytes, a PIL image or a ``uint8`` array (H, W[, 3|4]).
        size: output side in pixels; None keeps the photo's own size (for display).
        max_pixels: refuse a photo with more pixels than this once decoded; a JPEG far
            larger than ``size`` is decoded at 1/2, 1/4 or 1/8 scale first (``Image.draft``).

    Returns:
        ``uint8`` array of shape ``(size, size, 3)`` (or ``(H, W, 3)``), RGB, values 0..255.

    Raises:
        ImageLoadError: missing, unreadable, special (FIFO, device), empty, truncated,
            corrupt or oversized input (names the file and the cause).
    """
    if isinstance(source, np.ndarray) and source.dtype == np.uint8 and source.shape == (size, size, 3):
        return source.copy()  # already this size and RGB: what the round trip through Pillow gives
    img, name = _open(source)
    if not isinstance(img, Image.Image):  # an open file or bytes
        with img:
            img = _decode(img, name, size, max_pixels)
    elif img.width * img.height > max_pixels:
        raise ImageLoadError(f"{name}: {img.width}x{img.height} pixels is over the limit of {max_pixels}")
    try:
        img = ImageOps.exif_transpose(img) or img
        img = _to_rgb(img)
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, ValueError) as e:
        raise ImageLoadError(f"{name}: cannot convert image ({e})") from e
    return np.asarray(img, dtype=np.uint8)
