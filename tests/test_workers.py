"""`edgecap caption --workers N`: photos captioned by N processes, output as one process writes it."""

import json
import shutil
import subprocess
import sys

import pytest


def _caption(folder, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgecap.cli", "caption", str(folder), "--json", "--tagger", "none", *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _records(stdout: str) -> list[dict]:
    records = [json.loads(line) for line in stdout.splitlines()]
    for record in records:
        record.pop("timings_ms")
    return records


@pytest.fixture(scope="module")
def folder(tmp_path_factory, examples):
    """17 photos (the examples, copied) and, in the middle by name, a file that is not a photo."""
    out = tmp_path_factory.mktemp("photos")
    for i in range(6):
        for photo in sorted(examples.glob("*.jpg")):
            shutil.copy(photo, out / f"{i}_{photo.name}")
    (out / "3_broken.jpg").write_bytes(b"not a jpeg")
    return out


def test_two_workers_give_the_serial_output_in_order_and_isolate_a_bad_photo(folder):
    serial, pooled = _caption(folder, "--workers", "1"), _caption(folder, "--workers", "2")
    assert serial.returncode == pooled.returncode == 2, pooled.stderr[-2000:]  # 2: a photo could not be read
    one, two = _records(serial.stdout), _records(pooled.stdout)
    assert len(one) == 19 and [r["image"] for r in one] == sorted(r["image"] for r in one)
    assert two == one  # the same captions, log-probabilities and order
    broken = [r for r in two if r["error"]]
    assert len(broken) == 1 and broken[0]["image"].endswith("3_broken.jpg") and "3_broken.jpg" in broken[0]["error"]
    assert "3_broken.jpg" in pooled.stderr and "Traceback" not in pooled.stderr


def test_workers_caption_with_the_chosen_model_and_decoding(folder, tmp_path):
    """The workers load the same file with the same options (a greedy 2-best would be refused)."""
    args = ("--model", "multimodal_rnn_flickr8k", "--beam-size", "2", "--nbest", "2")
    serial, pooled = _caption(folder, *args, "--workers", "1"), _caption(folder, *args, "--workers", "2")
    assert _records(pooled.stdout) == _records(serial.stdout)
    assert all(len(r["nbest"]) == 2 for r in _records(pooled.stdout) if not r["error"])


def test_the_pools_manager_thread_has_ended_when_the_last_caption_is_out(examples):
    """Left running, the pool's manager thread races the interpreter's exit, which then can print
    "OSError: [Errno 9] Bad file descriptor" after the captions (CPython 3.11)."""
    import threading
    from concurrent.futures.process import _ExecutorManagerThread

    from edgecap.paths import default_model
    from edgecap.runtime import CaptionerOptions
    from edgecap.runtime.pool import caption_in_workers

    photos = sorted(examples.glob("*.jpg"))
    out = list(caption_in_workers(default_model(), CaptionerOptions(), photos, 2))
    assert [image for image, _, _ in out] == [str(p) for p in photos] and all(r.text for _, r, _ in out)
    assert not [t for t in threading.enumerate() if isinstance(t, _ExecutorManagerThread)]


def test_a_worker_killed_mid_batch_loses_no_photo(examples):
    """Issue 48, class 2: SIGKILL to a worker (as the OOM killer sends it) while photos are in
    flight: they are captioned again by a fresh pool, and every path ends as a record."""
    import multiprocessing
    import os
    import signal

    from edgecap.paths import default_model
    from edgecap.runtime import CaptionerOptions
    from edgecap.runtime.pool import caption_in_workers

    photos = [str(p) for p in sorted(examples.glob("*.jpg"))] * 10
    retried: list[str] = []
    records = caption_in_workers(default_model(), CaptionerOptions(taggers=()), photos, 2, retried.append)
    out = [next(records)]  # the pool is up and photos are in flight
    os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)  # one of the pool's workers
    out += list(records)
    assert [image for image, _, _ in out] == photos
    assert all(result is not None and result.text for _, result, error in out), [e for _, _, e in out if e]
    assert 1 <= len(retried) <= 4  # the photos in flight (at most 2 x workers)
    first = {p: r.text for p, r, _ in out[:3]}
    assert all(result.text == first[image] for image, result, _ in out)  # the same captions after the restart


def test_the_taggers_threads_one_process_against_workers():
    """One process: the detector gets TAGGER_THREADS (1: it runs beside the encode); a worker:
    every unset thread count is 1 (the workers share the cores); a count the options set is kept."""
    from edgecap.runtime import Captioner, CaptionerOptions, TaggerOptions
    from edgecap.runtime.captioner import TAGGER_THREADS
    from edgecap.runtime.interpreter import usable_cores
    from edgecap.runtime.pool import worker_options

    captioner = Captioner.from_preset("show_attend_tell_flickr8k")
    assert [t.options.num_threads for t in captioner.taggers] == [min(TAGGER_THREADS, usable_cores())]
    worker = worker_options(CaptionerOptions())
    assert worker.num_threads == 1 and worker.tagger_options.num_threads == 1
    assert CaptionerOptions().overlap_taggers and not worker.overlap_taggers  # tags first, on the worker's thread
    chosen = worker_options(CaptionerOptions(num_threads=2, tagger_options=TaggerOptions(num_threads=3)))
    assert chosen.num_threads == 2 and chosen.tagger_options.num_threads == 3


def test_taggers_first_on_the_calling_thread_give_the_same_captions(examples):
    """overlap_taggers=False (what workers use) changes where the detector runs, not what it says."""
    from edgecap.runtime import Captioner, CaptionerOptions

    photos = sorted(examples.glob("*.jpg"))
    results = []
    for overlap in (True, False):
        with Captioner.from_preset("show_attend_tell_flickr8k", CaptionerOptions(overlap_taggers=overlap)) as c:
            results.append(
                [(r.text, r.log_prob, [t.to_json() for t in r.tags], r.constraints) for r in map(c.caption, photos)]
            )
            assert (c._pool is None) is not overlap  # no tagger thread without the overlap
    assert results[0] == results[1] and any(tags for _, _, tags, _ in results[0])
