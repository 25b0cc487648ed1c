"""The Keras side of the stepwise-decoder contract (:mod:`edgecap.runtime.contract`).

A captioner subclasses :class:`StepwiseCaptioner` and implements three methods:

- :meth:`~StepwiseCaptioner.step_contract`: its state and memory tensors (names, shapes) and
  its attention output;
- :meth:`~StepwiseCaptioner.start`: annotation vectors → a dict of every state and memory tensor;
- :meth:`~StepwiseCaptioner.step`: one word for B rows, ``(logits, new state, attention)``.

Everything else — ``encode`` and ``decode_step`` (the two exported signatures), teacher-forced
training, decoding during training and evaluation, export, calibration, verification — is
written once, against these three.
"""

from __future__ import annotations

import keras
from keras import ops

from edgecap.models.backbones import FineTunedEncoder, build_encoder, get_backbone
from edgecap.models.model_config import ModelConfig
from edgecap.runtime.contract import StepContract


class StepwiseCaptioner(FineTunedEncoder, keras.Model):
    """An encoder (frozen, or fine-tuned from a layer on) and a decoder written as one step.

    Args:
        vocab_size: V, output words including the 4 special tokens.
        backbone: encoder registry name (:mod:`edgecap.models.backbones`).
        encoder_weights: see :func:`edgecap.models.backbones.build_encoder`.
        fine_tune_from: first backbone layer trained with the decoder; ``""`` = frozen encoder.

    Raises:
        ValueError: unknown backbone, or a ``fine_tune_from`` that cannot split it.
    """

    def __init__(
        self,
        vocab_size: int,
        backbone: str = "mobilenet_v2",
        encoder_weights: str | None = "imagenet",
        fine_tune_from: str = "",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.spec = get_backbone(backbone)
        self.encoder = build_encoder(backbone, encoder_weights)
        self.encoder.trainable = False
        self.set_fine_tuning(fine_tune_from)

    @classmethod
    def checked(cls, config: ModelConfig, encoder_weights: str | None = None) -> tuple[ModelConfig, dict]:
        """A family's config, validated, and the encoder arguments it gives (``encoder_weights``
        overrides the config's).

        Raises:
            ValueError: every problem :meth:`ModelConfig.validate` finds, in one message.
        """
        problems = config.validate()
        if problems:
            raise ValueError("; ".join(problems))
        weights = config.encoder_weights if encoder_weights is None else encoder_weights
        return config, {
            "backbone": config.backbone,
            "encoder_weights": weights,
            "fine_tune_from": config.fine_tune_from,
        }

    # --- what a family implements --------------------------------------------------------------
    def step_contract(self) -> StepContract:
        """The state and memory tensors :meth:`start` returns and :meth:`step` carries."""
        raise NotImplementedError

    def start(self, annotations, training: bool = False) -> dict:
        """Annotation vectors ``float32 (B, L, D)`` → every state and memory tensor, ``(B, *shape)``."""
        raise NotImplementedError

    def step(self, tokens, state: dict, memory: dict, training: bool = False):
        """One word: ``tokens int32 (B,)`` → ``(logits float (B, V), new state dict, attention (B, n) or None)``.

        Memory tensors may have 1 row (shared by B beams) or B rows.
        """
        raise NotImplementedError

    def prepare(self, vocab) -> None:
        """What a new run's model takes from outside its own checkpoint before training starts
        (semantic attention: its trained attribute detector). Not called when a run resumes
        or is loaded: the checkpoint holds it then. Most families need nothing."""

    # --- written once ---------------------------------------------------------------------------
    def build(self, input_shape=None) -> None:
        """Create every variable (call before loading weights)."""
        tensors = self.start(ops.zeros((1, self.spec.num_locations, self.spec.dim)))
        self.step(ops.zeros((1,), "int32"), *self.split(tensors))
        self.built = True

    def split(self, tensors: dict) -> tuple[dict, dict]:
        """``(state, memory)`` of a dict holding both. A contract's tag tensors missing from
        ``tensors`` are no tags (ids 0, scores 0), one row per row of the other memory."""
        c = self.step_contract()
        memory = {n: tensors[n] for n in c.encoded_memory_names}
        if c.tags is not None:
            rows = ops.shape(next(iter(memory.values())))[0]
            memory[c.tags.ids] = (
                ops.cast(tensors[c.tags.ids], "int32")
                if c.tags.ids in tensors
                else ops.zeros((rows, c.tags.size), "int32")
            )
            memory[c.tags.scores] = (
                ops.cast(tensors[c.tags.scores], "float32")
                if c.tags.scores in tensors
                else ops.zeros((rows, c.tags.size), "float32")
            )
        return {n: tensors[n] for n in c.state_names}, memory

    def encode(self, images) -> dict:
        """The ``encode`` signature: ``uint8 (B, S, S, 3)`` → every state and memory tensor ``(B, *shape)``."""
        return self.start(self.encoder(images, training=False))

    def decode_step(self, tokens, state: dict, memory: dict):
        """The ``decode_step`` signature: ``(log_probs float32 (B, V), new state, attention or None)``."""
        logits, state, attention = self.step(tokens, state, memory, training=False)
        return ops.log_softmax(ops.cast(logits, "float32"), axis=-1), state, attention

    def sequence_loss(self, logits, attentions: list, captions) -> None:
        """Hook for a family's extra training losses over a teacher-forced caption (``add_loss``)."""

    def call(self, inputs, training=False):
        """Teacher forcing.

        Args:
            inputs: ``{"annotations": cached features, "captions": int32 (B, T+1)}`` or
                ``{"images": uint8 (B, S, S, 3), "captions": ...}``; a tag-conditioned model
                also reads the contract's tag tensors (``"tag_ids" int32 (B, K)``,
                ``"tag_scores" float32 (B, K)``) when present (else no tags).

        Returns:
            logits ``float32 (B, T, V)`` for ``captions[:, 1:]``.
        """
        annotations = (
            self.annotate(inputs["annotations"])
            if "annotations" in inputs
            else self.encoder(inputs["images"], training=False)
        )
        captions = ops.cast(inputs["captions"], "int32")  # (B, T+1)
        tags = {n: inputs[n] for n in self.step_contract().tag_names if n in inputs}
        state, memory = self.split({**self.start(annotations, training=training), **tags})  # memory: once per caption
        logits, attentions = [], []
        for t in range(captions.shape[1] - 1):  # feed the reference word y_{t-1}
            out, state, attention = self.step(captions[:, t], state, memory, training=training)
            logits.append(out)
            attentions.append(attention)
        logits = ops.stack(logits, axis=1)  # (B, T, V)
        if training:
            self.sequence_loss(logits, attentions, captions)
        return logits
