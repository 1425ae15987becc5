"""Broken and hostile records: signed records, corrupt sidecars, failed and concurrent saves, read-only hosts.

Every failure here must be one line, name the file, say what to do, and carry exit code 3
(FingerprintError); a save that fails or is killed must leave the old record whole.
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from envhelpers import fails_after, invoke, run_unprivileged

import envprint
from envprint.errors import ExitCode, FingerprintError, UsageError
from envprint.record import atomic, sidecar, signing, store
from envprint.record.store import read_fingerprint

KEY = b"test-signing-key-0123456789abcdef"
KEY_ID = hashlib.sha256(KEY).hexdigest()[:8]
OTHER_KEY = b"another-signing-key-0123456789ab"


def tree_state(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under ``root`` with its size, mtime and (for files) content digest."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).digest() if p.is_file() else b""
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture(scope="module")
def records(mlp, tmp_path_factory) -> dict[str, Path]:
    """The MLP saved once unsigned and once signed; tests work on copies of these folders."""
    out = {}
    for name, key in (("unsigned", None), ("signed", KEY)):
        folder = tmp_path_factory.mktemp(name)
        model = folder / "model.keras"
        shutil.copy2(mlp["keras"], model)
        envprint.save(model, sign_key=key)
        out[name] = model
    return out


def _copy(records: dict[str, Path], name: str, tmp_path: Path) -> Path:
    shutil.copytree(records[name].parent, tmp_path / name)
    return tmp_path / name / "model.keras"


@pytest.fixture
def unsigned(records, tmp_path) -> Path:
    return _copy(records, "unsigned", tmp_path)


@pytest.fixture
def signed(records, tmp_path) -> Path:
    return _copy(records, "signed", tmp_path)


def sidecar_of(model: Path) -> Path:
    return model.with_name(model.name + ".envprint")


def edit_fingerprint(model: Path, edit) -> None:
    path = sidecar_of(model) / "fingerprint.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- signing


def test_a_signed_save_writes_an_hmac_of_the_exact_fingerprint_bytes(signed):
    sidecar = sidecar_of(signed)
    assert sorted(p.name for p in sidecar.iterdir()) == [
        "fingerprint.json", "probes.npz", "reference.npz", "signature.json",
    ]  # fmt: skip
    document = json.loads((sidecar / "signature.json").read_text())
    assert document == {
        "algorithm": "hmac-sha256",
        "envprint_version": envprint.__version__,
        "key_id": KEY_ID,
        "signature": document["signature"],
        "signature_version": 1,
        "signed_file": "fingerprint.json",
    }
    import hmac

    expected = hmac.new(KEY, (sidecar / "fingerprint.json").read_bytes(), hashlib.sha256).hexdigest()
    assert document["signature"] == expected
    assert KEY.decode() not in (sidecar / "signature.json").read_text()


def test_verify_with_the_key_checks_the_signature(signed):
    report = envprint.verify(signed, signing_key=KEY, require_signature=True)
    assert report.verdict == "identical" and report.record_signature == "verified"
    assert report.signing_key_id == KEY_ID
    assert f"  signature:   verified (hmac-sha256, key {KEY_ID})\n" in str(report)


def test_verify_without_a_key_notes_that_the_record_is_signed(signed):
    report = envprint.verify(signed)
    assert report.verdict == "identical" and report.record_signature == "unchecked"
    r = invoke("verify", signed)
    assert (
        r.exit_code == 0 and "  signature:   signed, not checked: pass ENVPRINT_SIGNING_KEY to check it\n" in r.output
    )


def test_an_unsigned_record_reports_unsigned_and_says_nothing_without_a_key(unsigned):
    report = envprint.verify(unsigned)
    assert report.record_signature == "unsigned" and "signature:" not in str(report)
    report = envprint.verify(unsigned, signing_key=KEY)
    assert "  signature:   not signed; a signature is not required, so the key was not used\n" in str(report)


def test_the_wrong_key_is_named_by_id_without_revealing_either_key(signed):
    with pytest.raises(FingerprintError) as err:
        envprint.verify(signed, signing_key=OTHER_KEY)
    other_id = hashlib.sha256(OTHER_KEY).hexdigest()[:8]
    assert str(err.value) == (
        f"{sidecar_of(signed) / 'signature.json'}: signed with key '{KEY_ID}', but the key given is '{other_id}' "
        "(ENVPRINT_SIGNING_KEY); use the key the record was signed with"
    )
    assert err.value.exit_code == ExitCode.FINGERPRINT


@pytest.mark.parametrize("required", [True, False])
def test_a_fingerprint_edited_after_signing_cannot_be_verified(signed, required):
    edit_fingerprint(signed, lambda d: d["tolerance"].update(rtol=0.5))  # a loosened gate
    with pytest.raises(FingerprintError) as err:
        envprint.verify(signed, signing_key=KEY, require_signature=required)
    assert str(err.value) == (
        f"{sidecar_of(signed) / 'fingerprint.json'}: does not match its signature (key {KEY_ID}): the record was "
        "changed after it was signed; do not deploy it: re-save it on the training host with --sign"
    )


def test_one_byte_of_whitespace_breaks_the_signature(signed):
    path = sidecar_of(signed) / "fingerprint.json"
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(FingerprintError, match="does not match its signature"):
        envprint.verify(signed, signing_key=KEY)


def test_require_signature_refuses_an_unsigned_record(unsigned):
    with pytest.raises(FingerprintError) as err:
        envprint.verify(unsigned, signing_key=KEY, require_signature=True)
    assert str(err.value) == (
        f"{sidecar_of(unsigned) / 'signature.json'}: missing: the record is not signed and a signed record is "
        "required; sign it on the training host: ENVPRINT_SIGNING_KEY=... envprint save --sign --force MODEL"
    )
    assert err.value.exit_code == ExitCode.FINGERPRINT


def test_require_signature_without_a_key_is_a_usage_error(signed):
    with pytest.raises(UsageError) as err:
        envprint.verify(signed, require_signature=True)
    assert (
        str(err.value)
        == "a signed record is required but no key was given; set ENVPRINT_SIGNING_KEY to the signing key"
    )
    assert err.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"{not json", "(not JSON)"),
        (b"[]", "(expected a JSON object)"),
        (b'{"algorithm": "hmac-sha256"}', "(expected the fields algorithm, envprint_version, key_id, signature, "
                                          "signature_version, signed_file)"),
    ],
)  # fmt: skip
def test_a_garbled_signature_file_is_refused_when_checked(signed, content, detail):
    (sidecar_of(signed) / "signature.json").write_bytes(content)
    with pytest.raises(FingerprintError) as err:
        envprint.verify(signed, signing_key=KEY)
    assert str(err.value) == (
        f"{sidecar_of(signed) / 'signature.json'}: not an envprint signature {detail}; "
        "re-save the record on the training host with --sign"
    )


def test_a_removed_signature_is_caught_only_when_required(signed):
    (sidecar_of(signed) / "signature.json").unlink()
    assert envprint.verify(signed, signing_key=KEY).record_signature == "unsigned"
    with pytest.raises(FingerprintError, match="missing: the record is not signed"):
        envprint.verify(signed, signing_key=KEY, require_signature=True)


def test_a_short_signing_key_is_refused_before_any_work(mlp, tmp_path):
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    with pytest.raises(UsageError) as err:
        envprint.save(model, sign_key=b"hunter2")
    assert str(err.value).startswith("the signing key is 7 bytes; use at least 16 random bytes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_signing_functions_round_trip_and_read_the_key_from_the_environment(tmp_path):
    payload = b'{"schema_version": 1}\n'
    text = signing.sign(payload, KEY)
    where = tmp_path / "fingerprint.json"
    assert signing.check(payload, text.encode(), KEY, required=True, fingerprint_path=where).status == "verified"
    assert signing.check(payload, text.encode(), None, fingerprint_path=where).status == "unchecked"
    with pytest.raises(FingerprintError):
        signing.check(payload + b" ", text.encode(), KEY, fingerprint_path=where)
    assert signing.key_from_env({"ENVPRINT_SIGNING_KEY": "k" * 20}) == b"k" * 20
    assert signing.key_from_env({"ENVPRINT_SIGNING_KEY": ""}) is None
    assert signing.key_from_env({}) is None


# --------------------------------------------------------------------------- a corrupt sidecar


def _verify_error(model: Path) -> str:
    """verify through the library and the CLI: the same one-line FingerprintError, exit 3."""
    with pytest.raises(FingerprintError) as err:
        envprint.verify(model)
    r = invoke("verify", model)
    assert r.exit_code == ExitCode.FINGERPRINT, r.output
    assert r.stderr == f"envprint: error: {err.value}\n"
    return str(err.value)


def test_a_model_cut_short_since_save_says_its_bytes_are_not_the_recorded_ones(unsigned):
    """An incomplete copy or download: the load fails (exit 4), and the record knows why."""
    data = unsigned.read_bytes()
    unsigned.write_bytes(data[: len(data) // 2])
    r = invoke("verify", unsigned)
    assert r.exit_code == ExitCode.MODEL, r.output
    assert r.stderr.count("\n") == 1, r.stderr
    assert "not a .keras archive" in r.stderr, r.stderr
    assert "its bytes are not the ones save recorded (model.keras changed since save" in r.stderr, r.stderr


def test_a_model_refused_for_another_reason_does_not_blame_its_bytes(lambda_model, tmp_path):
    """The very file save recorded, refused by the load (a Lambda layer in safe mode): nothing is said of its bytes."""
    model = tmp_path / "lambda.keras"
    shutil.copy2(lambda_model["keras"], model)
    envprint.save(model, safe_mode=False)
    r = invoke("verify", model)
    assert r.exit_code == ExitCode.MODEL, r.output
    assert "save recorded" not in r.stderr and "--unsafe" in r.stderr, r.stderr


def test_a_truncated_reference_is_exit_3(unsigned):
    ref = sidecar_of(unsigned) / "reference.npz"
    ref.write_bytes(ref.read_bytes()[:100])
    assert _verify_error(unsigned) == (
        f"{ref}: truncated or corrupt (File is not a zip file); "
        "copy the whole model.keras.envprint/ directory again, or re-run envprint save"
    )


def test_a_flipped_byte_in_the_reference_data_is_exit_3(unsigned):
    ref = sidecar_of(unsigned) / "reference.npz"
    data = bytearray(ref.read_bytes())
    data[200] ^= 0x40  # inside the stored array: the zip's CRC catches it
    ref.write_bytes(bytes(data))
    assert _verify_error(unsigned) == (
        f"{ref}['logits']: truncated or corrupt (Bad CRC-32 for file 'logits.npy'); "
        "copy the whole model.keras.envprint/ directory again, or re-run envprint save"
    )


def test_garbage_in_place_of_the_probes_is_exit_3(unsigned):
    probes = sidecar_of(unsigned) / "probes.npz"
    probes.write_bytes(b"this is not an archive\n")
    assert _verify_error(unsigned) == (
        f"{probes}: not a .npy/.npz file (neither the .npy nor the .npz (zip) format); "
        "copy the whole model.keras.envprint/ directory again, or re-run envprint save"
    )


def test_an_object_array_in_the_reference_is_never_unpickled(unsigned):
    ref = sidecar_of(unsigned) / "reference.npz"
    np.savez(ref, logits=np.array([[{"a": 1}] * 3] * 8, dtype=object))
    assert _verify_error(unsigned).startswith(
        f"{ref}['logits']: holds Python objects (an object array), which envprint never unpickles"
    )


def test_a_reference_whose_arrays_are_not_the_recorded_ones_is_exit_3(unsigned):
    ref = sidecar_of(unsigned) / "reference.npz"
    np.savez(ref, logits=np.zeros((8, 2), np.float32))
    assert _verify_error(unsigned) == (
        f"{ref}: arrays do not match fingerprint.json: expected logits (8, 3), obtained logits (8, 2); "
        "copy the whole model.keras.envprint/ directory again or re-save the record"
    )
    np.savez(ref, other=np.zeros((8, 3), np.float32))
    assert "expected logits (8, 3), obtained other (8, 3)" in _verify_error(unsigned)
    np.savez(ref)
    assert "expected logits (8, 3), obtained nothing" in _verify_error(unsigned)


def test_a_missing_reference_is_exit_3(unsigned):
    (sidecar_of(unsigned) / "reference.npz").unlink()
    assert _verify_error(unsigned) == (
        f"{sidecar_of(unsigned) / 'reference.npz'}: missing from the sidecar; copy the whole model.keras.envprint/ directory"
    )


@pytest.mark.parametrize("name", ["../model.keras", "/dev/zero", "sub/reference.npz", ".."])
def test_a_record_cannot_point_outside_its_sidecar(unsigned, name):
    edit_fingerprint(unsigned, lambda d: d["reference_arrays"].update(file=name))
    assert _verify_error(unsigned) == (
        f"{sidecar_of(unsigned) / 'fingerprint.json'}: field 'reference_arrays.file' is {name!r}, not a file name "
        "inside the sidecar; the record was edited: re-save it on the training host"
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_in_place_of_the_probes_is_refused_without_waiting(unsigned):
    probes = sidecar_of(unsigned) / "probes.npz"
    probes.unlink()
    os.mkfifo(probes)
    with fails_after(60, "verify with a FIFO in place of probes.npz"):  # opening a FIFO to read blocks forever
        error = _verify_error(unsigned)
    assert error == f"{probes}: not a regular file (a device, FIFO or socket); copy the record again"


def test_a_fingerprint_that_is_not_json_is_exit_3(unsigned):
    fp = sidecar_of(unsigned) / "fingerprint.json"
    fp.write_bytes(b"\xff\xfe{")
    assert _verify_error(unsigned) == f"{fp}: not UTF-8 text (byte 0); give the path of a fingerprint.json"
    fp.write_text("[" * 100_000)
    assert _verify_error(unsigned) == f"{fp}: not a fingerprint (JSON nested too deeply)"


def test_an_invalid_field_with_a_hostile_name_stays_one_line(unsigned):
    edit_fingerprint(unsigned, lambda d: d["cpu"].update({"evil\nkey" + "x" * 500: 1}))
    message = _verify_error(unsigned)
    assert "\n" not in message
    assert message.startswith(
        f"{sidecar_of(unsigned) / 'fingerprint.json'}: invalid fingerprint: field 'cpu.evil keyxxx"
    )
    assert message.endswith("...': Extra inputs are not permitted")


# --------------------------------------------------------------------------- saves that cannot finish


def test_save_into_a_path_under_a_file_fails_before_any_work_and_leaves_nothing(mlp, tmp_path):
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "record"
    r = invoke("save", model, "--out", out)
    assert r.exit_code == ExitCode.FINGERPRINT, r.output
    assert r.stderr == (
        f"envprint: error: {out}: cannot write the fingerprint (Not a directory); check the directory, or pass --out DIR\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "model.keras"]


def test_save_into_a_place_that_cannot_hold_files_leaves_no_directories(mlp, tmp_path):
    # Tests run as root, so a chmod'ed directory would not stop the write: /proc refuses even root.
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    out = Path("/proc/envprint-test/deeper/record")
    with pytest.raises(FingerprintError) as err:
        envprint.save(model, out=out)
    assert str(err.value) == (
        f"{out}: cannot write the fingerprint (No such file or directory); check the directory, or pass --out DIR"
    )
    assert not Path("/proc/envprint-test").exists()


def test_save_creates_missing_parents_and_takes_them_back_when_it_fails(lambda_model, tmp_path):
    model = tmp_path / "model.keras"
    shutil.copy2(lambda_model["keras"], model)  # refused under safe mode: a ModelError after the parents exist
    with pytest.raises(envprint.ModelError):
        envprint.save(model, out=tmp_path / "new" / "deeper" / "record")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_a_save_interrupted_while_publishing_leaves_the_old_record(unsigned, monkeypatch):
    before = tree_state(unsigned.parent)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sidecar, "publish_directory", interrupted)
    with pytest.raises(KeyboardInterrupt):
        envprint.save(unsigned, force=True, num_probes=3)
    assert tree_state(unsigned.parent) == before  # no staging directory left either


def test_a_failed_rename_puts_the_old_record_back(unsigned, monkeypatch):
    """Where the two directories cannot be swapped in one step, the old one is moved aside and restored."""
    before = tree_state(sidecar_of(unsigned))
    monkeypatch.setattr(atomic, "exchange", lambda a, b: False)

    def rename(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(sidecar.os, "rename", rename)
    with pytest.raises(FingerprintError) as err:
        envprint.save(unsigned, force=True, num_probes=3)
    assert str(err.value) == (
        f"{sidecar_of(unsigned)}: cannot write the fingerprint (No space left on device); check the directory"
    )
    monkeypatch.undo()
    assert tree_state(sidecar_of(unsigned)) == before
    assert sorted(p.name for p in unsigned.parent.iterdir()) == ["model.keras", "model.keras.envprint"]


def _fake_staging(parent: Path, target: Path, content: str) -> Path:
    staging = atomic.make_staging_dir(target)
    (staging / "fingerprint.json").write_text(content)
    return staging


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "move-aside"])
def test_publish_with_force_replaces_the_whole_record_and_leaves_nothing_beside_it(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "exchange", lambda a, b: False)
    target = tmp_path / "m.envprint"
    sidecar.publish_directory(_fake_staging(tmp_path, target, "old"), target, force=False)
    sidecar.publish_directory(_fake_staging(tmp_path, target, "new"), target, force=True)
    assert (target / "fingerprint.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["m.envprint"]


def test_publish_without_force_names_the_other_save(tmp_path):
    target = tmp_path / "m.envprint"
    sidecar.publish_directory(_fake_staging(tmp_path, target, "first"), target, force=False)
    staging = _fake_staging(tmp_path, target, "second")
    with pytest.raises(FingerprintError) as err:
        sidecar.publish_directory(staging, target, force=False, existed=False)
    assert str(err.value) == (
        f"{target}: another envprint save wrote this fingerprint at the same time; rerun with --force to replace it"
    )
    with pytest.raises(FingerprintError, match="an envprint record already exists; pass --force to replace it"):
        sidecar.publish_directory(staging, target, force=False)
    assert (target / "fingerprint.json").read_text() == "first"


def test_leftovers_of_killed_saves_are_cleaned_by_the_next_publish_but_young_ones_are_kept(tmp_path):
    target = tmp_path / "m.envprint"
    stale = _fake_staging(tmp_path, target, "killed an hour ago")
    old_time = time.time() - 3600
    os.utime(stale, (old_time, old_time))
    young = _fake_staging(tmp_path, target, "another save, still writing")
    backup = tmp_path / ".m.envprint.old-12345"
    backup.mkdir()
    unrelated = tmp_path / ".other.envprint.abc.tmp"
    unrelated.mkdir()
    os.utime(unrelated, (old_time, old_time))
    sidecar.publish_directory(_fake_staging(tmp_path, target, "new"), target, force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.envprint", young.name, unrelated.name])


def test_without_flock_a_lock_file_serializes_publishers_and_is_removed(tmp_path, monkeypatch):
    # Windows has no fcntl: publishers take turns through an O_EXCL lock file instead.
    monkeypatch.setattr(atomic, "_flock_directory", lambda directory, target, timeout: None)
    target = tmp_path / "m.envprint"
    sidecar.publish_directory(_fake_staging(tmp_path, target, "one"), target, force=False)
    assert [p.name for p in tmp_path.iterdir()] == ["m.envprint"]
    lock = tmp_path / ".m.envprint.lock"
    lock.write_text("12345\n")  # a save publishing right now
    with pytest.raises(FingerprintError) as err, atomic.publish_lock(target, timeout=0.1):
        pass
    assert str(err.value) == (
        f"{lock}: another envprint save is publishing a record here, or a killed one left this lock file; "
        "wait and rerun, or delete the file if no save is running"
    )
    hour_ago = time.time() - 3600
    os.utime(lock, (hour_ago, hour_ago))  # its save was killed long ago: the lock is broken
    sidecar.publish_directory(_fake_staging(tmp_path, target, "two"), target, force=True)
    assert (target / "fingerprint.json").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["m.envprint"]


def test_a_publisher_waits_for_the_lock_and_says_so_when_it_never_comes(tmp_path):
    target = tmp_path / "m.envprint"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(target)], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        if holder.poll() is not None or not hasattr(os, "O_DIRECTORY"):
            pytest.skip("no flock on this platform")
        with pytest.raises(FingerprintError) as err, atomic.publish_lock(target, timeout=0.2):
            pass
        assert str(err.value) == (
            f"{target}: another envprint save held the lock on {tmp_path} for 0.2 s; wait for it to finish, then rerun"
        )
    finally:
        holder.communicate("", timeout=30)
    with atomic.publish_lock(target, timeout=5):  # released when its holder ends
        pass


HOLD_LOCK = textwrap.dedent("""
    import sys
    from pathlib import Path
    from envprint.record import atomic

    with atomic.publish_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.read()
""")


def test_a_fingerprint_that_never_ends_is_cut_off(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(FingerprintError) as err:
        store.read_fingerprint(Path("/dev/zero"))
    assert str(err.value) == "/dev/zero: larger than 64 MiB, not a fingerprint"


def test_verify_points_at_the_old_record_a_killed_replace_moved_aside(unsigned):
    folder = sidecar_of(unsigned)
    backup = folder.with_name(".model.keras.envprint.old-4242")
    folder.rename(backup)
    with pytest.raises(FingerprintError) as err:
        sidecar.locate_fingerprint(unsigned, None)
    assert str(err.value) == (
        f"{folder / 'fingerprint.json'}: missing; an interrupted 'envprint save --force' left the previous record "
        f"in {backup}: rename it to model.keras.envprint, or save again"
    )


# --------------------------------------------------------------------------- real processes at once


def gate_publish(publish, gate):
    """``publish`` held back until two processes reach it, so that both publish at the same instant."""

    def gated(*args, **kwargs):
        (gate / str(os.getpid())).touch()
        deadline = time.monotonic() + 120
        while len(list(gate.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.002)
        return publish(*args, **kwargs)

    return gated


# The other racer: `envprint save` several times in one fresh process (TensorFlow imported once),
# each gated like this process's; prints the exit code of each save.
DRIVER = (
    "import json, os, sys, time\nfrom pathlib import Path\n"
    + inspect.getsource(gate_publish)
    + textwrap.dedent("""
    from envprint.record import sidecar
    from envprint.cli.app import main

    gates, saves, publish, codes = Path(sys.argv[1]), json.loads(sys.argv[2]), sidecar.publish_directory, []
    for i, args in enumerate(saves):
        (gates / str(i)).mkdir(parents=True, exist_ok=True)
        sidecar.publish_directory = gate_publish(publish, gates / str(i))
        sys.argv = ["envprint", "save", *args]
        try:
            main()
        except SystemExit as exc:
            codes.append(exc.code or 0)
    print(json.dumps(codes))
""")
)


@pytest.fixture(scope="module")
def racing_saves(mlp, tmp_path_factory) -> dict:
    """Two processes (a fresh one and this one), each running `save --force` of one model, then a plain
    `save` of another, publishing each at the same instant."""
    root = tmp_path_factory.mktemp("race")
    models = {}
    for name in ("forced", "plain"):
        (root / name).mkdir()
        models[name] = root / name / "model.keras"
        shutil.copy2(mlp["keras"], models[name])
    envprint.save(models["forced"])

    def saves(n: str) -> list[list[str]]:
        return [[str(models["forced"]), "--force", "--num-probes", n], [str(models["plain"]), "--num-probes", n]]

    gates = root / "gates"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-c", DRIVER, str(gates), json.dumps(saves("5"))]
    other = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    here = ([], "")
    try:
        with pytest.MonkeyPatch.context() as mp:
            for i, args in enumerate(saves("3")):
                (gates / str(i)).mkdir(parents=True, exist_ok=True)
                mp.setattr(sidecar, "publish_directory", gate_publish(sidecar.publish_directory, gates / str(i)))
                r = invoke("save", *args)
                here = (here[0] + [r.exit_code], here[1] + r.stderr)
                mp.undo()
    finally:
        out, err = other.communicate(timeout=240)
    assert other.returncode == 0, err
    return {"models": models, "results": [here, (json.loads(out.strip().splitlines()[-1]), err)]}


def _envprint_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("envprint:")]  # TensorFlow logs the rest


def _assert_complete(model: Path) -> None:
    sidecar = sidecar_of(model)
    fp = read_fingerprint(sidecar / "fingerprint.json")
    for record in (fp.probe_arrays, fp.reference_arrays):
        assert hashlib.sha256((sidecar / record.file).read_bytes()).hexdigest() == record.sha256
        with np.load(sidecar / record.file, allow_pickle=False) as data:
            assert {k: list(data[k].shape) for k in data.files} == record.arrays
    assert fp.probe_arrays.arrays["features"][0] == fp.probes.num_probes  # one save's probes, not a mix


@pytest.mark.subprocess
def test_two_forced_saves_at_once_end_with_one_complete_record(racing_saves):
    model = racing_saves["models"]["forced"]
    assert [codes[0] for codes, _ in racing_saves["results"]] == [0, 0], racing_saves["results"]
    _assert_complete(model)
    assert read_fingerprint(sidecar_of(model) / "fingerprint.json").probes.num_probes in (3, 5)
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.keras", "model.keras.envprint"]
    assert envprint.verify(model).verdict == "identical"


@pytest.mark.subprocess
def test_two_saves_without_force_at_once_one_wins_the_other_says_why(racing_saves):
    model = racing_saves["models"]["plain"]
    results = sorted(((codes[1], err) for codes, err in racing_saves["results"]), key=lambda r: r[0])
    assert [code for code, _ in results] == [0, ExitCode.FINGERPRINT], results
    assert _envprint_lines(results[1][1]) == [
        f"envprint: error: {sidecar_of(model)}: another envprint save wrote this fingerprint at the same time; "
        "rerun with --force to replace it"
    ]
    _assert_complete(model)
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.keras", "model.keras.envprint"]


# Publishes a record with --force, stopping once the new record is complete in its staging
# directory (where a save is killed with the most work done and nothing yet in place).
KILLED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from envprint.record import atomic, sidecar

    target, ready = Path(sys.argv[1]), Path(sys.argv[2])
    staging = atomic.make_staging_dir(target)
    (staging / "fingerprint.json").write_text("new")
    ready.touch()
    time.sleep(600)
    sidecar.publish_directory(staging, target, force=True)
""")


@pytest.mark.subprocess
def test_a_save_killed_mid_way_leaves_the_old_record_and_the_next_save_cleans_up(unsigned, tmp_path):
    sidecar = sidecar_of(unsigned)
    before = tree_state(sidecar)
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(sidecar), str(ready)])
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert tree_state(sidecar) == before
    leftovers = [p for p in unsigned.parent.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and (leftovers[0] / "fingerprint.json").read_text() == "new"
    assert envprint.verify(unsigned).verdict == "identical"  # the staging directory is never taken for the record
    hour_ago = time.time() - 3600
    os.utime(leftovers[0], (hour_ago, hour_ago))
    envprint.save(unsigned, force=True)
    assert sorted(p.name for p in unsigned.parent.iterdir()) == ["model.keras", "model.keras.envprint"]


HAMMER = textwrap.dedent("""
    import hashlib, json, os, sys
    from pathlib import Path
    from envprint.record import atomic, sidecar

    target, rounds = Path(sys.argv[1]), int(sys.argv[2])
    for i in range(rounds):
        staging = atomic.make_staging_dir(target)
        payload = os.urandom(4096)
        (staging / "probes.npz").write_bytes(payload)
        (staging / "fingerprint.json").write_text(json.dumps({"sha256": hashlib.sha256(payload).hexdigest()}))
        sidecar.publish_directory(staging, target, force=True)
""")

READER = textwrap.dedent("""
    import hashlib, json, sys, time
    from pathlib import Path
    from envprint.record import sidecar, store

    target, stop, ready = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    counts = {"reads": 0, "mixed": 0, "absent": 0}
    def read(reader):
        fp, payload = reader.read("fingerprint.json"), reader.read("probes.npz")
        if fp is None or payload is None:
            raise store.FingerprintError("absent")  # read_consistent retries when the record was swapped
        return fp, payload

    while not stop.exists():
        try:  # four writers swap the record every few ms here: let a read start over more than verify's 3 times
            fp, payload = sidecar.read_consistent(target, read, attempts=50)
        except store.FingerprintError:
            fp = payload = None
        if fp is None:
            counts["absent"] += 1
        elif json.loads(fp)["sha256"] != hashlib.sha256(payload).hexdigest():
            counts["mixed"] += 1
        counts["reads"] += 1
        ready.touch()  # the writers start only once this reader is reading (a loaded CI machine is slow to start it)
    print(json.dumps(counts))
""")


@pytest.mark.subprocess
def test_publishers_hammering_one_record_never_let_a_reader_see_a_mix(tmp_path):
    target = tmp_path / "m.envprint"
    staging = atomic.make_staging_dir(target)
    (staging / "probes.npz").write_bytes(b"")
    (staging / "fingerprint.json").write_text(json.dumps({"sha256": hashlib.sha256(b"").hexdigest()}))
    sidecar.publish_directory(staging, target, force=False)
    stop, ready = tmp_path / "stop", tmp_path / "ready"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(target), str(stop), str(ready)], stdout=subprocess.PIPE, text=True
    )
    with fails_after(120, "the reader's first read"):
        while not ready.exists():
            time.sleep(0.01)
    writers = [
        subprocess.Popen([sys.executable, "-c", HAMMER, str(target), "40"], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for w in writers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    stop.touch()
    counts = json.loads(reader.communicate(timeout=60)[0])
    assert counts["reads"] > 0 and counts["mixed"] == 0, counts
    if sys.platform.startswith("linux"):  # renameat2 swaps in one step: the record is never absent
        assert counts["absent"] == 0, counts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.envprint", "ready", "stop"]


# --------------------------------------------------------------------------- a read-only deployment host


def test_verify_writes_nothing_anywhere_in_the_model_folder(signed):
    before = tree_state(signed.parent)
    assert envprint.verify(signed, signing_key=KEY, require_signature=True).passed
    assert invoke("verify", signed).exit_code == 0
    assert tree_state(signed.parent) == before


def test_verify_of_a_savedmodel_writes_nothing_inside_the_export(mlp, tmp_path):
    export = tmp_path / "saved_model"
    shutil.copytree(mlp["savedmodel"], export)
    envprint.save(export, sign_key=KEY)
    before = tree_state(tmp_path)
    assert envprint.verify(export, signing_key=KEY, require_signature=True).passed
    assert tree_state(tmp_path) == before


@pytest.mark.subprocess
def test_verify_passes_on_a_tree_without_write_permission(records, world_tmp):
    # The read-only deployment host itself: a tree nobody may write, verified by a user the mode
    # bits bind (as root, CI's user, through setpriv: root writes whatever the modes say).
    shutil.copytree(records["unsigned"].parent, world_tmp / "deploy")
    model = world_tmp / "deploy" / "model.keras"
    paths = [model.parent, *model.parent.rglob("*")]
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    before = tree_state(model.parent)
    done = run_unprivileged(
        "import sys, envprint\nprint(envprint.verify(sys.argv[1]).verdict)\n", str(model), home=str(world_tmp / "home")
    )
    assert (done.returncode, done.stdout) == (0, "identical\n"), done.stderr[-3000:]
    assert tree_state(model.parent) == before


def test_a_signed_record_copied_elsewhere_still_verifies(signed, tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(signed.parent, copy)
    report = envprint.verify(copy / "model.keras", signing_key=KEY, require_signature=True)
    assert report.verdict == "identical" and report.record_signature == "verified"


def test_the_sidecar_npz_are_plain_archives(signed):
    # Nothing envprint-specific is needed to inspect a record on a deployment host.
    with zipfile.ZipFile(sidecar_of(signed) / "reference.npz") as zf:
        assert zf.namelist() == ["logits.npy"]


def test_cli_sign_and_require_signature(mlp, tmp_path, monkeypatch):
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    monkeypatch.delenv("ENVPRINT_SIGNING_KEY", raising=False)
    r = invoke("save", model, "--sign")
    assert r.exit_code == 2
    assert r.stderr == (
        "envprint: error: --sign needs a key: set ENVPRINT_SIGNING_KEY (a shared secret of at least 16 bytes)\n"
    )
    monkeypatch.setenv("ENVPRINT_SIGNING_KEY", "a-shared-secret-of-32-characters")
    assert invoke("save", model, "--sign").exit_code == 0
    ok = invoke("verify", model, "--require-signature", "--json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["record_signature"] == "verified"
    monkeypatch.setenv("ENVPRINT_SIGNING_KEY", "another-secret-of-32-characters!")
    bad = invoke("verify", model, "--require-signature")
    assert bad.exit_code == 3
    assert bad.stderr.count("\n") == 1 and "signature" in bad.stderr
