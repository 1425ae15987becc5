"""Session fixtures of the KServe and MLflow endpoint tests: real servers over two versions of one model.

Version 1 (its record beside ``v1.keras``) and version 2 (the same architecture, other weights) are
served by MLflow's scoring server (``mlflow models serve --env-manager local``, one process per
model: it serves one) and by KServe's ModelServer (tests/servers/kserve_server.py in
``.venv-kserve``, which scripts/kserve_env.sh makes: kserve's protobuf and pandas pins differ from
the main venv's), which also serves ``misfit``: a model taking another input than the record's.
Each server starts once per session on a free port, all of them at once (their start-up is
mostly imports), is waited for with a deadline, and is stopped with its children (``mlflow
models serve`` runs uvicorn in a child process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from servers import free_port

ROOT = Path(__file__).resolve().parent.parent
KSERVE_SERVER = Path(__file__).resolve().parent / "servers" / "kserve_server.py"
STARTUP_S = 240.0  # a loaded 2-core CI machine: TensorFlow and MLflow imports dominate


@dataclass
class Models:
    v1: Path  # .keras, its record in v1.keras.envprint/
    v2: Path  # the same architecture, other weights
    misfit: Path  # another input: "pixels" (None, 5)
    mlflow_v1: Path  # MLflow model directories (the keras flavour) of v1 and v2
    mlflow_v2: Path


def _mlp(keras: Any, seed: int, name: str = "features", width: int = 4) -> Any:
    init = keras.initializers
    inp = keras.Input((width,), name=name)
    x = keras.layers.Dense(8, activation="relu", name="hidden", kernel_initializer=init.GlorotUniform(seed=seed),
                           bias_initializer=init.RandomNormal(seed=seed + 1))(inp)  # fmt: skip
    out = keras.layers.Dense(3, name="logits", kernel_initializer=init.GlorotUniform(seed=seed + 2))(x)
    return keras.Model(inp, out, name="mlp")


@pytest.fixture(scope="session")
def real_models(tf, keras, flavor, tmp_path_factory) -> Models:
    if flavor != "keras3":
        pytest.skip("the served models are Keras 3 .keras files (KServe's venv runs Keras 3)")
    import mlflow

    import envprint

    root = tmp_path_factory.mktemp("served")
    models = {}
    for tag, model in (("v1", _mlp(keras, 1)), ("v2", _mlp(keras, 7)), ("misfit", _mlp(keras, 1, "pixels", 5))):
        models[tag] = root / f"{tag}.keras"
        model.save(models[tag])
        if tag != "misfit":
            mlflow.keras.save_model(model, str(root / f"mlflow-{tag}"))
    envprint.save(models["v1"], num_probes=24)
    return Models(models["v1"], models["v2"], models["misfit"], root / "mlflow-v1", root / "mlflow-v2")


class Server:
    """A server process in its own process group: started, waited for, stopped with its children."""

    def __init__(self, cmd: list[str], ready_path: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_url, self.log = self.url + ready_path, log
        cmd = [c.replace("{port}", str(self.port)) for c in cmd]
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **(env or {})})  # fmt: skip

    def wait(self, deadline: float) -> Server:
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.ready_url}: the server exited ({self.proc.returncode}): {self.tail()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as r:  # noqa: S310 - a local test server
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.ready_url} did not answer within {STARTUP_S:g} s: {self.tail()}")
            time.sleep(0.25)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-1500:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group: mlflow's uvicorn child too
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()


@pytest.fixture(scope="session")
def doc_lines() -> Any:
    """``doc_lines(section)``: the ``envprint verify`` lines of a section of the KServe and MLflow docs page."""
    return _doc_lines


def _doc_lines(section: str) -> list[list[str]]:
    import re
    import shlex

    text = (ROOT / "docs" / "how-to" / "endpoints-kserve-mlflow.md").read_text()
    text = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    return [shlex.split(line)[1:] for b in blocks for line in b.splitlines() if line.startswith("envprint verify")]


def kserve_python() -> tuple[str | None, str]:
    """(the python of .venv-kserve, "") or (None, why not): $ENVPRINT_KSERVE_PYTHON, else scripts/kserve_env.sh."""
    if os.environ.get("ENVPRINT_SKIP_KSERVE") == "1":
        return None, "ENVPRINT_SKIP_KSERVE=1: the KServe server's virtualenv is not made"
    given = os.environ.get("ENVPRINT_KSERVE_PYTHON")
    if given:
        return given, ""
    made = subprocess.run(["bash", str(ROOT / "scripts" / "kserve_env.sh")], capture_output=True, text=True)
    if made.returncode != 0:  # no network to install kserve: the only reason these tests may skip
        return None, f"the KServe virtualenv (.venv-kserve) could not be made: {made.stderr.strip()[-300:]}"
    return made.stdout.strip().splitlines()[-1], ""


@pytest.fixture(scope="session")
def real_servers(real_models, tmp_path_factory) -> Any:
    """{"mlflow_v1", "mlflow_v2", "kserve"}: each server's base URL (or, for kserve, why it could not start)."""
    logs = tmp_path_factory.mktemp("server-logs")
    m = real_models
    quiet = {"MLFLOW_DISABLE_TELEMETRY": "true", "TF_CPP_MIN_LOG_LEVEL": "2"}
    mlflow_cmd = [sys.executable, "-m", "mlflow", "models", "serve", "--env-manager", "local", "-p", "{port}", "-m"]
    servers: dict[str, Server] = {}
    try:
        for tag, path in (("mlflow_v1", m.mlflow_v1), ("mlflow_v2", m.mlflow_v2)):
            servers[tag] = Server([*mlflow_cmd, str(path)], "/ping", logs / f"{tag}.log", quiet)
        python, why = kserve_python()
        if python:
            kserve_cmd = [python, str(KSERVE_SERVER), "--port", "{port}",
                          "--model", f"mlp={m.v1}:1", "--model", f"other={m.v2}:2", "--model", f"misfit={m.misfit}:1"]  # fmt: skip
            servers["kserve"] = Server(kserve_cmd, "/v2/health/ready", logs / "kserve.log", quiet)
        deadline = time.monotonic() + STARTUP_S
        yield {tag: s.wait(deadline).url for tag, s in servers.items()} | ({} if python else {"kserve_missing": why})
    finally:
        for s in servers.values():
            s.stop()


@pytest.fixture(scope="session")
def kserve(real_servers) -> str:
    """The KServe server's base URL (models "mlp", "other" and "misfit")."""
    if "kserve" not in real_servers:
        pytest.skip(real_servers["kserve_missing"])
    return real_servers["kserve"]
