"""The image–sentence alignment model: the BRNN reads both ways and ignores padding, eq. 9 as
written, the ranking loss falls on real data, and the exported embeddings match Keras through
the runtime (index, search, annotate, align, and the errors of each)."""

import json
import warnings

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from edgecap.models.alignment.config import AlignmentConfig
from edgecap.models.alignment.model import VisualSemanticAlignment, pair_scores, ranking_loss

from conftest import HAVE_SHARED, tiny_config


def _tiny(vocab_size=20, seed=0, **kw) -> VisualSemanticAlignment:
    keras.utils.set_random_seed(seed)
    model = VisualSemanticAlignment(
        vocab_size, AlignmentConfig(encoder_weights="none", embedding_dim=8, hidden_dim=12, max_words=6, **kw)
    )
    model.build()
    return model


def test_the_brnn_reads_both_ways_and_ignores_padding():
    model = _tiny()
    a = np.array([[5, 6, 7, 0, 0, 0]], np.int32)
    words = model.words(a).numpy()[0]
    assert np.all(words[3:] == 0) and np.any(words[:3] != 0)
    longer = model.words(np.array([[5, 6, 7, 8, 0, 0]], np.int32)).numpy()[0]
    assert not np.allclose(words[0], longer[0])  # a later word changes an earlier one: the backward RNN
    earlier = model.words(np.array([[9, 6, 7, 0, 0, 0]], np.int32)).numpy()[0]
    assert not np.allclose(words[2], earlier[2])  # and an earlier word a later one: the forward RNN
    batch = model.words(np.array([[5, 6, 7, 0, 0, 0], [1, 2, 3, 4, 5, 6]], np.int32)).numpy()
    np.testing.assert_allclose(batch[0], words, atol=1e-6)


def test_scores_and_loss_are_eq8_and_eq9():
    rng = np.random.default_rng(0)
    regions, words = rng.normal(size=(3, 4, 5)).astype(np.float32), rng.normal(size=(3, 2, 5)).astype(np.float32)
    mask = np.array([[1, 1], [1, 0], [1, 1]], np.float32)
    S = np.asarray(pair_scores(regions, words, mask))
    expected = np.array(
        [[sum((regions[k] @ words[m, t]).max() for t in range(2) if mask[m, t]) for m in range(3)] for k in range(3)]
    )
    np.testing.assert_allclose(S, expected, rtol=1e-5)
    same = np.eye(3, dtype=bool)
    same[0, 1] = same[1, 0] = True  # sentences 0 and 1 describe the same photo: not negatives of each other
    loss = float(ranking_loss(S, same, margin=1.0))
    by_hand = (
        sum(
            max(0, S[k, m] - S[k, k] + 1) + max(0, S[m, k] - S[k, k] + 1)
            for k in range(3)
            for m in range(3)
            if not same[k, m]
        )
        / 3
    )
    assert loss == pytest.approx(by_hand, rel=1e-5)
    hardest = float(ranking_loss(S, same, margin=1.0, hardest=True))
    by_hand = (
        sum(
            max([0] + [max(0, S[k, m] - S[k, k] + 1) for m in range(3) if not same[k, m]])
            + max([0] + [max(0, S[m, k] - S[k, k] + 1) for m in range(3) if not same[m, k]])
            for k in range(3)
        )
        / 3
    )
    assert hardest == pytest.approx(by_hand, rel=1e-5)
    with pytest.raises(ValueError, match="model.loss"):
        VisualSemanticAlignment(20, AlignmentConfig(encoder_weights="none", loss="triplet"))


def test_a_fine_tuned_encoder_trains_its_top_and_export_sees_what_training_did():
    from edgecap.models.backbones import encoder_stem

    model = _tiny(fine_tune_from="block_16_expand")
    trainable = {v.path for v in model.trainable_variables}
    assert any("Conv_1/kernel" in p for p in trainable) and not any("block_15" in p for p in trainable)
    assert not {v.path for v in _tiny().trainable_variables} & {v.path for v in model.encoder.weights}
    pixels = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    cached = encoder_stem(model.encoder, "block_16_expand")(pixels)  # (2, 7, 7, 160): what the feature cache holds
    trained = model.regions(model.annotate(cached)).numpy()  # the path training takes
    np.testing.assert_allclose(trained, model.embed_image(pixels).numpy(), rtol=1e-4, atol=1e-4 * np.abs(trained).max())


@pytest.fixture(scope="module")
def alignment_run(tmp_path_factory):
    """A tiny alignment model trained a few steps, MobileNetV2's last block with it: on a Flickr8k
    slice with ../shared, else on examples/."""
    from edgecap.training.ranking import train

    run = tmp_path_factory.mktemp("alignment_run")
    cfg = tiny_config(run, HAVE_SHARED, max_steps_per_epoch=12, epochs=3, learning_rate=2e-3)
    cfg.model = AlignmentConfig(
        encoder_weights=cfg.model.encoder_weights,
        embedding_dim=16,
        hidden_dim=24,
        max_words=12,
        normalize=True,
        margin=0.2,
        fine_tune_from="block_16_expand",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, run)
    return run


def test_the_ranking_loss_falls(alignment_run):
    history = json.loads((alignment_run / "state.json").read_text())["history"]
    assert len(history) == 3 and all(np.isfinite(h["loss"]) for h in history)
    assert history[-1]["loss"] < history[0]["loss"]
    assert all(0 <= h["annotation R@10"] <= 100 for h in history)


def test_evaluate_reproduces_the_selection_on_dev(alignment_run):
    """``edgecap evaluate RUN`` scores the best checkpoint as the epoch's selection did."""
    from edgecap.evaluation.evaluate import evaluate_retrieval

    state = json.loads((alignment_run / "state.json").read_text())
    selected = state["history"][state["best_epoch"] - 1]
    report = evaluate_retrieval(alignment_run, "dev")
    assert report["metrics"] == pytest.approx({k: selected[k] for k in report["metrics"]}, abs=1e-6)


@pytest.fixture(scope="module")
def exported(alignment_run, tmp_path_factory):
    from edgecap.export.command import run_export

    out = tmp_path_factory.mktemp("alignment_export") / "vsa.tflite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_export(alignment_run, "float32", out, verify_images=12)
    return result


def test_the_export_matches_keras(exported):
    report = exported.report
    assert report.passed, report.summary()
    assert report.regions_relative < 1e-3 and report.words_relative < 1e-3


def test_index_search_annotate_align(exported, examples, tmp_path):
    from edgecap.runtime import Captioner, ModelFileError, PhotoIndexError, QueryError, Retriever

    retriever = Retriever.from_file(exported.path)
    photos = sorted(examples.glob("*.jpg"))
    index = retriever.index(photos)
    assert index.regions.shape == (3, 50, 12) and index.regions.dtype == np.uint8 and index.dim == 24  # int4 pairs
    scores = retriever.scores(["a cat", "a cup of coffee on a table"])
    hits = retriever.search("a cup of coffee on a table", k=3)
    assert [h.path for h in hits] == [str(photos[i]) for i in np.argsort(-scores[:, 1], kind="stable")]
    index.save(tmp_path / "photos.npz")
    other = Retriever.from_file(exported.path)
    loaded = other.load_index(tmp_path / "photos.npz")
    assert loaded.paths == index.paths and np.array_equal(loaded.regions, index.regions) and loaded.memory_mapped
    np.testing.assert_array_equal(other.scores(["a cat", "a cup of coffee on a table"]), scores)
    sentences = ["a cat", "a cup of coffee on a table", "a man in a space suit"]
    ranked = retriever.annotate(photos[0], sentences, k=3)
    assert sorted(h.index for h in ranked) == [0, 1, 2] and ranked[0].score >= ranked[-1].score
    alignment = retriever.align(photos[1], "a cat on a table")
    known = set(retriever.vocab.words)
    assert (
        alignment.words == [w if w in known else "<unk>" for w in "a cat on a table".split()]
        and alignment.regions.shape == (5,)
        and alignment.dots.shape == (5, 50)
    )
    assert alignment.score == pytest.approx(
        float(retriever.annotate(photos[1], ["a cat on a table"], 1)[0].score), rel=1e-4
    )
    with pytest.raises(QueryError, match="vocabulary"):
        retriever.search("zzzqx qqqzz")
    with pytest.raises(QueryError, match="no words"):
        retriever.search(" ?! ")
    (tmp_path / "bad.npz").write_bytes(b"not an index")
    with pytest.raises(PhotoIndexError, match="bad.npz"):
        retriever.load_index(tmp_path / "bad.npz")
    index.model_digest = "0" * 64
    index.save(tmp_path / "foreign.npz")
    with pytest.raises(PhotoIndexError, match="another model"):
        retriever.load_index(tmp_path / "foreign.npz")
    with pytest.raises(ModelFileError, match="not a captioner"):
        Captioner.from_file(exported.path)


def test_search_command_writes_the_score_matrix(exported, examples, tmp_path):
    from edgecap.cli import main
    from edgecap.runtime import Retriever

    texts = tmp_path / "texts.txt"
    texts.write_text("a cat\n\na cup of coffee\na man in a space suit\n")
    runner = CliRunner()
    out = runner.invoke(
        main,
        [
            "search",
            "--model",
            str(exported.path),
            "--images",
            str(examples),
            "--texts",
            str(texts),
            "--scores",
            str(tmp_path / "s.npy"),
        ],
    )
    assert out.exit_code == 0, out.output
    matrix = np.load(tmp_path / "s.npy")
    retriever = Retriever.from_file(exported.path)
    retriever.index(sorted(examples.glob("*.jpg")))
    np.testing.assert_allclose(
        matrix, retriever.scores(["a cat", "a cup of coffee", "a man in a space suit"]), rtol=1e-5
    )
    out = runner.invoke(
        main,
        [
            "search",
            "--model",
            str(exported.path),
            "--images",
            str(examples),
            "--index",
            str(tmp_path / "i.npz"),
            "a cat",
            "-k",
            "1",
            "--json",
        ],
    )
    assert out.exit_code == 0 and json.loads(out.output[out.output.index('{"query"') :].splitlines()[0])["results"][0][
        "path"
    ].endswith(".jpg")
    out = runner.invoke(main, ["search", "--model", str(exported.path), "--index", str(tmp_path / "i.npz"), "a cat"])
    assert out.exit_code == 0 and "a cat" in out.output
    out = runner.invoke(
        main,
        ["search", "--model", str(exported.path), "--images", str(examples), "--index", str(tmp_path / "only.npz")],
    )  # index only
    assert out.exit_code == 0 and (tmp_path / "only.npz").is_file()
    texts.write_text(
        "a cat\nzzzqx qqqzz\n"
    )  # a score matrix keeps a text of unknown words (its column scores it as <unk>)
    out = runner.invoke(
        main,
        [
            "search",
            "--model",
            str(exported.path),
            "--index",
            str(tmp_path / "only.npz"),
            "--texts",
            str(texts),
            "--scores",
            str(tmp_path / "s2.npy"),
        ],
    )
    assert out.exit_code == 0 and np.load(tmp_path / "s2.npy").shape == (3, 2)
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, message in [
        (["--images", str(empty), "a cat"], "no images in this folder"),
        (
            ["--images", str(examples), "--texts", str(texts), "--scores", str(tmp_path / "nope" / "s.npy")],
            "cannot be written",
        ),
        (["--images", str(examples), "qqqzz"], "vocabulary"),
        (["--index", str(tmp_path / "missing.npz"), "a cat"], "missing.npz"),
    ]:
        out = runner.invoke(main, ["search", "--model", str(exported.path), *args])
        assert out.exit_code == 1 and message in out.output, (args, out.output)


def test_bench_times_a_retrieval_file(exported, examples, monkeypatch):
    from edgecap.bench import format_report, run_bench

    monkeypatch.setenv("EDGECAP_BENCH_SYNTHETIC_PHOTOS", "3000")
    report = run_bench([exported.path], [1], examples, repeats=3, keras_run="none")
    (row,) = report["results"]
    assert row["task"] == "retrieval" and row["index_photos"] == 1000 and row["embed_image_macs"] > 0
    assert all(row[k] > 0 for k in ("embed_image_ms", "embed_sentence_ms", "query_ms", "synthetic_query_ms"))
    assert row["synthetic_photos"] == 3000 and 0 < row["index_kb_per_photo"] < 50 * 24 * 2 / 1e3  # under float16
    assert row["per_op_floor_ms"]["embed_image"] > 0 and row["op_gmacs"]["int8/depthwise"] > 0
    text = format_report(report)
    assert "retrieval model" in text and "encode ms" not in text  # no captioner table without a captioner
