"""One Captioner or Retriever shared by several threads gives what serial calls give (issue 31)."""

import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageOps

from edgecap.runtime import Captioner
from edgecap.runtime.retriever import Retriever

THREADS, ROUNDS = 4, 3


@pytest.fixture(scope="module")
def photos(examples, tmp_path_factory):
    """The example photos and three views of each (12 distinct photos)."""
    out = tmp_path_factory.mktemp("views")
    paths = []
    for photo in sorted(examples.glob("*.jpg")):
        image = Image.open(photo).convert("RGB")
        for name, view in (
            ("", image),
            ("m", ImageOps.mirror(image)),
            ("r", image.rotate(90)),
            ("g", ImageOps.grayscale(image)),
        ):
            paths.append(out / f"{name}{photo.name}")
            view.save(paths[-1], quality=92)
    return paths


def _in_threads(fn, items):
    """``fn`` over ``items`` ROUNDS times in THREADS threads, each round in another order: ``[(item, result)]``."""
    work = []
    for r in range(ROUNDS):
        order = list(items)
        random.Random(r).shuffle(order)
        work += order
    with ThreadPoolExecutor(THREADS) as pool:
        return list(zip(work, pool.map(fn, work)))


def test_one_captioner_in_several_threads_captions_as_in_series(photos):
    captioner = Captioner.from_preset("show_attend_tell_flickr8k")  # beam 3, the detector's tags, constraints
    serial = {p: captioner.caption(p) for p in photos}
    assert len({r.text for r in serial.values()}) > 4
    for photo, result in _in_threads(captioner.caption, photos):
        assert (result.text, result.constraints) == (serial[photo].text, serial[photo].constraints), photo
        assert result.best.log_prob == pytest.approx(serial[photo].best.log_prob, abs=1e-6)


def test_one_retriever_in_several_threads_embeds_as_in_series(photos):
    retriever = Retriever.from_preset("visual_semantic_alignment_flickr8k")
    sentences = [["a dog runs"], ["a cat on a sofa", "two men"], ["a cup of coffee", "a red bus", "snow", "a child"]]
    serial_photos = {p: retriever.embed_image(p) for p in photos}
    serial_text = {tuple(s): retriever.embed_sentences(s) for s in sentences}
    for photo, regions in _in_threads(retriever.embed_image, photos):
        np.testing.assert_array_equal(regions, serial_photos[photo])
    for batch, vectors in _in_threads(lambda s: retriever.embed_sentences(list(s)), [tuple(s) for s in sentences]):
        for got, want in zip(vectors, serial_text[batch]):
            np.testing.assert_array_equal(got, want)


def test_ctrl_c_exits_130_with_whole_json_lines(examples):
    import json
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "edgecap.cli", "caption", "--json", "--tagger", "none", *[str(examples)] * 200]
    # a job started in the background (`cmd &` without job control) inherits SIGINT ignored, and a
    # Python started so never raises KeyboardInterrupt: give the command Ctrl-C as a terminal would
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = proc.stdout.readline()  # captioning has started
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    lines = [first, *rest.splitlines(keepends=True)]
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, (len(lines), err[-2000:])
    assert len(lines) < 600 and all(json.loads(line)["caption"] for line in lines)
