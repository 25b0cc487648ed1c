"""Your own photos: a folder's splits and caption formats, and `edgecap adapt` from a run to a
verified int8 file that knows the folder's words."""

import json
import shutil
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgecap.data.readers import DatasetError, FolderSplit, read_caption_folder

from conftest import HAVE_SHARED, SHARED, bare_data

COCO_DEV = SHARED / "data" / "coco_dev"


def _folder(tmp_path, n=10):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(folder / f"p{i}.jpg")
        lines += [f"p{i}.jpg\ta photo number {i}", f"p{i}.jpg\tanother caption of photo {i}"]
    (folder / "captions.txt").write_text("\n".join(lines) + "\n")
    return folder


def _names(splits):
    return {s: [it.image_id for it in items] for s, items in splits.items()}


def test_fractions_split_the_folder_disjointly_and_by_name_only(tmp_path):
    folder = _folder(tmp_path)
    split = FolderSplit(dev_fraction=0.2, test_fraction=0.3, seed=7)
    first = _names(read_caption_folder(folder, split=split))
    assert [len(first[s]) for s in ("train", "dev", "test")] == [5, 2, 3]
    assert sorted(sum(first.values(), [])) == sorted(f"p{i}.jpg" for i in range(10))
    lines = (folder / "captions.txt").read_text().splitlines()
    (folder / "captions.txt").write_text("\n".join(reversed(lines)) + "\n")  # another order, the same split
    again = _names(read_caption_folder(folder, split=split))
    assert {s: sorted(v) for s, v in again.items()} == {s: sorted(v) for s, v in first.items()}
    other = _names(read_caption_folder(folder, split=FolderSplit(0.2, 0.3, seed=8)))
    assert sorted(other["test"]) != sorted(first["test"])
    whole = _names(read_caption_folder(folder))  # no fractions: every split is the whole folder
    assert whole["train"] == whole["dev"] == whole["test"] and len(whole["test"]) == 10


def test_a_splits_file_decides_and_its_bad_lines_are_named(tmp_path):
    folder = _folder(tmp_path, 4)
    (folder / "splits.txt").write_text("p0.jpg\tdev\np1.jpg\ttest\n")
    got = _names(read_caption_folder(folder, split=FolderSplit(0.5, 0.0)))  # the file wins over fractions
    assert got == {"train": ["p2.jpg", "p3.jpg"], "dev": ["p0.jpg"], "test": ["p1.jpg"]}
    (folder / "splits.txt").write_text("p0.jpg\tdev\np1.jpg\tvalidation\n")
    with pytest.raises(DatasetError, match=r"splits.txt:2: expected 'IMAGE<TAB>train\|dev\|test'"):
        read_caption_folder(folder)
    (folder / "splits.txt").write_text("p9.jpg\tdev\n")
    with pytest.raises(DatasetError, match=r"splits.txt:1: 'p9.jpg' is not a captioned photo"):
        read_caption_folder(folder)
    (folder / "splits.txt").write_text("p0.jpg\ttrain\n")
    with pytest.raises(DatasetError, match=r"splits.txt: split 'dev' is empty"):
        read_caption_folder(folder)


def test_coco_and_karpathy_captions_files_are_read(tmp_path):
    folder = _folder(tmp_path, 3)
    (folder / "captions.txt").unlink()
    coco = {
        "images": [{"id": i, "file_name": f"p{i}.jpg"} for i in range(3)],
        "annotations": [{"image_id": i, "caption": f"caption {i}"} for i in range(3)]
        + [{"image_id": 0, "caption": "x"}],
    }
    (folder / "captions.json").write_text(json.dumps(coco))
    got = read_caption_folder(folder, ("train",))["train"]
    assert [(it.image_id, it.captions) for it in got] == [
        ("p0.jpg", ["caption 0", "x"]),
        ("p1.jpg", ["caption 1"]),
        ("p2.jpg", ["caption 2"]),
    ]
    karpathy = {
        "images": [
            {"filename": f"p{i}.jpg", "split": s, "sentences": [{"raw": f"caption {i}"}]}
            for i, s in enumerate(["restval", "val", "test"])
        ]
    }
    (folder / "captions.json").write_text(json.dumps(karpathy))
    assert _names(read_caption_folder(folder)) == {"train": ["p0.jpg"], "dev": ["p1.jpg"], "test": ["p2.jpg"]}
    (folder / "captions.json").write_text(json.dumps({"images": [{"file_name": "p0.jpg"}]}))
    with pytest.raises(DatasetError, match=r"captions.json: neither a COCO captions file"):
        read_caption_folder(folder)
    (folder / "captions.json").unlink()
    with pytest.raises(DatasetError, match=r"no captions file"):
        read_caption_folder(folder)


def _coco(n=3, **changes):
    data = {
        "images": [{"id": i, "file_name": f"p{i}.jpg"} for i in range(n)],
        "annotations": [{"image_id": i, "caption": f"caption {i}"} for i in range(n)],
    }
    for key, value in changes.items():
        data[key] = value(data[key]) if callable(value) else value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_coco(annotations=lambda a: a + [{"image_id": 9, "caption": "x"}]), r"annotations\[3\] is for image 9"),
        (_coco(annotations=lambda a: a + [{"image_id": 0, "caption": None}]), r"annotations\[3\].caption must be"),
        (_coco(annotations=lambda a: a + [{"image_id": 0, "caption": 7}]), r"annotations\[3\].caption must be"),
        (_coco(images=lambda m: m + [{"id": 5, "file_name": "p0.jpg"}]), r"images\[3\] names p0.jpg again"),
        (_coco(images=lambda m: [*m[:2], "p2.jpg"]), r"images\[2\] needs an 'id'"),
        ("[" * 100_000 + "]" * 100_000, r"not a captions file \(JSON nested too deeply"),
        (json.dumps({"images": [{"filename": "p0.jpg", "sentences": [{"raw": None}]}]}), r"images\[0\].sentences"),
    ],
    ids=[
        "orphan-annotation",
        "null-caption",
        "number-caption",
        "same-file-twice",
        "image-not-object",
        "deep",
        "karpathy-null",
    ],
)
def test_hostile_captions_files_are_refused_naming_the_entry(tmp_path, text, expected):
    """Issue 48, class 5: adapt's COCO and Karpathy readers."""
    folder = _folder(tmp_path, 3)
    (folder / "captions.txt").unlink()
    (folder / "captions.json").write_text(text)
    with pytest.raises(DatasetError, match=rf"captions.json: {expected}"):
        read_caption_folder(folder)


def test_undecodable_caption_bytes_are_refused_with_the_line(tmp_path):
    folder = _folder(tmp_path, 3)
    lines = (folder / "captions.txt").read_bytes().splitlines()
    lines[3] = b"p1.jpg\ta caf\xe9 in latin-1"
    (folder / "captions.txt").write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DatasetError, match=r"captions.txt:4: not UTF-8"):
        read_caption_folder(folder)


def test_cli_warnings_are_one_plain_line(tmp_path):
    import subprocess
    import sys

    code = "import warnings, edgecap.cli; edgecap.cli.main(['models'], standalone_mode=False); warnings.warn('a photo is skipped')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.strip() == "warning: a photo is skipped"


def test_an_unreadable_photo_is_skipped_and_counted(tmp_path):
    folder = _folder(tmp_path, 3)
    data = (folder / "p1.jpg").read_bytes()
    (folder / "p1.jpg").write_bytes(data[: len(data) // 3])  # truncated
    with pytest.warns(UserWarning, match=r"captions.txt: 1 photo\(s\) cannot be read and are skipped \(e.g. .*p1.jpg"):
        got = read_caption_folder(folder, ("train",))["train"]
    assert [it.image_id for it in got] == ["p0.jpg", "p2.jpg"]


def test_adapt_refuses_a_model_without_a_checkpoint_in_one_line(tmp_path):
    from edgecap.cli import main

    folder = _folder(tmp_path, 3)
    for model, message in (
        ("multimodal_rnn_flickr8k", "released as an int8 file only"),
        ("nowhere_model", "neither a run directory nor a built-in model"),
    ):
        result = CliRunner().invoke(
            main, ["adapt", "--model", model, "--data", str(folder), "--run-dir", str(tmp_path / "r")]
        )
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def _with_a_new_word(folder, out):
    """A copy of ``folder`` whose captions all end with a word the tiny run trained on it never saw."""
    shutil.copytree(folder, out)
    lines = (out / "captions.txt").read_text().splitlines()
    (out / "captions.txt").write_text("".join(f"{line} near a zebra\n" for line in lines if line.strip()))
    return out


@pytest.mark.slow
def test_adapt_extends_the_vocabulary_and_the_exported_int8_file_verifies(tiny_run, tmp_path):
    """A tiny run adapted on coco_dev split 75/20 by a fixed seed (the examples' 12 views without
    ../shared): old words keep their ids and rows, new words start at the mean row, the int8 file
    verifies, captions, and its card says what it was adapted from."""
    import keras

    from edgecap.export.command import run_export
    from edgecap.runs import ADAPTED, load_run
    from edgecap.runtime import Captioner
    from edgecap.runtime.metadata import read_file
    from edgecap.runtime.vocabulary import tokenize
    from edgecap.training.adapt import adapt

    folder = COCO_DEV if COCO_DEV.is_dir() and HAVE_SHARED else _with_a_new_word(bare_data()[0], tmp_path / "bare")
    fractions = (15 / 95, 20 / 95) if folder == COCO_DEV else (0.25, 0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adapt(
            tiny_run,
            folder,
            tmp_path / "run",
            *fractions,
            5,
            1,
            ["train.epochs=1", "train.learning_rate=0.0", "train.batch_size=8", "train.max_steps_per_epoch=3"],
        )
    record = json.loads((tmp_path / "run" / ADAPTED).read_text())
    assert record["photos"] == (
        {"train": 60, "dev": 15, "test": 20} if folder == COCO_DEV else {"train": 6, "dev": 3, "test": 3}
    )

    _, old_vocab, old = load_run(tiny_run)
    cfg, vocab, new = load_run(tmp_path / "run")
    n = len(old_vocab)
    assert vocab.words[:n] == old_vocab.words and len(vocab) > n
    train_words = {
        w
        for it in read_caption_folder(folder, split=FolderSplit(*fractions, 5))["train"]
        for c in it.captions
        for w in tokenize(c)
    }
    assert set(vocab.words[n:]) <= train_words  # only training captions bring words
    old_emb = keras.ops.convert_to_numpy(old.decoder.embedding.embeddings)
    new_emb = keras.ops.convert_to_numpy(new.decoder.embedding.embeddings)
    np.testing.assert_allclose(new_emb[:n], old_emb, atol=1e-6)
    np.testing.assert_allclose(new_emb[n:], np.broadcast_to(old_emb.mean(0), new_emb[n:].shape), atol=1e-5)
    assert cfg.model.fine_tune_from == "" and cfg.data.caption_text == ""

    out = tmp_path / "adapted_int8.tflite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_export(tmp_path / "run", "int8", out, calibration_images=16, verify_images=24)
    assert result.report.passed
    _, meta = read_file(out)
    assert meta.extra["adapted_from"]["photos"] == record["photos"] and len(meta.vocabulary) == len(vocab)
    card = out.with_suffix(".md").read_text()
    assert str(tiny_run.name) in card and f"{len(vocab) - n} new" in card
    photo = read_caption_folder(folder, ("test",), split=FolderSplit(*fractions, 5))["test"][0].path
    shutil.copy(photo, tmp_path / "photo.jpg")
    assert Captioner.from_file(out).caption(tmp_path / "photo.jpg").text
