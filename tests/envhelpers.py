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
