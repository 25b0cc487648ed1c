"""``edgecap search``: image search with the alignment model, without TensorFlow."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from edgecap.cli.common import fail, kernel_options, photo_list, writable
from edgecap.paths import DEFAULT_RETRIEVAL_PRESET


@click.command("search")
@click.argument("queries", nargs=-1)
@click.option(
    "--model",
    "model_path",
    default=DEFAULT_RETRIEVAL_PRESET,
    show_default=True,
    help="A built-in alignment model's name or a .tflite file from `edgecap export`.",
)
@click.option(
    "--images",
    "images",
    multiple=True,
    type=click.Path(),
    help="Photos or folders to search (repeatable; a photo that cannot be read is skipped and named, exit status 2); rows of --scores are the readable ones sorted by path. With --index, a killed build resumes.",
)
@click.option(
    "--index",
    "index_path",
    type=click.Path(dir_okay=False),
    help="Photo index (.npz): with --images, written here after indexing; without, read from here instead of indexing.",
)
@click.option(
    "--texts",
    type=click.Path(exists=True, dir_okay=False),
    help="A text file of queries, one a line (added to QUERIES).",
)
@click.option(
    "--scores",
    "scores_path",
    type=click.Path(dir_okay=False),
    help="Write the (num_images, num_texts) float32 score matrix here (.npy): rows = photos sorted by path, columns = QUERIES then the lines of --texts.",
)
@click.option("-k", "--top", type=click.IntRange(1), default=5, show_default=True, help="Photos shown per query.")
@click.option(
    "--json", "as_json", is_flag=True, help="JSON Lines: one object per query with its top photos and scores."
)
@click.option(
    "--candidates",
    type=click.IntRange(0),
    default=None,
    help="Photos ranked by eq. 8 per query, pre-selected by their pooled vectors (default: 200; 0: every photo). --scores always scores every photo.",
)
@click.option("--threads", type=click.IntRange(1), default=None, help="Interpreter threads.")
@kernel_options
@click.option("--verbose", "-v", is_flag=True, help="Timings of indexing and of each query.")
def command(
    queries, model_path, images, index_path, texts, scores_path, top, as_json, candidates, threads, kernels, verbose
):
    """Find the photos that fit a sentence (image search, Karpathy & Fei-Fei 2015), without TensorFlow.

    \b
      edgecap search --images photos/ "a dog runs on the beach"
      edgecap search --images photos/ --index photos.npz          # index once
      edgecap search --index photos.npz "two children play in the snow"
      edgecap search --images test/ --texts sentences.txt --scores scores.npy
    """
    import time

    import numpy as np

    from edgecap.runtime import (
        ImageLoadError,
        ModelFileError,
        NoInterpreterError,
        PhotoIndexError,
        QueryError,
        Retriever,
        RetrieverOptions,
    )
    from edgecap.runtime.presets import resolve_model

    try:
        if texts:
            try:
                lines = [line.strip() for line in Path(texts).read_text(encoding="utf-8").splitlines()]
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"--texts {texts}: cannot read it as UTF-8 text ({e})") from None
            queries = (*queries, *[line for line in lines if line])
            if not lines or not any(lines):
                raise ValueError(f"--texts {texts}: no sentences in this file")
        if not queries and not (images and index_path):
            raise ValueError(
                "give a query (or --texts FILE)"
                if (images or index_path)
                else "give photos to search (--images DIR or --index FILE.npz) and a query"
            )
        if not images and not index_path:
            raise ValueError("give photos to search: --images DIR (or --index FILE.npz built before)")
        if scores_path:
            writable(scores_path, "--scores")
        if index_path and images:
            writable(index_path, "--index")
        retriever = Retriever.from_file(
            resolve_model(model_path),
            RetrieverOptions(num_threads=threads, quiet=not verbose, kernels=kernels),
        )
        t0 = time.perf_counter()
        skipped: list[str] = []
        if images:  # a photo that cannot be read is skipped and named; a killed build resumes
            partial = Path(f"{index_path}.partial.npz") if index_path else None
            retriever.index(photo_list(images), progress=True, errors=skipped, partial=partial)
            for error in skipped:
                click.echo(f"error: {error} (skipped)", err=True)
            if index_path:
                retriever.photo_index.save(index_path)
        else:
            retriever.load_index(index_path)
        if verbose:
            click.echo(
                f"{len(retriever.photo_index.paths)} photos indexed in {time.perf_counter() - t0:.1f} s ({retriever.backend})",
                err=True,
            )
        if not queries:
            click.echo(f"wrote {index_path}: {len(retriever.photo_index.paths)} photos")
            sys.exit(2 if skipped else 0)
        t0 = time.perf_counter()
        paths = retriever.photo_index.paths
        if scores_path:  # every photo against every text; a score matrix keeps even a text of unknown words
            matrix = retriever.scores(list(queries), strict=False)
            ranked = [
                [(paths[i], float(matrix[i, j])) for i in np.argsort(-matrix[:, j], kind="stable")[:top]]
                for j in range(len(queries))
            ]
        else:
            preselect = {} if candidates is None else {"candidates": candidates or None}
            ranked = [[(h.path, h.score) for h in retriever.search(q, top, **preselect)] for q in queries]
        if verbose:
            click.echo(f"{len(queries)} queries answered in {(time.perf_counter() - t0) * 1e3:.1f} ms", err=True)
    except (ModelFileError, NoInterpreterError, ImageLoadError, PhotoIndexError, QueryError, ValueError, OSError) as e:
        fail(str(e))
    if scores_path:
        import io

        from edgecap.utils import atomic_write_bytes

        buf = io.BytesIO()
        np.save(buf, matrix.astype(np.float32))
        atomic_write_bytes(scores_path, buf.getvalue())
        click.echo(
            f"wrote {scores_path}: scores of {matrix.shape[0]} photos (sorted by path) x {matrix.shape[1]} texts",
            err=True,
        )
        if texts:
            sys.exit(2 if skipped else 0)
    for query, hits in zip(queries, ranked):
        if as_json:
            click.echo(
                json.dumps({"query": query, "results": [{"path": p, "score": round(score, 4)} for p, score in hits]})
            )
        else:
            click.echo(query)
            for p, score in hits:
                click.echo(f"  {score:8.2f}  {p}")
    if skipped:  # as caption: the readable photos were searched, the others named on stderr
        sys.exit(2)
