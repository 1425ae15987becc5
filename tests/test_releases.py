"""Records and reports read across envprint releases (README: "Compatibility between envprint releases").

The previous release (0.1.0, commit ``PREVIOUS``) is built from this repository's history into
``.venv-release-<commit>`` at the repository root, once: ``git worktree add`` of the commit into a
temporary directory, a virtualenv of the same base Python made without pip, a ``.pth`` file that
puts this environment's site-packages on its path (TensorFlow, Keras, pydantic and pip are shared,
nothing is downloaded), then ``pip install --no-deps --no-build-isolation --no-index`` of the old
checkout, which copies it into the virtualenv so the worktree is removed at once. Its envprint runs
from a directory without an ``envprint`` package and without PYTHONPATH, so it never imports this
checkout. Select these tests with ``-m releases``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envprint.cli.app import app
from envprint.errors import FingerprintError
from envprint.models import Fingerprint
from envprint.models.base import FINGERPRINT_SCHEMA_MINOR, REPORT_SCHEMA_MINOR
from envprint.record import store

pytestmark = pytest.mark.releases

PREVIOUS = "a815192"  # envprint 0.1.0
REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _previous_release_python(commit: str = PREVIOUS) -> Path:
    """The python of a virtualenv holding envprint as of ``commit`` (built once, then reused)."""
    venv = REPO / f".venv-release-{commit}"
    python = venv / "bin" / "python"
    stamp = venv / ".envprint-stamp"
    shared = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    want = f"{commit} {' '.join(shared)}"
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return python
    known = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    if known.returncode != 0:
        pytest.skip(f"commit {commit} (envprint 0.1.0) is not in this clone's history; git fetch --unshallow")
    shutil.rmtree(venv, ignore_errors=True)
    base = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    # Last on the path: the old envprint installed in the venv itself comes first.
    (site / "zz-shared-site-packages.pth").write_text("".join(f"{p}\n" for p in shared))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(src), commit], check=True)
        try:
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--no-deps",
                    "--no-build-isolation",
                    "--no-index",
                    str(src),
                ],
                check=True,
                env=_env(),
                cwd=tmp,
            )
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(src)], check=True)
    stamp.write_text(want)
    return python


def _env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ.update(TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return environ


def _old(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "envprint", *args], capture_output=True, text=True, env=_env(), cwd=cwd, timeout=300
    )


def _new(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """This checkout's envprint as a user runs it (its main(): the warning hook, the log filter)."""
    return subprocess.run(
        [sys.executable, "-m", "envprint", *args],
        capture_output=True,
        text=True,
        env=_env(PYTHONPATH=str(REPO)),
        cwd=cwd,
        timeout=300,
    )


def _envprint_lines(stderr: str) -> list[str]:
    # The old release does not filter TensorFlow's C++ start-up lines: keep envprint's own.
    return [line for line in stderr.splitlines() if line.startswith("envprint:")]


@pytest.fixture(scope="module")
def old_python() -> Path:
    return _previous_release_python()


@pytest.fixture(scope="module")
def tiny(keras, tmp_path_factory) -> Path:
    """A directory holding one small real model, features (None, 4) -> logits Dense(3), as a.keras."""
    inp = keras.Input((4,), name="features")
    init = {"kernel_initializer": keras.initializers.GlorotUniform(seed=7), "bias_initializer": "zeros"}
    out = keras.layers.Dense(3, name="logits", **init)(inp)
    where = tmp_path_factory.mktemp("releases")
    keras.Model(inp, out).save(where / "a.keras")
    return where


def _copy_model(tiny: Path, to: Path) -> Path:
    to.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny / "a.keras", to / "m.keras")
    return to


@pytest.fixture(scope="module")
def saved_by_old(old_python, tiny, tmp_path_factory) -> Path:
    where = _copy_model(tiny, tmp_path_factory.mktemp("by-0.1.0"))
    r = _old(old_python, "save", "m.keras", cwd=where)
    assert r.returncode == 0, r.stderr
    return where


@pytest.fixture(scope="module")
def saved_by_new(tiny, tmp_path_factory) -> Path:
    where = _copy_model(tiny, tmp_path_factory.mktemp("by-this"))
    r = _new("save", "m.keras", cwd=where)
    assert r.returncode == 0, r.stderr
    return where


@pytest.fixture(scope="module")
def verify_report(saved_by_new) -> dict:
    r = _new("verify", "m.keras", "--json", cwd=saved_by_new)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _newer_minor(record: Path, to: Path) -> Path:
    """A copy of a model and its record as a newer minor release would write it: two fields this one lacks."""
    shutil.copytree(record, to)
    fp = to / "m.keras.envprint" / "fingerprint.json"
    data = json.loads(fp.read_text())
    data["schema_minor"] += 1
    data["env"]["container_image"] = "registry.example/serve:7"
    data["model"]["quantization"] = {"scheme": "int8", "calibrated": True}
    fp.write_text(store.canonical_json(data))
    return fp


def test_this_envprint_verifies_a_record_of_the_previous_release(saved_by_old):
    r = _new("verify", "m.keras", "--json", cwd=saved_by_old)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    # README: records of 0.1.0 (digest scheme named-v1) are checked the way 0.1.0 computed them.
    assert (report["verdict"], report["identity"]["weights"]) == ("identical", "same")
    assert report["identity"]["weights_digest_scheme_saved"] == "named-v1"
    assert "newer envprint" not in r.stderr
    # The record's schema_minor (absent, so 0) describes the file, not the host: never a difference.
    assert "schema_minor" not in [entry["path"] for entry in report["environment"]["entries"]]


def test_the_previous_release_refuses_a_record_of_this_one(old_python, saved_by_new):
    """Why the compatibility policy exists: 0.1.0 validated every key strictly, so any field added
    since (schema_minor among them) makes it call a sound record invalid (exit 3). Old code cannot be
    changed; from this release on, a newer minor is read with a note instead."""
    r = _old(old_python, "verify", "m.keras", cwd=saved_by_new)
    assert r.returncode == 3, r.stderr
    (line,) = _envprint_lines(r.stderr)
    assert re.fullmatch(
        r"envprint: error: m\.keras\.envprint/fingerprint\.json: invalid fingerprint: field '[\w.]+': "
        r"Extra inputs are not permitted( \(and \d+ more\))?",
        line,
    ), line


def test_a_newer_minor_record_verifies_with_one_line_naming_what_was_not_checked(saved_by_new, tmp_path):
    _newer_minor(saved_by_new, tmp_path / "m")
    r = _new("verify", "m.keras", cwd=tmp_path / "m")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("envprint verify: PASSED (bit-identical)")
    assert _envprint_lines(r.stderr) == [
        f"envprint: WARNING: m.keras.envprint/fingerprint.json was written by a newer envprint (schema 1.{FINGERPRINT_SCHEMA_MINOR + 1}, "
        f"this one reads 1.{FINGERPRINT_SCHEMA_MINOR}): fields env.container_image, model.quantization were not "
        "checked; pip install -U envprint to check them"
    ]


def test_fields_of_a_newer_minor_are_kept_when_the_record_is_written_again(saved_by_new, tmp_path):
    fp = _newer_minor(saved_by_new, tmp_path / "m")
    data = json.loads(fp.read_text())
    data["devices"]["physical"][0]["numa_node"] = 0  # inside a list of records
    fp.write_text(store.canonical_json(data))
    fields = "devices.physical.0.numa_node, env.container_image, model.quantization"
    with pytest.warns(store.NewerSchemaWarning, match=re.escape(f"fields {fields} were not checked")):
        record = store.read_fingerprint(fp)
    assert "container_image" not in record.env.model_dump()  # read for what this envprint knows
    again = tmp_path / "again.json"
    store.write_fingerprint(again, record)
    assert again.read_text() == fp.read_text()  # nothing dropped, the newer minor kept


def test_an_unknown_field_in_a_record_of_this_minor_is_still_invalid(saved_by_new, tmp_path):
    shutil.copytree(saved_by_new, tmp_path / "m")
    fp = tmp_path / "m" / "m.keras.envprint" / "fingerprint.json"
    data = json.loads(fp.read_text())
    data["env"]["container_image"] = "registry.example/serve:7"
    fp.write_text(store.canonical_json(data))
    with pytest.raises(FingerprintError) as info:
        store.read_fingerprint(fp)
    assert str(info.value) == (
        f"{fp}: invalid fingerprint: field 'env.container_image': Extra inputs are not permitted"
    )


def test_a_known_field_of_the_wrong_type_in_a_newer_minor_is_still_invalid(saved_by_new, tmp_path):
    fp = _newer_minor(saved_by_new, tmp_path / "m")
    data = json.loads(fp.read_text())
    data["cpu"]["logical_cores"] = "many"
    fp.write_text(store.canonical_json(data))
    with pytest.raises(FingerprintError, match=r"invalid fingerprint: field 'cpu\.logical_cores': "):
        store.read_fingerprint(fp)


def test_a_newer_major_record_is_refused_in_one_line_with_the_install_that_reads_it(saved_by_new, tmp_path):
    shutil.copytree(saved_by_new, tmp_path / "m")
    fp = tmp_path / "m" / "m.keras.envprint" / "fingerprint.json"
    data = json.loads(fp.read_text())
    data.update(schema_version=2, schema_minor=0, envprint_version="9.1.0")
    fp.write_text(store.canonical_json(data))
    r = runner.invoke(app, ["verify", str(tmp_path / "m" / "m.keras")])
    assert r.exit_code == 3
    assert r.stderr == (
        f"envprint: error: {fp}: a fingerprint written by a newer envprint (schema 2.0, this one reads "
        f"1.{FINGERPRINT_SCHEMA_MINOR}); read it with a newer envprint: pip install 'envprint>=9.1.0'\n"
    )


def test_envprint_never_writes_a_field_it_does_not_know(saved_by_new, verify_report):
    """What envprint writes validates strictly (no tolerance path taken) and reads back byte for byte."""
    fp = saved_by_new / "m.keras.envprint" / "fingerprint.json"
    text = fp.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error", store.NewerSchemaWarning)
        record = Fingerprint.model_validate(json.loads(text))  # extra="forbid": an unknown key fails here
        report = store.parse_report(verify_report, "report.json")
    assert (record.schema_minor, report.schema_minor) == (FINGERPRINT_SCHEMA_MINOR, REPORT_SCHEMA_MINOR)
    assert store.canonical_json(record) == text
    assert json.loads(store.canonical_json(report)) == verify_report


def test_aggregate_reads_a_newer_minor_report_and_names_what_it_did_not_check(verify_report, tmp_path):
    doc = {**verify_report, "schema_minor": verify_report["schema_minor"] + 1, "attestation": {"signed_by": "ci"}}
    path = tmp_path / "host-a.json"
    path.write_text(json.dumps(doc))
    from envprint.many.aggregate import aggregate

    with pytest.warns(store.NewerSchemaWarning) as caught:
        result = aggregate([path])
    assert [str(w.message) for w in caught] == [
        f"{path} was written by a newer envprint (schema 2.{REPORT_SCHEMA_MINOR + 1}, this one reads "
        f"2.{REPORT_SCHEMA_MINOR}): field attestation was not checked; pip install -U envprint to check them"
    ]
    assert (result.exit_code, [len(m.hosts) for m in result.models]) == (0, [1])


@pytest.mark.parametrize("command", ["aggregate", "report"])
def test_a_newer_major_report_is_refused_by_aggregate_and_report(verify_report, tmp_path, command):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({**verify_report, "schema_version": 3, "schema_minor": 0}))
    args = [command, str(path)] + (["--html", str(tmp_path / "r.html")] if command == "report" else [])
    r = runner.invoke(app, args)
    assert r.exit_code == 3, r.output
    assert r.stderr == (
        f"envprint: error: {path}: a verify report written by a newer envprint (schema 3.0, this one reads "
        f"2.{REPORT_SCHEMA_MINOR}); read it with a newer envprint: pip install -U envprint\n"
    )
