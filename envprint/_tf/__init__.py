"""The one door to TensorFlow and Keras.

Owns: importing TensorFlow/Keras (late, inside functions) and hiding the differences between
Keras 3, tf_keras (TF_USE_LEGACY_KERAS=1) and the Keras 2 that TensorFlow 2.15 bundles.
Everything above this package sees plain Python and NumPy values.

No module under ``envprint._tf`` imports TensorFlow at module level (ruff TID253 enforces it):
``import envprint`` and ``envprint diff`` must stay TensorFlow-free.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

from envprint.errors import DependencyError

PIP_HINT = "pip install 'envprint[tensorflow-cpu]' (or 'envprint[tensorflow]' for GPU builds)"

_TRUTHY = {"1", "true", "yes", "on"}


def tensorflow_imported() -> bool:
    """True when TensorFlow is already in this process (nothing is imported to find out)."""
    return sys.modules.get("tensorflow") is not None


def import_tensorflow() -> ModuleType:
    """Import TensorFlow or raise DependencyError with the pip line."""
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise DependencyError(f"TensorFlow is not importable ({exc}); install it: {PIP_HINT}") from None
    return tf


def tf_version_tuple(tf: ModuleType) -> tuple[int, int]:
    from packaging.version import Version

    v = Version(tf.__version__)
    return (v.major, v.minor)


def keras_flavor(tf: ModuleType) -> str:
    """Which Keras ``tf.keras`` resolves to, decided without importing Keras.

    TensorFlow >= 2.16 resolves tf.keras to Keras 3 unless TF_USE_LEGACY_KERAS is truthy, in
    which case it is the tf_keras package; TensorFlow <= 2.15 bundles Keras 2 as tf.keras.
    """
    if tf_version_tuple(tf) < (2, 16):
        return "keras2"
    if os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in _TRUTHY:
        return "tf_keras"
    return "keras3"


def import_keras() -> ModuleType:
    """The Keras that ``tf.keras`` is on this host (Keras 3, tf_keras or Keras 2)."""
    tf = import_tensorflow()
    flavor = keras_flavor(tf)
    try:
        if flavor == "tf_keras":
            import tf_keras as keras
        else:
            import keras
    except ImportError as exc:
        pkg = "tf-keras" if flavor == "tf_keras" else "keras"
        raise DependencyError(f"Keras is not importable ({exc}); install it: pip install {pkg}") from None
    return keras


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow the way Keras does (keras.utils.set_random_seed)."""
    tf = import_tensorflow()
    # tf.keras.utils.set_random_seed exists in Keras 2.7+, tf_keras and Keras 3, and seeds
    # random, numpy and the TensorFlow global generator together.
    tf.keras.utils.set_random_seed(seed)
