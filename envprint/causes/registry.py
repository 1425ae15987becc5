"""The cause registry: the one list of causes, assembled from the cause family modules.

Owns: ``REGISTRY`` (cause id -> ``Cause``) in ``ORDER_OF_CAUSES``, the order differences are
listed in and the tie-break order of a ranking (identity evidence first, then the most decisive
settings); and, derived from the same families, the tables scoring and restore read:
``VALUES`` (remedy template names), ``WHEN`` (preflight conditions), ``BUILDERS`` (restorers),
``INSTEAD`` (what a cause no process can restore offers), ``CALLS`` (process settings in words),
``IDENTITY_RULES`` and ``FACTS`` (what a child reports); ``TOPICS`` and ``topic_of`` (which cause
a fingerprint path belongs to). A name two families define is an error at import.

Adding a cause is one family module (or one entry in one) plus its tests; see ARCHITECTURE.md.
Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from envprint.causes import (
    backend,
    cpu,
    determinism,
    endpoint,
    environment,
    gpu,
    identity,
    inference,
    layers,
    onednn,
    precision,
    variants,
    versions,
)
from envprint.causes.base import (  # noqa: F401  (the registry's vocabulary, re-exported)
    FIT_KINDS,
    NOT_A_SETTING,
    NOT_FROM_DIFF,
    Call,
    Cannot,
    Cause,
    Family,
    Rule,
    absent,
)
from envprint.causes.inference import SEED_NOT_HOST  # noqa: F401

FAMILIES: tuple[Family, ...] = (
    identity.FAMILY,
    variants.FAMILY,
    endpoint.FAMILY,
    inference.FAMILY,
    layers.FAMILY,
    onednn.FAMILY,
    backend.FAMILY,
    determinism.FAMILY,
    versions.FAMILY,
    gpu.FAMILY,
    cpu.FAMILY,
    environment.FAMILY,
    environment.UNKNOWN,
    precision.FAMILY,
)
# The ranking's tie-break: identity evidence first, then the most decisive settings.
ORDER_OF_CAUSES = (
    "model_changed", "model_file_rewritten", "model_other_format", "probes_changed", "request_misfit",
    "transport_precision", "another_model_served", "recorded_variant", "stochastic_inference", "server_numerics",
    "preprocessing", "dtype_policy", "keras_backend", "onednn", "determinism_settings", "tensorflow_version", "keras_version", "numpy_version",
    "other_package", "cuda_stack", "device", "cpu_isa", "threads", "seed", "python_version", "environment",
    "unknown",
)  # fmt: skip


def _merged(part: str) -> dict:
    """One family table of every family, each name defined once."""
    out: dict = {}
    for family in FAMILIES:
        for name, value in getattr(family, part).items():
            if name in out:
                raise AssertionError(f"two cause families define {part} {name!r}")  # pragma: no cover
            out[name] = value
    return out


_CAUSES: dict[str, Cause] = _merged("causes")
if sorted(_CAUSES) != sorted(ORDER_OF_CAUSES):  # pragma: no cover
    raise AssertionError(f"ORDER_OF_CAUSES must list each family cause once: {set(_CAUSES) ^ set(ORDER_OF_CAUSES)}")
REGISTRY: dict[str, Cause] = {cause: _CAUSES[cause] for cause in ORDER_OF_CAUSES}
VALUES = _merged("values")
WHEN = {"any": lambda c, e: True, **_merged("when")}
BUILDERS = _merged("restorers")
INSTEAD = {"explanation": lambda c, cause: c.remedies.get(cause), **_merged("instead")}
# Process settings in words; envprint._tf.settings.SETTERS makes the same calls (keyed alike, in the order applied).
CALLS: dict[str, Call] = _merged("calls")
IDENTITY_RULES = tuple(rule for family in FAMILIES for rule in family.identity_rules)
FACTS = tuple(fact for family in FAMILIES for fact in family.facts)
CONTEXT = "context"  # the topic of a path no cause claims: listed, never a cause

# --------------------------------------------------------------------------- topics (diff)


def _specificity(pattern: str) -> tuple[bool, int]:
    """An exact path beats a pattern; a longer literal prefix beats a shorter one."""
    wild = min((i for i, ch in enumerate(pattern) if ch in "*?["), default=None)
    return wild is None, len(pattern) if wild is None else wild


# (pattern, cause id, can change numerics), most specific first: the first match is a path's topic.
TOPICS: tuple[tuple[str, str, bool], ...] = tuple(
    sorted(
        [(p, cause, True) for cause, c in REGISTRY.items() for p in c.paths]
        + [(p, cause, False) for cause, c in REGISTRY.items() for p in c.listed]
        + [("*", CONTEXT, False)],
        key=lambda t: _specificity(t[0]),
        reverse=True,
    )
)
ORDER = {cause: i for i, cause in enumerate([*REGISTRY, CONTEXT])}


def topic_of(path: str) -> tuple[str, bool]:
    """The cause id a fingerprint path belongs to, and whether a difference there can change numerics."""
    for pattern, topic, numerics in TOPICS:
        if fnmatchcase(path, pattern):
            return topic, numerics
    raise AssertionError("TOPICS ends with a catch-all")  # pragma: no cover
