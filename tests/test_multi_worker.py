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
    from edgecap.training.trainer import train

    config, run_dir, weights_dir, crash = sys.argv[1:5]
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]

    class Worker(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if crash == "1" and epoch == 1:
                raise SystemExit(3)  # killed between the two epochs
        def on_train_end(self, logs=None):
            np.save(f"{weights_dir}/w{index}.npy", np.concatenate([np.ravel(w) for w in self.model.get_weights()]))

    train(Config.load(config), run_dir, callbacks=[Worker()])
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
