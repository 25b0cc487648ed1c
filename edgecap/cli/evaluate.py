"""``edgecap evaluate``: score a run or an exported file on a split, as its task does."""

from __future__ import annotations

from pathlib import Path

import click

from edgecap.cli.common import fail, kernel_options, tensorflow_command


@click.command("evaluate")
@click.argument("source", type=click.Path(exists=True))
@click.option("--split", type=click.Choice(["train", "dev", "test"]), default="test", show_default=True)
@click.option(
    "--beam-size", type=click.IntRange(1), default=None, help="Beams, 1 = greedy (default: the model's, chosen on dev)."
)
@click.option(
    "--length-penalty", type=float, default=None, help="α of log P / length^α (default: the model's, chosen on dev)."
)
@click.option(
    "--no-repeat-ngram",
    type=click.IntRange(0),
    default=None,
    help="Never repeat an n-gram of this size, 0 = off (default: the model's).",
)
@click.option(
    "--max-length", type=click.IntRange(1), default=None, help="Most words per caption (default: the model's)."
)
@click.option("--data-root", help="Dataset folder (overrides the config and $EDGECAP_DATA_ROOT).")
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="Dataset config for a .tflite SOURCE."
)
@click.option("--limit", type=click.IntRange(0), default=0, help="First N images only.")
@click.option("--threads", type=click.IntRange(1), default=None, help="Interpreter threads (.tflite SOURCE).")
@kernel_options
@click.option(
    "--tagger",
    "taggers",
    multiple=True,
    help="Caption with this built-in tagger's words as constraints (a .tflite SOURCE; repeat for several; default: none, the model alone). `--tagger coco_detector` scores the default pipeline of `edgecap caption`.",
)
@click.option(
    "--duplicates",
    type=click.Choice(["refuse", "first", "last"]),
    default="refuse",
    show_default=True,
    help="A CAPTIONS.jsonl SOURCE with two records of one photo (the same path twice, or the same file name in two folders): refuse, naming both lines, or keep the first or the last.",
)
@click.option("--spice", is_flag=True, help="Also compute SPICE (needs a CoreNLP download: fails offline).")
@click.option("--output", type=click.Path(dir_okay=False), help="Write metrics and captions as JSON here.")
def command(
    source,
    split,
    beam_size,
    length_penalty,
    no_repeat_ngram,
    max_length,
    data_root,
    config_path,
    limit,
    threads,
    kernels,
    taggers,
    duplicates,
    spice,
    output,
):
    """Score SOURCE (a run directory, a .tflite file, or the JSON Lines of `edgecap caption --json`)
    with BLEU, METEOR, ROUGE-L, CIDEr-D and CHAIR; an image–sentence alignment model with R@1/5/10
    and median rank in both directions; an attribute detector run with mAP, P@10 and R@10 beside
    the most frequent attributes. Scoring a .jsonl file needs only the base install and [eval]."""
    jsonl = Path(source).suffix == ".jsonl"
    if not jsonl:  # a .jsonl file is only scored: no TensorFlow
        tensorflow_command()
    from edgecap.evaluation.evaluate import write_report

    options = dict(
        beam_size=beam_size,
        length_penalty=length_penalty,
        no_repeat_ngram_size=no_repeat_ngram,
        max_length=max_length,
        data_root=data_root,
        config=config_path,
        limit=limit,
        num_threads=threads,
        kernels=kernels,
        taggers=tuple(taggers),
        spice=spice,
        duplicates=duplicates,
    )
    try:
        if Path(source).is_dir():  # a run: its files and data checked before TensorFlow is imported
            from edgecap.runs import check_run

            check_run(source, data_root, (split,))
        task = _task(source)
        report = task.run("evaluate", source, split, **options)
    except (ValueError, OSError, RuntimeError) as e:
        fail(str(e))
    click.echo(task.stage("report")(report))
    if output:
        write_report(report, output)
        click.echo(f"wrote {output}")


def _task(source: str):
    """The :class:`~edgecap.models.registry.Task` of SOURCE: a run directory's by its
    architecture, a file's by its metadata (a file that does not read: captioning, whose
    evaluation then reports the file's problem)."""
    from edgecap.models import registry
    from edgecap.runtime.metadata import ModelFileError, read_file

    path = Path(source)
    if path.is_dir():
        config = path / "config.toml"
        return (
            registry.task_of(registry.read_model_config(config).architecture)
            if config.is_file()
            else registry.get_task("captioning")
        )
    try:
        return registry.get_task(read_file(path, check_digest=False)[1].task)
    except ModelFileError:
        return registry.get_task("captioning")
