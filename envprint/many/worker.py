"""The per-model work of sweep and fleet, the same in a local pool worker and in a Ray task.

Owns: ``verify_task`` (the library's verify of one model, as plain data in and out: it crosses a
pipe or Ray's object store), ``warm`` (TensorFlow imported once per worker), ``clear_state``
(Keras' state dropped after each model), ``Outcome``, what an engine yields per model, and
``exit_code_of``, the one exit code of many results.
Imports neither TensorFlow nor Ray at module level, and nothing of sweep, fleet or the engines:
they all import it. Its options are ``check.options.VerifyOptions``, the same as ``envprint.verify``'s.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from envprint.check.options import VerifyOptions
from envprint.errors import EnvprintError, ExitCode

# (index of the task, its result, why its worker died, attempts, worker pid, worker RSS)
Outcome = tuple[int, dict[str, Any] | None, str | None, int, int | None, int | None]


# --------------------------------------------------------------------------- inside a worker


def warm() -> None:
    """Import TensorFlow once per worker, before its first model (quietly, like the CLI)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from envprint import _tf

    try:
        _tf.import_tensorflow()
    except EnvprintError:
        pass  # each task then reports the DependencyError for its model
    # One worker predicts model after model: TensorFlow then warns that "N out of the last N calls
    # to <function> triggered tf.function retracing", about envprint's own calls, not the user's
    # code, and the line breaks the parent's progress bar. Only that warning is dropped.
    logging.getLogger("tensorflow").addFilter(_drop_retracing)


def _drop_retracing(record: logging.LogRecord) -> bool:
    return "triggered tf.function retracing" not in record.getMessage()


def clear_state() -> None:
    """Keras/TensorFlow state from the last model: layers, graphs and name counters go."""
    from envprint import _tf

    if _tf.tensorflow_imported():
        try:
            clear = _tf.import_keras().backend.clear_session
        except EnvprintError:
            return
        # Keras 3 runs a full gc.collect() inside clear_session: 0.2 s with TensorFlow's ~285k
        # objects, twice what verifying a small model takes. The worker collects on its own
        # schedule instead (pool: a young collection after each model, a full one every 10).
        try:
            clear(free_memory=False)
        except TypeError:  # Keras 2 / tf_keras: no such argument, and no collection inside
            clear()


def verify_task(task: dict[str, Any]) -> dict[str, Any]:
    """Verify one model, as `envprint verify` would: a report, or an error with its exit code.

    Takes and returns plain data (it crosses a pipe or Ray's object store). Never raises for a
    model's fault: the exit code says what kind of failure it was.
    """
    from envprint.check.verifier import verify_with
    from envprint.record.signing import key_from_env

    options: VerifyOptions = task["options"]
    start = time.perf_counter()
    try:
        # The key stays out of the task (it would cross a pipe or Ray's object store): each worker reads it.
        options = replace(
            options,
            fingerprint=task.get("fingerprint") or options.fingerprint,
            signing_key=options.signing_key if options.signing_key is not None else key_from_env(),
        )
        report = verify_with(Path(task["model"]), options)
        return {"report": report.model_dump_json(), "seconds": time.perf_counter() - start}
    except EnvprintError as exc:
        return {"error": str(exc), "exit_code": int(exc.exit_code), "seconds": time.perf_counter() - start}
    except Exception as exc:  # a bug, in envprint or below it: never a mismatch
        return {
            "error": f"internal error: {type(exc).__name__}: {exc} (verify it alone with --debug and report it)",
            "exit_code": int(ExitCode.INTERNAL),
            "seconds": time.perf_counter() - start,
        }


def exit_code_of(codes: Iterable[int]) -> int:
    """The highest 'could not verify' code (>= 2), else 1 when anything mismatched, else 0."""
    codes = list(codes)
    errors = [c for c in codes if c >= 2]
    if errors:
        return max(errors)
    return int(ExitCode.DIFFERENT) if any(c == 1 for c in codes) else int(ExitCode.OK)
