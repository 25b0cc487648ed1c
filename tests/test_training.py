"""Training on real data: the loss falls, checkpoints resume, MirroredStrategy runs, bad runs are refused."""

import json
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest

from edgecap.runs import RunError, load_run
from edgecap.training.trainer import train

from conftest import HAVE_SHARED, needs_shared, tiny_config


@needs_shared
def test_a_few_steps_lower_the_loss_on_real_data(tmp_path):
    from edgecap.data.pipeline import caption_dataset, encode_captions
    from edgecap.runs import build_model, load_split_features
    from edgecap.runtime.vocabulary import Vocabulary

    cfg = tiny_config(tmp_path, on_flickr=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        split = load_split_features(cfg, ("train",))["train"]
    vocab = Vocabulary.build((c for it in split.items for c in it.captions), 2)
    index, caps = encode_captions(split.items, vocab, 16)
    keras.utils.set_random_seed(0)
    model = build_model(cfg, len(vocab), encoder_weights="none")
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
    )
    fixed = next(iter(caption_dataset(split.features, index[:64], caps[:64], 64, shuffle=False)))
    before = model.evaluate(*fixed, verbose=0)
    model.fit(caption_dataset(split.features, index, caps, 16).repeat(), steps_per_epoch=40, epochs=1, verbose=0)
    after = model.evaluate(*fixed, verbose=0)
    assert after < before - 0.5, (before, after)


class Crash(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.params and getattr(self, "_epoch", 0) == 1:
            raise KeyboardInterrupt("killed mid-epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


def test_resume_after_a_crash_mid_epoch(tmp_path):
    run = tmp_path / "run"
    cfg = tiny_config(tmp_path, HAVE_SHARED, epochs=2, max_steps_per_epoch=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(KeyboardInterrupt):
            train(cfg, run, callbacks=[Crash()])
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert not list(run.glob("*.tmp*")) and not list(run.glob(".*"))  # nothing half-written
    first = load_run(run, "last.weights.h5")[2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, run)
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 2 and [h["epoch"] for h in state["history"]] == [1, 2]
    second = load_run(run, "last.weights.h5")[2]
    w1, w2 = first.decoder.lstm_hidden.kernel.numpy(), second.decoder.lstm_hidden.kernel.numpy()
    assert not np.allclose(w1, w2)  # epoch 2 trained from epoch 1's weights


def test_resume_refuses_a_changed_config(tiny_run):
    from edgecap.config import Config

    cfg = Config.load(tiny_run / "config.toml")
    cfg.train.learning_rate *= 2
    with pytest.raises(RunError, match="different configuration"):
        train(cfg, tiny_run)


def test_checkpoint_vocabulary_mismatch_names_the_files(tiny_run, tmp_path):
    import shutil

    from edgecap.runtime.vocabulary import Vocabulary

    bad = tmp_path / "bad_run"
    shutil.copytree(tiny_run, bad)
    Vocabulary(Vocabulary.load(bad / "vocab.json").words + ["zebra", "quokka"]).save(bad / "vocab.json")
    with pytest.raises(RunError, match="best.weights.h5.*vocab.json"):
        load_run(bad)
    with pytest.raises(RunError, match="missing"):
        load_run(tmp_path / "nothing")


def test_encoder_weights_of_the_wrong_shape(tmp_path):
    from edgecap.models.backbones import WeightsError, build_encoder

    wrong = tmp_path / "wrong.weights.h5"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save_weights(wrong)
    with pytest.raises(WeightsError, match="wrong.weights.h5"):
        build_encoder("mobilenet_v2", str(wrong))
    with pytest.raises(WeightsError, match="not found"):
        build_encoder("mobilenet_v2", str(tmp_path / "absent.weights.h5"))


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = textwrap.dedent(f"""
        import sys, warnings, json
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from conftest import tiny_config, HAVE_SHARED
        from edgecap.training import trainer
        seen = []
        orig = trainer._strategy
        trainer._strategy = lambda cfg: seen.append(orig(cfg)) or seen[-1]
        cfg = tiny_config(None, HAVE_SHARED, epochs=1, max_steps_per_epoch=3, distribute="mirrored")
        warnings.simplefilter("ignore")
        trainer.train(cfg, {str(tmp_path / "mirrored")!r})
        print("REPLICAS", seen[0].num_replicas_in_sync)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert "REPLICAS 2" in out.stdout, out.stderr[-3000:]
    assert json.loads((tmp_path / "mirrored" / "state.json").read_text())["epoch"] == 1


def test_horizontal_flip_trains_on_mirrored_features(tmp_path, monkeypatch):
    from edgecap.data import pipeline
    from edgecap.training import trainer

    given = {}

    def spy(*args, **kwargs):
        given.update(kwargs)
        return pipeline.caption_dataset(*args, **kwargs)

    monkeypatch.setattr(trainer, "caption_dataset", spy)
    cfg = tiny_config(tmp_path, HAVE_SHARED, epochs=1, max_steps_per_epoch=3)
    cfg.data.horizontal_flip = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, tmp_path / "run")
    plain = trainer.load_split_features(cfg, ("train",))["train"].features
    assert given["mirrored"].shape == plain.shape and not np.array_equal(given["mirrored"], plain)
    assert json.loads((tmp_path / "run" / "state.json").read_text())["epoch"] == 1


def test_weight_averaging_selects_and_saves_the_average(tmp_path):
    """Same seed, so the same raw trajectory: the EMA run's checkpoint lags it, staying nearer the start."""

    def run(name, **train_cfg):
        cfg = tiny_config(tmp_path, HAVE_SHARED, epochs=1, max_steps_per_epoch=6, **train_cfg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(cfg, tmp_path / name)
        return load_run(tmp_path / name)[2].decoder.lstm_hidden.kernel.numpy()

    start = run("frozen", learning_rate=0.0)
    raw = run("raw")
    averaged = run("ema", ema_momentum=0.9)
    assert not np.allclose(raw, start)
    assert 0 < np.linalg.norm(averaged - start) < np.linalg.norm(raw - start)


def test_selection_can_decode_dev_with_the_configured_beam_search(tmp_path, monkeypatch):
    from edgecap.config import ConfigError
    from edgecap.evaluation import cider_d
    from edgecap.models.keras_step import KerasStep, caption_features
    from edgecap.runs import load_split_features
    from edgecap.training import trainer

    decodings = []

    def spy(step, features, vocab, beam_size=1, length_penalty=0.0, max_length=20, no_repeat_ngram_size=0, **kw):
        decodings.append((beam_size, length_penalty, no_repeat_ngram_size))
        return caption_features(
            step,
            features,
            vocab,
            beam_size,
            length_penalty,
            max_length,
            no_repeat_ngram_size=no_repeat_ngram_size,
            **kw,
        )

    monkeypatch.setattr(trainer, "caption_features", spy)
    cfg = tiny_config(tmp_path, HAVE_SHARED, epochs=1, max_steps_per_epoch=4, selection_decoding="decode")
    cfg.decode.beam_size, cfg.decode.length_penalty, cfg.decode.no_repeat_ngram_size = 2, 0.5, 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, tmp_path / "run")
    _, vocab, model = load_run(tmp_path / "run")
    dev = load_split_features(cfg, ("dev",))["dev"]
    score = lambda **decoding: cider_d(
        dev.references,
        {
            it.image_id: " ".join(vocab.decode(h.tokens))
            for it, h in zip(
                dev.items,
                caption_features(KerasStep(model), dev.features, vocab, max_length=cfg.decode.max_length, **decoding),
            )
        },
    )
    recorded = json.loads((tmp_path / "run" / "state.json").read_text())["best_cider_d"]
    assert recorded == pytest.approx(score(beam_size=2, length_penalty=0.5, no_repeat_ngram_size=2), abs=1e-6)
    assert decodings == [(2, 0.5, 2)]  # the selection decoded with the [decode] section, not greedily
    cfg.train.selection_decoding = "beam"
    with pytest.raises(ConfigError, match="selection_decoding"):
        train(cfg, tmp_path / "bad")


def test_selection_with_extra_dev_sets_is_the_mean_of_each_sets_score(tmp_path, examples):
    """``data.extra_dev`` (coco_dev beside Flickr8k dev): the epoch's score is the mean of the
    dev sets' CIDEr-D, each recorded in the history; extra training photos train with the rest."""
    import shutil

    from edgecap.evaluation import cider_d
    from edgecap.models.keras_step import KerasStep, caption_features
    from edgecap.runs import load_split_features

    extra = tmp_path / "extra_dev"
    extra.mkdir()
    for photo in examples.glob("*.jpg"):
        shutil.copy(photo, extra / ("dev_" + photo.name))
    lines = (examples / "captions.txt").read_text().splitlines()
    (extra / "captions.txt").write_text("".join(f"dev_{line}\n" for line in lines if line.strip()))
    cfg = tiny_config(tmp_path, HAVE_SHARED, epochs=1, max_steps_per_epoch=3)
    cfg.data.extra_dev = cfg.data.extra_train = str(extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, tmp_path / "run")
    _, vocab, model = load_run(tmp_path / "run")
    data = load_split_features(cfg, ("train", "dev"), extra_dev=True)
    assert sum(it.image_id.startswith("dev_") for it in data["train"].items) == 3

    def score(dev):
        hyps = caption_features(KerasStep(model), dev.features, vocab, max_length=cfg.decode.max_length)
        return cider_d(
            dev.references, {it.image_id: " ".join(vocab.decode(h.tokens)) for it, h in zip(dev.items, hyps)}
        )

    state = json.loads((tmp_path / "run" / "state.json").read_text())
    epoch = state["history"][-1]
    assert epoch["dev_cider_d"] == pytest.approx(score(data["dev"]), abs=1e-6)
    assert epoch["dev:extra_dev_cider_d"] == pytest.approx(score(data["dev:extra_dev"]), abs=1e-6)
    assert state["best_cider_d"] == pytest.approx((epoch["dev_cider_d"] + epoch["dev:extra_dev_cider_d"]) / 2)


def test_fine_tune_from_trains_the_top_of_the_encoder_only(tmp_path):
    """Same seed with and without learning: just the layers from block_16_expand on move, and the
    exported path (the whole encoder on pixels) sees them as training did (cached grid + annotate)."""
    from edgecap.models.backbones import encoder_head_layers, encoder_stem
    from edgecap.runs import load_split_features
    from edgecap.runtime.preprocessing import load_image

    def run(name, lr):
        cfg = tiny_config(tmp_path, HAVE_SHARED, epochs=1, max_steps_per_epoch=4, learning_rate=lr)
        cfg.model.fine_tune_from = "block_16_expand"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(cfg, tmp_path / name)
        return cfg, load_run(tmp_path / name)[2]

    _, still = run("still", 0.0)
    cfg, tuned = run("tuned", 3e-3)
    before = {v.path: v.numpy() for v in still.encoder.weights}
    moved = {v.path for v in tuned.encoder.weights if not np.array_equal(v.numpy(), before[v.path])}
    head = {v.path for layer in encoder_head_layers(tuned.encoder, "block_16_expand") for v in layer.trainable_weights}
    assert moved and moved <= head and any("Conv_1/kernel" in p for p in moved)

    dev = load_split_features(cfg, ("dev",))["dev"]
    assert dev.features.shape[1:] == (7, 7, 160)  # the cache holds the frozen layers' output
    pixels = np.stack([load_image(it.path, 224) for it in dev.items[:4]])  # (4, 224, 224, 3) uint8
    np.testing.assert_allclose(
        encoder_stem(tuned.encoder, "block_16_expand")(pixels).numpy(), dev.features[:4], rtol=1e-2, atol=1e-2
    )  # float16 cache
    whole = tuned.encoder(pixels).numpy()  # what export writes
    np.testing.assert_allclose(
        tuned.annotate(np.asarray(dev.features[:4], np.float32)).numpy(), whole, rtol=1e-2, atol=1e-2
    )


@pytest.mark.parametrize("layer, why", [("block_99_expand", "not a layer"), ("block_15_expand", "cannot split")])
def test_fine_tune_from_refuses_a_layer_it_cannot_split_at(layer, why):
    from edgecap.models.backbones import build_encoder, encoder_head_layers

    with pytest.raises(ValueError, match=why):
        encoder_head_layers(build_encoder("mobilenet_v2", "none"), layer)


def test_encoder_weights_may_name_a_run(tmp_path):
    """``model.encoder_weights`` = a run directory: its encoder, fine-tuned top included, written once
    as a backbone weights file that build_encoder loads."""
    from edgecap.models.backbones import build_encoder
    from edgecap.paths import released_dir
    from edgecap.runs import run_encoder_weights

    cache = tmp_path / "cache"
    path = run_encoder_weights(str(released_dir()), "mobilenet_v2", cache)
    assert run_encoder_weights(str(released_dir()), "mobilenet_v2", cache) == path  # written once
    assert len(list((cache / "encoders").iterdir())) == 1
    encoder, captioner = build_encoder("mobilenet_v2", path), load_run(released_dir())[2]
    assert len(encoder.weights) == len(captioner.encoder.weights) == 260
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(encoder.weights, captioner.encoder.weights))
    (tmp_path / "not_a_run").mkdir()
    with pytest.raises(RunError, match="not an edgecap run"):
        run_encoder_weights(str(tmp_path / "not_a_run"), "mobilenet_v2", cache)


def test_a_tag_conditioned_model_continues_a_run_without_tags(tiny_run, tmp_path):
    """``train.init_from`` a run without tag inputs: every weight it has is copied by name, the
    tag weights start afresh; one tagged training step then runs on the tagger's real tags."""
    from edgecap.runs import build_model
    from edgecap.training.trainer import warm_start

    source_cfg, vocab, source = load_run(tiny_run)
    cfg = tiny_config(tmp_path, HAVE_SHARED, epochs=1, max_steps_per_epoch=2, init_from=str(tiny_run))
    cfg.model.tag_slots = 3
    model = build_model(cfg, len(vocab), encoder_weights="none")
    fresh = model.decoder.tag_projection.kernel.numpy().copy()
    warm_start(model, tiny_run, len(vocab))
    np.testing.assert_array_equal(model.decoder.lstm_hidden.kernel.numpy(), source.decoder.lstm_hidden.kernel.numpy())
    np.testing.assert_array_equal(
        model.decoder.embedding.embeddings.numpy(), source.decoder.embedding.embeddings.numpy()
    )
    np.testing.assert_array_equal(model.decoder.tag_projection.kernel.numpy(), fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, tmp_path / "tagged")
    state = json.loads((tmp_path / "tagged" / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [0, 1]  # the starting weights scored, then one epoch
    assert load_run(tmp_path / "tagged")[2].step_contract().tags.size == 3
