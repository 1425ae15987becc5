"""envprint save / verify end to end on real small models, through the CLI and the library."""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from envhelpers import invoke

import envprint
from envprint.errors import ExitCode, MismatchError
from envprint.record.store import read_fingerprint

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def copy_model(src: Path, dest_dir: Path) -> Path:
    dest = dest_dir / src.name
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)
    return dest


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


SAVE_STDOUT: dict[str, str] = {}  # format -> what `envprint save` printed in saved_mlp


@pytest.fixture(scope="module")
def saved_mlp(mlp, tmp_path_factory) -> dict[str, Path]:
    """The MLP in every format, each with its record written by `envprint save`."""
    out = {}
    for fmt in ("keras", "h5", "savedmodel", "tflite"):
        model = copy_model(mlp[fmt], tmp_path_factory.mktemp(f"saved_{fmt}"))
        r = invoke("save", model)
        assert r.exit_code == 0, r.output + r.stderr
        out[fmt] = model
        SAVE_STDOUT[fmt] = r.stdout
    return out


@pytest.mark.parametrize(
    ("fmt", "words"),
    [("keras", "a Keras (.keras) model"), ("h5", "an HDF5 (.h5) model"), ("savedmodel", "a SavedModel"),
     ("tflite", "a TFLite model")],
)  # fmt: skip
def test_save_names_the_model_format_in_words(saved_mlp, fmt, words):
    from envprint.record.sidecar import default_sidecar

    sidecar = default_sidecar(saved_mlp[fmt])
    assert SAVE_STDOUT[fmt].startswith(f"saved {sidecar}/fingerprint.json: {words}, 8 probes, outputs ")


def test_save_writes_the_record_beside_a_keras_file(saved_mlp):
    model = saved_mlp["keras"]
    sidecar = model.with_name("model.keras.envprint")
    assert sorted(p.name for p in sidecar.iterdir()) == ["fingerprint.json", "probes.npz", "reference.npz"]
    fp = read_fingerprint(sidecar / "fingerprint.json")
    assert fp.model.format == "keras" and fp.model.name == "model.keras"
    assert [(s.name, s.shape, s.dtype) for s in fp.model.inputs] == [("features", [None, 4], "float32")]
    assert [s.name for s in fp.model.outputs] == ["logits"]
    assert fp.model.parameter_count == 4 * 8 + 8 + 8 * 3 + 3
    assert fp.model.files["."] and len(fp.model.weights_digest) == 64
    assert (fp.probes.source, fp.probes.num_probes, fp.probes.seed) == ("generated", 8, 0)
    assert fp.self_check.deterministic and fp.self_check.warnings == []
    assert fp.tensorflow is not None and fp.tensorflow.version
    jsonschema.validate(
        json.loads((sidecar / "fingerprint.json").read_text()),
        json.loads((SCHEMAS / "fingerprint.v1.schema.json").read_text()),
    )
    with np.load(sidecar / "reference.npz", allow_pickle=False) as ref:
        assert ref["logits"].shape == (8, 3)


def test_save_puts_the_record_inside_a_savedmodel_so_a_copy_carries_it(saved_mlp, tmp_path):
    export = saved_mlp["savedmodel"]
    assert (export / "assets.extra" / "envprint" / "fingerprint.json").exists()
    copied = copy_model(export, tmp_path)
    r = invoke("verify", copied)
    assert r.exit_code == 0, r.output + r.stderr
    assert "PASSED (bit-identical)" in r.output


@pytest.mark.parametrize("fmt", ["keras", "h5", "savedmodel", "tflite"])
def test_verify_passes_bit_identical_for_every_format(saved_mlp, fmt):
    r = invoke("verify", saved_mlp[fmt], "--json")
    assert r.exit_code == 0, r.output + r.stderr
    report = json.loads(r.stdout)
    assert report["verdict"] == "identical"
    assert report["identity"]["weights"] == "same"
    assert [o["status"] for o in report["outputs"]] == ["identical"] * len(report["outputs"])
    jsonschema.validate(report, json.loads((SCHEMAS / "report.v2.schema.json").read_text()))


def test_verify_never_writes_next_to_the_model(saved_mlp):
    folder = saved_mlp["keras"].parent
    before = tree_state(folder)
    assert invoke("verify", saved_mlp["keras"]).exit_code == 0
    assert tree_state(folder) == before


def test_verify_fails_when_one_weight_changes(mlp, mlp_one_weight_changed, tmp_path):
    model = copy_model(mlp["keras"], tmp_path)
    assert invoke("save", model).exit_code == 0
    shutil.copy2(mlp_one_weight_changed["keras"], model)  # the deployment got another model
    r = invoke("verify", model)
    assert r.exit_code == ExitCode.DIFFERENT, r.output + r.stderr
    assert r.output.startswith(
        "envprint verify: MISMATCH: the model's weights differ from the fingerprinted model's: "
        "this is not the model that was saved\n"
    )
    assert "weights:     CHANGED: this is not the model that was saved" in r.output
    assert "files changed: model.keras\n" in r.output  # the file named, not "."
    report = envprint.verify(model)
    assert report.identity.weights == "changed" and not report.passed
    with pytest.raises(MismatchError) as info:
        report.raise_for_status()
    assert info.value.report is report
    assert info.value.exit_code == ExitCode.DIFFERENT


def test_a_file_rewritten_with_identical_weights_passes_with_a_note(mlp, tmp_path):
    model = copy_model(mlp["keras"], tmp_path)
    assert invoke("save", model).exit_code == 0
    data = bytearray(model.read_bytes())
    model.unlink()
    mlp.model.save(model)  # the same weights saved again: new bytes (the archive records when), same weights
    assert model.read_bytes() != bytes(data)  # the archive records when it was saved (every Keras we support)
    report = envprint.verify(model)
    assert report.verdict == "identical"
    assert report.identity.weights == "same" and report.identity.files_changed == ["."]
    assert "weights:     same as saved (the files were rewritten, the weights are identical)" in str(report)


def test_in_process_verify_of_a_model_the_server_already_loaded(saved_mlp, keras):
    model = keras.models.load_model(saved_mlp["keras"], compile=False)
    before = keras.config.dtype_policy().name if hasattr(keras, "config") else None
    collector = (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count())
    report = envprint.verify(model, fingerprint=saved_mlp["keras"].with_name("model.keras.envprint"))
    assert report.verdict == "identical" and report.passed
    assert report.raise_for_status() is report
    assert report.model == "<in-memory Functional>"
    assert (keras.config.dtype_policy().name if hasattr(keras, "config") else None) == before
    # The CLI turns the cyclic collector off in its own process; the library leaves a server's alone.
    assert (gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()) == collector


# What a server's start-up pays for `envprint.verify` of an unchanged model (issue 18): none of the
# many-model records, the JSON Schema helpers, the renderers, the restore plans or the investigation.
NOT_ON_THE_VERIFY_PATH = (
    "envprint.models.many",
    "envprint.models.schemas",
    # render.text is on the path: it hands Report its words (str(report), raise_for_status) when imported;
    # the other outputs are not.
    "envprint.render.html",
    "envprint.render.junit",
    "envprint.render.markdown",
    "envprint.render.many",
    "envprint.render.outputs",
    "envprint.render.people",
    "envprint.many",
    "envprint.causes.restore",
    "envprint.check.investigate",
    "envprint.cli",
    "rich",
)


@pytest.mark.subprocess
def test_in_process_verify_of_an_identical_model_imports_only_what_it_needs(saved_mlp):
    from envhelpers import run_python

    code = (
        "import sys\n"
        "import tensorflow as tf\n"  # tf.keras: the Keras this TensorFlow runs (tf_keras, Keras 2 or 3)
        f"model = tf.keras.models.load_model({str(saved_mlp['keras'])!r}, compile=False)\n"
        "before = set(sys.modules)\n"
        "import envprint\n"
        f"report = envprint.verify(model, fingerprint={str(saved_mlp['keras'].with_name('model.keras.envprint'))!r})\n"
        "assert report.verdict == 'identical', report.verdict\n"
        f"loaded = sorted(m for m in set(sys.modules) - before if m.startswith({NOT_ON_THE_VERIFY_PATH!r}))\n"
        "sys.stderr.write('LOADED=' + ','.join(loaded))\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stderr.endswith("LOADED="), done.stderr[-2000:]


def test_an_existing_record_is_never_overwritten_without_force(mlp, tmp_path):
    model = copy_model(mlp["keras"], tmp_path)
    assert invoke("save", model).exit_code == 0
    record = model.with_name("model.keras.envprint") / "fingerprint.json"
    first = record.read_text()
    r = invoke("save", model, "--num-probes", 3)
    assert r.exit_code == ExitCode.FINGERPRINT
    assert (
        r.stderr == f"envprint: error: {record.parent}: an envprint record already exists; pass --force to replace it\n"
    )
    assert record.read_text() == first
    r = invoke("save", model, "--num-probes", 3, "--force")
    assert r.exit_code == 0, r.stderr
    assert read_fingerprint(record).probes.num_probes == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "model.keras.envprint"]  # no leftovers


def test_edited_probes_are_a_mismatch_naming_the_file(mlp, tmp_path):
    model = copy_model(mlp["keras"], tmp_path)
    assert invoke("save", model).exit_code == 0
    probes = model.with_name("model.keras.envprint") / "probes.npz"
    with np.load(probes, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["features"][0, 0] += 1.0
    np.savez(probes, **arrays)
    report = envprint.verify(model)
    assert report.verdict == "mismatch"
    assert report.identity.sidecar_files_changed == ["probes.npz"]
    assert str(report).startswith(
        "envprint verify: MISMATCH: probes.npz no longer matches the sha256 in fingerprint.json: "
        "the record was edited after save\n"
    )


def test_supplied_probes_for_two_named_inputs(two_inputs, tmp_path):
    model = copy_model(two_inputs["keras"], tmp_path)
    rng = np.random.default_rng(3)
    probes = tmp_path / "samples.npz"
    np.savez(probes, a=rng.standard_normal((5, 3)).astype("float32"), b=rng.standard_normal((5, 2)).astype("float32"))
    r = invoke("save", model, "--probes", probes)
    assert r.exit_code == 0, r.stderr
    fp = read_fingerprint(model.with_name("model.keras.envprint") / "fingerprint.json")
    assert (fp.probes.source, fp.probes.file, fp.probes.num_probes) == ("file", "samples.npz", 5)
    assert sorted(fp.reference_arrays.arrays) == ["aux", "score"]
    assert invoke("verify", model).exit_code == 0


def test_diff_and_env_export_given_a_model_read_its_record(saved_mlp):
    from envprint.record.sidecar import default_sidecar

    for fmt in ("keras", "savedmodel"):
        model, record = saved_mlp[fmt], default_sidecar(saved_mlp[fmt]) / "fingerprint.json"
        r = invoke("env-export", model)
        assert r.exit_code == 0, r.output
        assert r.stdout == invoke("env-export", record).stdout
        r = invoke("diff", model, record)
        assert r.exit_code == 0, r.output
        assert r.stdout.endswith("No differences.\n")


def test_a_model_or_npz_without_a_record_is_named_for_what_it_is(saved_mlp, mlp, tmp_path):
    from envprint.record.sidecar import default_sidecar

    probes = default_sidecar(saved_mlp["keras"]) / "probes.npz"
    r = invoke("diff", probes, probes)
    assert r.exit_code == ExitCode.FINGERPRINT
    assert r.stderr == (
        f"envprint: error: {probes}: a NumPy .npz archive (probes or reference outputs), not a fingerprint; "
        "give the fingerprint.json of the same record\n"
    )
    bare = copy_model(mlp["keras"], tmp_path)
    r = invoke("env-export", bare)
    assert r.exit_code == ExitCode.FINGERPRINT
    assert r.stderr == (
        f"envprint: error: {bare}: a Keras (.keras) model, not a fingerprint; a model's record is "
        "MODEL.envprint/fingerprint.json (MODEL/assets.extra/envprint/ in a SavedModel), written by "
        "'envprint save MODEL'\n"
    )
    export = copy_model(mlp["savedmodel"], tmp_path)
    r = invoke("diff", export, "--current")
    assert r.exit_code == ExitCode.FINGERPRINT
    assert r.stderr == (
        f"envprint: error: {export}: a SavedModel without a record ({export}/assets.extra/envprint/fingerprint.json "
        f"is missing); run 'envprint save {export}' on the training host\n"
    )


def test_save_warns_when_every_probe_gives_the_same_outputs(keras, tmp_path):
    inp = keras.Input((4,), name="x")
    out = keras.layers.Dense(3, kernel_initializer="zeros", bias_initializer="ones", name="out")(inp)
    model = tmp_path / "constant.keras"
    keras.Model(inp, out).save(model)  # the output is the bias, whatever the input
    r = invoke("save", model, "--json")
    assert r.exit_code == 0, r.output
    warning = (
        "outputs are the same for all 8 probes: the record cannot tell much drift apart (a model that ignores "
        "its inputs, or probes it cannot tell apart); use real samples (--probes) or check the model"
    )
    assert json.loads(r.stdout)["warnings"] == [warning]
    assert r.stderr == f"envprint: WARNING: {warning}\n"


def test_save_of_a_model_that_uses_its_inputs_does_not_warn(mlp, tmp_path):
    r = invoke("save", copy_model(mlp["keras"], tmp_path), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["warnings"] == [] and r.stderr == ""


def test_dropout_left_active_warns_at_save_and_strict_refuses(dropout_left_active, tmp_path):
    model = copy_model(dropout_left_active, tmp_path)
    r = invoke("save", model, "--strict")
    assert r.exit_code == ExitCode.MODEL
    assert "outputs changed between two identical predictions" in r.stderr and "(--strict)" in r.stderr
    assert not model.with_name("model.keras.envprint").exists()
    r = invoke("save", model)
    assert r.exit_code == 0
    assert r.stderr.startswith("envprint: WARNING: outputs changed between two identical predictions")
    fp = read_fingerprint(model.with_name("model.keras.envprint") / "fingerprint.json")
    assert fp.self_check.deterministic is False
    assert fp.model.stochastic_layers == ["drop (AlwaysDropout)"]
    report = envprint.verify(model)
    assert report.verdict == "mismatch"
    assert report.random_at_inference == ["out"]
    assert "outputs changed between two identical predictions on this host (out)" in str(report)


def test_verify_without_a_record_says_to_save_first(mlp, tmp_path):
    model = copy_model(mlp["keras"], tmp_path)
    r = invoke("verify", model)
    assert r.exit_code == ExitCode.FINGERPRINT
    assert r.stderr == (
        f"envprint: error: {model}.envprint/fingerprint.json: no fingerprint beside the model; "
        f"run 'envprint save {model}' on the training host, or pass --fingerprint PATH\n"
    )


def test_a_host_fingerprint_is_not_a_model_record(saved_mlp, tmp_path):
    host = tmp_path / "host.json"
    host.write_text(invoke("show", "--json").stdout)
    r = invoke("verify", saved_mlp["keras"], "--fingerprint", host)
    assert r.exit_code == ExitCode.FINGERPRINT
    assert "a fingerprint of a host, not of a model (no probes recorded)" in r.stderr


def test_missing_model_is_exit_4(tmp_path):
    r = invoke("save", tmp_path / "nope.keras")
    assert r.exit_code == ExitCode.MODEL
    assert r.stderr.startswith(f"envprint: error: {tmp_path / 'nope.keras'}: no such file or directory")


def test_lambda_layer_is_refused_under_safe_mode(lambda_model, tmp_path):
    model = copy_model(lambda_model["keras"], tmp_path)
    r = invoke("save", model)
    assert r.exit_code == ExitCode.MODEL
    assert "--unsafe" in r.stderr and r.stderr.count("\n") == 1
    assert not model.with_name("model.keras.envprint").exists()


def test_exact_and_tolerances_are_validated(saved_mlp):
    r = invoke("verify", saved_mlp["keras"], "--exact", "--rtol", "1e-3")
    assert r.exit_code == ExitCode.USAGE
    assert r.stderr == "envprint: error: --exact demands bit equality; drop --rtol/--atol, or drop --exact\n"
    assert invoke("verify", saved_mlp["keras"], "--exact").exit_code == 0


def test_preflight_predicts_without_loading_the_model(mlp, tmp_path):
    model = copy_model(mlp["keras"], tmp_path)
    assert invoke("save", model).exit_code == 0
    model.write_bytes(b"not a model any more")  # preflight must not even open it
    r = invoke("verify", model, "--preflight", "--json")
    assert r.exit_code == ExitCode.OK, r.stderr  # saved in this process a moment ago: nothing expects a change
    data = json.loads(r.stdout)
    assert data["b"] == "current host" and "expectations" in data
    assert invoke("verify", model).exit_code == ExitCode.MODEL  # the real verify does load it


@pytest.mark.subprocess
def test_verify_without_tensorflow_is_exit_5_with_the_pip_line(saved_mlp):
    from envhelpers import run_python

    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None  # a host where TensorFlow cannot be imported\n"
        "from envprint.cli.app import app\n"
        f"app(['verify', {str(saved_mlp['keras'])!r}])\n"
    )
    done = run_python(code)
    assert done.returncode == ExitCode.DEPENDENCY, done.stderr
    assert done.stderr.startswith("envprint: error: TensorFlow is not importable")
    assert "pip install 'envprint[tensorflow-cpu]'" in done.stderr
    assert done.stderr.count("\n") == 1
