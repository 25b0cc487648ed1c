"""Indexing photos for search: an unreadable photo costs only itself, and a killed build resumes."""

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgecap.runtime.retriever import PhotoIndex, Retriever


@pytest.fixture(scope="module")
def retriever():
    return Retriever.from_preset("visual_semantic_alignment_flickr8k")


def _photos(examples, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, photo in enumerate(sorted(examples.glob("*.jpg")) * 3):
        shutil.copy(photo, folder / f"{i:02d}_{photo.name}")
    (folder / "05_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def test_search_skips_and_names_an_unreadable_photo(examples, tmp_path):
    from edgecap.cli import main

    folder = _photos(examples, tmp_path)
    index = tmp_path / "photos.npz"
    result = CliRunner().invoke(main, ["search", "--images", str(folder), "--index", str(index), "a cat"])
    assert result.exit_code == 2 and "05_broken.jpg" in result.stderr and "skipped" in result.stderr
    assert len(result.stdout.splitlines()) == 6 and "05_broken" not in result.stdout  # the query, its top 5
    saved = PhotoIndex.load(index)
    assert len(saved.paths) == 9 and saved.progress is None
    assert not list(tmp_path.glob("photos.npz.partial*")) and not list(tmp_path.glob(".*tmp*"))


def test_a_killed_index_build_resumes_where_it_was_saved(retriever, examples, tmp_path, monkeypatch):
    folder = _photos(examples, tmp_path)
    photos = sorted(folder.iterdir())
    whole = retriever.index(photos, errors=[]).regions.copy()
    partial = tmp_path / "photos.npz.partial.npz"
    real, calls = retriever.embed_image, []

    def dies_at_the_seventh(photo):
        calls.append(photo)
        if len(calls) == 7:
            raise KeyboardInterrupt  # killed
        return real(photo)

    monkeypatch.setattr(retriever, "embed_image", dies_at_the_seventh)
    with pytest.raises(KeyboardInterrupt):
        retriever.index(photos, errors=[], partial=partial, save_every=2)
    assert PhotoIndex.load(partial).progress["done"] == 6  # saved after photos 2, 4 and 6
    (tmp_path / f".{partial.name}.x1y2.tmp.npz").write_bytes(b"left by a kill while saving")
    calls.clear()
    monkeypatch.setattr(retriever, "embed_image", lambda photo: calls.append(photo) or real(photo))
    errors: list[str] = []
    done = retriever.index(photos, errors=errors, partial=partial, save_every=2)
    assert calls == [p for p in photos[6:] if p.name != "05_broken.jpg"]  # only what was left
    assert len(errors) == 1 and "05_broken.jpg" in errors[0]  # the error saved before the kill
    np.testing.assert_array_equal(done.regions, whole)
    assert not partial.exists() and not list(tmp_path.glob(".*tmp*"))
