"""`envprint sweep`: verify every model with a record under some paths, in this environment.

Owns: finding the models, running the per-model work (``worker.verify_task``) on the local warm
pool (``pool.WorkerPool``) or as Ray tasks (``ray_engine``), and the summary (verdicts, leading causes, worst
models first, exit code). Wording lives in ``render_fleet``. Imports neither TensorFlow nor Ray
at module level: a worker imports TensorFlow once (``warm``), and Ray is imported only when
``ray_address`` is given.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envprint.check.options import VerifyOptions
from envprint.errors import ExitCode, UsageError
from envprint.many.worker import Outcome, exit_code_of
from envprint.models import Report, SweepItem, SweepSummary

if TYPE_CHECKING:
    from envprint.many.ray_engine import RayOptions

# A worker verifies this many models, or grows past this much memory, then a fresh one takes
# its place: whatever TensorFlow or a model leaks stays bounded.
MAX_MODELS_PER_WORKER = 50
MAX_WORKER_RSS = 3 << 30
# What one warm worker holds with TensorFlow imported and a small model loaded (measured: ~520 MB
# for `envprint verify` of an MLP); the default --jobs keeps the pool within available memory.
WORKER_MEMORY_ESTIMATE = 800 << 20


# --------------------------------------------------------------------------- finding models


def _model_of_record(fingerprint: Path) -> Path | None:
    """The model a fingerprint.json at its default place belongs to (None for a record elsewhere)."""
    from envprint.record.sidecar import SAVEDMODEL_SIDECAR, SIDECAR_SUFFIX

    sidecar = fingerprint.parent
    if sidecar.name.endswith(SIDECAR_SUFFIX):
        model = sidecar.with_name(sidecar.name[: -len(SIDECAR_SUFFIX)])
        return model if model.exists() else None
    if sidecar.parts[-2:] == SAVEDMODEL_SIDECAR.parts:
        return sidecar.parent.parent
    return None


def find_models(paths: Iterable[Path], list_file: Path | None = None) -> list[Path]:
    """Every model with a record under ``paths`` (models or directories), plus those listed in ``list_file``."""
    return find_models_and_unrecorded(paths, list_file)[0]


def find_models_and_unrecorded(paths: Iterable[Path], list_file: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Every model with a record under ``paths`` (models or directories), plus those listed in ``list_file``.

    A directory is searched for records at their default place (``MODEL.envprint/`` beside a file,
    ``assets.extra/envprint/`` inside a SavedModel); a model given by name is taken as it is, and
    verify then says if it has no record. Sorted, each once. Second: the models found in a directory
    (by their name: a model file's suffix, a SavedModel's marker) that have no record there, which a
    sweep lists as not verified rather than skipping in silence.
    """
    from envprint import formats
    from envprint.record.sidecar import FINGERPRINT_FILE, SAVEDMODEL_SIDECAR, SIDECAR_SUFFIX

    given = list(paths)
    if list_file is not None:
        try:
            text = Path(list_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{list_file}: cannot read the list of models ({exc}); one path per line") from None
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                given.append(Path(line))
    found: dict[str, Path] = {}
    unrecorded: dict[str, Path] = {}
    model_suffixes = formats.suffixes()
    for path in given:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory; give models or directories that hold them")
        if path.is_file() or (path / "saved_model.pb").exists():
            found.setdefault(str(path), path)
            continue
        for root, dirs, _files in os.walk(path):
            here = Path(root)
            if (here / "saved_model.pb").exists():
                if (here / SAVEDMODEL_SIDECAR / FINGERPRINT_FILE).exists():
                    found.setdefault(str(here), here)
                else:
                    unrecorded.setdefault(str(here), here)
                dirs[:] = []  # a SavedModel's own folders hold no other model
                continue
            for d in dirs:
                if d.endswith(SIDECAR_SUFFIX) and (here / d / FINGERPRINT_FILE).is_file():
                    model = _model_of_record(here / d / FINGERPRINT_FILE)
                    if model is not None:
                        found.setdefault(str(model), model)
            for name in _files:
                if name.endswith(model_suffixes) and not (here / (name + SIDECAR_SUFFIX) / FINGERPRINT_FILE).is_file():
                    unrecorded.setdefault(str(here / name), here / name)
            dirs[:] = sorted(d for d in dirs if not d.endswith(SIDECAR_SUFFIX))  # never into a record
    missing = [unrecorded[k] for k in sorted(unrecorded) if k not in found]
    return [found[k] for k in sorted(found)], missing


# --------------------------------------------------------------------------- results


_RANK = {"mismatch": 0, "error": 1, "within_tolerance": 2, "identical": 3}


def item_from(
    model: str,
    result: dict[str, Any] | None,
    *,
    crashed: str | None = None,
    attempts: int = 1,
    worker: int | None = None,
    rss: int | None = None,
) -> tuple[SweepItem, Report | None]:
    """A SweepItem (and the Report, when there is one) from what a worker returned."""
    if crashed is not None or result is None:
        error = (
            f"{model}: the worker verifying it died ({crashed or 'no result'}) on both attempts (retried once in a "
            f"fresh worker); run 'envprint --debug verify {model}' alone to see where"
        )
        return SweepItem(
            model=model, verdict="error", exit_code=int(ExitCode.MODEL), error=error, attempts=attempts
        ), None
    seconds = result.get("seconds")
    if "error" in result:
        item = SweepItem(
            model=model,
            verdict="error",
            exit_code=result["exit_code"],
            error=result["error"],
            attempts=attempts,
            seconds=seconds,
            worker=worker,
            worker_rss_bytes=rss,
        )
        return item, None
    report = Report.model_validate_json(result["report"])
    ulps = [o.max_ulp for o in report.outputs if o.max_ulp is not None]
    rels = [o.max_rel for o in report.outputs if o.max_rel is not None]
    differs = report.verdict != "identical"
    item = SweepItem(
        model=model,
        verdict=report.verdict,
        exit_code=int(ExitCode.DIFFERENT if report.verdict == "mismatch" else ExitCode.OK),
        leading_cause=report.explanations[0].cause if differs and report.explanations else None,
        **(_first_difference(report) if differs else {}),
        max_ulp=max(ulps) if ulps else None,
        max_rel=max(rels) if rels else None,
        attempts=attempts,
        seconds=seconds,
        worker=worker,
        worker_rss_bytes=rss,
    )
    return item, report


def _first_difference(report: Report) -> dict[str, Any]:
    """What differs first, as a code and numbers (render.many words it): the order of first_problem."""
    ident = report.identity
    if report.verdict == "mismatch" and ident.weights == "changed":
        return {"difference": "weights_changed"}
    if report.verdict == "mismatch" and ident.sidecar_files_changed:
        return {"difference": "record_edited"}
    if report.verdict == "mismatch" and report.random_at_inference:
        return {"difference": "random_at_inference"}
    wanted = "mismatch" if report.verdict == "mismatch" else "within_tolerance"
    o = next((o for o in report.outputs if o.status == wanted), None)
    if o is None:
        return {}
    return {"difference": "output", "output": o.model_copy(update={"error_histogram": None, "worst": []})}


def summarize(items: list[SweepItem], *, engine: str, jobs: int, total: int, interrupted: bool) -> SweepSummary:
    ordered = sorted(items, key=lambda i: (_RANK[i.verdict], -(i.max_rel or 0.0), i.model))
    verdicts = Counter(i.verdict for i in items)
    causes = Counter(i.leading_cause for i in items if i.leading_cause)
    return SweepSummary(
        engine=engine,
        jobs=jobs,
        total=total,
        done=len(items),
        interrupted=interrupted,
        by_verdict={k: verdicts.get(k, 0) for k in ("identical", "within_tolerance", "mismatch", "error")},
        by_cause=dict(causes.most_common()),
        models=ordered,
        exit_code=(code := exit_code_of(i.exit_code for i in items)),
        passed=code == 0,
    )


# --------------------------------------------------------------------------- engines


def default_jobs(cpu_count: int | None = None, available: int | None = None) -> int:
    """As many workers as there are CPUs this process may use, and as fit in available memory."""
    if cpu_count is None:
        try:
            cpu_count = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpu_count = os.cpu_count() or 1
    if available is None:
        available = _available_memory()
    by_memory = max(1, available // WORKER_MEMORY_ESTIMATE) if available else cpu_count
    return max(1, min(cpu_count, by_memory))


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _local(tasks: list[dict[str, Any]], jobs: int, max_models: int, max_rss: int) -> Iterator[Outcome]:
    from envprint.many.pool import WorkerPool

    pool = WorkerPool(
        "envprint.many.worker:verify_task",
        jobs=min(jobs, len(tasks)) or 1,
        warm="envprint.many.worker:warm",
        cleanup="envprint.many.worker:clear_state",
        max_tasks=max_models,
        max_rss=max_rss,
    )
    for o in pool.run(tasks):
        yield o.index, o.result, o.crashed, o.attempts, o.worker, o.rss


def sweep(
    paths: Iterable[str | Path],
    *,
    list_file: str | Path | None = None,
    options: VerifyOptions | None = None,
    jobs: int | None = None,
    ray: RayOptions | None = None,
    max_models_per_worker: int = MAX_MODELS_PER_WORKER,
    max_worker_rss: int = MAX_WORKER_RSS,
    on_item: Callable[[SweepItem, Report | None, int, int], None] | None = None,
) -> SweepSummary:
    """Verify every model found under ``paths``; ``on_item(item, report, done, total)`` as each finishes.

    Never raises for one model's failure: it is an item with verdict 'error' and its exit code.
    Ctrl-C (KeyboardInterrupt) stops the workers and returns what is done, marked interrupted.
    """
    roots = [Path(p) for p in paths]
    if not roots and list_file is None:
        raise UsageError("give models or directories to sweep, or --list FILE")
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    models, unrecorded = find_models_and_unrecorded(roots, Path(list_file) if list_file else None)
    if not models:
        without = f" ({len(unrecorded)} without one, e.g. {unrecorded[0]})" if unrecorded else ""
        raise UsageError(
            "no model with a record found under "
            + ", ".join(str(p) for p in roots)
            + without
            + "; records are found beside file models (MODEL.envprint/) and inside SavedModels (assets.extra/envprint/):"
            " envprint save MODEL writes one"
        )
    options = options or VerifyOptions()
    tasks = [{"model": str(m), "options": options} for m in models]
    jobs = jobs or default_jobs()
    seen: dict[str, Any] = {}
    if ray is not None:
        from envprint.many.ray_engine import run_sweep_tasks

        outcomes = run_sweep_tasks(tasks, ray, max_models_per_worker, seen)
    else:
        jobs = min(jobs, len(tasks))  # never more workers than models
        outcomes = _local(tasks, jobs, max_models_per_worker, max_worker_rss)
    items, interrupted = _collect(outcomes, models, on_item)
    if ray is not None:
        jobs = seen.get("cpus") or jobs  # the cluster's CPUs
    engine = "ray" if ray is not None else "local"
    summary = summarize(items, engine=engine, jobs=jobs, total=len(models), interrupted=interrupted)
    return summary.model_copy(update={"not_recorded": [str(m) for m in unrecorded]}) if unrecorded else summary


def _collect(outcomes: Iterator[Outcome], models: list[Path],
             on_item: Callable[[SweepItem, Report | None, int, int], None] | None) -> tuple[list[SweepItem], bool]:  # fmt: skip
    """Each model's item as its outcome arrives (``on_item`` told at once); whether Ctrl-C cut it short."""
    items: list[SweepItem] = []
    interrupted = False
    try:
        for index, result, crashed, attempts, worker, rss in outcomes:
            item, report = item_from(
                str(models[index]), result, crashed=crashed, attempts=attempts, worker=worker, rss=rss
            )
            items.append(item)
            if on_item is not None:
                on_item(item, report, len(items), len(models))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()
    return items, interrupted
