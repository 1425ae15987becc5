"""envprint aggregate: equivalence classes from `envprint verify --json` reports of any engine.

The reports are real: one record saved with oneDNN off, verified by three fresh processes as
three hosts would (two with oneDNN off, one with it on, which changes the depthwise model's bits
on this CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from envhelpers import invoke
from fleet_models import depthwise

from envprint.many.aggregate import class_name, pair_entries
from envprint.models import AggregateReport, Report


def _envprint(*args: str, onednn: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "envprint", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def reports(keras, tmp_path_factory) -> Path:
    """reports/host-a.json, host-b.json (oneDNN off, as at save) and host-c.json (oneDNN on)."""
    root = tmp_path_factory.mktemp("aggregate")
    model = root / "dw.keras"
    depthwise(keras).save(model)
    done = _envprint("save", str(model), onednn="0")
    assert done.returncode == 0, done.stderr
    out = root / "reports"
    out.mkdir()
    for host, onednn in (("host-a", "0"), ("host-b", "0"), ("host-c", "1")):
        done = _envprint("verify", str(model), "--json", onednn=onednn)
        assert done.returncode == 0, done.stderr
        (out / f"{host}.json").write_text(done.stdout)
    return out


def test_aggregate_groups_hosts_and_blames_onednn_for_the_odd_one(reports):
    r = invoke("aggregate", reports, "--json")
    assert r.exit_code == 0, r.output
    result = AggregateReport.model_validate_json(r.stdout)
    assert result.sources == 3
    (m,) = result.models
    a, b = m.classes
    assert (a.name, a.hosts, a.verdict) == (
        "A",
        [str(reports / "host-a.json"), str(reports / "host-b.json")],
        "identical",
    )
    assert (b.name, b.hosts, b.verdict) == ("B", [str(reports / "host-c.json")], "within_tolerance")
    assert b.explanations[0].cause == "onednn"
    (between,) = m.between
    # The variable only asks for oneDNN: the effective state is what differs, and what is counted.
    assert {e.path: (e.a, e.b) for e in between.entries}["tensorflow.onednn.enabled"] == (False, True)
    assert m.by_status == {"identical": 2, "within_tolerance": 1, "mismatch": 0, "error": 0, "unreachable": 0}


def test_aggregate_reads_json_lines_on_stdin_and_names_hosts_by_line(reports):
    lines = "".join(json.dumps(json.loads(p.read_text())) + "\n" for p in sorted(reports.glob("*.json")))
    r = invoke("aggregate", input=lines)
    assert r.exit_code == 0, r.output
    assert "envprint aggregate: 3 reports, 1 model\n" in r.output
    assert "Class A: 2 hosts, identical, outputs " in r.output
    assert "  hosts: stdin:1, stdin:2" in r.output
    assert "Class B: 1 host, within tolerance, outputs " in r.output
    assert "Class A (stdin:1) vs class B (stdin:3):" in r.output
    assert "  ~ tensorflow.onednn.enabled: no -> yes  [onednn]" in r.output


def test_aggregate_reads_reports_concatenated_as_cat_writes_them(reports):
    """`cat reports/*.json | envprint aggregate -`: verify's indented documents one after another, and a mix with lines."""
    files = sorted(reports.glob("*.json"))
    texts = [p.read_text() for p in files]
    assert texts[0].count("\n") > 1  # verify --json writes an indented document
    r = invoke(*["aggregate", "-", "--json"], input="".join(texts))
    assert r.exit_code == 0, r.output
    (m,) = AggregateReport.model_validate_json(r.stdout).models
    starts = [1, 1 + texts[0].count("\n"), 1 + texts[0].count("\n") + texts[1].count("\n")]
    assert [(c.hosts, c.verdict) for c in m.classes] == [
        ([f"stdin:{starts[0]}", f"stdin:{starts[1]}"], "identical"),
        ([f"stdin:{starts[2]}"], "within_tolerance"),
    ]
    mixed = texts[0] + json.dumps(json.loads(texts[1])) + "\n" + texts[2]
    r = invoke(*["aggregate", "-"], input=mixed)
    assert r.exit_code == 0, r.output
    first_line = 1 + texts[0].count("\n")
    assert f"  hosts: stdin:1, stdin:{first_line}" in r.output
    assert f"Class A (stdin:1) vs class B (stdin:{first_line + 1}):" in r.output


def test_a_host_that_could_not_verify_counts_with_its_exit_code(reports, tmp_path):
    model = json.loads((reports / "host-a.json").read_text())["model"]
    failed = tmp_path / "host-d.json"
    failed.write_text(json.dumps({"error": f"{model}: cannot be loaded", "exit_code": 4, "model": model}))
    r = invoke("aggregate", reports, failed, "--json")
    assert r.exit_code == 4, r.output
    (m,) = AggregateReport.model_validate_json(r.stdout).models
    bad = [h for h in m.hosts if h.status == "error"]
    assert [(h.host, h.exit_code, h.error) for h in bad] == [(str(failed), 4, f"{model}: cannot be loaded")]
    assert m.by_status["error"] == 1 and len(m.classes) == 2


def test_reports_without_an_outputs_digest_are_grouped_by_their_statistics(reports, tmp_path):
    """Reports from an envprint before outputs_digest still group: by verdict, environment, statistics."""
    for p in reports.glob("*.json"):
        doc = json.loads(p.read_text())
        del doc["outputs_digest"]
        (tmp_path / p.name).write_text(json.dumps(doc))
    r = invoke("aggregate", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    (m,) = AggregateReport.model_validate_json(r.stdout).models
    assert [len(c.hosts) for c in m.classes] == [2, 1]
    assert all(c.outputs_digest is None for c in m.classes)


def test_aggregate_refuses_what_is_not_a_verify_report(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"verdict": "identical"}))
    r = invoke("aggregate", bad)
    assert r.exit_code == 2, r.output
    assert f"{bad}: not an 'envprint verify --json' report (model: Field required)" in r.output
    (tmp_path / "x.json").write_text("{not json\n")
    r = invoke("aggregate", bad)
    assert r.exit_code == 2, r.output
    assert f"{bad}:1: not JSON" in r.output


def test_class_names_run_past_z():
    assert [class_name(i) for i in (0, 1, 25, 26, 27)] == ["A", "B", "Z", "AA", "AB"]


def test_pair_entries_take_the_record_value_where_a_host_has_no_entry(reports):
    a = Report.model_validate_json((reports / "host-a.json").read_text())
    c = Report.model_validate_json((reports / "host-c.json").read_text())
    forward = {e.path: (e.a, e.b) for e in pair_entries(a, c)}
    backward = {e.path: (e.b, e.a) for e in pair_entries(c, a)}
    assert forward == backward
    assert forward["tensorflow.onednn.enabled"] == (False, True)
    assert pair_entries(a, a) == []


EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "fleet"


@pytest.mark.parametrize("manifest", ["daemonset.yaml", "aggregate-job.yaml"])
def test_fleet_recipe_manifests_are_valid_kubernetes(manifest):
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    import yaml

    docs = [d for d in yaml.safe_load_all((EXAMPLES / manifest).read_text()) if d]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
    text = (EXAMPLES / manifest).read_text()
    assert ("envprint verify" in text) if manifest == "daemonset.yaml" else ("envprint aggregate /reports/" in text)
