"""VerifyOptions: everything a verify takes besides the model, in one value.

Owns the one shape of verify's options that ``verify``, ``preflight``, ``sweep`` and ``fleet``
share (``envprint.verify(model, tolerance=..., ...)`` builds it from its keyword arguments).
A value that crosses to a worker (a pipe, Ray's object store) must pickle: custom objects travel
as ``"module:NAME"`` specs and are imported where the model loads. Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from envprint.models import Tolerance


@dataclass(frozen=True)
class VerifyOptions:
    """What `envprint verify` takes besides the model: the same for every model of a sweep or fleet."""

    fingerprint: str | Path | None = None
    tolerance: Tolerance | None = None
    fmt: str | None = None
    signature: str | None = None
    # "module:NAME" specs (importable in a worker), or a mapping of names to the objects themselves
    custom_objects: tuple[str, ...] | Mapping[str, Any] = ()
    safe_mode: bool = True
    check_stochastic: bool = True
    signing_key: bytes | str | None = None
    require_signature: bool = False
    investigate: bool = False
    investigate_timeout: float = 120.0
    progress: Callable[[str], None] | None = None
    locate: bool = False  # compare the record's layer trace even when the outputs are identical

    def loaded_custom_objects(self) -> dict[str, Any]:
        """The custom objects to load the model with, specs imported here (a UsageError names a bad one)."""
        if isinstance(self.custom_objects, Mapping):
            return dict(self.custom_objects)
        if not self.custom_objects:
            return {}
        from envprint._tf.loading import parse_custom_objects

        return parse_custom_objects(list(self.custom_objects))

    def with_fingerprint(self, fingerprint: str | Path | None) -> VerifyOptions:
        return replace(self, fingerprint=fingerprint)
