"""The outputs table (render/outputs.py): --output specs, paths checked before any work, every
output written for a result or for the error that stopped the command, and ``passed`` in every
document a command prints for CI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from envprint.cli.app import app
from envprint.errors import ExitCode, UsageError
from envprint.render.outputs import OUTPUTS, Selection, parse_spec

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def recorded(mlp_recorded, tmp_path_factory) -> Path:
    """A copy of the recorded MLP (this module saves beside it)."""
    folder = tmp_path_factory.mktemp("outputs")
    model = folder / "model.keras"
    shutil.copy(mlp_recorded, model)
    shutil.copytree(f"{mlp_recorded}.envprint", f"{model}.envprint")
    return model


# --------------------------------------------------------------------------- the table and its specs


def test_every_output_names_its_module_and_draws_the_error_document_or_says_it_cannot():
    assert list(OUTPUTS) == ["text", "json", "html", "junit", "markdown"]
    for name, output in OUTPUTS.items():
        assert output.kinds, name
        assert output.stdout or output.default != "-", name
    assert {n for n, o in OUTPUTS.items() if "error" in o.kinds} == set(OUTPUTS)


def test_a_spec_is_format_or_format_equals_path_and_dash_is_stdout(tmp_path, monkeypatch):
    assert parse_spec("json").path is None
    assert parse_spec("markdown=-").path is None
    assert parse_spec("junit").path == Path("envprint-junit.xml")
    monkeypatch.setenv("SUMMARY", str(tmp_path / "s.md"))
    assert parse_spec("markdown=$SUMMARY").path == tmp_path / "s.md"
    with pytest.raises(UsageError, match=r"^--output yaml: unknown format 'yaml'; choose one of text, json, html"):
        parse_spec("yaml")
    with pytest.raises(UsageError, match=r"^--output html=-: html cannot go to stdout; write html=PATH$"):
        parse_spec("html=-")
    with pytest.raises(UsageError, match=r"^--output json=: no path after '='; write json=PATH, or json=- for stdout$"):
        parse_spec("json=")
    # Not offered stdout where it would then be refused.
    with pytest.raises(UsageError, match=r"^--output html=: no path after '='; write html=PATH$"):
        parse_spec("html=")


def test_two_outputs_on_stdout_are_refused(tmp_path):
    with pytest.raises(UsageError) as exc:
        Selection(["markdown"], json=True).check("report")
    assert str(exc.value) == "--output markdown and json both write to stdout; give one a path"


def test_a_directory_is_not_an_output_path(tmp_path):
    with pytest.raises(UsageError) as exc:
        Selection([f"markdown={tmp_path}"]).check("report")
    assert str(exc.value) == (
        f"{tmp_path}: cannot write the markdown output (a directory); give a file path, e.g. {tmp_path / 'envprint.md'}"
    )


# --------------------------------------------------------------------------- verify's outputs


def test_verify_writes_every_output_asked_for_and_text_when_none_takes_stdout(recorded, tmp_path):
    md, junit = tmp_path / "summary.md", tmp_path / "j.xml"
    r = invoke("verify", recorded, "--output", f"markdown={md}", "-o", f"junit={junit}")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("envprint verify: PASSED (bit-identical)\n")
    assert md.read_text().startswith("### ✅ envprint verify: PASSED (bit-identical)\n")
    assert "<testsuites" in junit.read_text()
    assert r.stderr.splitlines()[-2:] == [f"envprint: wrote {md}", f"envprint: wrote {junit}"]


def test_output_json_on_stdout_is_the_json_flag(recorded):
    a, b = invoke("verify", recorded, "--json"), invoke("verify", recorded, "--output", "json")
    assert a.exit_code == b.exit_code == 0
    assert json.loads(a.stdout)["verdict"] == json.loads(b.stdout)["verdict"] == "identical"
    assert a.stdout.startswith("{\n  ") and b.stdout.startswith("{\n  ")


def test_a_verify_that_could_not_run_writes_its_error_page_and_markdown(tmp_path):
    page, md = tmp_path / "p.html", tmp_path / "s.md"
    missing = tmp_path / "missing.keras"
    r = invoke("verify", missing, "--html", page, "--output", f"markdown={md}", "--json")
    assert r.exit_code == ExitCode.MODEL
    document = json.loads(r.stdout)
    assert document["passed"] is False and document["verdict"] == "error"
    html = page.read_text()
    assert "could not verify" in html and str(missing) in html
    assert document["error"]["message"] in html.replace("&#x27;", "'")
    assert md.read_text().startswith(
        f"### ⚠️ envprint: could not verify `{missing}`\n\n**{document['error']['message']}**"
    )


def test_report_command_draws_verify_s_own_error_document(tmp_path):
    error = tmp_path / "error.json"
    r = invoke("verify", tmp_path / "missing.keras", "--json")
    error.write_text(r.stdout)
    page = tmp_path / "e.html"
    r2 = invoke("report", error, "--html", page)
    assert r2.exit_code == 0, r2.output
    assert r2.stdout == "" and r2.stderr == f"envprint: wrote {page}\n"
    assert "could not verify" in page.read_text()
    r3 = invoke("report", error, "--output", "markdown")
    assert r3.exit_code == 0 and r3.stdout.startswith("### ⚠️ envprint: could not verify")


# --------------------------------------------------------------------------- passed, everywhere


def test_passed_is_in_the_success_documents_of_preflight_diff_and_save(recorded, tmp_path):
    pre = invoke("verify", recorded, "--preflight", "--json")
    assert pre.exit_code == 0, pre.output
    assert json.loads(pre.stdout)["passed"] is True

    fp = f"{recorded}.envprint/fingerprint.json"
    same = invoke("diff", fp, fp, "--json")
    assert same.exit_code == 0 and json.loads(same.stdout)["passed"] is True
    other = tmp_path / "other.json"
    data = json.loads(Path(fp).read_text())
    data["threads"]["cpu_count"] = (data["threads"].get("cpu_count") or 0) + 3
    other.write_text(json.dumps(data))
    differ = invoke("diff", fp, other, "--json")
    assert differ.exit_code == 1 and json.loads(differ.stdout)["passed"] is False

    model = tmp_path / "m.keras"
    shutil.copy(recorded, model)
    saved = invoke("save", model, "--json")
    assert saved.exit_code == 0, saved.output
    assert json.loads(saved.stdout)["passed"] is True


def test_passed_is_in_the_aggregate_and_sweep_summaries(recorded, tmp_path):
    report = tmp_path / "host1.json"
    report.write_text(invoke("verify", recorded, "--json").stdout)
    agg = invoke("aggregate", report, "--json")
    assert agg.exit_code == 0, agg.output
    document = json.loads(agg.stdout)
    assert document["passed"] is True and all(m["passed"] is True for m in document["models"])

    sweep = invoke("sweep", recorded, "--json", "--jobs", "1")
    assert sweep.exit_code == 0, sweep.output
    summary = json.loads(sweep.stdout.splitlines()[-1])
    assert summary["kind"] == "sweep_summary" and summary["passed"] is True


def test_documents_written_before_passed_existed_still_read():
    from envprint.models import AggregateReport, FingerprintDiff, SweepSummary

    old = {"engine": "local", "jobs": 1, "total": 1, "done": 1, "by_verdict": {}, "by_cause": {}, "models": []}
    assert SweepSummary.model_validate({**old, "exit_code": 1}).passed is False
    assert AggregateReport.model_validate({"sources": 0, "models": [], "exit_code": 0}).passed is True
    assert FingerprintDiff.model_validate({"a": "a", "b": "b", "identical": False, "entries": []}).passed is False


# --------------------------------------------------------------------------- data below words


def test_models_import_nothing_from_envprint_but_errors_and_reports_still_print_themselves():
    import subprocess
    import sys

    code = (
        "import sys, envprint.models\n"
        "print(sorted(m for m in sys.modules if m.startswith('envprint')))\n"
        "import envprint\n"
        "r = envprint.Report.model_validate_json(sys.stdin.read())\n"
        "print(str(r) == r.to_text() and r.to_text().startswith('envprint verify: MISMATCH: output \"y\"'))\n"
        "try:\n    r.raise_for_status()\nexcept envprint.MismatchError as e:\n    print(e.report is r, str(e))\n"
    )
    from golden_reports import mismatch_report

    r = subprocess.run(
        [sys.executable, "-c", code], input=mismatch_report().model_dump_json(), capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    loaded = eval(lines[0])  # noqa: S307 - the list this test's own child printed
    assert [m for m in loaded if not m.startswith("envprint.models")] == [
        "envprint",
        "envprint._version",
        "envprint.errors",
    ]
    assert "envprint.models" in loaded
    assert lines[1] == "True"
    assert lines[2].startswith('True m.keras: mismatch against m.keras.envprint/fingerprint.json: output "y": ')


# --------------------------------------------------------------------------- words of many models


def _summary(**kw):
    from envprint.models import SweepSummary

    items = kw["models"]
    by = {v: sum(i.verdict == v for i in items) for v in ("identical", "within_tolerance", "mismatch", "error")}
    return SweepSummary(engine="local", jobs=1, by_verdict=by, by_cause={}, **kw)


def test_sweep_words_are_singular_for_one_and_junit_carries_the_measured_seconds():
    from envprint.models import OutputComparison, SweepItem
    from envprint.render.junit import item_suite, junit_xml
    from envprint.render.many import sweep_line
    from envprint.render.outputs import Context
    from envprint.render.people import render

    y = OutputComparison(name="y", status="mismatch", size=42, n_differ=9, n_out_of_tolerance=5, atol=0.0, rtol=0.0)
    item = SweepItem(model="a.keras", verdict="mismatch", exit_code=1, difference="output", output=y, seconds=0.25)
    assert sweep_line(item) == 'MISMATCH          a.keras  output "y": 5 of 42 elements out of tolerance | 0.2 s'
    summary = _summary(total=2, done=1, interrupted=True, exit_code=1, models=[item])
    text = render(summary, Context(kind="sweep"))
    assert "Sweep interrupted: 1 of 2 models (local, 1 worker)" in text
    assert text.endswith("1 model was not verified (interrupted).\n")

    xml = junit_xml([item_suite(item, None)], name="envprint sweep")
    assert '<testsuites name="envprint sweep" tests="1" failures="0" errors="1" time="0.250">' in xml
    assert 'time="0.250" timestamp=' in xml and '<testcase classname="a.keras" name="verify" time="0.250">' in xml


def test_fleet_words_are_singular_for_one_host_and_one_class():
    from envprint.models import EquivalenceClass, FleetReport, HostResult
    from envprint.render.outputs import Context
    from envprint.render.people import render

    host = HostResult(host="10.0.0.1", status="verified", verdict="identical", exit_code=0, equivalence_class="A")
    cls = EquivalenceClass(name="A", verdict="identical", hosts=["10.0.0.1"], representative="10.0.0.1", outputs=[],
                           environment=[])  # fmt: skip
    by = {"identical": 1, "within_tolerance": 0, "mismatch": 0, "error": 0, "unreachable": 0}
    report = FleetReport(model="m.keras", hosts=[host], classes=[cls], by_status=by, exit_code=0)
    text = render(report, Context(kind="fleet"))
    assert "  1 host: 1 identical, 0 within tolerance, 0 mismatch, 0 could not verify, 0 unreachable; " in text
    assert "; 1 equivalence class\n" in text and "Class A: 1 host, identical," in text


def test_html_histogram_labels_stay_short_and_the_relative_plot_says_what_it_leaves_out():
    pytest.importorskip("matplotlib")
    from golden_reports import mismatch_report

    from envprint.render.html import render_html

    page = render_html(mismatch_report())
    assert ">1M<" in page and ">64k<" in page and "65536-1048575" not in page
    assert "Relative error: 10 elements equal to the reference," in page
    assert "3 with none (the reference is 0, or a value is not finite)" in page
    assert "without one)" not in page


def test_markdown_appends_to_the_github_step_summary_and_replaces_any_other_file(tmp_path, monkeypatch):
    from golden_reports import identical_report

    summary, other = tmp_path / "step_summary", tmp_path / "other.md"
    summary.write_text("## Earlier step\n")
    other.write_text("old\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    Selection(["markdown=$GITHUB_STEP_SUMMARY", f"markdown={other}"]).check("report").write(identical_report())
    assert summary.read_text().startswith("## Earlier step\n\n### ✅ envprint verify: PASSED (bit-identical)\n")
    assert other.read_text().startswith("### ✅ envprint verify: PASSED (bit-identical)\n")


def test_sweep_refuses_an_unwritable_junit_path_before_looking_for_models(tmp_path):
    r = invoke("sweep", tmp_path / "no-models-here", "--junit-xml", tmp_path / "no" / "j.xml")
    assert r.exit_code == ExitCode.USAGE
    assert r.stderr == (
        f"envprint: error: {tmp_path / 'no' / 'j.xml'}: cannot write the junit output (directory {tmp_path / 'no'} "
        "does not exist); create it or give another path\n"
    )


def test_an_output_path_the_system_refuses_is_refused_before_any_work(tmp_path):
    """/proc takes no new file, even from root (whom os.access always answers yes): found before verify runs."""
    r = invoke("verify", tmp_path / "missing.keras", "--output", "html=/proc/envprint-report.html")
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("envprint: error: /proc/envprint-report.html: cannot write the html output ("), r.stderr
    assert r.stderr.endswith("); give a writable path\n"), r.stderr


def test_a_missing_environment_variable_reads_unset_wherever_its_value_is_recorded():
    from envprint.causes.base import fmt

    assert [fmt(None, p) for p in ("tensorflow.onednn.env", "env.variables.OMP_NUM_THREADS", "cpu.model")] == [
        "(unset)",
        "(unset)",
        "(absent)",
    ]


FIXTURE = Path(__file__).resolve().parent / "fixtures" / "handmade_gpu_host_a100.json"


def test_an_output_path_that_is_a_fifo_is_written_into_and_stays_a_fifo(tmp_path):
    """-o json=FIFO (a pipe a collector reads): the document goes into it; the pipe is not replaced by a file."""
    import os
    import stat
    import threading

    fifo = tmp_path / "collector"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    r = invoke("diff", FIXTURE, FIXTURE, "--output", f"json={fifo}")
    reader.join(timeout=30)
    assert r.exit_code == 0, r.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode), "the FIFO was replaced by a regular file"
    assert json.loads(received[0])["identical"] is True


def test_an_output_path_that_is_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    """-o json=LINK, a link into another folder (a mounted results volume): the link stays, its target holds the document."""
    target_dir = tmp_path / "volume"
    target_dir.mkdir()
    target = target_dir / "report.json"
    target.write_text("old")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    r = invoke("diff", FIXTURE, FIXTURE, "--output", f"json={link}")
    assert r.exit_code == 0, r.output
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert json.loads(target.read_text())["identical"] is True
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
