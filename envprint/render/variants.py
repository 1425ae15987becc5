"""The variants in words: what save --variants recorded, and which one a verified host matches.

Owns: the save summary's lines about the variants (classes, cost) and the report's variant line.
A variant's settings are said as the variants cause family says them (``settings_words``).
Must not import TensorFlow, nor ``render.text`` (which imports this module).
"""

from __future__ import annotations

from envprint.causes.variants import settings_words
from envprint.models import Report, VariantMatch, Variants


def match_words(v: VariantMatch) -> str:
    """Which recorded variant outputs are bit-identical to, in words (a class of a fleet is named by it)."""
    recorded = f"{v.recorded} variant{'s' if v.recorded != 1 else ''} recorded at save"
    if v.status == "reference":
        return "identical to the reference recorded at save"
    if v.status == "none" or v.settings is None:
        return f"identical to none of the {recorded}: a numerics path not seen at save"
    return f"identical to the variant recorded with {settings_words(v.settings)} (class {v.equivalence_class} of the {recorded})"


def variant_line(report: Report) -> str | None:
    """The report's 'variant:' line: the recorded variant the outputs are bit-identical to, or none of them."""
    v = report.variant
    return None if v is None or v.status == "reference" else match_words(v)


def variants_lines(variants: Variants | None) -> list[str]:
    """What save says about its variants: each class with its variants, what did not run, the cost."""
    if variants is None:
        return []
    recorded = [v for v in variants.variants if v.status == "recorded"]
    by_name = {v.name: v for v in variants.variants}
    isa = f"; this CPU's highest instruction set: {variants.cpu_isa}" if variants.cpu_isa else ""
    lines = [
        f"variants: {len(recorded)} recorded in {variants.seconds:.1f} s ({variants.parallel} child processes at once), "
        f"{len(variants.classes)} bit-identical class{'es' if len(variants.classes) != 1 else ''}{isa}"
    ]
    for c in variants.classes:
        worst = max((by_name[n].max_ulp or 0 for n in c.variants), default=0)
        what = "the reference" if c.reference else f"max {worst} ULP from the reference"
        lines.append(
            f"  class {c.name} ({what}): " + "; ".join(settings_words(by_name[n].settings) for n in c.variants)
        )
    for v in variants.variants:
        if v.status != "recorded":
            lines.append(f"  not recorded ({v.status}): {settings_words(v.settings)}: {v.error}")
    return lines
