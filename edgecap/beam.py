"""Captioning a photo archive on Apache Beam: a ``ModelHandler`` for ``RunInference`` and the
pipeline of ``edgecap caption-archive`` (``pip install 'edgecap[beam]'``; no TensorFlow).

Each worker loads the model once (Beam's ``RunInference`` shares it between the worker's
threads; :class:`~edgecap.runtime.Captioner` is thread-safe) and turns each element — a path,
local or on any filesystem Beam knows (``gs://``, ``s3://``, ...), or ``(name, bytes)`` — into
the record ``edgecap caption --json`` writes (:func:`~edgecap.runtime.captioner.caption_record`).
A photo that cannot be read becomes an error record, never a failed pipeline. With the
alignment model the record holds the photo's region vectors instead of a caption.

The same pipeline runs on the DirectRunner here and on Dataflow, Flink or Spark with their
pipeline options (``--runner``, ``--project``, ...), which :func:`caption_archive` passes on.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any


def _not_beam_noise(record: logging.LogRecord) -> bool:
    """Beam's own warnings about optional parts we do not use (BigQuery, its model manager)."""
    return not record.getMessage().startswith(("apitools not found", "Resource module is not available"))


logging.getLogger().addFilter(_not_beam_noise)

import apache_beam as beam  # noqa: E402
from apache_beam.io import fileio  # noqa: E402
from apache_beam.io.filesystems import FileSystems  # noqa: E402
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from edgecap.runtime import Captioner, CaptionerOptions, ImageLoadError, Retriever, RetrieverOptions  # noqa: E402
from edgecap.runtime.captioner import caption_record  # noqa: E402
from edgecap.runtime.guidance import DEFAULT_TAGGERS  # noqa: E402
from edgecap.runtime.metadata import read_file  # noqa: E402
from edgecap.runtime.presets import resolve_model  # noqa: E402

Element = str | tuple[str, bytes]  #: a photo's path, or its name and encoded bytes


class CaptionModelHandler(ModelHandler[Element, dict, Any]):
    """RunInference's handler for an edgecap model file: a captioner, or the alignment model.

    Args:
        model: a built-in model's name or a ``.tflite`` path (None: the default captioner).
        taggers: the captioner's taggers, as ``edgecap caption --tagger`` (default: the
            default pipeline's detector; ``()`` for none).
        beam_size: beams (None: the model's own).
        num_threads: interpreter threads per model copy.
    """

    def __init__(
        self,
        model: str | None = None,
        taggers: Sequence[str] = DEFAULT_TAGGERS,
        beam_size: int | None = None,
        num_threads: int | None = 1,
    ):
        super().__init__()
        self.model, self.taggers, self.beam_size, self.num_threads = model, tuple(taggers), beam_size, num_threads

    def load_model(self) -> Captioner | Retriever:
        """The model, loaded once per worker.

        Raises:
            ModelFileError, ValueError: the model file or name (named).
        """
        path = resolve_model(self.model)
        if read_file(path)[1].task == Retriever.TASK:
            return Retriever.from_file(path, RetrieverOptions(num_threads=self.num_threads))
        options = CaptionerOptions(beam_size=self.beam_size, num_threads=self.num_threads, taggers=self.taggers)
        return Captioner.from_file(path, options)

    def run_inference(
        self, batch: Sequence[Element], model: Captioner | Retriever, inference_args: dict | None = None
    ) -> Iterable[PredictionResult]:
        """One :class:`PredictionResult` per element, its ``inference`` the element's record."""
        for element in batch:
            yield PredictionResult(element, photo_record(model, element))

    def get_metrics_namespace(self) -> str:
        return "edgecap"


#: counts of the records written, read back by :func:`caption_archive` after the run
RECORDS = beam.metrics.Metrics.counter("edgecap", "records")
ERRORS = beam.metrics.Metrics.counter("edgecap", "errors")


def photo_record(model: Captioner | Retriever, element: Element) -> dict:
    """The record of one element: a caption (or region vectors), or the error that stopped it."""
    record = _record(model, element)
    RECORDS.inc()
    if record["error"] is not None:
        ERRORS.inc()
    return record


def _record(model: Captioner | Retriever, element: Element) -> dict:
    name, data = element if isinstance(element, tuple) else (element, None)
    try:
        photo = data if data is not None else _local_or_read(name)
        if isinstance(model, Retriever):
            regions = model.embed_image(photo)  # (R, h) float32
            return {"image": name, "regions": regions.round(5).tolist(), "error": None}
        return caption_record(name, model.caption(photo))
    except ImageLoadError as e:
        error = str(e).replace("<bytes>", name, 1)
    except OSError as e:  # the filesystem could not read it
        error = f"{name}: {e.strerror or e}"
    return (
        {"image": name, "regions": None, "error": error}
        if isinstance(model, Retriever)
        else caption_record(name, error=error)
    )


def _local_or_read(path: str) -> str | bytes:
    """A local path as it is (read as ``edgecap caption`` reads it), another filesystem's bytes."""
    if "://" not in path:
        return path
    with FileSystems.open(path) as f:
        return f.read()


def caption_archive(
    input_glob: str,
    output_prefix: str,
    model: str | None = None,
    taggers: Sequence[str] = DEFAULT_TAGGERS,
    pipeline_args: Sequence[str] = (),
) -> tuple[int, int]:
    """Caption every file ``input_glob`` matches into JSON Lines files ``OUTPUT_PREFIX-SSSSS-of-NNNNN.jsonl``.

    A local glob is expanded as a shell would (a dangling link or an unreadable file is matched,
    and gets an error record, as ``edgecap caption`` gives it); another filesystem's through
    Beam's ``MatchFiles``.

    Args:
        input_glob: e.g. ``photos/*.jpg`` or ``gs://bucket/photos/**``.
        output_prefix: where the shards go.
        model, taggers: as :class:`CaptionModelHandler`.
        pipeline_args: Beam pipeline options (``--runner DataflowRunner --project P ...``);
            none: the DirectRunner, on this machine.

    Returns:
        ``(records, error records)`` written, from the pipeline's metrics (counted by the runner:
        ``(0, 0)`` if it reports none).

    Raises:
        ValueError: nothing matches ``input_glob``; a local ``output_prefix`` that cannot be
            written (checked before the pipeline starts). Whatever the runner raises for the
            pipeline itself (bad options); a photo that cannot be read is an error record.
    """
    local = "://" not in input_glob
    paths = sorted(glob.glob(input_glob, recursive=True)) if local else []
    if (local and not paths) or (not local and not FileSystems.match([input_glob])[0].metadata_list):
        raise ValueError(f"{input_glob}: no file matches")
    if "://" not in output_prefix:
        _check_writable(output_prefix)
    handler = CaptionModelHandler(model, taggers)
    p = beam.Pipeline(options=PipelineOptions(list(pipeline_args)))
    if local:
        matched = p | "Paths" >> beam.Create(paths)
    else:
        matched = p | "Match" >> fileio.MatchFiles(input_glob) | "Paths" >> beam.Map(lambda metadata: metadata.path)
    _ = (
        matched
        | "Caption" >> RunInference(handler)
        | "Records" >> beam.Map(lambda result: json.dumps(result.inference))
        | "Write" >> beam.io.WriteToText(output_prefix, file_name_suffix=".jsonl")
    )
    result = p.run()
    result.wait_until_finish()
    return _count(result, "records"), _count(result, "errors")


def _count(result, name: str) -> int:
    from apache_beam.metrics.metric import MetricsFilter

    counters = result.metrics().query(MetricsFilter().with_namespace("edgecap").with_name(name))["counters"]
    return int(sum(c.committed or c.attempted or 0 for c in counters))


def _check_writable(output_prefix: str) -> None:
    """A local prefix's folder, made if missing (Beam would make it), takes a test file."""
    import tempfile

    prefix = os.path.abspath(output_prefix)
    if os.path.isdir(prefix):
        raise ValueError(f"{output_prefix}: a folder; give a prefix for the shards, e.g. {output_prefix}/captions")
    folder = os.path.dirname(prefix)
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".edgecap-write-check-"):
            pass
    except OSError as e:
        raise ValueError(f"{output_prefix}: cannot be written ({folder}: {e.strerror or e})") from None
