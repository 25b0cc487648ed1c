"""Shared fixtures. Tests that need ``../shared`` (Flickr8k, MobileNetV2 weights) skip without it;
the rest train, export and caption tiny models on the photos in ``examples/``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from edgecap.paths import examples_dir, released_dir
from edgecap.utils import shared_dir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = shared_dir()
FLICKR = SHARED / "data" / "flickr8k"
WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.0_224_no_top.weights.h5"
HAVE_SHARED = FLICKR.is_dir() and WEIGHTS.is_file()
needs_shared = pytest.mark.skipif(
    not HAVE_SHARED, reason=f"needs ../shared (Flickr8k and MobileNetV2 weights) at {SHARED}; set EDGECAP_SHARED"
)
needs_release = pytest.mark.skipif(
    not (released_dir() / "best.weights.h5").is_file(), reason="the released checkpoint is not in export/"
)


@pytest.fixture(scope="session")
def flickr_root() -> Path:
    if not HAVE_SHARED:
        pytest.skip(f"needs ../shared at {SHARED}")
    return FLICKR


@pytest.fixture(scope="session")
def examples() -> Path:
    return examples_dir()


@pytest.fixture(scope="session", autouse=True)
def _feature_cache(tmp_path_factory):
    """Keep the tests' feature caches out of the user's ~/.cache."""
    os.environ["EDGECAP_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


_BARE: dict[str, Path] = {}
BARE_SEED = 0  #: the random encoder's draw (scripts/bare_fixture_agreement.py tries others)


def bare_data() -> tuple[Path, Path]:
    """Without ../shared: ``(photo folder, encoder weights)`` made once per session.

    The folder holds 12 photos, four views of each photo in ``examples/`` (as is, mirrored,
    zoomed, rotated) with its captions, so that batches of 8 and 8-image slices exist; the
    weights are a random MobileNetV2 whose BatchNorm statistics come from those photos (with
    the initial ones, mean 0 and variance 1, activations shrink to ~1e-12, zero in the float16
    feature cache, and nothing would train). The weights are drawn from :data:`BARE_SEED`, so that
    every run and machine trains the same tiny models. A tiny run on a random encoder has nearly
    tied words: the int8 file of ``tests/test_adapt.py``'s adapted run agreed with Keras on 0.53
    to 0.91 of its greedy words over seeds 0-11 (0.77 with 0;
    ``python scripts/bare_fixture_agreement.py --seeds 12``), and on 0.48, below the 0.50 bar,
    with one unseeded draw in CI.
    """
    if not _BARE:
        import tempfile

        import keras
        import numpy as np
        from PIL import Image, ImageOps

        from edgecap.runtime.preprocessing import load_image

        root = Path(tempfile.mkdtemp(prefix="edgecap-bare-"))
        folder = root / "photos"
        folder.mkdir()
        captions = [
            line.split("\t", 1) for line in (examples_dir() / "captions.txt").read_text().splitlines() if line.strip()
        ]
        views = {
            "": lambda im: im,
            "mirrored_": ImageOps.mirror,
            "zoomed_": lambda im: ImageOps.fit(
                im.crop((im.width // 8, im.height // 8, im.width * 7 // 8, im.height * 7 // 8)), im.size
            ),
            "rotated_": lambda im: im.rotate(90, expand=True),
        }
        lines = []
        for photo in sorted(examples_dir().glob("*.jpg")):
            image = Image.open(photo).convert("RGB")
            for prefix, view in views.items():
                view(image).save(folder / f"{prefix}{photo.name}", quality=90)
                lines += [f"{prefix}{photo.name}\t{text}" for name, text in captions if name == photo.name]
        (folder / "captions.txt").write_text("\n".join(lines) + "\n")
        keras.utils.set_random_seed(BARE_SEED)
        net = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(224, 224, 3))
        for layer in net.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.0  # the moving statistics become those of the next batch
        photos = np.stack([load_image(p, 224) for p in sorted(folder.glob("*.jpg"))]).astype("float32")
        net(photos / 127.5 - 1.0, training=True)
        weights = root / "random_mobilenet_v2.weights.h5"
        net.save_weights(weights)
        _BARE.update(folder=folder, weights=weights)
    return _BARE["folder"], _BARE["weights"]


def tiny_config(tmp_dir: Path, on_flickr: bool, **train):
    from edgecap.config import Config

    cfg = Config()
    if on_flickr:
        cfg.data.root, cfg.data.train_limit, cfg.data.dev_limit = str(FLICKR), 120, 24
        cfg.model.encoder_weights = str(WEIGHTS)
    else:
        folder, weights = bare_data()
        cfg.data.dataset, cfg.data.root, cfg.data.min_count = "folder", str(folder), 1
        cfg.model.encoder_weights = str(weights)
    cfg.model.embedding_dim, cfg.model.hidden_dim, cfg.model.attention_dim = 32, 48, 32
    cfg.train.batch_size, cfg.train.epochs, cfg.train.warmup_steps, cfg.train.patience = 8, 2, 0, 10
    cfg.train.jit_compile = False
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny captioner trained for a few steps: on a Flickr8k slice when ../shared is here, else on examples/."""
    from edgecap.training.trainer import train

    run = tmp_path_factory.mktemp("tiny_run")
    cfg = tiny_config(run, HAVE_SHARED, max_steps_per_epoch=15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, run)
    return run


@pytest.fixture(scope="session")
def tiny_float32(tiny_run, tmp_path_factory) -> Path:
    from edgecap.export.command import run_export

    out = tmp_path_factory.mktemp("export") / "tiny_float32.tflite"
    run_export(tiny_run, "float32", out, verify_images=8)
    return out


#: what makes a test behave otherwise without ../shared (its fixtures, its source, its skip reason)
_SHARED_FIXTURES = {"tiny_run", "tiny_float32", "flickr_root"}
_SHARED_NAMES = ("HAVE_SHARED", "needs_shared", "bare_data", "tiny_config", "shared_dir", "FLICKR", "WEIGHTS")


def pytest_collection_modifyitems(config, items):
    """Mark ``data_dependent`` every test whose outcome can change without ``../shared``: the
    bare-clone pass of ``.ci/run`` runs only these (the others do the same thing in both passes)."""
    import inspect

    def source(function) -> str:
        try:
            return inspect.getsource(function)
        except (OSError, TypeError):
            return ""

    for item in items:
        fixtures = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        functions = [getattr(item, "function", None), *(d.func for defs in fixtures.values() for d in defs)]
        text = "".join(source(f) for f in functions if f is not None)
        reasons = " ".join(str(m.kwargs.get("reason", "")) for m in item.iter_markers("skipif"))
        if (
            _SHARED_FIXTURES & set(getattr(item, "fixturenames", ()))
            or any(n in text for n in _SHARED_NAMES)
            or "../shared" in reasons
        ):
            item.add_marker(pytest.mark.data_dependent)
