"""The determinism cause: op determinism, TF32, XLA and grappler, the process settings that reorder or round.

Owns: the determinism_settings entry; ``SUB_SETTINGS``, the one list of its sub-settings (the
fingerprint paths and variables of each, and the runtime key a child applies), from which the
entry's paths, the TF32 fit, the remedy and the restore steps all derive; the calls that set
them, in words (``envprint._tf.settings`` makes them). A child must report each runtime value
it was given (facts ``op_determinism``, ``tensor_float_32``, ``jit``).
Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from typing import Any

from envprint.causes.base import (
    Call,
    Cause,
    Decided,
    DiffEntry,
    Family,
    Planning,
    Restore,
    Rule,
    Scoring,
    Step,
    field_paths,
    label,
    matches,
    saved_variables,
    span,
    variable_words,
)
from envprint.causes.gpu import any_gpu, gpu_names

# (name, fingerprint paths, runtime key): the first path is the recorded setting, the rest are
# the variables that ask for it.
SUB_SETTINGS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("op determinism",
     ("tensorflow.op_determinism", "env.variables.TF_DETERMINISTIC_OPS", "env.variables.TF_CUDNN_DETERMINISTIC"),
     "op_determinism"),
    ("TF32", ("tensorflow.tensor_float_32", "env.variables.NVIDIA_TF32_OVERRIDE", "env.variables.*TF32*"),
     "tensor_float_32"),
    ("XLA", ("tensorflow.jit", "env.variables.*XLA_FLAGS"), "jit"),
    ("grappler", ("tensorflow.grappler*",), "grappler"),
)  # fmt: skip
TF32_PATHS = dict((key, paths) for _, paths, key in SUB_SETTINGS)["tensor_float_32"]

# fmt: off
CALLS = {
    "op_determinism": Call("tensorflow.op_determinism",
                           lambda v: "tf.config.experimental.enable_op_determinism()" if v else
                           "do not enable op determinism (no enable_op_determinism(), unset TF_DETERMINISTIC_OPS)"),
    "tensor_float_32": Call("tensorflow.tensor_float_32",
                            lambda v: f"tf.config.experimental.enable_tensor_float_32_execution({bool(v)})"),
    "jit": Call("tensorflow.jit", lambda v: f"tf.config.optimizer.set_jit({v or False!r})"),
    "grappler": Call("tensorflow.grappler.*", lambda v: f"tf.config.optimizer.set_experimental_options({v!r})"),
}
# A setting's remedy by its saved value ("*": any other); {call} is the call that sets the saved value.
BY_VALUE: dict[str, dict[Any, str]] = {
    "tensor_float_32": {False: "export NVIDIA_TF32_OVERRIDE=0 or {call}", "*": "{call}, unset NVIDIA_TF32_OVERRIDE"},
    "jit": {"": "{call}, and load without jit_compile=True", "*": "{call}"},
}
# fmt: on


def _words(e: DiffEntry) -> str | None:
    name = e.path.rsplit(".", 1)[1]
    if e.path.startswith("env.variables."):
        return variable_words(name, e.a)
    key, call = next(((k, c) for k, c in CALLS.items() if matches(e.path, c.path)), (None, None))
    if call is None:
        return None
    words = call.words({name: e.a} if call.path.endswith("*") else e.a)
    by_value = BY_VALUE.get(key or "", {"*": "{call}"})
    value = e.a if isinstance(e.a, (str, bool, type(None))) and e.a in by_value else "*"
    return by_value[value].format(call=words)


def _remedy(c: Scoring, entries: list[DiffEntry]) -> str:
    return "; ".join(dict.fromkeys(w for w in map(_words, entries) if w))


def _restore(c: Planning, entries: list[DiffEntry]) -> list[Step]:
    steps: list[Step] = []
    tf = c.saved.tensorflow
    for name, patterns, key in SUB_SETTINGS:
        mine = [e for e in entries if matches(e.path, patterns)]
        if not mine:
            continue
        env = saved_variables(mine)
        runtime: dict[str, Any] = {}
        value = getattr(tf, key, None) if tf else None
        if key == "grappler" and value is not None:
            value = {k: v for k, v in value.items() if f"tensorflow.grappler.{k}" in field_paths(mine)}
        if value is not None and (key != "op_determinism" or value):  # a fresh process starts with it off
            runtime[key] = value
        if not env and not runtime:
            steps.append(
                Decided(
                    "determinism_settings",
                    span(mine),
                    "ruled_out",
                    f"not run: a fresh process already has {name} as the saved host had it, "
                    "and the control run still differs",
                    fields=field_paths(mine),
                )
            )
            continue
        if key == "tensor_float_32" and not gpu_names(c.saved) and not c.current_gpus:
            steps.append(
                Decided(
                    "determinism_settings",
                    span(mine),
                    "ruled_out",
                    "not run: TF32 changes GPU kernels only, and neither host has a GPU",
                    fields=field_paths(mine),
                )
            )
            continue
        extra = ", ".join(f"{k}={v!r}" for k, v in runtime.items())
        steps.append(
            Restore(
                "determinism_settings",
                f"{name}: " + label(env, extra),
                env,
                runtime,
                expect={k: v for k, v in runtime.items() if k != "grappler"},
                fields=field_paths(mine),
            )
        )
    return steps


# fmt: off
FAMILY = Family(
    causes={
        "determinism_settings": Cause(
            "determinism or XLA settings", "reduction_order", (0.85, 0.3, 0.1, 0.05, 0.1),
            ("{determinism}", "{precision_tolerance}"),
            (Rule("tensorflow.tensor_float_32", "gpu_off_to_on", 0.85,
                  "TF32 off -> on on a GPU: expect relative error near 1e-3 in matmuls and convolutions",
                  predicts="precision"),
             Rule("|".join(TF32_PATHS), "gpu", 0.6, "{path} {a} -> {b} on a GPU: TF32 rounding differs "
                  "between the reference and this host: expect relative error near 1e-3", predicts="precision"),
             Rule("|".join(TF32_PATHS), "any", 0.05, "{path} {a} -> {b}, but no GPU is recorded on either host: "
                  "no effect expected"),
             Rule("tensorflow.jit", "any", 0.7, "XLA {a} -> {b}: fusion reorders float operations: expect "
                  "ULP-level noise (measured with jit_compile: 805 ULP on an MLP, 274 on MobileNetV2)"),
             Rule("*XLA_FLAGS", "any", 0.5, "{path} {a} -> {b}: XLA may fuse differently: expect ULP noise"),
             Rule("tensorflow.op_determinism", "any", 0.15, "op determinism {a} -> {b}: no change measured "
                  "on CPU (0 ULP on three models); on a GPU, reductions and convolutions may pick other kernels"),
             Rule("*", "any", 0.3, "{path} {a} -> {b}: graph rewrites can reorder float operations")),
            "determinism",
            paths=tuple(p for _, paths, _ in SUB_SETTINGS for p in paths),
            # TF32 is a precision change, not a reduction-order one.
            path_fit=(("|".join(TF32_PATHS), (0.4, 0.9, 0.2, 0.05, 0.1)),)),
    },
    values={"determinism": _remedy},
    when={"gpu_off_to_on": lambda c, e: any_gpu(c) and e.a is False and e.b is True},
    restorers={"determinism": _restore},
    calls=CALLS,
    facts=("op_determinism", "tensor_float_32", "jit"),
)
# fmt: on
