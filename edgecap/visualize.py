"""Attention figures as in Xu et al. 2015 (Fig. 2-3): the photo with each word's map over it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from edgecap.runtime.preprocessing import load_image
from edgecap.utils import atomic_path


def save_attention_figure(image, result, out_path: str | Path, display_width: int = 320) -> Path:
    """Write a PNG grid: the photo, then one panel per generated word with α upsampled over it.

    The photo is shown with its own aspect ratio; the 7×7 map, computed on the squashed
    square input, is stretched back over it.

    Args:
        image: the captioned photo (anything :func:`load_image` reads).
        result: a :class:`edgecap.runtime.CaptionResult` whose ``attention`` is ``(T, gh, gw)``:
            a map over image locations, as the model's step contract declares it.
        out_path: PNG file to write (atomically).

    Raises:
        ImportError: matplotlib is not installed (``pip install 'edgecap[plot]'``).
        ValueError: the model returns no attention over an image grid.
    """
    if result.attention.ndim != 3 or not result.attention.shape[1]:
        raise ValueError(f"this model returns no attention map over image locations (attention shape per word: {result.attention.shape[1:]})")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("attention figures need matplotlib: pip install 'edgecap[plot]'") from e
    photo = Image.fromarray(load_image(image, None))
    height = max(1, round(photo.height * display_width / photo.width))
    pixels = np.asarray(photo.resize((display_width, height), Image.Resampling.BILINEAR))
    words, maps = result.tokens, result.attention
    panels = len(words) + 1
    cols = min(6, panels)
    rows = math.ceil(panels / cols)
    aspect = height / display_width
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, (2.2 * aspect + 0.3) * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(pixels)
    axes[0, 0].set_title("input", fontsize=9)
    for k, (word, alpha) in enumerate(zip(words, maps), start=1):
        ax = axes[k // cols, k % cols]
        up = np.asarray(Image.fromarray((alpha / max(alpha.max(), 1e-8) * 255).astype(np.uint8)).resize((display_width, height), Image.Resampling.BICUBIC))
        ax.imshow(pixels)
        ax.imshow(up, cmap="gray", alpha=0.6)
        ax.set_title(word, fontsize=10)
    fig.suptitle(result.text, fontsize=10)
    fig.tight_layout()
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return out_path
