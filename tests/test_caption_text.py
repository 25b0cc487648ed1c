"""The language side from unpaired text: reading it, widening the vocabulary, mixing sentences
without photos into training, and continuing a run with the wider vocabulary."""

import warnings

import keras
import numpy as np
import pytest

from edgecap.config import Config, ConfigError
from edgecap.data.pipeline import caption_dataset, encode_texts
from edgecap.data.readers import DatasetError, read_caption_text
from edgecap.runtime.vocabulary import Vocabulary

from conftest import HAVE_SHARED, SHARED, tiny_config

TEXT = [
    "A giraffe standing next to a tall tree .",
    "Two giraffes eat leaves from a tree",
    "a giraffe in a field",
    "A plate of broccoli and rice .",
    "the dog runs",
]


def _text_folder(tmp_path, lines=TEXT):
    folder = tmp_path / "caption_text"
    folder.mkdir()
    (folder / "a.tsv").write_text("".join(f"coco/{i}\t{t}\n" for i, t in enumerate(lines)))
    return folder


def test_caption_text_is_read_and_bad_lines_are_named(tmp_path):
    assert read_caption_text(_text_folder(tmp_path)) == TEXT
    with pytest.raises(DatasetError, match="no caption text"):
        read_caption_text(tmp_path / "nowhere")
    (tmp_path / "caption_text" / "b.tsv").write_text("coco/1 no tab here\n")
    with pytest.raises(DatasetError, match=r"b.tsv:1: expected"):
        read_caption_text(tmp_path / "caption_text")


@pytest.mark.skipif(not (SHARED / "data" / "caption_text").is_dir(), reason="needs ../shared/data/caption_text")
def test_the_shared_caption_text_reads_whole():
    text = read_caption_text(SHARED / "data" / "caption_text")
    assert len(text) == 117_675 + 23_984 and all(text)


def test_a_widened_vocabulary_keeps_every_id_and_appends_by_frequency():
    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "dog", "tree"])
    wide = vocab.extended(TEXT, min_count=2)
    assert wide.words[: len(vocab)] == vocab.words
    assert wide.words[len(vocab) :] == ["giraffe", "in"] or wide.words[len(vocab) :][0] == "giraffe"
    assert "broccoli" not in wide.words and "broccoli" in vocab.extended(TEXT, 1).words
    with pytest.raises(ValueError):
        vocab.extended(TEXT, 0)


def test_text_examples_are_mixed_in_with_zero_annotations():
    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "dog"]).extended(TEXT, 1)
    features = np.ones((4, 5, 3), np.float16)  # 4 photos: every paired example has nonzero annotations
    index = np.arange(4, dtype=np.int32).repeat(8)
    captions = encode_texts(["a dog"] * 32, vocab, 6)
    text = encode_texts(TEXT * 20, vocab, 6)
    ds = caption_dataset(features, index, captions, 16, seed=1, text_captions=text, text_fraction=0.5)
    zero, total, text_rows = 0, 0, 0
    dog = vocab.id_of("dog")
    for inputs, _ in ds.take(20):
        a, c = inputs["annotations"].numpy(), inputs["captions"].numpy()
        blank = (a == 0).all(axis=(1, 2))
        zero += blank.sum()
        total += len(blank)
        text_rows += sum((row[1:3] != [vocab.id_of("a"), dog]).any() for row in c[blank])
        assert ((c[~blank][:, 1:3]) == [vocab.id_of("a"), dog]).all()  # photos keep their captions
    assert 0.35 < zero / total < 0.65 and text_rows == zero
    with pytest.raises(ValueError, match="text_fraction"):
        caption_dataset(features, index, captions, 16, text_captions=text, text_fraction=1.0)


def test_text_fraction_needs_caption_text():
    cfg = Config()
    cfg.train.text_fraction = 0.3
    with pytest.raises(ConfigError, match="data.caption_text"):
        cfg.validate()


@pytest.mark.slow
def test_a_run_continues_with_a_widened_vocabulary(tiny_run, tmp_path):
    """train.init_from + data.caption_text: old words keep their rows, new words get rows and
    start as unlikely as the rarest old word; the run trains on photos and text together."""
    from edgecap.runs import load_run
    from edgecap.training.trainer import train

    cfg = tiny_config(
        tmp_path, HAVE_SHARED, max_steps_per_epoch=4, epochs=1, init_from=str(tiny_run), text_fraction=0.5
    )
    cfg.data.caption_text, cfg.data.caption_text_min_count = str(_text_folder(tmp_path)), 2
    cfg.train.learning_rate = 1e-12  # (nearly) no update: the copied rows stay what warm start made them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, tmp_path / "run")
    _, old_vocab, old = load_run(tiny_run)
    _, vocab, new = load_run(tmp_path / "run")
    n = len(old_vocab)
    assert vocab.words[:n] == old_vocab.words and "giraffe" in vocab.words[n:]
    old_emb = keras.ops.convert_to_numpy(old.decoder.embedding.embeddings)
    new_emb = keras.ops.convert_to_numpy(new.decoder.embedding.embeddings)
    assert new_emb.shape == (len(vocab), old_emb.shape[1])
    np.testing.assert_allclose(new_emb[:n], old_emb, atol=1e-5)
    bias_old = keras.ops.convert_to_numpy(old.decoder.out_words.bias)
    bias_new = keras.ops.convert_to_numpy(new.decoder.out_words.bias)
    np.testing.assert_allclose(bias_new[n:], bias_old.min(), atol=1e-5)


def test_person_free_examples_are_drawn_at_their_share():
    """train.person_free_share: photos whose references name no person, and sentences that name
    none, come at the set share whatever their own (here 1 photo in 4, 1 sentence in 5)."""
    from edgecap.data.pipeline import person_free
    from edgecap.data.readers import CaptionedImage

    items = [
        CaptionedImage(
            f"p{i}.jpg", f"p{i}.jpg", ["a man rides a bike", "a woman on a bike", "a bike", "a bike", "a bike"]
        )
        for i in range(3)
    ] + [CaptionedImage("cat.jpg", "cat.jpg", ["a cat on a sofa", "a man 's cat", "a cat", "a cat", "a cat"])]
    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a"]).extended(TEXT, 1)
    features = np.stack([np.full((5, 3), i + 1, np.float16) for i in range(4)])  # photo i: all i + 1
    index = np.arange(4, dtype=np.int32).repeat(5)
    free, text_free = person_free(items, index, ["a man walks", "a girl runs", "a boy", "two people", "a dog"])
    assert free.tolist() == [False] * 15 + [True] * 5  # "a man 's cat" is one reference of five
    assert text_free.tolist() == [False, False, False, False, True]
    captions = encode_texts(["a"] * 20, vocab, 6)
    text = encode_texts(TEXT[:5], vocab, 6)
    text_mask = np.asarray([False, False, False, False, True])
    ds = caption_dataset(
        features, index, captions, 32, seed=2, text_captions=text, text_fraction=0.5,
        favoured=free, text_favoured=text_mask, favoured_share=0.5,
    )  # fmt: skip
    photo_rows = sentence_rows = cat = dog = 0
    for inputs, _ in ds.take(40):
        a = inputs["annotations"].numpy()[:, 0, 0]
        c = inputs["captions"].numpy()
        photo_rows += (a > 0).sum()
        cat += (a == 4).sum()
        sentence_rows += (a == 0).sum()
        dog += (c[a == 0] == encode_texts(TEXT[4:5], vocab, 6)[0]).all(axis=1).sum()
    assert 0.4 < cat / photo_rows < 0.6 and 0.4 < dog / sentence_rows < 0.6
    with pytest.raises(ValueError, match="favoured_share"):
        caption_dataset(features, index, captions, 8, favoured=free[:3], favoured_share=0.5)
    with pytest.raises(ValueError, match="favoured_share"):
        caption_dataset(features, index, captions, 8, favoured=free, favoured_share=0.5, shuffle=False)
