"""What a stranger trips over at the command line: options that do nothing where they are given,
help that does not say what a value may be, one failure told twice. Each is a usage error in one
line (JSON under --json), found before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from envhelpers import invoke

import envprint
from envprint.check.endpoint.registry import ids as protocol_ids
from envprint.cli.options import PROTOCOL_IDS
from envprint.errors import ExitCode
from envprint.record.store import canonical_json
from envprint.render.outputs import OUTPUTS


@pytest.fixture(scope="module")
def cpu_json(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fp") / "cpu.json"
    path.write_text(canonical_json(envprint.capture(tensorflow=False)))
    return path


def _help_of(command: str, option: str) -> str:
    """The help of one option of ``envprint COMMAND --help``, its lines joined (Click may wrap after a hyphen)."""
    r = invoke(command, "--help")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(option))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if line.strip().startswith("-") or not line.strip():
            break
        block.append(line)
    return " ".join(" ".join(block).split()).replace("- ", "-")


def test_protocol_help_names_every_protocol_not_a_type():
    text = _help_of("verify", "--protocol")
    assert text.startswith("--protocol PROTOCOL "), text
    assert "<str>" not in text
    for protocol in protocol_ids():
        assert protocol in text.replace(",", " ").replace(".", " ").split(), (protocol, text)
    assert PROTOCOL_IDS == tuple(protocol_ids())  # the command line's list for --help is the registry's


def test_an_unknown_protocol_is_a_usage_error_before_the_record_is_read(tmp_path):
    model = tmp_path / "absent.keras"  # not read: the value is refused first
    r = invoke("verify", model, "--endpoint", "http://localhost:1/v1/models/m", "--protocol", "kserve-v3")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "Invalid value for '--protocol': 'kserve-v3' is not one of tfserving-rest, " in r.stderr, r.stderr
    r = invoke("verify", model, "--endpoint", "http://localhost:1/v1/models/m", "--protocol", "kserve-v3", "--json")
    assert r.exit_code == ExitCode.USAGE
    assert r.json["error"]["kind"] == "usage"
    assert "'kserve-v3' is not one of" in r.json["error"]["message"]


@pytest.mark.parametrize(
    "option",
    [["--protocol", "kserve-v1"], ["--model-name", "m"], ["--batch-size", "2"], ["--wait", "5"],
     ["--timeout", "30"], ["--cacert", "ca.pem"], ["--header-env", "Authorization=TOKEN"]],
)  # fmt: skip
def test_an_endpoint_option_without_endpoint_is_refused_not_ignored(tmp_path, option):
    model = tmp_path / "absent.keras"  # refused before the model is looked for
    r = invoke("verify", model, *option)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.stderr == (
        f"envprint: error: {option[0]} applies to a served model only; add --endpoint URL, or drop {option[0]}\n"
    )
    r = invoke("verify", model, *option, "--json")
    assert r.exit_code == ExitCode.USAGE
    assert r.json["error"]["message"].startswith(f"{option[0]} applies to a served model only")


# Each command, and the kind of result its --output draws (render.outputs.OUTPUTS[...].kinds).
RESULT_KINDS = {"verify": "report", "report": "report", "show": "fingerprint", "save": "save", "diff": "diff",
                "sweep": "sweep", "fleet": "fleet", "aggregate": "aggregate"}  # fmt: skip


@pytest.mark.parametrize(("command", "kind"), RESULT_KINDS.items())
def test_output_help_names_the_formats_that_command_draws_and_where_one_without_path_goes(command, kind):
    text = _help_of(command, "-o, --output")
    drawn = [name for name, output in OUTPUTS.items() if kind in output.kinds]
    assert f"Also write the result as FORMAT ({', '.join(drawn)}) to PATH" in text, text
    for name in drawn:
        if OUTPUTS[name].default != "-":
            assert f"{name} to {OUTPUTS[name].default}" in text, (name, text)
    assert "FORMAT alone goes to stdout" in text


def test_an_output_that_fails_late_is_told_once(cpu_json, tmp_path, monkeypatch):
    # The path passed the check before any work; writing it failed afterwards (the disk filled, the
    # directory went away). The error is the command's: one line, not repeated as a warning when the
    # error document is then written to the outputs.
    from envprint.record import atomic

    def full(path, text, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "write_output", full)
    out = tmp_path / "diff.json"
    r = invoke("diff", cpu_json, cpu_json, "--output", f"json={out}")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.stderr == (
        f"envprint: error: {out}: cannot write the json output (No space left on device); give a writable path\n"
    )
    r = invoke("diff", cpu_json, cpu_json, "--output", f"json={out}", "--json")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.json["error"]["message"].startswith(f"{out}: cannot write the json output (No space left on device)")


def test_report_takes_json_as_every_command_does_and_its_errors_print_json(mlp_recorded, tmp_path):
    saved = tmp_path / "report.json"
    r = invoke("verify", mlp_recorded, "--json")
    assert r.exit_code == 0, r.output
    saved.write_text(r.stdout)
    r = invoke("report", saved, "--json")
    assert r.exit_code == 0, r.output
    assert r.stdout == saved.read_text()  # the document again, as verify --json printed it
    missing = tmp_path / "nope.json"
    for asked in (["--json"], ["--output", "json"], ["--output", "json=-"]):
        r = invoke("report", missing, *asked)
        assert r.exit_code == ExitCode.FINGERPRINT, (asked, r.output)
        assert r.json["error"]["kind"] == "fingerprint", asked
        assert r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize(
    ("argv", "code"),
    [(["verify", "--nope"], ExitCode.USAGE), (["verify", "--nope", "--json"], ExitCode.USAGE),
     (["diff", "missing.json", "missing.json"], ExitCode.FINGERPRINT),
     (["diff", "missing.json", "missing.json", "--json"], ExitCode.FINGERPRINT),
     (["--debug", "diff", "missing.json", "missing.json", "--json"], ExitCode.FINGERPRINT)],
)  # fmt: skip
def test_a_closed_stderr_does_not_change_the_exit_code(tmp_path, argv, code):
    # `envprint ... 2>&1 | head -1`, a supervisor that closed its end: the error cannot be told, but its
    # code stands (it was 120, Python's failed flush at exit, or 1, a "mismatch").
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "envprint", *argv], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    proc.stderr.close()  # the reader is gone before the error is told
    stdout = proc.stdout.read()
    assert proc.wait(timeout=60) == code, stdout
    if "--json" in argv:
        assert b'"exit_code": ' + str(int(code)).encode() in stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["save", "--probes", "p.npy", "--num-probes", "3"], "--num-probes applies to generated probes; --probes gives them: drop one of the two"),
     (["save", "--probes", "p.npy", "--probe-seed", "3"], "--probe-seed applies to generated probes; --probes gives them: drop one of the two"),
     (["save", "--probes", "p.npy", "--input-shape", "4"], "--input-shape applies to generated probes; --probes gives them: drop one of the two"),
     (["save", "--margin", "3"], "--margin is the factor on a measured drift: add --tolerance-from REPORT.json or "
                                 "--tolerance-from-variants, or drop --margin"),
     (["verify", "--investigate-timeout", "5"], "--investigate-timeout applies to --investigate: add --investigate, "
                                                "or drop --investigate-timeout")],
)  # fmt: skip
def test_an_option_whose_companion_is_missing_is_refused_not_ignored(tmp_path, argv, message):
    model = tmp_path / "absent.keras"  # refused before the model is looked for
    r = invoke(argv[0], model, *argv[1:])
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.stderr == f"envprint: error: {message}\n"
    r = invoke(argv[0], model, *argv[1:], "--json")
    assert r.exit_code == ExitCode.USAGE
    assert r.json["error"]["message"] == message
