"""verify --endpoint against MLflow's real scoring server (``mlflow models serve --env-manager local``).

A Keras model saved with MLflow's keras flavour is served by the scoring server from PyPI, the
process a user starts; the same record is verified against the server of version 1 (its own
model: identical, exit 0) and of version 2 (other weights: a mismatch whose leading cause is
another_model_served, exit 1). Servers: tests/real_server_fixtures.py.
"""

from __future__ import annotations

import json

import pytest
from envhelpers import invoke

import envprint
from envprint.errors import EndpointError

pytest.importorskip("mlflow", reason="the MLflow tests need the envprint[mlflow] extra")
pytest_plugins = ["real_server_fixtures"]
pytestmark = pytest.mark.keras3  # the served models are Keras 3 files


def test_the_scoring_server_of_the_recorded_model_is_identical_and_exits_0(real_models, real_servers):
    url = f"{real_servers['mlflow_v1']}/invocations"
    r = invoke("verify", real_models.v1, "--endpoint", url, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "identical" and doc["explanations"] == []
    e = doc["endpoint"]
    assert (e["protocol"], e["exact_encoding"], e["batches"], e["batch_size"]) == ("mlflow", False, 1, 24)


def test_dataframe_split_sends_the_probes_as_a_table_and_is_identical_too(real_models, real_servers):
    url = f"{real_servers['mlflow_v1']}/invocations"
    report = envprint.verify_endpoint(url, real_models.v1, protocol="mlflow-dataframe")
    assert report.verdict == "identical", report.to_text()
    assert report.endpoint.protocol == "mlflow-dataframe"


def test_the_server_of_another_model_version_is_a_mismatch_named_another_model_served(real_models, real_servers):
    url = f"{real_servers['mlflow_v2']}/invocations"
    r = invoke("verify", real_models.v1, "--endpoint", url, "--json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "mismatch"
    assert doc["explanations"][0]["cause"] == "another_model_served", r.output


def test_a_request_the_model_refuses_is_exit_6_with_the_servers_message(real_models, real_servers, tmp_path):
    # The KServe "misfit" model's record (input (None, 5)) sent to the (None, 4) model: MLflow has no
    # metadata to fit the request to, so its own 400 answer is the evidence, quoted in one line.
    import shutil

    other = tmp_path / "wide.keras"
    shutil.copy2(real_models.misfit, other)
    envprint.save(other, num_probes=2)
    with pytest.raises(EndpointError, match=r"HTTP 400 \(error 'Encountered an unexpected error") as err:
        envprint.verify_endpoint(f"{real_servers['mlflow_v1']}/invocations", other)
    assert err.value.exit_code == 6 and "\n" not in str(err.value)
    assert "does the request fit the model's signature?" in str(err.value)


def test_the_docs_examples_run_against_the_scoring_server(real_models, real_servers, doc_lines):
    """The `envprint verify` lines of docs/how-to/endpoints-kserve-mlflow.md, pointed at the real server."""
    lines = doc_lines("MLflow scoring server")
    assert len(lines) == 2
    for args in lines:
        args = [
            str(real_models.v1)
            if a == "scorer.keras"
            else a.replace("http://localhost:5000", real_servers["mlflow_v1"])
            for a in args
        ]
        r = invoke(*args)
        assert r.exit_code == 0, (args, r.output)
