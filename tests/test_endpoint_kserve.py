"""verify --endpoint against KServe's real ModelServer, on V1 and the Open Inference Protocol (V2).

tests/servers/kserve_server.py runs kserve's own ModelServer (from PyPI, in .venv-kserve) over the
saved Keras models: "mlp" (the recorded version 1), "other" (version 2: other weights) and
"misfit" (another input). The same record is verified over V1, V2 with JSON tensors and V2 with
the binary tensor extension; the decoders' refusals are tested on hand-made answers below.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from envhelpers import invoke

import envprint
from envprint.check.endpoint.base import ServedModel, ServedTensor, Target, TransportOptions
from envprint.check.endpoint.kserve_v2 import KServeV2, encode_input
from envprint.check.endpoint.transport import Response
from envprint.errors import EndpointError

pytest_plugins = ["real_server_fixtures"]

URLS = {
    "kserve-v1": "{k}/v1/models/{name}:predict",
    "kserve-v2": "{k}/v2/models/{name}/infer",
    "kserve-v2-binary": "{k}/v2/models/{name}/infer",
}


def _verify(kserve, models, protocol, name="mlp", **kwargs):
    url = URLS[protocol].format(k=kserve, name=name)
    chosen = protocol if protocol == "kserve-v2-binary" else None  # the others are detected from the URL
    return envprint.verify_endpoint(url, models.v1, protocol=chosen, **kwargs)


@pytest.mark.keras3
@pytest.mark.parametrize("protocol", list(URLS))
def test_the_recorded_model_served_by_kserve_is_identical(kserve, real_models, protocol):
    report = _verify(kserve, real_models, protocol)
    assert report.verdict == "identical", report.to_text()
    e = report.endpoint
    assert (e.protocol, e.exact_encoding, e.served_model) == (protocol, protocol == "kserve-v2-binary", "mlp")
    assert report.explanations == []


@pytest.mark.keras3
@pytest.mark.parametrize("protocol", ["kserve-v1", "kserve-v2"])
def test_another_model_version_served_is_named_another_model_served(kserve, real_models, protocol):
    report = _verify(kserve, real_models, protocol, name="other")
    assert report.verdict == "mismatch"
    assert report.explanations[0].cause == "another_model_served", report.to_text()


@pytest.mark.keras3
@pytest.mark.parametrize("protocol", ["kserve-v1", "kserve-v2"])
def test_a_model_taking_another_input_is_a_request_misfit_read_from_v2_metadata(kserve, real_models, protocol):
    report = _verify(kserve, real_models, protocol, name="misfit")
    assert report.verdict == "mismatch" and not report.probes_run
    [misfit] = report.endpoint.misfits
    assert (misfit.field, misfit.name, misfit.recorded, misfit.served) == ("input_shape", "pixels", "[4]", "[5]")
    assert report.explanations[0].cause == "request_misfit"


@pytest.mark.keras3
def test_the_cli_verifies_a_v2_endpoint_with_json_and_exits_0_then_1(kserve, real_models):
    r = invoke("verify", real_models.v1, "--endpoint", f"{kserve}/v2/models/mlp/infer", "--json", "--batch-size", "24")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["endpoint"]["protocol"] == "kserve-v2"
    r = invoke("verify", real_models.v1, "--endpoint", f"{kserve}/v2/models/other/infer")
    assert r.exit_code == 1, r.output
    assert "another_model_served" in r.stdout


@pytest.mark.keras3
def test_a_version_in_the_url_that_kserve_does_not_route_is_exit_6_in_one_line(kserve, real_models):
    with pytest.raises(EndpointError, match="Model versioning not supported yet") as err:
        envprint.verify_endpoint(f"{kserve}/v2/models/mlp/versions/1/infer", real_models.v1)
    assert err.value.exit_code == 6 and "\n" not in str(err.value)


@pytest.mark.keras3
def test_the_docs_examples_run_against_kserve(kserve, real_models, doc_lines):
    """The `envprint verify` lines of docs/how-to/endpoints-kserve-mlflow.md, pointed at the real server."""
    lines = doc_lines("KServe and the Open Inference Protocol")
    assert len(lines) == 3
    for args in lines:
        args = [str(real_models.v1) if a == "scorer.keras" else a for a in args]
        args = [a.replace("http://localhost:8080", kserve).replace("/models/scorer", "/models/mlp") for a in args]
        r = invoke(*args)
        assert r.exit_code == 0, (args, r.output)


# ---- the V2 codec on answers made by hand: every refusal one line, nothing cast


def _decode(doc: dict, body_tail: bytes = b"", binary: bool = False, outputs=("y",)) -> dict:
    head = json.dumps(doc).encode()
    headers = {"inference-header-content-length": str(len(head))} if binary else {}
    proto = KServeV2("http://127.0.0.1:1/v2/models/m/infer", TransportOptions(), Target("m"))
    served = ServedModel("m", None, "", (), tuple(ServedTensor(n, "float32") for n in outputs))
    return proto.decode(Response(200, headers, head + body_tail, 0.0), served)


def test_a_float64_answer_stays_float64_and_binary_bytes_decode_exactly():
    x = np.array([[1.0 / 3, 2.5]], np.float32)
    out = _decode({"outputs": [{"name": "y", "shape": [1, 2], "datatype": "FP64", "data": [1 / 3, 2.5]}]})
    assert out["y"].dtype == np.float64
    entry, raw = encode_input("y", x, True, "here")
    assert entry == {"name": "y", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}
    out = _decode({"outputs": [entry]}, raw, binary=True)
    assert out["y"].dtype == np.float32 and out["y"].tobytes() == x.tobytes()


@pytest.mark.parametrize(
    ("doc", "tail", "words"),
    [
        ({"outputs": [{"name": "y", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}, b"",
         "output 'y': 3 values for shape [2, 2] (4)"),
        ({"outputs": [{"name": "y", "shape": [1], "datatype": "FLOAT", "data": [1]}]}, b"",
         "datatype 'FLOAT' is not an Open Inference Protocol one"),
        ({"outputs": [{"name": "y", "shape": [1], "datatype": "FP32", "data": ["1"]}]}, b"", "expected numbers"),
        ({"outputs": [{"name": "z", "shape": [1], "datatype": "FP32", "data": [1]},
                      {"name": "w", "shape": [1], "datatype": "FP32", "data": [1]}]}, b"",
         "the answer lacks output(s) ['y']"),
        ({"outputs": [{"name": "y", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]},
         b"\0" * 4, "the binary data ends before the outputs it declares"),
        ({"outputs": [{"name": "y", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]},
         b"\0" * 8, "output 'y': 8 bytes of binary data for 1 float32 values"),
        ({"error": "model not found"}, b"", "the answer has no 'outputs' list (error 'model not found')"),
    ],
)  # fmt: skip
def test_a_malformed_v2_answer_is_one_line_naming_what_is_wrong(doc, tail, words):
    with pytest.raises(EndpointError) as err:
        _decode(doc, tail, binary=bool(tail), outputs=("y", "w") if "lacks" in words else ("y",))
    assert words in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("http://127.0.0.1:1/v2/models/m/infer: ")
