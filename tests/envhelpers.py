"""Helpers for tests that need a fresh interpreter (the point of those tests is a clean process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from envprint.models import Fingerprint


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
