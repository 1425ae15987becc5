"""envprint: fingerprint a TensorFlow/Keras model's environment; verify and explain drift.

Public surface. Importing envprint never imports TensorFlow, and names are loaded on first use
(PEP 562) so that ``envprint --help`` pays for neither pydantic's models nor the collectors.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    DependencyError,
    EnvprintError,
    ExitCode,
    FingerprintError,
    MismatchError,
    ModelError,
    UsageError,
)

_LAZY = {
    "capture": "capturer",
    "seed_everything": "capturer",
    "Fingerprint": "models",
    "FingerprintDiff": "models",
    "diff_fingerprints": "diff",
    "read_fingerprint": "store",
    "save": "saver",
    "verify": "verifier",
    "preflight": "verifier",
    "Report": "models",
    "Tolerance": "models",
}

__all__ = [
    "__version__",
    "DependencyError",
    "EnvprintError",
    "ExitCode",
    "FingerprintError",
    "MismatchError",
    "ModelError",
    "UsageError",
    "capture",
    "seed_everything",
    "Fingerprint",
    "FingerprintDiff",
    "diff_fingerprints",
    "read_fingerprint",
    "save",
    "verify",
    "preflight",
    "Report",
    "Tolerance",
]

if TYPE_CHECKING:
    from .capturer import capture, seed_everything
    from .diff import diff_fingerprints
    from .models import Fingerprint, FingerprintDiff, Report, Tolerance
    from .saver import save
    from .store import read_fingerprint
    from .verifier import preflight, verify


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'envprint' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
