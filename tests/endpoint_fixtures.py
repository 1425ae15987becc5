"""Session fixtures of the endpoint tests: a SavedModel and its record, another version, the TF Serving stand-in.

The stand-in (tests/servers/tfserving_standin.py) is a separate process with its own TensorFlow,
started once per session: the real tensorflow_model_server binary cannot be installed here.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from servers import PYTHON, SERVED_NAME, free_port, serve

STANDIN = Path(__file__).resolve().parent / "servers" / "tfserving_standin.py"
NAME = SERVED_NAME


@dataclass
class Standin:
    rest: str  # http://127.0.0.1:PORT
    grpc: str  # grpc://127.0.0.1:PORT
    model: Path  # the SavedModel served as version 1, its record inside
    record: Path  # its fingerprint.json

    def faults(self, mode: str) -> None:
        req = urllib.request.Request(f"{self.rest}/_faults", json.dumps({"mode": mode}).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - the local stand-in
            assert json.load(r) == {"mode": mode}

    def metadata(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.rest}/v1/models/{NAME}/metadata", timeout=10) as r:  # noqa: S310
            return json.load(r)


def _scorer(keras: Any, seed: int) -> Any:
    inp = keras.Input((6,), name="features")
    x = keras.layers.Dense(16, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                           bias_initializer=keras.initializers.RandomNormal(seed=seed + 1))(inp)  # fmt: skip
    out = keras.layers.Dense(10, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2), name="scores")(x)
    return keras.Model(inp, out, name="scorer")


@pytest.fixture(scope="session")
def served_models(tf, keras, tmp_path_factory) -> tuple[Path, Path]:
    """(version 1 with its record, version 2: the same architecture with other weights), TF Serving's layout."""
    import envprint

    base = tmp_path_factory.mktemp("serving") / NAME
    v1, v2 = base / "1", tmp_path_factory.mktemp("other") / "2"
    _scorer(keras, 1).export(str(v1), verbose=False)
    _scorer(keras, 7).export(str(v2), verbose=False)
    envprint.save(v1, num_probes=32)
    return v1, v2


@pytest.fixture(scope="session")
def standin(served_models, tmp_path_factory) -> Any:
    v1, v2 = served_models
    rest, grpc = free_port(), free_port()
    log = tmp_path_factory.mktemp("standin") / "standin.log"
    cmd = [PYTHON, str(STANDIN), "--name", NAME, "--model", str(v1), "--other", str(v2),
           "--rest-port", str(rest), "--grpc-port", str(grpc)]  # fmt: skip
    with serve(cmd, f"http://127.0.0.1:{rest}/v1/models/{NAME}", timeout=180, log=log):
        yield Standin(f"http://127.0.0.1:{rest}", f"grpc://127.0.0.1:{grpc}", v1,
                      v1 / "assets.extra" / "envprint" / "fingerprint.json")  # fmt: skip


@pytest.fixture
def fault(standin) -> Any:
    """Switch a fault mode on for one test; switched off after it whatever happens."""
    yield standin.faults
    standin.faults("none")
