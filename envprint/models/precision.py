"""What a verify's outputs did against the precision the model computes in (the report's ``precision``).

Codes and numbers only; ``render/precision.py`` words them, ``causes/precision.py`` computes them.
"""

from typing import Literal

from pydantic import Field

from envprint.models.base import Record
from envprint.models.fingerprint import ComputeDtype

Magnitude = Literal["identical", "float32_noise", "half", "bfloat16", "quantization_step", "beyond"]


class PrecisionCheck(Record):
    """What the outputs did, measured against the precision the model computes in."""

    compute: ComputeDtype | None = Field(
        None, description="The model's compute precision, as the record has it (None: not recorded)."
    )
    magnitude: Magnitude = Field(
        description="The smallest class that holds what the outputs did: float32 reduction-order noise, 'half' "
        "(TF32 or float16, about 2^-11 of the output's scale), bfloat16 (about 2^-8), one integer quantization "
        "step, or beyond all of them."
    )
    error: float | None = Field(
        None, description="Largest max_abs / scale over the floating outputs (for integer outputs: max_abs)."
    )
    unit: float | None = Field(None, description="The unit of ``magnitude``: 2^-23, 2^-11, 2^-8, or 1 step.")
    units: float | None = Field(None, description="error / unit.")
    within_compute: bool = Field(
        False, description="The magnitude is no larger than the compute precision's own rounding noise."
    )
    floor_rtol: float | None = Field(
        None, description="The loosest rtol the compute precision needs (None: no floor, e.g. float32)."
    )
    floor_atol_scale: float | None = Field(None, description="... and its atol, as a fraction of the output's scale.")
    tighter: list[str] = Field(
        default_factory=list,
        description="Outputs whose tolerance is tighter than the compute precision can hold across kernels.",
    )
