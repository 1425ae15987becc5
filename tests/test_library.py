"""The library does what the command line does: each command is one library call a program can make.

save's --tolerance-from, schema's --out/--check and verify's options as one value are library
functions; the CLI only parses, calls and prints (tests/test_contract.py compares their JSON).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import envprint
from envprint.check.options import VerifyOptions
from envprint.check.verifier import verify_with
from envprint.cli.app import app
from envprint.models import Tolerance
from envprint.record.schemas import stale_schemas, write_schemas


def copy_of(model: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(model, folder / model.name)
    shutil.copytree(f"{model}.envprint", folder / f"{model.name}.envprint")
    return folder / model.name


def test_save_takes_its_tolerance_from_a_verify_report(mlp_recorded, tmp_path):
    model = copy_of(mlp_recorded, tmp_path / "m")
    report = tmp_path / "report.json"
    report.write_text(envprint.verify(model).model_dump_json())
    result = envprint.save(model, force=True, tolerance_from=report, margin=3.0)
    # Bit-identical outputs measured no drift: the per-dtype defaults stay, with where they came from.
    assert result.fingerprint.tolerance == Tolerance(margin=3.0, derived_from=str(report))
    assert envprint.read_fingerprint(f"{model}.envprint").tolerance == result.fingerprint.tolerance


def test_save_refuses_a_tolerance_and_a_report_to_derive_one_from_before_any_work(mlp_recorded, tmp_path):
    model = copy_of(mlp_recorded, tmp_path / "m")
    report = tmp_path / "report.json"
    report.write_text(envprint.verify(model).model_dump_json())
    before = (tmp_path / "m" / "model.keras.envprint" / "fingerprint.json").read_bytes()
    with pytest.raises(envprint.UsageError) as info:
        envprint.save(model, force=True, tolerance=Tolerance(rtol=1e-3), tolerance_from=report)
    assert str(info.value) == "--tolerance-from sets rtol from measured drift; drop --rtol/--atol/--exact"
    assert (tmp_path / "m" / "model.keras.envprint" / "fingerprint.json").read_bytes() == before


def test_verify_with_options_is_the_report_of_verify_with_keywords(mlp_recorded):
    by_keywords = envprint.verify(mlp_recorded, tolerance=Tolerance(exact=True), check_stochastic=False)
    by_options = verify_with(mlp_recorded, VerifyOptions(tolerance=Tolerance(exact=True), check_stochastic=False))
    assert by_options.model_dump(exclude={"environment"}) == by_keywords.model_dump(exclude={"environment"})
    assert by_options.verdict == "identical"


def test_verify_options_import_custom_objects_named_by_spec():
    options = VerifyOptions(custom_objects=("pathlib:PurePosixPath",))
    assert options.loaded_custom_objects() == {"PurePosixPath": __import__("pathlib").PurePosixPath}
    assert VerifyOptions(custom_objects={"P": Path}).loaded_custom_objects() == {"P": Path}
    with pytest.raises(envprint.ModelError, match=r"--custom-objects 'no_such_module_xyz:Layer': cannot import"):
        VerifyOptions(custom_objects=("no_such_module_xyz:Layer",)).loaded_custom_objects()


def test_schema_files_written_by_the_library_are_what_the_check_compares(tmp_path):
    written = write_schemas(tmp_path / "schemas")
    assert written and all(p.parent == tmp_path / "schemas" and p.name.endswith(".schema.json") for p in written)
    assert stale_schemas(tmp_path / "schemas") == []
    written[0].write_text("{}\n")
    written[1].unlink()
    assert stale_schemas(tmp_path / "schemas") == [written[0], written[1]]
    r = CliRunner().invoke(app, ["schema", "--check", "--out", str(tmp_path / "schemas")])
    assert r.exit_code == 1, r.output
    assert r.stderr == (
        f"envprint: schemas out of date: {written[0]}, {written[1]}; run: envprint schema --out {tmp_path / 'schemas'}\n"
    )
    with pytest.raises(envprint.UsageError, match=r"no such folder, so nothing to check"):
        stale_schemas(tmp_path / "nothing-here")
