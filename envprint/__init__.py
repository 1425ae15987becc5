"""envprint: fingerprint a TensorFlow/Keras model's environment; verify and explain drift.

Public surface. Importing envprint never imports TensorFlow.
"""

from ._version import __version__
from .capture import capture, seed_everything
from .errors import (
    DependencyError,
    EnvprintError,
    ExitCode,
    FingerprintError,
    MismatchError,
    ModelError,
    UsageError,
)
from .models import Fingerprint, FingerprintDiff

__all__ = [
    "__version__",
    "capture",
    "seed_everything",
    "Fingerprint",
    "FingerprintDiff",
    "EnvprintError",
    "ExitCode",
    "FingerprintError",
    "ModelError",
    "DependencyError",
    "MismatchError",
    "UsageError",
]
