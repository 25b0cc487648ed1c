"""Captioning models (Keras 3), one folder per family, found by name in :mod:`edgecap.models.registry`.

Importing this package is light: the Keras classes load on first use, so config parsing and
the registry work without TensorFlow.
"""

import importlib

_LAZY = {
    "BackboneSpec": "edgecap.models.backbones",
    "WeightsError": "edgecap.models.backbones",
    "build_encoder": "edgecap.models.backbones",
    "get_backbone": "edgecap.models.backbones",
    "register_backbone": "edgecap.models.backbones",
    "StepwiseCaptioner": "edgecap.models.base",
    "MultimodalRNN": "edgecap.models.multimodal_rnn.model",
    "ShowAttendTell": "edgecap.models.show_attend_tell.model",
    "SoftAttentionDecoder": "edgecap.models.show_attend_tell.decoder",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgecap.models' has no attribute {name!r}")
