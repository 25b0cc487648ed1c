"""A new model family is its folder and one registry line: a toy GRU captioner, written into a
folder at run time and registered there, trains, exports, verifies and captions through the
shared trainer, export and runtime, with no other edit anywhere."""

from __future__ import annotations

import sys
import textwrap
import warnings

import pytest

from conftest import HAVE_SHARED, tiny_config

CONFIG = """
from dataclasses import dataclass

from edgecap.models.model_config import ModelConfig


@dataclass
class ToyConfig(ModelConfig):
    architecture: str = "toy_gru"
    units: int = 16
"""

MODEL = '''
import keras
from keras import ops

from edgecap.models.base import StepwiseCaptioner
from edgecap.runtime.contract import StepContract, TensorDecl


class ToyGRU(StepwiseCaptioner):
    """Mean annotation vector → GRU state; no memory, no attention."""

    def __init__(self, vocab_size, config, encoder_weights=None):
        config, encoder = self.checked(config, encoder_weights)
        super().__init__(vocab_size, **encoder)
        self.config = config
        self.init = keras.layers.Dense(config.units, activation="tanh")
        self.embed = keras.layers.Embedding(vocab_size, 8)
        self.cell = keras.layers.GRUCell(config.units)
        self.out = keras.layers.Dense(vocab_size)

    def step_contract(self):
        return StepContract((TensorDecl("hidden", (self.config.units,), "state"),))

    def start(self, annotations, training=False):
        return {"hidden": self.init(ops.mean(annotations, axis=1))}

    def step(self, tokens, state, memory, training=False):
        h, _ = self.cell(self.embed(tokens), [state["hidden"]], training=training)
        return self.out(h), {"hidden": h}, None


def build(model_config, vocab_size, encoder_weights=None, train_config=None):
    model = ToyGRU(vocab_size, model_config, encoder_weights)
    model.build()
    return model
'''


@pytest.fixture
def toy_family(tmp_path, monkeypatch):
    """The folder ``toy_family/`` (config and model) and its registry line."""
    from edgecap.models import registry

    folder = tmp_path / "toy_family"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "config.py").write_text(textwrap.dedent(CONFIG))
    (folder / "model.py").write_text(textwrap.dedent(MODEL))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    from toy_family.config import ToyConfig

    registry.register(registry.Architecture("toy_gru", ToyConfig, "toy_family.model:build"))  # the one registry line
    yield ToyConfig
    sys.modules.pop("toy_family.model", None)
    sys.modules.pop("toy_family.config", None)
    sys.modules.pop("toy_family", None)


@pytest.mark.slow
def test_a_family_registered_at_run_time_trains_exports_and_captions(toy_family, tmp_path, examples):
    from edgecap.config import Config
    from edgecap.export.command import run_export
    from edgecap.models import registry
    from edgecap.runtime import Captioner, CaptionerOptions

    cfg = tiny_config(tmp_path, HAVE_SHARED, epochs=1, max_steps_per_epoch=3)
    cfg.model = toy_family(encoder_weights=cfg.model.encoder_weights, units=24)
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        best = registry.task_of("toy_gru").stage("train")(cfg, run, None, None)
        assert best.is_file() and Config.load(run / "config.toml").model == cfg.model
        result = run_export(run, "float32", tmp_path / "toy.tflite", verify_images=4)
    assert result.report.passed
    captioner = Captioner.from_file(result.path, CaptionerOptions(beam_size=2, max_length=6))
    assert captioner.metadata.architecture == "toy_gru" and captioner.contract.state_names == ("hidden",)
    caption = captioner.caption(examples / "chelsea.jpg")
    assert caption.tokens and all(w in captioner.metadata.vocabulary for w in caption.tokens)
