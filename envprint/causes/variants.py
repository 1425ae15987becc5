"""The recorded-variant cause: this host's outputs are bit-identical to a variant recorded at save.

Owns: recorded_variant (its entry, the evidence rule that scores it 1.0, its remedy), which
variant a host's outputs digest matches (``match``), the instruction-set ladder in oneDNN's names
(``ISA_LADDER``, ``highest_isa``) and a variant's settings in words (``settings_words``: render/
says them the same way). A digest match is a fact, not a fit: the explanation it gives is certain.
Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from collections.abc import Iterable

from envprint.causes.base import NOT_A_SETTING, Cause, DiffEntry, Family, Scoring
from envprint.causes.onednn import VARIABLE as ONEDNN_VARIABLE
from envprint.causes.onednn import flag
from envprint.models import VariantMatch, Variants, VariantSettings

# oneDNN's instruction-set names (ONEDNN_MAX_CPU_ISA), lowest first, and the CPU flag each needs.
ISA_LADDER = (("SSE41", "sse4_1"), ("AVX", "avx"), ("AVX2", "avx2"), ("AVX512_CORE", "avx512f"))


def highest_isa(flags: Iterable[str] | None) -> str | None:
    """The highest instruction set of ``ISA_LADDER`` these CPU flags have (None: none, or not x86)."""
    have = set(flags or ())
    found = [name for name, needs in ISA_LADDER if needs in have]
    return found[-1] if found else None


def settings_words(s: VariantSettings) -> str:
    """'oneDNN on, capped at AVX, one probe per call'; 'nothing changed' for a fresh process."""
    parts = []
    if s.onednn is not None:
        parts.append(f"oneDNN {'on' if s.onednn else 'off'}")
    if s.max_cpu_isa:
        parts.append(f"{'' if s.onednn else 'oneDNN '}capped at {s.max_cpu_isa}")
    if s.threads is not None:
        parts.append(f"{s.threads} thread{'s' if s.threads != 1 else ''}")
    if s.keras_backend:
        parts.append(f"the {s.keras_backend.upper() if s.keras_backend == 'jax' else s.keras_backend} backend")
    if s.batch_size is not None:
        parts.append("one probe per call" if s.batch_size == 1 else f"batches of {s.batch_size}")
    return ", ".join(parts) or "nothing changed (a fresh process)"


def match(variants: Variants | None, digest: str | None) -> VariantMatch | None:
    """Which recorded variant outputs of ``digest`` are bit-identical to: None when the record has no
    variants or the probes did not run; the simplest variant first (the order they were recorded in)."""
    if variants is None or digest is None:
        return None
    recorded = sum(1 for v in variants.variants if v.status == "recorded")
    if digest == variants.reference_digest:
        return VariantMatch(status="reference", recorded=recorded, cpu_isa=variants.cpu_isa)
    hit = next((v for v in variants.variants if v.status == "recorded" and v.outputs_digest == digest), None)
    if hit is None:
        return VariantMatch(status="none", recorded=recorded, cpu_isa=variants.cpu_isa)
    return VariantMatch(
        status="matched",
        variant=hit.name,
        settings=hit.settings,
        equivalence_class=hit.equivalence_class,
        recorded=recorded,
        cpu_isa=variants.cpu_isa,
    )


def matched(c: Scoring) -> bool:
    return c.observed != "identical" and c.variant is not None and c.variant.status == "matched"


def variant_words(c: Scoring) -> dict[str, str]:
    """{variant} (its settings in words), {variant_class} and {isa_here} for the evidence rule."""
    v = c.variant
    if v is None or v.settings is None:
        return {"variant": "", "variant_class": "", "isa_here": ""}
    saved_isa = highest_isa(c.saved.cpu.flags)
    here = highest_isa(c.now("cpu.flags", c.saved.cpu.flags))  # type: ignore[arg-type]
    isa = f"; this CPU's highest instruction set is {here}" if here else ""
    if here and saved_isa and here != saved_isa:
        isa += f" (the saving CPU's: {saved_isa})"
    return {"variant": settings_words(v.settings), "variant_class": v.equivalence_class or "?", "isa_here": isa}


def _remedy(c: Scoring, entries: list[DiffEntry]) -> str:
    """The way back to the reference's bits, from the matched variant's settings; or accept its class."""
    s = c.variant.settings if c.variant is not None else None
    if s is None:
        return ""
    back = []
    if s.onednn is not None:
        back.append(f"export {ONEDNN_VARIABLE}={flag(not s.onednn)}")
    if s.max_cpu_isa:
        back.append("unset ONEDNN_MAX_CPU_ISA (or run on a CPU like the saving one)")
    if s.threads is not None:
        back.append("leave the thread counts at TensorFlow's default")
    if s.keras_backend:
        back.append("unset KERAS_BACKEND (the reference ran on the TensorFlow backend)")
    if s.batch_size is not None:
        back.append("predict the probes as one batch")
    accept = "or accept this class: envprint save --tolerance-from-variants covers every recorded variant"
    return "; ".join([*back, accept]) if back else accept


# fmt: off
FAMILY = Family(
    causes={
        "recorded_variant": Cause(
            "a variant recorded at save", "identity",
            "evidence from the record's variants (outputs bit-identical to one), not a fingerprint difference",
            ("{variant_remedy}",),
            "a variant is matched by the outputs' digest at verify, not predicted from fingerprints",
            NOT_A_SETTING),
    },
    values={"variant_remedy": _remedy},
    identity_rules=(
        ("recorded_variant", 1.0, matched,
         "the outputs are bit-identical to the variant recorded at save with {variant} (class {variant_class})"
         "{isa_here}"),
    ),
)
# fmt: on
