"""envprint fleet on a real two-node Ray cluster on this machine.

One module-scoped cluster: a head node started with TF_ENABLE_ONEDNN_OPTS=0 and a worker node
with TF_ENABLE_ONEDNN_OPTS=1, each `ray start --block` in its own session with 1 CPU and a small
object store, stopped (its whole process group) at the end. On this CPU (AVX2, TensorFlow 2.21)
oneDNN is on by default and changes the bits of a depthwise-convolution model: the nodes must
fall into two classes, the odd one named by the oneDNN variant recorded at save (save --variants)
and blamed on oneDNN. The last test kills the worker node while
it verifies: it must be reported unreachable, never a mismatch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from envhelpers import invoke
from fleet_models import depthwise, saved, tiny

from envprint.models import FleetReport

TESTS = Path(__file__).resolve().parent
START_TIMEOUT_S = 90


@dataclass
class Cluster:
    address: str
    head: subprocess.Popen
    worker: subprocess.Popen
    stall_marker: Path
    logs: Path

    def labels(self) -> tuple[str, str]:
        """(head node's host label, worker node's host label) as fleet names them."""
        import ray

        ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
        try:
            nodes = [n for n in ray.nodes() if n["Alive"]]
        finally:
            ray.shutdown()
        head = [n for n in nodes if "node:__internal_head__" in n["Resources"]]
        other = [n for n in nodes if n not in head]
        return tuple(f"{n['NodeManagerAddress']}/{n['NodeID'][:12]}" for n in (head[0], other[0]))  # type: ignore[return-value]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop one node: its whole process group (raylet, GCS, workers), which this module started."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _alive_nodes(address: str) -> int:
    import ray

    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    try:
        return sum(1 for n in ray.nodes() if n["Alive"])
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'envprint[ray]')")
    ray_cli = Path(sys.executable).with_name("ray")
    # Ray's socket paths must stay short (AF_UNIX limit): a short temp dir of its own.
    temp = Path(tempfile.mkdtemp(prefix="epray-", dir="/tmp"))
    logs = tmp_path_factory.mktemp("ray_logs")
    port = _free_port()
    marker = tmp_path_factory.mktemp("stall") / "stalling"
    saved_env = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE",)}
    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throwaway local cluster: no token written to ~/.ray
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        # Decide a killed node is dead within seconds, not Ray's default tens of seconds.
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_timeout_ms": "500",
        "RAY_health_check_failure_threshold": "3",
    }
    common = ["--block", "--num-cpus", "1", "--object-store-memory", str(80 * 10**6), "--disable-usage-stats"]
    head_log = open(logs / "head.log", "w")  # noqa: SIM115 (closed at teardown)
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--port", str(port), "--temp-dir", str(temp), "--include-dashboard", "false",
         *common],
        env={**env, "TF_ENABLE_ONEDNN_OPTS": "0"}, stdout=head_log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    worker = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None and time.monotonic() < deadline, (logs / "head.log").read_text()
            time.sleep(0.5)
        worker_log = open(logs / "worker.log", "w")  # noqa: SIM115
        worker = subprocess.Popen(
            [str(ray_cli), "start", "--address", f"127.0.0.1:{port}", *common],
            env={**env, "TF_ENABLE_ONEDNN_OPTS": "1", "ENVPRINT_TEST_STALL": "300",
                 "ENVPRINT_TEST_STALL_MARKER": str(marker)},
            stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        while _alive_nodes(f"127.0.0.1:{port}") < 2:
            assert worker.poll() is None and time.monotonic() < deadline, (logs / "worker.log").read_text()
            time.sleep(1)
        yield Cluster(f"127.0.0.1:{port}", head, worker, marker, logs)
    finally:
        for proc in (worker, head):
            if proc is not None:
                _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _save_on_head(address: str, model: Path) -> None:
    """Record the model on the head node (oneDNN off), as its training host would have, with its
    oneDNN variant (save --variants: one child with oneDNN on), which the worker node reproduces."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    def save(path: str) -> str:
        import envprint

        return str(envprint.save(path, variants=["onednn"]).sidecar)

    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    try:
        head = next(n for n in ray.nodes() if n["Alive"] and "node:__internal_head__" in n["Resources"])
        pinned = NodeAffinitySchedulingStrategy(node_id=head["NodeID"], soft=False)
        ray.get(ray.remote(save).options(num_cpus=1, scheduling_strategy=pinned).remote(str(model)), timeout=180)
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def dw_model(keras, cluster, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fleet") / "dw.keras"
    depthwise(keras).save(path)
    _save_on_head(cluster.address, path)
    return path


def test_fleet_finds_two_classes_and_blames_onednn_for_the_odd_one(cluster, dw_model):
    head, worker = cluster.labels()
    r = invoke("fleet", dw_model, "--ray", cluster.address, "--json", "--timeout", "300")
    assert r.exit_code == 0, r.output
    report = FleetReport.model_validate(json.loads(r.stdout))
    assert [(c.name, c.hosts, c.verdict) for c in report.classes] == [
        ("A", [head], "identical"),
        ("B", [worker], "within_tolerance"),
    ]
    odd = report.classes[1]
    # Named by the variant recorded at save that it is bit-identical to: certain, oneDNN next.
    assert (odd.variant.status, odd.variant.variant) == ("matched", "onednn_on")
    assert report.classes[0].variant.status == "reference"
    assert [(x.cause, x.score) for x in odd.explanations[:1]] == [("recorded_variant", 1.0)]
    assert odd.explanations[1].cause == "onednn"
    assert {e.path: (e.a, e.b) for e in odd.environment}["tensorflow.onednn.enabled"] == (False, True)
    assert report.classes[0].environment == []  # the head is the host the record was made on
    assert report.classes[0].outputs_digest != odd.outputs_digest
    (between,) = report.between
    assert (between.host_a, between.host_b) == (head, worker)
    # The variable only asks for oneDNN: the effective state is the one numerics difference.
    assert {e.path: (e.a, e.b) for e in between.entries} == {"tensorflow.onednn.enabled": (False, True)}
    assert report.by_status == {"identical": 1, "within_tolerance": 1, "mismatch": 0, "error": 0, "unreachable": 0}


def test_fleet_ships_the_model_through_the_object_store_and_reads_the_same(cluster, dw_model):
    r = invoke("fleet", dw_model, "--ray", cluster.address, "--ship", "--timeout", "300")
    assert r.exit_code == 0, r.output
    assert f"envprint fleet: {dw_model}\n" in r.output
    assert (
        "2 hosts: 1 identical, 1 within tolerance, 0 mismatch, 0 could not verify, 0 unreachable; 2 equivalence classes"
        in r.output
    )
    assert "~ tensorflow.onednn.enabled: no -> yes  [onednn]" in r.output
    assert (
        "  variant: identical to the variant recorded with oneDNN on (class B of the 2 variants recorded at save)\n"
        in r.output
    )
    assert "1. recorded_variant (score 1.00)" in r.output and "2. onednn (score " in r.output


def test_the_library_fleet_tells_on_item_each_node_as_its_result_arrives(cluster, dw_model):
    from envprint.many.fleet import fleet
    from envprint.many.ray_engine import RayOptions

    seen = []
    report = fleet(dw_model, ray=RayOptions(cluster.address), timeout=300,
                   on_item=lambda host, rep, done, total: seen.append((host.host, rep.verdict, done, total)))  # fmt: skip
    assert sorted(host for host, *_ in seen) == sorted(cluster.labels())
    assert [(done, total) for *_, done, total in seen] == [(1, 2), (2, 2)]
    assert sorted(verdict for _, verdict, *_ in seen) == ["identical", "within_tolerance"]
    assert report.by_status["identical"] == report.by_status["within_tolerance"] == 1


def test_fleet_refuses_to_ship_past_the_limit(tmp_path, dw_model):
    r = invoke("fleet", dw_model, "--ray", "127.0.0.1:1", "--ship", "--ship-limit", "0")
    assert r.exit_code == 2, r.output
    assert (
        "over the ship limit of 0 MiB for Ray's object store; put the model on a path every node can read" in r.output
    )


def test_fleet_reads_relative_model_and_fingerprint_paths_from_where_it_was_run(cluster, dw_model, monkeypatch):
    """Ray runs each node's task in a directory of its own: relative paths are the caller's, not the worker's."""
    from envprint.record.sidecar import default_sidecar

    monkeypatch.chdir(dw_model.parent)
    record = default_sidecar(Path(dw_model.name))
    r = invoke(
        *["fleet", dw_model.name, "--fingerprint", str(record), "--ray", cluster.address, "--json", "--timeout", "300"],
    )
    assert r.exit_code == 0, r.output
    report = FleetReport.model_validate(json.loads(r.stdout))
    assert report.model == dw_model.name
    assert report.by_status == {"identical": 1, "within_tolerance": 1, "mismatch": 0, "error": 0, "unreachable": 0}


def test_fleet_ships_a_model_given_by_a_relative_path(cluster, dw_model, monkeypatch):
    monkeypatch.chdir(dw_model.parent)
    r = invoke(*["fleet", dw_model.name, "--ray", cluster.address, "--ship", "--timeout", "300"])
    assert r.exit_code == 0, r.output
    assert f"envprint fleet: {dw_model.name}\n" in r.output
    assert "2 hosts: 1 identical, 1 within tolerance, 0 mismatch, 0 could not verify, 0 unreachable" in r.output


@pytest.mark.parametrize(
    "ray_says",
    [  # Ray 2.x's words (ray/_private/services.py) when 'auto' finds no cluster, or several
        "Could not find any running Ray instance. Please specify the one to connect to by setting `--address` flag "
        "or `RAY_ADDRESS` environment variable.",
        "Could not find any running Ray instance. Please specify the one to connect to by setting the `--address` "
        "flag or `RAY_ADDRESS` environment variable.",
    ],
)
def test_the_ray_auto_error_gives_envprints_own_flag_not_rays(ray_says):
    from envprint.many.ray_engine import ray_reason

    assert ray_reason(ConnectionError(ray_says)) == "Could not find any running Ray instance."
    assert ray_reason(ConnectionError("")) == "ConnectionError"


def test_fleet_ray_local_is_documented_and_verifies_on_this_host_alone(mlp, tmp_path):
    r = invoke(*["fleet", "--help"], env={"COLUMNS": "200"})
    assert "'local' (a cluster of this host alone, started in this process, to try a setup)" in " ".join(
        r.output.replace("│", " ").split()
    )
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    assert invoke(*["save", str(model)]).exit_code == 0
    r = invoke(*["fleet", str(model), "--ray", "local", "--json", "--timeout", "300"])
    assert r.exit_code == 0, r.output
    report = FleetReport.model_validate(json.loads(r.stdout))
    assert [(c.name, len(c.hosts), c.verdict) for c in report.classes] == [("A", 1, "identical")]
    assert report.by_status == {"identical": 1, "within_tolerance": 0, "mismatch": 0, "error": 0, "unreachable": 0}


def test_a_node_that_dies_mid_run_is_unreachable_not_a_mismatch(keras, cluster, tmp_path):
    """Kills the worker node: keep this test last in the module."""
    import fleet_layers

    from envprint.check.options import VerifyOptions
    from envprint.many.fleet import fleet
    from envprint.many.ray_engine import RayOptions

    model = saved(tiny(keras, 9, fleet_layers.Stall()), tmp_path / "stall.keras")
    head, worker = cluster.labels()
    result: list[FleetReport] = []
    run = threading.Thread(
        target=lambda: result.append(
            fleet(model, ray=RayOptions(cluster.address), options=VerifyOptions(custom_objects=("fleet_layers:Stall",)),
                  timeout=300, node_death_grace=60)
        )
    )  # fmt: skip
    run.start()
    deadline = time.monotonic() + 180
    while not cluster.stall_marker.exists():  # the worker node is inside the model's (300 s) stall
        assert run.is_alive() and time.monotonic() < deadline, "the worker node never started verifying"
        time.sleep(0.2)
    _stop(cluster.worker)
    run.join(timeout=240)
    (report,) = result
    hosts = {h.host: h for h in report.hosts}
    assert (hosts[head].status, hosts[head].verdict) == ("verified", "identical")
    assert (hosts[worker].status, hosts[worker].exit_code) == ("unreachable", 4)
    assert hosts[worker].error.startswith("the node died while verifying")
    assert report.by_status == {"identical": 1, "within_tolerance": 0, "mismatch": 0, "error": 0, "unreachable": 1}
    assert [c.hosts for c in report.classes] == [[head]]
    assert report.exit_code == 4
