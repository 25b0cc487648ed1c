"""Image loading and resizing shared by training and the on-device runtime (Pillow + numpy).

Training and inference go through :func:`load_image`, so a photo is resized on the device
exactly as the training images were. Normalisation (pixels → [-1, 1] for MobileNetV2) is
*not* done here: it lives inside the model graph, whose input is ``uint8``.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageInput = Union[str, Path, bytes, "Image.Image", np.ndarray]

#: Images above this many pixels are refused as decompression bombs (Pillow's own limit).
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


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


def _open(source: ImageInput) -> tuple[Image.Image, str]:
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
        name, fp = "<bytes>", io.BytesIO(source)
    else:
        name = str(source)
        path = Path(source)
        if not path.is_file():
            raise ImageLoadError(f"{name}: no such file")
        if path.stat().st_size == 0:
            raise ImageLoadError(f"{name}: empty file (0 bytes)")
        fp = path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ImageLoadError(f"{name}: {img.width}x{img.height} pixels is over the {MAX_IMAGE_PIXELS} limit (decompression bomb?)")
            img.load()
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageLoadError(f"{name}: image too large, refused as a decompression bomb ({e})") from e
    except UnidentifiedImageError as e:
        raise ImageLoadError(f"{name}: not an image file Pillow can read") from e
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data
        raise ImageLoadError(f"{name}: corrupt or truncated image ({e})") from e
    return img, name


def load_image(source: ImageInput, size: int | None = 224) -> np.ndarray:
    """Read any photo and resize it for the encoder.

    EXIF orientation is applied; greyscale, RGBA, palette, CMYK and 16-bit images become RGB.
    The whole image is resized to ``size``×``size`` *without* keeping the aspect ratio
    (bilinear, antialiased), which is how the Flickr8k training images were made.

    Args:
        source: a path, encoded bytes, a PIL image or a ``uint8`` array (H, W[, 3|4]).
        size: output side in pixels; None keeps the photo's own size (for display).

    Returns:
        ``uint8`` array of shape ``(size, size, 3)`` (or ``(H, W, 3)``), RGB, values 0..255.

    Raises:
        ImageLoadError: missing, empty, truncated, corrupt or oversized input (names the file).
    """
    img, name = _open(source)
    try:
        img = ImageOps.exif_transpose(img) or img
        img = _to_rgb(img)
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, ValueError) as e:
        raise ImageLoadError(f"{name}: cannot convert image ({e})") from e
    return np.asarray(img, dtype=np.uint8)
