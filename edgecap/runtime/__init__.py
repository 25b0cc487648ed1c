"""On-device runtime: TFLite interpreter, preprocessing and decoding — no TensorFlow needed."""

from edgecap.runtime.captioner import Caption, Captioner, CaptionerOptions, CaptionResult
from edgecap.runtime.interpreter import NoInterpreterError
from edgecap.runtime.metadata import ModelFileError, ModelMetadata
from edgecap.runtime.preprocessing import ImageLoadError, load_image

__all__ = ["Caption", "CaptionResult", "Captioner", "CaptionerOptions", "ImageLoadError", "ModelFileError", "ModelMetadata", "NoInterpreterError", "load_image"]
