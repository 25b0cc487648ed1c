"""Captioning models (Keras 3). Importing this package imports TensorFlow/Keras."""

from edgecap.models.backbones import BackboneSpec, WeightsError, build_encoder, get_backbone, register_backbone
from edgecap.models.show_attend_tell import ShowAttendTell, SoftAttentionDecoder

__all__ = ["BackboneSpec", "ShowAttendTell", "SoftAttentionDecoder", "WeightsError", "build_encoder", "get_backbone", "register_backbone"]
