"""Figures: attention maps as in Xu et al. 2015 (Fig. 2-3), attention over attributes (You et al. 2016), word–region alignments as in Karpathy & Fei-Fei 2015 (Fig. 5)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from edgecap.runtime.preprocessing import load_image
from edgecap.utils import atomic_path


def _pyplot(what: str):
    """``matplotlib.pyplot`` on the Agg backend. Raises ImportError saying what needs it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(f"{what} need matplotlib: pip install 'edgecap[plot]'") from e
    return plt


def _save(plt, fig, out_path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    out_path = Path(out_path)
    try:
        fig.tight_layout()
        with atomic_path(out_path) as tmp:
            fig.savefig(tmp, format="png", dpi=80)
    finally:
        plt.close(fig)
    return out_path


def _display_photo(image, width: int) -> np.ndarray:
    """The photo at ``width`` pixels wide, its own aspect ratio kept: ``uint8 (H, width, 3)``."""
    photo = Image.fromarray(load_image(image, None))
    height = max(1, round(photo.height * width / photo.width))
    return np.asarray(photo.resize((width, height), Image.Resampling.BILINEAR))


def save_attention_figure(image, result, out_path: str | Path, display_width: int = 320) -> Path:
    """Write a PNG grid: the photo, then one panel per generated word with α upsampled over it.

    The photo is shown with its own aspect ratio; the 7×7 map, computed on the squashed
    square input, is stretched back over it.

    Args:
        image: the captioned photo (anything :func:`load_image` reads).
        result: a :class:`edgecap.runtime.CaptionResult` whose ``attention`` is ``(T, gh, gw)``:
            a map over image locations, as the model's step contract declares it.
        out_path: PNG file to write (atomically).

    A result whose attention is over items (``result.attention_over == "items"``: semantic
    attention's ``(T, 2, k)`` over its k attributes) is drawn by
    :func:`save_attribute_attention_figure` instead.

    Raises:
        ImportError: matplotlib is not installed (``pip install 'edgecap[plot]'``).
        ValueError: the model returns no attention over an image grid or attributes.
    """
    if result.attention_over == "items":
        return save_attribute_attention_figure(image, result, out_path, display_width)
    if result.attention_over != "grid" or result.attention.ndim != 3 or not result.attention.shape[1]:
        raise ValueError(
            f"this model returns no attention map over image locations (attention shape per word: {result.attention.shape[1:]})"
        )
    plt = _pyplot("attention figures")
    pixels = _display_photo(image, display_width)
    height = pixels.shape[0]
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
    draw_tag_boxes(axes[0, 0], result, display_width, height)
    for k, (word, alpha) in enumerate(zip(words, maps), start=1):
        ax = axes[k // cols, k % cols]
        up = np.asarray(
            Image.fromarray((alpha / max(alpha.max(), 1e-8) * 255).astype(np.uint8)).resize(
                (display_width, height), Image.Resampling.BICUBIC
            )
        )
        ax.imshow(pixels)
        ax.imshow(up, cmap="gray", alpha=0.6)
        ax.set_title(word, fontsize=10, color="tab:red" if word in result.constraints else "black")
    fig.suptitle(result.text, fontsize=10)
    return _save(plt, fig, out_path)


def draw_tag_boxes(ax, result, width: int, height: int) -> None:
    """Draw the detector tags' boxes (``Tag.box``: ymin, xmin, ymax, xmax in 0..1) on the photo
    panel, labelled with word and score; a constraint's box is drawn red."""
    from matplotlib.patches import Rectangle

    for tag in getattr(result, "tags", []):
        if tag.box is None:
            continue
        ymin, xmin, ymax, xmax = tag.box
        color = "tab:red" if tag.word in result.constraints else "yellow"
        ax.add_patch(
            Rectangle(
                (xmin * width, ymin * height),
                (xmax - xmin) * width,
                (ymax - ymin) * height,
                fill=False,
                color=color,
                lw=1.5,
            )
        )
        ax.text(xmin * width, ymin * height, f"{tag.word} {tag.score:.2f}", color=color, fontsize=7, va="bottom")


def save_attribute_attention_figure(image, result, out_path: str | Path, display_width: int = 320) -> Path:
    """Write a PNG of semantic attention (You et al., CVPR 2016): the photo and its
    detected attributes' probabilities, then one bar chart per generated word with the input
    attention α_t (eq. 4) and the output attention β_t (eq. 6) over those attributes.

    Args:
        image: the captioned photo (anything :func:`load_image` reads).
        result: a :class:`edgecap.runtime.CaptionResult` with ``attributes`` (k words) and
            ``attention`` ``(T, 2, k)``.
        out_path: PNG file to write (atomically).

    Raises:
        ImportError: matplotlib is not installed (``pip install 'edgecap[plot]'``).
        ValueError: the result has no attention over its attributes.
    """
    k = len(result.attributes)
    if not k or result.attention.shape[1:] != (2, k):
        raise ValueError(
            f"this result has no attention over attributes (attention shape per word: {result.attention.shape[1:]}, {k} attributes)"
        )
    plt = _pyplot("attention figures")
    names = [w for w, _ in result.attributes]
    y = np.arange(k)
    panels = len(result.tokens) + 2
    cols = min(5, panels)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(_display_photo(image, display_width))
    axes[0, 0].set_title("input", fontsize=9)
    ax = axes[0, 1]
    ax.axis("on")
    ax.barh(y, [p for _, p in result.attributes], color="gray")
    ax.set(yticks=y, xlim=(0, 1))
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_title("attributes P", fontsize=9)
    for t, (word, (alpha, beta)) in enumerate(zip(result.tokens, result.attention), start=2):
        ax = axes[t // cols, t % cols]
        ax.axis("on")
        ax.barh(y - 0.2, alpha, height=0.4, label="input α")
        ax.barh(y + 0.2, beta, height=0.4, label="output β")
        ax.set(yticks=y, xlim=(0, 1))
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(word, fontsize=10)
    handles, labels = axes[0, 2].get_legend_handles_labels() if len(result.tokens) else ([], [])
    if handles:
        fig.legend(handles, labels, fontsize=8, loc="upper right")
    fig.suptitle(result.text, fontsize=10)
    return _save(plt, fig, out_path)


def save_alignment_figure(image, alignment, out_path: str | Path, display_width: int = 480) -> Path:
    """Write a PNG of a word–region alignment as in Karpathy & Fei-Fei (CVPR 2015), Fig. 5: the
    photo with the grid cell each word aligns to outlined and labelled in the word's colour
    (words aligned to the whole image are listed under it).

    Args:
        image: the photo (anything :func:`load_image` reads).
        alignment: a :class:`edgecap.runtime.Alignment` (``Retriever.align``).
        out_path: PNG file to write (atomically).

    Raises:
        ImportError: matplotlib is not installed (``pip install 'edgecap[plot]'``).
    """
    plt = _pyplot("alignment figures")
    import matplotlib.patches as patches

    pixels = _display_photo(image, display_width)
    height = pixels.shape[0]
    g = alignment.grid
    cw, ch = display_width / g, height / g
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(display_width / 80, height / 80 + 0.9))
    ax.imshow(pixels)
    ax.axis("off")
    stacked: dict[tuple[int, int], int] = {}
    whole = []
    for t, word in enumerate(alignment.words):
        colour = colours(t % 10)
        cell = alignment.cell(t)
        if cell is None:
            whole.append((word, colour))
            continue
        r, c = cell
        ax.add_patch(patches.Rectangle((c * cw, r * ch), cw, ch, fill=False, edgecolor=colour, linewidth=2))
        n = stacked.get(cell, 0)
        stacked[cell] = n + 1
        ax.text(
            c * cw + 2,
            r * ch + 2 + n * 13,
            word,
            color="white",
            fontsize=9,
            va="top",
            bbox={"facecolor": colour, "alpha": 0.8, "pad": 1, "linewidth": 0},
        )
    caption = " ".join(alignment.words) + f"   (score {alignment.score:.1f})"
    if whole:
        caption += "\nwhole image: " + ", ".join(w for w, _ in whole)
    ax.set_title(caption, fontsize=9, loc="left")
    return _save(plt, fig, out_path)
