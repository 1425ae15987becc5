"""The contract machines and people read (issue 12): exit codes row by row, JSON on every path,
the tolerance you would need, output a person reads, and the report in a server."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from envhelpers import invoke
from jsoncheck import CHECKED, check_json_output
from servers import free_port

import envprint
from envprint.check.compare import compare_output
from envprint.check.tolerance import tolerance_from_report
from envprint.errors import ExitCode, FingerprintError, UsageError, one_line, open_user_file
from envprint.models import DiffEntry, FingerprintDiff, IdentityCheck, ModelDifference, Report, Tolerance
from envprint.record.store import canonical_json, read_fingerprint

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / "tests" / "fixtures" / "handmade_gpu_host_a100.json"


def saved_copy(src: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / src.name
    shutil.copy2(src, model)
    envprint.save(model)
    return model


@pytest.fixture(scope="module")
def saved(mlp, tmp_path_factory) -> Path:
    """The MLP as a .keras file with its record beside it."""
    return saved_copy(mlp["keras"], tmp_path_factory.mktemp("contract"))


@pytest.fixture(scope="module")
def cpu_json(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fp") / "cpu.json"
    path.write_text(canonical_json(envprint.capture()))
    return path


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh `envprint` process, without a TF_CPP_MIN_LOG_LEVEL of the test runner's."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, **extra}


# --------------------------------------------------------------------------- exit codes, row by row


def documented_exit_codes() -> dict[int, str]:
    """The table of docs/reference/exit-codes.md (generated from ExitCode by scripts/gen_reference.py)."""
    text = (ROOT / "docs" / "reference" / "exit-codes.md").read_text()
    table = text[text.index("| exit | name | kind | meaning |") :].split("\n\n", 1)[0]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (.*) \|$", table, flags=re.M)}


def test_every_row_of_the_documented_exit_code_table_comes_from_a_real_command(saved, cpu_json, tmp_path, monkeypatch):
    rows = documented_exit_codes()
    assert sorted(rows) == sorted(int(code) for code in ExitCode)
    produced = {
        0: invoke("verify", saved),
        1: invoke("diff", GPU, cpu_json),
        2: invoke("verify", saved, "--format", "onnx"),
        3: invoke("diff", tmp_path / "nope.json", cpu_json),
        4: invoke("verify", tmp_path / "nope.keras"),
        6: invoke("verify", saved, "--endpoint", f"http://127.0.0.1:{free_port()}/v1/models/m"),  # nothing listens
    }
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "tensorflow", None)  # a host where TensorFlow cannot be imported
        produced[5] = invoke("verify", saved)
    with monkeypatch.context() as m:

        def broken(*args, **kwargs):
            raise KeyError("a bug")

        m.setattr("envprint.causes.explain.expect", broken)
        produced[70] = invoke("diff", GPU, cpu_json)
    assert sorted(produced) == sorted(rows)
    for code, r in produced.items():
        assert r.exit_code == code, (code, rows[code], r.output, r.stderr)
        if code >= 2:  # could not check: one line on stderr, never a result on stdout
            assert r.stderr.count("\n") == (4 if code == 2 else 1) and r.stdout == "", (code, r.stderr)
    assert produced[2].stderr.endswith(
        "Error: Invalid value for '--format': 'onnx' is not one of keras, h5, savedmodel, tflite\n"
    )
    assert produced[5].stderr.startswith("envprint: error: TensorFlow is not importable")
    assert produced[70].stderr == (
        "envprint: internal error: KeyError: 'a bug' (rerun with --debug for the traceback and report it)\n"
    )


@pytest.mark.parametrize("preflight", [(), ("--preflight",)])
def test_a_missing_model_is_exit_4_no_such_file_before_the_record_is_looked_for(preflight, tmp_path):
    r = invoke("verify", tmp_path / "nope.keras", *preflight)
    assert r.exit_code == ExitCode.MODEL
    assert (
        r.stderr
        == f"envprint: error: {tmp_path / 'nope.keras'}: no such file or directory; check the path of the model\n"
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("save", "m.keras", "--num-probes", "0"), "Error: Invalid value for '--num-probes': Input should be greater than or equal to 1\n"),
        (("verify", "m.keras", "--custom-objects", "layers.Doubler"),
         "Error: Invalid value for '--custom-objects': 'layers.Doubler': expected package.module:NAME, e.g. mypkg.layers:MyLayer\n"),
        (("save", "m.keras", "--format", "onnx"), "Error: Invalid value for '--format': 'onnx' is not one of keras, h5, savedmodel, tflite\n"),
        (("verify", "m.keras", "--atol", "-1"), "envprint: error: --atol must be a number >= 0, got -1.0\n"),
        (("save", "m.keras", "--rtol", "-0.1"), "envprint: error: --rtol must be a number >= 0, got -0.1\n"),
    ],
)  # fmt: skip
def test_usage_mistakes_exit_2_before_any_work(args, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # m.keras does not exist: the usage is refused before it is looked for
    r = invoke(*args)
    assert r.exit_code == ExitCode.USAGE, r.stderr
    assert r.stderr.endswith(says)


def test_the_library_refuses_zero_probes_as_a_usage_error(tmp_path):
    with pytest.raises(UsageError) as err:
        envprint.save(tmp_path / "m.keras", num_probes=0)
    assert str(err.value) == "--num-probes must be at least 1, got 0"


def run_cli(*args: object, env: dict[str, str] | None = None, close_stdout: bool = False) -> tuple[int, str, str]:
    """``python -m envprint ARGS`` in a fresh process; with ``close_stdout`` its reader leaves at once."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "envprint", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or cli_env(),
    )
    if close_stdout:
        proc.stdout.close()  # like `| head -0`: every write to stdout now fails with EPIPE
        stderr = proc.stderr.read()
        out = b""
    else:
        out, stderr = proc.communicate(timeout=300)
    return proc.wait(timeout=300), out.decode(), stderr.decode()


@pytest.mark.subprocess
def test_a_closed_pipe_keeps_the_result_exit_code_and_prints_nothing(saved, cpu_json):
    assert run_cli("diff", GPU, cpu_json, "--all", close_stdout=True) == (1, "", "")
    assert run_cli("diff", cpu_json, cpu_json, close_stdout=True) == (0, "", "")
    assert run_cli("verify", saved, close_stdout=True) == (0, "", "")


# --------------------------------------------------------------------------- JSON on every path


def test_verify_json_when_the_record_is_missing_is_an_error_document(mlp, tmp_path):
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    r = invoke("verify", model, "--json")
    assert r.exit_code == ExitCode.FINGERPRINT
    message = (
        f"{model}.envprint/fingerprint.json: no fingerprint beside the model; run 'envprint save {model}' on the "
        "training host, or pass --fingerprint PATH"
    )
    assert json.loads(r.stdout) == {
        "error": {"exit_code": 3, "kind": "fingerprint", "message": message},
        "passed": False,
        "schema_minor": 2,  # 2: kind "endpoint"
        "schema_version": 1,
        "verdict": "error",
    }
    assert r.stderr == f"envprint: error: {message}\n"


@pytest.mark.parametrize(
    ("args", "code", "kind"),
    [
        (("diff", "nope.json", "--current", "--json"), 3, "fingerprint"),
        (("save", "nope.keras", "--json"), 4, "model"),
        (("verify", "m.keras", "--format", "onnx", "--json"), 2, "usage"),
        (("diff", "a.json", "b.json", "--current", "--json"), 2, "usage"),
        (("show", "--seed", "seven", "--json"), 2, "usage"),
    ],
)
def test_every_command_prints_one_json_document_when_it_cannot_run(args, code, kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke(*args)
    assert r.exit_code == code
    document = json.loads(r.stdout)
    assert (document["verdict"], document["passed"], document["error"]["kind"]) == ("error", False, kind)
    assert document["error"]["message"] in r.stderr


def test_save_json_says_what_was_written_with_digests_and_the_self_check(mlp, tmp_path):
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    r = invoke("save", model, "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    sidecar = Path(summary["sidecar"])
    assert sidecar == model.with_name("model.keras.envprint")
    assert sorted(summary["written"]) == ["fingerprint.json", "probes.npz", "reference.npz"]
    for name, digest in summary["written"].items():
        assert hashlib.sha256((sidecar / name).read_bytes()).hexdigest() == digest
    assert summary["self_check"]["deterministic"] is True and summary["signed"] is False
    assert summary["model"]["name"] == "model.keras" and summary["probes"]["num_probes"] == 8


def test_verify_json_carries_passed_beside_the_verdict(saved):
    r = invoke("verify", saved, "--json")
    assert r.exit_code == 0
    report = json.loads(r.stdout)
    assert (report["verdict"], report["passed"], report["schema_version"]) == ("identical", True, 2)
    with pytest.raises(ValueError, match="passed=True contradicts verdict 'mismatch'"):
        Report.model_validate({**report, "verdict": "mismatch"})


def test_every_json_document_the_suite_prints_is_checked_against_the_schemas(cpu_json):
    before = len(CHECKED)
    assert invoke("diff", cpu_json, cpu_json, "--json").exit_code == 0
    assert CHECKED[before:] == [(["diff", str(cpu_json), str(cpu_json), "--json"], "diff")]
    with pytest.raises(AssertionError, match="printed no JSON"):
        check_json_output(["verify", "m.keras", "--json"], "", 3)
    with pytest.raises(json.JSONDecodeError):  # two documents are not one
        check_json_output(["diff", "a", "b", "--json"], '{"a": 1}\n{"b": 2}\n', 1)
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        check_json_output(["verify", "m.keras", "--json"], '{"verdict": "error", "passed": false}', 3)


# --------------------------------------------------------------------------- the tolerance you would need


def drifted(scale: float = 3e-5) -> tuple[np.ndarray, np.ndarray]:
    e = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)
    o = e.copy()
    o[1, 2] *= np.float32(1 + scale)
    o[3, 7] += np.float32(2e-6)
    return e, o


def test_the_rtol_and_atol_needed_are_the_smallest_that_pass():
    e, o = drifted()
    strict = Tolerance(rtol=1e-7, atol=1e-7)
    c = compare_output("logits", e, o, strict)
    assert c.status == "mismatch" and c.rtol_needed > 0 and c.atol_needed > 0
    assert compare_output("logits", e, o, Tolerance(rtol=c.rtol_needed, atol=1e-7)).status == "within_tolerance"
    assert compare_output("logits", e, o, Tolerance(rtol=c.rtol_needed * 0.99, atol=1e-7)).status == "mismatch"
    assert compare_output("logits", e, o, Tolerance(rtol=0.0, atol=c.atol_needed)).status == "within_tolerance"
    assert compare_output("logits", e, o, Tolerance(rtol=0.0, atol=c.atol_needed * 0.99)).status == "mismatch"
    assert c.atol_needed == pytest.approx(float(np.max(np.abs(o.astype(np.float64) - e))), rel=1e-12)


def test_no_tolerance_is_needed_when_identical_and_none_passes_when_nan_appears_or_zero_moves():
    e, _ = drifted()
    same = compare_output("logits", e, e.copy(), Tolerance())
    assert (same.rtol_needed, same.atol_needed) == (0.0, 0.0)
    nan = e.copy()
    nan[0, 0] = np.nan
    c = compare_output("logits", e, nan, Tolerance())
    assert (c.rtol_needed, c.atol_needed) == (None, None)
    zero = np.zeros((2, 3), np.float32)
    moved = zero.copy()
    moved[1, 1] = 1e-3
    c = compare_output("y", zero, moved, Tolerance(rtol=1e-4, atol=1e-6))
    assert c.rtol_needed is None and c.atol_needed == pytest.approx(1e-3, rel=1e-6)
    ints = compare_output("ids", np.arange(4), np.arange(4) + 1, Tolerance())
    assert (ints.rtol_needed, ints.atol_needed, ints.top5_agreement) == (None, None, None)


def test_top5_agreement_counts_probes_whose_five_best_classes_are_the_same_set():
    e = np.tile(np.arange(10, dtype=np.float32), (4, 1))  # class 9 best, then 8, 7, 6, 5 ...
    o = e.copy()
    o[0, [5, 4]] = o[0, [4, 5]]  # probe 0: 4 enters the top five, 5 leaves it
    o[1, [9, 8]] = o[1, [8, 9]]  # probe 1: the order inside the top five changes, the set does not
    c = compare_output("logits", e, o, Tolerance())
    assert (c.top1_agreement, c.top5_agreement) == (0.75, 0.75)
    small = compare_output("p", e[:, :5], o[:, :5], Tolerance())
    assert small.top5_agreement is None  # five classes or fewer: every probe's top five agree


def report_of(*outputs, **fields) -> Report:
    identity = fields.pop("identity", IdentityCheck(weights="same", model_name="model.keras"))
    environment = fields.pop("environment", FingerprintDiff(a="fp", b="current host", identical=True, entries=[]))
    verdict = "mismatch" if any(o.status == "mismatch" for o in outputs) or fields.get("random_at_inference") else (
        "identical" if all(o.status == "identical" for o in outputs) else "within_tolerance")  # fmt: skip
    return Report(verdict=verdict, model="model.keras", fingerprint="model.keras.envprint/fingerprint.json",
                  identity=identity, outputs=list(outputs), environment=environment, **fields)  # fmt: skip


def test_the_report_shows_the_tolerance_that_would_have_passed():
    e, o = drifted()
    c = compare_output("logits", e, o, Tolerance(rtol=1e-7, atol=1e-7))
    report = report_of(c)
    text = str(report)
    assert text.startswith('envprint verify: MISMATCH: output "logits": 2 of 40 elements out of tolerance\n')
    with pytest.raises(envprint.MismatchError) as err:
        report.raise_for_status()
    assert str(err.value) == (
        'model.keras: mismatch against model.keras.envprint/fingerprint.json: output "logits": 2 of 40 elements '
        "out of tolerance"
    )
    assert (
        f"  would pass at rtol >= {c.rtol_needed:.2e} (with atol=1e-07), or atol >= {c.atol_needed:.2e} (with rtol=0); "
        "top-1 agreement 100.0%, top-5 agreement 100.0%\n"
    ) in text


def test_tolerance_from_a_report_is_the_margin_times_the_drift_and_passes_that_drift():
    e, o = drifted()
    c = compare_output("logits", e, o, Tolerance(rtol=1e-7, atol=1e-7))
    tol = tolerance_from_report(report_of(c), 20.0, "report.json")
    assert c.max_rel > 1e-5 and c.max_rel > c.rtol_needed
    assert tol == Tolerance(rtol=20 * c.max_rel, margin=20.0, derived_from="report.json")
    assert compare_output("logits", e, o, tol).status == "within_tolerance"
    # margin x the drift passes by rtol alone, whatever atol covered in the report
    assert compare_output("logits", e, o, Tolerance(rtol=tol.rtol / 20, atol=0.0)).status == "within_tolerance"
    with pytest.raises(UsageError, match=r"--margin must be a number >= 1"):
        tolerance_from_report(report_of(c), 0.5, "report.json")
    nan = e.copy()
    nan[0, 0] = np.nan
    with pytest.raises(UsageError) as err:
        tolerance_from_report(report_of(compare_output("logits", e, nan, Tolerance())), 2.0, "r.json")
    assert str(err.value).startswith("--tolerance-from r.json: output 'logits' passes under no rtol (NaN or Inf")
    other = report_of(c, identity=IdentityCheck(weights="changed"))
    with pytest.raises(UsageError, match="not numeric drift"):
        tolerance_from_report(other, 2.0, "r.json")


def test_tolerance_from_a_report_within_tolerance_is_never_0_nor_stricter_than_the_default():
    e, o = drifted(3e-6)  # max rel 1.5e-5, all covered by the default atol: rtol_needed is 0
    within = compare_output("logits", e, o, Tolerance())
    assert within.status == "within_tolerance" and within.rtol_needed == 0.0 and within.max_rel > 0
    assert tolerance_from_report(report_of(within), 2.0, "r.json") == Tolerance(margin=2.0, derived_from="r.json")
    tol = tolerance_from_report(report_of(within), 10.0, "r.json")
    assert tol.rtol == pytest.approx(10 * within.max_rel) and tol.rtol > 1e-4
    assert compare_output("logits", e, o, Tolerance(rtol=tol.rtol, atol=0.0)).status == "within_tolerance"
    same = compare_output("logits", e, e.copy(), Tolerance())
    assert tolerance_from_report(report_of(same), 3.0, "r.json").rtol is None


def test_save_tolerance_from_a_verify_report_states_the_margin_in_the_record(mlp, tmp_path):
    model = saved_copy(mlp["keras"], tmp_path)
    report = tmp_path / "report.json"
    report.write_text(invoke("verify", model, "--json").stdout)
    r = invoke("save", model, "--force", "--tolerance-from", report, "--margin", "3")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.endswith(
        f"tolerance: rtol the per-dtype default (3 x the largest relative error measured in {report} is below it), "
        "atol the per-dtype default\n"
    )
    fp = read_fingerprint(model.with_name("model.keras.envprint"))
    assert fp.tolerance == Tolerance(margin=3.0, derived_from=str(report))
    assert invoke("verify", model).exit_code == 0
    r = invoke("save", model, "--force", "--tolerance-from", report, "--rtol", "1e-3")
    assert r.exit_code == ExitCode.USAGE
    assert r.stderr == "envprint: error: --tolerance-from sets rtol from measured drift; drop --rtol/--atol/--exact\n"
    report.write_text("{}")
    r = invoke("save", model, "--force", "--tolerance-from", report)
    assert r.exit_code == ExitCode.FINGERPRINT
    assert (
        r.stderr == f"envprint: error: {report}: not an envprint verify report (expected the JSON of verify --json)\n"
    )


# --------------------------------------------------------------------------- output a person reads


def test_the_environment_line_names_the_record_and_never_promises_a_list_it_does_not_print():
    e, o = drifted()
    c = compare_output("logits", e, o, Tolerance(rtol=1e-7, atol=1e-7))
    entry = DiffEntry(path="python.compiler", section="python", status="changed", a="GCC 11", b="GCC 12",
                      topic="python_version", numerics=False)  # fmt: skip
    env = FingerprintDiff(a="fp", b="current host", identical=False, entries=[entry, entry])
    text = str(report_of(c, environment=env))
    assert (
        "Environment: 2 differences from the saved host, none of which can change numerics; "
        "envprint diff model.keras.envprint/fingerprint.json --current lists them\n"
    ) in text
    assert "FINGERPRINT" not in text
    same = compare_output("logits", e, e.copy(), Tolerance())
    text = str(report_of(same, environment=FingerprintDiff(a="fp", b="h", identical=False, entries=[entry])))
    assert (
        "Environment: 1 difference from the saved host (0 can change numerics), and the outputs did not change; "
        "envprint diff model.keras.envprint/fingerprint.json --current lists them\n"
    ) in text


def test_another_models_differences_have_their_own_label_and_no_double_blank_line():
    differs = ModelDifference(field="parameter_count", saved=67, current=18)
    identity = IdentityCheck(weights="changed", model_name="model.keras", differences=[differs])
    text = str(report_of(identity=identity, probes_run=False))
    assert "\n  differs:     parameters 67 -> 18\n" in text
    assert text.count("  model:") == 1
    probes = "  probes:      not run: this model does not take the recorded inputs\n"
    assert probes + "\nEnvironment: same as at save.\n" in text
    assert "\n\n\n" not in text


def test_a_mismatch_from_randomness_says_which_prediction_matched():
    e, _ = drifted()
    c = compare_output("logits", e, e.copy(), Tolerance())
    text = str(report_of(c, random_at_inference=["logits"]))
    assert text.startswith(
        "envprint verify: MISMATCH: outputs changed between two identical predictions on this host (logits): "
        "a random layer is active at inference\n"
    )
    assert (
        'output "logits": the first prediction is bit-identical to the reference (40 elements); '
        "a second, identical prediction differed from it: random at inference\n"
    ) in text


def test_worst_elements_print_each_dtype_at_its_own_shortest_precision():
    e = np.array([0.24133582413196564, 1.0], dtype=np.float32)
    o = np.array([0.5, 1.0], dtype=np.float32)
    w = compare_output("y", e, o, Tolerance()).worst[0]
    assert (w.obtained, w.expected, w.difference) == ("0.5", "0.24133582", "0.2586642")
    w64 = compare_output("y", e.astype(np.float64), o.astype(np.float64), Tolerance()).worst[0]
    assert w64.expected == "0.24133582413196564"


def test_show_says_what_jit_is(tf):
    r = invoke("show")
    assert r.exit_code == 0
    jit = tf.config.optimizer.get_jit()
    words = "off (no XLA auto-clustering)" if not jit else "autoclustering (XLA compiles clusters of ops)"
    assert re.search(rf"^jit +{re.escape(words)}$", r.stdout, flags=re.M), r.stdout


def test_diff_accepts_the_sidecar_directory_wherever_a_record_is_named(saved):
    sidecar = saved.with_name("model.keras.envprint")
    r = invoke("diff", sidecar, sidecar / "fingerprint.json")
    assert r.exit_code == 0 and "No differences." in r.stdout
    assert invoke("env-export", sidecar).exit_code == 0


def test_diff_names_the_single_file_of_a_model(mlp, mlp_one_weight_changed, tmp_path):
    a = saved_copy(mlp["keras"], tmp_path / "a")
    b = saved_copy(mlp_one_weight_changed["keras"], tmp_path / "b")
    r = invoke("diff", a.with_name("model.keras.envprint"), b.with_name("model.keras.envprint"))
    assert r.exit_code == 1
    assert re.search(r"^~  files\[model\.keras\]  [0-9a-f]{64}  [0-9a-f]{64}", r.stdout, flags=re.M), r.stdout
    assert "files.." not in r.stdout


def test_schema_check_without_a_schemas_folder_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke("schema", "--check")
    assert r.exit_code == ExitCode.USAGE
    assert r.stderr == (
        "envprint: error: schemas: no such folder, so nothing to check; run 'envprint schema --check' in a "
        "checkout of envprint, or pass --out DIR\n"
    )


@pytest.mark.subprocess
def test_tensorflow_log_lines_stay_off_stderr_unless_debug(mlp, tmp_path):
    model = saved_copy(mlp["tflite"], tmp_path)
    env = cli_env(TF_ENABLE_ONEDNN_OPTS="1")
    code, out, err = run_cli("verify", model, env=env)
    assert (code, err) == (0, ""), err
    assert out.startswith("envprint verify: PASSED (bit-identical)\n")
    code, _, err = run_cli("--debug", "verify", model, env=env)
    assert code == 0
    assert "port.cc" in err and "Created TensorFlow Lite XNNPACK delegate" in err


# --------------------------------------------------------------------------- the report in a server


def test_str_of_a_report_is_the_text_the_cli_prints(saved):
    report = envprint.verify(saved)
    assert str(report) == report.to_text()
    r = invoke("verify", saved)
    assert r.stdout == str(report)
    assert str(report).startswith(f"envprint verify: PASSED (bit-identical)\n  model:       {saved}\n")


# --------------------------------------------------------------------------- the two message helpers


def test_one_line_flattens_prose_and_escapes_what_does_not_print():
    assert one_line("cannot load:\n  layer 'x'\tfailed") == "cannot load: layer 'x' failed"
    assert one_line("evil\x1b[2Jname") == "evil\\x1b[2Jname"
    # Keras bolds its exception texts: colour and weight go, anything that moves the cursor stays escaped
    assert one_line("\x1b[1mdata type 'string' not understood\x1b[0m") == "data type 'string' not understood"
    assert one_line(ValueError()) == "ValueError"
    assert one_line("x" * 300, 20) == "x" * 17 + "..."


def test_open_user_file_says_what_is_wrong_in_one_line(tmp_path):
    with pytest.raises(FingerprintError) as err:
        open_user_file(tmp_path / "nope.json", FingerprintError, "give the path of a fingerprint.json")
    assert str(err.value) == f"{tmp_path / 'nope.json'}: no such file; give the path of a fingerprint.json"
    with pytest.raises(FingerprintError) as err:
        open_user_file(tmp_path, FingerprintError, "check the path", directory_fix="pass a file")
    assert str(err.value) == f"{tmp_path}: is a directory; pass a file"
    (tmp_path / "ok").write_bytes(b"x")
    with open_user_file(tmp_path / "ok", FingerprintError, "-") as fh:
        assert fh.read() == b"x"


def test_weights_that_cannot_be_compared_say_why():
    e, _ = drifted()
    ident = IdentityCheck(
        weights="unknown", weights_digest_scheme_saved="named-v1", weights_digest_scheme_now="tflite-constants-v1"
    )
    text = str(report_of(compare_output("logits", e, e.copy(), Tolerance()), identity=ident))
    assert "  weights:     not comparable (saved as named-v1, this model gives tflite-constants-v1)\n" in text
