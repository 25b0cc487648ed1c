"""On-device runtime: TFLite interpreter, preprocessing, decoding and retrieval — no TensorFlow needed."""

from edgecap.runtime.captioner import Caption, Captioner, CaptionerOptions, CaptionResult
from edgecap.runtime.interpreter import NoInterpreterError
from edgecap.runtime.metadata import ModelFileError, ModelMetadata
from edgecap.runtime.preprocessing import ImageLoadError, load_image
from edgecap.runtime.retriever import (
    Alignment,
    Hit,
    PhotoIndex,
    PhotoIndexError,
    QueryError,
    Retriever,
    RetrieverOptions,
)
from edgecap.runtime.running_modes import CaptionSpan, RunningMode, SceneOptions, VideoCaptionResult
from edgecap.runtime.tagger import Tag, Tagger, TaggerOptions

__all__ = [
    "Caption",
    "CaptionResult",
    "Captioner",
    "CaptionerOptions",
    "ImageLoadError",
    "ModelFileError",
    "ModelMetadata",
    "NoInterpreterError",
    "load_image",
    "Alignment",
    "Hit",
    "PhotoIndex",
    "PhotoIndexError",
    "QueryError",
    "Retriever",
    "RetrieverOptions",
    "Tag",
    "Tagger",
    "TaggerOptions",
    "CaptionSpan",
    "RunningMode",
    "SceneOptions",
    "VideoCaptionResult",
]
