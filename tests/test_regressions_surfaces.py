"""An edited record and a changed model fail on every surface a report is read from.

One ``envprint verify MODEL --json --junit-xml FILE --html FILE`` run writes three surfaces at
once, and a second run without ``--json`` prints the text: each must say the same thing, so that
a CI job reading only the JUnit file, or a person reading only the page, is not told "passed".
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import junitparser
import numpy as np
import pytest
from envhelpers import Invoked, invoke

from envprint.errors import ExitCode

pytest.importorskip("matplotlib", reason="the HTML report needs the envprint[html] extra (matplotlib)")

EDITED = "probes.npz no longer matches the sha256 in fingerprint.json: the record was edited after save"
CHANGED = "the model's weights differ from the fingerprinted model's: this is not the model that was saved"


def recorded_copy(recorded: Path, folder: Path) -> Path:
    """A copy of a recorded .keras model and its record, in ``folder``."""
    model = folder / recorded.name
    shutil.copy2(recorded, model)
    shutil.copytree(Path(f"{recorded}.envprint"), Path(f"{model}.envprint"))
    return model


def every_surface(model: Path, folder: Path) -> tuple[Invoked, Invoked, list[junitparser.TestSuite], str]:
    """(the --json run, the text run, the JUnit suites, the HTML page) of one verify of ``model``."""
    junit, page = folder / "verify.xml", folder / "verify.html"
    as_json = invoke("verify", model, "--json", "--junit-xml", junit, "--html", page)
    as_text = invoke("verify", model)
    return as_json, as_text, list(junitparser.JUnitXml.fromfile(str(junit))), page.read_text(encoding="utf-8")


def identity_failure(suites: list[junitparser.TestSuite]) -> str | None:
    (suite,) = suites
    (case,) = [c for c in suite if c.name == "identity"]
    failures = [r for r in case.result if isinstance(r, junitparser.Failure)]
    return failures[0].message if failures else None


@pytest.fixture(scope="module")
def edited(mlp_recorded, tmp_path_factory):
    """Every surface of a verify whose record's probes.npz was edited after save."""
    folder = tmp_path_factory.mktemp("edited")
    model = recorded_copy(mlp_recorded, folder)
    probes = Path(f"{model}.envprint") / "probes.npz"
    with np.load(probes, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["features"][0, 0] += 1.0
    np.savez(probes, **arrays)
    return every_surface(model, folder)


@pytest.fixture(scope="module")
def changed(mlp_recorded, mlp_one_weight_changed, tmp_path_factory):
    """Every surface of a verify of another model (one weight one float32 step away) under the MLP's record."""
    folder = tmp_path_factory.mktemp("changed")
    model = recorded_copy(mlp_recorded, folder)
    shutil.copy2(mlp_one_weight_changed["keras"], model)
    return every_surface(model, folder)


def test_an_edited_record_is_a_mismatch_in_the_text(edited):
    _, text, _, _ = edited
    assert text.exit_code == ExitCode.DIFFERENT, text.output
    assert text.stdout.startswith(f"envprint verify: MISMATCH: {EDITED}\n")
    # no tolerance is the answer to an edited record: none is offered
    assert "would pass at" not in text.stdout, text.stdout


def test_an_edited_record_is_a_mismatch_in_the_json(edited):
    r, _, _, _ = edited
    assert r.exit_code == ExitCode.DIFFERENT, r.output
    doc = r.json
    assert (doc["verdict"], doc["passed"]) == ("mismatch", False)
    assert doc["identity"]["sidecar_files_changed"] == ["probes.npz"]
    assert doc["explanations"][0]["cause"] == "probes_changed"


def test_an_edited_record_fails_the_identity_test_in_junit(edited):
    _, _, suites, _ = edited
    assert identity_failure(suites) == EDITED


def test_an_edited_record_is_named_on_the_html_page(edited):
    _, _, _, page = edited
    assert "<tr><td>record files edited</td><td>probes.npz</td></tr>" in page
    assert f"<p><b>{html.escape(EDITED)}</b></p>" in page


def test_a_changed_model_is_a_mismatch_in_the_text_and_json(changed):
    r, text, _, _ = changed
    assert (r.exit_code, text.exit_code) == (ExitCode.DIFFERENT, ExitCode.DIFFERENT), text.output
    assert r.json["identity"]["weights"] == "changed"
    assert text.stdout.startswith(f"envprint verify: MISMATCH: {CHANGED}")


def test_a_changed_model_fails_the_identity_test_in_junit(changed):
    _, _, suites, _ = changed
    assert identity_failure(suites) == CHANGED


def test_the_html_page_shows_weights_changed(changed):
    _, _, _, page = changed
    assert "<tr><td>weights</td><td>CHANGED: this is not the model that was saved" in page  # the text's words


def test_the_html_page_shows_weights_same_when_they_are(mlp_recorded, tmp_path):
    model = recorded_copy(mlp_recorded, tmp_path)
    r = invoke("verify", model, "--html", tmp_path / "ok.html")
    assert r.exit_code == ExitCode.OK, r.output
    assert "<tr><td>weights</td><td>same as saved</td></tr>" in (tmp_path / "ok.html").read_text(encoding="utf-8")
