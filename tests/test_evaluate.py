"""`edgecap evaluate` on a run (Keras) and on its float32 export (TFLite) give the same captions."""

import json
import shutil
import subprocess
import sys

import pytest


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR and the PTB tokenizer need Java")
def test_evaluate_run_and_export_agree(tiny_run, tiny_float32, tmp_path):
    def run(source, name, *extra):
        out = tmp_path / f"{name}.json"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "edgecap.cli",
                "evaluate",
                str(source),
                "--split",
                "dev",
                "--beam-size",
                "2",
                "--limit",
                "6",
                "--output",
                str(out),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(out.read_text())

    keras = run(tiny_run, "keras")
    tflite = run(tiny_float32, "tflite", "--config", str(tiny_run / "config.toml"))
    assert set(keras["metrics"]) == {
        *("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"),
        *("CHAIRs", "CHAIRi"),  # hallucination (edgecap.evaluation.chair)
    }
    assert keras["images"] == tflite["images"] > 0
    assert [c["caption"] for c in keras["captions"]] == [c["caption"] for c in tflite["captions"]]
    assert keras["metrics"] == pytest.approx(tflite["metrics"], abs=1e-6)

    # captions made elsewhere (`edgecap caption --json`, e.g. on a device) are scored as they are
    made = tmp_path / "device.jsonl"
    made.write_text(
        "".join(
            json.dumps({"image": f"/pi/photos/{c['image_id']}", "caption": c["caption"], "error": None}) + "\n"
            for c in tflite["captions"]
        )
    )
    scored = run(made, "device", "--config", str(tiny_run / "config.toml"))
    assert scored["images"] == tflite["images"] and scored["metrics"] == pytest.approx(tflite["metrics"], abs=1e-6)
    made.write_text(made.read_text() + json.dumps({"image": "elsewhere.jpg", "caption": "a dog", "error": None}) + "\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgecap.cli",
            "evaluate",
            str(made),
            "--split",
            "dev",
            "--config",
            str(tiny_run / "config.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (
        proc.returncode == 1
        and f"{made}:{tflite['images'] + 1}: elsewhere.jpg is not a photo of the dev split" in proc.stderr
    )


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR and the PTB tokenizer need Java")
def test_evaluate_defaults_to_the_decoding_chosen_on_dev(tiny_run, tmp_path):
    from edgecap.evaluation.evaluate import evaluate

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "decoding.json").write_text(json.dumps({"beam_size": 2, "length_penalty": 0.7, "no_repeat_ngram_size": 3}))
    report = evaluate(run, "dev", limit=3)
    assert (report["beam_size"], report["length_penalty"], report["no_repeat_ngram_size"]) == (2, 0.7, 3)
    report = evaluate(run, "dev", beam_size=1, no_repeat_ngram_size=0, limit=3)  # explicit settings win
    assert (report["beam_size"], report["length_penalty"], report["no_repeat_ngram_size"]) == (1, 0.7, 0)


def test_select_decoding_keeps_the_dev_cider_d_winner(tiny_run, tmp_path):
    from edgecap.evaluation.evaluate import select_decoding
    from edgecap.runs import load_run

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    chosen = select_decoding(run, beam_sizes=(1, 2), length_penalties=(0.0, 1.0), no_repeat_ngram_sizes=(0, 2))
    table = chosen["table"]
    assert [(r["beam_size"], r["length_penalty"], r["no_repeat_ngram_size"]) for r in table] == [
        (1, 0.0, 0),
        (2, 0.0, 0),
        (2, 1.0, 0),
        (1, 0.0, 2),
        (2, 0.0, 2),
        (2, 1.0, 2),
    ]
    assert all(0.0 <= r["BLEU-4"] <= 100.0 and r["CIDEr-D"] >= 0.0 and r["mean_words"] > 0 for r in table)
    best = max(table, key=lambda r: r["CIDEr-D"])
    assert (chosen["beam_size"], chosen["length_penalty"], chosen["no_repeat_ngram_size"]) == (
        best["beam_size"],
        best["length_penalty"],
        best["no_repeat_ngram_size"],
    )
    assert json.loads((run / "decoding.json").read_text()) == chosen
    assert load_run(run)[0].decode.beam_size == best["beam_size"]
