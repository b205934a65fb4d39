"""``cctv-id export-onnx``: the student as an ONNX file, checked against torch."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("export-onnx")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--weights", type=click.Path(dir_okay=False, exists=True),
              help="Student weights file (default: the shipped student of weights/MANIFEST.yaml).")
@click.option("--opset", type=click.IntRange(11, 21), default=17, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def export_onnx(out, weights, opset, fmt):
    """Export the low-resolution student to ONNX (input: normalised (N, 3, S, S) RGB).

    A student trained on equalised chips (its weights' input_norm) expects the uint8 chips
    equalised before that normalisation, as cctv_id.recognize.input_norm does.

    The command runs the exported file in onnxruntime and compares its embeddings with
    torch's; it fails when they differ (cosine < 0.9999).
    """
    from ..errors import ModelError
    from ..recognize.onnx_export import export_student_onnx

    report = export_student_onnx(Path(weights) if weights else None, Path(out), opset=opset)
    if fmt == "json":
        click.echo(json.dumps(report))
    else:
        norm = "" if report["input_norm"] == "none" else f", chips {report['input_norm']}d first"
        click.echo(f"wrote {report['onnx']} ({report['model']}, {report['input_size']} px input{norm}); "
                   f"onnxruntime vs torch on {report['n']} chips: max |diff| {report['max_abs_diff']:.2e}, "
                   f"min cosine {report['min_cosine']:.6f}")
    if report["min_cosine"] < 0.9999:
        raise ModelError(f"onnxruntime output differs from torch (min cosine {report['min_cosine']:.6f})")


COMMANDS = [export_onnx]
