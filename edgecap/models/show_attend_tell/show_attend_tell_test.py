"""Show, Attend and Tell: the step contract, memory shared by beams, export with its weights,
and hard attention's sampling and REINFORCE on real steps."""

import warnings

import keras
import numpy as np
import pytest

from edgecap.models.show_attend_tell.config import ShowAttendTellConfig
from edgecap.models.show_attend_tell.model import ShowAttendTell
from edgecap.runtime import Captioner
from edgecap.runtime.vocabulary import Vocabulary

from conftest import HAVE_SHARED, tiny_config


def _tiny(vocab_size, seed=0, **kw) -> ShowAttendTell:
    keras.utils.set_random_seed(seed)
    model = ShowAttendTell(
        vocab_size,
        ShowAttendTellConfig(encoder_weights="none", embedding_dim=16, hidden_dim=24, attention_dim=16, **kw),
    )
    model.build()
    return model


def _annotations(batch, seed=0):
    return (
        np.random.default_rng(seed).uniform(0, 6, (batch, 49, 1280)).astype(np.float32)
    )  # ReLU6-range annotation vectors


def test_the_step_reads_one_shared_memory_row_like_b_repeated_rows():
    model = _tiny(12, projection_dim=8)
    state, memory = model.split(model.start(_annotations(1)))
    assert memory["features"].shape == (1, 49, 8) and memory["keys"].shape == (1, 49, 16)
    tokens = np.array([1, 4, 5], np.int32)
    state3 = {n: np.repeat(v.numpy(), 3, 0) for n, v in state.items()}
    shared = model.decode_step(tokens, state3, memory)
    repeated = model.decode_step(tokens, state3, {n: np.repeat(np.asarray(v), 3, 0) for n, v in memory.items()})
    np.testing.assert_allclose(shared[0].numpy(), repeated[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(shared[2].numpy(), repeated[2].numpy(), atol=1e-7)
    with pytest.raises(ValueError, match="attention"):
        ShowAttendTell(12, ShowAttendTellConfig(encoder_weights="none", attention="stochastic"))


@pytest.mark.parametrize("projection_dim", [0, 24])
def test_decode_step_exports_with_its_weights(tmp_path, projection_dim):
    """The paper's decoder (projection 0) and the factorised one (P a_i) both convert with their weights."""
    from edgecap.export.exporter import export_model

    vocab = Vocabulary.build(["a dog runs", "a cat sits", "two dogs play"], 1)
    model = _tiny(len(vocab), projection_dim, projection_dim=projection_dim)
    assert (model.decoder.projection is not None) == bool(projection_dim)
    captioner = Captioner.from_file(export_model(model, vocab, tmp_path / "m.tflite", "float32"))
    state, memory = model.split(model.start(_annotations(1)))
    tokens = np.array([vocab.start_id, 4], np.int32)
    rng = np.random.default_rng(1)
    h, c = (rng.normal(size=(2, 24)).astype(np.float32) for _ in range(2))
    k_lp, k_state, k_alpha = model.decode_step(tokens, {"h": h, "c": c}, memory)
    out = captioner.step_signature.run(
        {"tokens": tokens, "h": h, "c": c, **{n: np.asarray(v) for n, v in memory.items()}}
    )
    np.testing.assert_allclose(out["log_probs"], k_lp.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(out["alpha"], k_alpha.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(out["c"], k_state["c"].numpy(), atol=1e-4, rtol=0)


def test_hard_attention_argmax_decoding_attends_one_location():
    model = _tiny(12, attention="hard", hard_decoding="argmax")
    state, memory = model.split(model.start(_annotations(2)))
    _, _, location = model.decode_step(np.array([1, 1], np.int32), state, memory)
    location = location.numpy()
    assert (
        location.shape == (2, 49) and np.allclose(location.max(axis=1), 1.0) and np.allclose(location.sum(axis=1), 1.0)
    )
    expected = _tiny(12, attention="hard")  # same seed, same weights: expected context = soft attention's α
    _, _, alpha = expected.decode_step(np.array([1, 1], np.int32), *expected.split(expected.start(_annotations(2))))
    assert (alpha.numpy() < 1.0).all() and location.argmax(axis=1).tolist() == alpha.numpy().argmax(axis=1).tolist()


def test_hard_attention_samples_locations_and_reinforce_lowers_the_loss(tmp_path):
    """A few real REINFORCE steps (Xu et al. eq. 12) on real features: the caption loss falls, the baseline moves."""
    from edgecap.data.pipeline import caption_dataset, encode_captions
    from edgecap.runs import build_model, load_split_features

    cfg = tiny_config(tmp_path, HAVE_SHARED)
    cfg.model.attention, cfg.model.expected_context_prob = "hard", 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        split = load_split_features(cfg, ("train",))["train"]
    vocab = Vocabulary.build((c for it in split.items for c in it.captions), 1)
    index, caps = encode_captions(split.items, vocab, 16)
    keras.utils.set_random_seed(0)
    model = build_model(cfg, len(vocab), encoder_weights="none")
    nll = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=nll)
    features, targets = next(iter(caption_dataset(split.features, index[:32], caps[:32], 32, shuffle=False)))

    # sampling: one location per word for the sampled images, the same α for the expected ones
    model(features, training=True)
    reinforce = model.losses[0].numpy()
    assert np.isfinite(reinforce) and float(model.baseline_updates.numpy()) == 1.0

    def caption_loss():  # teacher forcing with the expected context (evaluation mode)
        return float(nll(targets, model(features, training=False)))

    before, baseline_before = caption_loss(), float(model.baseline.numpy())
    model.fit(caption_dataset(split.features, index, caps, 8, seed=1).repeat(), steps_per_epoch=25, epochs=1, verbose=0)
    assert caption_loss() < before - 0.3, (before, caption_loss())
    assert float(model.baseline.numpy()) != baseline_before and float(model.baseline.numpy()) < 0  # a log-likelihood


def test_tags_are_attended_beside_the_image_and_an_empty_slot_weighs_nothing():
    """With ``tag_slots`` the step attends the tags' rows with the image's: a real tag changes
    the words' log-probabilities, an empty slot (id 0, score 0) next to none; the attention
    returned is over the image locations only, summing to 1."""
    model = _tiny(12, projection_dim=8, tag_slots=3)
    assert float(model.decoder.tag_bias.numpy()) == -2.0  # a continued model starts out on the image
    model.decoder.tag_bias.assign(3.0)  # as training may raise it
    contract = model.step_contract()
    assert contract.tag_names == ("tag_ids", "tag_scores") and "tag_ids" not in contract.encode_names
    tensors = model.start(_annotations(1))
    none = model.split(tensors)
    one = model.split(
        {**tensors, "tag_ids": np.array([[5, 0, 0]], np.int32), "tag_scores": np.array([[0.9, 0, 0]], np.float32)}
    )
    empty = model.split(
        {**tensors, "tag_ids": np.array([[7, 0, 0]], np.int32), "tag_scores": np.zeros((1, 3), np.float32)}
    )
    tokens = np.array([1], np.int32)
    lp_none, _, alpha = model.decode_step(tokens, *none)
    lp_one = model.decode_step(tokens, *one)[0]
    lp_empty = model.decode_step(tokens, *empty)[0]
    assert alpha.shape == (1, 49) and abs(float(np.sum(alpha)) - 1.0) < 1e-3  # no tag: (nearly) all on the image
    assert float(np.sum(model.decode_step(tokens, *one)[2])) < 0.99  # a tag takes some of the weight
    assert float(np.abs(lp_one - lp_none).max()) > 1e-3
    assert float(np.abs(lp_empty - lp_none).max()) < float(np.abs(lp_one - lp_none).max()) / 100
    with pytest.raises(ValueError, match="tag_slots"):
        ShowAttendTell(12, ShowAttendTellConfig(encoder_weights="none", attention="hard", tag_slots=2))


def test_a_tag_conditioned_model_exports_verifies_and_captions_with_the_runtimes_tags(tmp_path, examples):
    """The file's step takes the tags as memory the runtime fills from its tagger (not from
    ``encode``); verified against Keras given the same tags; a photo's caption with the
    detector's tags is what the step gives for the runtime's own tag inputs."""
    from edgecap.export.exporter import export_model
    from edgecap.export.verify import verify_export
    from edgecap.runtime import CaptionerOptions
    from edgecap.runtime.tag_inputs import tag_input_arrays

    vocab = Vocabulary.build(["a cat on a bed", "a cup on a table", "a person with a phone"], 1)
    model = _tiny(len(vocab), 3, projection_dim=8, tag_slots=3)
    path = export_model(model, vocab, tmp_path / "tagged.tflite", "float32")
    captioner = Captioner.from_file(path, CaptionerOptions(taggers=("coco_detector",), beam_size=2, constrain=False))
    assert captioner.contract.tags.tagger == "coco_detector" and captioner.contract.tags.size == 3
    photo = examples / "chelsea.jpg"
    tags = captioner.tag(photo)
    inputs = captioner.tag_memory(tags)
    assert inputs["tag_ids"][0, 0] == vocab.id_of("cat")  # the detector's best tag, in the vocabulary
    assert inputs == {} or set(inputs) == {"tag_ids", "tag_scores"}
    np.testing.assert_array_equal(
        inputs["tag_ids"], tag_input_arrays(tags, captioner.contract.tags, captioner.word_index)["tag_ids"]
    )
    with_tags = captioner.caption(photo)
    state, memory = captioner.encode(captioner.preprocess(photo), tags)
    assert [h.tokens for h in captioner.search(state, memory)] == [c.token_ids for c in with_tags.nbest][:1]
    report = verify_export(
        model,
        captioner,
        [photo, examples / "coffee.jpg"],
        [["a cat"], ["a cup"]],
        "float32",
        tags=[captioner.tag_memory(captioner.tag(p)) for p in (photo, examples / "coffee.jpg")],
    )
    assert report.passed, report.summary()
    bare = Captioner.from_file(path, CaptionerOptions(taggers=(), beam_size=2))  # no tagger: empty slots
    state, memory = bare.encode(bare.preprocess(photo))
    assert memory["tag_ids"].tolist() == [[0, 0, 0]]
