import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest

from edgecap.config import Config, ConfigError, default_config


def test_shipped_config_loads_and_round_trips(tmp_path):
    cfg = default_config()
    cfg.save(tmp_path / "c.toml")
    assert Config.load(tmp_path / "c.toml") == cfg


@pytest.mark.parametrize(
    "text, message",
    [
        ("[train]\nepoch = 3\n", r"c.toml.*unknown key train.epoch"),
        ("[train]\nepochs = 'many'\n", "train.epochs must be int"),
        ("[nope]\n", r"unknown section \[nope\]"),
        ("[train\n", "not valid TOML"),
    ],
)
def test_bad_config_files_name_the_file(tmp_path, text, message):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        Config.load(p)


def test_overrides():
    cfg = Config()
    cfg.apply_overrides(
        ["train.epochs=3", "train.learning_rate=2e-4", "model.backbone=mobilenet_v2", "train.jit_compile=false"]
    )
    assert (cfg.train.epochs, cfg.train.learning_rate, cfg.train.jit_compile) == (3, 2e-4, False)
    with pytest.raises(ConfigError):
        cfg.apply_overrides(["epochs=3"])
    with pytest.raises(ConfigError):
        cfg.apply_overrides(["train.nothing=1"])


def test_every_shipped_config_is_valid():
    for path in Path(str(resources.files("edgecap") / "configs")).glob("*.toml"):
        assert Config.load(path).problems() == [], path


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=-1", "train.epochs must be a positive integer, got -1"),
        ("train.batch_size=0", "train.batch_size must be a positive integer, got 0"),
        ("train.learning_rate=-1e-3", r"train.learning_rate must be in \[0, 1\)"),
        ("train.ema_momentum=1.0", r"train.ema_momentum must be in \[0, 1\)"),
        ("train.objective=reinforce", "train.objective must be one of"),
        ("decode.no_repeat_ngram_size=1", "decode.no_repeat_ngram_size must be 0"),
        ("data.dataset=coco", "data.dataset must be one of"),
        ("model.dropout=1.5", r"model.dropout must be in \[0, 1\)"),
    ],
)
def test_values_out_of_range_are_refused(override, message):
    cfg = default_config()
    cfg.apply_overrides([override])
    with pytest.raises(ConfigError, match=message):
        cfg.validate()


def test_a_config_error_shows_before_tensorflow_is_imported(tmp_path):
    """`edgecap train` checks the config first: no feature caching, no 25-90 s TensorFlow import."""
    script = (
        "import sys; from edgecap.cli import main\n"
        "try:\n    main(['train', '--run-dir', sys.argv[1], 'train.epochs=-1', 'train.batch_size=0'])\n"
        "except SystemExit as e:\n    print('EXIT', e.code, 'tensorflow' in sys.modules, file=sys.stderr)\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "run")], capture_output=True, text=True, timeout=120
    )
    seconds = time.perf_counter() - t0
    assert (
        "train.epochs must be a positive integer, got -1" in out.stderr
        and "train.batch_size must be a positive integer" in out.stderr
    )
    assert "EXIT 1 False" in out.stderr, out.stderr  # refused, and TensorFlow never imported
    assert not (tmp_path / "run").exists()
    print(f"config error after {seconds:.2f} s")


def test_the_wheel_holds_every_package_of_the_tree_and_the_built_in_models(tmp_path):
    """A model folder is packaged by being there (setup.py finds the packages), and the built-in
    models of export/ (taggers included) install as edgecap.released: a wheel built from this tree has both."""
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    names = set(zipfile.ZipFile(next(tmp_path.glob("edgecap-*.whl"))).namelist())
    tree = {p.parent.relative_to(root).as_posix() + "/__init__.py" for p in (root / "edgecap").rglob("__init__.py")}
    assert tree - names == set()
    released = {f"edgecap/released/{p.name}" for p in (root / "export").glob("*_int8.tflite")}
    taggers = {f"edgecap/released/taggers/{p.name}" for p in (root / "export" / "taggers").iterdir()}
    assert released and released <= names
    assert len(taggers) == 9 and taggers <= names  # two taggers: model, labels, words, card; their licence


def test_a_run_config_from_before_the_loss_weight_moved_still_loads(tmp_path):
    """``train.doubly_stochastic`` is now Show, Attend and Tell's ``model.doubly_stochastic``: an
    old run's config.toml puts it there, and drops it for a family it never applied to."""
    from edgecap.config import Config

    old = tmp_path / "config.toml"
    old.write_text('[model]\narchitecture = "show_attend_tell"\n\n[train]\ndoubly_stochastic = 0.25\nepochs = 3\n')
    cfg = Config.load(old)
    assert cfg.model.doubly_stochastic == 0.25 and cfg.train.epochs == 3 and not hasattr(cfg.train, "doubly_stochastic")
    assert "doubly_stochastic = 0.25" in cfg.to_toml().split("[train]")[0]
    old.write_text('[model]\narchitecture = "multimodal_rnn"\n\n[train]\ndoubly_stochastic = 0.0\n')
    assert not hasattr(Config.load(old).model, "doubly_stochastic")
    with pytest.raises(ConfigError, match="train.no_such_key"):
        Config.from_dict({"train": {"no_such_key": 1}})
