"""verify --investigate with real TensorFlow and real child processes, and env-export.

One MobileNetV2 (alpha 0.35, 64x64, 5 classes) is saved by a child with oneDNN on and verified
by a child with oneDNN off and one intra-op thread: on x86-64 that moves outputs by a few ULP
(measured), while the thread count moves nothing. investigate() must then confirm oneDNN, rule
out the threads, and say why versions cannot be tried in a process. On a CPU where oneDNN on
and off give the same bits that scenario skips (tests/skip_allowlist.txt says why CI may).

The mechanics are also tested on a drift every CPU makes (``threads_drift``): one wide Dense
layer (32768 inputs), oneDNN off on both sides so Eigen does the matrix product, saved with two
intra-op threads and verified with one. Eigen's blocking of a long product depends on the
thread count, so the sums run in another order (measured: 122 / 128 outputs differ, 126 ULP).
The deployment host also sets TF_DETERMINISTIC_OPS=1, which changes nothing on that product:
investigate() must confirm the threads and rule out op determinism.

The parent (this pytest process) never needs TensorFlow: investigate() only spawns children.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from envhelpers import fails_after, run_python

from envprint.causes.diff import diff_fingerprints
from envprint.causes.explain import explain
from envprint.causes.restore import Decided, Restore, plan
from envprint.check.investigate import Numbers, investigate, judge
from envprint.check.record_read import read_checked
from envprint.host.constraints import env_export, install_command
from envprint.models import Fingerprint, IdentityCheck, InvestigationResult, Report
from envprint.record.store import locate_fingerprint, read_fingerprint

FIXTURES = Path(__file__).resolve().parent / "fixtures"
A100 = FIXTURES / "handmade_gpu_host_a100.json"
# The deployment host: oneDNN off, one intra-op thread (the saved host: oneDNN on, default threads).
DEPLOY = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTRAOP_THREADS": "1"}
UNSET = ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TF_DETERMINISTIC_OPS")

SAVE = """
import keras, envprint
model = keras.applications.MobileNetV2(input_shape=(64, 64, 3), alpha=0.35, weights=None, classes=5)
model.save({path!r})
envprint.save({path!r})
"""
# The library's verify with investigate=True, in a process started as the deployment host.
VERIFY = """
import json, os, sys, envprint, tensorflow  # importing TensorFlow sets TPU_ML_PLATFORM*: before the snapshot
messages, before = [], dict(os.environ)
report = envprint.verify({path!r}, investigate=True, investigate_timeout=300, progress=messages.append)
same = dict(os.environ) == before
sys.stdout.write(json.dumps({{"report": report.model_dump(mode="json"), "messages": messages, "env_same": same}}))
"""
# A drift on every CPU: Eigen's matrix product, two intra-op threads at save and one at verify.
THREADS_SAVE = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTRAOP_THREADS": "2"}
THREADS_DEPLOY = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTRAOP_THREADS": "1", "TF_DETERMINISTIC_OPS": "1"}
SAVE_WIDE = """
import keras, envprint
init = {{"kernel_initializer": keras.initializers.RandomNormal(seed=1), "bias_initializer": keras.initializers.RandomNormal(seed=2)}}
inp = keras.Input((32768,), name="x")
keras.Model(inp, keras.layers.Dense(16, name="y", **init)(inp)).save({path!r})
envprint.save({path!r})
"""
# The command line's verify --investigate, in a process started the same way.
CLI = "from envprint.cli.app import app; app(['verify', {path!r}, '--investigate', '--investigate-timeout', '300', '--json'])"


@dataclass
class Drift:
    model: Path
    saved: Fingerprint
    report: Report
    results: list[InvestigationResult]
    messages: list[str]
    env_same: bool


def _drift(model: Path, save_code: str, save_env: dict[str, str], deploy: dict[str, str]) -> Drift:
    """Save ``model`` in a child under ``save_env``; verify it with investigate=True in a child under ``deploy``."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed: investigate needs a real one in its child processes")
    done = run_python(save_code.format(path=str(model)), env=save_env, drop=UNSET, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_python(VERIFY.format(path=str(model)), env=deploy, drop=UNSET, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    report = Report.model_validate(out["report"])
    saved = read_fingerprint(model.with_name(model.name + ".envprint") / "fingerprint.json")
    return Drift(model, saved, report, report.investigation, out["messages"], out["env_same"])


@pytest.fixture(scope="module")
def drift(tmp_path_factory) -> Drift:
    found = _drift(
        tmp_path_factory.mktemp("investigate") / "mobilenet.keras", SAVE, {"TF_ENABLE_ONEDNN_OPTS": "1"}, DEPLOY
    )
    if all(o.status == "identical" for o in found.report.outputs):
        pytest.skip("on this CPU oneDNN on and off give the same bits: nothing to investigate")
    return found


@pytest.fixture(scope="module")
def threads_drift(tmp_path_factory) -> Drift:
    model = tmp_path_factory.mktemp("investigate_threads") / "wide.keras"
    found = _drift(model, SAVE_WIDE, THREADS_SAVE, THREADS_DEPLOY)
    assert any(o.status != "identical" for o in found.report.outputs), (
        "two intra-op threads and one gave the same bits on Eigen's 32768-long product: "
        "the drift these tests stand on is gone; find another"
    )
    return found


def run_investigation(model: Path, report: Report, **options) -> list[InvestigationResult]:
    """investigate() on the record as verify reads and checks it."""
    fp_path = locate_fingerprint(model, None)
    saved, _, probes, reference, _, _ = read_checked(fp_path)
    return investigate(model, report, saved=saved, fp_path=fp_path, probes=probes, reference=reference, **options)


def _by_cause(results: list[InvestigationResult]) -> dict[str, InvestigationResult]:
    return {r.cause: r for r in results}


def _threads_setting(saved: Fingerprint) -> str:
    # Only the intra-op count differs on the deployment host: the inter-op one is not restored.
    return f"TF_NUM_INTRAOP_THREADS={saved.threads.tf_intra_op_effective}"


# --------------------------------------------------------------------------- real children


@pytest.mark.subprocess
def test_investigate_confirms_onednn_when_restoring_it_reproduces_the_reference(drift):
    onednn = _by_cause(drift.results)["onednn"]
    assert onednn.status == "confirmed", onednn.detail
    assert onednn.setting == "TF_ENABLE_ONEDNN_OPTS=1"
    assert onednn.detail.startswith("restoring TF_ENABLE_ONEDNN_OPTS=1 reproduces the reference bit for bit")
    assert (onednn.n_differ, onednn.n_out_of_tolerance, onednn.max_ulp) == (0, 0, 0)
    assert onednn.remedy == "export TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow is imported"
    assert "tensorflow.onednn.enabled" in onednn.fields


@pytest.mark.subprocess
def test_investigate_rules_out_threads_when_restoring_them_changes_nothing(drift):
    threads = _by_cause(drift.results)["threads"]
    assert threads.status == "ruled_out", threads.detail
    assert threads.setting == _threads_setting(drift.saved)
    assert f"restoring {threads.setting} changes nothing: outputs bit-identical to the control run" in threads.detail
    assert threads.remedy is None


@pytest.mark.subprocess
def test_the_control_reproduces_the_drift_in_a_fresh_process_and_comes_first(threads_drift):
    control = threads_drift.results[0]
    assert (control.cause, control.status) == ("control", "reproduced"), control.detail
    assert control.setting == "nothing changed (a fresh process)"
    seen = sum(o.n_differ for o in threads_drift.report.outputs)
    assert control.n_differ == seen > 0
    assert control.detail.startswith(f"a fresh process reproduces the drift: {seen} / ")
    # then the confirmed causes, then the ruled out, then the untestable
    order = {"confirmed": 0, "ruled_out": 1, "untestable": 2}
    ranks = [order[r.status] for r in threads_drift.results[1:]]
    assert ranks == sorted(ranks)


@pytest.mark.subprocess
def test_progress_names_each_child_and_its_setting(drift):
    batch1 = all(v == 0 for v in drift.saved.self_check.batch1_max_abs.values())
    assert drift.messages == [
        "investigating 1/3: control, nothing changed (a fresh process)" + (", and batch size 1" if batch1 else ""),
        "investigating 2/3: TF_ENABLE_ONEDNN_OPTS=1",
        f"investigating 3/3: {_threads_setting(drift.saved)}",
    ]


@pytest.mark.subprocess
def test_investigate_leaves_the_environment_as_it_found_it(threads_drift):
    assert threads_drift.env_same


@pytest.mark.subprocess
def test_a_confirmed_cause_leads_the_ranking_and_a_ruled_out_one_drops_out(drift):
    assert drift.report.explanations[0].cause == "onednn"
    assert "threads" not in [x.cause for x in drift.report.explanations]


@pytest.mark.subprocess
def test_the_command_line_gives_the_library_s_investigation(drift):
    done = run_python(CLI.format(path=str(drift.model)), env=DEPLOY, drop=UNSET, timeout=900)
    assert done.returncode == (0 if drift.report.passed else 1), done.stderr[-3000:]
    cli = Report.model_validate_json(done.stdout)
    assert [(r.cause, r.status, r.setting, r.remedy) for r in cli.investigation] == [
        (r.cause, r.status, r.setting, r.remedy) for r in drift.results
    ]
    assert [(x.cause, x.score) for x in cli.explanations] == [(x.cause, x.score) for x in drift.report.explanations]


@pytest.mark.subprocess
def test_results_are_json_records(threads_drift):
    for r in threads_drift.results:
        assert InvestigationResult.model_validate_json(r.model_dump_json()) == r
    assert InvestigationResult.model_json_schema()["properties"]["status"]["enum"] == [
        "confirmed", "ruled_out", "untestable", "reproduced", "not_reproduced",
    ]  # fmt: skip


@pytest.mark.subprocess
def test_a_child_that_overruns_its_timeout_is_killed_and_untestable(threads_drift, monkeypatch):
    for name, value in THREADS_DEPLOY.items():
        monkeypatch.setenv(name, value)
    with fails_after(60, "investigate with a 0.5 s timeout per child"):  # the child must be killed, not awaited
        results = run_investigation(threads_drift.model, threads_drift.report, timeout_s=0.5)
    assert [(r.cause, r.status, r.detail) for r in results] == [
        ("control", "untestable", "timed out after 0.5 s (raise --investigate-timeout); nothing else was run")
    ]


@pytest.mark.subprocess
def test_investigate_writes_only_in_the_temporary_directory_and_removes_it(threads_drift, tmp_path, monkeypatch):
    # The README: verify writes nothing beside the model, --investigate only under $TMPDIR, removed afterwards.
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for name, value in THREADS_DEPLOY.items():
        monkeypatch.setenv(name, value)
    record = sorted(p.name for p in threads_drift.model.parent.rglob("*"))
    during: list[list[str]] = []

    def listing(_message: str) -> None:
        during.append(sorted(p.relative_to(tmp_path).as_posix().split("/", 1)[-1] for p in tmp_path.rglob("*")))

    with fails_after(60, "investigate with a 0.5 s timeout per child"):
        run_investigation(threads_drift.model, threads_drift.report, timeout_s=0.5, progress=listing)
    folder, probes = during[0]  # before the first child: the probes it reads, in envprint-investigate-*/
    assert folder.startswith("envprint-investigate-") and probes == "probes.npz"
    assert list(tmp_path.iterdir()) == []
    assert sorted(p.name for p in threads_drift.model.parent.rglob("*")) == record


@pytest.mark.subprocess
def test_investigate_confirms_the_threads_when_restoring_them_reproduces_the_reference(threads_drift):
    threads = _by_cause(threads_drift.results)["threads"]
    assert threads.status == "confirmed", threads.detail
    assert threads.setting == "TF_NUM_INTRAOP_THREADS=2" == _threads_setting(threads_drift.saved)
    assert threads.detail.startswith(f"restoring {threads.setting} reproduces the reference bit for bit")
    assert (threads.n_differ, threads.n_out_of_tolerance, threads.max_ulp) == (0, 0, 0)
    assert threads_drift.report.explanations[0].cause == "threads"  # confirmed: it leads


@pytest.mark.subprocess
def test_investigate_rules_out_op_determinism_when_restoring_it_changes_nothing(threads_drift):
    determinism = _by_cause(threads_drift.results)["determinism_settings"]
    assert determinism.status == "ruled_out", determinism.detail
    assert determinism.setting == "op determinism: unset TF_DETERMINISTIC_OPS"
    assert (
        f"restoring {determinism.setting} changes nothing: outputs bit-identical to the control run"
        in determinism.detail
    )
    assert determinism.remedy is None
    assert "determinism_settings" not in [x.cause for x in threads_drift.report.explanations]  # ruled out: dropped


@pytest.mark.subprocess
def test_progress_names_each_child_of_the_threads_drift(threads_drift):
    assert threads_drift.messages == [
        "investigating 1/3: control, nothing changed (a fresh process)",
        "investigating 2/3: op determinism: unset TF_DETERMINISTIC_OPS",
        "investigating 3/3: TF_NUM_INTRAOP_THREADS=2",
    ]


# --------------------------------------------------------------------------- no children


def test_identical_outputs_leave_nothing_to_investigate(threads_drift):
    same = [o.model_copy(update={"status": "identical", "n_differ": 0}) for o in threads_drift.report.outputs]
    assert run_investigation(threads_drift.model, threads_drift.report.model_copy(update={"outputs": same})) == []


def test_changed_weights_are_not_investigated(threads_drift):
    report = threads_drift.report.model_copy(update={"identity": IdentityCheck(weights="changed")})
    [only] = run_investigation(threads_drift.model, report)
    assert (only.cause, only.status) == ("control", "untestable")
    assert (
        only.detail == "not investigated: the weights are not the saved model's: no setting can reproduce the reference"
    )


def test_versions_and_the_gpu_of_a_recorded_a100_host_are_untestable_with_their_remedy(threads_drift):
    saved = read_fingerprint(A100)
    env = diff_fingerprints(saved, threads_drift.saved, "a100.json", "current host")
    identity = IdentityCheck(weights="same")
    report = threads_drift.report.model_copy(
        update={"environment": env, "explanations": explain(saved, env, identity, threads_drift.report.outputs)}
    )
    steps = plan(saved, report, "a100.json")
    decided = {s.cause: s for s in steps if isinstance(s, Decided)}
    pins = "envprint env-export a100.json > constraints.txt && pip install -c constraints.txt 'tensorflow==2.15.1'"
    for cause, what in (("tensorflow_version", "TensorFlow"), ("keras_version", "Keras"), ("numpy_version", "NumPy")):
        assert decided[cause].status == "untestable"
        assert (
            decided[cause].detail
            == f"cannot be restored by a process: another {what} is installed here; a process cannot swap it"
        )
        assert decided[cause].remedy == pins
    assert decided["python_version"].remedy == f"uv venv --python 3.11.9, then in it: {pins}"
    assert decided["cuda_stack"].status == "untestable"
    assert decided["device"].detail == "the saved host ran on a GPU (NVIDIA A100-SXM4-40GB) and this host has none"
    threads = next(s for s in steps if isinstance(s, Restore) and s.cause == "threads")
    assert threads.env == {"TF_NUM_INTEROP_THREADS": "32", "TF_NUM_INTRAOP_THREADS": "32"}
    assert not any(s.cause == "seed" for s in steps)  # a seed matters to random layers only, and there are none
    # PYTHONHASHSEED=0 on the saved host is listed, never a numerics difference: no run restores it.
    assert not any("PYTHONHASHSEED" in getattr(s, "env", {}) for s in steps)
    assert "env.variables.PYTHONHASHSEED" in [e.path for e in env.entries if not e.numerics]


@pytest.mark.parametrize(
    ("restored", "status", "words"),
    [
        (Numbers(40, 0, 0, 0.0, 0), "confirmed", "reproduces the reference bit for bit"),
        (Numbers(40, 30, 0, 1e-7, 3), "confirmed", "brings every element within tolerance"),
        (Numbers(40, 40, 10, 1e-6, 100), "confirmed", "accounts for part of the drift"),
        (Numbers(40, 40, 12, 1e-5, 700), "ruled_out", "changes the outputs but not toward the reference"),
    ],
)
def test_a_restored_run_is_judged_against_the_control(restored, status, words):
    control = Numbers(40, 40, 12, 1e-5, 700)
    assert judge("restoring X", restored, control, same_as_control=False)[0] == status
    assert words in judge("restoring X", restored, control, same_as_control=False)[1]


# --------------------------------------------------------------------------- env-export

A100_PINS = """\
absl-py==2.1.0
h5py==3.11.0
keras==2.15.0
ml-dtypes==0.3.2
numpy==1.26.4
nvidia-cublas-cu12==12.2.5.6
nvidia-cuda-runtime-cu12==12.2.140
nvidia-cudnn-cu12==8.9.4.25
nvidia-nccl-cu12==2.16.5
protobuf==4.25.3
pydantic==2.7.1
tensorflow==2.15.1
typer==0.12.3
"""
A100_HEADER = """\
# pip constraints: the distributions installed on the host that saved this fingerprint
# written by envprint 0.1.0 at 2026-10-02T14:03:11Z on CPython 3.11.9, Linux x86_64 (glibc 2.35)
# TensorFlow 2.15.1 (tensorflow, CUDA 12.2 / cuDNN 8), Keras 2.15.0 (keras2)
# use: pip install -c constraints.txt 'tensorflow==2.15.1'  (pins versions; installs only what is asked)
"""


def test_env_export_pins_every_installed_distribution_of_the_saved_host():
    text = env_export(read_fingerprint(A100), python_version="3.11.4", system="Linux", machine="x86_64")
    assert text == A100_HEADER + A100_PINS


def test_env_export_warns_when_this_python_or_platform_cannot_take_the_pins():
    text = env_export(read_fingerprint(A100), python_version="3.12.1", system="Darwin", machine="arm64")
    assert (
        text
        == A100_HEADER
        + (
            "# NOTE: this Python is 3.12.1, but these pins were installed under Python 3.11.9: binary wheels "
            "(TensorFlow's among them) may not exist for 3.12; install into a Python 3.11 environment "
            "(e.g. uv venv --python 3.11.9)\n"
            "# NOTE: saved on Linux x86_64, this host is Darwin arm64: platform-specific pins "
            "(CUDA wheels, TensorFlow's distribution) may not install here\n"
        )
        + A100_PINS
    )


def test_env_export_keeps_a_version_pip_cannot_read_as_a_comment():
    fp = read_fingerprint(A100)
    odd = fp.model_copy(update={"packages": fp.packages.model_copy(update={"installed": {"weird": "not a version"}})})
    text = env_export(odd, python_version="3.11.9", system="Linux", machine="x86_64")
    assert text.endswith("# weird 'not a version': not a PEP 440 version, cannot be pinned\n")


def test_install_command_exports_then_installs_the_saved_tensorflow_under_the_constraints():
    assert install_command(read_fingerprint(A100), "model.keras.envprint/fingerprint.json") == (
        "envprint env-export model.keras.envprint/fingerprint.json > constraints.txt && "
        "pip install -c constraints.txt 'tensorflow==2.15.1'"
    )
