"""The pytest plugin (entry point ``pytest11``): verify a model against its envprint record in a test.

Owns: the ``envprint_verify`` fixture and the ``--envprint-update`` option. It behaves like
pytest-regressions' fixtures: a record that does not exist yet is written and the test fails once
("recorded, rerun"); a mismatch fails with envprint's report as the message (each differing
output with its ``Index  Obtained  Expected  Difference`` table) ending with the fix; and
``--envprint-update`` re-records what no longer matches, as ``--force-regen`` does, failing those
tests once so that a re-recording is never silent.

Loaded at every pytest start-up where envprint is installed, so it imports neither TensorFlow nor
envprint's models at module level: only a test that uses the fixture pays for them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

UPDATE_OPTION = "--envprint-update"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("envprint", "envprint: verify models against their recorded fingerprints")
    group.addoption(
        UPDATE_OPTION,
        action="store_true",
        default=False,
        help="Re-record the envprint fingerprints that envprint_verify finds missing or mismatched (like "
        "pytest-regressions' --force-regen); those tests fail once, saying what was re-recorded.",
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


@pytest.fixture
def envprint_verify(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``envprint_verify(model, fingerprint=None, *, save_options=None, **verify_options) -> Report``.

    ``model`` is a model's path (its record found beside it) or a Keras model in memory (then
    ``fingerprint=`` names the record's directory). Fails the test on a mismatch with envprint's
    report, and on a missing record after writing it; ``--envprint-update`` re-records.
    ``save_options`` go to ``envprint.save`` when recording (probes=, seed=, ...), the rest to
    ``envprint.verify`` (tolerance=, custom_objects=, ...).
    """
    update = bool(request.config.getoption("envprint_update"))

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

        try:
            sidecar = _sidecar(model, fingerprint)
            if not (sidecar / FINGERPRINT_FILE).exists():
                _record(model, sidecar, save_options or {})
                _fail(
                    f"envprint: no record at {sidecar}; recorded it now from this run. Rerun the test, and keep "
                    f"{sidecar} with the model (commit it)."
                )
            report = envprint.verify(model, fingerprint=sidecar, **verify_options)
        except EnvprintError as exc:
            _fail(f"envprint: could not verify: {exc}")
        if report.passed:
            return report
        if update:
            try:
                _record(model, sidecar, save_options or {})
            except EnvprintError as exc:
                _fail(f"envprint: could not re-record {sidecar}: {exc}")
            _fail(
                f"envprint: {report.model} did not match {sidecar}; re-recorded it ({UPDATE_OPTION}).\n\n"
                + report.to_text()
            )
        _fail(
            report.to_text()
            + f"\nIf this change is intended, re-record with: pytest {UPDATE_OPTION} (then commit {sidecar})"
        )

    return check
