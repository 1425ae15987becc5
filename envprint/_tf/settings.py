"""The process settings envprint can put back, each once: the fingerprint path that records it, the
call that sets it (as words, for a remedy) and the same call made on a ``tf`` passed in.

Owns: ``SETTINGS`` (runtime key -> ``Setting``), in the order a process must apply them (thread
pools are created by the first op: they come first), and ``apply``. explain.py words remedies
with it, restore.py names the calls a confirmed setting needs, and ``envprint._tf.child`` makes
them. Importing this module imports no TensorFlow: every function takes the ``tf`` it acts on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    path: str  # the fingerprint path (fnmatch pattern) that records the setting
    words: Callable[[Any], str]  # the call that sets ``value``, for a remedy
    set: Callable[[Any, Any], None]  # (tf, value): make that call
    in_remedy: bool = True  # False: the remedy names an environment variable instead


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
SETTINGS: dict[str, Setting] = {
    "intra": Setting("threads.tf_intra_op_effective",
                     lambda v: f"tf.config.threading.set_intra_op_parallelism_threads({v})",
                     lambda tf, v: tf.config.threading.set_intra_op_parallelism_threads(v), in_remedy=False),
    "inter": Setting("threads.tf_inter_op_effective",
                     lambda v: f"tf.config.threading.set_inter_op_parallelism_threads({v})",
                     lambda tf, v: tf.config.threading.set_inter_op_parallelism_threads(v), in_remedy=False),
    "op_determinism": Setting("tensorflow.op_determinism",
                              lambda v: "tf.config.experimental.enable_op_determinism()" if v else
                              "do not enable op determinism (no enable_op_determinism(), unset TF_DETERMINISTIC_OPS)",
                              _op_determinism),
    "tensor_float_32": Setting("tensorflow.tensor_float_32",
                               lambda v: f"tf.config.experimental.enable_tensor_float_32_execution({bool(v)})",
                               lambda tf, v: tf.config.experimental.enable_tensor_float_32_execution(bool(v))),
    "jit": Setting("tensorflow.jit", lambda v: f"tf.config.optimizer.set_jit({v or False!r})",
                   lambda tf, v: tf.config.optimizer.set_jit(v or False)),
    "grappler": Setting("tensorflow.grappler.*", lambda v: f"tf.config.optimizer.set_experimental_options({v!r})",
                        lambda tf, v: tf.config.optimizer.set_experimental_options(v)),
    "dtype_policy": Setting("tensorflow.dtype_policy", lambda v: f"keras.mixed_precision.set_global_policy({v!r})",
                            _set_dtype_policy),
    "seed": Setting("seeds.declared", lambda v: f"envprint.seed_everything({v})", _set_seed),
}
# fmt: on


def apply(tf: Any, runtime: dict[str, Any]) -> None:
    """Make the calls for every setting in ``runtime`` (runtime key -> value), in SETTINGS order."""
    for key, setting in SETTINGS.items():
        if key in runtime:
            setting.set(tf, runtime[key])
