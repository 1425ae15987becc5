"""`envprint sweep`, `fleet` and `aggregate`: many models here, one model on many hosts, reports from any engine.

Must not import TensorFlow or Ray at module level.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from envprint.cli.boundary import _guard, quiet_tensorflow, writer
from envprint.cli.options import (
    AtolOpt,
    CustomOpt,
    ExactOpt,
    JsonOpt,
    ModelArg,
    RequireSigOpt,
    RtolOpt,
    TaskCpusOpt,
    TaskMemoryOpt,
    TaskResourceOpt,
    UnsafeOpt,
    ray_options,
    verify_options,
)
from envprint.cli.streams import emit
from envprint.errors import KINDS


def _error_document(item: Any) -> Any:
    from envprint.models import ErrorDocument, ErrorInfo

    kind = KINDS.get(item.exit_code, "internal")
    return ErrorDocument(error=ErrorInfo(exit_code=item.exit_code, kind=kind, message=item.error or "could not verify"))


def _json_line(model: Any) -> str:
    import json

    return json.dumps(model.model_dump(mode="json"), sort_keys=True, ensure_ascii=False) + "\n"


def sweep(  # size: long only by its option declarations; the body is parse, one library call, emit
    paths: Annotated[
        list[Path] | None,
        typer.Argument(metavar="MODEL_OR_DIR...", help="Models, or directories searched for models with a record."),
    ] = None,
    list_file: Annotated[
        Path | None, typer.Option("--list", metavar="FILE", help="A file naming one model per line (# comments).")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help="Worker processes (default: what the CPUs and memory allow).")
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Run each model as a Ray task: 'local' starts a cluster here, 'auto' joins this node's, "
            "or host:6379 / ray://host:10001. Needs envprint[ray].",
        ),
    ] = None,
    task_cpus: TaskCpusOpt = 1.0,
    task_memory: TaskMemoryOpt = None,
    task_resource: TaskResourceOpt = None,
    max_models_per_worker: Annotated[
        int, typer.Option("--max-models-per-worker", help="Recycle a worker after this many models.")
    ] = 50,
    max_worker_rss: Annotated[
        int, typer.Option("--max-worker-rss", metavar="MB", help="Recycle a worker whose memory passes this.")
    ] = 3072,
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    exact: ExactOpt = False,
    custom_objects: CustomOpt = None,
    unsafe: UnsafeOpt = False,
    require_signature: RequireSigOpt = False,
    junit_xml: Annotated[
        Path | None,
        typer.Option("--junit-xml", metavar="FILE", help="Also write a JUnit XML file, one test per model."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="JSON Lines: one verify report per model as it finishes, then the summary.")
    ] = False,
) -> None:
    """Verify every model that has a record under the given paths, in this environment.

    One line per model as it finishes, then a summary (per verdict, per leading cause, worst
    models first). Exit 0 when all pass, 1 when any mismatches, 2 or more when any could not be
    verified (the highest such code; each model says why). Ctrl-C prints what is done (exit 130).
    """

    def body() -> int:
        from envprint.many.sweep import sweep as do_sweep

        quiet_tensorflow()
        printer = _SweepPrinter(json_out, junit_xml)
        summary = do_sweep(
            paths or [],
            list_file=list_file,
            options=verify_options(None, rtol, atol, exact, custom_objects, unsafe, require_signature),
            jobs=jobs,
            ray=ray_options(ray_address, task_cpus, task_memory, task_resource, jobs) if ray_address else None,
            max_models_per_worker=max_models_per_worker,
            max_worker_rss=max_worker_rss * 2**20,
            on_item=printer.on_item,
        )
        printer.finish(summary)
        if summary.interrupted:
            sys.stderr.write("envprint: interrupted\n")
            return 130
        return summary.exit_code

    raise typer.Exit(_guard(body, json_out))


class _SweepPrinter:
    """A sweep's output as it runs: one line per model (text, or JSON Lines), a progress bar on a
    terminal, then the summary; --junit-xml gathers one suite per model and is written at the end."""

    def __init__(self, json_out: bool, junit_xml: Path | None) -> None:
        self.json_out, self.junit_xml = json_out, junit_xml
        self.out = writer()
        self.progress: Any = None
        self.suites: list[Any] = []  # each report, or the error suite of a model not verified

    def on_item(self, item: Any, report: Any, done: int, total: int) -> None:
        from envprint.render.many import Progress, sweep_line

        if self.junit_xml is not None:
            from envprint.render.junit import error_suite

            self.suites.append(report if report is not None else error_suite(item.model, item.error or ""))
        if self.progress is None:
            self.progress = Progress(total)
        self.progress.clear()
        if self.json_out:  # each line what `envprint verify MODEL --json` prints: a report, or the error document
            sys.stdout.write(_json_line(report if report is not None else _error_document(item)))
        else:
            self.out.line(sweep_line(item))
        sys.stdout.flush()
        self.progress.update(done)

    def finish(self, summary: Any) -> None:
        from envprint.render.many import render_sweep_summary

        if self.progress is not None:
            self.progress.clear()
        if self.json_out:
            sys.stdout.write(_json_line(summary))
        else:
            render_sweep_summary(summary, self.out)
        if self.junit_xml is not None:
            from envprint.render.junit import write_junit_xml

            write_junit_xml(self.junit_xml, self.suites, name="envprint sweep")


def fleet(
    model: ModelArg,
    ray_address: Annotated[
        str,
        typer.Option("--ray", metavar="ADDRESS", help="The Ray cluster: host:6379, ray://host:10001, or 'auto'."),
    ],
    fingerprint: Annotated[
        Path | None, typer.Option("--fingerprint", help="The record (default: found beside MODEL).")
    ] = None,
    ship: Annotated[
        bool,
        typer.Option(
            "--ship",
            help="Send the model and its record to each node through Ray's object store (nodes that cannot read MODEL's path).",
        ),
    ] = False,
    ship_limit: Annotated[
        int, typer.Option("--ship-limit", metavar="MB", help="Largest model (with its record) --ship sends.")
    ] = 256,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for every node; a node without a result is unreachable.")
    ] = 900.0,
    task_cpus: TaskCpusOpt = 1.0,
    task_memory: TaskMemoryOpt = None,
    task_resource: TaskResourceOpt = None,
    rtol: RtolOpt = None,
    atol: AtolOpt = None,
    exact: ExactOpt = False,
    custom_objects: CustomOpt = None,
    unsafe: UnsafeOpt = False,
    require_signature: RequireSigOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Verify one model on every alive node of a Ray cluster and group the nodes into equivalence classes.

    Nodes agree when they have the same verdict, the same numerics-relevant differences from the
    record and bit-identical outputs. Exit 0 when every node passes, 1 when any mismatches, 2 or
    more when any could not verify (4 for a node that died or never ran its task: unreachable).
    """

    def body() -> int:
        from envprint.many.fleet import fleet as do_fleet

        report = do_fleet(
            model,
            ray=ray_options(ray_address, task_cpus, task_memory, task_resource),
            options=verify_options(fingerprint, rtol, atol, exact, custom_objects, unsafe, require_signature),
            ship=ship,
            ship_limit=ship_limit * 2**20,
            timeout=timeout,
        )
        _print(report, json_out, "render_fleet")
        return report.exit_code

    raise typer.Exit(_guard(body, json_out))


def _print(result: Any, json_out: bool, renderer: str) -> None:
    """A fleet-wide result on stdout: canonical JSON, or ``render_fleet.<renderer>`` for people.
    Through ``emit``: a reader that closes the pipe early leaves the exit code the result's."""
    from envprint.record.store import canonical_json
    from envprint.render import many as render_fleet

    if json_out:
        emit(lambda: sys.stdout.write(canonical_json(result)))
    else:
        emit(lambda: getattr(render_fleet, renderer)(result, writer()))


def aggregate(
    reports: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="REPORT...",
            help="'envprint verify --json' outputs: files, directories of *.json/*.jsonl, or '-' (default) for "
            "JSON Lines on stdin.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Group hosts into equivalence classes from their 'envprint verify --json' reports (any engine).

    A host is named by its report's file (or stdin:LINE). Same classes and exit codes as fleet.
    """

    def body() -> int:
        from envprint.many.aggregate import aggregate as do_aggregate

        result = do_aggregate(reports or [], stdin=sys.stdin)
        _print(result, json_out, "render_aggregate")
        return result.exit_code

    raise typer.Exit(_guard(body, json_out))
