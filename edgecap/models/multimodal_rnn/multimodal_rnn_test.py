"""The multimodal RNN: the image enters at the first step only, and the model trains, exports
and captions through the same contract and runtime (state only: no memory, no attention)."""

import keras
import numpy as np
import pytest

from edgecap.models.multimodal_rnn.config import MultimodalRNNConfig
from edgecap.models.multimodal_rnn.model import MultimodalRNN
from edgecap.runtime import Captioner
from edgecap.runtime.vocabulary import Vocabulary


def _tiny(vocab_size, cell="rnn", seed=0) -> MultimodalRNN:
    keras.utils.set_random_seed(seed)
    model = MultimodalRNN(
        vocab_size, MultimodalRNNConfig(encoder_weights="none", embedding_dim=16, hidden_dim=24, cell=cell)
    )
    model.build()
    return model


def _annotations(batch, seed=0):
    return np.random.default_rng(seed).uniform(0, 6, (batch, 49, 1280)).astype(np.float32)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_the_image_enters_at_the_first_step_only(cell):
    """Karpathy & Fei-Fei eq. 13: two photos give different first words' distributions; with the
    same state after step 1 (the bias spent), the photo no longer matters."""
    model = _tiny(12, cell)
    state, memory = model.split(model.start(_annotations(2)))
    assert memory == {} and model.step_contract().attention is None
    tokens = np.array([1, 1], np.int32)
    lp1, state1, _ = model.decode_step(tokens, state, memory)
    assert not np.allclose(lp1[0].numpy(), lp1[1].numpy(), atol=1e-4)
    assert np.all(state1["image_bias"].numpy() == 0)
    same = {n: np.repeat(v.numpy()[:1], 2, 0) for n, v in state1.items()}  # row 0's state for both
    lp2, _, _ = model.decode_step(np.array([4, 4], np.int32), same, memory)
    np.testing.assert_allclose(lp2[0].numpy(), lp2[1].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="cell"):
        MultimodalRNN(12, MultimodalRNNConfig(encoder_weights="none", cell="gru"))


def test_exports_with_its_weights_and_captions_through_the_runtime(tmp_path, examples):
    from edgecap.export.exporter import export_model

    vocab = Vocabulary.build(["a dog runs", "a cat sits", "two dogs play"], 1)
    model = _tiny(len(vocab), "lstm")
    captioner = Captioner.from_file(
        export_model(
            model, vocab, tmp_path / "m.tflite", "float32", name="multimodal_rnn_test", architecture="multimodal_rnn"
        )
    )
    assert captioner.contract.memory_names == () and captioner.contract.state_names == ("h", "c", "image_bias")
    pixels = captioner.preprocess(examples / "chelsea.jpg")
    k_state = model.encode(pixels)
    state, memory = captioner.encode(pixels)
    np.testing.assert_allclose(state[2], k_state["image_bias"].numpy(), atol=1e-4, rtol=1e-4)
    result = captioner.caption(examples / "chelsea.jpg")
    assert (
        result.tokens
        and all(t in vocab.words for t in result.tokens)
        and result.attention.shape == (len(result.tokens), 0)
    )
