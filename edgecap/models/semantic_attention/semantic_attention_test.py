"""Semantic attention: the attribute vocabulary and detector (the formulas against loops, the
detector learning on real photos), and the captioner over the detector: its regulariser, the
image at t = 0 only, training, export with the top-k selection inside ``encode``, decoding
through the generic runtime, and the errors for a detector that does not fit."""

import json
import warnings

import numpy as np
import pytest

from edgecap.evaluation.attributes import attribute_scores, frequency_baseline
from edgecap.models.semantic_attention.attributes import AttributeVocabulary, AttributeVocabularyError
from edgecap.models.semantic_attention.config import AttributeDetectorConfig

from conftest import HAVE_SHARED, tiny_config


def test_attributes_are_frequent_content_words_and_label_each_image(tmp_path):
    captions = [
        ["A dog runs on the grass .", "The brown dog is running"],
        ["A man rides a bike on the road", "a man cycling"],
        ["Two dogs and a dog play in the snow"],
    ]
    vocab = AttributeVocabulary.from_captions(captions, 4)
    assert vocab.words == (
        "dog",
        "bike",
        "brown",
        "cycling",
    )  # "dog" in 2 photos; "a", "the", "on", "two" are stop words; ties alphabetical
    np.testing.assert_array_equal(vocab.labels(captions), [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 0, 0]])
    vocab.save(tmp_path / "attributes.json")
    assert AttributeVocabulary.load(tmp_path / "attributes.json", 4) == vocab
    with pytest.raises(AttributeVocabularyError, match="4 attributes, but the model has 8"):
        AttributeVocabulary.load(tmp_path / "attributes.json", 8)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(AttributeVocabularyError, match="bad.json: not an attribute vocabulary"):
        AttributeVocabulary.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="fewer than the 99"):
        AttributeVocabulary.from_captions(captions, 99)


def test_noisy_or_loss_is_the_likelihood_of_the_weak_labels():
    import keras

    from edgecap.models.semantic_attention.detector import noisy_or_evidence, noisy_or_loss

    z = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)  # (B, L, A)
    labels = np.array([[1, 0, 0, 1], [0, 1, 1, 0]], np.float32)
    p = 1.0 - np.prod(1.0 - 1.0 / (1.0 + np.exp(-z)), axis=1)  # Fang et al. eq. 1
    by_hand = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    evidence = noisy_or_evidence(keras.ops.convert_to_tensor(z))
    np.testing.assert_allclose(1.0 - np.exp(-np.asarray(evidence)), p, rtol=1e-5)
    assert float(noisy_or_loss(evidence, labels)) == pytest.approx(by_hand, rel=1e-5)


def test_the_ranking_score_orders_attributes_as_the_noisy_or():
    """Where the cells' probabilities are small, ``log Σ_i exp(z_ij) ≈ log Σ_i softplus(z_ij)``:
    the captioner's top k are the noisy-OR's; and the score is a smooth maximum over the cells."""
    from edgecap.models.semantic_attention.detector import noisy_or_evidence, ranking_score

    rng = np.random.default_rng(0)
    levels = rng.permutation(np.linspace(-9, -3, 64))  # each attribute's typical logit
    z = (levels + rng.normal(0, 0.5, size=(4, 49, 64))).astype(np.float32)  # (B, L, A)
    r, s = np.asarray(ranking_score(z)), np.asarray(noisy_or_evidence(z))
    np.testing.assert_allclose(np.exp(r), s, rtol=0.05)
    for a, b in zip(r, s):
        assert list(np.argsort(-a)[:10]) == list(np.argsort(-b)[:10])
    assert np.all(r >= z.max(axis=1)) and np.all(r <= z.max(axis=1) + np.log(49) + 1e-5)


def test_attribute_scores_on_a_toy_set():
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1], [0.3, 0.7, 0.0]])
    m = attribute_scores(scores, labels, k=1)
    # attribute 0: images ranked 0 (pos), 2 (pos) → AP 1; attribute 1: 1 (pos), 2 (pos) → AP 1; attribute 2 has no positive
    assert m == {"mAP": 100.0, "P@1": 100.0, "R@1": pytest.approx(100 * (1 + 1 + 0.5) / 3), "attributes_scored": 2}
    baseline = attribute_scores(frequency_baseline(labels, 3), labels, k=1)
    assert baseline["P@1"] == pytest.approx(100 * 2 / 3)  # always attribute 0 (ties: the lower id)
    with pytest.raises(ValueError, match="k must be"):
        attribute_scores(scores, labels, k=4)


@pytest.fixture(scope="module")
def detector_run(tmp_path_factory):
    """A detector trained a few epochs: on 600 Flickr8k photos with ../shared, else on examples/."""
    from edgecap.training.attributes import train

    run = tmp_path_factory.mktemp("detector_run")
    cfg = tiny_config(run, HAVE_SHARED, epochs=4, learning_rate=2e-3)
    if HAVE_SHARED:
        cfg.data.train_limit, cfg.data.dev_limit, cfg.train.batch_size = 600, 200, 32
    cfg.model = AttributeDetectorConfig(
        encoder_weights=cfg.model.encoder_weights, num_attributes=64 if HAVE_SHARED else 8, hidden_dim=64
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, run)
    return run


def test_the_detector_learns(detector_run):
    history = json.loads((detector_run / "state.json").read_text())["history"]
    assert len(history) == 4 and history[-1]["loss"] < history[0]["loss"]
    assert len(AttributeVocabulary.load(detector_run / "attributes.json").words) == (64 if HAVE_SHARED else 8)
    assert (
        "P@10" in history[-1] if HAVE_SHARED else "P@8" in history[-1]
    )  # 10, or every attribute of a smaller vocabulary


@pytest.mark.skipif(
    not HAVE_SHARED, reason="needs ../shared: 12 photos of 3 scenes cannot tell a detector from word frequency"
)
def test_the_detector_beats_the_most_frequent_attributes(detector_run):
    from edgecap.evaluation.evaluate import evaluate_attributes

    report = evaluate_attributes(detector_run, "dev")
    assert report["images"] == 200 and report["attributes"] == 64
    assert report["metrics"]["P@10"] > report["frequency_baseline"]["P@10"]
    assert report["metrics"]["mAP"] > report["frequency_baseline"]["mAP"]


def test_the_attention_regularizer_is_the_papers_formula():
    from edgecap.models.semantic_attention.model import attention_regularizer

    rng = np.random.default_rng(1)
    alpha = rng.dirichlet(np.ones(4), size=(2, 3)).astype(np.float32)  # (B, T, k)
    mask = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
    by_hand = 0.0
    for b in range(2):
        rows = [alpha[b, t] for t in range(3) if mask[b, t]]
        by_hand += np.sqrt(np.sum(np.sum(rows, axis=0) ** 2))  # ‖Σ_t α_t‖_2
        by_hand += sum(np.sum(np.sqrt(a)) ** 2 for a in rows)  # Σ_t ‖α_t‖_0.5
    assert float(attention_regularizer(alpha, mask, 2.0, 0.5)) == pytest.approx(by_hand, rel=1e-4)
    one_hot = np.eye(4, dtype=np.float32)[[0, 1, 2]][None]  # sparse attention on different attributes scores lowest
    uniform = np.full((1, 3, 4), 0.25, np.float32)
    assert float(attention_regularizer(one_hot, mask[:1])) < float(attention_regularizer(uniform, mask[:1]))


def _captioner_config(cfg, detector: str, **model):
    from edgecap.models.semantic_attention.config import SemanticAttentionConfig

    sizes = dict(num_attributes=64 if HAVE_SHARED else 8, detector_hidden_dim=64, top_k=5, hidden_dim=32)
    cfg.model = SemanticAttentionConfig(
        encoder_weights=cfg.model.encoder_weights, detector=detector, **{**sizes, **model}
    )
    return cfg


def test_the_photo_enters_at_the_first_step_only_unless_image_every_step_or_visual_attention():
    """You et al. eq. 1: after ``start`` the step depends on the photo only through h and c."""
    import keras

    from edgecap.models.semantic_attention.config import SemanticAttentionConfig
    from edgecap.models.semantic_attention.model import SemanticAttention

    keras.utils.set_random_seed(0)
    model = SemanticAttention(
        12,
        SemanticAttentionConfig(
            encoder_weights="none",
            num_attributes=8,
            detector_hidden_dim=16,
            top_k=3,
            hidden_dim=16,
            input_attention=False,
            output_attention=False,
        ),
    )
    model.build()
    annotations = np.random.default_rng(0).uniform(0, 6, (2, 49, 1280)).astype(np.float32)
    state, memory = model.split(model.start(annotations))
    assert memory == {} and model.step_contract().attention is None and model.step_contract().items.size == 3
    assert not np.allclose(state["h"][0], state["h"][1], atol=1e-4)
    same = {n: np.repeat(np.asarray(v)[:1], 2, 0) for n, v in state.items()}
    log_probs, _, _ = model.decode_step(np.array([1, 1], np.int32), same, memory)
    np.testing.assert_allclose(log_probs[0], log_probs[1], atol=1e-6)
    # model.image_every_step (not the paper's): the photo reaches every step through the memory
    model = SemanticAttention(
        12,
        SemanticAttentionConfig(
            encoder_weights="none",
            num_attributes=8,
            detector_hidden_dim=16,
            top_k=3,
            hidden_dim=16,
            input_attention=False,
            output_attention=False,
            image_every_step=True,
        ),
    )
    model.build()
    state, memory = model.split(model.start(annotations))
    assert set(memory) == {"image_context"}
    log_probs, _, _ = model.decode_step(
        np.array([1, 1], np.int32), {n: np.repeat(np.asarray(v)[:1], 2, 0) for n, v in state.items()}, memory
    )
    assert not np.allclose(log_probs[0], log_probs[1], atol=1e-4)
    # model.visual_attention (not the paper's either): Xu et al.'s attention over the grid, from the memory
    model = SemanticAttention(
        12,
        SemanticAttentionConfig(
            encoder_weights="none",
            num_attributes=8,
            detector_hidden_dim=16,
            top_k=3,
            hidden_dim=16,
            visual_attention=True,
            projection_dim=8,
            attention_dim=6,
        ),
    )
    model.build()
    state, memory = model.split(model.start(annotations))
    assert memory["features"].shape == (2, 49, 8) and memory["keys"].shape == (2, 49, 6)
    assert model.step_contract().items.rows == (
        "attribute_embeddings",
        "input_keys",
        "output_values",
        "output_keys",
    )  # the grid's memory has a row per cell, not per attribute
    same = {n: np.repeat(np.asarray(v)[:1], 2, 0) for n, v in state.items()}
    log_probs, _, attention = model.decode_step(
        np.array([1, 1], np.int32),
        same,
        {n: np.repeat(np.asarray(v)[:1], 2, 0) if n not in ("features", "keys") else v for n, v in memory.items()},
    )
    assert attention.shape == (2, 6) and not np.allclose(
        log_probs[0], log_probs[1], atol=1e-4
    )  # the attributes alike, the grids not


@pytest.fixture(scope="module")
def captioner_run(detector_run, tmp_path_factory):
    """A tiny semantic attention captioner trained a few steps on ``detector_run``'s attributes."""
    from edgecap.training.trainer import train

    run = tmp_path_factory.mktemp("semantic_attention_run")
    cfg = _captioner_config(tiny_config(run, HAVE_SHARED, epochs=2, max_steps_per_epoch=12), str(detector_run))
    if HAVE_SHARED:
        cfg.data.train_limit = 600  # the detector's photos: every attribute word is in the caption vocabulary
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, run)
    return run


def test_the_captioner_trains_on_the_detected_attributes(captioner_run, detector_run):
    from edgecap.models.semantic_attention.model import SemanticAttention
    from edgecap.runs import load_run

    history = json.loads((captioner_run / "state.json").read_text())["history"]
    assert len(history) == 2 and history[-1]["loss"] < history[0]["loss"]
    _, vocab, model = load_run(captioner_run)
    assert isinstance(model, SemanticAttention)
    words = vocab.decode(np.asarray(model.attribute_word_ids))
    assert (
        tuple(words) == AttributeVocabulary.load(detector_run / "attributes.json").words
    )  # the checkpoint holds the detector's attributes


def test_a_warm_start_copies_every_trained_weight(captioner_run):
    """``train.init_from`` (e.g. for self-critical training) takes every trained weight, the
    attention mixes and the output bias included."""
    from edgecap.runs import build_model, load_run
    from edgecap.training.trainer import warm_start

    cfg, vocab, trained = load_run(captioner_run)
    fresh = build_model(cfg, len(vocab), encoder_weights="none")
    warm_start(fresh, captioner_run)
    assert not np.allclose(trained.input_mix.scale.numpy(), 1.0)  # trained away from its initial value
    for ours, theirs in zip(fresh.trainable_weights, trained.trainable_weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)


def test_exports_with_the_top_k_inside_encode_and_captions_through_the_runtime(captioner_run, tmp_path, examples):
    from edgecap.export.command import run_export
    from edgecap.runs import load_run
    from edgecap.runtime import Captioner, CaptionerOptions

    result = run_export(captioner_run, "float32", tmp_path / "sa.tflite", verify_images=8)
    assert result.report.passed and result.report.items_overlap == 1.0 and result.report.items_identical == 1.0, (
        result.report.summary()
    )
    _, vocab, model = load_run(captioner_run)
    captioner = Captioner.from_file(result.path, CaptionerOptions(beam_size=2))
    for photo in sorted(examples.glob("*.jpg")):
        pixels = captioner.preprocess(photo)
        keras_out = model.encode(pixels)
        _, _, items = captioner.encode_with_items(pixels)
        assert [w for w, _ in items] == vocab.decode(
            np.asarray(keras_out["attribute_words"])[0]
        )  # the same top-k, in the same order
        np.testing.assert_allclose(
            [p for _, p in items], np.asarray(keras_out["attribute_probs"])[0], rtol=1e-4, atol=1e-5
        )  # their noisy-OR probabilities (float32 rounding: ~1e-5 relative)
        assert all(0.0 < p < 1.0 for _, p in items)
    caption = captioner.caption(examples / "chelsea.jpg")
    assert len(caption.attributes) == 5 and caption.attention.shape == (len(caption.tokens), 2, 5)
    np.testing.assert_allclose(
        caption.attention.sum(axis=-1), 1.0, atol=1e-4
    )  # α_t and β_t are distributions over the 5 attributes


def test_caption_attributes_json_and_figure(captioner_run, tmp_path, examples):
    from edgecap.cli import main
    from edgecap.export.command import run_export

    path = run_export(captioner_run, "float32", tmp_path / "sa.tflite", verify_images=4).path
    photo = str(examples / "chelsea.jpg")
    out = _run_cli(
        main, ["caption", "--model", str(path), "--attributes", "--attention-dir", str(tmp_path / "figs"), photo]
    )
    assert out.count("attributes: ") == 1 and (tmp_path / "figs" / "chelsea_attention.png").stat().st_size > 0
    record = json.loads(_run_cli(main, ["caption", "--model", str(path), "--json", photo]))
    assert len(record["attributes"]) == 5 and set(record["attributes"][0]) == {"word", "probability"}


def _run_cli(main, args) -> str:
    from click.testing import CliRunner

    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_detector_that_does_not_fit_is_named(detector_run, tmp_path):
    from edgecap.config import Config
    from edgecap.models.semantic_attention.config import SemanticAttentionConfig
    from edgecap.models.semantic_attention.model import DetectorError, SemanticAttention
    from edgecap.runtime.vocabulary import Vocabulary

    vocab = Vocabulary.build([" ".join(AttributeVocabulary.load(detector_run / "attributes.json").words)], 1)
    detector_cfg = Config.load(detector_run / "config.toml").model

    def prepare(**changes):
        c = dict(
            encoder_weights=detector_cfg.encoder_weights,
            detector=str(detector_run),
            num_attributes=detector_cfg.num_attributes,
            detector_hidden_dim=64,
            top_k=2,
            hidden_dim=8,
        )
        model = SemanticAttention(len(vocab), SemanticAttentionConfig(**{**c, **changes}), encoder_weights="none")
        model.build()
        model.prepare(vocab)

    prepare()  # fits
    with pytest.raises(DetectorError, match="config.toml: the detector reads the features of encoder"):
        prepare(encoder_weights="imagenet")
    with pytest.raises(DetectorError, match="set model.num_attributes"):
        prepare(num_attributes=detector_cfg.num_attributes + 1)
    with pytest.raises(
        DetectorError, match="not the run directory of a trained attribute detector|must be the run directory"
    ):
        prepare(detector=str(tmp_path))
    with pytest.raises(ValueError, match="top_k .* is larger than"):
        SemanticAttention(10, SemanticAttentionConfig(num_attributes=4, top_k=10), encoder_weights="none")
    broken = tmp_path / "detector"
    broken.mkdir()
    for name in ("config.toml", "best.weights.h5"):
        (broken / name).write_bytes((detector_run / name).read_bytes())
    AttributeVocabulary(("dog", "cat")).save(broken / "attributes.json")
    with pytest.raises(DetectorError, match="attributes.json: 2 attributes, but the model has"):
        prepare(detector=str(broken))


def test_the_release_card_names_the_papers_pieces_and_scores_the_detector_beside_the_baseline(
    captioner_run, detector_run, tmp_path
):
    """``edgecap release`` of a semantic attention run: the card says which of You et al.'s
    pieces the model has and gives its detector's test mAP, P@k and R@k beside the frequency baseline."""
    import dataclasses

    from edgecap.release import _detector_scores, model_card_markdown
    from edgecap.runs import load_run

    cfg, _, _ = load_run(captioner_run)
    detector = _detector_scores(cfg, None, tmp_path / "no_previous.card.json")
    assert detector["run"] == str(detector_run) and detector["attributes"] == cfg.model.num_attributes
    assert 0 < detector["metrics"]["mAP"] <= 100 and set(detector["frequency_baseline"]) == set(detector["metrics"])
    metrics = dict.fromkeys(("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"), 1.0)
    card = {
        "name": "semantic_attention_flickr8k",
        "command": "",
        "version": "0",
        "model": dataclasses.asdict(cfg.model),
        "beam_size": 3,
        "length_penalty": 0.0,
        "results": {"keras float32": metrics},
        "sizes_mb": {},
        "verify": {},
        "bench_text": "",
        "detector": detector,
    }
    text = model_card_markdown(card)
    assert (
        "You et al. 2016 semantic attention" in text
        and "input attention φ (eq. 4–5) and output attention ψ" in text
        and "Xu et al.'s soft attention" not in text
    )
    k = detector["k"]
    rows = [line for line in text.splitlines() if line.startswith("| always the") or line.startswith("| noisy-OR")]
    assert len(rows) == 2 and rows[1].endswith(
        " | ".join(f"{detector['metrics'][m]:.1f}" for m in ("mAP", f"P@{k}", f"R@{k}")) + " |"
    )
    card["model"]["visual_attention"] = True
    assert "Xu et al.'s soft attention over the 7×7 grid" in model_card_markdown(card)
    assert "## Notes" not in model_card_markdown(card)  # the notes are the released form's (λ = 0)
    card["model"]["attention_regularization"] = 0.0
    soft = {"keras float32": dict(metrics, **{"BLEU-4": 19.75}), "tflite int8": dict(metrics, **{"BLEU-4": 19.79})}
    card["baseline"] = {"name": "show_attend_tell_flickr8k", "results": soft, "sizes_mb": {"int8": 7.44}}
    text = model_card_markdown(card)
    assert "no attention regulariser (λ = 0" in text and "## Notes (from the experiments, not from this run)" in text
    rows = [line for line in text.splitlines() if line.startswith("| `show_attend_tell_flickr8k`")]
    assert rows == [
        "| `show_attend_tell_flickr8k`, keras float32 (its card) | — | 1.00 | 1.00 | 1.00 | 19.75 | 1.00 | 1.00 | 1.00 | — | — | — | — |",
        "| `show_attend_tell_flickr8k`, tflite int8 (its card) | 7.44 | 1.00 | 1.00 | 1.00 | 19.79 | 1.00 | 1.00 | 1.00 | — | — | — | — |",
    ]


# --- the built-in semantic attention model -------------------------------------------------------
BUILT_IN = "semantic_attention_flickr8k"


def _built_in_file():
    from edgecap.runtime.presets import preset_names, preset_path

    if BUILT_IN not in preset_names():
        pytest.skip(f"{BUILT_IN} is not in export/")
    return preset_path(BUILT_IN)


def test_the_built_in_model_prints_captions_and_attributes_in_a_base_install(examples):
    """`edgecap caption --model semantic_attention_flickr8k --attributes --json examples/`, the
    runtime alone (TensorFlow never imported): a caption and its k attributes per photo, the
    attributes vocabulary words with their noisy-OR probabilities; the plain
    output prints them under each caption; the file's test scores are in its metadata."""
    import subprocess
    import sys

    from edgecap.runtime.presets import list_presets

    path = _built_in_file()
    preset = {p.name: p for p in list_presets()}[BUILT_IN]
    assert preset.task == "captioning" and {"BLEU-4", "METEOR", "CIDEr-D"} <= set(preset.scores)
    probe = (
        "import sys, runpy; sys.argv = ['edgecap', 'caption', '--model', 'semantic_attention_flickr8k', '--attributes', '--json', sys.argv[1]]\n"
        "try:\n    runpy.run_module('edgecap.cli', run_name='__main__')\n"
        "finally:\n    print('TF', 'tensorflow' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(examples)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "TF False" in out.stderr, out.stderr[-2000:]
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["image"].rsplit("/", 1)[-1] for r in records] == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg"]
    from edgecap.runtime import Captioner

    vocabulary = set(Captioner.from_file(path).metadata.vocabulary)
    for r in records:
        words, probs = [a["word"] for a in r["attributes"]], [a["probability"] for a in r["attributes"]]
        assert r["caption"] and r["error"] is None and len(words) == 10 and set(words) <= vocabulary, r
        assert all(0 < p < 1 for p in probs), r  # ranked by log-sum-exp of the cell logits, not by these
    plain = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgecap.cli",
            "caption",
            "--model",
            BUILT_IN,
            "--attributes",
            str(examples / "chelsea.jpg"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plain.returncode == 0 and "    attributes: " in plain.stdout, plain.stderr[-2000:]


@pytest.mark.skipif(not HAVE_SHARED, reason="needs Flickr8k test photos in ../shared")
def test_the_built_in_models_attributes_are_in_flickr8k_test_captions_more_than_a_constant_guess():
    """On 50 test photos, the file's top-10 attributes are words of the photo's own captions more
    often than the 10 attributes it names most often overall, given to every photo."""
    from collections import Counter

    from edgecap.data.readers import read_flickr8k
    from edgecap.runtime import Captioner, CaptionerOptions
    from edgecap.runtime.vocabulary import tokenize

    from conftest import FLICKR

    captioner = Captioner.from_file(_built_in_file(), CaptionerOptions(beam_size=1))
    items = read_flickr8k(FLICKR, ("test",))["test"][:50]
    truth = [{w for c in it.captions for w in tokenize(c)} for it in items]
    found = [[w for w, _ in captioner.caption(it.path).attributes] for it in items]
    constant = [w for w, _ in Counter(w for ws in found for w in ws).most_common(10)]

    def precision(guesses):
        return np.mean([len(set(g) & t) / len(g) for g, t in zip(guesses, truth)])

    assert precision(found) > precision([constant] * len(items)), (precision(found), precision([constant] * len(items)))
