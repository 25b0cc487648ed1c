import pytest

from edgecap.config import Config, ConfigError
from edgecap.evaluation.evaluate import default_config


def test_shipped_config_loads_and_round_trips(tmp_path):
    cfg = default_config()
    cfg.save(tmp_path / "c.toml")
    assert Config.load(tmp_path / "c.toml") == cfg


@pytest.mark.parametrize("text, message", [
    ("[train]\nepoch = 3\n", r"c.toml.*unknown key train.epoch"),
    ("[train]\nepochs = 'many'\n", "train.epochs must be int"),
    ("[nope]\n", r"unknown section \[nope\]"),
    ("[train\n", "not valid TOML"),
])
def test_bad_config_files_name_the_file(tmp_path, text, message):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        Config.load(p)


def test_overrides():
    cfg = Config()
    cfg.apply_overrides(["train.epochs=3", "train.learning_rate=2e-4", "model.backbone=mobilenet_v2", "train.jit_compile=false"])
    assert (cfg.train.epochs, cfg.train.learning_rate, cfg.train.jit_compile) == (3, 2e-4, False)
    with pytest.raises(ConfigError):
        cfg.apply_overrides(["epochs=3"])
    with pytest.raises(ConfigError):
        cfg.apply_overrides(["train.nothing=1"])
