"""The environment cause: an allow-listed variable no other cause claims, and what is left.

Owns: the environment entry (its remedy and restore step put the saved variables back, set or
unset, before TensorFlow starts), the variables that are listed and never numerics (a cache
location), and unknown: what remains when no recorded difference fits.
Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from envprint.causes.base import (
    NOT_A_SETTING,
    Cause,
    DiffEntry,
    Family,
    Planning,
    Restore,
    Rule,
    Scoring,
    Step,
    field_paths,
    label,
    saved_variables,
    untestable,
    variable_words,
)


def _remedy(c: Scoring, entries: list[DiffEntry]) -> str:
    return "; ".join(
        dict.fromkeys(variable_words(k, v) for k, v in saved_variables(entries, ("env.variables.*",)).items())
    )


def _restore(c: Planning, entries: list[DiffEntry]) -> list[Step]:
    env = saved_variables(entries, ("env.variables.*",))
    if not env:
        return untestable(c, entries, "no saved variable value to restore")
    return [Restore("environment", label(env), env, fields=field_paths(entries))]


# fmt: off
FAMILY = Family(
    causes={
        "environment": Cause(
            "environment variable", "reduction_order", (0.2, 0.2, 0.2, 0.1, 0.1),
            ("{variables}",),
            (Rule("*", "any", 0.2, "{path} {a} -> {b}: a variable that can change numerics or device choice"),),
            "environment",
            paths=("env*",),
            # A cache location: where Keras keeps downloads and its config file, never numerics.
            listed=("env.variables.KERAS_HOME",)),
    },
    values={"variables": _remedy},
    restorers={"environment": _restore},
)

UNKNOWN = Family(
    causes={
        "unknown": Cause(
            "no recorded difference explains it", "semantic", "what is left when no recorded difference fits",
            ("run envprint verify --investigate",),
            "nothing to predict: no difference", NOT_A_SETTING),
    },
)
# fmt: on
