"""Captioning an archive on Apache Beam (DirectRunner): one record per photo, as `edgecap caption
--json` writes it, and an error record for a broken file, the pipeline succeeding. Runs in the
[beam] environment (.ci/run makes one); skipped where apache_beam is not installed."""

import json
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("apache_beam")


def _records(lines):
    """Records by photo, without the timings (which differ between two runs)."""
    out = {}
    for line in lines:
        record = json.loads(line)
        record.pop("timings_ms", None)
        out[record["image"]] = record
    return out


def test_caption_archive_writes_the_records_of_caption_json_and_an_error_record(examples, tmp_path):
    from edgecap.beam import caption_archive

    photos = tmp_path / "archive"
    photos.mkdir()
    for photo in sorted(examples.glob("*.jpg")):
        shutil.copy(photo, photos)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    caption_archive(str(photos / "*.jpg"), str(tmp_path / "out" / "captions"))
    shards = sorted((tmp_path / "out").glob("captions-*.jsonl"))
    got = _records(line for shard in shards for line in shard.read_text().splitlines())
    assert len(got) == 4 and sum(r["error"] is None for r in got.values()) == 3
    assert "broken.jpg" in got[str(photos / "broken.jpg")]["error"]
    cli = subprocess.run(
        [sys.executable, "-m", "edgecap.cli", "caption", "--json", *sorted(map(str, photos.glob("*.jpg")))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 2  # the broken photo
    assert got == _records(cli.stdout.splitlines())


def test_caption_archive_matches_caption_on_a_bad_folder_records_and_exit_codes(examples, tmp_path):
    """Issue 48, class 3: a dangling link has an error record as with `caption`; a run with
    failures exits 2; an output prefix that cannot be written is one line before the pipeline."""
    photos = tmp_path / "bad"
    photos.mkdir()
    shutil.copy(examples / "chelsea.jpg", photos)
    (photos / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (photos / "empty.jpg").write_bytes(b"")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "edgecap.cli", *args], capture_output=True, text=True, timeout=300)

    archive = run("caption-archive", str(photos / "*.jpg"), str(tmp_path / "out" / "c"), "--tagger", "none")
    caption = run("caption", "--json", "--tagger", "none", *sorted(map(str, photos.glob("*.jpg"))))
    assert archive.returncode == caption.returncode == 2, archive.stderr[-2000:]
    assert "3 records, 2 errors" in archive.stdout
    got = _records(line for shard in (tmp_path / "out").glob("c-*.jsonl") for line in shard.read_text().splitlines())
    assert got == _records(caption.stdout.splitlines()) and len(got) == 3
    (tmp_path / "file").write_text("")
    refused = run("caption-archive", str(photos / "*.jpg"), str(tmp_path / "file" / "c"))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr[-2000:]
    assert "cannot be written" in refused.stderr and "Traceback" not in refused.stderr


def test_the_alignment_model_writes_region_vectors(examples, tmp_path):
    from edgecap.beam import CaptionModelHandler, photo_record

    handler = CaptionModelHandler("visual_semantic_alignment_flickr8k")
    model = handler.load_model()
    record = photo_record(model, str(examples / "chelsea.jpg"))
    assert record["error"] is None and len(record["regions"]) == model.num_regions
    broken = photo_record(model, ("upload.jpg", b"not an image"))
    assert broken["regions"] is None and broken["error"].startswith("upload.jpg: ")
