"""Time one teacher-forced training step of the semantic attention captioner with and without
XLA (``train.jit_compile``), on random features, batch 64, one CPU thread: the figure behind
``jit_compile = false`` in ``edgecap/configs/semantic_attention_flickr8k.toml``.

    python scripts/train_step_time.py [--hidden-dim 512] [--visual-attention]

Compare the two lines of one run only (the CPU changes between machines and sessions).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def step_ms(
    jit: bool,
    hidden_dim: int,
    visual_attention: bool,
    vocab_size: int = 2538,
    batch: int = 64,
    words: int = 21,
    repeats: int = 5,
) -> float:
    import keras

    from edgecap.models.semantic_attention.config import SemanticAttentionConfig
    from edgecap.models.semantic_attention.model import SemanticAttention

    keras.utils.set_random_seed(0)
    model = SemanticAttention(
        vocab_size,
        SemanticAttentionConfig(encoder_weights="none", hidden_dim=hidden_dim, visual_attention=visual_attention),
    )
    model.build()
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        jit_compile=jit,
    )
    rng = np.random.default_rng(0)
    x = {
        "annotations": rng.normal(size=(batch, 49, 1280)).astype(np.float16),
        "captions": rng.integers(1, vocab_size, (batch, words + 1)).astype(np.int32),
    }
    for _ in range(3):  # compile and warm up
        model.train_on_batch(x, x["captions"][:, 1:])
    t0 = time.perf_counter()
    for _ in range(repeats):
        model.train_on_batch(x, x["captions"][:, 1:])
    return (time.perf_counter() - t0) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden-dim", type=int, default=512)
    parser.add_argument("--visual-attention", action="store_true")
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    for jit in (True, False):
        print(
            f"jit_compile={jit}: {step_ms(jit, args.hidden_dim, args.visual_attention):.0f} ms a training step (batch 64, 1 thread)"
        )


if __name__ == "__main__":
    main()
