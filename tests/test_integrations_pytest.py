"""The pytest plugin (entry point pytest11): envprint_verify and --envprint-update, run by pytester.

The inner sessions run in this process (TensorFlow is already imported, so they cost seconds),
except the one whose point is a fresh pytest start-up: it must not import TensorFlow.
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import textwrap

import pytest

import envprint

pytest_plugins = ["pytester"]

TESTS = textwrap.dedent(
    """
    from envprint._tf import import_keras


    def test_same(envprint_verify):
        assert envprint_verify("model.keras").verdict == "identical"


    def test_changed(envprint_verify):
        envprint_verify("changed.keras", fingerprint="changed-record")


    def test_new(envprint_verify):
        envprint_verify("new.keras", save_options={"num_probes": 3})


    def test_in_memory(envprint_verify):
        model = import_keras().models.load_model("model.keras", compile=False)
        assert envprint_verify(model, fingerprint="model.keras.envprint").passed
    """
)


@pytest.fixture(autouse=True)
def envprint_imported(tf) -> None:
    """Every envprint module imported before an inner session runs.

    pytester's in-process sessions drop the modules first imported during them when they end;
    a module of envprint dropped that way would come back as a second copy (its pydantic classes
    no longer the ones the rest of envprint holds).
    """
    for module in pkgutil.walk_packages(envprint.__path__, "envprint."):
        importlib.import_module(module.name)


@pytest.fixture
def project(pytester: pytest.Pytester, mlp, mlp_recorded, mlp_retrained) -> pytest.Pytester:
    """A user's project: a model with its record, a retrained one checked against it, one never recorded."""
    root = pytester.path
    shutil.copy2(mlp_recorded, root / "model.keras")
    shutil.copytree(mlp_recorded.with_name("model.keras.envprint"), root / "model.keras.envprint")
    shutil.copytree(root / "model.keras.envprint", root / "changed-record")
    shutil.copy2(mlp_retrained, root / "changed.keras")
    shutil.copy2(mlp["keras"], root / "new.keras")
    pytester.makepyfile(test_model=TESTS)
    return pytester


def test_mismatch_fails_with_the_report_a_missing_record_is_written_and_update_re_records(project):
    first = project.runpytest("-p", "no:cacheprovider")
    first.assert_outcomes(passed=2, failed=2)
    out = first.stdout.str()
    # The mismatch: envprint's report as the message, pytest-regressions' table, and the fix last.
    first.stdout.fnmatch_lines(
        [
            "*_ test_changed _*",
            "envprint verify: MISMATCH: the model's weights differ from the fingerprinted model's*",
            "  model:       changed.keras",
            "  weights:     CHANGED: this is not the model that was saved",
            'output "logits": * out of tolerance | *',
            "Index*Obtained*Expected*Difference",
            "If this change is intended, re-record with: pytest --envprint-update (then commit changed-record)",
        ]
    )
    assert "Traceback" not in out
    first.stdout.fnmatch_lines(
        [
            "*_ test_new _*",
            "envprint: no record at new.keras.envprint; recorded it now from this run. Rerun the test, and keep "
            "new.keras.envprint with the model (commit it).",
        ]
    )
    assert envprint.read_fingerprint(project.path / "new.keras.envprint" / "fingerprint.json").probes.num_probes == 3

    update = project.runpytest("-p", "no:cacheprovider", "--envprint-update")
    update.assert_outcomes(passed=3, failed=1)
    update.stdout.fnmatch_lines(
        [
            "*_ test_changed _*",
            "envprint: changed.keras did not match changed-record; re-recorded it (--envprint-update).",
        ]
    )

    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=4)


def test_a_model_that_cannot_be_loaded_fails_in_one_line(pytester: pytest.Pytester, mlp):
    shutil.copy2(mlp["keras"], pytester.path / "model.keras")
    envprint.save(pytester.path / "model.keras")
    (pytester.path / "model.keras").write_bytes(b"not a zip file")
    pytester.makepyfile(
        test_broken="""
        def test_broken(envprint_verify):
            envprint_verify("model.keras")
        """
    )
    # -rN: no short summary, which repeats the message (cut to the terminal's width, or whole where
    # CI is set): what is counted below is the failure's own report.
    result = pytester.runpytest("-p", "no:cacheprovider", "-rN")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["envprint: could not verify: *"])
    out = result.stdout.str()
    assert "Traceback" not in out
    # Said once: not again as the exception pytest.fail was raised while handling.
    assert "During handling of the above exception" not in out
    assert out.count("model.keras: not a .keras archive (not a zip file: truncated or corrupt?)") == 1, out


@pytest.mark.subprocess
def test_the_plugin_loads_from_its_entry_point_without_importing_tensorflow(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_startup="""
        import sys

        def test_startup(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("envprint")  # the pytest11 entry point's name
            assert pytestconfig.getoption("envprint_update") is False
            heavy = {"tensorflow", "keras", "tf_keras", "numpy"} & set(sys.modules)
            assert not heavy, heavy
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_help_lists_the_update_option(pytester: pytest.Pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["envprint: verify models against their recorded fingerprints:", "  --envprint-update*"]
    )


def _recorded_project(pytester: pytest.Pytester, mlp_recorded, where: str) -> None:
    folder = pytester.path / where
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(mlp_recorded, folder / "model.keras")
    shutil.copytree(mlp_recorded.with_name("model.keras.envprint"), folder / "model.keras.envprint")


def test_model_paths_are_read_from_the_test_files_directory_wherever_pytest_runs(
    pytester: pytest.Pytester, mlp_recorded
):
    _recorded_project(pytester, mlp_recorded, "tests")
    (pytester.path / "tests" / "test_model.py").write_text(
        "def test_the_model_matches_its_record(envprint_verify):\n"
        '    assert envprint_verify("model.keras", fingerprint="model.keras.envprint").verdict == "identical"\n'
    )
    pytester.runpytest("-p", "no:cacheprovider", "tests").assert_outcomes(passed=1)  # from the project's root
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(pytester.path / "tests")  # cd tests && pytest
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert sorted(p.name for p in pytester.path.iterdir()) == ["tests"]  # no record written anywhere else


def test_the_ini_option_names_the_directory_of_the_models(pytester: pytest.Pytester, mlp_recorded):
    _recorded_project(pytester, mlp_recorded, "data/models")
    pytester.makeini("[pytest]\nenvprint_models_dir = data/models\n")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_model.py").write_text(
        "def test_the_model_matches_its_record(envprint_verify):\n"
        '    assert envprint_verify("model.keras").verdict == "identical"\n'
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(pytester.path / "tests")
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_test_runs_once_per_recorded_model_of_a_folder(pytester: pytest.Pytester, mlp_recorded, mlp_retrained):
    _recorded_project(pytester, mlp_recorded, "models/a")
    _recorded_project(pytester, mlp_recorded, "models/b")
    shutil.copy2(mlp_retrained, pytester.path / "models" / "b" / "model.keras")  # b no longer matches its record
    shutil.copy2(mlp_retrained, pytester.path / "models" / "unrecorded.keras")  # no record: not a test
    pytester.makepyfile(
        test_models="""
        import pytest

        @pytest.mark.envprint_models("models")
        def test_each_model_matches_its_record(envprint_verify, envprint_model):
            envprint_verify(envprint_model)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_each_model_matches_its_record?a/model.keras? PASSED*",
            "*test_each_model_matches_its_record?b/model.keras? FAILED*",
        ]
    )
    result.stdout.fnmatch_lines(["envprint verify: MISMATCH: *", "  model:       models/b/model.keras"])

    pytester.makepyfile(
        test_models="""
        import pytest

        @pytest.mark.envprint_models("elsewhere")
        def test_each_model_matches_its_record(envprint_verify, envprint_model):
            envprint_verify(envprint_model)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_models.py::test_each_model_matches_its_record: no model with an envprint record under "
            "elsewhere; record them with 'envprint save MODEL', or give the folder that holds them"
        ]
    )
