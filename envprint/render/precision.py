"""The words of a verify report's ``precision``: what the model computes in, what the outputs did
against it, and the tolerances tighter than that precision can hold.

The data (classes, units, floors) are ``causes.precision``'s; only sentences are made here.
Must not import TensorFlow or NumPy.
"""

from __future__ import annotations

from envprint.models import PrecisionCheck, Report

MAGNITUDE_WORDS = {
    "identical": "bit-identical",
    "float32_noise": "float32 reduction-order noise",
    "half": "TF32/float16 rounding",
    "bfloat16": "bfloat16 rounding",
    "quantization_step": "integer quantization steps",
    "beyond": "more than any rounding accounts for",
}
UNIT_WORDS = {"float32_noise": "2^-24", "half": "2^-11", "bfloat16": "2^-8", "quantization_step": "step"}
SOURCE_WORDS = {
    "keras_layer_dtypes": "its layers' compute dtypes",
    "tflite_tensor_types": "its quantized tensor types",
    "tensorflow_tf32": "float32 layers with TF32 on an Ampere-or-newer GPU",
    "openvino_inference_precision": "OpenVINO's inference precision",
}


def _moved(p: PrecisionCheck) -> str:
    if p.magnitude == "identical":
        return "the outputs are bit-identical"
    if p.units is None or p.magnitude not in UNIT_WORDS:
        return f"the outputs moved {MAGNITUDE_WORDS[p.magnitude]}"
    size = "of their scale" if p.magnitude != "quantization_step" else ""
    amount = f"{p.units:.1f} x {UNIT_WORDS[p.magnitude]} {size}".rstrip()
    own = ", within its own rounding" if p.within_compute else ""
    return f"the outputs moved {amount}: {MAGNITUDE_WORDS[p.magnitude]}{own}"


def precision_lines(report: Report) -> list[str]:
    """A line on the model's precision below float32 (and what the outputs did), a warning per tighter tolerance."""
    p = report.precision
    if p is None or p.compute in (None, "float32", "float64"):
        return []
    lines = [f"Precision: the model computes in {p.compute}; {_moved(p)}"]
    for name in p.tighter:
        o = next(o for o in report.outputs if o.name == name)
        lines.append(
            f"warning: output {name!r}: the tolerance (rtol={o.rtol:g}, atol={o.atol:g}) is tighter than {p.compute} "
            f"can hold (rtol {p.floor_rtol:g}, atol {p.floor_atol_scale:g} x the output's largest |value| = "
            f"{(p.floor_atol_scale or 0) * (o.scale or 0):g}): a change of kernel will fail it"
        )
    return lines
