"""Image encoders, registered by name: pixels → annotation vectors ``(B, L, D)``.

The encoder's input is ``uint8`` RGB; casting and normalisation happen inside the graph,
so training, Keras inference and the exported TFLite file all take raw pixels.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras

WEIGHTS_ENV = "EDGECAP_ENCODER_WEIGHTS"


class WeightsError(ValueError):
    """An encoder weights file is missing or does not fit the architecture (names the file)."""


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one encoder.

    Attributes:
        name: registry key.
        image_size: square input side in pixels.
        grid: spatial side of the output feature map (L = grid²).
        dim: channels D of each annotation vector.
        normalization: human-readable description of the in-graph pixel normalisation.
        build: ``weights -> keras.Model`` mapping float pixels (0..255) to ``(B, g, g, D)``;
            ``weights`` is ``"imagenet"``, ``"none"`` or a file path.
        int8_float_layers: regular expression over the backbone's layer names (as they appear
            in the converted file's tensor names) of the layers an ``int8`` export keeps in
            float32 (``""``: none, a full-integer file); see :func:`edgecap.export.exporter.convert`.
        title: the encoder as model cards name it (``""``: its registry key).
    """

    name: str
    image_size: int
    grid: int
    dim: int
    normalization: str
    build: Callable[[str], keras.Model]
    int8_float_layers: str = ""
    title: str = ""

    @property
    def num_locations(self) -> int:
        return self.grid * self.grid


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    _REGISTRY[spec.name] = spec
    return spec


def get_backbone(name: str) -> BackboneSpec:
    """Raises: ValueError naming the known backbones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {sorted(_REGISTRY)}") from None


def resolve_weights(weights: str | None) -> str:
    """``None``/``"imagenet"``: ``$EDGECAP_ENCODER_WEIGHTS`` if set, else ``"imagenet"`` (Keras downloads it).

    Returns ``"imagenet"``, ``"none"`` (random initialisation) or an existing file path.

    Raises:
        WeightsError: a path that does not exist.
    """
    if weights in (None, "", "imagenet"):
        weights = os.environ.get(WEIGHTS_ENV) or "imagenet"
    if weights not in ("imagenet", "none") and not Path(weights).is_file():
        raise WeightsError(f"{weights}: encoder weights file not found (set {WEIGHTS_ENV} or --encoder-weights)")
    return weights


def _mobilenet_v2(weights: str) -> keras.Model:
    inputs = keras.Input((224, 224, 3), dtype="float32", name="pixels")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit_range")(inputs)  # mobilenet_v2.preprocess_input
    try:
        base = keras.applications.MobileNetV2(
            include_top=False, alpha=1.0, input_shape=(224, 224, 3), weights=None if weights == "none" else weights
        )
    except (ValueError, OSError) as e:
        raise WeightsError(f"{weights}: cannot load as MobileNetV2 (alpha 1.0, 224, no top) weights: {e}") from e
    return keras.Model(inputs, base(x), name="mobilenet_v2")


# MobileNetV2's stem (Conv1 and blocks 0-3, at 112x112 and 56x56) stays float32 in int8 files.
# `python scripts/int8_encoder_error.py` (100 Flickr8k photos, ImageNet weights): the
# full-integer encoder's grid is off float32 by 0.391 relative L2 (per-cell cosine 0.891); with
# the first depthwise layer alone in float32 0.254, with the stem 0.174, with the last 3 blocks
# instead 0.384; the stem in float32 encoded in 24.9 ms against 27.8 ms (1 x86 core, same run).
# Per-tensor int8 activations are what fails there: the first layers' channels span very
# different ranges (Nagel et al. 2019, "Data-Free Quantization", use MobileNetV2 as the example).
MOBILENET_V2_STEM = r"/(bn_)?(Conv1|expanded_conv|block_[123]_)"

register_backbone(
    BackboneSpec(
        "mobilenet_v2",
        224,
        7,
        1280,
        "x / 127.5 - 1 (MobileNetV2 preprocess_input)",
        _mobilenet_v2,
        MOBILENET_V2_STEM,
        "MobileNetV2",
    )
)


def build_encoder(name: str = "mobilenet_v2", weights: str | None = "imagenet") -> keras.Model:
    """Encoder ``uint8 (B, S, S, 3)`` → annotation vectors ``float32 (B, L, D)``.

    Args:
        name: registry key, e.g. ``"mobilenet_v2"`` (L = 49, D = 1280).
        weights: ``"imagenet"`` (or ``$EDGECAP_ENCODER_WEIGHTS``), a ``.weights.h5`` path, or ``"none"``.

    Raises:
        ValueError: unknown backbone. WeightsError: weights file missing or of the wrong shape.
    """
    spec = get_backbone(name)
    cnn = spec.build(resolve_weights(weights))
    pixels = keras.Input((spec.image_size, spec.image_size, 3), dtype="uint8", name="image")
    x = keras.ops.cast(pixels, "float32")
    grid = cnn(x)  # (B, g, g, D)
    annotations = keras.layers.Reshape((spec.num_locations, spec.dim), name="annotations")(grid)  # (B, L, D)
    return keras.Model(pixels, annotations, name=f"{name}_encoder")


def _backbone_graph(encoder: keras.Model) -> tuple[list, keras.Model]:
    """``(preprocessing layers, innermost functional CNN)`` of an encoder from :func:`build_encoder`."""
    cnn = next(layer for layer in encoder.layers if isinstance(layer, keras.Model))
    preprocess = [layer for layer in cnn.layers if not isinstance(layer, (keras.Model, keras.layers.InputLayer))]
    base = next((layer for layer in cnn.layers if isinstance(layer, keras.Model)), cnn)
    return preprocess, base


def backbone_network(encoder: keras.Model) -> keras.Model:
    """The backbone inside an encoder from :func:`build_encoder` (e.g. Keras' MobileNetV2): its
    ``save_weights`` file is what ``build_encoder(name, path)`` loads."""
    return _backbone_graph(encoder)[1]


def encoder_head_layers(encoder: keras.Model, first_layer: str) -> list:
    """The encoder's layers from ``first_layer`` to its output grid, in order: the part that a
    fine-tuned encoder trains (e.g. ``"block_16_expand"``: MobileNetV2's last inverted residual
    block and ``Conv_1``, 0.89 M weights).

    They are the encoder's own layer objects, so training them changes the encoder itself
    (and what export writes). They must form a chain of single-input layers, so that they can
    be applied one after the other to the cached output of the layers before them.

    Raises:
        ValueError: ``first_layer`` is not a layer of the backbone, or the layers after it are
            not a chain (a residual connection crosses the split).
    """
    _, base = _backbone_graph(encoder)
    names = [layer.name for layer in base.layers]
    if first_layer not in names:
        raise ValueError(f"model.fine_tune_from: {first_layer!r} is not a layer of {base.name}")
    head = base.layers[names.index(first_layer) :]
    if isinstance(head[0].input, (list, tuple)):
        raise ValueError(f"model.fine_tune_from: {first_layer!r} takes several inputs; choose a layer with one")
    for prev, layer in itertools.pairwise(head):
        if layer.input is not prev.output:
            raise ValueError(
                f"model.fine_tune_from: {first_layer!r} cannot split {base.name}: {layer.name!r} does not take just the output of {prev.name!r} (choose a layer after which the network is a plain chain, e.g. 'block_16_expand' in MobileNetV2)"
            )
    return head


def frozen_output_name(backbone: str, fine_tune_from: str = "") -> str:
    """Names what a feature cache holds: the backbone's output, or the input of ``fine_tune_from``."""
    return f"{backbone}.{fine_tune_from}" if fine_tune_from else backbone


def frozen_encoder(encoder: keras.Model, fine_tune_from: str = "") -> keras.Model:
    """What the feature cache is computed with: the whole encoder, or with ``fine_tune_from``
    its frozen stem (:func:`encoder_stem`)."""
    return encoder_stem(encoder, fine_tune_from) if fine_tune_from else encoder


def encoder_stem(encoder: keras.Model, first_layer: str) -> keras.Model:
    """The frozen part of a fine-tuned encoder: ``uint8 (B, S, S, 3)`` → the input grid of
    ``first_layer``, ``float32 (B, g, g, C)`` (``(B, 7, 7, 160)`` for MobileNetV2 at
    ``"block_16_expand"``); what the feature cache holds when ``model.fine_tune_from`` is set.

    Raises:
        ValueError: see :func:`encoder_head_layers`.
    """
    head = encoder_head_layers(encoder, first_layer)
    preprocess, base = _backbone_graph(encoder)
    pixels = keras.Input(encoder.input.shape[1:], dtype="uint8", name="image")
    x = keras.ops.cast(pixels, "float32")
    for layer in preprocess:
        x = layer(x)
    grid = keras.Model(base.input, head[0].input, name=f"{base.name}_to_{first_layer}")(x)
    return keras.Model(pixels, grid, name=f"{encoder.name}_stem")


class FineTunedEncoder:
    """Mixin for a model with an ``encoder`` (:func:`build_encoder`) and a ``spec``
    (:class:`BackboneSpec`) whose top layers may train with the rest of the model."""

    fine_tune_from: str = ""

    def init_encoder(self, config, encoder_weights: str | None = None) -> None:
        """Check ``config`` (a :class:`~edgecap.models.model_config.ModelConfig`), then build
        ``self.encoder`` (frozen) and ``self.spec``, fine-tuned from ``config.fine_tune_from``.

        Args:
            encoder_weights: overrides ``config.encoder_weights``.

        Raises:
            ValueError: every problem ``config.validate()`` finds, in one message; an unknown
                backbone; a ``fine_tune_from`` that cannot split it.
        """
        problems = config.validate()
        if problems:
            raise ValueError("; ".join(problems))
        self.config = config
        self.spec = get_backbone(config.backbone)
        self.encoder = build_encoder(
            config.backbone, config.encoder_weights if encoder_weights is None else encoder_weights
        )
        self.encoder.trainable = False
        self.set_fine_tuning(config.fine_tune_from)

    def set_fine_tuning(self, first_layer: str) -> None:
        """Train the encoder from ``first_layer`` on (``""``: the whole encoder stays frozen).

        Raises:
            ValueError: see :func:`encoder_head_layers`.
        """
        self.fine_tune_from = first_layer
        for layer in self._head_layers():
            layer.trainable = (
                True  # BatchNorm layers still normalise with their ImageNet statistics (called with training=False)
            )

    def _head_layers(self) -> list:
        # Looked up on each use, not kept as an attribute: an attribute would save the encoder's
        # layers a second time in checkpoints, under another name.
        return encoder_head_layers(self.encoder, self.fine_tune_from) if self.fine_tune_from else []

    def annotate(self, features):
        """Cached features → annotation vectors ``(B, L, D)``.

        The cache holds the annotation vectors themselves when the encoder is frozen; with
        ``fine_tune_from`` it holds the grid ``(B, g, g, C)`` entering that layer, and the
        trainable layers from there on are applied here.
        """
        x = keras.ops.cast(features, self.compute_dtype)
        if not self.fine_tune_from:
            return x
        for layer in self._head_layers():
            x = layer(x, training=False)
        return keras.ops.reshape(x, (-1, self.spec.num_locations, self.spec.dim))  # (B, L, D)
