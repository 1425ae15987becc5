"""verify --endpoint against TF Serving's REST and gRPC APIs, served by a stand-in over real TensorFlow.

The real tensorflow_model_server binary cannot be installed here (not on PyPI, not in this
machine's package sources): tests/servers/tfserving_standin.py implements its REST API and its
gRPC services from the official protos (tensorflow-serving-api) over the SavedModel, loaded by
real TensorFlow, with fault modes each test switches on. Each fault gives its verdict and
leading cause; a server that cannot be verified gives one line and exit 6.
"""

from __future__ import annotations

import pytest
from servers import SERVED_NAME as NAME

import envprint
from envprint.errors import EndpointError, ExitCode

pytest_plugins = ["endpoint_fixtures"]  # served_models, standin, fault: shared with the other endpoint tests


def _verify(standin, url: str, **kwargs):
    return envprint.verify_endpoint(url, fingerprint=standin.record, **kwargs)


@pytest.mark.parametrize("where", ["rest", "rest-rows", "grpc"])
def test_a_faithful_server_is_identical_over_rest_columns_rows_and_grpc(standin, where):
    from envprint.check.endpoint import tfserving_rest

    url = f"{standin.grpc}/{NAME}" if where == "grpc" else f"{standin.rest}/v1/models/{NAME}"
    if where == "rest-rows":
        tfserving_rest.TFServingREST.rows = True
    try:
        report = _verify(standin, url, batch_size=10)
    finally:
        tfserving_rest.TFServingREST.rows = False
    assert report.verdict == "identical", report.to_text()
    e = report.endpoint
    assert e.protocol == ("tfserving-grpc" if where == "grpc" else "tfserving-rest")
    assert (e.batches, e.batch_size, e.served_version, e.signature) == (4, 10, "1", "serving_default")
    assert e.latency_ms_p50 is not None and e.latency_ms_p95 >= e.latency_ms_p50
    assert report.explanations == []


def test_six_significant_digits_are_named_transport_precision(standin, fault):
    fault("digits6")
    report = _verify(standin, f"{standin.rest}/v1/models/{NAME}:predict")
    assert report.verdict != "identical"
    assert report.endpoint.rounded_digits == {"output_0": 6}
    lead = report.explanations[0]
    assert lead.cause == "transport_precision", report.to_text()
    assert "gRPC" in lead.remedy
    # The same server over gRPC carries every bit: identical.
    assert _verify(standin, f"{standin.grpc}/{NAME}").verdict == "identical"


@pytest.mark.parametrize("where", ["rest", "grpc"])
def test_float64_widening_is_named_transport_precision(standin, fault, where):
    fault("float64")
    url = f"{standin.grpc}/{NAME}" if where == "grpc" else f"{standin.rest}/v1/models/{NAME}"
    report = _verify(standin, url)
    assert report.verdict == "mismatch"
    assert report.endpoint.widened == ["output_0"] and report.endpoint.rounded_digits == {}
    assert report.explanations[0].cause == "transport_precision"
    assert "float32" in report.explanations[0].remedy


@pytest.mark.parametrize("where", ["rest", "grpc"])
def test_a_wrong_signature_is_a_request_misfit_before_any_numerics(standin, fault, where):
    fault("wrong_signature")
    url = f"{standin.grpc}/{NAME}" if where == "grpc" else f"{standin.rest}/v1/models/{NAME}"
    report = _verify(standin, url)
    assert report.verdict == "mismatch" and not report.probes_run and report.outputs == []
    [misfit] = report.endpoint.misfits
    assert (misfit.field, misfit.recorded, misfit.served) == ("signature", "serving_default", "serving_alt")
    assert report.explanations[0].cause == "request_misfit"


@pytest.mark.parametrize("where", ["rest", "grpc"])
def test_another_version_served_is_named_another_model_served(standin, fault, where):
    fault("other_version")
    url = f"{standin.grpc}/{NAME}" if where == "grpc" else f"{standin.rest}/v1/models/{NAME}"
    report = _verify(standin, url)
    assert report.verdict == "mismatch"
    assert report.endpoint.served_version == "2"
    assert report.explanations[0].cause == "another_model_served", report.to_text()


def test_a_server_that_is_not_running_is_exit_6_after_the_wait(standin):
    from servers import free_port

    with pytest.raises(EndpointError, match="cannot connect") as err:
        _verify(standin, f"http://127.0.0.1:{free_port()}/v1/models/{NAME}", wait=0.5)
    assert err.value.exit_code == ExitCode.ENDPOINT == 6


def test_a_version_the_server_does_not_have_is_exit_6(standin):
    with pytest.raises(EndpointError, match="HTTP 404"):
        _verify(standin, f"{standin.rest}/v1/models/{NAME}/versions/9")


def test_the_cli_verifies_an_endpoint_with_json_and_junit(standin, fault, tmp_path):
    import json

    from envhelpers import invoke

    junit = tmp_path / "endpoint.xml"
    url = f"{standin.rest}/v1/models/{NAME}"
    r = invoke("verify", standin.model, "--endpoint", url, "--json", "--junit-xml", junit)
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "identical" and doc["endpoint"]["batches"] == 1
    # Batches of 8 run other kernels than save's one batch of 32: ULP drift, named with the batching.
    r = invoke("verify", standin.model, "--endpoint", url, "--batch-size", "8")
    if "within tolerance" in r.stdout.splitlines()[0]:
        assert "server_numerics" in r.stdout and "batches of 8" in r.stdout, r.stdout
    assert junit.read_text().count("<testcase") >= 1
    fault("digits6")
    r = invoke("verify", standin.model, "--endpoint", url)
    assert "transport_precision" in r.stdout and "rounded to 6 significant digits" in r.stdout, r.stdout
    assert "Environment: the server's host is not fingerprinted" in r.stdout
    assert f"endpoint:    {url} (tfserving-rest, JSON)" in r.stdout


def test_the_kubernetes_job_runs_envprint_verify_against_the_served_model(standin, fault, monkeypatch):
    """examples/kubernetes/endpoint-verify-job.yaml's command, its URL and record pointed at the stand-in."""
    from pathlib import Path

    import yaml
    from envhelpers import invoke

    job = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "examples/kubernetes/endpoint-verify-job.yaml").read_text()
    )
    (container,) = job["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["envprint", "verify"] and job["spec"]["backoffLimit"] == 0
    url = command[command.index("--endpoint") + 1]
    assert url.endswith(f"/v1/models/{NAME}") and command[2].endswith("assets.extra/envprint/fingerprint.json")
    args = [
        standin.record if a == command[2] else f"{standin.rest}/v1/models/{NAME}" if a == url else a
        for a in command[1:]
    ]
    monkeypatch.setenv("SERVING_TOKEN", "Bearer t0ken")
    assert invoke(*args).exit_code == 0
    fault("other_version")
    r = invoke(*args)
    assert r.exit_code == 1 and "another_model_served" in r.stdout and "t0ken" not in r.output


def _doc_lines(path: str, section: str | None = None) -> list[str]:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / path).read_text()
    if section:
        text = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.startswith("envprint verify")]


def test_the_readme_and_the_docs_page_examples_run_against_the_stand_in(standin):
    """Their `envprint verify --endpoint` lines, localhost's TF Serving ports and model path pointed at the stand-in."""
    import shlex

    from envhelpers import invoke

    lines = _doc_lines("README.md", "Endpoints") + _doc_lines("docs/how-to/endpoints.md")
    assert len(lines) == 4
    for line in lines:
        line = line.replace("http://localhost:8501", standin.rest).replace("grpc://localhost:8500", standin.grpc)
        args = [str(standin.model) if a == "models/scorer/1" else a for a in shlex.split(line)[1:]]
        r = invoke(*args)
        assert r.exit_code == 0, (line, r.output)
