"""Helpers shared by the tests: the one way to run the CLI (``invoke``), and fresh interpreters for tests whose point is a clean process."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envprint.models import Fingerprint


@dataclass
class Invoked:
    """What ``envprint ARGS`` did under Click's runner: exit code, stdout and stderr apart, and parsed JSON.

    ``output`` is stdout and stderr interleaved, as a terminal shows them; ``exception`` is what
    escaped the command (``SystemExit`` for an ordinary exit).
    """

    exit_code: int
    stdout: str
    stderr: str
    output: str
    exception: BaseException | None

    @property
    def json(self) -> Any:
        """stdout as one JSON document (run with ``--json``); fails the test with the output when it is not."""
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(
                f"stdout is not one JSON document ({exc}); exit {self.exit_code}:\n{self.output}"
            ) from None

    @property
    def json_lines(self) -> list[Any]:
        """stdout as JSON Lines (``sweep --json``): one document per line."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def invoke(*args: object, input: str | None = None, env: dict[str, str] | None = None) -> Invoked:
    """Run ``envprint *args`` in this process with Typer's CliRunner; each argument is passed as ``str``.

    tests/conftest.py wraps ``CliRunner.invoke`` so that any ``--json`` run also proves stdout held
    one document valid under ``schemas/``.
    """
    from typer.testing import CliRunner

    from envprint.cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args], input=input, env=env)
    return Invoked(result.exit_code, result.stdout, result.stderr, result.output, result.exception)


def ci_requested() -> bool:
    """True on CI (``CI`` set truthy, as GitHub Actions, GitLab and .ci/run set): a skip there must be allowed."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def keras_flavor_without_tensorflow() -> str | None:
    """The Keras this session's TensorFlow resolves to, read from package metadata (nothing imported).

    The same rule as ``envprint._tf.keras_flavor``; None when TensorFlow is not installed.
    """
    from importlib import metadata

    from packaging.version import Version

    for dist in ("tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-macos"):
        try:
            version = Version(metadata.version(dist))
            break
        except metadata.PackageNotFoundError:
            continue
    else:
        return None
    if (version.major, version.minor) < (2, 16):
        return "keras2"
    if os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in ("1", "true", "yes", "on"):
        return "tf_keras"
    return "keras3"


def run_python(code: str, env: dict[str, str] | None = None, drop: tuple[str, ...] = (), timeout: float = 120):
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    environ.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=timeout)


def capture_in_subprocess(
    env: dict[str, str] | None = None, block_tensorflow: bool = False, drop: tuple[str, ...] = ()
) -> Fingerprint:
    """A fingerprint captured by a fresh Python with the given environment."""
    block = "import sys; sys.modules['tensorflow'] = None\n" if block_tensorflow else ""
    code = block + "import envprint, sys; sys.stdout.write(envprint.capture().model_dump_json())"
    done = run_python(code, env=env, drop=drop)
    assert done.returncode == 0, done.stderr
    return Fingerprint.model_validate(json.loads(done.stdout))


def readme_block(section: str, fence: str) -> str:
    """The one code block fenced ``fence`` (e.g. 'bash', 'python mlflow') under the README's '## section'."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(rf"```{re.escape(fence)}\n(.*?)```", body, flags=re.DOTALL)
    return block


def run_shell(script: str, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """``script`` under bash -e in ``cwd``, with this interpreter's ``envprint`` first on PATH."""
    from pathlib import Path

    environ = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, capture_output=True, text=True, env=environ, timeout=timeout
    )


def as_unprivileged(argv: list[str]) -> list[str]:
    """``argv`` run as a user whom file modes bind: unchanged for such a user, as ``nobody`` for root.

    Root reads and writes files whatever their mode, and CI runs as root: a permission test that
    skipped there would test nothing, so it drops to nobody:nogroup through util-linux's setpriv.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise AssertionError("running as root without setpriv (util-linux): cannot drop to an unprivileged user")
    return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]


def run_unprivileged(code: str, *args: str, home: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -c code args...`` as an unprivileged user (see ``as_unprivileged``), HOME in ``home``."""
    environ = dict(os.environ, HOME=home, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        as_unprivileged([sys.executable, "-c", code, *args]),
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        cwd=home,
    )


@contextlib.contextmanager
def fails_after(seconds: float, what: str):
    """Fail the test (TimeoutError) if the block is still running after ``seconds``: a hang, not slowness.

    A guard against a hang, not a speed test (speed is scripts/bench.py's): the limit is generous.
    SIGALRM interrupts the main thread even inside a blocking call such as reading a FIFO.
    """

    def expire(signum, frame):
        raise TimeoutError(f"{what}: still running after {seconds:g} s; it hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Done:
    """One finished command, shown whole in an assertion message."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"$ {' '.join(self.args)}\nexit {self.returncode}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def run_two_at_a_time(
    commands: dict[str, list[str]], env: dict[str, str], cwd: Path, timeout: float
) -> dict[str, Done]:
    """Run each argv, two at a time (CI is a 2-core machine); one that overruns ``timeout`` is killed."""
    results: dict[str, Done] = {}
    pending = list(commands.items())
    while pending:
        batch, pending = pending[:2], pending[2:]
        procs = {
            key: subprocess.Popen(argv, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for key, argv in batch
        }
        for key, proc in procs.items():
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            results[key] = Done(commands[key], proc.returncode, out, err)
    return results
