"""envprint sweep: many models in this environment, on a local pool of warm workers (or Ray).

Workers are real spawned processes running real TensorFlow; a crash is a real os.abort() in a
test-only layer (tests/fleet_layers.py), not a mock.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from envhelpers import invoke
from fleet_models import saved, tiny

from envprint.check.options import VerifyOptions
from envprint.errors import UsageError
from envprint.many.ray_engine import RayOptions
from envprint.many.sweep import find_models, find_models_and_unrecorded, sweep
from envprint.models import Report, SweepSummary
from envprint.render.many import Progress

TESTS = Path(__file__).resolve().parent
CRASH = VerifyOptions(custom_objects=("fleet_layers:Crash", "fleet_layers:Stall"))


@pytest.fixture(scope="module")
def zoo(keras, tmp_path_factory) -> Path:
    """a/one, a/two (pass), b/changed (weights changed after save: mismatch), c/crash_* and d/stall (test layers)."""
    import fleet_layers

    root = tmp_path_factory.mktemp("zoo")
    saved(tiny(keras, 1), root / "a" / "one.keras")
    saved(tiny(keras, 2), root / "a" / "two.keras")
    changed = saved(tiny(keras, 3), root / "b" / "changed.keras")
    tiny(keras, 4).save(changed)  # same architecture, other weights: not the model that was saved
    saved(tiny(keras, 5, fleet_layers.Crash("always", tag="always")), root / "c" / "crash_always.keras")
    saved(tiny(keras, 6, fleet_layers.Crash("once", tag="once")), root / "c" / "crash_once.keras")
    saved(tiny(keras, 7, fleet_layers.Stall()), root / "d" / "stall.keras")
    tiny(keras, 8).save(root / "a" / "no_record.keras")
    return root


def test_find_models_takes_records_beside_files_and_inside_savedmodels(tmp_path):
    (tmp_path / "x" / "m.keras.envprint").mkdir(parents=True)
    (tmp_path / "x" / "m.keras").write_bytes(b"")
    (tmp_path / "x" / "m.keras.envprint" / "fingerprint.json").write_text("{}")
    (tmp_path / "x" / "plain.h5").write_bytes(b"")  # no record: not a model to sweep
    sm = tmp_path / "y" / "export"
    (sm / "assets.extra" / "envprint").mkdir(parents=True)
    (sm / "saved_model.pb").write_bytes(b"")
    (sm / "assets.extra" / "envprint" / "fingerprint.json").write_text("{}")
    (tmp_path / "y" / "bare").mkdir()
    (tmp_path / "y" / "bare" / "saved_model.pb").write_bytes(b"")  # a SavedModel without a record
    assert find_models([tmp_path]) == [tmp_path / "x" / "m.keras", sm]
    assert find_models_and_unrecorded([tmp_path])[1] == [tmp_path / "x" / "plain.h5", tmp_path / "y" / "bare"]


def test_find_models_reads_a_list_file_and_refuses_a_missing_path(tmp_path):
    (tmp_path / "a.keras").write_bytes(b"")
    listing = tmp_path / "models.txt"
    listing.write_text(f"# models to check\n{tmp_path / 'a.keras'}\n\n")
    assert find_models([], listing) == [tmp_path / "a.keras"]
    with pytest.raises(UsageError, match=r"nope: no such file or directory; give models or directories"):
        find_models([tmp_path / "nope"])


def test_sweep_without_records_exits_2_and_says_where_records_are_found(tmp_path):
    r = invoke("sweep", tmp_path)
    assert r.exit_code == 2, r.output
    assert f"no model with a record found under {tmp_path}; records are found beside file models" in r.output
    (tmp_path / "m.keras").write_bytes(b"")
    r = invoke("sweep", tmp_path)
    assert r.exit_code == 2, r.output
    assert f"under {tmp_path} (1 without one, e.g. {tmp_path / 'm.keras'}); records are found" in r.output
    assert "envprint save MODEL writes one" in r.output


def test_a_sweep_of_one_model_runs_one_worker_and_lists_the_folder_s_unrecorded_models(zoo):
    summary = sweep([zoo / "a"])
    assert (summary.jobs, summary.total, summary.exit_code) == (2, 2, 0)
    assert summary.not_recorded == [str(zoo / "a" / "no_record.keras")]
    one = sweep([zoo / "a" / "one.keras"], jobs=4)
    assert (one.jobs, one.total, one.not_recorded) == (1, 1, [])


def test_a_worker_drops_tensorflow_s_retracing_warning_and_nothing_else():
    """Model after model in one worker makes TensorFlow warn about envprint's own retraces: not the user's."""
    code = (
        "import logging\n"
        "from envprint.many.worker import warm\n"
        "warm()\n"
        "log = logging.getLogger('tensorflow')\n"
        "log.warning('5 out of the last 5 calls to <function f> triggered tf.function retracing. Tracing is expensive')\n"
        "log.warning('a warning of the user\\'s own')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "a warning of the user's own" in done.stderr
    assert "retracing" not in done.stderr


def test_sweep_streams_one_line_per_model_and_exits_1_on_a_mismatch(zoo):
    r = invoke("sweep", zoo / "a", zoo / "b", "--jobs", "2")
    assert r.exit_code == 1, r.output
    lines = r.output.splitlines()
    assert f"identical         {zoo / 'a' / 'one.keras'}  " in r.output
    assert f"identical         {zoo / 'a' / 'two.keras'}  " in r.output
    assert f"MISMATCH          {zoo / 'b' / 'changed.keras'}  leading cause: model_changed" in r.output
    # a model without a record is listed as such, neither verified nor failed
    assert (
        f"1 model without a record, not verified: {zoo / 'a' / 'no_record.keras'}; envprint save MODEL records one"
        in lines
    )
    assert (
        "Sweep: 3 of 3 models (local, 2 workers): 2 identical, 0 within tolerance, 1 mismatch, 0 could not verify"
        in lines
    )
    worst = lines[lines.index("Worst models first:") + 2]
    assert worst.split()[:2] == ["MISMATCH", str(zoo / "b" / "changed.keras")]


def test_sweep_json_is_one_report_per_model_then_the_summary_and_junit_agrees(zoo, tmp_path):
    junit = tmp_path / "sweep.xml"
    r = invoke("sweep", zoo / "a", zoo / "b", "-j", "1", "--json", "--junit-xml", junit)
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 4
    reports = {Report.model_validate_json(line).model: Report.model_validate_json(line) for line in lines[:3]}
    assert {m: rep.verdict for m, rep in reports.items()} == {
        str(zoo / "a" / "one.keras"): "identical",
        str(zoo / "a" / "two.keras"): "identical",
        str(zoo / "b" / "changed.keras"): "mismatch",
    }
    summary = SweepSummary.model_validate_json(lines[3])
    assert summary.by_verdict == {"identical": 2, "within_tolerance": 0, "mismatch": 1, "error": 0}
    assert summary.by_cause == {"model_changed": 1}
    assert [i.model for i in summary.models][0] == str(zoo / "b" / "changed.keras")
    assert summary.exit_code == 1 and summary.jobs == 1
    root = ET.parse(junit).getroot()  # envprint.integrations.junit: one <testsuite> per model
    assert (root.tag, root.get("name"), root.get("errors")) == ("testsuites", "envprint sweep", "0")
    suites = {s.get("name"): int(s.get("failures")) for s in root.iter("testsuite")}
    assert suites == {
        f"envprint verify {zoo / 'a' / 'one.keras'}": 0,
        f"envprint verify {zoo / 'a' / 'two.keras'}": 0,
        f"envprint verify {zoo / 'b' / 'changed.keras'}": 2,  # its identity, and its output
    }


def test_a_model_that_kills_its_worker_costs_only_itself_and_is_retried_once(zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("ENVPRINT_TEST_CRASH_DIR", str(tmp_path))
    summary = sweep([zoo / "a", zoo / "c"], options=CRASH, jobs=2)
    items = {Path(i.model).name: i for i in summary.models}
    always, once = items["crash_always.keras"], items["crash_once.keras"]
    assert (always.verdict, always.exit_code, always.attempts) == ("error", 4, 2)
    assert "the worker verifying it died (killed by SIGABRT) on both attempts (retried once in a fresh worker)" in (
        always.error or ""
    )
    # The first attempt died; the retry, in a fresh worker, verified it.
    assert (once.verdict, once.attempts) == ("identical", 2)
    assert items["one.keras"].verdict == items["two.keras"].verdict == "identical"
    assert summary.by_verdict == {"identical": 3, "within_tolerance": 0, "mismatch": 0, "error": 1}
    assert summary.exit_code == 4


def test_a_worker_is_recycled_after_its_bounded_number_of_models(zoo):
    recycled = sweep([zoo / "a"], jobs=1, max_models_per_worker=1)
    assert len({i.worker for i in recycled.models}) == 2
    warm = sweep([zoo / "a"], jobs=1)
    assert len({i.worker for i in warm.models}) == 1
    assert all(i.worker_rss_bytes and i.worker_rss_bytes > 100 << 20 for i in warm.models)
    # A worker whose memory passes the bound retires too (any TensorFlow worker passes 1 MiB).
    bounded = sweep([zoo / "a"], jobs=1, max_worker_rss=1 << 20)
    assert len({i.worker for i in bounded.models}) == 2


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only():
    tty = _Terminal()
    bar = Progress(4, tty)
    bar.update(1)
    assert tty.getvalue().startswith("\r[#######.......................] 1/4 models, ETA 0:")
    bar.clear()
    assert tty.getvalue().endswith("\r")
    pipe = io.StringIO()
    Progress(4, pipe).update(1)
    assert pipe.getvalue() == ""


@pytest.mark.subprocess
def test_ctrl_c_prints_what_is_done_and_exits_130(zoo, tmp_path):
    marker = tmp_path / "stalling"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "ENVPRINT_TEST_STALL": "60",
        "ENVPRINT_TEST_STALL_MARKER": str(marker),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    cmd = [sys.executable, "-m", "envprint", "sweep", str(zoo / "a" / "one.keras"), str(zoo / "d"), "-j", "1",
           "--custom-objects", "fleet_layers:Stall"]  # fmt: skip
    # A shell's background job starts with SIGINT ignored, and Python then never turns it into
    # KeyboardInterrupt: give the child the terminal's default, as a user at a prompt has.
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("identical         "), first
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)  # until the second model is in its (60 s) stall
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Sweep interrupted: 1 of 2 models (local, 1 worker): 1 identical" in out
    assert "1 model was not verified (interrupted)." in out
    assert "envprint: interrupted" in err
    assert "Traceback" not in err


def test_ray_sweep_gives_the_results_of_the_local_pool(zoo, monkeypatch):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'envprint[ray]')")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster: no token written to ~/.ray
    got: dict[str, dict[str, Report]] = {"local": {}, "ray": {}}
    local = sweep([zoo / "a", zoo / "b"], jobs=2, on_item=lambda i, rep, d, t: got["local"].update({i.model: rep}))
    ray = sweep(
        [zoo / "a", zoo / "b"],
        ray=RayOptions("local", local_cpus=2),
        on_item=lambda i, rep, d, t: got["ray"].update({i.model: rep}),
    )
    assert ray.engine == "ray" and local.engine == "local"
    assert [(i.model, i.verdict, i.leading_cause) for i in ray.models] == [
        (i.model, i.verdict, i.leading_cause) for i in local.models
    ]
    for model, rep in got["local"].items():
        other = got["ray"][model]
        assert (other.verdict, other.outputs_digest, other.identity) == (rep.verdict, rep.outputs_digest, rep.identity)
        assert other.outputs == rep.outputs
    assert ray.exit_code == local.exit_code == 1


def test_a_sweep_with_markdown_on_stdout_keeps_its_model_lines_on_stderr(zoo):
    r = invoke("sweep", zoo / "a", "--jobs", "1", "--output", "markdown=-")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("### "), r.stdout
    assert f"identical         {zoo / 'a' / 'one.keras'}  " in r.stderr
