#!/usr/bin/env python
"""Regenerate docs/report.png: a real verify's HTML report, drawn by a headless browser.

    python scripts/screenshot.py [--out docs/report.png] [--work DIR] [--size 1200,1700]

What scripts/demo.sh shows as a picture, made again: the demo's classifier (scripts/demo_model.py,
trained here in under a minute), saved with ``envprint save --probes --seed 7``, then verified as a
host with oneDNN flipped from this host's own default and one intra-op thread would verify it,
with ``--exact --html`` (exit 1: the outputs moved by a few ULP). The page is opened in Debian's
chromium, headless (the browser tests/test_html_report.py uses; scripts/test.sh installs it), and
its first screen saved as the PNG. Needs the html extra (matplotlib). Prints what it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-dev-shm-usage"]
FLAGS += ["--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, expect: int = 0) -> subprocess.CompletedProcess:
    print(f"$ (cd {cwd} &&", " ".join(argv) + ")", flush=True)
    done = subprocess.run(argv, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}, text=True,
                          capture_output=True, cwd=cwd)  # fmt: skip
    if done.returncode != expect:
        sys.exit(f"screenshot: exit {done.returncode} (expected {expect}) from {argv[0]}:\n{done.stdout}{done.stderr}")
    return done


def envprint_cmd() -> list[str]:
    return [sys.executable, "-m", "envprint"]


def report_page(work: Path) -> Path:
    """The demo's classifier saved, then verified on a host with other settings: the HTML page."""
    if not (work / "classifier.keras").is_file():
        run([sys.executable, str(ROOT / "scripts" / "demo_model.py"), "."], work)
    shutil.rmtree(work / "classifier.keras.envprint", ignore_errors=True)  # paths relative: the page shows them
    run([*envprint_cmd(), "save", "classifier.keras", "--probes", "samples.npy", "--seed", "7"], work)
    host = json.loads(run([*envprint_cmd(), "show", "--json"], work).stdout)
    other = "0" if host["tensorflow"]["onednn"]["enabled"] else "1"  # oneDNN flipped from this host's default
    env = {"TF_ENABLE_ONEDNN_OPTS": other, "TF_NUM_INTRAOP_THREADS": "1"}
    print(f"(TF_ENABLE_ONEDNN_OPTS={other} TF_NUM_INTRAOP_THREADS=1)")
    run([*envprint_cmd(), "verify", "classifier.keras", "--exact", "--html", "report.html"], work, env=env, expect=1)
    return work / "report.html"


def screenshot(page: Path, out: Path, size: str) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("screenshot: no chromium on PATH; install it (apt-get install chromium) and rerun")
    with tempfile.TemporaryDirectory() as profile:
        shot = Path(profile) / "shot.png"
        argv = [browser, *FLAGS, f"--user-data-dir={profile}/p", f"--screenshot={shot}", f"--window-size={size}"]
        run([*argv, page.as_uri()], page.parent)
        if not shot.is_file() or shot.stat().st_size < 10_000:
            sys.exit(f"screenshot: {browser} wrote no picture of {page}")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, out)
    print(f"screenshot: wrote {out} ({out.stat().st_size // 1024} KiB) from {page}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--work", type=Path, help="folder for the model and the page (default: a temporary one)")
    parser.add_argument("--size", default="1200,1700", help="the browser window, WIDTH,HEIGHT in pixels")
    args = parser.parse_args()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        screenshot(report_page(args.work), args.out, args.size)
        return
    with tempfile.TemporaryDirectory() as work:
        screenshot(report_page(Path(work)), args.out, args.size)


if __name__ == "__main__":
    main()
