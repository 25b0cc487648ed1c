"""The stepwise-decoder contract: a model unknown to export and the runtime (a toy GRU with one
state tensor and no memory) exports, verifies and decodes through them unchanged; a file whose
metadata and signatures disagree is refused at load; files from before the contract still load."""

import json
import zipfile

import keras
import numpy as np
import pytest
from keras import ops

from edgecap.models.base import StepwiseCaptioner
from edgecap.runtime import Captioner, CaptionerOptions, ModelFileError
from edgecap.runtime import metadata as md
from edgecap.runtime.contract import AttentionDecl, ContractError, ItemsDecl, StepContract, TensorDecl, infer_contract
from edgecap.runtime.vocabulary import Vocabulary

CAPTIONS = ["a dog runs on the grass", "a cat sits on a mat", "two dogs play in the snow", "a man rides a bike"]


class ToyGRU(StepwiseCaptioner):
    """Mean annotation → GRU state; no memory, no attention (Cho et al. 2014 update/reset gates)."""

    def __init__(self, vocab_size, units=16):
        super().__init__(vocab_size, encoder_weights="none")
        self.units = units
        self.init = keras.layers.Dense(units, activation="tanh")
        self.embed = keras.layers.Embedding(vocab_size, 8)
        self.gates = [
            (keras.layers.Dense(units), keras.layers.Dense(units, use_bias=False)) for _ in range(3)
        ]  # z, r, candidate
        self.out = keras.layers.Dense(vocab_size)

    def step_contract(self):
        return StepContract((TensorDecl("hidden", (self.units,), "state"),))

    def start(self, annotations, training=False):
        return {"hidden": self.init(ops.mean(annotations, axis=1))}

    def step(self, tokens, state, memory, training=False):
        x, h = self.embed(tokens), state["hidden"]
        (wz, uz), (wr, ur), (wh, uh) = self.gates
        z, r = ops.sigmoid(wz(x) + uz(h)), ops.sigmoid(wr(x) + ur(h))
        h = (1 - z) * h + z * ops.tanh(wh(x) + uh(r * h))
        return self.out(h), {"hidden": h}, None


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from edgecap.export.exporter import export_model

    vocab = Vocabulary.build(CAPTIONS, 1)
    keras.utils.set_random_seed(3)
    model = ToyGRU(len(vocab))
    model.build()
    path = export_model(
        model,
        vocab,
        tmp_path_factory.mktemp("toy") / "toy_gru.tflite",
        "float32",
        name="toy_gru",
        architecture="toy_gru",
    )
    return model, vocab, path


def test_a_new_model_exports_verifies_and_captions_through_the_generic_code(toy, examples):
    from edgecap.export.verify import verify_export

    model, vocab, path = toy
    captioner = Captioner.from_file(path, CaptionerOptions(beam_size=3, num_results=2, max_length=6))
    assert (
        captioner.contract.state_names == ("hidden",)
        and not captioner.contract.memory
        and captioner.contract.attention is None
    )
    photos = sorted(examples.glob("*.jpg"))
    report = verify_export(model, captioner, photos, [CAPTIONS] * len(photos), "float32", max_length=6)
    assert report.passed and report.token_agreement == 1.0, report.summary()
    result = captioner.caption(photos[0])
    assert 1 <= len(result.nbest) <= 2 and result.attention.shape == (len(result.tokens), 0)
    assert set(result.tokens) <= set(vocab.words)


def test_a_new_model_calibrates_and_converts_to_int8(toy, examples, tmp_path):
    from edgecap.export.exporter import export_model, representative_dataset

    model, vocab, _ = toy
    photos = sorted(examples.glob("*.jpg"))
    path = export_model(
        model,
        vocab,
        tmp_path / "toy_int8.tflite",
        "int8",
        lambda: representative_dataset(model, photos, CAPTIONS[:3], vocab),
        name="toy_gru",
    )
    captioner = Captioner.from_file(path, CaptionerOptions(beam_size=2, max_length=5))
    assert captioner.metadata.quantization == "int8" and len(captioner.caption(photos[1]).tokens) <= 5


def _with_metadata(path, tmp_path, edit, name="edited.tflite"):
    data, meta = md.read_file(path)
    edit(meta)
    out = tmp_path / name
    out.write_bytes(md.pack(md.flatbuffer(data), meta))
    return out


def test_metadata_that_disagrees_with_the_signatures_is_refused_at_load(toy, tmp_path):
    _, _, path = toy

    def missing(meta):
        meta.contract["tensors"].append({"name": "cell", "shape": [16], "role": "state"})

    def wrong_shape(meta):
        meta.contract["tensors"][0]["shape"] = [17]

    def bad_role(meta):
        meta.contract["tensors"][0]["role"] = "recurrent"

    for edit, message in ((missing, "'cell'"), (wrong_shape, "'hidden' has shape"), (bad_role, "role")):
        bad = _with_metadata(path, tmp_path, edit, f"{edit.__name__}.tflite")
        with pytest.raises(ModelFileError, match=rf"{edit.__name__}\.tflite.*{message}"):
            Captioner.from_file(bad)


def test_a_format_1_file_loads_with_the_contract_read_off_its_signatures(toy, tmp_path):
    _, _, path = toy

    def to_format_1(meta):
        meta.contract, meta.format_version = None, 1

    old = _with_metadata(path, tmp_path, to_format_1, "old.tflite")
    with zipfile.ZipFile(old) as zf:  # a format 1 file has no contract, but its grid
        raw = json.loads(zf.read(md.METADATA_NAME))
    for later in ("contract", "task", "flatbuffer_sha256", "verified"):  # fields of formats 2 and 3
        raw.pop(later)
    raw.update(format_version=1, grid=7, hidden_dim=16, annotation_dim=1280)
    data = md.flatbuffer(old.read_bytes())
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(md.METADATA_NAME, json.dumps(raw))
    old.write_bytes(data + buf.getvalue())
    captioner = Captioner.from_file(old, CaptionerOptions(beam_size=2, max_length=4))
    assert captioner.metadata.legacy_grid == 7 and captioner.contract.state_names == ("hidden",)
    assert len(captioner.caption(np.zeros((32, 32, 3), np.uint8)).tokens) <= 4


def test_infer_contract_and_bad_declarations():
    c = infer_contract(
        {"h": [1, 8], "c": [1, 8], "annotations": [1, 49, 64]},
        {"tokens": [-1], "h": [-1, 8], "c": [-1, 8], "annotations": [-1, 49, 64]},
        {"log_probs": [-1, 10], "h": [-1, 8], "c": [-1, 8], "alpha": [-1, 49]},
        grid=7,
    )
    assert set(c.state_names) == {"h", "c"} and c["annotations"].per_beam and c.attention.shape == (7, 7)
    for kwargs, message in (
        (dict(name="tokens", shape=(2,), role="state"), "reserved"),
        (dict(name="x", shape=(0,), role="state"), ">= 1"),
        (dict(name="x", shape=(2,), role="state", per_beam=True), "per_beam"),
    ):
        with pytest.raises(ContractError, match=message):
            TensorDecl(**kwargs)
    with pytest.raises(ContractError, match="at least one state"):
        StepContract((TensorDecl("m", (3,), "memory"),))
    with pytest.raises(ContractError, match="x.tflite: malformed"):
        StepContract.from_dict({"tensors": [{"shape": [3]}]}, "x.tflite")
    h = TensorDecl("h", (8,), "state")
    with pytest.raises(ContractError, match="over items, but the contract declares none"):
        StepContract((h,), AttentionDecl("weights", (2, 3), "items"))
    with pytest.raises(ContractError, match="over must be one of"):
        AttentionDecl("weights", (3,), "words")
    with pytest.raises(ContractError, match="has the name of a state or memory tensor"):
        StepContract((h,), None, ItemsDecl("h", "scores", 3))
    keys = TensorDecl("keys", (3, 8), "memory")
    items = StepContract((h, keys), AttentionDecl("weights", (2, 3), "items"), ItemsDecl("ids", "scores", 3, ("keys",)))
    assert StepContract.from_dict(items.to_dict()) == items and items.encode_names == ("h", "keys", "ids", "scores")
    for rows in (("h",), ("values",)):  # a state tensor; no such tensor
        with pytest.raises(ContractError, match=f"items rows: '{rows[0]}' is not a memory tensor of shape"):
            StepContract((h, keys), None, ItemsDecl("ids", "scores", 3, rows))
    with pytest.raises(ContractError, match="'keys' is not a memory tensor of shape \\(4, ...\\)"):
        StepContract((h, keys), None, ItemsDecl("ids", "scores", 4, ("keys",)))
    with pytest.raises(
        ContractError, match="m.tflite: the metadata declares 'ids', but the encode output has no such tensor"
    ):
        items.check_signatures(
            {"h": [1, 8], "keys": [1, 3, 8]},
            {"tokens": [-1], "h": [-1, 8], "keys": [1, 3, 8]},
            {"log_probs": [-1, 5], "h": [-1, 8], "weights": [-1, 6]},
            "m.tflite",
        )


def test_a_vocabulary_that_does_not_fit_the_output_is_refused_at_load(toy, tmp_path):
    _, _, path = toy

    def short(meta):
        meta.vocabulary = meta.vocabulary[:-2]

    with pytest.raises(ModelFileError, match=r"short\.tflite.*vocabulary"):
        Captioner.from_file(_with_metadata(path, tmp_path, short, "short.tflite"))
