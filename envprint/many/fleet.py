"""`envprint fleet`: verify one model on every alive node of a Ray cluster and group the nodes.

Owns: one task pinned to each alive node (NodeAffinitySchedulingStrategy, not soft), the model
reaching the node by a path it can read or shipped through Ray's object store (``ship=True``,
within ``ship_limit`` bytes), and telling a node that died or never ran its task (unreachable)
from one whose verification failed. The per-node work is ``worker.verify_task``; the grouping
into equivalence classes is ``aggregate.group``. Ray is imported only inside ``fleet()``.
"""

from __future__ import annotations

import dataclasses
import io
import os
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envprint.check.options import VerifyOptions
from envprint.errors import ExitCode, UsageError
from envprint.many.aggregate import group, host_result
from envprint.many.ray_engine import RayOptions, import_ray, init_ray
from envprint.many.worker import clear_state, verify_task, warm
from envprint.models import FleetReport, HostResult, Report

# on_item(host, report or None, done, total): one node's result, as it arrives
OnHost = Callable[[HostResult, "Report | None", int, int], None]

# Ray's object store holds the shipped model once per cluster; past this a shared volume is the
# better road (the limit is stated in --help and the README, and can be raised).
SHIP_LIMIT = 256 << 20
# After a task's worker died, how long to wait for Ray to mark its node dead before calling it
# a crash of the worker on a live node (Ray's health check takes a few seconds to decide).
NODE_DEATH_GRACE_S = 30.0


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def pack(model: Path, record: Path, limit: int = SHIP_LIMIT) -> bytes:
    """The model and its record as one tar (model/<name>, record/...), refused past ``limit`` bytes."""
    inside = record.resolve().is_relative_to(model.resolve()) if model.is_dir() else False
    size = _tree_size(model) + (0 if inside else _tree_size(record))
    if size > limit:
        raise UsageError(
            f"{model}: {size / 2**20:.1f} MiB with its record, over the ship limit of {limit / 2**20:.0f} MiB "
            "for Ray's object store; put the model on a path every node can read and drop --ship, or raise --ship-limit"
        )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(model), arcname=f"model/{model.name}")
        if not inside:
            tar.add(str(record), arcname="record")
    return buf.getvalue()


def _unpack(payload: bytes, into: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # Python < 3.11.4: our own archive, members checked by hand
            for m in tar.getmembers():
                if m.name.startswith(("/", "..")) or ".." in Path(m.name).parts or m.issym() or m.islnk():
                    raise UsageError(f"shipped archive holds an unsafe member {m.name!r}")
            tar.extractall(into)


def node_task(task: dict[str, Any], payload: bytes | None) -> dict[str, Any]:
    """One node's verification (runs there): the model from its path, or unpacked from the payload."""
    import shutil
    import socket

    warm()
    tmp = None
    try:
        if payload is not None:
            tmp = Path(tempfile.mkdtemp(prefix="envprint-fleet-"))
            _unpack(payload, tmp)
            name = Path(task["model"]).name
            task = {**task, "model": str(tmp / "model" / name)}
            if (tmp / "record").exists():
                task["fingerprint"] = str(tmp / "record" / "fingerprint.json")
        result = verify_task(task)
    finally:
        clear_state()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return {**result, "hostname": socket.gethostname(), "pid": os.getpid()}


def _node_label(node: dict[str, Any]) -> str:
    return f"{node.get('NodeManagerAddress', '?')}/{node['NodeID'][:12]}"


def _alive(ray: Any, node_id: str) -> bool:
    return any(n["NodeID"] == node_id and n["Alive"] for n in ray.nodes())


def _dead_within(ray: Any, node_id: str, grace: float) -> bool:
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(ray, node_id):
            return True
        time.sleep(0.5)
    return not _alive(ray, node_id)


def fleet(
    model: str | Path,
    *,
    ray: RayOptions,
    options: VerifyOptions | None = None,
    ship: bool = False,
    ship_limit: int = SHIP_LIMIT,
    timeout: float = 900.0,
    node_death_grace: float = NODE_DEATH_GRACE_S,
    on_item: OnHost | None = None,
) -> FleetReport:
    """Verify ``model`` on every alive node of the cluster at ``ray.address``; group the nodes.

    A node whose task never finished (it died, or nothing ran within ``timeout`` seconds) is
    'unreachable'; one whose verification failed is 'error' with verify's exit code.
    ``on_item(host, report, done, total)`` is called as each node's result arrives.
    """
    from envprint.record import sidecar

    options = options or VerifyOptions()
    model = Path(model)
    # A node's worker runs in a directory of Ray's, not the caller's: relative paths are made
    # absolute here, against the directory fleet was run from (the report keeps the user's spelling).
    on_node = options
    if options.fingerprint is not None:
        on_node = dataclasses.replace(options, fingerprint=os.path.abspath(options.fingerprint))
    task: dict[str, Any] = {"model": os.path.abspath(model), "options": on_node}
    payload = None
    if ship:
        if not model.exists():
            raise UsageError(f"{model}: no such file or directory to ship")
        record = sidecar.locate_fingerprint(model, options.fingerprint).parent
        payload = pack(model, record, ship_limit)
    rt = import_ray()
    init_ray(rt, ray)
    try:
        return _run(rt, model, task, payload, ray, timeout, node_death_grace, options, on_item)
    finally:
        rt.shutdown()


def _run(
    rt: Any,
    model: Path,
    task: dict[str, Any],
    payload: bytes | None,
    ray: RayOptions,
    timeout: float,
    grace: float,
    options: VerifyOptions,
    on_item: OnHost | None = None,
) -> FleetReport:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in rt.nodes() if n.get("Alive")]
    payload_ref = rt.put(payload) if payload is not None else None
    hosts: list[tuple[HostResult, Report | None]] = []
    refs: dict[Any, dict[str, Any]] = {}
    for node in nodes:
        label, node_id = _node_label(node), node["NodeID"]
        cpus = node.get("Resources", {}).get("CPU", 0.0)
        if cpus < ray.num_cpus:
            hosts.append(
                (
                    host_result(
                        label,
                        node_id=node_id,
                        unreachable=True,
                        error=f"the node has {cpus:g} CPUs and each task asks for {ray.num_cpus:g}; lower --task-cpus",
                    ),
                    None,
                )
            )
            continue
        remote = rt.remote(node_task).options(
            num_cpus=ray.num_cpus,
            memory=ray.memory,
            resources=ray.resources or None,
            max_retries=0,  # a task pinned to a node that died cannot run anywhere else
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
        )
        refs[remote.remote(task, payload_ref)] = node
    arrived, late = _collect(rt, refs, timeout, lambda ref: _result(rt, ref, refs[ref], grace, model, options), on_item)
    for ref in late:
        node = refs[ref]
        rt.cancel(ref, force=True)
        hosts.append(
            (
                host_result(
                    _node_label(node), node_id=node["NodeID"], unreachable=True, error=f"no result within {timeout:g} s"
                ),
                None,
            )
        )
    hosts += [arrived[ref] for ref in refs if ref in arrived]  # in the order of the nodes, as before
    return group(str(model), hosts, fingerprint=None)


def _collect(
    rt: Any,
    refs: dict[Any, dict[str, Any]],
    timeout: float,
    result: Callable[[Any], tuple[HostResult, Report | None]],
    on_item: OnHost | None,
) -> tuple[dict[Any, tuple[HostResult, Report | None]], list[Any]]:
    """Each node's result as it arrives (``on_item`` told at once), until all arrived or ``timeout`` passed;
    the refs still running then are late."""
    arrived: dict[Any, tuple[HostResult, Report | None]] = {}
    pending = list(refs)
    deadline = time.monotonic() + timeout
    while pending:
        ready, pending = rt.wait(pending, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        started = time.monotonic()
        arrived[ready[0]] = result(ready[0])
        deadline += time.monotonic() - started  # judging a node (grace for a dead one) is not the others' time
        if on_item is not None:
            on_item(*arrived[ready[0]], len(arrived), len(refs))
    return arrived, pending


def _result(
    rt: Any, ref: Any, node: dict[str, Any], grace: float, model: Path, options: VerifyOptions
) -> tuple[HostResult, Report | None]:
    label, node_id = _node_label(node), node["NodeID"]
    try:
        result = rt.get(ref)
    except rt.exceptions.RayTaskError as exc:  # node_task itself raised: a bug, never a mismatch
        msg = str(exc).strip().splitlines()[-1]
        return host_result(
            label, node_id=node_id, error=f"internal error on the node: {msg}", exit_code=int(ExitCode.INTERNAL)
        ), None
    except rt.exceptions.RayError as exc:
        # The task's worker or its whole node went away. A dead node is unreachable; a worker that
        # died on a live node crashed on this model (segfault, out of memory).
        why = type(exc).__name__
        if _dead_within(rt, node_id, grace):
            return host_result(
                label, node_id=node_id, unreachable=True, error=f"the node died while verifying ({why})"
            ), None
        return host_result(
            label,
            node_id=node_id,
            exit_code=int(ExitCode.MODEL),
            error=f"the worker verifying {model} on this node died ({why}); "
            "run 'envprint --debug verify' there to see where",
        ), None
    if "error" in result:
        return host_result(label, node_id=node_id, error=result["error"], exit_code=result["exit_code"]), None
    report = Report.model_validate_json(result["report"])
    if report.model != str(model):  # verified from a shipped copy or an absolute path: name them as the user did
        from envprint.record.sidecar import locate_fingerprint

        report = report.model_copy(
            update={"model": str(model), "fingerprint": str(locate_fingerprint(model, options.fingerprint))}
        )
    return host_result(label, report, node_id=node_id), report
