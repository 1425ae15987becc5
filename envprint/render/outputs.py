"""Every output envprint writes, behind one table.

``OUTPUTS`` names each output format once: the module that renders it, where it goes by default,
whether it may go to stdout and which results it can draw. The CLI never writes a result itself:
each command builds a ``Selection`` from its ``--output FORMAT[=PATH]`` specs (and the older
``--json``, ``--html PATH``, ``--junit-xml PATH``, routed into the same table), calls ``check`` before
any work (an unwritable path is refused up front, exit 2, not after a minute of verifying), then
``write`` with the result, or ``write_error`` with the error that stopped it.

A new output is one module in ``render/`` with a ``render(result, context) -> str`` function and
one entry below.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envprint.errors import KINDS as EXIT_KINDS
from envprint.errors import UsageError

if TYPE_CHECKING:
    from envprint.models import Fingerprint

STDOUT = "-"

# The kinds of result a command produces; an output says which of them it can draw.
KINDS = ("report", "preflight", "diff", "error", "save", "fingerprint", "sweep", "fleet", "aggregate")


@dataclass(frozen=True)
class Output:
    name: str
    module: str = field(repr=False)  # envprint.render.<module>.render(result, context) -> str
    default: str  # where it goes when the spec names no path: "-" is stdout
    stdout: bool  # whether it may go to stdout
    kinds: frozenset[str]
    suffix: str = ""  # what a path for it usually ends with (named in the refusal of a directory)
    appends_to: str | None = None  # a variable naming a file that is appended to, never replaced

    def render(self, result: Any, context: Context) -> str:
        return import_module(f"envprint.render.{self.module}").render(result, context)


OUTPUTS: dict[str, Output] = {
    o.name: o
    for o in (
        Output("text", "people", STDOUT, True, frozenset(KINDS), ".txt"),
        Output("json", "outputs", STDOUT, True, frozenset(KINDS), ".json"),
        Output("html", "html", "envprint-report.html", False, frozenset({"report", "error"}), ".html"),
        Output("junit", "junit", "envprint-junit.xml", True, frozenset({"report", "error", "sweep"}), ".xml"),
        Output(
            "markdown",
            "markdown",
            STDOUT,
            True,
            frozenset({"report", "preflight", "diff", "error", "sweep", "fleet", "aggregate"}),
            ".md",
            # GitHub's job summary is one file per step that every tool appends to: replacing it
            # would erase what the step wrote before.
            appends_to="GITHUB_STEP_SUMMARY",
        ),
    )
}


# --------------------------------------------------------------------------- JSON: the one writer


def canonical_json(document: Any) -> str:
    """A document as envprint prints it: sorted keys, two-space indent, UTF-8 text, one final newline."""
    data = document.model_dump(mode="json") if hasattr(document, "model_dump") else document
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def json_line(document: Any) -> str:
    """One JSON Lines record (sweep --json streams one per model): sorted keys, no newline inside."""
    data = document.model_dump(mode="json") if hasattr(document, "model_dump") else document
    return json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n"


def render(result: Any, context: Context) -> str:  # the "json" entry of OUTPUTS
    return canonical_json(result)


# --------------------------------------------------------------------------- choosing outputs


@dataclass(frozen=True)
class Target:
    output: Output
    path: Path | None  # None: stdout

    @property
    def where(self) -> str:
        return "stdout" if self.path is None else str(self.path)


@dataclass
class Context:
    """What renderers need besides the result: the model a command was given, text options."""

    model: str | None = None
    kind: str | None = None
    show_all: bool = False
    model_name: str | None = None  # the model's file name, for the file names a diff lists
    items: list = field(default_factory=list)  # sweep: (SweepItem, Report | None) per model, as they finish
    # The host's fingerprint for JUnit's <properties>, read only if a JUnit output is written (the
    # command layer passes envprint.capture: render never captures a host itself).
    host: Callable[[], Fingerprint] | None = None


def parse_spec(spec: str) -> Target:
    """``FORMAT[=PATH]`` -> Target; ``PATH`` '-' (or none, for a format that defaults to it) is stdout."""
    name, sep, where = spec.partition("=")
    name = name.strip().lower()
    output = OUTPUTS.get(name)
    if output is None:
        raise UsageError(f"--output {spec}: unknown format {name!r}; choose one of {', '.join(OUTPUTS)}")
    if sep and not where:
        stdout = f", or {name}=- for stdout" if output.stdout else ""
        raise UsageError(f"--output {spec}: no path after '='; write {name}=PATH{stdout}")
    where = where if sep else output.default
    if where == STDOUT and not output.stdout:
        raise UsageError(f"--output {spec}: {name} cannot go to stdout; write {name}=PATH")
    return Target(output, None if where == STDOUT else Path(os.path.expandvars(os.path.expanduser(where))))


def _check_path(target: Target) -> None:
    """Refuse, before any work, a destination that could not be written: the verdict would be lost."""
    path = target.path
    assert path is not None
    what = f"{path}: cannot write the {target.output.name} output"
    from envprint.record.atomic import destination, is_stream

    real = destination(path)
    if is_stream(real):  # a device or a pipe: written into when the result is ready, never opened before
        if not os.access(real, os.W_OK):
            raise UsageError(f"{what} (not writable); give a writable path")
        return
    if path.is_dir():
        example = path / ("envprint" + target.output.suffix)
        raise UsageError(f"{what} (a directory); give a file path, e.g. {example}")
    parent = real.parent
    if not parent.is_dir():
        raise UsageError(f"{what} (directory {parent} does not exist); create it or give another path")
    # Try it, as the write will: a file beside it (written files are published atomically), and the
    # file itself opened for appending when it exists (nothing written). os.access alone says yes to
    # root for a read-only file system or /proc.
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{real.name}.", suffix=".tmp"):
            pass
        if real.exists():
            with open(real, "ab"):
                pass
    except OSError as exc:
        raise UsageError(f"{what} ({exc.strerror or exc}); give a writable path") from None


class Selection:
    """The outputs one command writes, from its specs. Made before any work; never raises until ``check``."""

    def __init__(
        self,
        specs: list[str] | None = None,
        *,
        json: bool = False,
        html: Path | None = None,
        junit_xml: Path | None = None,
        model: Any = None,
        emit: Callable[[str], Any] | None = None,
        json_lines: bool = False,
        text_unless_files: bool = False,
    ) -> None:
        aliases = (["json"] if json else []) + ([f"html={html}"] if html is not None else [])
        aliases += [f"junit={junit_xml}"] if junit_xml is not None else []
        self.specs = aliases + list(specs or [])
        self.context = Context(model=None if model is None else str(model))
        # The CLI passes its own: a reader that closes the pipe ends the output, not the command.
        self._emit = emit or (lambda text: sys.stdout.write(text))
        self.targets: list[Target] = []
        self._failed: list[Target] = []  # files that could not be written: the error being reported
        self._checked = False
        self._stdout_taken = json_lines  # sweep --json streams JSON Lines there itself
        self._text_unless_files = text_unless_files  # envprint report: a page asked for is the whole result
        # Until check() parsed the specs, an error document goes where --json said (the old flag).
        self._json_stdout = json or any(s.strip().lower() in ("json", "json=-") for s in self.specs)

    def check(self, kind: str, **context: Any) -> Selection:
        """Parse and check every spec for a result of ``kind``; raise UsageError (exit 2) before any work."""
        self.context.kind = kind
        for key, value in context.items():
            setattr(self.context, key, value)
        targets = [parse_spec(spec) for spec in self.specs]
        seen: dict[str, str] = {}
        for t in targets:
            if kind not in t.output.kinds:
                draws = _or([_KIND_WORDS[k] for k in KINDS if k in t.output.kinds])
                can = _or([o.name for o in OUTPUTS.values() if kind in o.kinds])
                raise UsageError(
                    f"the {t.output.name} output cannot draw {_KIND_WORDS[kind]} (it draws {draws}); choose {can}"
                )
            if t.where in seen:
                raise UsageError(
                    f"--output {t.output.name} and {seen[t.where]} both write to {t.where}; give one a path"
                )
            seen[t.where] = t.output.name
            if t.path is not None:
                _check_path(t)
        if any(t.output.name == "html" for t in targets):
            from envprint.render.html import require_matplotlib

            require_matplotlib()  # before the model loads: a missing extra fails fast
        if json_lines := self._stdout_taken:
            if any(t.path is None for t in targets):
                raise UsageError("--json streams JSON Lines on stdout; give the other --output a path")
        # People read text on stdout when nothing else goes there (for `report`: when nothing was asked).
        wants_text = not targets if self._text_unless_files else not any(t.path is None for t in targets)
        if wants_text and not json_lines:
            targets.insert(0, Target(OUTPUTS["text"], None))
        self.targets = targets
        self._checked = True
        return self

    def text_on_stdout(self) -> bool:
        """Whether the text output goes to stdout (where a command may stream its own text lines)."""
        return any(t.output.name == "text" and t.path is None for t in self.targets)

    def write(self, result: Any) -> None:
        """Render ``result`` to every selected output: files first (atomically), stdout last."""
        for t in sorted(self.targets, key=lambda t: t.path is None):
            text = t.output.render(result, self.context)
            if t.path is None:
                self._emit(text)
                continue
            try:
                _write_file(t, text)
            except UsageError:
                self._failed.append(t)  # the error names it; its error document is not tried there again
                raise

    def write_error(self, code: int, message: str) -> None:
        """The error that stopped the command, to every output that can draw one (never an empty file).

        Text is not repeated (the line is on stderr already); a file that cannot be written now only
        warns, so the error being reported stays the one the command exits with.
        """
        from envprint.models import ErrorDocument, ErrorInfo

        kind = EXIT_KINDS.get(code, "interrupted" if code == 130 else "internal")
        document = ErrorDocument(error=ErrorInfo(exit_code=code, kind=kind, message=message))
        targets = self.targets if self._checked else ([Target(OUTPUTS["json"], None)] if self._json_stdout else [])
        if self._stdout_taken:  # sweep --json: the error document, as when the sweep could not start
            targets = [t for t in targets if t.path is not None]
            self._emit(canonical_json(document))
        self.context.kind = "error"
        for t in targets:
            if t.output.name == "text" or "error" not in t.output.kinds or t in self._failed:
                continue
            try:
                text = t.output.render(document, self.context)
                if t.path is None:
                    self._emit(text)
                else:
                    _write_file(t, text)
            except (UsageError, OSError) as exc:
                sys.stderr.write(f"envprint: WARNING: {exc}\n")


def _write_file(target: Target, text: str) -> None:
    from envprint.record.atomic import write_output

    assert target.path is not None
    shared = target.output.appends_to and os.environ.get(target.output.appends_to)
    try:
        if shared and Path(shared) == target.path:
            with target.path.open("a", encoding="utf-8") as fh:
                fh.write(text if not fh.tell() else "\n" + text)
        else:
            write_output(target.path, text)
    except OSError as exc:
        raise UsageError(
            f"{target.path}: cannot write the {target.output.name} output ({exc.strerror or exc}); give a writable path"
        ) from None
    sys.stderr.write(f"envprint: wrote {target.path}\n")


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


_KIND_WORDS = {
    "report": "a verify report",
    "preflight": "a preflight result",
    "diff": "a fingerprint diff",
    "error": "an error",
    "save": "a save summary",
    "fingerprint": "a fingerprint",
    "sweep": "a sweep summary",
    "fleet": "a fleet report",
    "aggregate": "an aggregate report",
}
