"""envprint aggregate: each part of a class's key splits hosts on its own, and a mismatch fails the run.

A class is hosts with the same verdict, the same numerics-relevant differences from the record and
the same outputs (their digest). Each test below changes one of the three and holds the other two,
so a key that lost a part would merge hosts that must stay apart.

The reports are real ``envprint.verify`` reports of one record, made in this process (no Ray, no
child processes). What varies between "hosts":

- the outputs: the record's model has its weights behind ``Rescaling(1.0)``; a host whose
  arithmetic rounds differently is the same weights behind ``Rescaling(1 + 2**-20)`` or
  ``(1 + 2**-19)`` (the logits move by ~1e-6 relative: within the float32 tolerance, other bits);
- the verdict: the same outputs checked with ``--exact`` (``Tolerance(exact=True)``) are a mismatch;
- the environment: ``TF_ENVPRINT_EXAMPLE=0`` on the host, a ``TF_*`` variable envprint records and
  counts as able to change numerics, which nothing reads: the outputs stay as they were, and setting
  it for one report leaves nothing behind in this process for the tests after it. (A GPU-only
  setting such as ``NVIDIA_TF32_OVERRIDE`` would not do: where neither host has a GPU it is listed,
  not counted.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from envhelpers import invoke
from fleet_models import saved, tiny

import envprint
from envprint.models import Tolerance
from envprint.record.store import canonical_json

NUDGED = 1 + 2**-20
NUDGED_MORE = 1 + 2**-19


@pytest.fixture(scope="module")
def record(keras, tmp_path_factory) -> tuple[Path, list]:
    """(the record's folder, the recorded model's weights)."""
    model = tiny(keras, 11, keras.layers.Rescaling(1.0, name="scale"))
    path = saved(model, tmp_path_factory.mktemp("aggregate_key") / "model.keras")
    return Path(str(path) + ".envprint"), model.get_weights()


@pytest.fixture(scope="module")
def host_report(keras, record):
    """``host_report(scale, exact=False, tf32_off=False)`` -> that host's verify report as JSON text."""
    folder, weights = record
    made: dict[tuple, str] = {}

    def make(scale: float, *, exact: bool = False, tf32_off: bool = False) -> str:
        key = (scale, exact, tf32_off)
        if key not in made:
            model = tiny(keras, 11, keras.layers.Rescaling(scale, name="scale"))
            model.set_weights(weights)
            with pytest.MonkeyPatch.context() as mp:
                if tf32_off:
                    mp.setenv("TF_ENVPRINT_EXAMPLE", "0")
                else:
                    mp.delenv("TF_ENVPRINT_EXAMPLE", raising=False)
                report = envprint.verify(model, fingerprint=folder, tolerance=Tolerance(exact=True) if exact else None)
            made[key] = canonical_json(report)
        return made[key]

    return make


def write_hosts(folder: Path, **hosts: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in hosts.items():
        (folder / f"{name}.json").write_text(text)
    return folder


def classes(r) -> list[tuple[str, list[str], str]]:
    (model,) = r.json["models"]
    return [(c["name"], [Path(h).stem for h in c["hosts"]], c["verdict"]) for c in model["classes"]]


def test_the_reports_differ_only_where_each_test_says(host_report):
    same = json.loads(host_report(1.0))
    nudged = json.loads(host_report(NUDGED))
    strict = json.loads(host_report(NUDGED, exact=True))
    more = json.loads(host_report(NUDGED_MORE))
    tf32_off = json.loads(host_report(1.0, tf32_off=True))
    assert [d["verdict"] for d in (same, nudged, strict, more, tf32_off)] == [
        "identical",
        "within_tolerance",
        "mismatch",
        "within_tolerance",
        "identical",
    ]
    assert strict["outputs_digest"] == nudged["outputs_digest"] != more["outputs_digest"]
    assert tf32_off["outputs_digest"] == same["outputs_digest"]
    numerics = [(e["path"], e["b"]) for e in tf32_off["environment"]["entries"] if e["numerics"]]
    assert numerics == [("env.variables.TF_ENVPRINT_EXAMPLE", "0")]
    for doc in (same, nudged, strict, more):
        assert [e for e in doc["environment"]["entries"] if e["numerics"]] == []


def test_hosts_with_the_same_verdict_environment_and_outputs_are_one_class(host_report, tmp_path):
    folder = write_hosts(tmp_path, a=host_report(NUDGED), b=host_report(NUDGED))
    r = invoke("aggregate", folder, "--json")
    assert r.exit_code == 0, r.output
    assert classes(r) == [("A", ["a", "b"], "within_tolerance")]


def test_other_outputs_alone_make_another_class(host_report, tmp_path):
    folder = write_hosts(tmp_path, a=host_report(NUDGED), b=host_report(NUDGED), c=host_report(NUDGED_MORE))
    r = invoke("aggregate", folder, "--json")
    assert r.exit_code == 0, r.output
    assert classes(r) == [("A", ["a", "b"], "within_tolerance"), ("B", ["c"], "within_tolerance")]
    (between,) = r.json["models"][0]["between"]
    assert between["entries"] == []  # nothing recorded tells them apart: only their outputs do


def test_another_verdict_alone_makes_another_class(host_report, tmp_path):
    folder = write_hosts(tmp_path, a=host_report(NUDGED), b=host_report(NUDGED), strict=host_report(NUDGED, exact=True))
    r = invoke("aggregate", folder, "--json")
    assert r.exit_code == 1, r.output
    assert classes(r) == [("A", ["a", "b"], "within_tolerance"), ("B", ["strict"], "mismatch")]


def test_another_environment_alone_makes_another_class(host_report, tmp_path):
    folder = write_hosts(tmp_path, a=host_report(1.0), b=host_report(1.0), t=host_report(1.0, tf32_off=True))
    r = invoke("aggregate", folder)
    assert r.exit_code == 0, r.output
    assert "Class A: 2 hosts, identical, outputs " in r.output
    assert "Class B: 1 hosts, identical, outputs " in r.output
    assert f"Class A ({folder / 'a.json'}) vs class B ({folder / 't.json'}):" in r.output
    assert "TF_ENVPRINT_EXAMPLE" in r.output


def test_a_mismatching_host_makes_aggregate_exit_1(host_report, tmp_path):
    folder = write_hosts(tmp_path, a=host_report(1.0), b=host_report(NUDGED, exact=True))
    r = invoke("aggregate", folder, "--json")
    assert r.exit_code == 1, r.output
    assert r.json["exit_code"] == 1
    (model,) = r.json["models"]
    assert model["by_status"] == {"identical": 1, "within_tolerance": 0, "mismatch": 1, "error": 0, "unreachable": 0}
    assert {Path(h["host"]).stem: (h["verdict"], h["exit_code"]) for h in model["hosts"]} == {
        "a": ("identical", 0),
        "b": ("mismatch", 1),
    }
    text = invoke("aggregate", folder)
    assert text.exit_code == 1, text.output


def test_hosts_within_tolerance_pass_aggregate(host_report, tmp_path):
    folder = write_hosts(tmp_path, a=host_report(1.0), b=host_report(NUDGED), c=host_report(NUDGED_MORE))
    r = invoke("aggregate", folder, "--json")
    assert r.exit_code == 0, r.output
    assert r.json["models"][0]["by_status"]["within_tolerance"] == 2
