"""What save may replace, what its record files let others read, and verify checking the model before the record.

Real small models from conftest; every refusal leaves what was there byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from envhelpers import as_unprivileged, invoke, run_unprivileged

import envprint
from envprint.errors import ExitCode, FingerprintError
from envprint.record import atomic, sidecar


def tree_state(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (itself too) with its bytes (None for a directory)."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in [root, *root.rglob("*")]}


def _refusal(target: Path, found: str) -> str:
    return (
        f"{target}: {found}, not an envprint record; a save replaces only a record, even with "
        "--force: pass --out a new path, or move this away yourself"
    )


def _inside(out: Path, relation: str) -> str:
    return (
        f"envprint: error: --out {out}: {relation}; a record never replaces any part of its model: "
        "pass --out a path outside the model, or omit --out to write the record beside it\n"
    )


# ----------------------------------------------------------------- 1. save --out/--force never destroys


def test_save_out_the_model_file_itself_is_refused_even_with_force(mlp, tmp_path):
    model = tmp_path / "y.keras"
    shutil.copy2(mlp["keras"], model)
    before = tree_state(tmp_path)
    r = invoke("save", model, "--out", model, "--force")
    assert r.exit_code == ExitCode.FINGERPRINT
    assert r.stderr == _inside(model, "is the model itself")
    assert tree_state(tmp_path) == before


def test_save_out_the_savedmodel_inside_it_or_its_parent_is_refused_even_with_force(mlp, tmp_path):
    export = tmp_path / "exp2"
    shutil.copytree(mlp["savedmodel"], export)
    before = tree_state(tmp_path)
    for out, relation in [
        (export, "is the model itself"),
        (export / "variables", f"is inside the model {export}"),
        (export / "assets.extra" / "other", f"is inside the model {export}"),
        (tmp_path, f"contains the model {export}"),
    ]:
        r = invoke("save", export, "--out", out, "--force")
        assert (r.exit_code, r.stderr) == (ExitCode.FINGERPRINT, _inside(out, relation))
    assert tree_state(tmp_path) == before  # saved_model.pb and variables/ are all there


def test_save_into_a_savedmodel_s_own_record_place_is_allowed_with_out(mlp, tmp_path):
    export = tmp_path / "exp"
    shutil.copytree(mlp["savedmodel"], export)
    out = export / "assets.extra" / "envprint"
    r = invoke("save", export, "--out", out, "--num-probes", 2)
    assert r.exit_code == 0, r.stderr
    r = invoke("save", export, "--force", "--num-probes", 3)  # the default place: the record is replaced
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["fingerprint.json", "probes.npz", "reference.npz"]
    assert envprint.verify(export).passed


@pytest.mark.parametrize("force", [False, True])
def test_save_never_replaces_what_is_not_a_record(mlp, tmp_path, force):
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    cases = {"notrec": "a directory holding important.txt, with no fingerprint.json"}
    (tmp_path / "notrec").mkdir()
    (tmp_path / "notrec" / "important.txt").write_text("keep me\n")
    cases["a_file.txt"] = "a file"
    (tmp_path / "a_file.txt").write_text("mine\n")
    cases["empty"] = "an empty directory"
    (tmp_path / "empty").mkdir()
    cases["other_export"] = "a SavedModel directory"
    shutil.copytree(mlp["savedmodel"], tmp_path / "other_export")
    cases["record_plus"] = "a directory holding files a record does not: notes.md"
    assert invoke("save", model, "--out", tmp_path / "record_plus", "--num-probes", 2).exit_code == 0
    (tmp_path / "record_plus" / "notes.md").write_text("my notes\n")
    before = tree_state(tmp_path)
    for name, found in cases.items():
        r = invoke("save", model, "--out", tmp_path / name, *(["--force"] if force else []))
        assert (r.exit_code, r.stderr) == (
            ExitCode.FINGERPRINT,
            f"envprint: error: {_refusal(tmp_path / name, found)}\n",
        )
    assert tree_state(tmp_path) == before


def test_save_refuses_a_foreign_folder_at_the_default_sidecar_place(mlp, tmp_path):
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    foreign = tmp_path / "model.keras.envprint"
    foreign.mkdir()
    (foreign / "fingerprint.json").write_text("{}\n")
    (foreign / "train.log").write_text("epoch 1\n")
    r = invoke("save", model, "--force")
    assert (r.exit_code, r.stderr) == (
        ExitCode.FINGERPRINT,
        f"envprint: error: {_refusal(foreign, 'a directory holding files a record does not: train.log')}\n",
    )
    assert sorted(p.name for p in foreign.iterdir()) == ["fingerprint.json", "train.log"]


def test_publish_checks_the_target_again_under_its_lock(tmp_path):
    # A folder that appeared at the target after save's early check is still never replaced.
    target = tmp_path / "rec"
    target.mkdir()
    (target / "important.txt").write_text("keep me\n")
    staging = atomic.make_staging_dir(target)
    (staging / "fingerprint.json").write_text("{}\n")
    with pytest.raises(FingerprintError) as raised:
        sidecar.publish_directory(staging, target, force=True)
    assert str(raised.value) == _refusal(target, "a directory holding important.txt, with no fingerprint.json")
    assert [p.name for p in target.iterdir()] == ["important.txt"]


def test_the_keras_callback_never_replaces_a_folder_or_record_place_of_the_user_s(keras, tmp_path):
    from envprint.keras import FingerprintCallback

    inp = keras.Input((4,), name="features")
    model = keras.Model(inp, keras.layers.Dense(1, name="score")(inp))
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((8, 4), dtype="float32")
    data = tmp_path / "data"  # not a SavedModel: an export there would have deleted it
    data.mkdir()
    (data / "train.csv").write_text("a,b\n")
    foreign = tmp_path / "model.keras.envprint"  # the record place of model.keras, holding the user's file
    foreign.mkdir()
    (foreign / "notes.md").write_text("mine\n")
    before = tree_state(tmp_path)
    with pytest.raises(FingerprintError) as raised:
        model.fit(x, x[:, :1], epochs=1, verbose=0, callbacks=[FingerprintCallback(data, num_probes=2)])
    assert str(raised.value) == (
        f"{data}: a directory holding train.csv, with no fingerprint.json, not a SavedModel; FingerprintCallback "
        "replaces only a SavedModel it may have exported before: pass another filepath, or move this away yourself"
    )
    with pytest.raises(FingerprintError, match="model.keras.envprint: a directory holding notes.md, with no "):
        model.fit(x, x[:, :1], epochs=1, verbose=0, callbacks=[FingerprintCallback(tmp_path / "model.keras")])
    assert tree_state(tmp_path) == before


# ----------------------------------------------------------------- 2. record files: the umask's mode


@pytest.mark.subprocess
def test_a_record_saved_under_umask_022_verifies_as_another_user(mlp, world_tmp):
    model = world_tmp / "model.keras"
    shutil.copy2(mlp["keras"], model)
    model.chmod(0o644)
    old = os.umask(0o022)
    try:
        result = envprint.save(model, sign_key=None)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in result.sidecar.iterdir()}
    assert modes == {"fingerprint.json": 0o644, "probes.npz": 0o644, "reference.npz": 0o644}
    assert stat.S_IMODE(result.sidecar.stat().st_mode) == 0o755
    done = run_unprivileged(
        "import sys, envprint\nprint(envprint.verify(sys.argv[1]).verdict)\n", str(model), home=str(world_tmp / "home")
    )
    assert (done.returncode, done.stdout) == (0, "identical\n"), done.stderr[-3000:]


# ----------------------------------------------------------------- 3. the model is checked before the record


@pytest.mark.subprocess
def test_a_model_this_user_cannot_read_is_a_model_error_in_one_line(mlp_recorded, world_tmp):
    """Not Click's multi-line usage error (exit 2): the README gives model problems exit 4, for save and verify."""
    model = world_tmp / "model.keras"
    shutil.copy2(mlp_recorded, model)
    shutil.copytree(mlp_recorded.with_name("model.keras.envprint"), world_tmp / "model.keras.envprint")
    for path in [world_tmp / "model.keras.envprint", *(world_tmp / "model.keras.envprint").iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    model.chmod(0o000)
    line = (
        f"envprint: error: {model}: cannot be read (Permission denied); give the user running envprint read access "
        "to it (chmod a+r), or run as its owner\n"
    )
    out = world_tmp / "home" / "record"
    env = dict(os.environ, HOME=str(world_tmp / "home"), TF_CPP_MIN_LOG_LEVEL="3")
    for argv in (["verify", model], ["save", model], ["save", model, "--out", out]):
        done = subprocess.run(
            as_unprivileged([sys.executable, "-m", "envprint", *map(str, argv)]),
            capture_output=True, text=True, env=env, cwd=world_tmp, timeout=300,
        )  # fmt: skip
        assert (done.returncode, done.stderr) == (ExitCode.MODEL, line), argv
    done = subprocess.run(
        as_unprivileged([sys.executable, "-m", "envprint", "verify", str(model), "--json"]),
        capture_output=True, text=True, env=env, cwd=world_tmp, timeout=300,
    )  # fmt: skip
    error = json.loads(done.stdout)["error"]
    assert (done.returncode, error["kind"], error["exit_code"]) == (4, "model", 4), done.stdout
    assert not out.exists()


def test_verify_of_an_unknown_suffix_without_a_record_is_a_model_error(mlp, tmp_path):
    model = tmp_path / "model.bin"
    shutil.copy2(mlp["keras"], model)
    unknown = (
        f"envprint: error: {model}: unknown model format (suffix '.bin'); expected a .keras file, an .h5/.hdf5 file, "
        "a .tflite file, or a SavedModel directory (with saved_model.pb); pass --format keras|h5|savedmodel|tflite to override\n"
    )
    for argv in (["verify", model], ["verify", model, "--preflight"]):
        r = invoke(*argv)
        assert (r.exit_code, r.stderr) == (ExitCode.MODEL, unknown), argv


def test_verify_of_a_directory_that_is_no_savedmodel_is_a_model_error_even_with_a_fingerprint(mlp, tmp_path):
    record = tmp_path / "model.keras.envprint"
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    assert invoke("save", model, "--num-probes", 2).exit_code == 0
    empty = tmp_path / "emptydir"
    empty.mkdir()
    not_saved_model = (
        f"envprint: error: {empty}: a directory without saved_model.pb, so not a SavedModel; pass a .keras file, "
        "an .h5/.hdf5 file, a .tflite file, or a SavedModel directory (with saved_model.pb), or --format to override\n"
    )
    for argv in (["verify", empty], ["verify", empty, "--fingerprint", record], ["verify", empty, "--preflight"]):
        r = invoke(*argv)
        assert (r.exit_code, r.stderr) == (ExitCode.MODEL, not_saved_model), argv
    missing = tmp_path / "nope.keras"
    r = invoke("verify", missing, "--fingerprint", record)
    assert (r.exit_code, r.stderr) == (
        ExitCode.MODEL,
        f"envprint: error: {missing}: no such file or directory; check the path of the model\n",
    )


@pytest.mark.subprocess
def test_the_model_check_before_the_record_imports_no_tensorflow(mlp, tmp_path):
    # preflight calls it on the model path: the model is named, never loaded, and Keras is not imported for it.
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    assert invoke("save", model, "--num-probes", 2).exit_code == 0
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from envprint.check.record_read import locate_after_model\n"
        "fp, fmt = locate_after_model(Path(sys.argv[1]), None, None)\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'h5py') if m in sys.modules)\n"
        "print(fp.name, fmt, 'HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=300)
    assert done.stdout == "fingerprint.json keras HEAVY=\n", done.stderr[-3000:]
