"""Self-critical sequence training: the reward is pycocoevalcap's CIDEr-D, the baseline is
leave-one-out, and SCST steps raise the model's own reward; runs start from a trained run."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from edgecap.config import ConfigError
from edgecap.evaluation import cider_d
from edgecap.runs import RunError, load_run
from edgecap.training.self_critical import CorpusCiderD, leave_one_out_advantage, self_critical
from edgecap.training.trainer import train

from conftest import HAVE_SHARED, tiny_config
from test_metrics import BAD, GOOD, REFS


def test_corpus_reward_is_pycocoevalcaps_cider_d_when_the_corpus_is_the_scored_set():
    ids = sorted(REFS)
    reward = CorpusCiderD([REFS[k] for k in ids])
    for hyps in (GOOD, BAD, {"1": "a dog", "2": "a man on a road", "3": "kids in the sand"}):
        per_image = reward([hyps[k] for k in ids], list(range(len(ids))))
        assert per_image.shape == (3,)
        assert 100 * per_image.mean() == pytest.approx(cider_d(REFS, hyps), rel=1e-5)


def test_corpus_reward_keeps_the_corpus_idf_for_a_batch():
    ids = sorted(REFS)
    reward = CorpusCiderD([REFS[k] for k in ids])
    whole = reward([GOOD[k] for k in ids], [0, 1, 2])
    alone = reward([GOOD["2"]], [1])  # idf from the 3-image corpus, not from this one image
    assert alone[0] == pytest.approx(whole[1])
    with pytest.raises(ValueError, match="candidates"):
        reward(["a dog"], [0, 1])
    with pytest.raises(ValueError, match="reference"):
        CorpusCiderD([["a dog"], []])


def test_leave_one_out_advantage():
    rewards = tf.constant([1.0, 2.0, 3.0, 0.0, 0.0, 6.0])  # two images, three samples each
    adv = leave_one_out_advantage(rewards, 3).numpy()
    np.testing.assert_allclose(adv, [1 - 2.5, 2 - 2.0, 3 - 1.5, 0 - 3.0, 0 - 3.0, 6 - 0.0])
    with pytest.raises(ValueError, match="at least 2"):
        leave_one_out_advantage(rewards, 1)


def _expected_reward(model, features, index, samples=64):
    """Mean CIDEr-D reward of many sampled captions per image (a Monte Carlo E[r])."""
    k = model.num_samples
    model.num_samples = samples
    try:
        caps = model.sample(tf.constant(features[index], tf.float32)).numpy()
        return float(model._rewards(caps, np.asarray(index)).mean())
    finally:
        model.num_samples = k


def test_scst_steps_raise_the_expected_reward(tiny_run):
    """A few policy-gradient steps on 8 training images raise E[CIDEr-D] of the model's samples."""
    import keras

    from edgecap.config import Config
    from edgecap.runs import build_model, load_split_features
    from edgecap.runtime.vocabulary import Vocabulary

    cfg = Config.load(tiny_run / "config.toml")
    vocab = Vocabulary.load(tiny_run / "vocab.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        split = load_split_features(cfg, ("train",))["train"]
    index = list(range(8))
    model = self_critical(build_model(cfg, len(vocab), encoder_weights="none"))
    model.load_weights(tiny_run / "best.weights.h5")
    model.configure_self_critical(
        vocab, CorpusCiderD([it.captions for it in split.items]), num_samples=8, max_length=12, seed=3
    )
    model.compile(optimizer=keras.optimizers.Adam(5e-3), jit_compile=False)
    before = _expected_reward(model, split.features, index)
    batch = (tf.constant(split.features[index]), tf.constant(index, tf.int32))
    for _ in range(25):
        logs = model.train_step(batch)
    assert np.isfinite(float(logs["loss"]))
    after = _expected_reward(model, split.features, index)
    assert after > before, (before, after)


def test_self_critical_run_starts_from_a_run_and_exports_like_one(tiny_run, tmp_path):
    run = tmp_path / "scst"
    cfg = tiny_config(
        tmp_path,
        HAVE_SHARED,
        epochs=1,
        max_steps_per_epoch=2,
        batch_size=4,
        objective="self_critical",
        init_from=str(tiny_run),
        num_samples=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, run)
    history = json.loads((run / "state.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [0, 1] and 0.0 <= history[1]["reward"]  # 0: the starting weights
    assert (run / "vocab.json").read_text() == (tiny_run / "vocab.json").read_text()
    _, _, model = load_run(run)
    assert type(model).__name__ == "ShowAttendTell"  # same weights as a cross-entropy run


def test_self_critical_needs_a_matching_initial_run(tiny_run, tmp_path):
    cfg = tiny_config(tmp_path, HAVE_SHARED, objective="self_critical")
    with pytest.raises(ConfigError, match="init_from"):
        train(cfg, tmp_path / "a")
    cfg = tiny_config(tmp_path, HAVE_SHARED, objective="self_critical", init_from=str(tiny_run))
    cfg.model.hidden_dim += 8
    with pytest.raises(RunError, match=r"best.weights.h5.*same sizes"):
        train(cfg, tmp_path / "b")
    cfg = tiny_config(tmp_path, HAVE_SHARED, objective="policy_gradient")
    with pytest.raises(ConfigError, match="objective"):
        train(cfg, tmp_path / "c")


def test_self_critical_training_on_two_mirrored_replicas(tiny_run, tmp_path):
    """SCST under MirroredStrategy (two logical CPUs): each replica samples and scores its share
    of the images; the run trains and its history has the reward."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import sys, warnings
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from conftest import tiny_config, HAVE_SHARED
        from edgecap.training import trainer
        seen = []
        orig = trainer._strategy
        trainer._strategy = lambda cfg: seen.append(orig(cfg)) or seen[-1]
        cfg = tiny_config(None, HAVE_SHARED, epochs=1, max_steps_per_epoch=2, batch_size=4, objective="self_critical",
                          init_from={str(tiny_run)!r}, num_samples=3, distribute="mirrored")
        warnings.simplefilter("ignore")
        trainer.train(cfg, {str(tmp_path / "scst")!r})
        print("REPLICAS", seen[0].num_replicas_in_sync)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert "REPLICAS 2" in out.stdout, out.stderr[-3000:]
    history = json.loads((tmp_path / "scst" / "state.json").read_text())["history"]
    assert history[-1]["epoch"] == 1 and 0.0 <= history[-1]["reward"]
