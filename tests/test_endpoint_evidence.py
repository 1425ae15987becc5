"""The transport's evidence comes from the numbers: decimal rounding and widening are told from float noise.

Cheap: NumPy only, no server. The detector must name 6-significant-digit JSON (tensorflow/serving#1332)
as rounding to 6 digits, and must not call ULP noise, relative noise or another model's outputs rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from envprint.check.endpoint.base import NotReady, public_url
from envprint.check.endpoint.evidence import rounded_digits, transport_evidence, widened
from envprint.check.endpoint.transport import wait_for

RNG = np.random.default_rng(21)
X = (RNG.standard_normal((64, 10)) * RNG.choice([1e-3, 1.0, 1e3], (64, 10))).astype(np.float32)


def _printed(x: np.ndarray, digits: int) -> np.ndarray:
    return np.array([float(f"{v:.{digits}g}") for v in x.ravel().tolist()]).reshape(x.shape).astype(x.dtype)


@pytest.mark.parametrize("digits", [4, 6, 7])
def test_json_printed_with_k_significant_digits_is_named_with_k(digits):
    assert rounded_digits(X, _printed(X, digits)) == digits


def test_float_noise_is_not_rounding():
    ulps = (X.view(np.int32) + RNG.integers(-4, 5, X.shape).astype(np.int32)).view(np.float32)
    relative = (X * (1 + RNG.standard_normal(X.shape) * 1e-6)).astype(np.float32)
    other = (X * 1.01).astype(np.float32)
    assert [rounded_digits(X, y) for y in (ulps, relative, other)] == [None, None, None]
    assert rounded_digits(X, X) is None  # nothing differs: no pattern


def test_full_precision_json_round_trips_float32_exactly():
    # Python's repr of the float32 widened to a double: what envprint sends, and what a faithful server answers.
    assert np.array_equal(np.array([float(repr(v)) for v in X.ravel().tolist()], dtype=np.float32).reshape(X.shape), X)


def test_widening_is_float64_holding_exactly_the_float32_values():
    assert widened(X, X.astype(np.float64))
    assert not widened(X, X.astype(np.float64) + 1e-9)
    assert transport_evidence({"y": X}, {"y": X.astype(np.float64)}) == ({}, ["y"])
    assert transport_evidence({"y": X}, {"y": _printed(X, 6).astype(np.float64)}) == ({"y": 6}, ["y"])


def test_wait_retries_with_backoff_while_not_ready_then_gives_up():
    calls, sleeps = [], []

    def ready() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise NotReady("loading")
        return "up"

    assert wait_for(ready, 10, sleep=sleeps.append) == "up"
    assert sleeps == [0.1, 0.2, 0.4]
    with pytest.raises(NotReady):
        wait_for(lambda: (_ for _ in ()).throw(NotReady("never")), 0.0, sleep=sleeps.append)


def test_a_public_url_drops_credentials_and_query():
    assert public_url("https://user:pw@host:8443/v1/models/m?token=abc#x") == "https://host:8443/v1/models/m"
