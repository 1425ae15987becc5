"""File and tree digests: streaming, sorted, sidecar-free, and loud about what they cannot read."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from envhelpers import run_unprivileged

from envprint.errors import ExitCode, FingerprintError, ModelError
from envprint.record.digests import combine, sha256_file, tree_digests


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_sha256_file_matches_hashlib_whatever_the_chunk_size(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    assert sha256_file(f) == _sha(data)
    assert sha256_file(f, chunk=7) == _sha(data)


def test_sha256_of_an_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "empty"
    f.write_bytes(b"")
    assert sha256_file(f) == _sha(b"")


def test_tree_digests_of_a_file_keys_it_by_its_name(tmp_path: Path) -> None:
    f = tmp_path / "model.keras"
    f.write_bytes(b"zip")
    assert tree_digests(f) == {".": _sha(b"zip")}


def test_tree_digests_lists_relative_posix_paths_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "variables").mkdir()
    (tmp_path / "variables" / "variables.index").write_bytes(b"i")
    (tmp_path / "variables" / "variables.data-00000-of-00001").write_bytes(b"d")
    (tmp_path / "saved_model.pb").write_bytes(b"pb")
    (tmp_path / "assets").mkdir()  # empty directories contribute nothing
    got = tree_digests(tmp_path)
    assert list(got) == ["saved_model.pb", "variables/variables.data-00000-of-00001", "variables/variables.index"]
    assert got["saved_model.pb"] == _sha(b"pb")


def test_tree_digests_skips_the_envprint_sidecar(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"pb")
    sidecar = tmp_path / "assets.extra" / "envprint"
    sidecar.mkdir(parents=True)
    (sidecar / "fingerprint.json").write_text("{}")
    (tmp_path / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"w")
    assert list(tree_digests(tmp_path)) == ["assets.extra/tf_serving_warmup_requests", "saved_model.pb"]


def test_tree_digests_changes_when_one_byte_changes(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"aaaa")
    before = combine(tree_digests(tmp_path))
    (tmp_path / "a").write_bytes(b"aaab")
    assert combine(tree_digests(tmp_path)) != before


def test_combine_depends_on_paths_not_only_contents(tmp_path: Path) -> None:
    assert combine({"a": _sha(b"x")}) != combine({"b": _sha(b"x")})
    assert combine({"a": "1", "b": "2"}) == combine({"b": "2", "a": "1"})


def test_missing_path_is_a_model_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.keras"
    with pytest.raises(ModelError) as err:
        tree_digests(missing)
    assert str(err.value) == f"{missing}: no such file or directory; check the path"
    assert err.value.exit_code == ExitCode.MODEL


def test_the_caller_chooses_the_error_class(tmp_path: Path) -> None:
    with pytest.raises(FingerprintError):
        sha256_file(tmp_path / "nope.npz", error=FingerprintError)


def test_dangling_symlink_in_a_tree_is_reported_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"pb")
    (tmp_path / "broken").symlink_to(tmp_path / "gone")
    with pytest.raises(ModelError) as err:
        tree_digests(tmp_path)
    assert str(err.value) == f"{tmp_path / 'broken'}: no such file; check the path (a dangling symlink reads the same)"


def test_symlinked_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    with pytest.raises(ModelError, match="a symlink to a directory, which envprint does not follow"):
        tree_digests(tmp_path / "model")


@pytest.mark.subprocess
def test_unreadable_file_names_the_file_and_the_fix(world_tmp: Path) -> None:
    # Run as a user the mode binds (as root, CI's user, through setpriv): root would read the file.
    f = world_tmp / "secret.h5"
    f.write_bytes(b"x")
    f.chmod(0)
    code = (
        "import sys\n"
        "from envprint.record.digests import sha256_file\n"
        "from envprint.errors import ModelError\n"
        "try:\n    sha256_file(sys.argv[1])\n"
        "except ModelError as exc:\n    print(exc)\n"
    )
    done = run_unprivileged(code, str(f), home=str(world_tmp / "home"))
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == f"{f}: cannot be read (Permission denied); check its permissions\n"
