"""Helpers for tests that need a fresh interpreter (the point of those tests is a clean process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from envprint.models import Fingerprint


def ci_requested() -> bool:
    """True on CI (``CI`` set truthy, as GitHub Actions, GitLab and .ci/run set): a skip there must be allowed."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


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
