"""Verify settles which model it holds before it feeds a probe: another model is model_changed, whatever it is.

A different model copied over model.keras beside its old record, the same weights in another
format (the format comes from the path), and records written by envprint 0.1.0 (weights digest
scheme named-v1, which hashed weight names) still checked.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from envhelpers import invoke

import envprint
from envprint.models import Report
from envprint.record.store import read_fingerprint, write_fingerprint
from envprint.render.text import first_problem


@pytest.fixture
def recorded_mlp(mlp, tmp_path: Path) -> Path:
    """The MLP as model.keras with its record, in a folder of its own."""
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    envprint.save(model)
    return model


CHANGED = (
    "the model's weights differ from the fingerprinted model's: this is not the model that was saved: "
    "inputs [features (None, 4) float32] -> [a (None, 3) float32, b (None, 2) float32]; "
    "outputs [logits (None, 3) float32] -> [score (None, 2) float32, aux (None, 1) float32]; "
    "parameters 67 -> 18; layer classes [Dense, InputLayer] -> [Concatenate, Dense, InputLayer]"
)


def test_another_model_over_the_file_is_model_changed_not_a_probe_error(recorded_mlp, two_inputs) -> None:
    shutil.copy2(two_inputs["keras"], recorded_mlp)  # other architecture, other input names
    r = invoke("verify", recorded_mlp, "--json")
    assert r.exit_code == 1, r.output + r.stderr
    report = json.loads(r.stdout)
    assert report["verdict"] == "mismatch"
    assert report["identity"]["weights"] == "changed"
    assert [d["field"] for d in report["identity"]["differences"]] == [
        "inputs", "outputs", "parameter_count", "layer_classes"
    ]  # fmt: skip
    assert first_problem(Report.model_validate(report)) == CHANGED
    assert report["probes_run"] is False
    assert report["outputs"] == []
    assert report["explanations"][0]["cause"] == "model_changed"


def test_another_model_is_model_changed_in_the_text_report_too(recorded_mlp, two_inputs) -> None:
    shutil.copy2(two_inputs["keras"], recorded_mlp)
    r = invoke("verify", recorded_mlp)
    assert r.exit_code == 1, r.output + r.stderr
    assert "weights:     CHANGED: this is not the model that was saved" in r.stdout
    assert r.stdout.splitlines()[0] == f"envprint verify: MISMATCH: {CHANGED}"
    assert "  probes:      not run: this model does not take the recorded inputs" in r.stdout.splitlines()
    assert "1. model_changed (score 1.00)" in r.stdout


def test_the_library_says_model_changed_for_another_model_in_memory(recorded_mlp, two_inputs) -> None:
    report = envprint.verify(two_inputs.model, fingerprint=recorded_mlp.with_name("model.keras.envprint"))
    assert report.verdict == "mismatch"
    assert report.identity.weights == "changed"
    assert first_problem(report) == CHANGED
    assert report.explanations[0].cause == "model_changed"
    with pytest.raises(envprint.MismatchError, match="this is not the model that was saved: inputs"):
        report.raise_for_status()


def test_same_architecture_other_weights_still_runs_the_probes(recorded_mlp, mlp_one_weight_changed) -> None:
    shutil.copy2(mlp_one_weight_changed["keras"], recorded_mlp)
    report = envprint.verify(recorded_mlp)
    assert report.identity.weights == "changed" and report.identity.differences == []
    assert (
        first_problem(report)
        == "the model's weights differ from the fingerprinted model's: this is not the model that was saved"
    )
    assert [o.name for o in report.outputs] == ["logits"]  # the probes ran: their drift is evidence too


@pytest.mark.parametrize("fmt", ["h5", "savedmodel"])
def test_the_same_weights_in_another_format_pass_against_the_keras_record(mlp, recorded_mlp, fmt: str) -> None:
    other = recorded_mlp.parent / mlp[fmt].name
    (shutil.copytree if mlp[fmt].is_dir() else shutil.copy2)(mlp[fmt], other)
    r = invoke("verify", other, "--fingerprint", recorded_mlp.with_name("model.keras.envprint"), "--json")
    assert r.exit_code == 0, r.output + r.stderr
    report = json.loads(r.stdout)
    assert report["identity"]["weights"] == "same"
    assert report["identity"]["differences"][0] == {"field": "format", "saved": "keras", "current": fmt}
    assert report["verdict"] in ("identical", "within_tolerance")
    text = Report.model_validate(report).to_text()
    assert "  weights:     same as saved (another format of the same weights)\n" in text
    assert "rewritten" not in text
    # The record's model.keras is missing (named, not '.' nor this model's name), this model's files are added.
    assert "  files missing: model.keras\n" in text
    assert "files changed" not in text


def test_an_h5_against_a_keras_record_names_both_files_and_formats(mlp, recorded_mlp) -> None:
    other = recorded_mlp.parent / "model.h5"
    shutil.copy2(mlp["h5"], other)
    r = invoke("verify", other, "--fingerprint", recorded_mlp.with_name("model.keras.envprint"))
    assert r.exit_code == 0, r.output + r.stderr
    lines = r.stdout.splitlines()
    assert "  files missing: model.keras" in lines
    assert "  files added: model.h5" in lines
    assert "  differs:     format keras -> h5" in lines


def test_an_hdf5_file_of_another_name_is_read_as_hdf5_from_its_first_bytes(mlp, recorded_mlp) -> None:
    # Neither its name (.bin) nor the record (.keras) says HDF5; its first bytes do, as --format h5 would.
    other = recorded_mlp.parent / "weights.bin"
    shutil.copy2(mlp["h5"], other)
    r = invoke("verify", other, "--fingerprint", recorded_mlp.with_name("model.keras.envprint"))
    assert r.exit_code == 0, r.output + r.stderr
    assert "not a zip file" not in r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "envprint verify: PASSED (bit-identical)", r.stdout
    assert "  differs:     format keras -> h5" in lines
    assert "  files added: weights.bin" in lines


def test_an_hdf5_file_named_keras_is_loaded_as_what_its_bytes_say(mlp, tmp_path) -> None:
    from envprint._tf.loading import detect_format, load_model

    odd = tmp_path / "model.keras"
    shutil.copy2(mlp["h5"], odd)
    assert detect_format(odd) == "h5"
    assert load_model(odd).format == "h5"


def test_a_record_of_envprint_0_1_0_still_verifies_the_model_built_in_code(keras, tmp_path: Path) -> None:
    # 0.1.0 hashed Keras 3 weight paths: 'dense/kernel' read from .keras, 'sequential/dense/kernel'
    # for the same Sequential in memory. Its records must keep verifying the model that was saved.
    import numpy as np

    from envprint._tf.identity import weights_digest
    from envprint._tf.loading import load_model

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, bias_initializer="ones")])
    path = tmp_path / "m.keras"
    model.save(path)
    envprint.save(path)
    fp_path = tmp_path / "m.keras.envprint" / "fingerprint.json"
    fp = read_fingerprint(fp_path)
    old_digest, _, _ = weights_digest(load_model(path).weights(), "named-v1")  # what 0.1.0 recorded for this file
    old = fp.model.model_copy(update={"weights_digest": old_digest, "weights_digest_scheme": "named-v1"})
    write_fingerprint(fp_path, fp.model_copy(update={"model": old}))

    report = envprint.verify(model, fingerprint=fp_path.parent)
    assert (report.identity.weights, report.verdict) == ("same", "identical"), report.to_text()

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, bias_initializer="zeros")])
    other.set_weights([w + np.float32(1) for w in model.get_weights()])
    report = envprint.verify(other, fingerprint=fp_path.parent)
    assert report.identity.weights == "changed"
    assert (
        "(the record's digest uses envprint 0.1.0's scheme named-v1, which also hashed weight names; "
        "if this model was only rebuilt or re-saved, re-save the record to get scheme tensors-v2)"
    ) in report.to_text()


def test_a_tflite_with_its_batch_fixed_at_1_is_not_called_another_model(recorded_mlp, mlp_fixed_batch_tflite) -> None:
    # Same weights converted to .tflite: the digests cannot be compared, and [1, 4] is [None, 4] with the batch fixed.
    other = recorded_mlp.parent / "model.tflite"
    shutil.copy2(mlp_fixed_batch_tflite, other)
    report = envprint.verify(other, fingerprint=recorded_mlp.with_name("model.keras.envprint"))
    assert report.identity.weights == "unknown"
    assert [d.field for d in report.identity.differences] == ["format", "inputs", "outputs"]
    assert report.verdict in ("identical", "within_tolerance"), report.to_text()


OTHER_FORMAT = (
    "this model is a TFLite model, the record's is a Keras (.keras) model: another format of the model runs "
    "other kernels, so its outputs may differ in the last bits; the outputs are the evidence"
)


def test_a_tflite_checked_against_its_keras_record_leads_with_model_other_format(mlp, recorded_mlp) -> None:
    other = recorded_mlp.parent / "model.tflite"
    shutil.copy2(mlp["tflite"], other)
    record = recorded_mlp.with_name("model.keras.envprint")
    r = invoke("verify", other, "--fingerprint", record, "--json")
    assert r.exit_code == 0, r.output + r.stderr
    report = Report.model_validate(json.loads(r.stdout))
    assert report.identity.weights == "unknown"
    assert report.identity.differences[0].model_dump() == {"field": "format", "saved": "keras", "current": "tflite"}
    causes = [x.cause for x in report.explanations]
    assert "model_changed" not in causes, report.to_text()
    if report.verdict == "identical":
        assert causes == [], report.to_text()
    # Outputs that differ (the converter's kernels, on any host) are explained by the format first, not 'unknown'.
    from envprint.causes.diff import diff_fingerprints
    from envprint.causes.explain import explain
    from envprint.models import OutputComparison
    from envprint.record.store import read_fingerprint

    drifted = OutputComparison(
        name="logits", status="within_tolerance", expected_dtype="float32", obtained_dtype="float32",
        expected_shape=[8, 3], obtained_shape=[8, 3], size=24, n_differ=17, max_ulp=10, max_rel=6.5e-07,
        top1_agreement=1.0,
    )  # fmt: skip
    saved = read_fingerprint(record)
    found = explain(saved, diff_fingerprints(saved, saved), report.identity, [drifted])
    assert [(x.cause, x.score) for x in found][0] == ("model_other_format", 0.5)
    assert found[0].reasoning == OTHER_FORMAT
    assert "unknown" not in [x.cause for x in found]


def test_a_savedmodels_own_record_is_never_a_model_file(mlp, recorded_mlp) -> None:
    export = recorded_mlp.parent / "export"
    shutil.copytree(mlp["savedmodel"], export)
    envprint.save(export)  # its own record, in export/assets.extra/envprint/
    assert (export / "assets.extra" / "envprint" / "fingerprint.json").is_file()
    r = invoke("verify", export, "--fingerprint", recorded_mlp.with_name("model.keras.envprint"), "--json")
    assert r.exit_code == 0, r.output + r.stderr
    identity = json.loads(r.stdout)["identity"]
    assert identity["weights"] == "same"
    assert identity["files_missing"] == ["model.keras"]  # what the record expected, by its name
    assert "saved_model.pb" in identity["files_added"]
    assert [f for f in identity["files_added"] if f.startswith("assets.extra/envprint")] == []
    # Its own record still verifies it, with every file the same.
    own = envprint.verify(export)
    assert (own.identity.files_changed, own.identity.files_missing, own.identity.files_added) == ([], [], [])


def test_another_single_input_model_gets_no_advice_about_the_probes(recorded_mlp, keras) -> None:
    x = keras.Input((6,), name="x")
    keras.Model(x, keras.layers.Dense(2, name="y")(x)).save(recorded_mlp)
    report = envprint.verify(recorded_mlp)
    assert report.identity.weights == "changed" and report.outputs == []
    assert first_problem(report) == (
        "the model's weights differ from the fingerprinted model's: this is not the model that was saved: "
        "inputs [features (None, 4) float32] -> [x (None, 6) float32]; "
        "outputs [logits (None, 3) float32] -> [y (None, 2) float32]; parameters 67 -> 14"  # same layer classes
    )
    assert report.probes_run is False and report.inputs_by_position == {}
