"""Readers (real shared files where present), tokenisation and the vocabulary."""

import json
import shutil

import pytest

from edgecap.data import DatasetError, Vocabulary, read_coco_captions, read_flickr8k, read_karpathy_json, tokenize
from edgecap.data.readers import read_caption_folder

from conftest import needs_shared


def test_tokenize_lowercases_and_strips_punctuation():
    assert tokenize("A dog's ball, in the PARK .") == ["a", "dogs", "ball", "in", "the", "park"]
    assert tokenize("  ") == []


def test_vocabulary_round_trip(tmp_path):
    vocab = Vocabulary.build(["a dog runs", "a dog sits", "a cat"], min_count=2)
    assert vocab.words[:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert set(vocab.words[4:]) == {"a", "dog"}
    ids = vocab.encode("A dog flies")
    assert ids[0] == vocab.start_id and ids[-1] == vocab.end_id and vocab.unk_id in ids
    assert vocab.decode(ids) == ["a", "dog", "<unk>"]
    assert vocab.decode([vocab.start_id, 4, vocab.end_id, 5]) == [vocab.words[4]]
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").words == vocab.words
    assert len(vocab.encode("a a a a a a", max_length=3)) == 5


def test_vocabulary_errors(tmp_path):
    with pytest.raises(ValueError):
        Vocabulary(["a", "b", "c", "d"])
    with pytest.raises(ValueError):
        Vocabulary.build([], 1)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        Vocabulary.load(bad)


@needs_shared
def test_flickr8k_reader_on_the_real_files(flickr_root):
    with pytest.warns(UserWarning, match="2258277193_586949ec62.jpg.1"):
        data = read_flickr8k(flickr_root)
    assert [len(data[s]) for s in ("train", "dev", "test")] == [6000, 1000, 1000]
    assert all(len(it.captions) == 5 and it.path.is_file() for it in data["test"])
    train_names = {it.image_id for it in data["train"]}
    assert train_names.isdisjoint(it.image_id for it in data["test"])
    vocab = Vocabulary.build((c for it in data["train"] for c in it.captions), min_count=5)
    assert 2000 < len(vocab) < 3500


@needs_shared
def test_flickr8k_missing_images_are_skipped_with_a_count(flickr_root, tmp_path):
    root = tmp_path / "f8k"
    (root / "Images").mkdir(parents=True)
    names = (flickr_root / "Flickr_8k.devImages.txt").read_text().split()[:4]
    for n in names[:3]:
        shutil.copy(flickr_root / "Images" / n, root / "Images" / n)
    tokens = [ln for ln in (flickr_root / "Flickr8k.token.txt").read_text().splitlines() if ln.split("#")[0] in names]
    (root / "Flickr8k.token.txt").write_text("\n".join(tokens))
    for split in ("train", "dev", "test"):
        (root / f"Flickr_8k.{split}Images.txt").write_text("\n".join(names))
    with pytest.warns(UserWarning, match="1 image"):
        data = read_flickr8k(root, ("dev",))
    assert len(data["dev"]) == 3


def test_empty_split_is_an_error(tmp_path, examples):
    root = tmp_path / "f8k"
    (root / "Images").mkdir(parents=True)
    (root / "Flickr8k.token.txt").write_text("x.jpg#0\ta cat\n")
    (root / "Flickr_8k.devImages.txt").write_text("\n")
    with pytest.raises(DatasetError, match="devImages.txt.*empty"):
        read_flickr8k(root, ("dev",))
    with pytest.raises(DatasetError, match="not found"):
        read_flickr8k(tmp_path / "nowhere", ("dev",))


def test_karpathy_and_coco_readers(tmp_path, examples):
    photos = sorted(p.name for p in examples.glob("*.jpg"))
    kj = {
        "images": [
            {"filename": n, "filepath": "", "split": s, "sentences": [{"raw": f"photo {n}"}]}
            for n, s in zip(photos, ["train", "val", "test"])
        ]
    }
    kj["images"].append({"filename": "missing.jpg", "split": "restval", "sentences": [{"raw": "gone"}]})
    (tmp_path / "dataset_x.json").write_text(json.dumps(kj))
    with pytest.warns(UserWarning, match="1 image"):
        data = read_karpathy_json(tmp_path / "dataset_x.json", examples)
    assert [it.image_id for it in data["dev"]] == [photos[1]]
    coco = {
        "images": [{"id": i, "file_name": n} for i, n in enumerate(photos)],
        "annotations": [{"image_id": i, "caption": "a thing"} for i in range(len(photos))],
    }
    (tmp_path / "captions.json").write_text(json.dumps(coco))
    assert len(read_coco_captions(tmp_path / "captions.json", examples)) == len(photos)
    (tmp_path / "broken.json").write_text('{"images": 3}')
    with pytest.raises(DatasetError, match="broken.json"):
        read_coco_captions(tmp_path / "broken.json", examples)


def test_caption_folder_reader(examples):
    data = read_caption_folder(examples)
    assert {it.image_id for it in data["train"]} == {"astronaut.jpg", "chelsea.jpg", "coffee.jpg"}
    assert all(len(it.captions) == 3 for it in data["train"])


def test_caption_folder_reads_flickr8k_token_lines_and_an_images_folder(examples, tmp_path):
    """``captions.token.txt`` with ``IMAGE#N`` ids and the photos in ``Images/`` (coco_dev's
    layout): one item per photo with all its captions; a malformed line is named."""
    import shutil

    (tmp_path / "Images").mkdir()
    for photo in examples.glob("*.jpg"):
        shutil.copy(photo, tmp_path / "Images" / photo.name)
    lines = [
        f"{name}#{n}\t{text} {n}"
        for name in ("chelsea.jpg", "coffee.jpg")
        for n, text in enumerate(["a cat", "a photo"])
    ]
    (tmp_path / "captions.token.txt").write_text("\n".join(lines) + "\n")
    items = read_caption_folder(tmp_path)["test"]
    assert [(it.image_id, it.captions) for it in items] == [
        ("chelsea.jpg", ["a cat 0", "a photo 1"]),
        ("coffee.jpg", ["a cat 0", "a photo 1"]),
    ]
    assert all(it.path.parent.name == "Images" for it in items)
    (tmp_path / "captions.token.txt").write_text("chelsea.jpg#0 no tab here\n")
    with pytest.raises(DatasetError, match="captions.token.txt:1"):
        read_caption_folder(tmp_path)


@needs_shared
def test_coco_dev_reads_through_its_shipped_config():
    from edgecap.config import default_config
    from edgecap.runs import read_splits

    items = read_splits(default_config("coco_dev.toml"), ("test",))["test"]
    assert len(items) == 95 and all(len(it.captions) == 5 and it.path.is_file() for it in items)


def test_mirrored_features_are_the_flipped_photos(examples, tmp_path):
    import numpy as np

    from edgecap.data.features import cached_features

    items = read_caption_folder(examples)["train"]
    calls = []

    def make_encoder():  # "annotation vectors" = the 4×4-pooled pixels, so a flip is visible
        calls.append(1)
        return lambda pixels, training: (
            pixels.reshape(len(pixels), 4, 56, 4, 56, 3).mean((2, 4)).reshape(len(pixels), 16, 3)
        )

    plain = cached_features(make_encoder, "toy", "none", 224, items, tmp_path, "train")
    mirrored = cached_features(make_encoder, "toy", "none", 224, items, tmp_path, "train", mirrored=True)
    assert len(calls) == 2 and len(list((tmp_path / "features").glob("*.npy"))) == 2
    flipped = np.asarray(plain, np.float32).reshape(-1, 4, 4, 3)[:, :, ::-1].reshape(-1, 16, 3)
    np.testing.assert_allclose(np.asarray(mirrored, np.float32), flipped, atol=0.5)
    assert not np.allclose(plain, mirrored, atol=0.5)
    cached_features(make_encoder, "toy", "none", 224, items, tmp_path, "train", mirrored=True)
    assert len(calls) == 2  # read back from the cache


def test_horizontal_flip_pairs_mirrored_features_with_swapped_captions():
    import numpy as np

    from edgecap.data.pipeline import caption_dataset, encode_captions, mirror_token_map
    from edgecap.data.readers import CaptionedImage

    items = [CaptionedImage(str(i), f"{i}.jpg", ["a dog turns left", "a dog on the right"]) for i in range(32)]
    vocab = Vocabulary.build((c for it in items for c in it.captions), 1)
    swap = mirror_token_map(vocab)
    left, right = vocab.id_of("left"), vocab.id_of("right")
    assert swap[left] == right and swap[right] == left and swap[vocab.id_of("dog")] == vocab.id_of("dog")
    assert (mirror_token_map(vocab, [("left", "absent")]) == np.arange(len(vocab))).all()

    index, caps = encode_captions(items, vocab, 8)
    features = np.zeros((32, 2, 3), np.float16)
    features[:, 0, 0] = np.arange(32)  # row i says "image i"
    mirrored = features.copy()
    mirrored[:, 1, 0] = 1.0  # and whether it is the mirrored photo
    seen = set()
    for inputs, targets in caption_dataset(features, index, caps, 16, seed=3, mirrored=mirrored, mirror_ids=swap):
        a, c = inputs["annotations"].numpy(), inputs["captions"].numpy()
        for row, cap in zip(a, c):
            flipped = bool(row[1, 0])
            original = caps[np.flatnonzero(index == int(row[0, 0]))]
            expected = swap[original] if flipped else original
            assert any((cap == e).all() for e in expected)
            seen.add(flipped)
        np.testing.assert_array_equal(targets.numpy(), c[:, 1:])
    assert seen == {False, True}
    with pytest.raises(ValueError, match="mirrored features"):
        caption_dataset(features, index, caps, 16, mirrored=mirrored[:8])


def _photo_folder(tmp_path, examples, name, photos, prefix=""):
    import shutil

    folder = tmp_path / name
    folder.mkdir()
    lines = []
    for photo in photos:
        shutil.copy(examples / photo, folder / (prefix + photo))
        lines += [f"{prefix}{photo}\ta photo of {photo[:-4]}", f"{prefix}{photo}\tanother photo"]
    (folder / "captions.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_extra_training_folders_join_the_train_split_and_extra_dev_folders_are_splits_of_their_own(examples, tmp_path):
    """``data.extra_train`` (COCO photos beside Flickr8k): every photo of each folder trains
    after the dataset's own; ``data.extra_dev``: a ``dev:<folder>`` split each, only when asked."""
    from edgecap.config import Config
    from edgecap.runs import read_splits

    extra = _photo_folder(tmp_path, examples, "coco_like", ["chelsea.jpg", "coffee.jpg"], prefix="x_")
    dev = _photo_folder(tmp_path, examples, "dev_like", ["astronaut.jpg"])
    cfg = Config()
    cfg.update(
        {
            "data": {
                "dataset": "folder",
                "root": str(examples),
                "extra_train": f"{extra}, ",
                "extra_dev": str(dev),
                "train_limit": 1,
            }
        }
    )
    data = read_splits(cfg, ("train", "dev"))
    own = read_caption_folder(examples)["train"][:1]
    assert [it.image_id for it in data["train"]] == [own[0].image_id, "x_chelsea.jpg"]  # each cut to train_limit
    assert set(data) == {"train", "dev"}
    with_dev = read_splits(cfg, ("train", "dev"), extra_dev=True)
    assert [it.image_id for it in with_dev["dev:dev_like"]] == ["astronaut.jpg"]
    assert with_dev["dev:dev_like"][0].captions == ["a photo of astronaut", "another photo"]
    clash = _photo_folder(tmp_path, examples, "clash", ["chelsea.jpg"])  # the same name as a training photo
    cfg.data.extra_train, cfg.data.train_limit = str(clash), 0
    with pytest.raises(DatasetError, match=r"clash: photo chelsea.jpg has the name of a training photo"):
        read_splits(cfg, ("train",))


def test_caption_text_of_photos_that_train_is_dropped(tmp_path):
    """The COCO lines of ``caption_text`` whose photos train with their captions (coco_train)
    would count twice: ``skip_ids`` drops them by image id."""
    from edgecap.data.readers import read_caption_text

    (tmp_path / "a.tsv").write_text(
        "coco_val2017/000000000785\ta woman on skis\ncoco_val2017/000000000872\ta man\nflickr30k/785\ta dog\n"
    )
    assert read_caption_text(tmp_path, {"000000000785"}) == ["a man", "a dog"]
    assert len(read_caption_text(tmp_path)) == 3
