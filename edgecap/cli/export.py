"""``edgecap export``: a run to one verified ``.tflite`` file."""

from __future__ import annotations

from pathlib import Path

import click

from edgecap import __version__
from edgecap.cli.common import fail, tensorflow_command


@click.command("export")
@click.argument("source", required=False, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--float32", "mode", flag_value="float32", default=True, help="Float32 weights and activations (default)."
)
@click.option("--float16", "mode", flag_value="float16", help="Float16 weights.")
@click.option("--dynamic", "mode", flag_value="dynamic", help="Int8 weights, float activations (dynamic range).")
@click.option(
    "--int8",
    "mode",
    flag_value="int8",
    help="Int8 weights and activations, calibrated on training photos; the encoder's stem stays float32 (MobileNetV2: Conv1 and blocks 0-3), unless --full-integer.",
)
@click.option(
    "--full-integer",
    is_flag=True,
    help="With --int8: every op in int8, the encoder's stem too (for integer-only accelerators; less accurate).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Output file (default: ./<model name>_<mode>.tflite, e.g. show_attend_tell_flickr8k_int8.tflite).",
)
@click.option(
    "--data-root",
    help="Dataset folder for calibration (training photos) and verification (dev photos); default: the run's data.root or $EDGECAP_DATA_ROOT. Without it, the example photos are used and an int8 export usually fails verification.",
)
@click.option("--calibration-images", type=click.IntRange(1), default=300, show_default=True)
@click.option("--verify-images", type=click.IntRange(1), default=100, show_default=True)
@click.option(
    "--version",
    "model_version",
    default=__version__,
    show_default=True,
    help="Version string stored in the model metadata.",
)
def command(source, mode, output, data_root, calibration_images, verify_images, model_version, full_integer):
    """Export SOURCE (a run directory; default: the released model's checkpoint) to one .tflite file
    with `encode` and `decode_step` signatures, then verify it against Keras.

    The file appears at its path only once verification passed. OUTPUT.verify.json beside it
    holds the verification report; a failed export is kept as OUTPUT.rejected, which the
    runtime refuses to load."""
    tensorflow_command()
    from edgecap.paths import released_dir
    from edgecap.runs import check_run

    source = Path(source) if source else released_dir()
    try:
        if full_integer and mode != "int8":
            raise ValueError("--full-integer applies to --int8 only")
        check_run(source)  # before TensorFlow is imported: a bad run is refused at once
        from edgecap.export.command import run_export

        result = run_export(
            source, mode, output, data_root, calibration_images, verify_images, model_version, full_integer
        )
    except (ValueError, OSError, RuntimeError) as e:
        fail(str(e))
    click.echo(result.report.summary())
    click.echo(f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB)")
