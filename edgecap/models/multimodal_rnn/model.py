"""The multimodal RNN generator behind the step contract.

Karpathy & Fei-Fei, "Deep Visual-Semantic Alignments for Generating Image Descriptions"
(CVPR 2015), §3.2, eq. 13:

    b_v = W_hi CNN(I)
    h_t = f(W_hx x_t + W_hh h_{t-1} + b_h + 𝟙(t = 1) ⊙ b_v)
    y_t = softmax(W_oh h_t + b_o)

with f = ReLU, h_0 = 0 and x_1 the ``<start>`` word. The image vector is the mean of the
encoder's annotation grid (MobileNetV2's global average pool; the paper used VGG's fc7).

In the step contract the image bias ``b_v`` is a *state* tensor, ``image_bias``: ``start`` sets it,
the step adds it and returns it zeroed, so only the first step sees it and every step is the
same graph. There is no memory and no attention. With ``cell="lstm"`` the recurrence is an
LSTM whose gate pre-activations get ``b_v`` at the first step (state ``h``, ``c``, ``image_bias``).
Every sum of projections uses one Dense per input, so that full-integer quantization gives
each input its own scale.
"""

from __future__ import annotations

import keras
from keras import ops

from edgecap.models.base import StepwiseCaptioner
from edgecap.models.multimodal_rnn.config import MultimodalRNNConfig
from edgecap.runtime.contract import StepContract, TensorDecl


class MultimodalRNN(StepwiseCaptioner):
    """Karpathy & Fei-Fei's generator.

    Step contract: state ``h (H,)`` [, ``c (H,)``], ``image_bias (G,)`` with G = H for the ReLU RNN and
    4H for the LSTM; no memory; no attention.

    Args:
        vocab_size: V.
        config: the ``[model]`` section (:class:`MultimodalRNNConfig`).
        encoder_weights: overrides ``config.encoder_weights``.

    Raises:
        ValueError: unknown backbone, a ``fine_tune_from`` that cannot split it, or a bad config value.
    """

    def __init__(
        self, vocab_size: int, config: MultimodalRNNConfig | None = None, encoder_weights: str | None = None, **kwargs
    ):
        config, encoder = self.checked(config or MultimodalRNNConfig(), encoder_weights)
        super().__init__(vocab_size, **encoder, **kwargs)
        self.config = config
        H, m = config.hidden_dim, config.embedding_dim
        self.lstm = config.cell == "lstm"
        G = 4 * H if self.lstm else H
        dense = keras.layers.Dense
        self.embedding = keras.layers.Embedding(vocab_size, m, name="embedding")  # x_t = W_w I_t
        self.image_bias = dense(G, name="image_bias")  # b_v = W_hi CNN(I)
        self.input_proj = dense(G, name="input_proj")  # W_hx x_t + b_h
        self.hidden_proj = dense(G, use_bias=False, name="hidden_proj")  # W_hh h_{t-1}
        self.out_words = dense(vocab_size, name="out_words", dtype="float32")  # W_oh h_t + b_o
        self.drop = keras.layers.Dropout(config.dropout)

    def step_contract(self) -> StepContract:
        H = self.config.hidden_dim
        G = 4 * H if self.lstm else H
        state = [TensorDecl("h", (H,), "state")] + ([TensorDecl("c", (H,), "state")] if self.lstm else [])
        return StepContract(tuple(state + [TensorDecl("image_bias", (G,), "state")]), None)

    def start(self, annotations, training: bool = False) -> dict:
        v = ops.mean(ops.cast(annotations, self.compute_dtype), axis=1)  # (B, D) whole-image vector
        b_v = self.image_bias(v)  # (B, G)
        h = ops.zeros((ops.shape(b_v)[0], self.config.hidden_dim), b_v.dtype)  # h_0 = 0  (B, H)
        return {"h": h, "c": h, "image_bias": b_v} if self.lstm else {"h": h, "image_bias": b_v}

    def step(self, tokens, state: dict, memory: dict, training: bool = False):
        x = self.drop(self.embedding(tokens), training=training)  # (B, m)
        pre = self.input_proj(x) + self.hidden_proj(state["h"]) + state["image_bias"]  # (B, G)
        if self.lstm:
            i, f, g, o = ops.split(pre, 4, axis=-1)
            c = ops.sigmoid(f) * state["c"] + ops.sigmoid(i) * ops.tanh(g)
            h = ops.sigmoid(o) * ops.tanh(c)
            new = {"h": h, "c": c}
        else:
            h = ops.relu(pre)  # eq. 13, f = ReLU
            new = {"h": h}
        new["image_bias"] = state["image_bias"] * 0.0  # 𝟙(t = 1): the image bias is spent
        logits = self.out_words(self.drop(h, training=training))  # (B, V)
        return logits, new, None


def build(
    model_config: MultimodalRNNConfig, vocab_size: int, encoder_weights: str | None = None, train_config=None
) -> MultimodalRNN:
    """The registry's builder: a built :class:`MultimodalRNN`."""
    model = MultimodalRNN(vocab_size, model_config, encoder_weights)
    model.build()
    return model
