"""The browser's files and server (edgecap/web): a web file computes what the released file
computes, carries its own checked digest, and is refused by the Python captioner; the manifest
is rebuilt only when a release changes; the demo server sends the isolation headers. The page
itself is tested in headless Chromium (web/test/, run by .ci/run)."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgecap.runtime import Captioner
from edgecap.runtime import metadata as md
from edgecap.runtime.interpreter import make_interpreter
from edgecap.runtime.presets import default_preset, preset_path, tagger_path
from edgecap.web.files import WebFileError, build, static_step, web_file
from edgecap.web.serve import HEADERS, make_server


def _runner(data: bytes, key: str):
    interpreter = make_interpreter(data)[0]
    return interpreter.get_signature_runner(key)


@pytest.mark.parametrize("name", ["show_attend_tell_flickr8k", "multimodal_rnn_flickr8k"])
def test_a_web_file_steps_exactly_as_the_released_file(name):
    src = preset_path(name)
    released = src.read_bytes()
    web = web_file(src, 3)
    meta = md.read(web, "web")  # its own digest, checked
    assert meta.extra["web"] == {"step_batch": 3, "source_sha256": md.digest(md.flatbuffer(released))}
    a, b = _runner(md.flatbuffer(released), "decode_step"), _runner(md.flatbuffer(web), "decode_step")
    shapes = {n: d["shape_signature"].tolist() for n, d in b.get_input_details().items()}
    assert shapes["tokens"] == [3]
    rng = np.random.default_rng(0)
    inputs = {}
    for n, d in a.get_input_details().items():
        shape = [3 if s == -1 else int(s) for s in d["shape_signature"]]
        inputs[n] = (rng.integers(4, 50, shape) if d["dtype"] == np.int32 else rng.normal(size=shape)).astype(
            d["dtype"]
        )
    out_a, out_b = a(**inputs), b(**inputs)
    assert set(out_a) == set(out_b)
    for k in out_a:
        np.testing.assert_array_equal(out_a[k], out_b[k], err_msg=k)
    enc_a, enc_b = _runner(md.flatbuffer(released), "encode"), _runner(md.flatbuffer(web), "encode")
    image = rng.integers(0, 256, (1, 224, 224, 3)).astype(np.uint8)
    ea, eb = enc_a(image=image), enc_b(image=image)
    for k in ea:
        np.testing.assert_array_equal(ea[k], eb[k], err_msg=k)


def test_the_python_captioner_refuses_a_web_file(tmp_path):
    path = tmp_path / "default.web3.tflite"
    path.write_bytes(web_file(default_preset(), 3))
    with pytest.raises(
        md.ModelFileError, match=r"default\.web3\.tflite: a web file \(decode_step's batch fixed for LiteRT.js"
    ):
        Captioner.from_file(path)


def test_a_damaged_web_file_is_refused_by_its_digest(tmp_path):
    data = bytearray(web_file(default_preset(), 3))
    data[5000] ^= 1
    with pytest.raises(md.ModelFileError, match="digest"):
        md.read(bytes(data), "damaged")


def test_a_model_without_a_step_or_a_bad_batch_is_refused():
    detector = tagger_path("coco_detector").read_bytes()
    with pytest.raises(WebFileError, match="no 'decode_step' signature"):
        static_step(detector, 3, "coco_detector.tflite")
    with pytest.raises(WebFileError, match="must be in 1..1024"):
        static_step(md.flatbuffer(default_preset().read_bytes()), 0, "x")


def test_build_writes_the_manifest_and_reuses_unchanged_files(tmp_path):
    written = []
    manifest = build(tmp_path, names=["multimodal_rnn_flickr8k"], progress=written.append)
    assert written == ["multimodal_rnn_flickr8k.web3.tflite", "coco_detector.web.tflite"]
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert saved == manifest
    entry = manifest["models"][0]
    assert entry["step_batch"] == 3 and (tmp_path / entry["file"]).stat().st_size == entry["bytes"]
    rules = manifest["pipeline"]
    assert rules["taggers"] == ["coco_detector"] and "person" in rules["synonyms"]
    assert set(rules["constraints"]) >= {"min_score", "margin", "untagged_penalty"}
    # the detector's outputs are declared with the shapes the interpreter gives them
    interpreter = make_interpreter((tmp_path / "coco_detector.web.tflite").read_bytes())[0]
    assert [d["shape"].tolist() for d in interpreter.get_output_details()] == [[1, 10, 4], [1, 10], [1, 10], [1]]
    written.clear()
    build(tmp_path, names=["multimodal_rnn_flickr8k"], progress=written.append)
    assert written == []  # nothing changed: nothing rewritten
    (tmp_path / entry["file"]).write_bytes(b"truncated")
    build(tmp_path, names=["multimodal_rnn_flickr8k"], progress=written.append)
    assert written == [entry["file"]]  # a damaged copy is made again


def test_the_demo_server_sends_the_isolation_headers(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "index.html").write_text("<!doctype html><title>t</title>")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"\xff\xd8")
    server = make_server(tmp_path, port=0, examples=photos)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/demo/") as r:
            for k, v in HEADERS.items():
                assert r.headers[k] == v
        with urllib.request.urlopen(f"{base}/examples/list.json") as r:
            assert json.load(r) == ["a.jpg"]
        with urllib.request.urlopen(f"{base}/examples/a.jpg") as r:
            assert r.read() == b"\xff\xd8"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{base}/")  # no listings
        (tmp_path.parent / "outside.txt").write_text("not served")
        for escape in ("/examples/..%2F..%2Foutside.txt", "/examples/%2E%2E/%2E%2E/outside.txt", "/../outside.txt"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(base + escape)
    finally:
        server.shutdown()
        server.server_close()


def test_demo_build_only_writes_the_web_files(monkeypatch, tmp_path):
    from edgecap.cli import main

    written = {}
    monkeypatch.setattr(
        "edgecap.web.files.build", lambda out, progress=None, **kw: written.setdefault("out", Path(out))
    )
    result = CliRunner().invoke(main, ["demo", "--build-only"])
    assert result.exit_code == 0, result.output
    assert written["out"].parts[-2:] == ("web", "models")
