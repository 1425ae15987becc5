"""Loading every format with real TensorFlow: names, predictions, refusals, and the weights digest."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from envprint._tf.identity import integer_input_ranges, model_identity
from envprint._tf.loading import detect_format, load_model, parse_custom_objects
from envprint.errors import ExitCode, ModelError
from envprint.record.probe_kinds import generate_probes
from envprint.record.probes import TensorSpecInfo

MLP_FORMATS = ("keras", "h5", "savedmodel", "tflite")


@pytest.fixture(scope="module")
def tol(tf) -> dict[str, float]:
    """Tolerance between formats: float32 kernels on CPU, or TF32 matmuls where a GPU is visible.

    TensorFlow runs float32 matmuls in TF32 (10-bit mantissa) on Ampere and newer GPUs by
    default, while TFLite runs on the CPU: there the formats agree to about 1e-3, not 1e-5.
    """
    gpu = bool(tf.config.list_physical_devices("GPU"))
    return {"rtol": 5e-3, "atol": 5e-3} if gpu else {"rtol": 1e-5, "atol": 1e-5}


def spec(name: str, shape: tuple, dtype: str = "float32") -> TensorSpecInfo:
    return TensorSpecInfo(name, shape, dtype)


# ---------------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "expected"),
    [("m.keras", "keras"), ("m.h5", "h5"), ("m.HDF5", "h5"), ("m.tflite", "tflite")],
)
def test_detect_format_reads_the_suffix(tmp_path: Path, name: str, expected: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert detect_format(tmp_path / name) == expected


def test_detect_format_finds_a_savedmodel_directory(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert detect_format(tmp_path) == "savedmodel"


def test_unknown_format_names_the_accepted_ones_and_the_override(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ModelError) as err:
        detect_format(tmp_path / "model.onnx")
    assert str(err.value) == (
        f"{tmp_path / 'model.onnx'}: unknown model format (suffix '.onnx'); expected a .keras file, an .h5/.hdf5 file, "
        "a .tflite file, or a SavedModel directory (with saved_model.pb); pass --format keras|h5|savedmodel|tflite to override"
    )
    assert err.value.exit_code == ExitCode.MODEL


def test_missing_model_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        load_model(tmp_path / "gone.keras")
    assert str(err.value).startswith(
        f"{tmp_path / 'gone.keras'}: no such file or directory; pass the path of a .keras file"
    )


def test_format_override_loads_a_file_with_any_name(mlp, mlp_probes, tmp_path: Path) -> None:
    odd = tmp_path / "model.bin"
    odd.write_bytes(mlp["tflite"].read_bytes())
    with pytest.raises(ModelError, match=r"unknown model format \(suffix '.bin'\)"):
        load_model(odd)
    m = load_model(odd, fmt="tflite")
    assert m.format == "tflite" and m.predict(mlp_probes)[m.outputs[0].name].shape == (6, 3)


def test_unknown_format_override_is_refused(mlp) -> None:
    with pytest.raises(ModelError) as err:
        load_model(mlp["keras"], fmt="onnx")
    assert str(err.value) == "--format 'onnx' is not one of keras, h5, savedmodel, tflite; pick one"


@pytest.mark.subprocess
def test_importing_these_modules_does_not_import_tensorflow() -> None:
    code = (
        "import sys, envprint._tf.loading, envprint._tf.identity, envprint.record.probes, envprint.record.digests\n"
        "import envprint.check.investigate, envprint.causes.restore, envprint._tf.child\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'h5py') if m in sys.modules)\n"
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_directory_without_saved_model_pb(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="a directory without saved_model.pb, so not a SavedModel"):
        detect_format(tmp_path)


# ---------------------------------------------------------------------------------- names


def test_keras_formats_take_names_from_the_model(mlp) -> None:
    for fmt in ("keras", "h5"):
        m = load_model(mlp[fmt])
        assert m.format == fmt and m.keras_model is not None
        assert m.inputs == [spec("features", (None, 4))]
        assert m.outputs == [spec("logits", (None, 3))]


def test_savedmodel_names_come_from_the_signature(mlp, flavor) -> None:
    m = load_model(mlp["savedmodel"])
    assert (m.format, m.signature, m.keras_model) == ("savedmodel", "serving_default", None)
    assert m.inputs == [spec("features", (None, 4))]
    # model.export() (Keras 3) numbers its outputs; tf.saved_model.save (Keras 2) uses the output layer's name.
    assert m.outputs == [spec("output_0" if flavor == "keras3" else "logits", (None, 3))]


def test_tflite_names_come_from_the_signature(mlp, flavor) -> None:
    m = load_model(mlp["tflite"])
    assert (m.format, m.signature, m.runtime) == ("tflite", "serving_default", "tf.lite.Interpreter")
    assert m.inputs == [spec("features", (None, 4))]
    assert m.outputs == [spec("output_0" if flavor == "keras3" else "logits", (None, 3))]


def test_two_named_inputs_and_outputs_keep_the_models_names(two_inputs) -> None:
    m = load_model(two_inputs["keras"])
    assert [s.name for s in m.inputs] == ["a", "b"]
    assert [s.name for s in m.outputs] == ["score", "aux"]
    sm = load_model(two_inputs["savedmodel"])
    assert [s.name for s in sm.inputs] == ["a", "b"]


def test_predict_matches_by_input_name_not_by_order(tol, two_inputs) -> None:
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)
    expected = two_inputs.model.predict([a, b], verbose=0)
    for fmt in ("keras", "savedmodel"):
        m = load_model(two_inputs[fmt])
        got = m.predict({"b": b, "a": a})
        values = list(got.values())
        if fmt == "keras":
            assert list(got) == ["score", "aux"]
        else:  # Keras 3 export numbers outputs, Keras 2 names them: match by shape
            values = sorted(values, key=lambda v: -v.shape[1])
        np.testing.assert_allclose(values[0], expected[0], **tol)
        np.testing.assert_allclose(values[1], expected[1], **tol)


# ---------------------------------------------------------------------------------- predict


def test_predict_matches_across_formats(tol, mlp, mlp_probes) -> None:
    expected = np.asarray(mlp.model(mlp_probes["features"], training=False))
    for fmt in MLP_FORMATS:
        got = load_model(mlp[fmt]).predict(mlp_probes)
        (out,) = got.values()
        assert out.shape == (6, 3) and out.dtype == np.float32, fmt
        np.testing.assert_allclose(out, expected, **tol, err_msg=fmt)


def _bits(outputs: dict[str, np.ndarray]) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    return {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in outputs.items()}


@pytest.mark.parametrize("which", ["mlp", "two_inputs"])
def test_one_batch_predict_is_bit_identical_to_keras_predict(which: str, request, monkeypatch) -> None:
    m = load_model(request.getfixturevalue(which)["keras"])
    probes, _ = generate_probes(m.inputs, num_probes=6, seed=0)
    feed = m.feed(probes)
    # The path before predict_on_batch: Model.predict with the whole probe set as one batch.
    expected = _bits(m.named(m.keras_model.predict(feed, batch_size=6, verbose=0)))
    assert _bits(m.named(m.keras_model.predict_on_batch(feed))) == expected
    calls: list[str] = []
    cls = type(m.keras_model)
    original = cls.predict
    monkeypatch.setattr(cls, "predict", lambda self, *a, **k: (calls.append("predict"), original(self, *a, **k))[1])
    obtained = m.predict(probes)
    assert calls == []  # one batch never goes through predict()'s data pipeline and progress loop
    assert list(obtained) == [s.name for s in m.outputs]
    assert _bits(obtained) == expected
    assert _bits(m.predict(probes, batch_size=100)) == expected  # a batch larger than the probes is one batch
    m.predict(probes, batch_size=4)  # two batches: Model.predict batches them
    assert calls == ["predict"]


def test_a_model_that_overrides_predict_on_batch_is_predicted_through_it(mlp, monkeypatch) -> None:
    m = load_model(mlp["keras"])
    cls, calls = type(m.keras_model), []
    original = cls.predict_on_batch
    monkeypatch.setattr(cls, "predict_on_batch", lambda self, x: (calls.append(x.shape), original(self, x))[1])
    m.predict(generate_probes(m.inputs, num_probes=6, seed=0)[0])
    assert calls == [(6, 4)]


@pytest.mark.keras3  # trace reuse is specific to Keras 3's TensorFlow trainer
@pytest.mark.parametrize("which", ["mlp", "two_inputs", "dict_inputs"])
def test_verify_after_a_warm_up_predict_reuses_its_trace(which: str, request) -> None:
    # A server warms its model with predict() and then calls envprint.verify on it: the probes
    # must run through the function that warm-up traced, not trace it again (~1 s for MobileNetV2).
    m = load_model(request.getfixturevalue(which)["keras"])
    probes, _ = generate_probes(m.inputs, num_probes=6, seed=0)
    warm = _bits(m.named(m.keras_model.predict(m.feed(probes), batch_size=6, verbose=0)))
    traces = m.keras_model.predict_function.experimental_get_tracing_count()
    assert _bits(m.predict(probes)) == warm
    assert m.keras_model.predict_function.experimental_get_tracing_count() == traces


def test_predict_matches_call_and_is_repeatable(tol, mlp, mlp_probes) -> None:
    for fmt in MLP_FORMATS:
        m = load_model(mlp[fmt])
        first = m.predict(mlp_probes)["logits" if fmt in ("keras", "h5") else m.outputs[0].name]
        np.testing.assert_array_equal(first, m.predict(mlp_probes)[m.outputs[0].name])
        np.testing.assert_allclose(m.call(mlp_probes)[m.outputs[0].name], first, **tol, err_msg=fmt)


@pytest.mark.parametrize("fmt", MLP_FORMATS)
def test_batch_size_splits_the_probes_without_changing_results(tol, mlp, mlp_probes, fmt: str) -> None:
    m = load_model(mlp[fmt])
    name = m.outputs[0].name
    whole = m.predict(mlp_probes)[name]
    in_fours = m.predict(mlp_probes, batch_size=4)[name]  # 6 probes: a batch of 4, then one of 2
    assert in_fours.shape == whole.shape
    np.testing.assert_allclose(in_fours, whole, **tol)


def test_tflite_with_a_fixed_batch_runs_one_probe_at_a_time(tol, mlp, mlp_probes, mlp_fixed_batch_tflite) -> None:
    m = load_model(mlp_fixed_batch_tflite)
    assert m.inputs[0].shape == (1, 4)
    (out,) = m.predict(mlp_probes).values()
    expected = np.asarray(mlp.model(mlp_probes["features"], training=False))
    np.testing.assert_allclose(out, expected, **tol)


def test_tflite_without_signature_uses_cleaned_tensor_names(tol, mlp, mlp_probes, tmp_path: Path) -> None:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(mlp["tflite"]))
    model.signatureDefs = []
    bare = tmp_path / "bare.tflite"
    flatbuffer_utils.write_model(model, str(bare))
    m = load_model(bare)
    assert m.signature is None
    assert m.inputs == [spec("features", (None, 4))]
    (out,) = m.predict(mlp_probes).values()
    expected = np.asarray(mlp.model(mlp_probes["features"], training=False))
    np.testing.assert_allclose(out, expected, **tol)


def test_predict_refuses_probes_of_the_wrong_dtype(mlp) -> None:
    m = load_model(mlp["keras"])
    with pytest.raises(ModelError) as err:
        m.predict({"features": np.ones((2, 4), np.float64)})
    assert str(err.value) == (
        f"{mlp['keras']}: input 'features' is float64 but the model expects float32; "
        "load probes with envprint.record.probes.load_probes, which casts them"
    )


def test_predict_refuses_probes_named_otherwise(mlp) -> None:
    m = load_model(mlp["savedmodel"])
    with pytest.raises(ModelError) as err:
        m.predict({"x": np.ones((2, 4), np.float32)})
    assert str(err.value) == (
        f"{mlp['savedmodel']}: probes have inputs ['x'] but the model expects ['features']; "
        "name the probes after the model's inputs"
    )


def test_predict_refuses_probes_of_the_wrong_shape(mlp) -> None:
    m = load_model(mlp["tflite"])
    with pytest.raises(ModelError, match=r"input 'features' has shape \(2, 5\) but the model expects \(None, 4\)"):
        m.predict({"features": np.ones((2, 5), np.float32)})


# ---------------------------------------------------------------------------------- signatures


def test_missing_signature_names_available_ones(mlp, flavor) -> None:
    with pytest.raises(ModelError) as err:
        load_model(mlp["savedmodel"], signature="predict")
    available = "serve, serving_default" if flavor == "keras3" else "serving_default"
    assert str(err.value) == (
        f"{mlp['savedmodel']}: no signature 'predict'; available signatures: {available}; pass --signature NAME"
    )


@pytest.mark.keras3  # only Keras 3's model.export() writes a second signature ('serve')
def test_named_signature_is_used(mlp, mlp_probes) -> None:
    m = load_model(mlp["savedmodel"], signature="serve")
    assert m.signature == "serve"
    (out,) = m.predict(mlp_probes).values()
    assert out.shape == (6, 3)


def test_tflite_missing_signature_names_available_ones(mlp) -> None:
    with pytest.raises(ModelError) as err:
        load_model(mlp["tflite"], signature="predict")
    assert str(err.value) == (
        f"{mlp['tflite']}: no signature 'predict'; available signatures: serving_default; pass --signature NAME"
    )


def test_signature_is_refused_for_keras_files(mlp) -> None:
    with pytest.raises(ModelError, match="--signature applies to SavedModel and TFLite models"):
        load_model(mlp["keras"], signature="serving_default")


# ---------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_lambda_layer_refused_under_safe_mode(lambda_model, fmt: str) -> None:
    with pytest.raises(ModelError) as err:
        load_model(lambda_model[fmt])
    assert str(err.value) == (
        f"{lambda_model[fmt]}: contains a Lambda layer with Python code, which safe mode refuses to load "
        "(it could run arbitrary code); pass --unsafe if you trust this file"
    )
    assert err.value.__cause__ is not None or fmt == "h5"  # .h5 is refused before Keras reads it


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_lambda_layer_loads_when_unsafe_is_asked_for(lambda_model, fmt: str) -> None:
    m = load_model(lambda_model[fmt], safe_mode=False)
    (out,) = m.predict({"x": np.array([[1.0, -2.0]], np.float32)}).values()
    np.testing.assert_array_equal(out, [[2.0, -4.0]])


def test_unsafe_load_leaves_safe_mode_on_for_the_next_load(lambda_model) -> None:
    load_model(lambda_model["keras"], safe_mode=False)
    with pytest.raises(ModelError, match="safe mode refuses to load"):
        load_model(lambda_model["keras"])


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_missing_custom_object_names_the_class_and_the_fix(custom_layer, fmt: str) -> None:
    saved, _ = custom_layer
    with pytest.raises(ModelError) as err:
        load_model(saved[fmt])
    assert str(err.value) == (
        f"{saved[fmt]}: uses the custom object 'Doubler', which is not known here; "
        "pass --custom-objects package.module:Doubler (the module that defines it)"
    )
    assert err.value.__cause__ is not None


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_custom_objects_from_the_command_line_load_the_model(custom_layer, keras, fmt: str, monkeypatch) -> None:
    saved, src = custom_layer
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.delitem(sys.modules, "envprint_test_custom_layers", raising=False)
    registry_before = dict(keras.saving.get_custom_objects())
    objects = parse_custom_objects(["envprint_test_custom_layers:Doubler"])
    assert list(objects) == ["Doubler"]
    m = load_model(saved[fmt], custom_objects=objects)
    (out,) = m.predict({"x": np.array([[1.5, 2.0]], np.float32)}).values()
    np.testing.assert_array_equal(out, [[3.0, 4.0]])
    assert dict(keras.saving.get_custom_objects()) == registry_before  # nothing registered globally


@pytest.mark.parametrize(
    ("spec_", "message"),
    [
        ("no_colon", "--custom-objects 'no_colon': expected package.module:NAME, e.g. mypkg.layers:MyLayer"),
        (
            "json:NoSuchThing",
            "--custom-objects 'json:NoSuchThing': 'json' has no attribute 'NoSuchThing'; check the name",
        ),
    ],
)
def test_bad_custom_objects_spec(spec_: str, message: str) -> None:
    with pytest.raises(ModelError) as err:
        parse_custom_objects([spec_])
    assert str(err.value) == message


def test_custom_objects_module_that_cannot_be_imported() -> None:
    with pytest.raises(ModelError) as err:
        parse_custom_objects(["envprint_no_such_module:Layer"])
    assert str(err.value) == (
        "--custom-objects 'envprint_no_such_module:Layer': cannot import 'envprint_no_such_module' "
        "(ModuleNotFoundError: No module named 'envprint_no_such_module'); install it or add its directory to PYTHONPATH"
    )


def test_corrupt_keras_file_refused(mlp, tmp_path: Path) -> None:
    bad = tmp_path / "model.keras"
    bad.write_bytes(mlp["keras"].read_bytes()[:200])
    with pytest.raises(ModelError) as err:
        load_model(bad)
    assert str(err.value) == (
        f"{bad}: not a .keras archive (not a zip file: truncated or corrupt?); re-save it with model.save('model.keras')"
    )


def test_truncated_h5_refused(mlp, tmp_path: Path) -> None:
    bad = tmp_path / "model.h5"
    bad.write_bytes(mlp["h5"].read_bytes()[:200])
    with pytest.raises(ModelError) as err:
        load_model(bad)
    assert str(err.value).startswith(f"{bad}: not a readable HDF5 file (")
    assert str(err.value).endswith("it is truncated or corrupt: re-save it with model.save()")
    assert isinstance(err.value.__cause__, OSError)


def test_corrupt_tflite_refused(tmp_path: Path, tf) -> None:
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError) as err:
        load_model(bad)
    assert str(err.value).startswith(f"{bad}: cannot be loaded as a TFLite model (")
    assert err.value.__cause__ is not None


def test_corrupt_savedmodel_refused(tmp_path: Path, tf) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(ModelError) as err:
        load_model(tmp_path)
    assert str(err.value).startswith(f"{tmp_path}: cannot be loaded as a SavedModel (")
    assert str(err.value).endswith("check that the directory is complete (saved_model.pb and variables/)")


def test_h5_with_weights_only_refused(mlp, tmp_path: Path) -> None:
    weights = tmp_path / "model.weights.h5"
    mlp.model.save_weights(weights)
    with pytest.raises(ModelError) as err:
        load_model(weights)
    assert str(err.value) == (
        f"{weights}: holds weights only (no model_config; written by save_weights()); "
        "save the whole model with model.save(), or build the model in code and load the weights"
    )


def test_keras_file_from_a_newer_keras_major_is_refused_cleanly(mlp, keras, tmp_path: Path) -> None:
    # The same refusal a Keras 3 file meets under Keras 2: this file claims a major no Keras has yet.
    future = tmp_path / "future.keras"
    with zipfile.ZipFile(mlp["keras"]) as src, zipfile.ZipFile(future, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "metadata.json":
                data = json.dumps({**json.loads(data), "keras_version": "99.0.0"}).encode()
            dst.writestr(item, data)
    with pytest.raises(ModelError) as err:
        load_model(future)
    assert str(err.value) == (
        f"{future}: saved by Keras 99.0.0, which this host's Keras {keras.__version__} cannot read; "
        "load it where Keras 99 is installed, or export a SavedModel with model.export()"
    )


def test_a_keras_file_from_a_newer_keras_minor_that_fails_names_both_versions(
    mlp, keras, flavor, tmp_path: Path
) -> None:
    # What Keras 3.12 meets in a file from Keras 3.15: a config key it does not know (quantization_config).
    if flavor != "keras3":
        pytest.skip("the newer-minor rule is a Keras 3 one")
    future = tmp_path / "future.keras"
    major, minor = (int(p) for p in keras.__version__.split(".")[:2])
    newer = f"{major}.{minor + 1}.0"
    with zipfile.ZipFile(mlp["keras"]) as src, zipfile.ZipFile(future, "w") as dst:
        for item in src.namelist():
            data = json.loads(src.read(item)) if item.endswith(".json") else src.read(item)
            if item == "metadata.json":
                data["keras_version"] = newer
            if item == "config.json":
                for layer in data["config"]["layers"]:
                    layer["config"]["option_from_the_future"] = None
            dst.writestr(item, json.dumps(data).encode() if item.endswith(".json") else data)
    with pytest.raises(ModelError) as err:
        load_model(future)
    text = str(err.value)
    assert text.startswith(
        f"{future}: saved by Keras {newer}, newer than this host's Keras {keras.__version__}, which cannot read it ("
    )
    assert text.endswith(
        f"); upgrade Keras here to at least {newer} (pip install 'keras>={newer}'), "
        "or export a SavedModel on the training host (model.export(...))"
    )
    assert "\n" not in text
    assert err.value.exit_code == ExitCode.MODEL


def test_h5_from_a_newer_keras_major_is_refused_cleanly(mlp, keras, tmp_path: Path) -> None:
    import h5py

    future = tmp_path / "future.h5"
    future.write_bytes(mlp["h5"].read_bytes())
    with h5py.File(future, "r+") as f:
        f.attrs["keras_version"] = "99.0.0"
    with pytest.raises(ModelError) as err:
        load_model(future)
    assert str(err.value) == (
        f"{future}: saved by Keras 99.0.0, which this host's Keras {keras.__version__} cannot read; "
        "load it where Keras 99 is installed, or export a SavedModel with model.export()"
    )


# ---------------------------------------------------------------------------------- identity


def _reference_digest(weights: list[tuple[str, np.ndarray]], scheme: str) -> str:
    """The weights digest as the first release computed it (a copy per weight, then tobytes()).

    Saved fingerprints carry these digests: the streaming implementation must agree byte for byte.
    """
    leaves = []
    for name, arr in weights:
        a = np.ascontiguousarray(arr)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        leaf = hashlib.sha256(f"{name}\0{a.dtype.name}\0{','.join(map(str, a.shape))}\0".encode())
        leaf.update(a.tobytes())
        leaves.append((name, leaf.hexdigest()))
    leaves.sort(key=(lambda nl: nl[1]) if scheme in ("tflite-constants-v1", "tensors-v2") else (lambda nl: nl[0]))
    h = hashlib.sha256(f"envprint-weights-{scheme}\n".encode())
    for name, leaf in leaves:
        h.update(f"{name}\0{leaf}\n".encode())
    return h.hexdigest()


def _odd_weights() -> list[tuple[str, np.ndarray]]:
    """Every layout and dtype the in-place hashing must treat exactly as tobytes() did."""
    import ml_dtypes  # a TensorFlow dependency

    base = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    return [
        ("dense/kernel", base),
        ("dense/bias", np.array([0.5, -0.25, 1e-8], np.float32)),
        ("a/fortran", np.asfortranarray(base)),
        ("a/strided", base[:, ::2]),
        ("a/big_endian", base.astype(">f4")),
        ("a/scalar", np.array(3.0, np.float64)),
        ("a/empty", np.zeros((0, 5), np.float32)),
        ("a/bf16", base.astype(ml_dtypes.bfloat16)),
        ("a/int8", np.arange(-4, 4, dtype=np.int8)),
        ("a/bool", np.array([True, False, True])),
        ("a/f16", base.astype(np.float16)),
        ("dup", np.ones(2, np.int32)),  # equal names keep the model's order
        ("dup", np.zeros(2, np.int32)),
    ]


@pytest.mark.parametrize(
    ("scheme", "unnamed", "expected"),
    [
        ("named-v1", False, "9fd9bb7570fdf59fb40e498bcc4a2df32902fcd45692ce8e0b959b29746dbf7c"),
        ("tflite-constants-v1", False, "96bf8341e97d2a5d87c422422aac8057799ebaf6f5b6becaec1a32d9a79c8a2c"),
        ("tflite-constants-v1", True, "7fc35913c875bd36461b08f7605e8ea8eaae060da8437b05af75fca46d4ce73f"),
        # tensors-v2 hashes no names: the named and unnamed weights give the digest of the unnamed ones.
        ("tensors-v2", True, "8789ddb742fe673d24956d33e583ca7a111c49aee7baff5fbca9de83415084ee"),
        ("tensors-v2", False, "8789ddb742fe673d24956d33e583ca7a111c49aee7baff5fbca9de83415084ee"),
    ],
)
def test_weights_digest_is_unchanged_for_every_dtype_and_layout(scheme: str, unnamed: bool, expected: str) -> None:
    from envprint._tf.identity import weights_digest

    # named-v1 and tflite-constants-v1 digests were computed by the first release's implementation
    # (_reference_digest); tensors-v2 is the same computation without names. Records carry them all.
    weights = [("" if unnamed else n, a) for n, a in _odd_weights()]
    assert _reference_digest([("", a) for _, a in weights] if scheme == "tensors-v2" else weights, scheme) == expected
    assert weights_digest(iter(weights), scheme) == (expected, 13, 85)


@pytest.mark.parametrize("fmt", MLP_FORMATS)
def test_weights_digest_matches_the_reference_for_every_format(mlp, fmt: str) -> None:
    from envprint._tf.identity import legacy_weights_digests

    loaded = load_model(mlp[fmt])
    weights = [(name, np.array(value, copy=True)) for name, value in loaded.weights()]
    ident = model_identity(loaded)
    scheme = ident["weights_digest_scheme"]
    assert scheme == ("tflite-constants-v1" if fmt == "tflite" else "tensors-v2")
    unnamed = [("" if scheme == "tensors-v2" else n, a) for n, a in weights]
    assert ident["weights_digest"] == _reference_digest(unnamed, scheme)
    if fmt != "tflite":  # a 0.1.0 record of this file is still checked with 0.1.0's digest
        assert _reference_digest(weights, "named-v1") in legacy_weights_digests(loaded, "named-v1")
    assert ident["weights_count"] == len(weights) == 4
    assert ident["parameter_count"] == 4 * 8 + 8 + 8 * 3 + 3
    assert "weights_digest" not in ident["unavailable"]


def test_weights_digest_does_not_copy_the_weights(keras) -> None:
    import tracemalloc

    from envprint._tf.loading import wrap_model

    inp = keras.Input((1000,), name="x")
    loaded = wrap_model(keras.Model(inp, keras.layers.Dense(1000, name="big")(inp)))  # a 4 MB kernel
    expected = model_identity(loaded)["weights_digest"]  # also warms imports and first reads
    tracemalloc.start()
    try:
        ident = model_identity(loaded)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ident["weights_digest"] == expected and ident["parameter_count"] == 1000 * 1000 + 1000
    # Copying into a list and then tobytes() peaked at twice the kernel (8 MB).
    assert peak < 1_000_000, f"hashing the weights allocated {peak} bytes; it should read them in place"


def test_weights_digest_same_when_same_weights_saved_again(mlp, save, tmp_path: Path) -> None:
    digests = {fmt: model_identity(load_model(mlp[fmt]))["weights_digest"] for fmt in ("keras", "h5", "savedmodel")}
    assert len(set(digests.values())) == 1, digests
    resaved = save(load_model(mlp["h5"]).keras_model, tmp_path, ("keras",))
    assert model_identity(load_model(resaved["keras"]))["weights_digest"] == digests["keras"]


def test_weights_digest_changes_when_one_weight_changes(mlp, mlp_one_weight_changed) -> None:
    same = model_identity(load_model(mlp["keras"]))
    changed = model_identity(load_model(mlp_one_weight_changed["keras"]))
    assert changed["weights_digest"] != same["weights_digest"]
    assert changed["parameter_count"] == same["parameter_count"] == 4 * 8 + 8 + 8 * 3 + 3


def test_tflite_weights_digest_same_when_converted_again_and_changes_with_one_weight(
    mlp, mlp_one_weight_changed, save, tmp_path: Path
) -> None:
    original = model_identity(load_model(mlp["tflite"]))
    assert "weights_digest" not in original["unavailable"] and len(original["weights_digest"]) == 64
    assert original["parameter_count"] == 4 * 8 + 8 + 8 * 3 + 3  # every kernel and bias, as constants
    again = save(load_model(mlp["keras"]).keras_model, tmp_path, ("tflite",))["tflite"]
    assert model_identity(load_model(again))["weights_digest"] == original["weights_digest"]
    assert model_identity(load_model(mlp_one_weight_changed["tflite"]))["weights_digest"] != original["weights_digest"]
    assert original["weights_digest_scheme"] == "tflite-constants-v1"


def test_identity_of_a_keras_model(embedding_dropout) -> None:
    ident = model_identity(load_model(embedding_dropout["keras"]))
    assert ident["format"] == "keras"
    assert ident["weights_digest_scheme"] == "tensors-v2" and len(ident["weights_digest"]) == 64
    assert ident["parameter_count"] == 50 * 4 + 4 * 1 + 1
    assert {"Embedding", "Dropout", "Dense", "GlobalAveragePooling1D"} <= set(ident["layer_classes"])
    assert ident["layer_classes"] == sorted(ident["layer_classes"])
    assert ident["stochastic_layers"] == [{"name": "drop", "class_name": "Dropout"}]
    assert ident["dtype_policy"] == "float32"
    assert ident["saved_model_fingerprint"] is None
    assert ident["unavailable"] == {"saved_model_fingerprint": "not a SavedModel"}
    assert ident["inputs"] == [{"name": "tokens", "shape": [None, 5], "dtype": "int32"}]
    json.dumps(ident)  # plain data


def test_identity_of_a_savedmodel_reads_its_fingerprint_and_matches_the_keras_digest(embedding_dropout) -> None:
    ident = model_identity(load_model(embedding_dropout["savedmodel"]))
    fp = ident["saved_model_fingerprint"]
    assert set(fp) >= {
        "saved_model_checksum",
        "graph_def_program_hash",
        "signature_def_hash",
        "saved_object_graph_hash",
        "checkpoint_hash",
    }
    assert all(isinstance(v, int) for v in fp.values())
    assert ident["layer_classes"] is None
    assert ident["unavailable"]["layer_classes"] == "a SavedModel carries no Keras layer graph"
    # The seed generator's state that Keras 3 exports beside the weights is not a weight.
    assert ident["weights_digest"] == model_identity(load_model(embedding_dropout["keras"]))["weights_digest"]


def test_integer_input_ranges_read_the_embedding_vocabulary(embedding_dropout, mlp) -> None:
    assert integer_input_ranges(load_model(embedding_dropout["keras"])) == {"tokens": (0, 50)}
    assert integer_input_ranges(load_model(embedding_dropout["savedmodel"])) == {}
    assert integer_input_ranges(load_model(mlp["keras"])) == {}


def test_embedding_probes_stay_in_vocabulary_and_run(tol, embedding_dropout) -> None:
    m = load_model(embedding_dropout["keras"])
    probes, _ = generate_probes(m.inputs, num_probes=64, seed=0, int_ranges=integer_input_ranges(m))
    assert probes["tokens"].min() >= 0 and probes["tokens"].max() < 50
    out = m.predict(probes)
    # Dropout is off in inference: predict, call, and a second predict agree.
    np.testing.assert_array_equal(out["out"], m.predict(probes)["out"])
    np.testing.assert_allclose(m.call(probes)["out"], out["out"], **tol)
    sm = load_model(embedding_dropout["savedmodel"])
    (sm_out,) = sm.predict(probes).values()
    np.testing.assert_allclose(sm_out, out["out"], **tol)
