"""Ray as an engine: connecting to a cluster, and the per-model work of a sweep as Ray tasks.

Owns: RayOptions (address, resources per task), importing Ray (only here, only when asked: the
extra ``envprint[ray]``), ``ray.init`` with its errors as one line, and running sweep tasks on
Ray (``run_sweep_tasks``). The work itself is ``worker.verify_task``, the same as in the local
pool; ``fleet`` uses the same connection for its per-node tasks. Never imports Ray at module level.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from envprint.errors import ExitCode, UsageError
from envprint.many.worker import Outcome, clear_state, verify_task, warm


@dataclass(frozen=True)
class RayOptions:
    """Where and with what resources the per-model (or per-node) Ray tasks run."""

    address: str = "local"  # "local": start one here; "auto": the cluster this host belongs to; or host:port, ray://...
    num_cpus: float = 1.0
    memory: int | None = None  # bytes Ray reserves for each task
    resources: dict[str, float] = field(default_factory=dict)
    local_cpus: int | None = None  # CPUs of a local cluster started here (default: all)


def import_ray() -> Any:
    from envprint.errors import DependencyError

    try:
        import ray
    except ImportError as exc:
        raise DependencyError(f"Ray is not importable ({exc}); install it: pip install 'envprint[ray]'") from None
    return ray


def init_ray(ray: Any, options: RayOptions) -> None:
    """Connect to the cluster at ``options.address``, or start a local one ("local")."""
    quiet = {"log_to_driver": False, "logging_level": "ERROR", "configure_logging": True}
    try:
        if options.address == "local":
            ray.init(num_cpus=options.local_cpus, include_dashboard=False, **quiet)
        else:
            ray.init(address=options.address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(
            f"--ray {options.address}: cannot connect to a Ray cluster ({ray_reason(exc)}); "
            "give its address (host:6379, ray://host:10001), 'auto' on a cluster node, or 'local'"
        ) from None


def ray_reason(exc: BaseException) -> str:
    """Ray's reason, first line, without its advice to set `--address`: a flag of `ray start`, not of envprint."""
    first = str(exc).splitlines()[0].strip() if str(exc).strip() else ""
    kept = [s for s in re.split(r"(?<=\.)\s+", first) if "--address" not in s]
    return " ".join(kept) or type(exc).__name__


def _ray_verify(task: dict[str, Any]) -> dict[str, Any]:
    """One model as a Ray task: the same work as a pool worker's, in a (reused) Ray worker."""
    warm()
    try:
        result = verify_task(task)
    finally:
        clear_state()
    from envprint.many.pool import current_rss

    return {**result, "worker": os.getpid(), "rss": current_rss()}


def run_sweep_tasks(
    tasks: list[dict[str, Any]], options: RayOptions, max_models: int, seen: dict[str, Any]
) -> Iterator[Outcome]:
    ray = import_ray()
    init_ray(ray, options)
    try:
        seen["cpus"] = int(ray.cluster_resources().get("CPU", 0))
        # max_calls recycles a Ray worker after that many models; max_retries: a worker that dies
        # is retried once in a fresh one, as in the local pool.
        remote = ray.remote(max_calls=max_models, max_retries=1)(_ray_verify).options(
            num_cpus=options.num_cpus,
            memory=options.memory,
            resources=options.resources or None,
        )
        refs = {remote.remote(t): i for i, t in enumerate(tasks)}
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            index = refs[ready[0]]
            try:
                result = ray.get(ready[0])
            except ray.exceptions.WorkerCrashedError:
                yield index, None, "the Ray worker died", 2, None, None
                continue
            except ray.exceptions.RayError as exc:
                msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                result = {"error": f"Ray could not run the task ({msg})", "exit_code": int(ExitCode.INTERNAL)}
            yield index, result, None, 1, result.get("worker"), result.get("rss")
    finally:
        ray.shutdown()
