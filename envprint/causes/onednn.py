"""The oneDNN cause: whether TensorFlow's CPU kernels ran through oneDNN (a reduction-order change).

Owns: the onednn entry, the saved oneDNN state to put back (``saved_state``: recorded on, or
TensorFlow's default where the state itself was not read), written once and used by the remedy
and by ``verify --investigate``'s child (which sets ``VARIABLE`` before TensorFlow starts and
must report ``onednn`` as wanted, or the run is untestable).
Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from envprint.causes.base import (
    Cause,
    DiffEntry,
    Family,
    Fingerprint,
    Planning,
    Restore,
    Rule,
    Scoring,
    Step,
    field_paths,
    label,
    untestable,
)

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def saved_state(fp: Fingerprint) -> bool | None:
    """oneDNN as the saved host ran it: the recorded state, else TensorFlow's default there, else unknown."""
    o = fp.tensorflow.onednn if fp.tensorflow else None
    return None if o is None else o.enabled if o.enabled is not None else o.default


def flag(on: bool) -> str:
    """The value of ``VARIABLE`` that asks for ``on``."""
    return "1" if on else "0"


def _remedy(c: Scoring, entries: list[DiffEntry]) -> str:
    """Put back the saved effective state, never the value this host already has."""
    want = saved_state(c.saved)
    saved_var = c.saved.env.variables.get(VARIABLE)
    here = c.now(f"env.variables.{VARIABLE}", saved_var)
    if want is None:  # the saved state is unknown: put back the saved variable
        if saved_var == here:
            return "run with the saved host's oneDNN setting (its state was not recorded; envprint diff lists the rest)"
        return (
            f"{f'unset {VARIABLE}' if saved_var is None else f'export {VARIABLE}={saved_var}'} "
            "before TensorFlow is imported, as on the saved host"
        )
    state = "on" if want else "off"
    if here == flag(want):
        return (
            f"{VARIABLE} is already {flag(want)} here, yet oneDNN is not {state}: this CPU or TensorFlow "
            "build decides it; run on a host like the saved one, or accept the drift (verify --rtol)"
        )
    return f"export {VARIABLE}={flag(want)} before TensorFlow is imported (the saved host ran with oneDNN {state})"


def _restore(c: Planning, entries: list[DiffEntry]) -> list[Step]:
    want = saved_state(c.saved)
    if want is None:
        return untestable(c, entries, "the saved host's oneDNN state is unknown")
    env: dict[str, str | None] = {VARIABLE: flag(want)}
    return [Restore("onednn", label(env), env, expect={"onednn": want}, fields=field_paths(entries))]


# fmt: off
FAMILY = Family(
    causes={
        "onednn": Cause(
            "oneDNN setting", "reduction_order", (0.9, 0.3, 0.1, 0.05, 0.05),
            ("{onednn}", "{precision_tolerance}"),
            (Rule("tensorflow.onednn.enabled", "any", 0.7, "saved with oneDNN {a_onoff}, this host has it {b_onoff}: "
                  "expect float noise of up to a few hundred ULP (measured: 720 ULP on MobileNetV2, 0 on an MLP and a "
                  "small CNN)"),
             Rule("*", "any", 0.5, "{path} {a} -> {b}: oneDNN kernels may switch: expect ULP-level noise")),
            "onednn",
            # oneDNN/MKL and their OpenMP, as mapped into the process.
            paths=("tensorflow.onednn*", f"env.variables.{VARIABLE}", "devices.loaded_libraries.dnnl",
                   "devices.loaded_libraries.mkl", "devices.loaded_libraries.iomp5"),
            effective=("tensorflow.onednn.enabled",),
            follows=("tensorflow.onednn.env", "tensorflow.onednn.default", f"env.variables.{VARIABLE}")),
    },
    values={"onednn": _remedy},
    restorers={"onednn": _restore},
    facts=("onednn",),
)
# fmt: on
