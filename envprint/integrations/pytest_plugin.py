"""The pytest plugin (entry point ``pytest11``): verify a model against its envprint record in a test.

Owns: the ``envprint_verify`` fixture and the ``--envprint-update`` option. It behaves like
pytest-regressions' fixtures: a record that does not exist yet is written and the test fails once
("recorded, rerun"); a mismatch fails with envprint's report as the message (each differing
output with its ``Index  Obtained  Expected  Difference`` table) ending with the fix; and
``--envprint-update`` re-records what no longer matches, as ``--force-regen`` does, failing those
tests once so that a re-recording is never silent.

Paths are the test file's, not the working directory's: a relative model, record or probes path
is read from the directory of the test file that uses the fixture, or from the ``envprint_models_dir``
ini option (itself relative to the ini file) where that is set, so ``cd tests && pytest`` and
``pytest tests/`` check the same files. ``@pytest.mark.envprint_models(FOLDER)`` with the
``envprint_model`` fixture runs a test once per model that has a record under FOLDER (found as
``envprint sweep`` finds them), each test named by the model's path inside FOLDER.

Loaded at every pytest start-up where envprint is installed, so it imports neither TensorFlow nor
envprint's models at module level: only a test that uses the fixture pays for them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

UPDATE_OPTION = "--envprint-update"
MODELS_DIR_INI = "envprint_models_dir"
MODELS_MARK = "envprint_models"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("envprint", "envprint: verify models against their recorded fingerprints")
    group.addoption(
        UPDATE_OPTION,
        action="store_true",
        default=False,
        help="Re-record the envprint fingerprints that envprint_verify finds missing or mismatched (like "
        "pytest-regressions' --force-regen); those tests fail once, saying what was re-recorded.",
    )
    parser.addini(
        MODELS_DIR_INI,
        "The directory relative model, record and probes paths of envprint_verify (and envprint_models "
        "folders) are read from, relative to the ini file (default: the directory of each test file).",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MODELS_MARK}(folder): run the test once per model with an envprint record under folder "
        "(relative to the test file, or envprint_models_dir), given by the envprint_model fixture.",
    )


def _base(config: pytest.Config, test_file: Path) -> Path:
    """Where relative paths are read from: the ini option's directory, else the test file's."""
    configured = config.getini(MODELS_DIR_INI)
    if configured:
        ini_dir = config.inipath.parent if config.inipath is not None else config.rootpath
        return ini_dir / configured
    return test_file.parent


def _resolve(base: Path, path: str | Path) -> Path:
    """``path`` read from ``base``, spelled relative to the working directory where it lies below it
    (as a user would type it in a report's message), else absolute."""
    full = Path(os.path.abspath(base / Path(path)))
    try:
        return full.relative_to(Path.cwd())
    except ValueError:
        return full


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "envprint_model" not in metafunc.fixturenames:
        return
    mark = metafunc.definition.get_closest_marker(MODELS_MARK)
    base = _base(metafunc.config, Path(str(metafunc.definition.path)))
    if mark is None or not mark.args:
        raise pytest.Collector.CollectError(
            f"{metafunc.definition.nodeid}: the envprint_model fixture needs @pytest.mark.{MODELS_MARK}(FOLDER), "
            "the folder whose models (with their records) the test runs over"
        )
    folder = _resolve(base, mark.args[0])
    from envprint.errors import EnvprintError
    from envprint.many.sweep import find_models

    try:
        models = find_models([folder]) if folder.is_dir() else []
    except EnvprintError as exc:
        raise pytest.Collector.CollectError(f"{metafunc.definition.nodeid}: {exc}") from None
    if not models:
        raise pytest.Collector.CollectError(
            f"{metafunc.definition.nodeid}: no model with an envprint record under {folder}; "
            "record them with 'envprint save MODEL', or give the folder that holds them"
        )
    # Absolute, so that envprint_verify does not read them from its base a second time.
    metafunc.parametrize(
        "envprint_model",
        [Path(os.path.abspath(m)) for m in models],
        ids=[m.relative_to(folder).as_posix() for m in models],
    )


def _sidecar(model: Any, fingerprint: str | Path | None) -> Path:
    from envprint.errors import UsageError
    from envprint.record.sidecar import FINGERPRINT_FILE, default_sidecar

    if fingerprint is not None:
        path = Path(fingerprint)
        return path.parent if path.name == FINGERPRINT_FILE else path
    if isinstance(model, (str, Path)):
        return default_sidecar(Path(model))
    raise UsageError(
        f"envprint_verify: a model in memory ({type(model).__name__}) needs fingerprint=DIR, where its record lives"
    )


def _record(model: Any, sidecar: Path, save_options: Mapping[str, Any]) -> None:
    """Write the record of ``model`` into ``sidecar``, replacing what is there."""
    import envprint

    if isinstance(model, (str, Path)):
        envprint.save(model, out=sidecar, force=True, **save_options)
        return
    # A model in memory is saved to a temporary .keras file for the record; verify of a model in
    # memory checks its weights digest and outputs, never the file's bytes.
    with tempfile.TemporaryDirectory(prefix="envprint-") as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        envprint.save(path, out=sidecar, force=True, **save_options)


def _fail(message: str) -> None:
    pytest.fail(message, pytrace=False)


def _resolve_paths(
    base: Path, model: Any, fingerprint: str | Path | None, save_options: Mapping[str, Any] | None
) -> tuple[Any, Path | None, dict[str, Any]]:
    """The fixture's relative paths (the model, ``fingerprint=``, ``save_options["probes"]``) read from ``base``."""
    if isinstance(model, (str, Path)):
        model = _resolve(base, model)
    if fingerprint is not None:
        fingerprint = _resolve(base, fingerprint)
    options = dict(save_options or {})
    if isinstance(options.get("probes"), (str, Path)):
        options["probes"] = _resolve(base, options["probes"])
    return model, fingerprint, options


def _rerecord(model: Any, sidecar: Path, save_options: Mapping[str, Any], report: Any) -> None:
    """``--envprint-update``: record ``model`` again over the record it no longer matches, and fail the test once."""
    from envprint.errors import EnvprintError

    # pytest.fail is raised outside the except block, as in envprint_verify (the message once).
    problem = None
    try:
        _record(model, sidecar, save_options)
    except EnvprintError as exc:
        problem = f"envprint: could not re-record {sidecar}: {exc}"
    if problem is not None:
        _fail(problem)
    _fail(f"envprint: {report.model} did not match {sidecar}; re-recorded it ({UPDATE_OPTION}).\n\n" + report.to_text())


@pytest.fixture
def envprint_verify(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``envprint_verify(model, fingerprint=None, *, save_options=None, **verify_options) -> Report``.

    ``model`` is a model's path (its record found beside it) or a Keras model in memory (then
    ``fingerprint=`` names the record's directory). Fails the test on a mismatch with envprint's
    report, and on a missing record after writing it; ``--envprint-update`` re-records.
    ``save_options`` go to ``envprint.save`` when recording (probes=, seed=, ...), the rest to
    ``envprint.verify`` (tolerance=, custom_objects=, ...). Relative paths (the model,
    ``fingerprint=``, ``save_options["probes"]``) are read from the test file's directory, or from
    the ``envprint_models_dir`` ini option.
    """
    update = bool(request.config.getoption("envprint_update"))
    base = _base(request.config, Path(str(request.path)))

    def check(
        model: Any,
        fingerprint: str | Path | None = None,
        *,
        save_options: Mapping[str, Any] | None = None,
        **verify_options: Any,
    ) -> Any:
        import envprint
        from envprint.errors import EnvprintError
        from envprint.record.sidecar import FINGERPRINT_FILE

        model, fingerprint, save_options = _resolve_paths(base, model, fingerprint, save_options)
        # pytest.fail is raised outside the except blocks: inside one, pytest would print the
        # EnvprintError as well, "During handling of the above exception", the message twice.
        problem = None
        try:
            sidecar = _sidecar(model, fingerprint)
            recorded = not (sidecar / FINGERPRINT_FILE).exists()
            if recorded:
                _record(model, sidecar, save_options)
            else:
                report = envprint.verify(model, fingerprint=sidecar, **verify_options)
        except EnvprintError as exc:
            problem = f"envprint: could not verify: {exc}"
        if problem is not None:
            _fail(problem)
        if recorded:
            _fail(
                f"envprint: no record at {sidecar}; recorded it now from this run. Rerun the test, and keep "
                f"{sidecar} with the model (commit it)."
            )
        if report.passed:
            return report
        if update:
            _rerecord(model, sidecar, save_options, report)
        _fail(
            report.to_text()
            + f"\nIf this change is intended, re-record with: pytest {UPDATE_OPTION} (then commit {sidecar})"
        )

    return check


@pytest.fixture
def envprint_model(request: pytest.FixtureRequest) -> Path:
    """One model of the folder that ``@pytest.mark.envprint_models(FOLDER)`` names (the test runs once per model)."""
    return request.param
