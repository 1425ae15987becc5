"""envprint: fingerprint a TensorFlow/Keras model's environment; verify and explain drift.

Public surface. Importing envprint never imports TensorFlow, and names are loaded on first use
(PEP 562) so that ``envprint --help`` pays for neither pydantic's models nor the collectors.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from envprint._version import __version__
from envprint.errors import (
    DependencyError,
    EndpointError,
    EnvprintError,
    ExitCode,
    FingerprintError,
    MismatchError,
    ModelError,
    UsageError,
)

_LAZY = {
    "capture": "check.capture",
    "seed_everything": "check.capture",
    "Fingerprint": "models",
    "FingerprintDiff": "models",
    "diff_fingerprints": "causes.diff",
    "read_fingerprint": "record.store",
    "save": "check.saver",
    "verify": "check.verifier",
    "preflight": "check.verifier",
    "verify_endpoint": "check.endpoint.verifier",
    "Report": "render.text",  # models.Report, with its words (str(report)) registered by render.text
    "Tolerance": "models",
}

__all__ = [
    "__version__",
    "DependencyError",
    "EndpointError",
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
    "verify_endpoint",
    "Report",
    "Tolerance",
]

if TYPE_CHECKING:
    from envprint.causes.diff import diff_fingerprints
    from envprint.check.capture import capture, seed_everything
    from envprint.check.endpoint.verifier import verify_endpoint
    from envprint.check.saver import save
    from envprint.check.verifier import preflight, verify
    from envprint.models import Fingerprint, FingerprintDiff, Report, Tolerance
    from envprint.record.store import read_fingerprint


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'envprint' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
