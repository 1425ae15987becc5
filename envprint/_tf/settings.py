"""The process settings envprint can put back, as calls on a ``tf`` passed in.

Owns: ``SETTERS`` (runtime key -> the call that sets a value), in the order a process must apply
them (thread pools are created by the first op: they come first), and ``apply``. Which setting
belongs to which cause, the fingerprint path that records it and the call in words for a remedy
live once in the cause family modules (``envprint.causes.registry.CALLS``, keyed alike; a test
checks the keys). ``envprint._tf.child`` applies them. Importing this module imports no
TensorFlow: every function takes the ``tf`` it acts on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _set_dtype_policy(tf: Any, policy: str) -> None:
    from envprint._tf import import_keras, keras_flavor

    keras = import_keras()
    if keras_flavor(tf) == "keras3":
        keras.config.set_dtype_policy(policy)
    else:
        keras.mixed_precision.set_global_policy(policy)


def _set_seed(tf: Any, seed: int) -> None:
    from envprint._tf import set_random_seed

    set_random_seed(seed)


def _op_determinism(tf: Any, on: bool) -> None:
    if on:  # there is no call that turns it off: a fresh process starts with it off
        tf.config.experimental.enable_op_determinism()


# fmt: off
SETTERS: dict[str, Callable[[Any, Any], None]] = {
    # Keys: causes.registry.CALLS (a test checks them).
    "intra": lambda tf, v: tf.config.threading.set_intra_op_parallelism_threads(v),
    "inter": lambda tf, v: tf.config.threading.set_inter_op_parallelism_threads(v),
    "op_determinism": _op_determinism,
    "tensor_float_32": lambda tf, v: tf.config.experimental.enable_tensor_float_32_execution(bool(v)),
    "jit": lambda tf, v: tf.config.optimizer.set_jit(v or False),
    "grappler": lambda tf, v: tf.config.optimizer.set_experimental_options(v),
    "dtype_policy": _set_dtype_policy,
    "seed": _set_seed,
}
# fmt: on


def apply(tf: Any, runtime: dict[str, Any]) -> None:
    """Make the calls for every setting in ``runtime`` (runtime key -> value), in SETTERS order."""
    for key, setter in SETTERS.items():
        if key in runtime:
            setter(tf, runtime[key])
