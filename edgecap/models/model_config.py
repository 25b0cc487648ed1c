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
            :func:`edgecap.runs.run_encoder_weights`).
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

    # --- what the model card (``edgecap release``) says of the family ---------------------------
    def card_title(self) -> str:
        """The card's title after the model's name, e.g. ``"Show, Attend and Tell (soft attention)"``."""
        return f"`{self.architecture}`"

    def card_architecture(self) -> str:
        """The card's "Architecture" line: the paper and section, the pieces (with their equation
        numbers) and the sizes. A family overrides it; this default names the encoder only."""
        return (
            f"`{self.architecture}` over the annotation grid of {self.backbone_name()} ({self.encoder_description()})."
        )

    def card_training(self) -> str:
        """The training objective, for the card's "Training" line (a captioner: teacher-forced
        cross-entropy, plus whatever its family adds to it)."""
        return "teacher-forced cross-entropy"

    def card_paper(self) -> str:
        """The paper's figures that the card's test table compares with, one sentence, or ``""``."""
        return ""

    def card_baseline(self) -> str:
        """A built-in model whose test rows (from its own card) the card's table shows beside
        this one's, e.g. ``"show_attend_tell_flickr8k"``, or ``""``."""
        return ""

    def card_notes(self) -> list[str]:
        """Markdown lines the card adds under "Notes": what the experiments found beyond the
        release run (each figure with where it was measured), or ``[]``."""
        return []

    def backbone_name(self) -> str:
        """The encoder as a card names it, e.g. ``"MobileNetV2"`` (its ``BackboneSpec.title``;
        imports Keras, as every card-writing path does).

        Raises:
            ValueError: a backbone the registry does not know.
        """
        from edgecap.models.backbones import get_backbone

        return get_backbone(self.backbone).title or self.backbone

    def encoder_description(self) -> str:
        """Where the encoder's weights come from and which of them train, from ``encoder_weights``
        and ``fine_tune_from``: ``"ImageNet weights, frozen"`` (also for a local ImageNet
        ``.weights.h5`` file), ``"ImageNet weights; frozen up to `block_16_expand`, trained …"``,
        or ``"frozen: the encoder of RUN"`` for another run's (``"export"``: the built-in captioner's)."""
        w = self.encoder_weights or "imagenet"
        if w == "none":
            return "randomly initialised" + (
                f", trained from `{self.fine_tune_from}` on" if self.fine_tune_from else ", frozen"
            )
        if w == "imagenet" or w.endswith(".h5"):
            layer = self.fine_tune_from
            return (
                f"ImageNet weights; frozen up to `{layer}`, trained from there on with the decoder"
                if layer
                else "ImageNet weights, frozen"
            )
        if w == "export":
            return "frozen: the built-in captioner's encoder, its top block fine-tuned on the training captions"
        return f"frozen: the encoder of {w}"
