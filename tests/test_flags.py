"""Every documented flag of the command line, each by a test that fails if the flag were ignored.

One test (or two) per flag of the README's "Command line" and ``--help``, on the session's small
models (tests/conftest.py), through the real CLI. Each asserts what only the flag can cause: a
value recorded that the default would not record, an exit code or verdict that the default would
not give. Where the flag matters only when outputs drift (verify's tolerances, the record's
tolerance policy, --investigate and its timeout), the drift is one every CPU makes: a wide Dense
layer saved by a child with two intra-op threads and verified by children with one, oneDNN off
on both sides so that Eigen does the product (its blocking follows the thread count; see
tests/test_investigate.py). Those commands run as real ``python -m envprint`` processes, two at
a time, once for the module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from envhelpers import Done, invoke, run_two_at_a_time

from envprint.errors import ExitCode
from envprint.record.store import read_fingerprint

REPO = Path(__file__).resolve().parent.parent


def copy_into(src: Path, folder: Path, name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / (name or src.name)
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)
    return dest


def record_of(model: Path):
    return read_fingerprint(model.with_name(model.name + ".envprint") / "fingerprint.json")


def arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# --------------------------------------------------------------------------- save


def test_save_probe_seed_is_recorded_and_draws_other_probes(mlp, tmp_path):
    model = copy_into(mlp["keras"], tmp_path)
    assert invoke("save", model, "--out", tmp_path / "seed0").exit_code == 0
    r = invoke("save", model, "--out", tmp_path / "seed7", "--probe-seed", 7, "--num-probes", 3)
    assert r.exit_code == 0, r.stderr
    fp = read_fingerprint(tmp_path / "seed7" / "fingerprint.json")
    assert (fp.probes.source, fp.probes.seed, fp.probes.num_probes) == ("generated", 7, 3)
    default = arrays(tmp_path / "seed0" / "probes.npz")["features"]
    seven = arrays(tmp_path / "seed7" / "probes.npz")["features"]
    assert (default.shape, seven.shape) == ((8, 4), (3, 4))
    assert not np.array_equal(default[:3], seven)


@pytest.fixture(scope="module")
def sequence_model(keras, save, models_dir) -> Path:
    """seq (None, None, 3) -> mean over time -> Dense(2): a dimension besides the batch is dynamic."""
    inp = keras.Input((None, 3), name="seq")
    x = keras.layers.GlobalAveragePooling1D(name="mean")(inp)
    out = keras.layers.Dense(2, name="out", kernel_initializer=keras.initializers.GlorotUniform(seed=9))(x)
    return save(keras.Model(inp, out), models_dir / "sequence", ("keras",))["keras"]


def test_save_input_shape_fills_a_dynamic_dimension(sequence_model, tmp_path):
    model = copy_into(sequence_model, tmp_path)
    refused = invoke("save", model)
    assert refused.exit_code == ExitCode.FINGERPRINT, refused.output
    assert "--input-shape seq=D1,D2" in refused.stderr
    r = invoke("save", model, "--input-shape", "seq=5,3")
    assert r.exit_code == 0, r.stderr
    fp = record_of(model)
    assert [(s.name, s.shape) for s in fp.probes.inputs] == [("seq", [8, 5, 3])]
    assert arrays(model.with_name("model.keras.envprint") / "probes.npz")["seq"].shape == (8, 5, 3)
    assert invoke("verify", model).exit_code == 0


def test_save_seed_is_declared_in_the_record(mlp, tmp_path):
    model = copy_into(mlp["keras"], tmp_path)
    assert invoke("save", model, "--seed", 1234).exit_code == 0
    assert record_of(model).seeds.declared == 1234


def test_save_json_prints_what_it_wrote(mlp, tmp_path):
    import hashlib
    import json

    model = copy_into(mlp["keras"], tmp_path)
    r = invoke("save", model, "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)  # one document: the sidecar, each file written and its sha256
    written = model.with_name("model.keras.envprint") / "fingerprint.json"
    assert summary["written"]["fingerprint.json"] == hashlib.sha256(written.read_bytes()).hexdigest()


def test_save_and_verify_format_override_the_suffix(mlp, tmp_path):
    model = copy_into(mlp["tflite"], tmp_path, "model.bin")
    unknown = invoke("save", model)
    assert unknown.exit_code == ExitCode.MODEL, unknown.output
    assert "unknown model format (suffix '.bin')" in unknown.stderr
    r = invoke("save", model, "--format", "tflite")
    assert r.exit_code == 0, r.stderr
    assert record_of(model).model.format == "tflite"
    assert invoke("verify", model).exit_code == 0  # the record says how to read it
    # verify's own --format wins over the record's: read as a .keras archive, a TFLite file cannot load
    wrong = invoke("verify", model, "--format", "keras")
    assert wrong.exit_code == ExitCode.MODEL, wrong.output
    assert wrong.stderr.startswith("envprint: error: ") and wrong.stderr.count("\n") == 1


def test_save_format_keras_loads_an_archive_under_another_name(mlp, tmp_path):
    # Keras 3 picks the format from the file name; --format keras must win over the suffix.
    model = copy_into(mlp["keras"], tmp_path, "model.bin")
    r = invoke("save", model, "--format", "keras")
    assert r.exit_code == 0, r.stderr
    assert record_of(model).model.format == "keras"
    r = invoke("verify", model, "--format", "keras", "--json")
    assert (r.exit_code, json.loads(r.stdout)["verdict"]) == (0, "identical"), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "model.bin.envprint"]  # nothing left behind


@pytest.fixture(scope="module")
def two_signatures(tf, models_dir) -> Path:
    """A SavedModel with two signatures of the same shape: serving_default gives x @ w, 'tripled' 3 x @ w."""

    class TwoWays(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_normal((4, 3), seed=(1, 2)))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
        def plain(self, features):
            return {"out": tf.matmul(features, self.w)}

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
        def tripled(self, features):
            return {"out": 3.0 * tf.matmul(features, self.w)}

    module = TwoWays()
    path = models_dir / "two_signatures"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.plain, "tripled": module.tripled})
    return path


def test_save_and_verify_signature_choose_the_function_that_runs(two_signatures, tmp_path):
    model = copy_into(two_signatures, tmp_path)
    r = invoke("save", model, "--signature", "tripled")
    assert r.exit_code == 0, r.stderr
    fp = read_fingerprint(model / "assets.extra" / "envprint" / "fingerprint.json")
    assert fp.model.signature == "tripled"
    assert invoke("verify", model).exit_code == 0  # verify runs the signature the record names
    # --signature serving_default runs the other function: its outputs are a third of the reference's
    r = invoke("verify", model, "--signature", "serving_default", "--json")
    assert r.exit_code == ExitCode.DIFFERENT, r.stderr
    report = json.loads(r.stdout)
    assert report["verdict"] == "mismatch"
    assert [(o["name"], o["n_differ"]) for o in report["outputs"]] == [("out", 24)]


def test_save_and_verify_custom_objects_load_an_unregistered_layer(custom_layer, tmp_path, monkeypatch):
    saved, src = custom_layer
    model = copy_into(saved["keras"], tmp_path)
    unknown = invoke("save", model)
    assert unknown.exit_code == ExitCode.MODEL, unknown.output
    assert "pass --custom-objects package.module:Doubler" in unknown.stderr
    monkeypatch.syspath_prepend(str(src))
    spec = "envprint_test_custom_layers:Doubler"
    r = invoke("save", model, "--custom-objects", spec)
    assert r.exit_code == 0, r.stderr
    assert invoke("verify", model).exit_code == ExitCode.MODEL  # verify needs it too
    r = invoke("verify", model, "--custom-objects", spec, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["verdict"] == "identical"


def test_save_and_verify_unsafe_load_a_lambda_layer(lambda_model, tmp_path):
    model = copy_into(lambda_model["keras"], tmp_path)
    assert invoke("save", model).exit_code == ExitCode.MODEL  # safe mode refuses Python code
    r = invoke("save", model, "--unsafe")
    assert r.exit_code == 0, r.stderr
    refused = invoke("verify", model)
    assert refused.exit_code == ExitCode.MODEL, refused.output
    assert "pass --unsafe if you trust this file" in refused.stderr
    r = invoke("verify", model, "--unsafe", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["verdict"] == "identical"


def test_save_tolerances_become_the_record_policy(mlp, tmp_path):
    model = copy_into(mlp["keras"], tmp_path)
    assert invoke("save", model, "--rtol", "0.25", "--atol", "0.5").exit_code == 0
    policy = record_of(model).tolerance
    assert (policy.exact, policy.rtol, policy.atol) == (False, 0.25, 0.5)
    plain = copy_into(mlp["keras"], tmp_path / "plain")
    assert invoke("save", plain).exit_code == 0
    default = record_of(plain).tolerance
    assert (default.exact, default.rtol, default.atol) == (False, None, None)  # the per-dtype defaults


# --------------------------------------------------------------------------- verify


def test_verify_fingerprint_finds_a_record_kept_elsewhere(mlp, tmp_path):
    model = copy_into(mlp["keras"], tmp_path / "deploy")
    assert invoke("save", model, "--out", tmp_path / "records" / "mlp").exit_code == 0
    assert invoke("verify", model).exit_code == ExitCode.FINGERPRINT  # nothing beside the model
    for where in (tmp_path / "records" / "mlp", tmp_path / "records" / "mlp" / "fingerprint.json"):
        r = invoke("verify", model, "--fingerprint", where, "--json")
        assert r.exit_code == 0, r.stderr
        report = json.loads(r.stdout)
        assert (report["verdict"], report["fingerprint"]) == (
            "identical",
            str(tmp_path / "records" / "mlp" / "fingerprint.json"),
        )


UNSET = ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TF_DETERMINISTIC_OPS")
SAVE_HOST = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTRAOP_THREADS": "2"}
DEPLOY_HOST = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_NUM_INTRAOP_THREADS": "1"}


def _envprint(runs: dict[str, list[str]], host: dict[str, str], cwd: Path) -> dict[str, Done]:
    """``python -m envprint ARGS`` for each entry, two at a time, under the environment of ``host``."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(host, TF_CPP_MIN_LOG_LEVEL="3")
    argvs = {key: [sys.executable, "-m", "envprint", *args] for key, args in runs.items()}
    return run_two_at_a_time(argvs, env, cwd, timeout=600)


@pytest.fixture(scope="module")
def drifted(keras, tmp_path_factory) -> dict[str, Done]:
    """The wide model saved under two threads, then verified under one with each flag, once for the module."""
    root = tmp_path_factory.mktemp("flags_drift")
    init = {
        "kernel_initializer": keras.initializers.RandomNormal(seed=1),
        "bias_initializer": keras.initializers.RandomNormal(seed=2),
    }
    inp = keras.Input((32768,), name="x")
    wide = keras.Model(inp, keras.layers.Dense(16, name="y", **init)(inp))
    (root / "policy").mkdir()
    wide.save(root / "wide.keras")
    shutil.copy2(root / "wide.keras", root / "policy" / "wide.keras")
    saves = _envprint(
        {"plain": ["save", "wide.keras"], "policy": ["save", "policy/wide.keras", "--rtol", "0", "--atol", "0"]},
        SAVE_HOST,
        root,
    )
    for run in saves.values():
        assert run.returncode == 0, run
    return _envprint(
        {
            "investigate": ["verify", "wide.keras", "--investigate", "--json"],
            "zero": ["verify", "wide.keras", "--rtol", "0", "--atol", "0", "--json"],
            "exact": ["verify", "wide.keras", "--exact", "--json"],
            "policy": ["verify", "policy/wide.keras", "--json"],
            "policy_overridden": ["verify", "policy/wide.keras", "--rtol", "0.01", "--atol", "0.01", "--json"],
            "timeout": ["verify", "wide.keras", "--investigate", "--investigate-timeout", "0.5", "--json"],
        },
        DEPLOY_HOST,
        root,
    )


@pytest.mark.subprocess
def test_a_drift_within_the_default_tolerance_passes_with_exit_0(drifted):
    run = drifted["investigate"]
    assert run.returncode == 0, run
    [output] = run.json["outputs"]
    assert (run.json["verdict"], output["status"], output["n_out_of_tolerance"]) == (
        "within_tolerance",
        "within_tolerance",
        0,
    ), run
    assert output["n_differ"] > 0


@pytest.mark.subprocess
def test_verify_rtol_and_atol_judge_the_outputs(drifted):
    run = drifted["zero"]
    assert run.returncode == ExitCode.DIFFERENT, run
    [output] = run.json["outputs"]
    assert run.json["verdict"] == "mismatch"
    assert output["n_out_of_tolerance"] == output["n_differ"] > 0


@pytest.mark.subprocess
def test_verify_exact_demands_bit_equality(drifted):
    run = drifted["exact"]
    assert run.returncode == ExitCode.DIFFERENT, run
    assert run.json["verdict"] == "mismatch"


@pytest.mark.subprocess
def test_the_tolerance_given_at_save_is_the_policy_verify_applies(drifted):
    run = drifted["policy"]
    assert run.returncode == ExitCode.DIFFERENT, run  # rtol=0, atol=0 from the record, not the defaults
    assert run.json["verdict"] == "mismatch"


@pytest.mark.subprocess
def test_verify_tolerances_override_the_record_policy(drifted):
    run = drifted["policy_overridden"]
    assert run.returncode == 0, run
    assert run.json["verdict"] == "within_tolerance"


@pytest.mark.subprocess
def test_verify_investigate_confirms_the_setting_that_reproduces_the_reference(drifted):
    run = drifted["investigate"]
    found = [(r["cause"], r["status"]) for r in run.json["investigation"]]
    assert found == [("control", "reproduced"), ("threads", "confirmed")], run
    assert run.stderr.splitlines() == [
        "envprint: investigating 1/2: control, nothing changed (a fresh process)",
        "envprint: investigating 2/2: TF_NUM_INTRAOP_THREADS=2",  # only the count that differs
    ], run


@pytest.mark.subprocess
def test_verify_investigate_timeout_bounds_each_child(drifted):
    run = drifted["timeout"]
    assert run.returncode == 0, run  # the verdict stands (within tolerance); only the investigation gave up
    assert [(r["cause"], r["status"], r["detail"]) for r in run.json["investigation"]] == [
        ("control", "untestable", "timed out after 0.5 s (raise --investigate-timeout); nothing else was run")
    ], run


# --------------------------------------------------------------------------- env-export, show, schema, --debug


def test_env_export_pins_this_hosts_packages_from_a_record(mlp, tmp_path):
    from importlib import metadata

    model = copy_into(mlp["keras"], tmp_path)
    assert invoke("save", model).exit_code == 0
    for where in (
        model.with_name("model.keras.envprint"),
        model.with_name("model.keras.envprint") / "fingerprint.json",
    ):
        r = invoke("env-export", where)
        assert r.exit_code == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == "# pip constraints: the distributions installed on the host that saved this fingerprint"
        assert f"numpy=={metadata.version('numpy')}" in lines
        assert f"pydantic=={metadata.version('pydantic')}" in lines
        # What a model's numerics depend on, not the installer's tools nor envprint itself: named, not pinned.
        tools = ("envprint", "pip", "setuptools", "wheel")
        assert [line for line in lines if line.split("==")[0] in tools] == []
        assert (
            "# not pinned: "
            + ", ".join(f"{name} {metadata.version(name)}" for name in tools)
            + " (installers and envprint itself do not change a model's numerics)"
        ) in lines


def test_show_all_lists_every_installed_distribution():
    from importlib import metadata

    folded = invoke("show", "--no-tensorflow")
    assert folded.exit_code == 0, folded.stderr
    assert "--all to list" in folded.stdout and "installed.numpy" not in folded.stdout
    listed = invoke("show", "--no-tensorflow", "--all")
    assert listed.exit_code == 0, listed.stderr
    assert "--all to list" not in listed.stdout
    assert f"installed.numpy {metadata.version('numpy')}" in " ".join(listed.stdout.split())


@pytest.mark.subprocess
def test_show_no_tensorflow_never_imports_it():
    code = (
        "import sys\n"
        "from envprint.cli.app import app\n"
        "try:\n    app(['show', '--no-tensorflow', '--json'])\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "sys.stderr.write(repr(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "[]"), done.stderr
    fp = json.loads(done.stdout)
    assert fp["tensorflow"] is None
    assert "tensorflow" in fp["unavailable"]


def test_show_seed_declares_it():
    r = invoke("show", "--no-tensorflow", "--seed", "77", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["seeds"]["declared"] == 77
    # without it, whatever this process declared before (envprint.seed_everything in another test), not 77
    r = invoke("show", "--no-tensorflow", "--json")
    assert json.loads(r.stdout)["seeds"]["declared"] != 77


def test_schema_writes_the_committed_schemas(tmp_path):
    out = tmp_path / "schemas"
    r = invoke("schema", "--out", out)
    assert r.exit_code == 0, r.stderr
    committed = sorted(p.name for p in (REPO / "schemas").glob("*.json"))
    assert sorted(p.name for p in out.iterdir()) == committed
    assert sorted(r.stdout.splitlines()) == [f"wrote {out / name}" for name in committed]
    for name in committed:
        assert (out / name).read_bytes() == (REPO / "schemas" / name).read_bytes(), name
    assert invoke("schema", "--out", out, "--check").exit_code == 0


def test_debug_adds_the_traceback_to_the_one_line(tmp_path):
    missing = tmp_path / "nope.json"
    plain = invoke("diff", missing, missing)
    debug = invoke("--debug", "diff", missing, missing)
    assert plain.exit_code == debug.exit_code == ExitCode.FINGERPRINT
    assert "Traceback" not in plain.stderr and plain.stderr.count("\n") == 1
    assert debug.stderr.startswith("Traceback (most recent call last):"), debug.stderr
    assert debug.stderr.endswith(plain.stderr)  # the same one line, after the traceback


def test_verify_preflight_predicts_the_drift_a_saved_gpu_host_leaves_here(mlp, tmp_path):
    # The model must exist (checked before the record), but preflight never loads it.
    a100 = Path(__file__).resolve().parent / "fixtures" / "handmade_gpu_host_a100.json"
    r = invoke("verify", copy_into(mlp["keras"], tmp_path), "--preflight", "--fingerprint", a100, "--json")
    assert r.exit_code == 1, r.stderr  # a GPU record on this CPU host: a precision change beyond tolerance
    data = json.loads(r.stdout)
    assert (data["a"], data["b"]) == (str(a100), "current host")
    expected = {e["cause"] for e in data["expectations"]}
    assert {"tensorflow_version", "keras_version", "device", "cuda_stack"} <= expected, expected


# --------------------------------------------------------------------------- TF_CPP_MIN_LOG_LEVEL


def _cli_with_log_level(level: str | None, *args: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    # oneDNN on, so that TensorFlow logs its notice before absl is initialised (off by default on AVX2-only CPUs)
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    argv = [sys.executable, "-m", "envprint", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.subprocess
def test_a_users_tf_cpp_min_log_level_of_2_keeps_tensorflows_start_up_lines_off_stderr(mlp, tmp_path):
    """The value users export to quiet TensorFlow hides its INFO and WARNING lines, the early ones included."""
    model = copy_into(mlp["tflite"], tmp_path)
    assert invoke("save", model).exit_code == ExitCode.OK
    done = _cli_with_log_level("2", "verify", model)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout.startswith("envprint verify: PASSED (bit-identical)\n")
    # Level 0 asks for everything TensorFlow logs: the oneDNN notice and TFLite's delegate line come through.
    done = _cli_with_log_level("0", "verify", model)
    assert done.returncode == 0
    assert "oneDNN custom operations are on" in done.stderr
    assert "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." in done.stderr


def test_tf_cpp_min_log_level_is_read_as_tensorflow_reads_it():
    from envprint.cli.streams import cpp_log_severity, min_log_level

    assert min_log_level({}) == 3  # envprint's default: none of TensorFlow's start-up lines
    assert [min_log_level({"TF_CPP_MIN_LOG_LEVEL": v}) for v in ("0", "1", " 2", "3", "9", "2x", "x", "")] == [
        0, 1, 2, 3, 3, 2, 0, 3,
    ]  # fmt: skip
    assert min_log_level({"TF_CPP_MIN_LOG_LEVEL": "3"}, debug=True) == 0
    lines = {
        b"I0000 00:00:1700000000.123456   42 port.cc:153] oneDNN custom operations are on.\n": 0,
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n": 1,
        b"2024-01-01 12:00:00.123456: W tensorflow/core/framework/op_kernel.cc:1] slow\n": 1,
        b"E0000 00:00:1700000000.1 42 cuda_dnn.cc:8] Unable to register cuDNN factory\n": 2,
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n": 0,
        b"F0000 00:00:1700000000.1 42 check.cc:1] Check failed\n": None,  # a crash's explanation is always shown
        b"envprint: error: model.keras: no such file\n": None,
    }
    assert {line: cpp_log_severity(line) for line in lines} == lines


@pytest.mark.subprocess
def test_show_gives_a_reason_once_and_points_back_to_it():
    """Without TensorFlow, its reason is the TensorFlow row's; the thread and device rows say so, not again in full."""
    code = "from envprint.cli.app import app\napp(['show', '--no-tensorflow'])\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    tensorflow = next(line for line in done.stdout.splitlines() if line.startswith("(absent)"))
    reason = tensorflow.removeprefix("(absent)").strip()
    assert reason and done.stdout.count(reason) == 1, done.stdout
    assert "tf_intra_op            (absent: as TensorFlow above)" in done.stdout, done.stdout
