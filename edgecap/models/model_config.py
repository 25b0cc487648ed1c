"""The ``[model]`` config fields every model family has (no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ModelConfig:
    """What every model family's ``[model]`` section has.

    Attributes:
        architecture: registry name (:mod:`edgecap.models.registry`).
        backbone: encoder registry name (``edgecap.models.backbones``).
        encoder_weights: ``"imagenet"``, a ``.weights.h5`` path, ``"none"``, or an edgecap run
            directory: the encoder of its best checkpoint, fine-tuned layers included (e.g.
            ``"export"``, the built-in captioner's; see
            :func:`edgecap.training.trainer.run_encoder_weights`).
        fine_tune_from: first encoder layer trained with the decoder; ``""`` = frozen encoder.
    """

    architecture: str = "show_attend_tell"
    backbone: str = "mobilenet_v2"
    encoder_weights: str = "imagenet"
    fine_tune_from: str = ""

    def model_name(self) -> str:
        """The model's name before the dataset's, e.g. ``show_attend_tell`` (``show_attend_tell_flickr8k``)."""
        return self.architecture

    def validate(self) -> list[str]:
        """Problems with the values (empty when fine); a family adds its own ranges."""
        return []
