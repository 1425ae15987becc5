"""Probes for every input kind, from what the model itself says (issue 20, part 1).

A full-integer quantized TFLite model (int8 and uint8 in and out), a text model (a string input
through TextVectorization, in .keras and as a SavedModel), a dict of named inputs read by
StringLookup, IntegerLookup, Hashing and CategoryEncoding beside a boolean and a float input, and
the inputs nothing explains (sparse, an integer read by a Dense), and a nested dict of inputs. Each is saved with envprint's own
probes and verified identical, from the command line and, in a fresh process, from the library.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from envhelpers import invoke, run_python

from envprint.errors import ExitCode

pytestmark = pytest.mark.keras3  # TextVectorization in safe mode, model.export and tf.string feeds: Keras 3

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"]
COLOURS = ["red", "green", "blue"]
CODES = [10, 20, 30, 40]


def _rep() -> object:
    rng = np.random.default_rng(0)
    for _ in range(16):
        yield [rng.standard_normal((1, 4)).astype(np.float32)]


@pytest.fixture(scope="session")
def kinds(tf, keras, models_dir) -> dict[str, Path]:
    """Every model of this module, saved once: quantized TFLite (int8, uint8), text (.keras, SavedModel), lookups."""
    init = {"kernel_initializer": keras.initializers.GlorotUniform(seed=7)}
    out: dict[str, Path] = {}
    folder = models_dir / "kinds"
    folder.mkdir()
    image = keras.Input((4,), name="image")
    mlp = keras.Model(image, keras.layers.Dense(2, **init)(keras.layers.Dense(3, activation="relu", **init)(image)))
    mlp.export(str(folder / "float_sm"), verbose=False)
    for dtype in ("int8", "uint8"):
        conv = tf.lite.TFLiteConverter.from_saved_model(str(folder / "float_sm"))
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = _rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = getattr(tf, dtype)
        out[dtype] = folder / f"{dtype}.tflite"
        out[dtype].write_bytes(conv.convert())

    text = keras.Input((1,), dtype="string", name="text")
    vec = keras.layers.TextVectorization(max_tokens=12, output_sequence_length=5, vocabulary=WORDS)
    x = keras.layers.Embedding(12, 4, embeddings_initializer=keras.initializers.RandomUniform(seed=3))(vec(text))
    text_model = keras.Model(text, keras.layers.Dense(2, **init)(keras.layers.GlobalAveragePooling1D()(x)))
    out["text"] = folder / "text.keras"
    text_model.save(out["text"])
    text_model.export(str(folder / "text_sm"), verbose=False)
    out["text_sm"] = folder / "text_sm"

    inputs = {
        "word": keras.Input((1,), dtype="string", name="word"),
        "code": keras.Input((1,), dtype="int64", name="code"),
        "tag": keras.Input((1,), dtype="string", name="tag"),
        "cat": keras.Input((1,), dtype="int32", name="cat"),
        "flag": keras.Input((1,), dtype="bool", name="flag"),
        "x": keras.Input((2,), name="x"),
    }
    word = keras.layers.Identity()(inputs["word"])  # passed on unchanged: the walk goes through it
    parts = [
        keras.layers.StringLookup(vocabulary=COLOURS, output_mode="one_hot")(word),
        keras.layers.IntegerLookup(vocabulary=CODES, output_mode="one_hot")(inputs["code"]),
        keras.layers.Hashing(num_bins=8, output_mode="one_hot")(inputs["tag"]),
        keras.layers.CategoryEncoding(num_tokens=5, output_mode="one_hot")(keras.layers.Reshape((1,))(inputs["cat"])),
        inputs["flag"],
    ]
    joined = keras.layers.Concatenate()([keras.ops.cast(p, "float32") for p in parts] + [inputs["x"]])
    out["lookups"] = folder / "lookups.keras"
    keras.Model(inputs, keras.layers.Dense(3, **init)(joined)).save(out["lookups"])

    a, b, c = keras.Input((2,), name="a"), keras.Input((3,), name="b"), keras.Input((1,), dtype="bool", name="c")
    joined = keras.layers.Concatenate()([a, b, keras.ops.cast(c, "float32")])
    out["nested"] = folder / "nested.keras"
    keras.Model({"a": a, "pair": [b, c]}, keras.layers.Dense(1, **init)(joined)).save(out["nested"])

    ids = keras.Input((3,), dtype="int32", name="ids")
    out["dense_ids"] = folder / "dense_ids.keras"
    keras.Model(ids, keras.layers.Dense(1, **init)(keras.ops.cast(ids, "float32"))).save(out["dense_ids"])
    return out


def _probes(record: Path) -> dict[str, np.ndarray]:
    with np.load(record / "probes.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _save(model: Path) -> dict[str, np.ndarray]:
    done = invoke("save", model, "--json")
    assert done.exit_code == 0, done.output
    return _probes(Path(done.json["sidecar"]))


def test_each_input_kind_gets_probes_from_the_model_and_verifies_identical(kinds) -> None:
    int8 = _save(kinds["int8"])["image"]
    assert int8.dtype == np.int8 and int8.min() < -100 and int8.max() > 100  # the whole calibrated range
    uint8 = _save(kinds["uint8"])["image"]
    assert uint8.dtype == np.uint8 and uint8.min() < 30 and uint8.max() > 225

    text = _save(kinds["text"])["text"]
    assert text.dtype.kind == "U" and text.shape == (8, 1)
    assert {w for t in text.ravel() for w in t.split()} <= set(WORDS)
    assert 1 <= min(len(t.split()) for t in text.ravel()) and max(len(t.split()) for t in text.ravel()) <= 5

    lookups = _save(kinds["lookups"])
    assert set(lookups["word"].ravel()) <= set(COLOURS) and set(lookups["code"].ravel()) <= set(CODES)
    assert lookups["code"].dtype == np.int64 and lookups["flag"].dtype == np.bool_
    assert lookups["cat"].min() >= 0 and lookups["cat"].max() < 5 and lookups["tag"].dtype.kind == "U"

    nested = _save(kinds["nested"])  # {'a': x, 'pair': [y, z]}: each leaf by its own input name
    assert {k: v.shape for k, v in nested.items()} == {"a": (8, 2), "b": (8, 3), "c": (8, 1)}

    for name in ("int8", "uint8", "text", "lookups", "nested"):
        done = invoke("verify", kinds[name], "--json")
        assert done.exit_code == 0, (name, done.output)
        assert done.json["verdict"] == "identical", (name, done.output)
        steps = [o["max_steps"] for o in done.json["outputs"]]
        assert steps == ([0] if name in ("int8", "uint8") else [None]), (name, steps)  # int8 out: counted in steps


@pytest.mark.subprocess
def test_a_fresh_process_verifies_every_kind_identical_through_the_library(kinds) -> None:
    models = [str(kinds[n]) for n in ("int8", "uint8", "text", "lookups", "nested")]
    for model in models:  # the records the test above wrote, or written here when it runs alone
        if not Path(model + ".envprint").exists():
            assert invoke("save", model).exit_code == 0
    code = (
        "import envprint, json, sys\n"
        f"verdicts = [envprint.verify(m).verdict for m in {models!r}]\n"
        "sys.stdout.write(json.dumps(verdicts))\n"
    )
    done = run_python(code, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == ["identical"] * 5


def test_the_text_savedmodel_keeps_the_vocabulary_but_hides_it_from_save(kinds, tmp_path) -> None:
    """The export predicts from its own vocabulary, but its signature does not say which input reads it:
    save refuses in one line, and the .keras record's probes (same input names) verify it."""
    refused = invoke("save", kinds["text_sm"], "--out", tmp_path / "refused")
    assert refused.exit_code == ExitCode.FINGERPRINT, refused.output
    assert "input 'text' is string and no TextVectorization, StringLookup or Hashing layer reads it; " in refused.output
    assert "pass --probes FILE.npz" in refused.output and len(refused.stderr.strip().splitlines()) == 1

    keras_record = Path(str(kinds["text"]) + ".envprint")
    if not keras_record.exists():
        assert invoke("save", kinds["text"]).exit_code == 0
    record = tmp_path / "sm.envprint"
    saved = invoke("save", kinds["text_sm"], "--probes", keras_record / "probes.npz", "--out", record)
    assert saved.exit_code == 0, saved.output
    done = invoke("verify", kinds["text_sm"], "--fingerprint", record / "fingerprint.json", "--json")
    assert done.exit_code == 0 and done.json["verdict"] == "identical", done.output


def test_an_integer_input_read_by_a_layer_that_says_nothing_is_refused_naming_it(kinds, tmp_path) -> None:
    done = invoke("save", kinds["dense_ids"], "--out", tmp_path / "r", "--json")
    assert done.exit_code == ExitCode.FINGERPRINT
    message = done.json["error"]["message"]
    assert message.startswith("input 'ids' is int32 and is read by ")
    assert "which does not say which values it takes; pass --probes FILE.npz with real examples" in message


@pytest.mark.parametrize("flag", ["sparse", "ragged"])
def test_sparse_and_ragged_inputs_are_refused_in_one_line(keras, flag) -> None:
    from envprint._tf.input_kinds import input_hints
    from envprint._tf.loading import wrap_model
    from envprint.errors import FingerprintError
    from envprint.record.probe_kinds import generate_probes

    inp = keras.Input((6,), name="counts", **{flag: True})
    model = wrap_model(keras.Model(inp, keras.layers.Dense(1)(inp) if flag == "sparse" else inp))
    with pytest.raises(FingerprintError) as err:
        generate_probes(model.inputs, num_probes=2, seed=0, hints=input_hints(model))
    assert str(err.value).startswith(f"input 'counts' is a {flag} tensor, which a .npz of dense arrays cannot hold")
    assert str(err.value).endswith("verify it with a dense-input export of the model")


def test_an_integer_output_is_compared_in_steps_and_said_so() -> None:
    from envprint.check import compare, histogram
    from envprint.models import Tolerance
    from envprint.render.text import summarize

    expected = {"scores": np.array([[-128, 5, 127], [0, 19, -3]], dtype=np.int8)}
    obtained = {"scores": expected["scores"] + np.array([[0, 3, 0], [0, -1, 0]], dtype=np.int8)}
    (c,) = histogram.with_histograms(compare.compare_outputs(expected, obtained, Tolerance()), expected, obtained)
    assert (c.status, c.max_steps, c.max_ulp, c.n_out_of_tolerance) == ("mismatch", 3, None, 2)
    assert "max 3 steps" in summarize(c) and "ULP" not in summarize(c)
    (same,) = histogram.with_histograms(compare.compare_outputs(expected, expected, Tolerance()), expected, expected)
    assert (same.status, same.max_steps) == ("identical", 0)


@pytest.mark.parametrize("heading", ["A text model, end to end", "A full-integer quantized TFLite model"])
def test_the_probes_page_examples_run(tf, keras, heading, capsys):
    """docs/concepts/probes.md: each example saves with envprint's own probes and verifies identical."""
    from docpages import block

    exec(compile(block("docs/concepts/probes.md", heading, "python"), "docs/concepts/probes.md", "exec"), {})
    assert capsys.readouterr().out.startswith("identical")


@pytest.mark.subprocess
def test_a_string_input_under_the_jax_backend_is_refused_in_one_line_naming_the_backend(kinds) -> None:
    """JAX has no string tensor: the text model cannot be predicted there, and verify says so (exit 4)."""
    if not Path(str(kinds["text"]) + ".envprint").exists():
        assert invoke("save", kinds["text"]).exit_code == 0
    done = subprocess.run(
        [sys.executable, "-m", "envprint", "verify", str(kinds["text"])],
        env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == ExitCode.MODEL, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("envprint: error:")]
    assert "input 'text' takes strings, which Keras on the jax backend cannot pass into a model" in line
    assert "KERAS_BACKEND=tensorflow" in line and "\x1b" not in line
