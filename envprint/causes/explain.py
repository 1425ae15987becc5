"""Explain a verify result: rank what differs by how well it accounts for what the outputs did.

Owns: the reading of the outputs' signature, the scoring of the cause registry (each cause's
fit, remedy template and preflight rules, as its family module wrote them), and ``preflight``
predictions from two fingerprints alone. What a cause knows (its remedy values, preflight
conditions, identity evidence) is in its family module under ``causes/``, gathered by
``causes.registry``. Pure: models in, ``Explanation`` models out. Must not import TensorFlow,
Keras or NumPy. Every number is in a table.

Scoring:
1. ``observe`` reads the outputs' signature, the most severe over all outputs: identical <
   reduction_order (ULP noise) < precision (large relative change, top-1 agrees) < semantic
   (top-1 flips, NaN/Inf, a missing or reshaped output) < dtype; 'stochastic' when two identical
   calls disagreed on this host. A 'precision' change no larger than the rounding of the model's
   own compute precision (bfloat16, float16, TF32: ``causes.precision``) is reduction-order noise
   at that precision, and is scored as such.
2. Identity evidence is decisive (``registry.IDENTITY_RULES``): a changed weights digest or edited probes
   score 1.0 (ties: registry order, so model_changed first); randomness at inference 0.97, above
   any environment cause (at most 0.95).
3. An environment cause scores ``FIT[observed] x grade`` over its numerics-relevant diff entries,
   best entry wins. grade is 1 for a setting; for a version, major 1 / minor 0.7 / patch 0.4 /
   other 0.3 (packaging.version). An entry diff marks as not numerics-relevant (an unrelated
   installed package, NumPy's own BLAS, a declared seed, a variable whose effective state is the
   same on both hosts) is never a cause.
4. Bit-identical outputs blame no environment cause: only identity findings are returned,
   usually none, and the renderer says the environment differences did not touch the probes.
5. Outputs differ and no cause reaches ``UNKNOWN_BELOW``: 'unknown' (0.5 with no candidate at
   all, else 0.3), whose remedy is ``envprint verify --investigate``.
6. After an investigation (``rerank``): a confirmed cause leads, a ruled-out one drops out.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from string import Formatter

from envprint.causes.base import GRADE, Scoring, change, fmt, matches, moved_to
from envprint.causes.diff import diff_fingerprints
from envprint.causes.endpoint import endpoint_words
from envprint.causes.identity import edited_files, format_words
from envprint.causes.layers import where, with_layers
from envprint.causes.precision import PRECISION_TOLERANCES, precision_check
from envprint.causes.registry import (  # noqa: F401  (VALUES and WHEN: read here, re-exported)
    FIT_KINDS,
    IDENTITY_RULES,
    ORDER,
    REGISTRY,
    VALUES,
    WHEN,
)
from envprint.causes.variants import variant_words
from envprint.models import (
    PREFLIGHT_THRESHOLD,
    DiffEntry,
    EndpointFacts,
    Explanation,
    Fingerprint,
    FingerprintDiff,
    IdentityCheck,
    InvestigationResult,
    LayerLocation,
    OutputComparison,
    VariantMatch,
)

# fmt: off
# Observed signatures, least severe first; a cause's fit columns follow causes.FIT_KINDS.
SEVERITY = ("identical", "reduction_order", "precision", "semantic", "dtype")
OBSERVED_WORDS = {"reduction_order": "ULP-level noise", "precision": "a large relative change with top-1 agreeing",
                  "semantic": "top-1 flips, NaN/Inf or a changed output", "dtype": "a changed output dtype",
                  "stochastic": "outputs that vary between identical calls"}
# Largest max_ulp that still reads as reduction-order noise, by output dtype. float32: the
# measured noise (oneDNN 720, XLA 805 ULP) with headroom; bfloat16 has 8 mantissa bits.
NOISE_ULP = {"float16": 16, "bfloat16": 8, "float32": 4096, "float64": 1 << 32}
PRECISION_REL = 1e-3  # at or above: a precision change (TF32 ~1e-3, bfloat16 ~1e-2..1e-1)
UNKNOWN_BELOW = 0.3
CHANGE_WORDS = {"major": "a major change", "minor": "a minor release", "patch": "a patch release",
                "other": "a build change"}
# fmt: on


# --------------------------------------------------------------------------- what the outputs did


def _noise(o: OutputComparison) -> bool:
    limit = NOISE_ULP.get(o.obtained_dtype or o.expected_dtype or "")
    return limit is not None and o.max_ulp is not None and o.max_ulp <= limit and (o.max_rel or 0) < PRECISION_REL


# First match wins.
# fmt: off
CLASSIFY: tuple[tuple[str, Callable[[OutputComparison], bool]], ...] = (
    ("dtype", lambda o: bool(o.problem) and o.expected_dtype != o.obtained_dtype and None not in (o.expected_dtype, o.obtained_dtype)),
    ("semantic", lambda o: bool(o.problem)),
    ("identical", lambda o: o.n_differ == 0),
    ("semantic", lambda o: bool(o.nan_appeared or o.nan_vanished or o.inf_appeared or o.inf_vanished)),
    ("semantic", lambda o: o.top1_agreement is not None and o.top1_agreement < 1.0),
    ("reduction_order", _noise),
    ("semantic", lambda o: o.max_ulp is None and o.max_rel is None),  # integer or bool outputs changed
    ("precision", lambda o: True),
)
# fmt: on


def _own_noise(outputs: list[OutputComparison], saved: Fingerprint) -> str:
    """Words for a change no larger than the model's own compute precision below float32 rounds to, else ''.

    A model that computes in bfloat16 (or float16, TF32) moves by a few of its rounding units
    whenever a kernel changes: that is reduction-order noise at its precision, not a precision
    change, and the causes that reorder or swap kernels fit it as such.
    """
    if observe(outputs) != "precision":
        return ""
    check = precision_check(outputs, saved)
    if not check.within_compute or check.compute not in PRECISION_TOLERANCES or check.units is None:
        return ""
    unit = {"half": "2^-11", "bfloat16": "2^-8"}.get(check.magnitude, "2^-24")
    return (
        f"{check.compute} rounding noise ({check.units:.1f} x {unit} of the output's scale: the model computes in "
        f"{check.compute}, and another kernel rounds its {check.compute} steps differently)"
    )


def observe(outputs: list[OutputComparison]) -> str:
    """The most severe signature over all outputs (a kind from SEVERITY)."""
    kinds = [next(kind for kind, test in CLASSIFY if test(o)) for o in outputs]
    return max(kinds, key=SEVERITY.index, default="identical")


def _evidence(outputs: list[OutputComparison]) -> str:
    ulps = [o.max_ulp for o in outputs if o.max_ulp is not None]
    rels = [o.max_rel for o in outputs if o.max_rel is not None]
    top1 = [o.top1_agreement for o in outputs if o.top1_agreement is not None]
    nonfinite = sum(o.nan_appeared + o.nan_vanished + o.inf_appeared + o.inf_vanished for o in outputs)
    parts = [o.problem for o in outputs if o.problem]
    parts += [f"max {max(ulps)} ULP"] if ulps else []
    parts += [f"max rel {max(rels):.1e}"] if rels else []
    parts += [f"top-1 {min(top1):.1%}"] if top1 else []
    parts += [f"{nonfinite} NaN/Inf changed"] if nonfinite else []
    return ", ".join(parts) or "no element statistics"


# --------------------------------------------------------------------------- versions


def _deciding(cause: str, entries: list[DiffEntry]) -> list[DiffEntry]:
    decisive = [e for e in entries if e.path == REGISTRY[cause].decisive and None not in (e.a, e.b)]
    return decisive or entries


def _grade(cause: str, e: DiffEntry) -> float:
    return GRADE[change(e.a, e.b)] if REGISTRY[cause].graded else 1.0


def _fit(cause: str, e: DiffEntry, observed: str) -> float:
    """How well this kind of difference explains the observation, before grading."""
    row = next((fit for pattern, fit in REGISTRY[cause].path_fit if matches(e.path, pattern)), REGISTRY[cause].fit)
    if isinstance(row, str):  # a cause the diff does not score claims no path: the registry's test holds it
        raise AssertionError(f"causes.REGISTRY[{cause!r}] is not scored from a difference: {row}")
    return row[FIT_KINDS.index(observed)]


# --------------------------------------------------------------------------- remedies


def _remedy(cause: str, entries: list[DiffEntry], ctx: Scoring) -> str:
    """The cause's remedy template filled in from the saved fingerprint and the cause's diff entries."""
    parts = []
    for part in REGISTRY[cause].remedy:
        names = {name for _, name, _, _ in Formatter().parse(part) if name}
        parts.append(part.format(**{name: VALUES[name](ctx, entries) for name in names}))
    listing = f"envprint diff {shlex.quote(ctx.record)} --current" if ctx.record else "envprint diff RECORD --current"
    return "; ".join(p for p in parts if p) or f"match the saved host: {listing} lists it"


# --------------------------------------------------------------------------- explain (verify)


def _file_names(identity: IdentityCheck) -> str:
    """The model's changed, missing and added files; '.' (a single-file model) by its name."""
    files = identity.files_changed + identity.files_missing + identity.files_added
    return ", ".join(identity.model_name or "the model file" if f == "." else f for f in files)


# Diff topics that are not environment causes: identity evidence comes from the IdentityCheck.
# Scored from the diff: the causes whose fit is a row (identity causes say why not).
SCORED = {cause for cause, c in REGISTRY.items() if not isinstance(c.fit, str)}


def _by_cause(entries: list[DiffEntry]) -> dict[str, list[DiffEntry]]:
    """The numerics-relevant differences of each cause scored from the diff."""
    out: dict[str, list[DiffEntry]] = {}
    for e in entries:
        if e.topic in SCORED and e.numerics:
            out.setdefault(e.topic, []).append(e)
    return out


def _reason(cause: str, e: DiffEntry, n: int, fit: float, observed_words: str, evidence: str) -> str:
    grade = f", {CHANGE_WORDS[change(e.a, e.b)]}" if REGISTRY[cause].graded else ""
    more = f"; +{n - 1} more" if n > 1 else ""
    fits = "typical of it" if fit >= 0.7 else "consistent with it" if fit >= 0.35 else "not typical of it"
    return (
        f"{REGISTRY[cause].title} changed ({e.path}: {moved_to(e)}{grade}{more}): "
        f"what the outputs did, {observed_words} ({evidence}), is {fits}"
    )


def _explanation(
    cause: str, score: float, reasoning: str, entries: list[DiffEntry], ctx: Scoring, predicts: str | None = None
) -> Explanation:
    score = round(min(max(score, 0.0), 1.0), 3)
    return Explanation(
        cause=cause,
        score=score,
        reasoning=reasoning,
        fields=entries,
        remedy=_remedy(cause, entries, ctx),
        predicts=predicts,
    )


def _ranked(found: list[Explanation]) -> list[Explanation]:
    return sorted(found, key=lambda x: (-x.score, ORDER[x.cause]))


def explain(
    saved: Fingerprint,
    env: FingerprintDiff,
    identity: IdentityCheck,
    outputs: list[OutputComparison],
    stochastic_now: bool = False,
    variant: VariantMatch | None = None,
    endpoint: EndpointFacts | None = None,
    layers: LayerLocation | None = None,
) -> list[Explanation]:
    """Likely causes of what verify observed, most likely first (scoring: the module docstring).

    ``env`` is diff_fingerprints(saved, current); ``stochastic_now`` whether two identical
    predictions disagreed; ``variant`` the recorded variant this host is bit-identical to (certain);
    ``endpoint`` what a server said; ``layers`` (--locate) layers that depart inside the model: ULP-level
    noise even under bit-identical outputs (``causes.layers.with_layers`` adds what the first says).
    Otherwise bit-identical outputs blame no environment difference (only identity or randomness findings)."""
    observed, own_noise = observe(outputs), _own_noise(outputs, saved)
    observed = "reduction_order" if own_noise else observed  # rounding at the model's own precision
    departed = layers is not None and layers.first is not None
    if observed == "identical" and departed:
        observed = "reduction_order"  # the outputs are bit-identical, but layers inside the model are not
    ctx = Scoring(saved, identity, stochastic_now=stochastic_now, observed=observed, changed=tuple(env.entries),
                  record=env.a, variant=variant, endpoint=endpoint, outputs=tuple(outputs))  # fmt: skip
    words = {
        "files": _file_names(identity),
        "scheme_saved": identity.weights_digest_scheme_saved,
        "scheme_now": identity.weights_digest_scheme_now,
        **format_words(ctx),
        "sidecar_files": ", ".join(identity.sidecar_files_changed),
        "match_verb": "no longer matches" if len(identity.sidecar_files_changed) == 1 else "no longer match",
        "edited": edited_files(identity.sidecar_files_changed),
        **variant_words(ctx),
        **endpoint_words(ctx),
    }
    found: dict[str, Explanation] = {}
    for cause, score, applies, why in IDENTITY_RULES:
        if cause not in found and applies(ctx):
            found[cause] = _explanation(cause, score, why.format(**words), [], ctx)
    if observed == "identical":
        return _ranked(list(found.values()))
    seen = "stochastic" if stochastic_now else observed
    observed_words = OBSERVED_WORDS[seen] if stochastic_now or not own_noise else own_noise
    evidence = _evidence(outputs) if outputs and observe(outputs) != "identical" else "outputs identical"
    evidence += f"; first layer to depart: {where(layers)}" if departed and layers is not None else ""
    for cause, entries in _by_cause(env.entries).items():
        score, best = max(
            ((_fit(cause, e, seen) * _grade(cause, e), e) for e in _deciding(cause, entries)), key=lambda t: t[0]
        )
        why = _reason(cause, best, len(entries), _fit(cause, best, seen), observed_words, evidence)
        found[cause] = _explanation(cause, score, why, entries, ctx)
    with_layers(found, layers, lambda cause, score, why: _explanation(cause, score, why, [], ctx))
    if max((x.score for x in found.values()), default=0.0) < UNKNOWN_BELOW:
        why = f"outputs differ ({evidence}) " + (
            "and no recorded difference accounts for it well"
            if found
            else "but neither the model, the probes nor any recorded environment fact changed"
        )
        found["unknown"] = _explanation("unknown", 0.3 if found else 0.5, why, [], ctx)
    return _ranked(list(found.values()))


def rerank(found: list[Explanation], investigation: list[InvestigationResult]) -> list[Explanation]:
    """The ranking after ``verify --investigate``: experiments outrank inference from differences.

    A cause that a restored setting confirmed leads (confirmed causes in score order); a cause
    whose every run was ruled out drops out; untestable and untried causes keep their place.
    """
    status: dict[str, set[str]] = {}
    for r in investigation:
        status.setdefault(r.cause, set()).add(r.status)
    confirmed = [x for x in found if "confirmed" in status.get(x.cause, ())]
    kept = [x for x in found if x not in confirmed and status.get(x.cause) != {"ruled_out"}]
    return confirmed + kept


# --------------------------------------------------------------------------- preflight (two fingerprints)


def _predict(cause: str, e: DiffEntry, ctx: Scoring) -> tuple[float, str, str]:
    words = {"a": fmt(e.a, e.path), "b": fmt(e.b, e.path), "path": e.path, "change": change(e.a, e.b)}
    words |= {"moved": moved_to(e)}
    words |= {
        "a_onoff": "on" if e.a else "off",
        "b_onoff": "on" if e.b else "off",
        "format": f".{ctx.saved.model.format if ctx.saved.model else None}",
    }
    rules = REGISTRY[cause].preflight
    if isinstance(rules, str):  # a cause that predicts nothing claims no path: the registry's test holds it
        raise AssertionError(f"causes.REGISTRY[{cause!r}] predicts nothing from a difference: {rules}")
    for rule in rules:
        if matches(e.path, rule.paths) and WHEN[rule.when](ctx, e):
            return rule.score * (_grade(cause, e) if rule.graded else 1.0), rule.text.format(**words), rule.predicts
    raise AssertionError(f"causes.REGISTRY[{cause!r}].preflight ends with a rule for any path")  # pragma: no cover


def preflight(saved: Fingerprint, current: Fingerprint, env: FingerprintDiff | None = None) -> list[Explanation]:
    """What to expect on ``current`` before predicting: each numerics-relevant difference and its effect.

    Same causes and remedies as ``explain``; ``score`` is how likely the difference changes the
    outputs, ``predicts`` what that change would be (ULP-level noise stays within tolerance),
    ``reasoning`` the expected effect, with a measurement where one was made. Of a cause's
    differences, the likeliest change beyond tolerance that reaches the gate speaks for it, else
    the likeliest change of any kind.
    """
    if env is None:
        env = diff_fingerprints(saved, current, "saved", "current host")
    ctx = Scoring(saved, IdentityCheck(weights="unknown"), current=current, changed=tuple(env.entries), record=env.a)
    found = []
    if saved.self_check is not None and not saved.self_check.deterministic:
        why = "at save, two identical calls disagreed: verify will differ until inference is deterministic"
        found.append(_explanation("stochastic_inference", 0.9, why, [], ctx, "semantic"))
    for cause, entries in _by_cause(env.entries).items():
        score, text, predicts = max(
            (_predict(cause, e, ctx) for e in _deciding(cause, entries)),
            key=lambda t: (t[2] != "noise" and t[0] >= PREFLIGHT_THRESHOLD, t[0]),
        )
        more = f" (+{len(entries) - 1} more of this kind)" if len(entries) > 1 else ""
        found.append(_explanation(cause, score, text + more, entries, ctx, predicts))
    return _ranked(found)


def expect(saved: Fingerprint, current: Fingerprint, label_a: str, label_b: str) -> FingerprintDiff:
    """The diff of ``saved`` (A) and ``current`` (B) with what its differences predict on B."""
    env = diff_fingerprints(saved, current, label_a, label_b)
    return env.model_copy(update={"expectations": preflight(saved, current, env)})
