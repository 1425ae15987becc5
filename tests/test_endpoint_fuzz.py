"""A server is input like any other: each hostile or broken answer is one line and exit 6, or a judged report.

The server here is tests/servers/hostile.py (a thread, no TensorFlow), answering TF Serving's
status and metadata faithfully and each predict with a canned body. Sizes and times are bounded:
an endless body hits the size cap or the deadline, a silent server the read timeout.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from envhelpers import invoke
from servers.hostile import hostile

import envprint
from envprint.errors import EndpointError, ExitCode
from envprint.record.npz import load_arrays

pytest_plugins = ["endpoint_fixtures"]


def _metadata(saved) -> dict:
    def info(spec) -> dict:
        dims = [{"size": str(-1 if d is None else d)} for d in spec.shape]
        return {"dtype": "DT_FLOAT", "tensor_shape": {"dim": dims}, "name": spec.name}

    sig = {
        "inputs": {s.name: info(s) for s in saved.model.inputs},
        "outputs": {"output_0": info(saved.model.outputs[0])},
    }
    return {"metadata": {"signature_def": {"signature_def": {"serving_default": sig}}}}


def _endless(out) -> None:
    while True:
        out.write(b"[" * 65536)


def _drip(out) -> None:
    while True:
        out.write(b" ")
        out.flush()
        time.sleep(0.05)


def _silent(out) -> None:
    time.sleep(5)


def _truncated(out) -> None:
    out.write(b'{"outputs": [[0.1, 0.2')


@pytest.fixture(scope="module")
def record(served_models):
    fp = served_models[0] / "assets.extra" / "envprint" / "fingerprint.json"
    saved = envprint.read_fingerprint(fp)
    reference = load_arrays(
        fp.parent / saved.reference_arrays.file, (fp.parent / saved.reference_arrays.file).read_bytes()
    )
    return fp, saved, reference["output_0"]


@pytest.fixture(scope="module")
def server(record):
    _, saved, ref = record
    html = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

    def outputs(value) -> bytes:
        return json.dumps({"outputs": value}).encode()

    nan = ref.astype(np.float64).tolist()
    nan[0][0] = float("nan")
    answers = {
        "html": (502, {"Content-Type": "text/html"}, html),
        "html200": (200, {}, html),
        "notjson": (200, {}, b"predictions follow: 1 2 3"),
        "truncated": (200, {"Content-Length": "1000"}, _truncated),
        "endless": (200, {}, _endless),
        "drip": (200, {}, _drip),
        "silent": (200, {}, _silent),
        "count": (200, {}, outputs(ref[:-1].tolist())),
        "strings": (200, {}, outputs([["a"] * ref.shape[1]] * ref.shape[0])),
        "ragged": (200, {}, outputs([[1.0]] + ref[1:].tolist())),
        "nooutputs": (200, {}, b'{"result": 1}'),
        "redirect": (307, {"Location": "http://elsewhere.example/v1/models/m:predict"}, b""),
        "bad400": (400, {}, b'{"error": "Input to reshape is a tensor with 7 values"}'),
        "bare500": (500, {}, b""),
        "shape": (200, {}, outputs(ref[:, :3].tolist())),
        "nan": (200, {}, outputs(nan)),
        "moved": (307, {"Location": "/v1/models/nan:predict"}, b""),  # the same host: followed
    }
    with hostile(_metadata(saved), answers) as url:
        yield url


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("html", "HTTP 502 (an HTML page titled '502 Bad Gateway')"),
        ("html200", "the answer is not JSON (an HTML page titled '502 Bad Gateway')"),
        ("notjson", "the answer is not JSON (25 bytes starting 'predictions follow: 1 2 3')"),
        ("truncated", "the answer is truncated"),
        ("endless", "larger than the cap (1048576 bytes)"),
        ("drip", "did not end within 2 s"),
        ("silent", "no answer within the timeout (0.5 s)"),
        ("count", "output 'output_0' has 31 rows for a batch of 32 probes"),
        ("strings", "expected numbers, obtained 'a'"),
        ("ragged", "not a rectangular array"),
        ("nooutputs", "the answer has no 'outputs' or 'predictions'"),
        ("redirect", "redirects to another host (http://elsewhere.example/v1/models/m:predict)"),
        ("bad400", "HTTP 400 (error 'Input to reshape is a tensor with 7 values')"),
        ("bare500", "HTTP 500 (an empty body)"),
    ],
)
def test_each_hostile_answer_is_one_line_and_exit_6(record, server, mode, words):
    start = time.monotonic()
    with pytest.raises(EndpointError) as err:
        envprint.verify_endpoint(f"{server}/v1/models/{mode}", fingerprint=record[0], timeout=0.5, max_bytes=1 << 20)
    assert time.monotonic() - start < 5, "a hostile server must not hold the client"
    message = str(err.value)
    assert words in message and "\n" not in message and err.value.exit_code == ExitCode.ENDPOINT
    assert message.startswith(f"{server}/v1/models/{mode}")


def test_answers_of_the_wrong_shape_or_with_nan_are_judged_not_errors(record, server):
    shape = envprint.verify_endpoint(f"{server}/v1/models/shape", fingerprint=record[0])
    assert shape.verdict == "mismatch" and "shape" in shape.outputs[0].problem
    nan = envprint.verify_endpoint(f"{server}/v1/models/nan", fingerprint=record[0])
    assert nan.verdict == "mismatch" and nan.outputs[0].nan_appeared == 1
    assert nan.explanations[0].cause == "another_model_served"


def test_the_cli_says_one_line_and_exits_6_with_an_error_document(record, server, tmp_path: Path):
    r = invoke("verify", record[0], "--endpoint", f"{server}/v1/models/html", "--json")
    assert r.exit_code == 6, r.stderr
    doc = json.loads(r.stdout)
    assert doc["error"]["kind"] == "endpoint" and "HTTP 502" in doc["error"]["message"]
    assert r.stderr.count("\n") == 1


def test_header_values_come_from_the_environment_and_are_never_printed(record, server, monkeypatch):
    monkeypatch.setenv("SERVING_TOKEN", "Bearer s3cret-value")
    r = invoke(
        "verify",
        record[0],
        "--endpoint",
        f"{server}/v1/models/nan",
        "--header-env",
        "Authorization=SERVING_TOKEN",
        "--json",
    )
    assert r.exit_code == 1 and "s3cret" not in r.stdout + r.stderr
    r = invoke(
        "verify", record[0], "--endpoint", f"{server}/v1/models/nan", "--header-env", "Authorization=NOT_SET_VAR"
    )
    assert r.exit_code == 2 and "NOT_SET_VAR is not set" in r.stderr


def test_a_missing_grpc_client_is_exit_5_with_the_pip_line(record, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "grpc", None)  # a host without grpcio
    r = invoke("verify", record[0], "--endpoint", "grpc://127.0.0.1:1/scorer")
    assert r.exit_code == ExitCode.DEPENDENCY and "pip install 'envprint[tfserving]'" in r.stderr, r.stderr


def test_preflight_or_investigate_with_an_endpoint_is_a_usage_error(record):
    for flag in ("--preflight", "--investigate"):
        r = invoke("verify", record[0], "--endpoint", "http://127.0.0.1:1/v1/models/m", flag)
        assert r.exit_code == ExitCode.USAGE and "endpoint" in r.stderr, r.stderr


def test_an_unknown_protocol_names_the_registry_s(record):
    from envprint.check.endpoint.registry import ids

    r = invoke("verify", record[0], "--endpoint", "http://127.0.0.1:1/x", "--protocol", "triton")
    assert r.exit_code == ExitCode.USAGE and ", ".join(ids()) in r.stderr
    r = invoke("verify", record[0], "--endpoint", "http://127.0.0.1:1/x")
    assert r.exit_code == ExitCode.USAGE and "no protocol recognises this URL" in r.stderr


def test_a_redirect_on_the_same_host_is_followed(record, server):
    assert envprint.verify_endpoint(f"{server}/v1/models/moved", fingerprint=record[0]).outputs[0].nan_appeared == 1


def test_tls_with_the_server_s_ca_verifies_and_without_it_is_one_line(record, tmp_path):
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    ref = record[2].astype(np.float64).tolist()
    with hostile(
        _metadata(record[1]), {"ok": (200, {}, json.dumps({"outputs": ref}).encode())}, tls=(str(cert), str(key))
    ) as url:
        report = envprint.verify_endpoint(f"{url}/v1/models/ok", fingerprint=record[0], cacert=cert)
        assert report.verdict == "identical" and report.endpoint.url.startswith("https://")
        with pytest.raises(EndpointError, match="TLS failed .*give the server's CA with --cacert"):
            envprint.verify_endpoint(f"{url}/v1/models/ok", fingerprint=record[0])
