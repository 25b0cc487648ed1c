"""Readers for the captioning corpora: Flickr8k layout, Karpathy-split JSON, COCO captions.

Every reader returns ``{split: [CaptionedImage, ...]}`` and skips (with one warning that
gives the count) caption entries whose image file is missing. No TensorFlow.
"""

from __future__ import annotations

import collections
import json
import logging
import random
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset file is missing, malformed or yields an empty split; the message names it."""


@dataclass
class CaptionedImage:
    """One image and its human reference captions.

    Attributes:
        image_id: file name (Flickr) or numeric id as string (COCO).
        path: absolute path to the image file.
        captions: raw reference sentences (usually 5).
    """

    image_id: str
    path: Path
    captions: list[str] = field(default_factory=list)


def _read_lines(path: Path) -> list[str]:
    """The file's non-blank lines, stripped. Raises DatasetError: missing, or a line that is
    not UTF-8 (named by its number: undecodable bytes never become U+FFFD in a caption)."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    lines = []
    for n, raw in enumerate(path.read_bytes().splitlines(), 1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise DatasetError(f"{path}:{n}: not UTF-8 ({e.reason} at byte {e.start}: {raw[:60]!r})") from None
        if line:
            lines.append(line)
    return lines


def _load_json(path: Path):
    """A JSON file; DatasetError for bytes that are not UTF-8, JSON that is not, or is nested too deeply."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise DatasetError(f"{path}: not a captions file (JSON nested too deeply)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from None


def _coco_items(data, path: Path, photos: Path, id_as_name: bool) -> list[CaptionedImage]:
    """The captioned photos of a COCO captions file's ``images`` and ``annotations``, checked:
    each image an id and a file name, no file named twice, each annotation an image of the file
    and a caption string.

    Raises:
        DatasetError: naming ``path`` and the entry (``images[i]``, ``annotations[j]``).
    """
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(f"{path}: not a COCO captions file (a JSON object with 'images' and 'annotations')")
    if not isinstance(data.get("annotations"), list):
        raise DatasetError(f"{path}: not a COCO captions file ('annotations' must be a list)")
    names: dict = {}
    first_of: dict[str, int] = {}
    for i, img in enumerate(data["images"]):
        image_id = img.get("id") if isinstance(img, dict) else None
        name = img.get("file_name") if isinstance(img, dict) else None
        if isinstance(image_id, bool) or not isinstance(image_id, (int, str)) or not isinstance(name, str) or not name:
            raise DatasetError(f"{path}: images[{i}] needs an 'id' (a number or string) and a 'file_name'")
        if name in first_of:
            raise DatasetError(
                f"{path}: images[{i}] names {name} again (images[{first_of[name]}]): one photo counted twice"
            )
        if image_id in names:
            raise DatasetError(f"{path}: images[{i}] has the id {image_id!r} of another image")
        first_of[name], names[image_id] = i, name
    caps: dict = collections.defaultdict(list)
    for j, ann in enumerate(data["annotations"]):
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        caption = ann.get("caption") if isinstance(ann, dict) else None
        if image_id not in names:
            raise DatasetError(f"{path}: annotations[{j}] is for image {image_id!r}, which 'images' does not list")
        if not isinstance(caption, str) or not caption.strip():
            raise DatasetError(f"{path}: annotations[{j}].caption must be a non-empty string, got {caption!r:.40}")
        caps[image_id].append(caption)
    return [
        CaptionedImage(str(i) if id_as_name else names[i], photos / names[i], caps[i]) for i in names if caps.get(i)
    ]


def _drop_missing(items: list[CaptionedImage], source: Path) -> list[CaptionedImage]:
    kept = [it for it in items if it.path.is_file()]
    missing = len(items) - len(kept)
    if missing:
        example = next(it.image_id for it in items if not it.path.is_file())
        warnings.warn(
            f"{source}: {missing} image(s) named there are missing and skipped (e.g. {example})", stacklevel=3
        )
    return kept


def _check_split(items: list[CaptionedImage], split: str, source: Path) -> list[CaptionedImage]:
    if not items:
        raise DatasetError(f"{source}: split {split!r} is empty")
    return items


def read_flickr8k(
    root: str | Path, splits: tuple[str, ...] = ("train", "dev", "test")
) -> dict[str, list[CaptionedImage]]:
    """Read the Flickr8k layout (Hodosh et al. 2013): ``Flickr8k.token.txt`` + split lists.

    Args:
        root: folder with ``Images/``, ``Flickr8k.token.txt`` and ``Flickr_8k.{train,dev,test}Images.txt``.
        splits: which splits to return.

    Returns:
        ``{split: [CaptionedImage]}`` in the order of the split files.

    Raises:
        DatasetError: a file is missing or malformed, or a split is empty.
    """
    root = Path(root)
    token_file = root / "Flickr8k.token.txt"
    captions: dict[str, list[str]] = collections.defaultdict(list)
    for n, line in enumerate(_read_lines(token_file), 1):
        key, sep, caption = line.partition("\t")
        name, hash_, _ = key.rpartition("#")
        if not sep or not hash_:
            raise DatasetError(f"{token_file}:{n}: expected 'IMAGE.jpg#N<TAB>caption', got {line[:80]!r}")
        captions[name].append(caption)
    unknown = [name for name in captions if not name.endswith(".jpg")]
    if unknown:  # e.g. '2258277193_586949ec62.jpg.1' in the official file
        warnings.warn(
            f"{token_file}: {len(unknown)} caption id(s) name no image file and are skipped (e.g. {unknown[0]})",
            stacklevel=2,
        )
    out = {}
    for split in splits:
        list_file = root / f"Flickr_8k.{split}Images.txt"
        items = [
            CaptionedImage(name, root / "Images" / name, captions.get(name, [])) for name in _read_lines(list_file)
        ]
        no_caps = [it for it in items if not it.captions]
        if no_caps:
            warnings.warn(
                f"{list_file}: {len(no_caps)} image(s) have no caption in {token_file.name} and are skipped",
                stacklevel=2,
            )
        items = [it for it in items if it.captions]
        out[split] = _check_split(_drop_missing(items, list_file), split, list_file)
    return out


_KARPATHY_SPLITS = {"train": ("train", "restval"), "dev": ("val",), "val": ("val",), "test": ("test",)}


def read_karpathy_json(
    json_path: str | Path, image_root: str | Path, splits: tuple[str, ...] = ("train", "dev", "test")
) -> dict[str, list[CaptionedImage]]:
    """Read a Karpathy-split file (``dataset_flickr8k.json``, ``dataset_flickr30k.json``, ``dataset_coco.json``).

    ``train`` includes COCO's ``restval``; ``dev`` is Karpathy's ``val``. Images are found at
    ``image_root/filepath/filename`` (COCO) or ``image_root/filename`` (Flickr).

    Raises:
        DatasetError: the file is missing or not in the Karpathy format, or a split is empty.
    """
    json_path, image_root = Path(json_path), Path(image_root)
    if not json_path.is_file():
        raise DatasetError(f"{json_path}: file not found")
    try:
        images = json.loads(json_path.read_text(encoding="utf-8"))["images"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DatasetError(f"{json_path}: not a Karpathy-split JSON file ({e})") from e
    out = {}
    for split in splits:
        wanted = _KARPATHY_SPLITS.get(split, (split,))
        items = []
        for img in images:
            if img.get("split") not in wanted:
                continue
            try:
                rel = Path(img.get("filepath", "")) / img["filename"]
                caps = [s["raw"] for s in img["sentences"]]
            except (KeyError, TypeError) as e:
                raise DatasetError(f"{json_path}: image entry without {e}") from e
            items.append(CaptionedImage(img["filename"], image_root / rel, caps))
        out[split] = _check_split(_drop_missing(items, json_path), split, json_path)
    return out


def read_coco_captions(json_path: str | Path, image_dir: str | Path) -> list[CaptionedImage]:
    """Read a COCO captions file (``captions_train2014.json`` style: ``images`` + ``annotations``).

    Raises:
        DatasetError: the file is missing or malformed, or holds no captioned image.
    """
    json_path, image_dir = Path(json_path), Path(image_dir)
    if not json_path.is_file():
        raise DatasetError(f"{json_path}: file not found")
    items = _coco_items(_load_json(json_path), json_path, image_dir, id_as_name=True)
    return _check_split(_drop_missing(items, json_path), "all", json_path)


SPLITS_FILE = "splits.txt"  #: a folder's own split: ``IMAGE<TAB>train|dev|test`` lines
FOLDER_CAPTION_FILES = ("captions.txt", "captions.token.txt", "captions.json")


@dataclass(frozen=True)
class FolderSplit:
    """How a folder of captioned photos is split when it has no ``splits.txt`` of its own.

    Photos are shuffled by ``seed`` (sorted by name first, so the split depends on the names
    only); the first ``test_fraction`` of them are the test split, the next ``dev_fraction``
    the dev split, the rest train. Both zero: every split is the whole folder (a dev or test
    set of its own, as ``../shared/data/coco_dev``).

    Attributes:
        dev_fraction: share of photos held out for model selection, in [0, 1).
        test_fraction: share of photos held out for scoring, in [0, 1).
        seed: the shuffle's seed.
    """

    dev_fraction: float = 0.0
    test_fraction: float = 0.0
    seed: int = 0

    def assign(self, names: list[str]) -> dict[str, str]:
        """``{image name: split}`` for ``names``; empty when both fractions are zero."""
        if not (self.dev_fraction or self.test_fraction):
            return {}
        order = sorted(names)
        random.Random(self.seed).shuffle(order)
        n_test = round(self.test_fraction * len(order))
        n_dev = round(self.dev_fraction * len(order))
        return {
            name: "test" if i < n_test else "dev" if i < n_test + n_dev else "train" for i, name in enumerate(order)
        }


def _folder_captions_tsv(token_file: Path, photos: Path) -> list[CaptionedImage]:
    captions: dict[str, list[str]] = collections.defaultdict(list)
    for n, line in enumerate(_read_lines(token_file), 1):
        name, sep, caption = line.partition("\t")
        if not sep or not caption.strip():
            raise DatasetError(f"{token_file}:{n}: expected 'IMAGE<TAB>caption', got {line[:80]!r}")
        base, hash_, number = name.rpartition("#")
        captions[base if hash_ and number.isdigit() else name].append(caption.strip())
    return [CaptionedImage(name, photos / name, caps) for name, caps in captions.items()]


def _folder_captions_json(json_path: Path, photos: Path) -> tuple[list[CaptionedImage], dict[str, str]]:
    """A COCO captions file (``images`` + ``annotations``) or a Karpathy-split file (``images``
    with ``sentences`` and ``split``): ``(items, {image name: split})``, the second empty for COCO."""
    data = _load_json(json_path)
    if isinstance(data, dict) and "annotations" in data:  # COCO
        return _coco_items(data, json_path, photos, id_as_name=False), {}
    try:
        images = data["images"]
        items, split_of = [], {}
        first_of: dict[str, int] = {}
        for i, img in enumerate(images):  # Karpathy
            name = str(Path(img.get("filepath", "")) / img["filename"])
            captions = [s["raw"] for s in img["sentences"]]
            if not all(isinstance(c, str) and c.strip() for c in captions):
                raise DatasetError(f"{json_path}: images[{i}].sentences: every 'raw' must be a non-empty string")
            if name in first_of:
                raise DatasetError(f"{json_path}: images[{i}] names {name} again (images[{first_of[name]}])")
            first_of[name] = i
            items.append(CaptionedImage(name, photos / name, captions))
            for ours, theirs in _KARPATHY_SPLITS.items():
                if ours != "val" and img.get("split") in theirs:
                    split_of[name] = ours
    except (KeyError, TypeError, AttributeError) as e:
        raise DatasetError(
            f"{json_path}: neither a COCO captions file (images + annotations) nor a Karpathy-split file (images with sentences): missing {e}"
        ) from e
    return items, split_of


def _read_splits_file(path: Path, names: set[str]) -> dict[str, str]:
    split_of = {}
    for n, line in enumerate(_read_lines(path), 1):
        name, sep, split = line.partition("\t")
        name, split = name.strip(), split.strip()
        if not sep or split not in ("train", "dev", "test"):
            raise DatasetError(f"{path}:{n}: expected 'IMAGE<TAB>train|dev|test', got {line[:80]!r}")
        if name not in names:
            raise DatasetError(f"{path}:{n}: {name!r} is not a captioned photo of the folder")
        split_of[name] = split
    return split_of


def _drop_unreadable(items: list[CaptionedImage], source: Path) -> list[CaptionedImage]:
    """The items whose photo decodes (a JPEG at 1/8 scale: cheap); the others skipped, counted."""
    from edgecap.runtime.preprocessing import ImageLoadError, load_image

    kept, bad = [], []
    for it in items:
        try:
            load_image(it.path, 32)
            kept.append(it)
        except ImageLoadError as e:
            bad.append(str(e))
    if bad:
        warnings.warn(f"{source}: {len(bad)} photo(s) cannot be read and are skipped (e.g. {bad[0]})", stacklevel=3)
    return kept


def read_caption_folder(
    root: str | Path,
    splits: tuple[str, ...] = ("train", "dev", "test"),
    caption_file: str | None = None,
    split: FolderSplit = FolderSplit(),
) -> dict[str, list[CaptionedImage]]:
    """A folder of photos with a captions file, for your own photos, small sets and tests.

    The captions file is ``caption_file``, else the first of :data:`FOLDER_CAPTION_FILES`:
    ``IMAGE<TAB>caption`` lines (or Flickr8k's ``IMAGE#N<TAB>caption``, the ``#N`` dropped),
    or a JSON file, COCO captions (``images`` + ``annotations``) or Karpathy-split
    (``images`` with ``sentences``). The photos are beside it, or in an ``Images/`` folder
    beside it (Flickr8k's layout, and ``../shared/data/coco_dev``'s). Photos that are missing
    or cannot be decoded are skipped, with one warning giving their count.

    The splits, first that applies: the folder's ``splits.txt`` (``IMAGE<TAB>train|dev|test``
    lines; photos it does not list train); a Karpathy file's own splits; ``split``'s
    fractions (:class:`FolderSplit`); else every split is the whole folder.

    Returns:
        ``{split: [CaptionedImage]}``, each split in the captions file's order.

    Raises:
        DatasetError: no captions file, one that is malformed (file and line named), a bad
            ``splits.txt`` line, or a requested split with no photo.
    """
    root = Path(root)
    names = [caption_file] if caption_file else list(FOLDER_CAPTION_FILES)
    token_file = next((root / n for n in names if (root / n).is_file()), None)
    if token_file is None:
        raise DatasetError(f"{root}: no captions file (one of {', '.join(names)})")
    photos = root / "Images" if (root / "Images").is_dir() else root
    split_of: dict[str, str] = {}
    if token_file.suffix == ".json":
        items, split_of = _folder_captions_json(token_file, photos)
    else:
        items = _folder_captions_tsv(token_file, photos)
    items = _drop_unreadable(_drop_missing(items, token_file), token_file)
    source = token_file
    if (root / SPLITS_FILE).is_file():
        source = root / SPLITS_FILE
        split_of = _read_splits_file(source, {it.image_id for it in items})
        split_of = {it.image_id: split_of.get(it.image_id, "train") for it in items}
    elif not split_of:
        split_of = split.assign([it.image_id for it in items])
    if not split_of:
        return {s: _check_split(list(items), s, token_file) for s in splits}
    return {s: _check_split([it for it in items if split_of.get(it.image_id) == s], s, source) for s in splits}


def read_dataset(
    name: str,
    root: str | Path,
    splits: tuple[str, ...] = ("train", "dev", "test"),
    karpathy_json: str | Path | None = None,
    folder_split: FolderSplit = FolderSplit(),
) -> dict[str, list[CaptionedImage]]:
    """Dispatch on a dataset name from a config: ``flickr8k`` (native layout), ``karpathy`` or
    ``folder`` (:func:`read_caption_folder`, split by ``folder_split`` unless it has its own).

    Raises:
        DatasetError: unknown name, or whatever the reader raises.
    """
    if name == "flickr8k":
        return read_flickr8k(root, splits)
    if name == "karpathy":
        if karpathy_json is None:
            raise DatasetError("dataset 'karpathy' needs data.karpathy_json")
        return read_karpathy_json(karpathy_json, root, splits)
    if name == "folder":
        return read_caption_folder(root, splits, split=folder_split)
    raise DatasetError(f"unknown dataset {name!r}; expected 'flickr8k', 'karpathy' or 'folder'")


MAX_CAPTION_TEXT_LINES = 10_000_000  #: more lines than any caption corpus: a bigger folder is refused


def read_caption_text(folder: str | Path, skip_ids: Collection[str] = ()) -> list[str]:
    """Unpaired captions (no photos): every ``*.tsv`` file of ``folder``, one
    ``SOURCE/IMAGE_ID<TAB>caption`` a line (``../shared/data/caption_text``).

    Args:
        folder: the folder of ``.tsv`` files.
        skip_ids: image ids whose lines are dropped (``IMAGE_ID``, the part after the last
            ``/``): the photos that train with their captions (``data.extra_train``), whose
            captions would otherwise count twice.

    Returns:
        the captions, files in name order.

    Raises:
        DatasetError: no such folder, no ``.tsv`` file, a line without a tab, or no caption.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.tsv")) if folder.is_dir() else []
    if not files:
        raise DatasetError(f"{folder}: no caption text (*.tsv files of 'SOURCE/ID<TAB>caption' lines)")
    skip = set(skip_ids)
    out: list[str] = []
    for path in files:
        for n, line in enumerate(_read_lines(path), 1):
            key, sep, caption = line.partition("\t")
            if not sep:
                raise DatasetError(f"{path}:{n}: expected 'SOURCE/ID<TAB>caption', got {line[:80]!r}")
            if skip and key.rpartition("/")[2] in skip:
                continue
            out.append(caption)
            if len(out) > MAX_CAPTION_TEXT_LINES:
                raise DatasetError(f"{folder}: more than {MAX_CAPTION_TEXT_LINES} captions")
    if not out:
        raise DatasetError(f"{folder}: the caption text files hold no caption")
    return out
