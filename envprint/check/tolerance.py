"""Tolerances derived from measured drift: ``save --tolerance-from`` (a verify report's) and
``save --tolerance-from-variants`` (``check.variants`` hands its variants' drift to ``tolerance_for``).

Owns: the rule that turns a measured drift into a record's tolerance (margin x the largest
relative error, never stricter than the per-dtype defaults), and the refusals of a mismatch that
is not drift. Pure: models in, a ``Tolerance`` out; the per-dtype defaults are ``compare``'s.
"""

from __future__ import annotations

from envprint.check.compare import default_tolerance
from envprint.errors import UsageError
from envprint.models import OutputComparison, Report, Tolerance


def tolerance_from_report(report: Report, margin: float, source: str) -> Tolerance:
    """The tolerance a record should hold after ``report`` measured this host's drift: margin x the drift.

    The drift of an output is the largest relative error it measured (``max_rel``, or the
    ``rtol_needed`` if larger): rtol = ``margin`` x the largest drift of any output, so each
    element that differed (with a nonzero expected value) passes by rtol alone, whatever atol
    covered in the report. A derived rtol is never stricter than a plain save: when it is at most
    every output's per-dtype default, the record keeps the defaults (rtol None); when it is above
    some, it is raised to the largest default. atol stays the per-dtype default (it covers the
    elements whose expected value is 0). A report whose mismatch is not drift (other weights, an
    edited record, randomness at inference, an output missing or reshaped, NaN where there was a
    number) says so instead: no tolerance should hide those.
    """
    if not margin >= 1:
        raise UsageError(f"--margin must be a number >= 1 (a factor on the measured drift), got {margin}")
    where = f"--tolerance-from {source}"
    ident = report.identity
    if ident.weights == "changed" or ident.sidecar_files_changed or report.random_at_inference:
        raise UsageError(
            f"{where}: that report's mismatch is not numeric drift (other weights, an edited record or randomness "
            "at inference); fix that first, a tolerance would only hide it"
        )
    return tolerance_for(report.outputs, margin, where, source)


def tolerance_for(outputs: list[OutputComparison], margin: float, where: str, source: str) -> Tolerance:
    """rtol = ``margin`` x the largest drift of ``outputs``, never stricter than their per-dtype defaults."""
    drift, defaults = 0.0, []
    for o in outputs:
        if o.status != "identical" and (o.problem or o.rtol_needed is None):
            why = (
                o.problem or "NaN or Inf appeared or vanished, a change where the reference is 0, or a non-float output"
            )
            raise UsageError(f"{where}: output {o.name!r} passes under no rtol ({why}); choose --rtol/--atol yourself")
        drift = max(drift, o.max_rel or 0.0, o.rtol_needed or 0.0)
        if o.expected_dtype:
            defaults.append(default_tolerance(o.expected_dtype)[0])
    needed = float(margin * drift)
    rtol: float | None
    if needed <= min(defaults, default=0.0):
        rtol = None  # the per-dtype defaults already pass margin x the drift
    else:
        rtol = max(needed, *defaults)
    return Tolerance(rtol=rtol, margin=margin, derived_from=source)
