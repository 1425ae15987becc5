"""compare.py on real NumPy arrays: verdicts, counts, the exact words of summaries, memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from envprint.check import compare
from envprint.check.compare import compare_output, compare_outputs, default_tolerance, ulp_distance
from envprint.models import Tolerance
from envprint.render.text import summarize, worst_table

DEFAULT = Tolerance()
EXACT = Tolerance(exact=True)


def logits(shape=(4, 5), dtype=np.float32) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=dtype).reshape(shape) / 7


# --------------------------------------------------------------------------- verdicts


def test_identical_arrays_are_identical():
    expected = logits()
    c = compare_output("logits", expected, expected.copy(), DEFAULT)
    assert c.status == "identical"
    assert (c.size, c.n_differ, c.n_out_of_tolerance, c.max_abs, c.max_ulp) == (20, 0, 0, 0.0, 0)
    assert c.worst == []
    assert summarize(c) == 'output "logits": bit-identical (20 elements)'
    assert worst_table(c).rows == []


def test_one_float32_ulp_nudge_is_within_tolerance():
    expected = logits()
    obtained = expected.copy()
    obtained[1, 2] = np.nextafter(obtained[1, 2], np.float32(np.inf))
    c = compare_output("logits", expected, obtained, DEFAULT)
    assert c.status == "within_tolerance"
    assert (c.n_differ, c.n_out_of_tolerance, c.max_ulp) == (1, 0, 1)
    assert c.worst == []
    assert summarize(c).startswith('output "logits": 1 / 20 differ (5.0%), all within tolerance | max abs ')
    scale = float(np.abs(expected).max())
    assert summarize(c).endswith(f"max 1 ULP, top-1 agreement 100.0% | atol={1e-5 * scale:g} rtol=0.0001")


def test_negative_zero_against_zero_differs_but_is_within_tolerance_at_0_ulp():
    # Decision: -0.0 and +0.0 differ in bits, so they are not identical (n_differ counts them);
    # they are equal in value and 0 ULP apart, so any tolerance but exact accepts them.
    expected = np.array([0.0, 1.0], dtype=np.float32)
    obtained = np.array([-0.0, 1.0], dtype=np.float32)
    c = compare_output("y", expected, obtained, DEFAULT)
    assert c.status == "within_tolerance"
    assert (c.n_differ, c.n_out_of_tolerance, c.max_abs, c.max_ulp) == (1, 0, 0.0, 0)
    exact = compare_output("y", expected, obtained, EXACT)
    assert exact.status == "mismatch"
    assert exact.worst[0].model_dump() == {"index": [0], "obtained": "-0.0", "expected": "0.0", "difference": "-0.0"}


def test_big_change_is_a_mismatch_with_its_index_and_exact_summary():
    expected = np.ones((4, 5), dtype=np.float32)
    obtained = expected.copy()
    obtained[2, 3] = 3.0
    c = compare_output("logits", expected, obtained, DEFAULT)
    assert c.status == "mismatch"
    assert (c.n_differ, c.n_out_of_tolerance, c.fraction_out_of_tolerance) == (1, 1, 0.05)
    assert [w.index for w in c.worst] == [[2, 3]]
    assert summarize(c) == (
        'output "logits": 1 / 20 differ (5.0%), 1 out of tolerance'
        " | max abs 2.0e+00, max rel 2.0e+00, max 12582912 ULP, top-1 agreement 75.0%"
        " | atol=1e-05 rtol=0.0001"
    )
    assert worst_table(c).lines() == ["Index   Obtained  Expected  Difference", "[2, 3]  3.0       1.0       2.0"]


def test_worst_lists_nan_and_inf_first_then_largest_difference_first():
    expected = np.zeros(10, dtype=np.float64)
    obtained = expected.copy()
    obtained[[1, 3, 5, 7, 9]] = [0.5, 2.0, np.inf, 1.0, np.nan]
    c = compare_output("y", expected, obtained, DEFAULT, max_worst=4)
    assert [w.index for w in c.worst] == [[5], [9], [3], [7]]
    assert [(w.obtained, w.difference) for w in c.worst[:2]] == [("inf", "inf"), ("nan", "nan")]
    assert c.n_out_of_tolerance == 5


def test_worst_elements_are_merged_across_chunks(monkeypatch):
    monkeypatch.setattr(compare, "_CHUNK", 8)
    expected = np.zeros(40, dtype=np.float32)
    obtained = expected.copy()
    obtained[[3, 17, 25, 39]] = [1.0, 4.0, 2.0, 3.0]
    c = compare_output("y", expected, obtained, DEFAULT, max_worst=3)
    assert [w.index for w in c.worst] == [[17], [39], [25]]
    assert (c.n_differ, c.max_abs, c.mean_abs) == (4, 4.0, 10.0 / 40)


# --------------------------------------------------------------------------- NaN, Inf


def test_nan_appearing_is_a_mismatch():
    expected = logits()
    obtained = expected.copy()
    obtained[3, 1] = np.nan
    c = compare_output("logits", expected, obtained, DEFAULT)
    assert c.status == "mismatch"
    assert (c.nan_appeared, c.nan_vanished, c.n_out_of_tolerance) == (1, 0, 1)
    assert c.worst[0].index == [3, 1]
    assert "| NaN appeared 1 |" in summarize(c)


def test_nan_vanishing_is_counted_as_vanished():
    expected = np.array([np.nan, 1.0])
    c = compare_output("y", expected, np.array([0.0, 1.0]), DEFAULT)
    assert (c.status, c.nan_appeared, c.nan_vanished) == ("mismatch", 0, 1)


def test_nan_in_both_places_is_identical_whatever_its_sign_bit():
    expected = np.array([np.nan, 1.0], dtype=np.float32)
    assert compare_output("y", expected, expected.copy(), DEFAULT).status == "identical"
    # x86 makes a negative default NaN, ARM a positive one: the same NaN to envprint.
    assert compare_output("y", expected, np.array([-np.nan, 1.0], dtype=np.float32), EXACT).status == "identical"


def test_inf_sign_flip_is_a_mismatch():
    expected = np.array([np.inf, 1.0], dtype=np.float32)
    c = compare_output("y", expected, np.array([-np.inf, 1.0], dtype=np.float32), DEFAULT)
    assert (c.status, c.inf_appeared, c.inf_vanished, c.n_out_of_tolerance) == ("mismatch", 1, 1, 1)
    assert c.worst[0].model_dump() == {"index": [0], "obtained": "-inf", "expected": "inf", "difference": "-inf"}


def test_same_infinity_in_the_same_place_is_equal():
    expected = np.array([np.inf, -np.inf, 1.0], dtype=np.float32)
    obtained = np.array([np.inf, -np.inf, np.nextafter(np.float32(1.0), np.float32(2.0))], dtype=np.float32)
    c = compare_output("y", expected, obtained, DEFAULT)
    assert (c.status, c.inf_appeared, c.inf_vanished) == ("within_tolerance", 0, 0)


# --------------------------------------------------------------------------- tolerances


def test_exact_mode_fails_on_a_one_ulp_change():
    expected = logits()
    obtained = expected.copy()
    obtained[0, 4] = np.nextafter(obtained[0, 4], np.float32(-np.inf))
    c = compare_output("logits", expected, obtained, EXACT)
    assert (c.status, c.n_out_of_tolerance, c.max_ulp, c.atol, c.rtol) == ("mismatch", 1, 1, 0.0, 0.0)
    assert summarize(c).endswith(" | exact")


def test_integer_outputs_are_compared_exactly():
    expected = np.array([2**62, 5], dtype=np.int64)
    obtained = np.array([2**62 + 1, 5], dtype=np.int64)  # equal once cast to float64
    c = compare_output("ids", expected, obtained, DEFAULT)
    assert (c.status, c.n_out_of_tolerance, c.atol, c.rtol, c.max_ulp) == ("mismatch", 1, 0.0, 0.0, None)
    assert c.worst[0].model_dump() == {
        "index": [0],
        "obtained": "4611686018427387905",
        "expected": "4611686018427387904",
        "difference": "1",
    }
    assert compare_output("ids", expected, expected.copy(), DEFAULT).status == "identical"


def test_bool_outputs_are_compared_exactly():
    c = compare_output("mask", np.array([True, False]), np.array([True, True]), DEFAULT)
    assert c.status == "mismatch"
    assert c.worst[0].model_dump() == {"index": [1], "obtained": "True", "expected": "False", "difference": "1"}


def test_explicit_tolerance_overrides_the_default_one_field_at_a_time():
    expected = np.ones(4, dtype=np.float32)
    obtained = expected + np.float32(0.5)
    c = compare_output("y", expected, obtained, Tolerance(atol=1.0))
    assert (c.status, c.atol, c.rtol) == ("within_tolerance", 1.0, 1e-4)
    assert compare_output("y", expected, obtained, Tolerance(rtol=0.4, atol=0.0)).status == "mismatch"
    assert compare_output("y", expected, obtained, Tolerance(exact=True, atol=1.0)).status == "mismatch"


def test_default_tolerances_are_relative_to_the_output_scale():
    assert default_tolerance(np.float16) == (1e-3, 1e-3)
    assert default_tolerance(np.float32) == (1e-4, 1e-5)
    assert default_tolerance(np.float32, scale=100.0) == (1e-4, 1e-5 * 100.0)
    assert default_tolerance(np.float64) == (1e-7, 1e-9)
    assert default_tolerance(np.int32) == (0.0, 0.0)
    assert default_tolerance(np.bool_) == (0.0, 0.0)


def test_relative_error_skips_zero_expected_values():
    c = compare_output("y", np.array([0.0, 2.0]), np.array([1.0, 3.0]), DEFAULT)
    assert (c.max_abs, c.max_rel, c.mean_abs) == (1.0, 0.5, 1.0)
    only_zeros = compare_output("y", np.array([0.0]), np.array([1.0]), DEFAULT)
    assert (only_zeros.max_abs, only_zeros.max_rel) == (1.0, None)


def test_bfloat16_one_ulp_nudge_is_within_tolerance():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = ml_dtypes.bfloat16
    expected = np.array([1.0, -2.0, 0.5], dtype=bf16)
    obtained = np.array([1.0, -2.0, 0.50390625], dtype=bf16)  # 0.5 + one bfloat16 ULP (2**-8: 8 significand bits)
    c = compare_output("y", expected, obtained, DEFAULT)
    assert (c.status, c.max_ulp, c.rtol, c.atol) == ("within_tolerance", 1, 1.6e-2, 1.6e-2 * 2.0)
    assert default_tolerance(bf16) == (1.6e-2, 1.6e-2)
    assert compare_output("y", expected, obtained, EXACT).worst[0].obtained == "0.504"  # bfloat16's shortest


# --------------------------------------------------------------------------- structure


def test_dtype_change_is_a_mismatch():
    c = compare_output("logits", logits(), logits(dtype=np.float16), DEFAULT)
    assert (c.status, c.problem) == ("mismatch", "dtype changed: float32 -> float16")
    assert summarize(c) == 'output "logits": dtype changed: float32 -> float16'


def test_shape_change_is_a_mismatch():
    c = compare_output("logits", logits((8, 10)), logits((8, 5)), DEFAULT)
    assert (c.status, c.problem) == ("mismatch", "shape changed: (8, 10) -> (8, 5)")
    assert (c.expected_shape, c.obtained_shape) == ([8, 10], [8, 5])
    assert summarize(c) == 'output "logits": shape changed: (8, 10) -> (8, 5)'


def test_missing_and_new_outputs_are_mismatches():
    expected = {"a": logits(), "b": logits()}
    obtained = {"b": logits(), "c": logits()}
    a, b, c = compare_outputs(expected, obtained, DEFAULT)
    assert [x.name for x in (a, b, c)] == ["a", "b", "c"]
    assert (a.status, a.problem) == ("mismatch", "output 'a' missing (the model no longer produces it)")
    assert (a.expected_shape, a.obtained_shape) == ([4, 5], None)
    assert b.status == "identical"
    assert (c.status, c.problem) == ("mismatch", "new output 'c' (not in the reference)")
    assert (c.expected_dtype, c.obtained_dtype) == (None, "float32")


def test_byte_order_and_memory_layout_do_not_matter():
    expected = logits((6, 4))
    obtained = np.asfortranarray(expected.astype(expected.dtype.newbyteorder(">")))
    assert compare_output("logits", expected, obtained, DEFAULT).status == "identical"


def test_scalar_and_empty_outputs_compare():
    scalar = compare_output("loss", np.float32(1.0), np.float32(2.0), DEFAULT)
    assert (scalar.status, scalar.size, scalar.worst[0].index) == ("mismatch", 1, [])
    empty = compare_output("none", np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), DEFAULT)
    assert (empty.status, empty.size, empty.top1_agreement) == ("identical", 0, None)


def test_string_outputs_are_compared_for_equality():
    c = compare_output(
        "labels", np.array([b"cat", b"dog"], dtype=object), np.array([b"cat", b"cow"], dtype=object), DEFAULT
    )
    assert (c.status, c.n_differ) == ("mismatch", 1)
    assert c.worst[0].model_dump() == {"index": [1], "obtained": "b'cow'", "expected": "b'dog'", "difference": "!="}


def test_top1_agreement_on_a_classifier_output():
    expected = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]], dtype=np.float32)
    obtained = expected.copy()
    obtained[1] = [0.3, 0.5, 0.2]
    assert compare_output("probs", expected, obtained, DEFAULT).top1_agreement == 0.75
    assert compare_output("probs", expected[:, 0], obtained[:, 0], DEFAULT).top1_agreement is None
    ints = expected.astype(np.int32)
    assert compare_output("ids", ints, ints, DEFAULT).top1_agreement is None


def test_comparison_leaves_numpy_error_state_as_found():
    before = np.geterr()
    compare_output("y", np.array([np.inf, np.nan]), np.array([np.inf, 1.0]), DEFAULT)
    assert np.geterr() == before


# --------------------------------------------------------------------------- ULP


def test_ulp_distance_across_zero():
    tiny = np.float32(1e-45)  # smallest float32 subnormal
    expected = np.array([-0.0, -tiny, -1.0, np.float32(np.finfo(np.float32).max)], dtype=np.float32)
    obtained = np.array([0.0, tiny, 1.0, np.inf], dtype=np.float32)
    assert ulp_distance(expected, obtained).tolist() == [0, 2, 2 * 0x3F800000, 1]


def test_ulp_distance_saturates_instead_of_overflowing_for_float64():
    big = np.finfo(np.float64).max
    assert ulp_distance(np.array([-big]), np.array([big])).tolist() == [np.iinfo(np.int64).max]


def test_ulp_distance_refuses_mixed_dtypes():
    with pytest.raises(TypeError, match="ulp_distance"):
        ulp_distance(np.zeros(2, np.float32), np.zeros(2, np.float64))


float32_arrays = hnp.arrays(
    np.float32,
    hnp.array_shapes(max_dims=3, max_side=6),
    elements=st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True),
)


@settings(max_examples=200, deadline=None)
@given(float32_arrays)
def test_any_float32_array_is_identical_to_itself(x):
    assert compare_output("y", x, x.copy(), DEFAULT).status == "identical"
    assert compare_output("y", x, x.copy(), EXACT).status == "identical"


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([np.float16, np.float32, np.float64]).flatmap(
        lambda dt: hnp.arrays(
            dt,
            hnp.array_shapes(max_dims=2, max_side=8),
            elements=hnp.from_dtype(np.dtype(dt), allow_nan=False, allow_infinity=False),
        )
    )
)
def test_next_float_up_is_one_ulp_away(x):
    with np.errstate(over="ignore"):  # the largest finite float's next is inf: still 1 ULP
        up = np.nextafter(x, x.dtype.type(np.inf))
    assert (ulp_distance(x, up) == 1).all()


# --------------------------------------------------------------------------- scale


def test_ten_million_float32_elements_compare_in_bounded_memory():
    n = 10_000_000
    expected = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    obtained = expected.copy()
    obtained[[0, n // 2, n - 1]] += np.float32(1e-3)
    obtained[123_457] = np.nan
    tracemalloc.start()
    try:
        c = compare_output("big", expected, obtained, DEFAULT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (c.status, c.size, c.n_out_of_tolerance, c.nan_appeared) == ("mismatch", n, 4, 1)
    assert c.worst[0].index == [123_457]
    assert peak < 6 * expected.nbytes, f"peak {peak / 2**20:.0f} MiB for a {expected.nbytes / 2**20:.0f} MiB output"


# --------------------------------------------------------------------------- byte-identical path


def _with_specials(dt):
    elements = (
        hnp.from_dtype(np.dtype(dt))
        if np.dtype(dt).kind in "biuSU"
        else hnp.from_dtype(np.dtype(dt), allow_nan=True, allow_infinity=True)
    )
    return hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6), elements=elements)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [np.float16, np.float32, np.float64, np.complex64, np.int32, np.uint8, np.bool_, "U3", "S2"]
    ).flatmap(_with_specials)
)
def test_a_byte_identical_output_is_reported_exactly_as_the_full_scan_reports_it(x):
    # The fast path for obtained == expected byte for byte must change nothing in the report.
    fast = compare_output("y", x, x.copy(), DEFAULT)
    assert fast == compare_output("y", x, x.copy(), DEFAULT, scan_all=True)
    assert fast.status == "identical"


def test_a_bfloat16_output_identical_to_itself_reports_as_the_full_scan_does():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.array([[0.0, -1.5, np.nan], [np.inf, 3.0, -0.0]], dtype=ml_dtypes.bfloat16)
    tolerance = Tolerance(rtol=1e-2, atol=1e-2)
    assert compare_output("y", x, x.copy(), tolerance) == compare_output("y", x, x.copy(), tolerance, scan_all=True)
    assert compare_output("y", x, x.copy(), DEFAULT).max_ulp == 0


def test_different_bytes_take_the_full_scan():
    x = np.array([1.0, 2.0], dtype=np.float32)
    assert compare_output("y", x, x.copy(), DEFAULT).n_differ == 0
    one_ulp = compare_output(
        "y", x, np.array([1.0, np.nextafter(np.float32(2), np.float32(3))], dtype=np.float32), DEFAULT
    )
    assert (one_ulp.status, one_ulp.n_differ, one_ulp.max_ulp) == ("within_tolerance", 1, 1)
    nan_payloads = np.array([np.nan, -np.nan], dtype=np.float32)
    swapped = compare_output("y", nan_payloads, nan_payloads[::-1].copy(), DEFAULT)  # scanned: NaN vs NaN
    assert swapped == compare_output("y", nan_payloads, nan_payloads[::-1].copy(), DEFAULT, scan_all=True)
    assert (swapped.status, swapped.n_differ) == ("identical", 0)
    objects = np.array([1, "a"], dtype=object)  # pointers are not values
    assert compare_output("y", objects, objects.copy(), DEFAULT) == compare_output(
        "y", objects, objects.copy(), DEFAULT, scan_all=True
    )
