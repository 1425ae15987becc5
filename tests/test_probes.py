"""Probes: generated from a recipe that regenerates them, or loaded from the user's files, never unpickled."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from envhelpers import invoke
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from envprint.errors import ExitCode, FingerprintError
from envprint.record import probe_kinds as pk
from envprint.record.npz import load_arrays, save_arrays
from envprint.record.probe_kinds import InputHint, generate_probes, probes_from_recipe
from envprint.record.probes import TensorSpecInfo, load_probes

FEATURES = TensorSpecInfo("features", (None, 4), "float32")
TOKENS = TensorSpecInfo("tokens", (None, 5), "int32")


# ---------------------------------------------------------------------------------- generate


def test_generated_probes_are_deterministic_for_a_seed() -> None:
    a, _ = generate_probes([FEATURES], num_probes=8, seed=3)
    b, _ = generate_probes([FEATURES], num_probes=8, seed=3)
    c, _ = generate_probes([FEATURES], num_probes=8, seed=4)
    np.testing.assert_array_equal(a["features"], b["features"])
    assert not np.array_equal(a["features"], c["features"])


def test_float_probes_are_standard_normal_drawn_in_float64_then_cast() -> None:
    probes, recipe = generate_probes([FEATURES], num_probes=2000, seed=0)
    x = probes["features"]
    assert x.shape == (2000, 4) and x.dtype == np.float32
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1.0) < 0.05
    assert recipe["inputs"]["features"] == {"shape": [2000, 4], "dtype": "float32", "distribution": "standard_normal"}
    half, _ = generate_probes([TensorSpecInfo("features", (None, 4), "float16")], num_probes=2000, seed=0)
    np.testing.assert_array_equal(half["features"], x.astype(np.float64).astype(np.float16))


def test_adding_an_input_does_not_change_the_others() -> None:
    alone, _ = generate_probes([FEATURES], num_probes=4, seed=7)
    with_more, _ = generate_probes([TensorSpecInfo("aaa_first", (None, 2), "float32"), FEATURES], num_probes=4, seed=7)
    np.testing.assert_array_equal(alone["features"], with_more["features"])


def test_integer_input_without_range_requires_probes() -> None:
    with pytest.raises(FingerprintError) as err:
        generate_probes([TOKENS], num_probes=2, seed=0)
    assert str(err.value) == (
        "input 'tokens' is int32 and no Embedding, lookup, Hashing or CategoryEncoding layer reads it and it is "
        "not quantized; pass --probes FILE.npz with real examples (np.savez(path, NAME=array), one array per input)"
    )
    assert err.value.exit_code == ExitCode.FINGERPRINT


def test_embedding_probes_stay_in_vocabulary() -> None:
    probes, recipe = generate_probes([TOKENS], num_probes=500, seed=1, int_ranges={"tokens": (0, 50)})
    t = probes["tokens"]
    assert t.dtype == np.int32 and t.shape == (500, 5)
    assert t.min() == 0 and t.max() == 49
    assert recipe["inputs"]["tokens"]["distribution"] == "uniform_integers"
    assert (recipe["inputs"]["tokens"]["low"], recipe["inputs"]["tokens"]["high"]) == (0, 50)


def test_integer_range_for_a_float_input_gives_whole_numbers() -> None:
    probes, _ = generate_probes([FEATURES], num_probes=10, seed=1, int_ranges={"features": (0, 7)})
    x = probes["features"]
    assert x.dtype == np.float32 and np.array_equal(x, np.round(x)) and 0 <= x.min() and x.max() < 7


def test_integer_range_that_does_not_fit_the_dtype_is_refused() -> None:
    with pytest.raises(FingerprintError, match=r"integer range \[0, 1000\) does not fit uint8"):
        generate_probes(
            [TensorSpecInfo("ids", (None, 3), "uint8")], num_probes=2, seed=0, int_ranges={"ids": (0, 1000)}
        )


def test_complex_inputs_and_strings_no_layer_explains_require_probes() -> None:
    with pytest.raises(FingerprintError) as err:
        generate_probes([TensorSpecInfo("flag", (None, 1), "complex64")], num_probes=2, seed=0)
    assert str(err.value) == (
        "input 'flag' is complex64: envprint cannot invent meaningful values of this type; "
        "pass --probes FILE.npz with real examples"
    )
    with pytest.raises(
        FingerprintError, match="^input 'text' is string and no TextVectorization, StringLookup or Hash"
    ):
        generate_probes([TensorSpecInfo("text", (None, 1), "string")], num_probes=2, seed=0)


def test_boolean_inputs_get_both_values_and_regenerate_from_the_recipe() -> None:
    probes, recipe = generate_probes([TensorSpecInfo("flag", (None, 3), "bool")], num_probes=50, seed=0)
    assert probes["flag"].dtype == np.bool_ and probes["flag"].any() and not probes["flag"].all()
    np.testing.assert_array_equal(probes_from_recipe(json.loads(json.dumps(recipe)))["flag"], probes["flag"])


def test_vocabulary_and_text_hints_give_strings_of_the_vocabulary_that_regenerate() -> None:
    specs = [TensorSpecInfo("word", (None, 1), "string"), TensorSpecInfo("text", (None,), "string")]
    hints = {
        "word": InputHint(pk.TOKENS, "StringLookup", tokens=("red", "blue")),
        "text": InputHint(pk.TEXT, "TextVectorization", high=3, tokens=("a", "cat", "sat")),
    }
    probes, recipe = generate_probes(specs, num_probes=40, seed=2, hints=hints)
    assert probes["word"].dtype.kind == "U" and set(probes["word"].ravel()) == {"red", "blue"}
    assert {len(t.split()) for t in probes["text"]} == {1, 2, 3}
    assert {w for t in probes["text"] for w in t.split()} == {"a", "cat", "sat"}
    again = probes_from_recipe(json.loads(json.dumps(recipe)))
    assert all(np.array_equal(again[k], probes[k]) for k in probes)


def test_a_quantized_input_spans_its_whole_integer_range() -> None:
    hint = InputHint(pk.QUANTIZED, "quantization", -128, 128, scale=0.02, zero_point=3)
    probes, _ = generate_probes(
        [TensorSpecInfo("image", (None, 64), "int8")], num_probes=8, seed=0, hints={"image": hint}
    )
    assert probes["image"].dtype == np.int8 and probes["image"].min() == -128 and probes["image"].max() == 127


def test_dynamic_dim_requires_input_shape() -> None:
    seq = TensorSpecInfo("seq", (None, None, 3), "float32")
    with pytest.raises(FingerprintError) as err:
        generate_probes([seq], num_probes=2, seed=0)
    assert str(err.value) == (
        "input 'seq' has shape (None, None, 3): a dimension other than the batch is dynamic; "
        "pass --input-shape seq=D1,D2 (one sample's shape, without the batch dimension) or --probes FILE.npz"
    )


def test_input_shape_fills_the_dynamic_dims() -> None:
    seq = TensorSpecInfo("seq", (None, None, 3), "float32")
    probes, recipe = generate_probes([seq], num_probes=2, seed=0, input_shapes={"seq": (7, 3)})
    assert probes["seq"].shape == (2, 7, 3)
    assert recipe["inputs"]["seq"]["shape"] == [2, 7, 3]


def test_input_shape_that_contradicts_a_fixed_dim_is_refused() -> None:
    seq = TensorSpecInfo("seq", (None, None, 3), "float32")
    with pytest.raises(FingerprintError) as err:
        generate_probes([seq], num_probes=2, seed=0, input_shapes={"seq": (7, 4)})
    assert str(err.value) == (
        "--input-shape seq=7,4 does not fit the input's shape (None, None, 3); "
        "give one sample's shape without the batch dimension: --input-shape seq=D1,D2"
    )


def test_recipe_is_json_and_regenerates_the_same_probes_bit_for_bit() -> None:
    inputs = [FEATURES, TOKENS, TensorSpecInfo("seq", (None, None, 2), "float64")]
    probes, recipe = generate_probes(
        inputs, num_probes=3, seed=11, input_shapes={"seq": (4, 2)}, int_ranges={"tokens": (0, 9)}
    )
    again = probes_from_recipe(json.loads(json.dumps(recipe)))
    assert sorted(again) == sorted(probes) == ["features", "seq", "tokens"]
    for name in probes:
        assert again[name].dtype == probes[name].dtype
        np.testing.assert_array_equal(again[name], probes[name])
    assert recipe["seed"] == 11 and recipe["num_probes"] == 3


def test_recipe_of_an_unknown_version_is_refused() -> None:
    with pytest.raises(FingerprintError, match="probe recipe version 99 is not one this envprint reads"):
        probes_from_recipe({"recipe_version": 99, "inputs": {}})


# ---------------------------------------------------------------------------------- load


def test_npy_probes_for_a_single_input(tmp_path: Path) -> None:
    x = np.ones((3, 4), np.float32)
    np.save(tmp_path / "p.npy", x)
    got = load_probes(tmp_path / "p.npy", [FEATURES])
    np.testing.assert_array_equal(got["features"], x)


def test_npy_is_refused_for_a_model_with_several_inputs(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.ones((3, 4), np.float32))
    with pytest.raises(FingerprintError) as err:
        load_probes(tmp_path / "p.npy", [FEATURES, TOKENS])
    assert str(err.value) == (
        f"{tmp_path / 'p.npy'}: a .npy holds one array but the model has 2 inputs (features, tokens); "
        "pass an .npz keyed by input name: np.savez(path, features=..., tokens=...)"
    )


def test_npz_probes_are_keyed_by_input_name(tmp_path: Path) -> None:
    np.savez(tmp_path / "p.npz", tokens=np.zeros((2, 5), np.int32), features=np.ones((2, 4), np.float32))
    got = load_probes(tmp_path / "p.npz", [FEATURES, TOKENS])
    assert got["tokens"].dtype == np.int32 and got["features"].shape == (2, 4)


def test_object_array_probes_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.array([[1.0, "a", None, 2.0]], dtype=object), allow_pickle=True)
    with pytest.raises(FingerprintError) as err:
        load_probes(tmp_path / "p.npy", [FEATURES])
    assert str(err.value) == (
        f"{tmp_path / 'p.npy'}: holds Python objects (an object array or a pickle), which envprint never unpickles; "
        "save numeric arrays with np.save/np.savez"
    )


def test_object_array_inside_an_npz_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "p.npz", features=np.array([[1.0, None, 2.0, 3.0]], dtype=object))
    with pytest.raises(FingerprintError) as err:
        load_probes(tmp_path / "p.npz", [FEATURES])
    assert str(err.value).startswith(f"{tmp_path / 'p.npz'}['features']: holds Python objects (an object array)")


def test_a_pickle_named_npy_is_never_unpickled(tmp_path: Path) -> None:
    (tmp_path / "p.npy").write_bytes(pickle.dumps({"features": [1, 2, 3, 4]}))
    with pytest.raises(FingerprintError, match="which envprint never unpickles"):
        load_probes(tmp_path / "p.npy", [FEATURES])


def test_truncated_npz_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "full.npz", features=np.ones((50, 4), np.float32))
    data = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "p.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(FingerprintError) as err:
        load_probes(tmp_path / "p.npz", [FEATURES])
    assert str(err.value).startswith(f"{tmp_path / 'p.npz'}: ")
    assert str(err.value).endswith("re-create it with np.save/np.savez")


def test_truncated_npy_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "full.npy", np.ones((50, 4), np.float32))
    (tmp_path / "p.npy").write_bytes((tmp_path / "full.npy").read_bytes()[:300])
    with pytest.raises(FingerprintError, match=r"re-create (it|p.npy) with np.save/np.savez$"):
        load_probes(tmp_path / "p.npy", [FEATURES])


def test_missing_and_unexpected_names_are_listed(tmp_path: Path) -> None:
    np.savez(tmp_path / "p.npz", feature=np.ones((2, 4), np.float32), tokens=np.zeros((2, 5), np.int32))
    with pytest.raises(FingerprintError) as err:
        load_probes(tmp_path / "p.npz", [FEATURES, TOKENS])
    assert str(err.value) == (
        f"{tmp_path / 'p.npz'}: missing 'features'; unexpected 'feature'; "
        "its keys must be exactly the model's input names: features, tokens"
    )


def test_a_single_input_takes_the_one_array_of_an_npz_whatever_its_key(tmp_path: Path) -> None:
    x = np.ones((2, 4), np.float32)
    np.savez(tmp_path / "p.npz", x)  # np.savez names it 'arr_0'
    notes: list[str] = []
    got = load_probes(tmp_path / "p.npz", [FEATURES], notes=notes)
    np.testing.assert_array_equal(got["features"], x)
    assert notes == [f"{tmp_path / 'p.npz'}: took the array 'arr_0' for the model's only input 'features'"]


def test_a_single_input_with_two_arrays_still_needs_its_name(tmp_path: Path) -> None:
    np.savez(tmp_path / "p.npz", a=np.ones((2, 4), np.float32), b=np.ones((2, 4), np.float32))
    with pytest.raises(FingerprintError, match="missing 'features'; unexpected 'a', 'b'"):
        load_probes(tmp_path / "p.npz", [FEATURES])


def test_missing_probes_file(tmp_path: Path) -> None:
    with pytest.raises(FingerprintError) as err:
        load_probes(tmp_path / "none.npz", [FEATURES])
    assert str(err.value) == f"{tmp_path / 'none.npz'}: no such file; check the path passed to --probes"


def test_wrong_shape_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.ones((2, 5), np.float32))
    with pytest.raises(FingerprintError) as err:
        load_probes(tmp_path / "p.npy", [FEATURES])
    assert str(err.value) == (
        f"{tmp_path / 'p.npy'}: shape (2, 5) does not fit the model input's (None, 4) "
        "(dimension 0 is the batch, the others must match); fix the array's shape"
    )


def test_float64_probes_are_rounded_to_a_float32_input(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.save(tmp_path / "p.npy", x)
    got = load_probes(tmp_path / "p.npy", [FEATURES])["features"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x.astype(np.float32))


def test_int64_ids_are_cast_to_an_int32_input_when_every_value_fits(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.arange(10, dtype=np.int64).reshape(2, 5))
    casts: dict[str, str] = {}
    assert load_probes(tmp_path / "p.npy", [TOKENS], casts=casts)["tokens"].dtype == np.int32
    assert casts == {"tokens": "int64 -> int32"}


def test_verify_casts_recorded_probes_by_the_same_rule(tmp_path: Path) -> None:
    from envprint.record.probes import cast_to_inputs

    int64_input = TensorSpecInfo("tokens", (None, 5), "int64")
    casts: dict[str, str] = {}
    got = cast_to_inputs({"tokens": np.arange(10, dtype=np.int32).reshape(2, 5)}, [int64_input], "probes.npz", casts)
    assert got["tokens"].dtype == np.int64 and casts == {"tokens": "int32 -> int64"}
    with pytest.raises(FingerprintError) as err:
        cast_to_inputs({"tokens": np.full((2, 5), 2**40, np.int64)}, [TOKENS], "probes.npz")
    assert str(err.value) == (
        "probes.npz['tokens']: int64 values do not all fit int32 exactly; "
        "save it as int32: np.savez(path, tokens=arr.astype('int32'))"
    )


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"x": np.full((2, 3), np.nan, np.float32)}, ["x"]),
        ({"x": np.array([np.inf, -np.inf, np.nan])}, ["x"]),
        ({"x": np.array([np.nan, 1.0]), "y": np.full(2, np.nan, np.float16)}, ["y"]),
        ({"ids": np.zeros((2, 3), np.int32)}, []),  # integers are always finite
        ({"x": np.zeros((0, 3), np.float32)}, []),  # nothing to judge
    ],
)
def test_arrays_without_a_finite_value_cannot_verify_anything(arrays, expected) -> None:
    from envprint.record.probes import uninformative

    assert uninformative(arrays) == expected


def test_an_index_outside_the_embedding_vocabulary_names_the_input_index_and_size() -> None:
    from envprint.record.probes import check_int_ranges

    ids = np.zeros((2, 5), np.int32)
    ids[1, 3] = 57
    with pytest.raises(FingerprintError) as err:
        check_int_ranges({"tokens": ids}, {"tokens": (0, 50)}, "p.npz")
    assert str(err.value) == (
        "p.npz: input 'tokens' holds index 57 at [1, 3], outside the vocabulary of the Embedding that reads it "
        "(input_dim 50: indices 0 to 49); 1 of 10 values are outside; fix the probes"
    )
    check_int_ranges({"tokens": ids % 50}, {"tokens": (0, 50)}, "p.npz")  # in range: nothing to say


def test_int64_ids_that_overflow_int32_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.full((2, 5), 2**40, dtype=np.int64))
    with pytest.raises(FingerprintError) as err:
        load_probes(tmp_path / "p.npy", [TOKENS])
    assert str(err.value) == (
        f"{tmp_path / 'p.npy'}: int64 values do not all fit int32 exactly; "
        "save it as int32: np.savez(path, tokens=arr.astype('int32'))"
    )


def test_float_probes_for_an_integer_input_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.full((2, 5), 1.5, dtype=np.float32))
    with pytest.raises(FingerprintError) as err:
        load_probes(tmp_path / "p.npy", [TOKENS])
    assert str(err.value) == (
        f"{tmp_path / 'p.npy'}: the array is float32 but the model input is int32; a cast would change values; "
        "save it as int32: np.savez(path, tokens=arr.astype('int32'))"
    )


def test_inputs_must_agree_on_the_batch_size(tmp_path: Path) -> None:
    np.savez(tmp_path / "p.npz", features=np.ones((2, 4), np.float32), tokens=np.zeros((3, 5), np.int32))
    with pytest.raises(FingerprintError) as err:
        load_probes(tmp_path / "p.npz", [FEATURES, TOKENS])
    assert str(err.value) == (
        f"{tmp_path / 'p.npz'}: inputs disagree on the batch size (features: 2, tokens: 3); "
        "give every input the same number of probes"
    )


# ---------------------------------------------------------------------------------- store


def test_save_and_load_arrays_round_trip_without_pickle(tmp_path: Path) -> None:
    arrays = {"logits": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array([1, 2], np.int64)}
    save_arrays(tmp_path / "ref.npz", arrays)
    got = load_arrays(tmp_path / "ref.npz")
    assert sorted(got) == ["ids", "logits"]
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype
        np.testing.assert_array_equal(got[k], v)
    with np.load(tmp_path / "ref.npz", allow_pickle=False) as plain:  # a plain .npz, readable without envprint
        assert sorted(plain.files) == ["ids", "logits"]


def test_saved_arrays_are_byte_for_byte_reproducible(tmp_path: Path) -> None:
    arrays = {"b": np.ones(3, np.float32), "a": np.zeros((2, 2), np.float64)}
    save_arrays(tmp_path / "one.npz", arrays)
    save_arrays(tmp_path / "two.npz", dict(reversed(list(arrays.items()))))
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    assert zipfile.ZipFile(tmp_path / "one.npz").namelist() == ["a.npy", "b.npy"]


def test_save_arrays_refuses_object_arrays_and_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(FingerprintError) as err:
        save_arrays(tmp_path / "ref.npz", {"x": np.array([None], dtype=object)})
    assert (
        str(err.value) == f"{tmp_path / 'ref.npz'}: array 'x' holds Python objects; envprint stores numeric arrays only"
    )
    assert list(tmp_path.iterdir()) == []


def test_load_arrays_refuses_pickled_members(tmp_path: Path) -> None:
    np.savez(tmp_path / "ref.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(FingerprintError, match="holds Python objects"):
        load_arrays(tmp_path / "ref.npz")


@settings(max_examples=40, deadline=None)
@given(
    arr=hnp.arrays(
        dtype=st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    )
)
def test_any_numeric_array_round_trips_bit_for_bit(arr: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("rt") / "a.npz"
    save_arrays(path, {"x": arr})
    got = load_arrays(path)["x"]
    assert got.dtype == arr.dtype and got.shape == arr.shape
    assert got.tobytes() == arr.tobytes()


# ---------------------------------------------------------------------------------- save and verify


def _save(*args: object):
    return invoke("save", *args)


def _copy(src: Path, folder: Path) -> Path:
    import shutil

    dest = folder / src.name
    (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest)
    return dest


def test_save_refuses_probes_that_are_all_nan(mlp, tmp_path: Path) -> None:
    model = _copy(mlp["keras"], tmp_path)
    np.savez(tmp_path / "p.npz", features=np.full((3, 4), np.nan, np.float32))
    r = _save(model, "--probes", tmp_path / "p.npz")
    assert r.exit_code == ExitCode.FINGERPRINT, r.output
    assert r.stderr == (
        f"envprint: error: {tmp_path / 'p.npz'}: probe input 'features' holds only NaN or infinite values: any model on any "
        "host gives the same answer to them, so verify could never fail; give real samples; "
        "pass --allow-nonfinite (allow_nonfinite=True) to record them anyway\n"
    )
    assert not (tmp_path / "model.keras.envprint").exists()


def test_allow_nonfinite_records_them_with_a_loud_warning(mlp, tmp_path: Path) -> None:
    model = _copy(mlp["keras"], tmp_path)
    np.savez(tmp_path / "p.npz", features=np.full((3, 4), np.inf, np.float32))
    r = _save(model, "--probes", tmp_path / "p.npz", "--allow-nonfinite")
    assert r.exit_code == 0, r.output
    assert "envprint: WARNING: " in r.stderr
    assert "probe input 'features' holds only NaN or infinite values" in r.stderr
    assert "(recorded anyway: --allow-nonfinite)" in r.stderr


def test_save_refuses_a_model_whose_outputs_are_all_nan(keras, tmp_path: Path) -> None:
    inp = keras.Input((4,), name="features")
    model = keras.Model(inp, keras.layers.Dense(2, name="logits")(inp))
    model.set_weights([np.full((4, 2), np.nan, np.float32), np.zeros(2, np.float32)])
    path = tmp_path / "nan.keras"
    model.save(path)
    r = _save(path)
    assert r.exit_code == ExitCode.MODEL, r.output
    assert r.stderr == (
        f"envprint: error: {path}: output 'logits' is NaN or infinite for every probe, so verify could never tell this model "
        "from another; check the model and the probes; pass --allow-nonfinite (allow_nonfinite=True) to record them "
        "anyway\n"
    )


def test_a_one_array_npz_is_taken_for_a_single_input_and_save_says_which_key(mlp, tmp_path: Path) -> None:
    model = _copy(mlp["keras"], tmp_path)
    np.savez(tmp_path / "samples.npz", np.ones((3, 4), np.float32))
    r = _save(model, "--probes", tmp_path / "samples.npz")
    assert r.exit_code == 0, r.output
    assert (
        f"envprint: WARNING: {tmp_path / 'samples.npz'}: took the array 'arr_0' for the model's only input 'features'"
        in r.stderr
    )


def test_int64_ids_are_cast_at_save_the_cast_is_recorded_and_verify_passes(embedding_dropout, tmp_path: Path) -> None:
    import envprint
    from envprint.record.store import read_fingerprint

    model = _copy(embedding_dropout["keras"], tmp_path)
    np.savez(tmp_path / "ids.npz", tokens=np.arange(20, dtype=np.int64).reshape(4, 5))
    r = _save(model, "--probes", tmp_path / "ids.npz")
    assert r.exit_code == 0, r.output
    recipe = read_fingerprint(tmp_path / "model.keras.envprint" / "fingerprint.json").probes
    assert (recipe.cast_rule, recipe.casts) == ("value-preserving-v1", {"tokens": "int64 -> int32"})
    assert envprint.verify(model).verdict == "identical"


def test_save_names_an_index_outside_the_embedding_vocabulary(embedding_dropout, tmp_path: Path) -> None:
    model = _copy(embedding_dropout["keras"], tmp_path)
    ids = np.zeros((2, 5), np.int32)
    ids[1, 3] = 57
    np.savez(tmp_path / "ids.npz", tokens=ids)
    r = _save(model, "--probes", tmp_path / "ids.npz")
    assert r.exit_code == ExitCode.FINGERPRINT, r.output
    assert r.stderr == (
        f"envprint: error: {tmp_path / 'ids.npz'}: input 'tokens' holds index 57 at [1, 3], outside the vocabulary of the "
        "Embedding that reads it (input_dim 50: indices 0 to 49); 1 of 10 values are outside; fix the probes\n"
    )


def test_a_savedmodel_fed_an_index_outside_its_vocabulary_says_so_in_one_line(embedding_dropout) -> None:
    from envprint._tf.loading import load_model
    from envprint.errors import ModelError

    loaded = load_model(embedding_dropout["savedmodel"])  # no layer graph: TensorFlow's Gather finds it
    ids = np.zeros((2, 5), np.int32)
    ids[1, 3] = 57
    with pytest.raises(ModelError) as err:
        loaded.predict({loaded.inputs[0].name: ids})
    assert str(err.value) == (
        f"{embedding_dropout['savedmodel']}: input {loaded.inputs[0].name!r} holds index 57 at [1, 3], outside the "
        "vocabulary of the Embedding that reads it (input_dim 50: indices 0 to 49); fix the probes"
    )


def test_hashed_inputs_take_any_value_that_fits_their_dtype() -> None:
    specs = [TensorSpecInfo("tag", (None, 2), "string"), TensorSpecInfo("small", (None, 2), "int8")]
    hints = {name: InputHint(pk.HASHED, "Hashing") for name in ("tag", "small")}
    probes, _ = generate_probes(specs, num_probes=200, seed=0, hints=hints)
    assert all(t.startswith("token") for t in probes["tag"].ravel())
    assert probes["small"].dtype == np.int8 and probes["small"].min() >= 0 and probes["small"].max() > 100
