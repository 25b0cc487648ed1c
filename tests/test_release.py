"""``edgecap release``'s pieces that need no full release run."""

import shutil

import numpy as np


def test_the_compressed_checkpoint_loads_the_same_weights_in_a_smaller_file(tiny_run, tmp_path):
    from edgecap.release import compress_weights
    from edgecap.training.trainer import BEST, CONFIG, VOCAB, load_run

    copy = tmp_path / "run"
    copy.mkdir()
    for file in (CONFIG, VOCAB):
        shutil.copy(tiny_run / file, copy / file)
    compress_weights(tiny_run / BEST, copy / BEST)
    assert (copy / BEST).stat().st_size < (tiny_run / BEST).stat().st_size
    (_, _, ours), (_, _, theirs) = load_run(copy), load_run(tiny_run)
    assert len(ours.weights) == len(theirs.weights) > 10
    for a, b in zip(ours.weights, theirs.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
