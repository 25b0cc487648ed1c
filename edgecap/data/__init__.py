"""Datasets, tokenisation, vocabulary and the feature cache."""

from edgecap.data.readers import (
    CaptionedImage,
    DatasetError,
    read_coco_captions,
    read_dataset,
    read_flickr8k,
    read_karpathy_json,
)
from edgecap.runtime.vocabulary import SPECIAL_TOKENS, Vocabulary, tokenize

__all__ = [
    "CaptionedImage",
    "DatasetError",
    "SPECIAL_TOKENS",
    "Vocabulary",
    "read_coco_captions",
    "read_dataset",
    "read_flickr8k",
    "read_karpathy_json",
    "tokenize",
]
