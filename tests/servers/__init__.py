"""Servers the endpoint tests start: free ports, a process started and waited for, and stopped."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(
    cmd: Sequence[str], ready_url: str, timeout: float = 120.0, log: Path | None = None
) -> Iterator[subprocess.Popen]:
    """Start ``cmd``, wait until ``ready_url`` answers 200, yield the process, then stop it (and only it)."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                tail = log.read_text()[-2000:] if log else ""
                raise RuntimeError(f"{cmd[:3]} exited with {proc.returncode} before {ready_url} answered: {tail}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as r:  # noqa: S310 - a local test server
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > end:
                raise RuntimeError(f"{ready_url} did not answer within {timeout:g} s")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


PYTHON = sys.executable
SERVED_NAME = "scorer"  # the model name the endpoint tests serve
