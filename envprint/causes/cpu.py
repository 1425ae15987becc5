"""CPU causes: the CPU model or instruction set, and the thread counts.

Owns: the cpu_isa and threads entries; ``THREAD_VARIABLES`` (which variable sets which of
TensorFlow's thread pools), written once and used by the remedy and the restore step (a child
sets the saved counts before its first op and reports ``intra`` and ``inter``); the calls that
size the pools, in words (``envprint._tf.settings`` makes them).
Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from typing import Any

from envprint.causes.base import (
    Call,
    Cannot,
    Cause,
    DiffEntry,
    Family,
    Planning,
    Restore,
    Rule,
    Scoring,
    Step,
    field_paths,
    fmt,
    label,
    saved_variables,
    untestable,
    variable_words,
)

# Runtime key -> the variable TensorFlow reads for that pool at start-up.
THREAD_VARIABLES = {"intra": "TF_NUM_INTRAOP_THREADS", "inter": "TF_NUM_INTEROP_THREADS"}

# The variables name the counts in a remedy; the calls are what a child makes.
CALLS = {
    "intra": Call("threads.tf_intra_op_effective",
                  lambda v: f"tf.config.threading.set_intra_op_parallelism_threads({v})", in_remedy=False),
    "inter": Call("threads.tf_inter_op_effective",
                  lambda v: f"tf.config.threading.set_inter_op_parallelism_threads({v})", in_remedy=False),
}  # fmt: skip


def saved_counts(entries: list[DiffEntry]) -> dict[str, Any]:
    """The saved thread counts that differ here: {runtime key: count}; a count this host already has is not a setting."""
    return {key: e.a for key in THREAD_VARIABLES for e in entries if e.path == CALLS[key].path and e.a}


def _remedy(c: Scoring, entries: list[DiffEntry]) -> str:
    """Set the thread counts that differ to the saved ones; a count this host already has is left alone."""
    counts = saved_counts(entries)
    if counts:
        env = " ".join(f"{THREAD_VARIABLES[k]}={v}" for k, v in counts.items())
        calls = " and ".join(CALLS[k].words(v) for k, v in counts.items())
        return f"export {env}, or call {calls} before the first op"
    variables = saved_variables(entries, ("threads.variables.*",))
    if variables:
        return "; ".join(variable_words(k, v) for k, v in variables.items())
    return "run with the saved host's thread counts (envprint diff lists them)"


def _restore(c: Planning, entries: list[DiffEntry]) -> list[Step]:
    env: dict[str, str | None] = dict(saved_variables(entries))
    counts = saved_counts(entries)
    env |= {THREAD_VARIABLES[k]: str(v) for k, v in counts.items()}
    if not env:
        return untestable(c, entries, "the saved thread counts are unknown")
    return [Restore("threads", label(env), env, counts, fields=field_paths(entries))]


# fmt: off
FAMILY = Family(
    causes={
        "cpu_isa": Cause(
            "CPU model or instruction set", "reduction_order", (0.8, 0.3, 0.1, 0.05, 0.05),
            ("run on a CPU like the saved host ({cpu_model}; flags {cpu_flags})",
             "or accept the drift: verify --rtol, or re-run envprint save on this host"),
            (Rule("*", "any", 0.5, "CPU differs ({path}: {moved}): oneDNN and Eigen dispatch on the instruction "
                  "set: expect ULP-level noise"),),
            Cannot("the CPU is part of the host", "explanation"),
            paths=("cpu.model", "cpu.vendor", "cpu.flags", "platform.machine")),
        "threads": Cause(
            "thread counts", "reduction_order", (0.5, 0.15, 0.05, 0.0, 0.1),
            ("{threads}",),
            (Rule("*", "any", 0.2, "thread counts changed ({path}: {a} -> {b}): usually bit-identical (measured "
                  "2 -> 1: 0 ULP on an MLP, a small CNN and MobileNetV2), though some reductions depend on the "
                  "thread count"),),
            "threads",
            # OpenMP runtimes, as mapped into the process.
            paths=("threads*", "cpu.logical_cores", "cpu.physical_cores", "devices.loaded_libraries.gomp",
                   "devices.loaded_libraries.omp"),
            effective=tuple(CALLS[k].path for k in THREAD_VARIABLES),
            follows=tuple(f"threads.variables.{v}" for v in THREAD_VARIABLES.values())),
    },
    values={
        "cpu_model": lambda c, _: fmt(c.saved.cpu.model),
        "cpu_flags": lambda c, _: fmt(c.saved.cpu.flags),
        "threads": _remedy,
    },
    restorers={"threads": _restore},
    calls=CALLS,
    facts=("intra", "inter"),
)
# fmt: on
