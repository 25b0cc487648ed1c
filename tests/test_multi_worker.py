"""Two training workers on this machine (127.0.0.1, free ports) under train.distribute =
"multi_worker": they end with identical weights, only the chief writes the run, and a run
killed between epochs resumes on both."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import HAVE_SHARED, tiny_config

REPO = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import json, os, sys
    import keras
    import numpy as np
    from edgecap.config import Config
    from edgecap.models import registry

    config, run_dir, weights_dir, crash = sys.argv[1:5]
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]

    class Worker(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if crash == "1" and epoch == 1:
                raise SystemExit(3)  # killed between the two epochs
        def on_train_end(self, logs=None):
            np.save(f"{weights_dir}/w{index}.npy", np.concatenate([np.ravel(w) for w in self.model.get_weights()]))

    cfg = Config.load(config)
    registry.task_of(cfg.model.architecture).stage("train")(cfg, run_dir, callbacks=[Worker()])  # its task's trainer
""")


def _run_workers(config, run, tmp_path, crash: bool) -> subprocess.CompletedProcess:
    """Two workers started by scripts/local_workers.py, as a cluster starts them."""
    command = [sys.executable, "-c", WORKER, str(config), str(run), str(tmp_path), "1" if crash else "0"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TQDM_DISABLE": "1"}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "local_workers.py"), "2", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not HAVE_SHARED, reason="runs once in CI: in the pass with ../shared (it trains on its Flickr8k slice)"
)
def test_two_workers_end_identical_and_a_killed_run_resumes(tmp_path):
    cfg = tiny_config(tmp_path, HAVE_SHARED, epochs=2, max_steps_per_epoch=3, batch_size=8, distribute="multi_worker")
    config = tmp_path / "config.toml"
    cfg.save(config)
    run = tmp_path / "run"

    killed = _run_workers(config, run, tmp_path, crash=True)
    assert killed.returncode == 3 and "exit statuses [3, 3]" in killed.stdout, killed.stdout[-5000:]
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 1 and (run / "last.weights.h5").is_file()

    resumed = _run_workers(config, run, tmp_path, crash=False)
    assert resumed.returncode == 0, resumed.stdout[-5000:]
    for index in (0, 1):
        assert f"[worker {index}] resuming {run} after epoch 1" in resumed.stdout
    first, second = np.load(tmp_path / "w0.npy"), np.load(tmp_path / "w1.npy")
    np.testing.assert_array_equal(first, second)
    assert json.loads((run / "state.json").read_text())["epoch"] == 2
    assert not list(run.glob(".*tmp*"))  # one writer: no temporary left behind


@pytest.mark.slow
@pytest.mark.skipif(
    not HAVE_SHARED, reason="runs once in CI: in the pass with ../shared (it trains on its Flickr8k slice)"
)
@pytest.mark.parametrize("trainer", ["self_critical", "ranking", "attributes"])
def test_the_other_trainers_end_identical_on_two_workers(trainer, tiny_run, tmp_path):
    from edgecap.models.alignment.config import AlignmentConfig
    from edgecap.models.semantic_attention.config import AttributeDetectorConfig

    if trainer == "self_critical":
        cfg = tiny_config(tmp_path, HAVE_SHARED, epochs=1, max_steps_per_epoch=2, batch_size=4, objective="self_critical",
                          init_from=str(tiny_run), num_samples=3, distribute="multi_worker")  # fmt: skip
    else:
        cfg = tiny_config(tmp_path, HAVE_SHARED, epochs=1, max_steps_per_epoch=3, distribute="multi_worker")
        weights = cfg.model.encoder_weights
        cfg.model = (
            AlignmentConfig(encoder_weights=weights, embedding_dim=16, hidden_dim=24, max_words=12)
            if trainer == "ranking"
            else AttributeDetectorConfig(encoder_weights=weights, num_attributes=16, hidden_dim=32)
        )
    config = tmp_path / "config.toml"
    cfg.save(config)
    done = _run_workers(config, tmp_path / "run", tmp_path, crash=False)
    assert done.returncode == 0, done.stdout[-5000:]
    np.testing.assert_array_equal(np.load(tmp_path / "w0.npy"), np.load(tmp_path / "w1.npy"))
    assert json.loads((tmp_path / "run" / "state.json").read_text())["epoch"] == 1
