"""`envprint sweep`, `fleet` and `aggregate`: many models here, one model on many hosts, reports from any engine.

Must not import TensorFlow or Ray at module level.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from envprint.cli.boundary import _guard, outputs, quiet_tensorflow, writer
from envprint.cli.options import (
    AtolOpt,
    CustomOpt,
    DiffOutputOpt,
    ExactOpt,
    JsonOpt,
    ModelArg,
    RequireSigOpt,
    RtolOpt,
    SweepOutputOpt,
    TaskCpusOpt,
    TaskMemoryOpt,
    TaskResourceOpt,
    UnsafeOpt,
    ray_options,
    verify_options,
)
from envprint.errors import KINDS


def _error_document(item: Any) -> Any:
    from envprint.models import ErrorDocument, ErrorInfo

    kind = KINDS.get(item.exit_code, "internal")
    return ErrorDocument(error=ErrorInfo(exit_code=item.exit_code, kind=kind, message=item.error or "could not verify"))


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
    output: SweepOutputOpt = None,
) -> None:
    """Verify every model that has a record under the given paths, in this environment.

    One line per model as it finishes, then a summary (per verdict, per leading cause, worst
    models first). Exit 0 when all pass, 1 when any mismatches, 2 or more when any could not be
    verified (the highest such code; each model says why). Ctrl-C prints what is done (exit 130).
    """
    outs = outputs(output, junit_xml=junit_xml, json_lines=json_out)

    def body() -> int:
        outs.check("sweep")  # every path, before any model is looked at
        from envprint.many.sweep import sweep as do_sweep

        quiet_tensorflow()
        progress = _SweepProgress(json_out, outs.context.items, outs.text_on_stdout())
        summary = do_sweep(
            paths or [],
            list_file=list_file,
            options=verify_options(None, rtol, atol, exact, custom_objects, unsafe, require_signature),
            jobs=jobs,
            ray=ray_options(ray_address, task_cpus, task_memory, task_resource, jobs) if ray_address else None,
            max_models_per_worker=max_models_per_worker,
            max_worker_rss=max_worker_rss * 2**20,
            on_item=progress.on_item,
        )
        progress.finish(summary)
        outs.write(summary)
        if summary.interrupted:
            sys.stderr.write("envprint: interrupted\n")
            return 130
        return summary.exit_code

    raise typer.Exit(_guard(body, outs))


class _SweepProgress:
    """A sweep's lines as it runs: one per model (text, or with --json the JSON Lines record verify
    --json prints), a progress bar on a terminal; each (item, report) kept for the outputs table
    (JUnit: each report, or the error of a model not verified). The summary is the table's."""

    def __init__(self, json_out: bool, items: list[Any], text_on_stdout: bool = True) -> None:
        self.json_out, self.items = json_out, items
        # stdout holds another format (--output markdown=-): the lines go to stderr, as progress does
        self.out = writer() if text_on_stdout else writer(sys.stderr)
        self.progress: Any = None

    def on_item(self, item: Any, report: Any, done: int, total: int) -> None:
        from envprint.render.many import Progress, sweep_line
        from envprint.render.outputs import json_line

        self.items.append((item, report))
        if self.progress is None:
            self.progress = Progress(total)
        self.progress.clear()
        if self.json_out:  # each line what `envprint verify MODEL --json` prints: a report, or the error document
            sys.stdout.write(json_line(report if report is not None else _error_document(item)))
        else:
            self.out.line(sweep_line(item))
        sys.stdout.flush()
        self.progress.update(done)

    def finish(self, summary: Any) -> None:
        if self.progress is not None:
            self.progress.clear()
        if self.json_out:
            from envprint.render.outputs import json_line

            sys.stdout.write(json_line(summary))


def fleet(  # size: long only by its option declarations; the body is parse, one library call, emit
    model: ModelArg,
    ray_address: Annotated[
        str,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="The Ray cluster: host:6379, ray://host:10001, 'auto' (this node's cluster), or 'local' "
            "(a cluster of this host alone, started in this process, to try a setup).",
        ),
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
    output: DiffOutputOpt = None,
) -> None:
    """Verify one model on every alive node of a Ray cluster and group the nodes into equivalence classes.

    Nodes agree when they have the same verdict, the same numerics-relevant differences from the
    record and bit-identical outputs. Exit 0 when every node passes, 1 when any mismatches, 2 or
    more when any could not verify (4 for a node that died or never ran its task: unreachable).
    """
    outs = outputs(output, json=json_out, model=model)

    def body() -> int:
        from envprint.many.fleet import fleet as do_fleet

        outs.check("fleet")
        report = do_fleet(
            model,
            ray=ray_options(ray_address, task_cpus, task_memory, task_resource),
            options=verify_options(fingerprint, rtol, atol, exact, custom_objects, unsafe, require_signature),
            ship=ship,
            ship_limit=ship_limit * 2**20,
            timeout=timeout,
        )
        outs.write(report)
        return report.exit_code

    raise typer.Exit(_guard(body, outs))


def aggregate(
    reports: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="REPORT...",
            help="'envprint verify --json' outputs: files, directories of *.json/*.jsonl, or '-' (default) for "
            "stdin (reports one after another: concatenated, as 'cat reports/*.json' gives them, or JSON Lines).",
        ),
    ] = None,
    json_out: JsonOpt = False,
    output: DiffOutputOpt = None,
) -> None:
    """Group hosts into equivalence classes from their 'envprint verify --json' reports (any engine).

    A host is named by its report's file (or stdin:LINE). Same classes and exit codes as fleet.
    """
    outs = outputs(output, json=json_out)

    def body() -> int:
        from envprint.many.aggregate import aggregate as do_aggregate

        outs.check("aggregate")
        result = do_aggregate(reports or [], stdin=sys.stdin)
        outs.write(result)
        return result.exit_code

    raise typer.Exit(_guard(body, outs))
