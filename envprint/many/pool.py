"""A local pool of warm worker processes that survives its workers dying.

Owns: starting ``jobs`` worker processes (spawned, so no parent state leaks in), handing each one
task at a time over its own pipe, recycling a worker after a bounded number of tasks or once its
resident memory passes a limit, and turning a worker that died mid-task (segfault, abort, the
OOM killer) into a retry of that one task in a fresh worker, then into a failure of that task
alone. Knows nothing about models: the work is a function named "module:function" that takes
one picklable task and returns one picklable result. Standard library only.

Why not concurrent.futures.ProcessPoolExecutor: when one of its workers dies, the whole pool
breaks and every pending task fails with it; here a crash costs only the task it was running.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

FULL_GC_EVERY = 10


def current_rss() -> int | None:
    """Resident memory of this process in bytes (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _resolve(name: str) -> Callable[..., Any]:
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def _worker_main(
    conn: Connection, work: str, warm: str | None, cleanup: str | None, max_tasks: int, max_rss: int
) -> None:
    # Ctrl-C reaches the whole process group: the parent decides what happens to the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fn = _resolve(work)
    if warm:
        _resolve(warm)()  # e.g. import TensorFlow once, before the first task is timed
    tidy = _resolve(cleanup) if cleanup else None
    done = 0
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        result = fn(task)
        if tidy is not None:
            tidy()
        done += 1
        # A full collection costs ~0.2 s in a process holding TensorFlow (~285k objects), more than
        # a small task; a young one ~2 ms. Over 100 models the object count and RSS stay flat
        # either way (scripts/bench.py), so the full one runs every FULL_GC_EVERY tasks.
        gc.collect(2 if done % FULL_GC_EVERY == 0 else 1)
        rss = current_rss()
        retiring = done >= max_tasks or (rss is not None and rss > max_rss)
        conn.send((result, os.getpid(), rss, retiring))
        if retiring:
            return


@dataclass
class Outcome:
    """What became of one task."""

    index: int
    result: Any = None
    crashed: str | None = None  # how its worker died, both times, when it never finished
    attempts: int = 1
    worker: int | None = None
    rss: int | None = None


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: tuple[int, int] | None = None  # (index, attempt)
    started: int = field(default=0)


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "vanished"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


class WorkerPool:
    """``jobs`` warm workers running ``work`` ("module:function") on tasks, in any order.

    ``warm`` runs once per worker before its first task; ``cleanup`` after each task (for a
    model verifier: clear Keras' session). A worker retires after ``max_tasks`` tasks or when its
    RSS exceeds ``max_rss`` bytes, and a fresh one takes its place.
    """

    def __init__(
        self,
        work: str,
        *,
        jobs: int,
        warm: str | None = None,
        cleanup: str | None = None,
        max_tasks: int = 50,
        max_rss: int = 4 << 30,
    ) -> None:
        self.work, self.warm, self.cleanup = work, warm, cleanup
        self.jobs = max(1, jobs)
        self.max_tasks, self.max_rss = max(1, max_tasks), max_rss
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, self.work, self.warm, self.cleanup, self.max_tasks, self.max_rss),
            daemon=True,
            name="envprint-worker",
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self._workers.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        self._workers.remove(worker)
        worker.conn.close()
        worker.process.join(timeout=10)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()

    def run(self, tasks: Iterable[Any]) -> Iterator[Outcome]:
        """Yield one Outcome per task as it finishes. Closing the generator stops every worker."""
        tasks = list(tasks)
        pending: deque[tuple[int, int]] = deque((i, 1) for i in range(len(tasks)))
        try:
            while pending or any(w.task for w in self._workers):
                # Start workers up to `jobs`, never more than there is work for.
                while pending and len(self._workers) < self.jobs:
                    self._give(self._spawn(), pending.popleft(), tasks)
                for w in self._workers:
                    if w.task is None and pending:
                        self._give(w, pending.popleft(), tasks)
                busy = [w for w in self._workers if w.task is not None]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for w in busy:
                    if w.conn not in ready and w.process.sentinel not in ready:
                        continue
                    outcome = self._collect(w, pending, tasks)
                    if outcome is not None:
                        yield outcome
        finally:
            self.close()

    def _give(self, worker: _Worker, task: tuple[int, int], tasks: list[Any]) -> None:
        worker.task = task
        try:
            worker.conn.send(tasks[task[0]])
        except (BrokenPipeError, OSError):
            pass  # it died before taking the task: its sentinel fires and _collect retries the task

    def _collect(self, w: _Worker, pending: deque[tuple[int, int]], tasks: list[Any]) -> Outcome | None:
        index, attempt = w.task  # type: ignore[misc]
        try:
            if w.conn.poll():
                result, pid, rss, retiring = w.conn.recv()
                w.task = None
                if retiring:
                    self._retire(w)
                return Outcome(index, result=result, attempts=attempt, worker=pid, rss=rss)
        except (EOFError, OSError):
            pass
        # The worker died holding the task: only that task is affected. Retry it once, first in
        # line for a fresh worker, so that a model that kills every worker is not retried forever.
        w.process.join(timeout=5)
        how = describe_exit(w.process.exitcode)
        w.task = None
        self._retire(w)
        if attempt == 1:
            fresh = self._spawn()
            self._give(fresh, (index, 2), tasks)
            return None
        return Outcome(index, crashed=how, attempts=attempt)

    def close(self) -> None:
        for w in list(self._workers):
            if w.process.is_alive() and w.task is None:
                try:
                    w.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
            else:
                w.process.kill()
        for w in list(self._workers):
            self._retire(w)
