"""Properties of fingerprints and diffs, and a short seeded fuzz of every parser of hostile input.

The long fuzz is ``python scripts/fuzz.py --seconds N``; this runs the same mutators for a few
seconds with fixed seeds, so that CI fails on the first input that escapes as anything but an
EnvprintError, and any failure here replays exactly.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import signal
import sys
import time
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envprint.causes.diff import diff_fingerprints
from envprint.errors import EnvprintError
from envprint.models import Fingerprint, SelfCheck
from envprint.record import store

FUZZ_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fuzz.py"
DETERMINISTIC = settings(derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def fuzz_module():
    spec = importlib.util.spec_from_file_location("envprint_fuzz_script", FUZZ_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@cache
def base_fingerprint() -> Fingerprint:
    from envprint.check.capture import capture

    return capture(tensorflow=False)


# --------------------------------------------------------------------------- fingerprints from a real capture

text = st.text(max_size=30)
maybe_int = st.none() | st.integers(min_value=-(2**70), max_value=2**70)
finite = st.floats(allow_nan=False, allow_infinity=False)
anything_float = st.floats()  # NaN and infinities included: save records inf when shapes differ


@st.composite
def fingerprints(draw) -> Fingerprint:
    """A real capture of this host with hypothesis-drawn values in several sections."""
    base = base_fingerprint().model_dump()
    base["created_at"] = draw(st.datetimes(timezones=st.just(dt.timezone.utc)))
    base["python"]["version"] = draw(text)
    base["cpu"]["logical_cores"] = draw(maybe_int)
    base["cpu"]["flags"] = draw(st.none() | st.lists(text, max_size=5))
    base["cpu"]["memory_bytes"] = draw(maybe_int)
    base["env"]["variables"] = draw(st.dictionaries(text, text, max_size=5))
    base["env"]["redacted"] = draw(st.lists(text, max_size=3))
    base["seeds"]["declared"] = draw(maybe_int)
    base["threads"]["variables"] = draw(st.dictionaries(text, text, max_size=3))
    if draw(st.booleans()):
        base["packages"]["installed"] = draw(st.dictionaries(text, text, max_size=8))
        base["packages"]["key"] = draw(st.dictionaries(text, st.none() | text, max_size=4))
    base["unavailable"] = draw(st.dictionaries(text, text, max_size=2))
    if draw(st.booleans()):
        outputs = st.dictionaries(text, anything_float, max_size=3)
        base["self_check"] = SelfCheck(
            repeat_max_abs=draw(outputs), batch1_max_abs=draw(outputs), deterministic=draw(st.booleans())
        ).model_dump()
    return Fingerprint.model_validate(base)


@DETERMINISTIC
@given(fp=fingerprints())
def test_a_fingerprint_survives_its_json_round_trip(fp):
    text_once = store.canonical_json(fp)
    back = store.parse_fingerprint_bytes(text_once.encode("utf-8"), "round-trip")
    assert store.canonical_json(back) == text_once  # text, not ==, because NaN != NaN
    assert back.created_at == fp.created_at and back.cpu == fp.cpu and back.env == fp.env


@DETERMINISTIC
@given(fp=fingerprints())
def test_a_fingerprint_has_no_differences_from_itself(fp):
    d = diff_fingerprints(fp, fp, "a", "b")
    assert d.identical and d.entries == []


def _key(entry, swap: bool) -> tuple:
    flip = {"only_in_a": "only_in_b", "only_in_b": "only_in_a", "changed": "changed"}
    a, b = (entry.b, entry.a) if swap else (entry.a, entry.b)
    status = flip[entry.status] if swap else entry.status
    return entry.path, status, json.dumps(a), json.dumps(b), entry.topic, entry.numerics


@DETERMINISTIC
@given(a=fingerprints(), b=fingerprints())
def test_diff_b_a_mirrors_diff_a_b(a, b):
    ab, ba = diff_fingerprints(a, b, "A", "B"), diff_fingerprints(b, a, "B", "A")
    assert ab.identical == ba.identical
    assert sorted(_key(e, swap=False) for e in ab.entries) == sorted(_key(e, swap=True) for e in ba.entries)
    assert (ab.a, ab.b) == (ba.b, ba.a)


# --------------------------------------------------------------------------- fuzzing the parsers


def _outcome(call) -> str:
    fuzz = fuzz_module()
    outcome = fuzz.run_case(call, case_timeout=5.0)
    assert not outcome.bad, f"{outcome.kind}: {outcome.detail}"
    return outcome.kind


@DETERMINISTIC
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_as_a_fingerprint_end_in_an_envprint_error(data):
    _outcome(lambda: store.parse_fingerprint_bytes(data, "fuzz.json"))


@DETERMINISTIC
@given(doc=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=30))  # fmt: skip
def test_arbitrary_json_as_a_fingerprint_end_in_an_envprint_error(doc):
    _outcome(lambda: store.parse_fingerprint(doc, "fuzz.json"))
    _outcome(lambda: store.parse_fingerprint({"schema_version": 1, **doc} if isinstance(doc, dict) else doc, "f"))


@DETERMINISTIC
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_as_arrays_end_in_an_envprint_error(data, tmp_path_factory):
    from envprint.record import npz

    _outcome(lambda: npz.load_arrays(Path("fuzz/reference.npz"), data))
    _outcome(lambda: npz.load_arrays(Path("fuzz/reference.npz"), b"PK\x03\x04" + data))
    _outcome(lambda: npz.load_arrays(Path("fuzz/reference.npz"), b"\x93NUMPY" + data))


@pytest.mark.parametrize("target", ["fingerprint", "fingerprint-file", "signature", "arrays", "probes", "sidecar"])
def test_mutated_records_end_in_an_envprint_error_or_a_valid_result(target):
    fuzz = fuzz_module()
    tally = fuzz.fuzz(cases=250, seed=20260101, targets=(target,), case_timeout=5.0)
    assert not tally.failures, [(t, o.kind, o.detail) for t, o, _ in tally.failures[:5]]
    kinds = {kind for (_, kind) in tally.counts}
    assert "error:FingerprintError" in kinds  # the mutations do reach the checks


def test_the_fuzz_script_reports_counts_and_exits_0(capsys, tmp_path):
    fuzz = fuzz_module()
    assert fuzz.main(["--seconds", "0.5", "--seed", "3", "--crashes", str(tmp_path / "crashes")]) == 0
    out = capsys.readouterr().out
    assert "no crashes, no hangs" in out and "error:FingerprintError" in out
    assert not (tmp_path / "crashes").exists()


def test_the_harness_catches_crashes_multi_line_errors_and_hangs():
    fuzz = fuzz_module()

    def crash():
        raise KeyError("x")

    def two_lines():
        raise EnvprintError("one\ntwo")

    def hang():
        while True:
            time.sleep(0.01)

    assert fuzz.run_case(crash, 5.0).kind == "CRASH:KeyError"
    assert fuzz.run_case(two_lines, 5.0).kind == "CRASH:EnvprintError (not one line)"
    if hasattr(signal, "setitimer"):
        assert fuzz.run_case(hang, 0.2).kind == "TIMEOUT"
