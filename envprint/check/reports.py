"""Files a verify writes besides its report on stdout: JUnit XML (of a report, or of the error that
stopped verify) and the HTML page.

Owns the host facts a JUnit file carries (captured here, TensorFlow never imported for them) and
the one-line error for a path that cannot be written. Wording and layout live in ``render/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envprint.errors import EnvprintError, UsageError


def write_junit(path: str | Path, model: str | Path, result: Any) -> None:
    """``result`` (a Report, or the EnvprintError that stopped verify) as JUnit XML at ``path``, with this host's facts.

    An error is a test case in error, so that a CI panel shows "could not verify" rather than nothing.
    """
    from envprint.check.capture import capture
    from envprint.render.junit import error_suite, write_junit_xml

    host = capture(tensorflow=False)  # TensorFlow's facts when verify imported it; never imported for this
    suite = error_suite(str(model), str(result), host) if isinstance(result, EnvprintError) else result
    try:
        write_junit_xml(Path(path), [suite], host)
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot write the JUnit XML ({exc.strerror or exc}); pass a writable --junit-xml PATH"
        ) from None


def write_html(report: Any, path: str | Path) -> None:
    """The report as one self-contained HTML page with plots (the ``envprint[html]`` extra)."""
    from envprint.render.html import write_html as draw

    draw(report, Path(path))
