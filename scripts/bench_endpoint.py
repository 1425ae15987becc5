"""bench.py's endpoint case: envprint verify --endpoint against the bare requests that carry the same probes.

Both sides run in this process, interleaved, against the TF Serving stand-in (tests/servers/
tfserving_standin.py, a separate process with its own TensorFlow): the baseline sends the record's
probes in the same batches with the same client (envprint's http.client transport), encodes them
as the same JSON and parses the answers; envprint.verify_endpoint does that and everything else
(the record read and checked, status, metadata, the comparison, the evidence, the explanations).
Target: verify <= 1.2x the bare requests (medians of the per-pair ratios).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILD = r"""
import sys, keras, envprint
path = sys.argv[1]
inp = keras.Input((64,), name="features")
x = keras.layers.Dense(512, activation="relu")(inp)
x = keras.layers.Dense(512, activation="relu")(x)
out = keras.layers.Dense(100, name="scores")(x)
keras.Model(inp, out).export(path, verbose=False)
envprint.save(path, num_probes=256)
"""
BATCH = 32


def case_endpoint(ctx: Any) -> list[dict]:
    sys.path.insert(0, str(ROOT / "tests"))
    from bench import interleave, target  # type: ignore[import-not-found]
    from servers import PYTHON, free_port, serve

    import envprint
    from envprint.check.endpoint.base import TransportOptions
    from envprint.check.endpoint.transport import Transport
    from envprint.record.npz import load_arrays

    model = ctx.workdir / "endpoint" / "scorer" / "1"
    if not model.exists():
        subprocess.run([PYTHON, "-c", BUILD, str(model)], check=True, capture_output=True)
    record = model / "assets.extra" / "envprint" / "fingerprint.json"
    saved = envprint.read_fingerprint(record)
    probes = load_arrays(
        record.parent / saved.probe_arrays.file, (record.parent / saved.probe_arrays.file).read_bytes()
    )
    rest, grpc = free_port(), free_port()
    cmd = [PYTHON, str(ROOT / "tests/servers/tfserving_standin.py"), "--name", "scorer", "--model", str(model),
           "--rest-port", str(rest), "--grpc-port", str(grpc)]  # fmt: skip
    url = f"http://127.0.0.1:{rest}/v1/models/scorer"
    with serve(cmd, url, timeout=300):
        transport = Transport(f"http://127.0.0.1:{rest}", TransportOptions())
        n = len(next(iter(probes.values())))
        rows = []
        for batch in (n, BATCH):  # the default (every probe in one request, as save ran them), then batches
            bare, verify = _pair(transport, url, record, probes, batch)
            rows.append((batch, interleave(bare, verify, ctx.runs.get("endpoint", 5), warmup=2)))
    return [
        {
            "case": f"verify --endpoint (TF Serving REST stand-in, {n} probes in batches of {batch})",
            "baseline": "the bare requests: same client, same batches, answers parsed",
            **row,
            "targets": [target("ratio_median", 1.2, "verify --endpoint <= 1.2x the bare requests")],
        }
        for batch, row in rows
    ]


def _pair(transport: Any, url: str, record: Path, probes: dict, batch: int) -> tuple[Any, Any]:
    import envprint

    n = len(next(iter(probes.values())))

    def bare() -> dict:
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            body = {"signature_name": "serving_default",
                    "inputs": {k: v[start : start + batch].tolist() for k, v in probes.items()}}  # fmt: skip
            json.loads(transport.request("POST", url + ":predict", json.dumps(body).encode()).body)
        return {"s": time.perf_counter() - t0}

    def verify() -> dict:
        t0 = time.perf_counter()
        report = envprint.verify_endpoint(url, fingerprint=record, batch_size=batch)
        assert report.passed, report.to_text()  # batches smaller than save's one of 256: ULP drift, within tolerance
        return {"s": time.perf_counter() - t0}

    return bare, verify
