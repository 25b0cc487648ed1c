"""Caption metrics and the evaluation command."""

from edgecap.evaluation.metrics import MetricsError, cider_d, coco_caption_scores

__all__ = ["MetricsError", "cider_d", "coco_caption_scores"]
