"""``edgecap models``: the built-in models."""

from __future__ import annotations

import json

import click

from edgecap.cli.common import fail


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
def command(as_json):
    """List the built-in models (name, task, size, Flickr8k test scores) and taggers."""
    from edgecap.models import registry
    from edgecap.runtime.presets import list_presets, tagger_names, tagger_path

    presets = list_presets()
    if not presets:
        fail("no built-in models are installed")
    for p in presets:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "name": p.name,
                        "task": p.task,
                        "architecture": p.architecture,
                        "size_mb": round(p.size_mb, 2),
                        "path": str(p.path),
                        "flickr8k_test": p.scores,
                    }
                )
            )
        else:
            try:
                task = registry.get_task(p.task)
                scores = ", ".join(f"{k} {p.scores[k]:.{task.digits}f}" for k in task.headline if k in p.scores)
            except (ValueError, TypeError):  # a file of a task this edgecap does not know
                scores = ""
            scores = scores or "not scored"
            click.echo(f"{p.name:40} {p.task:12} {p.size_mb:6.2f} MB  Flickr8k test: {scores}")
    for name in tagger_names():
        path = tagger_path(name)
        try:
            kind = json.loads(path.with_suffix(".words.json").read_text())["kind"]
            size = path.stat().st_size / 1e6
        except (OSError, ValueError, KeyError, TypeError) as e:  # a foreign file in the folder
            click.echo(f"skipped {path}: not a built-in tagger ({type(e).__name__}: {e})", err=True)
            continue
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "name": name,
                        "task": "tagging",
                        "architecture": kind,
                        "size_mb": round(size, 2),
                        "path": str(path),
                    }
                )
            )
        else:
            click.echo(f"{name:40} {'tagging':12} {size:6.2f} MB  {kind}; card: {path.with_suffix('.md')}")
