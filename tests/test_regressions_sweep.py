"""envprint sweep counts a model within tolerance as passing, in every output it writes.

The within-tolerance model is real: the depthwise model of tests/fleet_models.py, recorded in
this process (oneDNN off, this CPU's default) and swept by workers started with
TF_ENABLE_ONEDNN_OPTS=1, which on this CPU changes its bits by a few ULP (tests/test_aggregate.py
shows the same host as within tolerance). Spawned workers inherit this process's environment.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from envhelpers import invoke
from fleet_models import depthwise, saved, tiny

from envprint.models import Report, SweepSummary


@pytest.fixture(scope="module")
def shelf(keras, tmp_path_factory) -> Path:
    """shelf/dw.keras (its bits follow oneDNN) and shelf/plain.keras (they do not), both recorded."""
    root = tmp_path_factory.mktemp("shelf")
    saved(depthwise(keras), root / "dw.keras")
    saved(tiny(keras, 1), root / "plain.keras")
    return root


def test_a_model_within_tolerance_passes_the_sweep(shelf, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    junit = tmp_path / "sweep.xml"
    r = invoke("sweep", shelf, "--jobs", "1", "--json", "--junit-xml", junit)
    assert r.exit_code == 0, r.output
    *lines, last = r.json_lines
    verdicts = {Path(Report.model_validate(doc).model).name: doc["verdict"] for doc in lines}
    assert verdicts == {"dw.keras": "within_tolerance", "plain.keras": "identical"}
    summary = SweepSummary.model_validate(last)
    assert summary.by_verdict == {"identical": 1, "within_tolerance": 1, "mismatch": 0, "error": 0}
    assert summary.exit_code == 0
    assert {Path(i.model).name: (i.verdict, i.exit_code) for i in summary.models} == {
        "dw.keras": ("within_tolerance", 0),
        "plain.keras": ("identical", 0),
    }
    (dw,) = [i for i in summary.models if i.verdict == "within_tolerance"]
    assert dw.leading_cause == "onednn"
    root = ET.parse(junit).getroot()
    assert (root.get("failures"), root.get("errors")) == ("0", "0")
    assert {s.get("name"): s.get("failures") for s in root.iter("testsuite")} == {
        f"envprint verify {shelf / 'dw.keras'}": "0",
        f"envprint verify {shelf / 'plain.keras'}": "0",
    }
