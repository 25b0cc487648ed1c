"""``edgecap caption VIDEO`` and ``edgecap caption --camera``: caption spans of videos and cameras
(:meth:`edgecap.runtime.Captioner.caption_video`), as lines, JSON Lines or subtitles."""

from __future__ import annotations

import json

import click

from edgecap.cli.common import WholeLines


def caption_videos(captioner, videos, camera, every: float, fmt: str | None, as_json: bool, show_tags: bool) -> int:
    """Caption each video (or the camera) and write its spans as they close; the failures' count.

    A video that cannot be opened or stops being readable is named on stderr (and, with
    ``--json``, gets an error record after the spans it gave); the others go on.
    """
    from edgecap.runtime.captioner import caption_record
    from edgecap.runtime.video import VideoError, span_record, subtitles

    out = WholeLines()
    failures = 0
    sources = [(camera, True)] if camera is not None else [(v, False) for v in videos]
    for source, is_camera in sources:
        collected = []
        try:
            for span in captioner.caption_video(source, every, camera=is_camera, progress=not is_camera):
                if fmt:
                    collected.append(span)
                elif as_json:
                    out.line(json.dumps(span_record(str(source), span, caption_record(source, span.result))))
                else:
                    out.line(_span_text(source, span, show_tags))
        except VideoError as e:
            failures += 1
            click.echo(f"error: {e}", err=True)
            if as_json and not fmt:
                out.line(json.dumps(span_record(str(source), None, caption_record(source, error=str(e)))))
        if fmt:  # the spans read so far, also after a failure
            text = subtitles(collected, fmt)
            for line in text.rstrip("\n").split("\n"):
                out.line(line)
    return failures


def _span_text(source, span, show_tags: bool) -> str:
    line = f"{source} {span.start:.1f}-{span.end:.1f} s: {span.text}"
    if show_tags:
        line += "\n    tags: " + (", ".join(f"{t.word} {t.score:.2f}" for t in span.result.tags) or "none")
    return line
