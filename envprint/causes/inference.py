"""Inference causes: how the model is called, not the host: randomness, the dtype policy, a seed.

Owns: stochastic_inference (from the saved self-check and this host's, never a difference),
dtype_policy (restored in a child by setting the saved global policy; the child reports the
policy it ended with) and seed (how the reference was produced: listed, never a cause), with
their remedy values, evidence rules and the calls that set a policy or a seed, in words.
Pure: must not import TensorFlow, Keras or NumPy (``envprint._tf.settings`` makes the calls).
"""

from __future__ import annotations

from envprint.causes.base import (
    NOT_A_SETTING,
    NOT_FROM_DIFF,
    Call,
    Cause,
    DiffEntry,
    Family,
    Planning,
    Restore,
    Rule,
    Scoring,
    Step,
    field_paths,
    untestable,
)

SEED_NOT_HOST = "a declared seed is how the reference was produced, not a fact of the host; verify applies it"

CALLS = {
    "dtype_policy": Call("tensorflow.dtype_policy", lambda v: f"keras.mixed_precision.set_global_policy({v!r})"),
    "seed": Call("seeds.declared", lambda v: f"envprint.seed_everything({v})"),
}


def _seed_call(c: Scoring, entries: list[DiffEntry]) -> str:
    seed = c.saved.seeds.declared
    if seed is None:
        return "envprint.seed_everything(SEED) before predicting"
    return f"{CALLS['seed'].words(seed)} before predicting, as on the saved host"


def _dtype_policy_call(c: Scoring, entries: list[DiffEntry]) -> str:
    tf, model = c.saved.tensorflow, c.saved.model
    return CALLS["dtype_policy"].words((tf and tf.dtype_policy) or (model and model.dtype_policy) or "float32")


def _restore_dtype_policy(c: Planning, entries: list[DiffEntry]) -> list[Step]:
    policy = c.saved.tensorflow.dtype_policy if c.saved.tensorflow else None
    if policy is None:
        return untestable(c, entries, "the saved dtype policy is unknown")
    return [
        Restore(
            "dtype_policy",
            f"global dtype policy {policy!r}",
            runtime={"dtype_policy": policy},
            expect={"dtype_policy": policy},
            fields=field_paths(entries),
        )
    ]


# fmt: off
FAMILY = Family(
    causes={
        "stochastic_inference": Cause(
            "a random layer is active at inference", "stochastic", NOT_FROM_DIFF,
            ("call the model with training=False (model.predict(x) or model(x, training=False))",
             "remove any call with training=True on {stochastic_layers}", "or seed random ops: {seed_call}"),
            "predicted from the saved self-check (explain.preflight), not from a difference", NOT_A_SETTING,
            # What save measured of its own repeat predictions: evidence of randomness, not a setting
            # that changes numerics; two records that differ there are listed, not counted.
            listed=("self_check*",)),
        "dtype_policy": Cause(
            "Keras dtype policy", "precision", (0.2, 0.95, 0.85, 0.95, 0.05),
            ("{dtype_policy} before loading the model",),
            (Rule("*", "any", 0.95, "saved with dtype policy {a}, this host uses {b}: expect a large relative change "
                  "and possibly top-1 flips (measured float32 -> mixed_bfloat16: max rel 2.8e-01 and 97% top-1 on an "
                  "MLP)", predicts="precision"),),
            "dtype_policy",
            paths=("tensorflow.dtype_policy",)),
        # A declared seed describes how the reference was produced, not the host: diff compares it only
        # between two model records, and verify applies the record's seed itself before it predicts
        # a model that may be random at inference. Listed, never a cause.
        "seed": Cause(
            "declared seed", "stochastic", SEED_NOT_HOST,
            ("{seed_call}",),
            SEED_NOT_HOST, SEED_NOT_HOST,
            # PYTHONHASHSEED orders sets and dicts of str in Python code; no TensorFlow kernel reads it.
            listed=("seeds*", "env.variables.PYTHONHASHSEED")),
    },
    values={
        "seed_call": _seed_call,
        "stochastic_layers": lambda c, _: ", ".join(c.saved.model.stochastic_layers if c.saved.model else [])
                                          or "Dropout and noise layers",
        "dtype_policy": _dtype_policy_call,
    },
    when={"random_layers": lambda c, e: bool(c.saved.model and c.saved.model.stochastic_layers)},
    restorers={"dtype_policy": _restore_dtype_policy},
    calls=CALLS,
    identity_rules=(
        ("stochastic_inference", 0.97, lambda c: c.stochastic_now,
         "two identical predictions on this host disagreed: the model is random at inference, "
         "which explains differences without any environment change"),
        ("stochastic_inference", 0.7, lambda c: c.observed != "identical" and c.saved.self_check is not None
                                                and not c.saved.self_check.deterministic,
         "at save, two identical calls disagreed: the saved reference is one random draw"),
    ),
    facts=("dtype_policy",),
)
# fmt: on
