"""The tolerance rule at its exact edge, and NaN against NaN, through compare_output and envprint.verify.

An element passes when |obtained - expected| <= atol + rtol * |expected| (numpy's allclose rule,
the README's words): a difference that equals the allowance passes. The values here are exact in
binary, so the difference and the allowance are the same float and nothing rounds either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from envprint.check.compare import compare_output, compare_outputs
from envprint.models import Tolerance


@pytest.mark.parametrize(
    ("tolerance", "expected", "obtained"),
    [
        (Tolerance(rtol=0.0, atol=0.5), [1.0, 4.0], [1.5, 4.0]),  # difference 0.5 == atol
        (Tolerance(rtol=0.25, atol=0.0), [2.0, 4.0], [2.5, 4.0]),  # difference 0.5 == rtol * |2.0|
        (Tolerance(rtol=0.125, atol=0.25), [2.0, 4.0], [2.5, 4.0]),  # 0.5 == 0.25 + 0.125 * 2.0
    ],
    ids=["atol", "rtol", "both"],
)
def test_a_difference_equal_to_the_tolerance_is_within_it(tolerance, expected, obtained):
    e, o = np.array(expected, dtype=np.float32), np.array(obtained, dtype=np.float32)
    out = compare_output("logits", e, o, tolerance)
    assert (out.status, out.n_differ, out.n_out_of_tolerance, out.max_abs) == ("within_tolerance", 1, 0, 0.5)
    # One step past the edge is out.
    o[0] = np.nextafter(o[0], np.float32(np.inf))
    assert compare_output("logits", e, o, tolerance).status == "mismatch"


def test_the_tolerance_a_report_says_was_needed_passes_when_given_back():
    e = np.array([[0.1, -2.0, 3.3]], dtype=np.float32)
    o = e.copy()
    o[0, 1] = np.nextafter(o[0, 1], np.float32(0))
    o[0, 2] = np.float32(3.3001)
    first = compare_output("logits", e, o, Tolerance(exact=True))
    assert first.status == "mismatch"
    again = compare_output("logits", e, o, Tolerance(rtol=0.0, atol=first.max_abs))
    assert (again.status, again.n_out_of_tolerance) == ("within_tolerance", 0)


def test_nan_where_the_reference_had_nan_is_no_difference():
    e = np.array([np.nan, 1.0, 2.0], dtype=np.float32)
    same = compare_output("p", e, e.copy(), Tolerance(exact=True))
    assert (same.status, same.n_differ) == ("identical", 0)
    # With another element moved, the NaN is still no difference (scanned, not byte-compared).
    o = e.copy()
    o[2] = np.nextafter(o[2], np.float32(3))
    out = compare_output("p", e, o, Tolerance())
    assert (out.status, out.n_differ, out.n_out_of_tolerance) == ("within_tolerance", 1, 0)
    assert (out.nan_appeared, out.nan_vanished) == (0, 0)
    exact = compare_output("p", e, o, Tolerance(exact=True))
    assert (exact.status, exact.n_differ, exact.n_out_of_tolerance) == ("mismatch", 1, 1)


def test_a_nan_with_another_payload_is_still_nan():
    quiet = np.array([np.nan, 1.0], dtype=np.float32)
    other = quiet.copy()
    other.view(np.uint32)[0] = 0x7FC00001  # a NaN with another payload: the bytes differ, the value does not
    assert np.isnan(other[0])
    out = compare_outputs({"p": quiet}, {"p": other}, Tolerance(exact=True))
    assert [(o.name, o.status, o.n_differ) for o in out] == [("p", "identical", 0)]


def test_nan_that_appears_or_vanishes_is_a_mismatch_under_any_tolerance():
    e = np.array([np.nan, 1.0], dtype=np.float32)
    o = np.array([1.0, np.nan], dtype=np.float32)
    out = compare_output("p", e, o, Tolerance(rtol=1.0, atol=1e30))
    assert (out.status, out.n_out_of_tolerance, out.nan_appeared, out.nan_vanished) == ("mismatch", 2, 1, 1)


@pytest.fixture(scope="module")
def nudged(keras, tmp_path_factory):
    """(a record of a tiny model, the same weights behind Rescaling(1 + 2**-20): outputs ~1e-6 relative away)."""
    from fleet_models import saved, tiny

    model = tiny(keras, 13, keras.layers.Rescaling(1.0, name="scale"))
    path = saved(model, tmp_path_factory.mktemp("boundary") / "model.keras")
    other = tiny(keras, 13, keras.layers.Rescaling(1 + 2**-20, name="scale"))
    other.set_weights(model.get_weights())
    return Path(f"{path}.envprint"), other


def test_verify_passes_at_exactly_the_error_it_observed(nudged):
    import envprint

    record, model = nudged
    strict = envprint.verify(model, fingerprint=record, tolerance=Tolerance(exact=True))
    (out,) = strict.outputs
    assert (strict.verdict, out.status) == ("mismatch", "mismatch")
    assert out.max_abs > 0
    at_atol = envprint.verify(model, fingerprint=record, tolerance=Tolerance(rtol=0.0, atol=out.max_abs))
    assert (at_atol.verdict, at_atol.outputs[0].n_out_of_tolerance) == ("within_tolerance", 0)
    below = float(np.nextafter(out.max_abs, 0.0))
    assert envprint.verify(model, fingerprint=record, tolerance=Tolerance(rtol=0.0, atol=below)).verdict == "mismatch"
