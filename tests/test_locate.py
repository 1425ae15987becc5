"""save --layers and verify --locate on real models: the first layer to depart is named, and the causes use it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import envprint

keras = pytest.importorskip("keras")


def _cnn() -> keras.Model:
    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((12, 12, 3)),
        keras.layers.Conv2D(4, 3, name="conv_a"),
        keras.layers.ReLU(name="relu_a"),
        keras.layers.Conv2D(4, 3, name="conv_mid"),
        keras.layers.ReLU(name="relu_mid"),
        keras.layers.GlobalAveragePooling2D(name="pool"),
        keras.layers.Dense(3, name="head"),
    ])  # fmt: skip


def _branched() -> keras.Model:
    keras.utils.set_random_seed(4)
    x = keras.Input((6,), name="x")
    stem = keras.layers.Dense(8, activation="relu", name="stem")(x)
    left = keras.layers.Dense(8, name="left_2")(keras.layers.Dense(8, name="left_1")(stem))
    right = keras.layers.Dense(8, name="right_2")(keras.layers.Dense(8, name="right_1")(stem))
    return keras.Model(x, keras.layers.Dense(2, name="head")(keras.layers.Add(name="join")([left, right])))


def _perturbed(model: keras.Model, names: tuple[str, ...], path) -> None:
    for name in names:
        kernel = model.get_layer(name).kernel
        kernel.assign(kernel.numpy() + np.float32(0.05))
    model.save(path)


@pytest.fixture(scope="module")
def cnn_record(tmp_path_factory):
    d = tmp_path_factory.mktemp("cnn")
    _cnn().save(d / "model.keras")
    envprint.save(d / "model.keras", layers=True)
    return d


def test_a_record_with_layers_against_this_host_differs_in_nothing_the_host_has(cnn_record):
    """The trace is the model's, like its probes: `diff --current` and verify do not count it as the host's."""
    from envhelpers import invoke

    r = invoke("diff", cnn_record / "model.keras.envprint", "--current", "--json")
    assert "layer_trace" not in {e["path"].split(".")[0] for e in json.loads(r.stdout)["entries"]}, r.stdout


def test_save_layers_records_a_bounded_trace_that_verify_checks(cnn_record):
    fp = json.loads((cnn_record / "model.keras.envprint" / "fingerprint.json").read_text())
    trace = fp["layer_trace"]
    assert [t["name"] for t in trace["layers"]] == ["conv_a", "relu_a", "conv_mid", "relu_mid", "pool", "head"]
    assert trace["layers"][2]["inbound"] == [1] and trace["arrays"]["arrays"] == {"samples": [6, 32]}
    report = envprint.verify(cnn_record / "model.keras", locate=True)
    assert report.verdict == "identical" and report.layers.status == "no_departure", report.to_text()


def test_an_edited_layer_trace_is_a_mismatch_naming_the_file(cnn_record, tmp_path):
    from envprint.record.npz import load_arrays, save_arrays

    shutil.copytree(cnn_record / "model.keras.envprint", tmp_path / "record")
    arrays = load_arrays(tmp_path / "record" / "layers.npz")
    arrays["samples"][2, 3] += 1
    save_arrays(tmp_path / "record" / "layers.npz", arrays)
    report = envprint.verify(cnn_record / "model.keras", fingerprint=tmp_path / "record")
    assert report.verdict == "mismatch" and report.identity.sidecar_files_changed == ["layers.npz"]
    assert report.explanations[0].cause == "probes_changed"


def test_save_layers_refuses_a_savedmodel_in_one_line(cnn_record, tmp_path):
    keras.models.load_model(cnn_record / "model.keras").export(tmp_path / "sm", verbose=False)
    with pytest.raises(
        envprint.errors.UsageError, match=r"--layers traces Keras models only: a SavedModel without Keras"
    ):
        envprint.save(tmp_path / "sm", layers=True, out=tmp_path / "sm.envprint")
    assert not (tmp_path / "sm.envprint").exists()


def test_locate_names_the_middle_layer_whose_weights_were_perturbed(cnn_record, tmp_path):
    _perturbed(keras.models.load_model(cnn_record / "model.keras"), ("conv_mid",), tmp_path / "other.keras")
    report = envprint.verify(tmp_path / "other.keras", fingerprint=cnn_record / "model.keras.envprint")
    loc = report.layers  # automatic: the outputs differ
    assert loc.status == "located" and loc.steps[loc.first].name == "conv_mid", report.to_text()
    assert loc.ops["conv_mid"] == "Conv2D" and loc.steps[loc.first].weights_changed
    assert [s.identical for s in loc.steps] == [True, True, False, False, False, False]
    assert report.explanations[0].cause == "model_changed"
    assert "the first layer to depart, conv_mid (Conv2D, op Conv2D), is one whose weights changed" in (
        report.explanations[0].reasoning
    )
    assert "Layers: first to depart: conv_mid (Conv2D, op Conv2D), layer 3 of 6" in report.to_text()
    from envprint.render.html import render_html
    from envprint.render.markdown import report_markdown

    page = render_html(report)
    assert (
        "<h2>Layers</h2>" in page and "Error per layer (4 of 6 depart)" in page and "first to depart: conv_mid" in page
    )
    assert "| 3 | conv_mid | Conv2D | Conv2D |" in report_markdown(report)


def test_locate_names_the_earliest_layer_and_each_branchs_first(tmp_path):
    model = _branched()
    model.save(tmp_path / "model.keras")
    envprint.save(tmp_path / "model.keras", layers=True)
    _perturbed(model, ("right_1", "left_2"), tmp_path / "other.keras")
    report = envprint.verify(tmp_path / "other.keras", fingerprint=tmp_path / "model.keras.envprint")
    loc = report.layers
    names = [s.name for s in loc.steps]
    assert sorted(names[i] for i in loc.origins) == ["left_2", "right_1"], report.to_text()
    assert names[loc.first] == min(("left_2", "right_1"), key=names.index)
    assert loc.steps[names.index("stem")].identical
    assert {names[i] for i, s in enumerate(loc.steps) if not s.identical} == {
        "left_2",
        "right_1",
        "right_2",
        "join",
        "head",
    }


def test_a_preprocessing_layer_departing_first_points_at_the_input(tmp_path):
    def model(scale: float) -> keras.Model:
        keras.utils.set_random_seed(5)
        x = keras.Input((4,))
        return keras.Model(x, keras.layers.Dense(2, name="head")(keras.layers.Rescaling(scale, name="rescale")(x)))

    model(0.5).save(tmp_path / "model.keras")
    envprint.save(tmp_path / "model.keras", layers=True)
    model(0.25).save(tmp_path / "other.keras")
    report = envprint.verify(tmp_path / "other.keras", fingerprint=tmp_path / "model.keras.envprint")
    assert report.layers.steps[report.layers.first].name == "rescale", report.to_text()
    assert "preprocessing" in [x.cause for x in report.explanations]


def test_the_locate_pages_python_example_runs_as_written(tmp_path, monkeypatch, capsys):
    from docpages import block

    monkeypatch.chdir(tmp_path)
    code = block("docs/how-to/locate.md", "Record the layers", "python")
    exec(compile(code, "docs/how-to/locate.md", "exec"), {})
    text = capsys.readouterr().out
    assert "Layers: first to depart: depthwise (DepthwiseConv2D, op DepthwiseConv2dNative), layer 3 of 6" in text
    assert "is one whose weights changed" in text


@pytest.mark.subprocess
def test_under_onednn_a_mobilenetv2_departs_first_at_a_depthwise_convolution(tmp_path):
    """docs/how-to/locate.md's TF_ENABLE_ONEDNN_OPTS=1 envprint verify model.keras --locate, on a MobileNetV2."""
    keras.utils.set_random_seed(1)
    keras.applications.MobileNetV2(weights=None, input_shape=(48, 48, 3), alpha=0.35).save(tmp_path / "m.keras")
    saved = envprint.save(tmp_path / "m.keras", layers=True)  # this process: oneDNN as this host has it
    flipped = "0" if saved.fingerprint.tensorflow.onednn.enabled else "1"
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": flipped, "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = [sys.executable, "-m", "envprint", "verify", str(tmp_path / "m.keras"), "--locate", "--json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    report = json.loads(done.stdout)
    loc = report["layers"]
    first = loc["steps"][loc["first"]]
    # Measured here (AVX2, TF 2.21): Conv1 and its BN/ReLU stay bit-identical; the depthwise convolution departs.
    assert (first["name"], first["class_name"]) == ("expanded_conv_depthwise", "DepthwiseConv2D"), done.stdout[-2000:]
    assert loc["ops"]["expanded_conv_depthwise"] == "DepthwiseConv2dNative"
    onednn = next(x for x in report["explanations"] if x["cause"] == "onednn")
    assert onednn["score"] >= 0.95 and "runs an op oneDNN replaces" in onednn["reasoning"]
