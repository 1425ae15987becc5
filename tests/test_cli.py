"""The command line: output streams, exit codes, and TensorFlow kept out of what does not need it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from envhelpers import invoke, run_python

import envprint
from envprint.errors import ExitCode
from envprint.models.base import FINGERPRINT_SCHEMA_MINOR
from envprint.record.store import canonical_json

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GPU = FIXTURES / "handmade_gpu_host_a100.json"


@pytest.fixture(scope="module")
def cpu_json(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fp") / "cpu.json"
    path.write_text(canonical_json(envprint.capture()))
    return path


def test_help_documents_every_exit_code():
    r = invoke("--help")
    assert r.exit_code == 0, r.output
    lines = [line.split() for line in r.output.splitlines()]
    for code in ExitCode:
        assert any(words[:1] == [str(int(code))] for words in lines), code


@pytest.mark.parametrize(
    ("command", "usage"),
    [("verify", "verify [OPTIONS] MODEL"), ("save", "save [OPTIONS] MODEL"), ("diff", "diff [OPTIONS] A [B]"),
     ("env-export", "env-export [OPTIONS] FINGERPRINT"), ("report", "report [OPTIONS] REPORT")],
)  # fmt: skip
def test_each_commands_help_shows_plain_arguments_and_the_exit_codes(command, usage):
    r = invoke(command, "--help")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0].endswith(f" {usage}"), r.output
    assert "{" not in r.output.splitlines()[0]
    assert "\n  Exit codes:\n    0   passed / no differences\n" in r.output
    assert "    70  internal error in envprint" in r.output


def test_debug_is_accepted_after_the_command_too(tmp_path):
    missing = tmp_path / "nope.json"
    before = invoke("--debug", "diff", str(missing), str(missing))
    after = invoke("diff", str(missing), str(missing), "--debug")
    assert before.exit_code == after.exit_code == ExitCode.FINGERPRINT
    assert after.stderr.startswith("Traceback (most recent call last):"), after.output
    assert after.stderr == before.stderr


def test_investigate_timeout_must_be_positive_and_preflight_refuses_investigate(tmp_path):
    model = str(tmp_path / "model.keras")
    r = invoke("verify", model, "--investigate", "--investigate-timeout", "0")
    assert r.exit_code == ExitCode.USAGE
    assert "Invalid value for '--investigate-timeout': 0 is not a number of seconds > 0" in r.stderr
    r = invoke("verify", model, "--preflight", "--investigate")
    assert r.exit_code == ExitCode.USAGE
    assert r.stderr == (
        "envprint: error: --investigate re-runs a verify's probes; --preflight runs none: drop one of them\n"
    )


def test_diff_of_identical_files_exits_0(cpu_json):
    r = invoke("diff", str(cpu_json), str(cpu_json))
    assert r.exit_code == 0, r.output
    assert "No differences." in r.output


def test_diff_of_different_files_exits_1_and_folds_the_package_list(cpu_json):
    r = invoke("diff", str(GPU), str(cpu_json))
    assert r.exit_code == 1, r.output
    assert "can change numerics" in r.output
    assert "other packages changed" in r.output and "--all to list" in r.output
    r_all = invoke("diff", str(GPU), str(cpu_json), "--all")
    assert "--all to list" not in r_all.output
    assert "installed.typer" in r_all.output


def test_diff_json_is_the_full_machine_record(cpu_json):
    r = invoke("diff", str(GPU), str(cpu_json), "--json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data["identical"] is False
    assert data["a"] == str(GPU)
    assert any(e["path"] == "tensorflow.build.is_cuda_build" for e in data["entries"])


def test_diff_against_the_current_host(cpu_json):
    r = invoke("diff", str(cpu_json), "--current", "--json")
    # cpu_json is this very process, captured a moment ago: nothing differs
    data = json.loads(r.stdout)
    assert (r.exit_code, data["identical"], data["entries"], data["b"]) == (0, True, [], "current host"), r.output


def test_diff_needs_exactly_one_of_b_and_current(cpu_json):
    r = invoke("diff", str(cpu_json))
    assert r.exit_code == ExitCode.USAGE
    assert r.stderr == "envprint: error: give either a second fingerprint B or --current, not both and not neither\n"


def test_missing_fingerprint_is_exit_3_with_one_line(tmp_path, cpu_json):
    r = invoke("diff", str(tmp_path / "nope.json"), str(cpu_json))
    assert r.exit_code == ExitCode.FINGERPRINT
    assert r.stderr == f"envprint: error: {tmp_path / 'nope.json'}: no such file; give the path of a fingerprint.json\n"


def test_not_json_is_exit_3_with_the_position(tmp_path, cpu_json):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1,,}')
    r = invoke("diff", str(bad), str(cpu_json))
    assert r.exit_code == ExitCode.FINGERPRINT
    assert r.stderr.startswith(f"envprint: error: {bad}: not valid JSON (line 1, column 22:")


def test_schema_violation_names_the_field(tmp_path, cpu_json):
    data = json.loads(cpu_json.read_text())
    data["cpu"]["logical_cores"] = "many"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    r = invoke("diff", str(bad), str(cpu_json))
    assert r.exit_code == ExitCode.FINGERPRINT
    assert r.stderr.startswith(f"envprint: error: {bad}: invalid fingerprint: field 'cpu.logical_cores': ")


def test_newer_schema_says_upgrade(tmp_path, cpu_json):
    data = json.loads(cpu_json.read_text())
    data["schema_version"] = 99
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(data))
    r = invoke("diff", str(newer), str(cpu_json))
    minor = FINGERPRINT_SCHEMA_MINOR  # the record's own: capture writes this envprint's minor
    assert r.exit_code == ExitCode.FINGERPRINT
    assert r.stderr == (
        f"envprint: error: {newer}: a fingerprint written by a newer envprint (schema 99.{minor}, this one reads 1.{minor}); "
        "read it with a newer envprint: pip install -U envprint\n"
    )


def test_internal_error_is_exit_70_never_a_mismatch(monkeypatch):
    # A bug below the CLI (here: capture raising KeyError) reaches the CLI's error boundary.
    from envprint.check import capture

    def broken(**_: object):
        raise KeyError("boom")

    monkeypatch.setattr(capture, "capture", broken)
    r = invoke("show")
    assert r.exit_code == ExitCode.INTERNAL
    assert r.stderr == (
        "envprint: internal error: KeyError: 'boom' (rerun with --debug for the traceback and report it)\n"
    )
    r = invoke("show", "--json")
    assert r.exit_code == ExitCode.INTERNAL
    assert r.json["error"]["exit_code"] == ExitCode.INTERNAL


def test_show_json_is_canonical_and_matches_the_schema():
    import jsonschema

    r = invoke("show", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert r.stdout == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    schema = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "fingerprint.v1.schema.json").read_text())
    jsonschema.validate(data, schema)


def test_show_prints_grouped_tables_for_people():
    r = invoke("show")
    assert r.exit_code == 0, r.stderr
    lines = [line.strip() for line in r.output.splitlines()]
    for title in ("Python", "CPU", "Packages", "TensorFlow", "Devices", "Threads", "Seeds", "Environment variables"):
        assert title in lines
    assert "distributions; --all to list" in r.output


def test_schemas_in_the_repository_match_the_models(tmp_path):
    repo_schemas = Path(__file__).resolve().parent.parent / "schemas"
    r = invoke("schema", "--check", "--out", str(repo_schemas))
    assert r.exit_code == 0, r.stderr + " -- run: envprint schema --out schemas"
    stale = tmp_path / "schemas"
    shutil.copytree(repo_schemas, stale)
    (stale / "fingerprint.v1.schema.json").write_text("{}\n")
    r = invoke("schema", "--check", "--out", str(stale))
    assert r.exit_code == 1
    assert "schemas out of date" in r.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("argv", [["--help"], ["diff", "A", "B"], ["diff", "GPU", "A"], ["diff", "--help"]])
def test_commands_that_must_start_fast_import_neither_tensorflow_nor_rich(argv, cpu_json):
    # ["diff", "GPU", "A"] differs: its tables and expectations are rendered, with no rich.
    argv = [{"A": str(cpu_json), "B": str(cpu_json), "GPU": str(GPU)}.get(a, a) for a in argv]
    code = (
        "import sys\n"
        "from envprint.cli.app import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'numpy', 'rich') if m in sys.modules)\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    done = run_python(code)
    assert done.stderr.endswith("HEAVY="), done.stderr
    if argv[:1] == ["diff"] and "--help" not in argv:
        assert "A: " in done.stdout, done.stdout


@pytest.mark.subprocess
def test_python_dash_m_envprint_works():
    done = run_python(
        "import runpy, sys; sys.argv = ['envprint', '--version']; runpy.run_module('envprint', run_name='__main__')"
    )
    assert done.stdout == f"envprint {envprint.__version__}\n", done.stderr


def test_diff_predicts_what_to_expect_from_the_fingerprints_alone(cpu_json):
    r = invoke("diff", str(GPU), str(cpu_json), "--json")
    causes = [x["cause"] for x in json.loads(r.stdout)["expectations"]]
    assert "device" in causes and "cuda_stack" in causes
    text = invoke("diff", str(GPU), str(cpu_json)).output
    assert "What to expect on B, most likely first:" in text


def test_tables_align_columns_two_spaces_apart_and_never_wrap_or_cut():
    from envprint.render.text import Table

    table = Table("CPU", "", "field", "A", "B")
    flags = " ".join(f"avx512_{i}" for i in range(30))
    table.add_row("~", "flags", "avx", flags)
    table.add_row("-", "model", "AMD EPYC 7742 64-Core Processor", "(absent)")
    assert table.lines() == [
        "CPU",
        "   field  A                                B",
        f"~  flags  avx                              {flags}",
        "-  model  AMD EPYC 7742 64-Core Processor  (absent)",
    ]


def test_a_table_without_header_lists_rows_and_a_multiline_cell_spans_lines():
    from envprint.render.text import Table

    table = Table("Environment variables")
    table.add_row("variables.XLA_FLAGS", "--a\n--b")
    table.add_row("redacted", "(none)")
    assert table.lines() == [
        "Environment variables",
        "variables.XLA_FLAGS  --a",
        "                     --b",
        "redacted             (none)",
    ]


def test_diff_text_goes_to_the_stream_it_was_given(cpu_json):
    import io

    from envprint.causes.diff import diff_fingerprints
    from envprint.record.store import read_fingerprint
    from envprint.render.fingerprint import render_diff
    from envprint.render.text import Writer

    a, b = read_fingerprint(GPU), read_fingerprint(cpu_json)
    stream = io.StringIO()
    render_diff(diff_fingerprints(a, b, "saved", "here"), Writer(stream))
    text = stream.getvalue()
    assert text.startswith("A: saved\nB: here\n"), text
    assert "~ changed   - only in A   + only in B\n" in text
    assert all(line == line.rstrip() for line in text.splitlines())
