"""TFLite export (float32 / float16 / dynamic / int8) and its numerical verification."""

from edgecap.export.exporter import MODES, ExportError, export_model, representative_dataset

__all__ = ["MODES", "ExportError", "export_model", "representative_dataset"]
