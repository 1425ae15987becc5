"""The KServe V2 and MLflow decoders against arbitrary answers: arrays, or one EndpointError line; nothing else.

A server's answer is input: hypothesis sends each decoder JSON of any shape, Open Inference
Protocol answers that are nearly right (wrong counts, datatypes, shapes, binary sizes, header
lengths, trailing bytes), and MLflow ``predictions`` of any shape. Whatever comes back must be
arrays of the size the answer declares, or an EndpointError of one line that starts with the
endpoint's URL: never a traceback (TypeError, KeyError, ValueError...) and never a guess.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envprint.check.endpoint.base import ServedModel, ServedTensor, Target, TransportOptions
from envprint.check.endpoint.kserve_v2 import V2_DTYPES, KServeV2
from envprint.check.endpoint.mlflow_scoring import MLflowScoring
from envprint.check.endpoint.transport import Response
from envprint.errors import EndpointError

V2_URL = "http://127.0.0.1:1/v2/models/m/infer"
MLFLOW_URL = "http://127.0.0.1:1/invocations"
FUZZ = settings(derandomize=True, max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=5))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=20,
)
datatypes = st.sampled_from([*V2_DTYPES, "FLOAT", "", None])
shapes = st.one_of(st.lists(st.integers(-2, 4), max_size=3), json_values)
entries = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["y", "z"]), json_values), "shape": shapes, "datatype": datatypes},
    optional={
        "data": st.one_of(st.lists(st.one_of(st.floats(), st.integers(-300, 300), st.text(max_size=3))), json_values),
        "parameters": st.one_of(st.fixed_dictionaries({"binary_data_size": st.integers(-1, 40)}), json_values),
    },
)


@st.composite
def right_entries(draw) -> dict:
    """An output as a faithful server answers it, JSON data of the declared count."""
    shape = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    count = int(np.prod(shape))
    datatype = draw(st.sampled_from(["FP32", "FP64", "INT32", "INT64", "BOOL", "BYTES"]))
    item = {"BOOL": st.booleans(), "BYTES": st.text(max_size=3)}.get(datatype, st.integers(-100, 100))
    data = draw(st.lists(item, min_size=count, max_size=count))
    return {"name": draw(st.sampled_from(["y", "z"])), "shape": shape, "datatype": datatype, "data": data}


answers = st.one_of(
    json_values,
    st.fixed_dictionaries({"outputs": st.lists(entries, max_size=3)}),
    st.fixed_dictionaries({"outputs": st.lists(right_entries(), min_size=1, max_size=2)}),
)
served = st.sampled_from([(), ("y",), ("y", "z")])


def _outcome(call, url: str) -> dict:
    try:
        return call()
    except EndpointError as err:
        words = str(err)
        assert "\n" not in words and words.startswith(f"{url}: "), words
        return {}


@FUZZ
@given(doc=answers, tail=st.binary(max_size=48), header=st.one_of(st.none(), st.integers(-5, 400)), outs=served)
def test_any_v2_answer_decodes_to_declared_arrays_or_one_line(doc, tail, header, outs):
    proto = KServeV2(V2_URL, TransportOptions(), Target("m"))
    head = json.dumps(doc).encode()
    headers = {} if header is None else {"inference-header-content-length": str(min(header, len(head)))}
    body = head + tail if header is not None else head
    model = ServedModel("m", None, "", (), tuple(ServedTensor(n, "float32") for n in outs))
    out = _outcome(lambda: proto.decode(Response(200, headers, body, 0.0), model), V2_URL)
    declared = {e["name"]: e for e in doc["outputs"]} if out else {}
    for name, arr in out.items():
        assert isinstance(arr, np.ndarray) and list(arr.shape) == declared[name]["shape"]
        assert arr.dtype == np.dtype(V2_DTYPES[declared[name]["datatype"]])


@FUZZ
@given(value=json_values, outs=served)
def test_any_mlflow_predictions_decode_to_arrays_or_one_line(value, outs):
    proto = MLflowScoring(MLFLOW_URL, TransportOptions(), Target())
    model = ServedModel("", None, "", (), tuple(ServedTensor(n, "float32") for n in outs))
    out = _outcome(lambda: proto.decode(value, model), MLFLOW_URL)
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in out.values())


@pytest.mark.parametrize("header", ["x", "-1", "99999"])
def test_a_header_length_that_does_not_fit_the_answer_is_one_line(header):
    proto = KServeV2(V2_URL, TransportOptions(), Target("m"))
    with pytest.raises(EndpointError, match="inference-header-content-length .* does not fit a 2-byte answer"):
        proto.decode(Response(200, {"inference-header-content-length": header}, b"{}", 0.0), ServedModel("m"))
