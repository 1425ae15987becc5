"""The HTML report: ``verify --html`` and ``envprint report``, drawn by matplotlib, opened in a real browser.

The browser is Debian's chromium, headless (scripts/test.sh installs it when it can). Its console
is read from ``--enable-logging=stderr``: every console message (a script error, a fetch that the
page's Content-Security-Policy blocked) is a ``CONSOLE`` line there, and the page has no script,
so it must print none. A page that does try a fetch shows that the check can fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from docpages import block
from envhelpers import invoke, run_shell

from envprint.check.histogram import error_histogram

pytest.importorskip("matplotlib", reason="the HTML report needs the envprint[html] extra (matplotlib)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",  # containers often give /dev/shm 64 MB, too little for a renderer
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def drifted(tmp_path_factory, mlp, keras):
    """(the saved MLP with its record, the same MLP with every kernel weight moved by ~2e-4 relative)."""
    import envprint

    folder = tmp_path_factory.mktemp("html")
    model = folder / "model.keras"
    shutil.copy2(mlp["keras"], model)
    envprint.save(model, num_probes=32)
    clone = keras.models.clone_model(mlp.model)
    weights = [w.copy() for w in mlp.model.get_weights()]
    rng = np.random.default_rng(0)
    weights[0] = (weights[0] * (1 + 2e-4 * rng.standard_normal(weights[0].shape))).astype(np.float32)
    clone.set_weights(weights)
    drifted = folder / "drifted.keras"
    clone.save(drifted)
    return model, drifted


@pytest.fixture(scope="module")
def mismatch_page(drifted, tmp_path_factory):
    """``verify drifted.keras --fingerprint <the original's record> --html --json``: (result, page, report JSON)."""
    model, changed = drifted
    page = tmp_path_factory.mktemp("page") / "report.html"
    r = invoke("verify", str(changed), "--fingerprint", f"{model}.envprint", "--html", str(page), "--json")
    return r, page, json.loads(r.stdout)


def links(text: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", text)


def test_verify_html_writes_one_self_contained_page_with_the_verdict_plots_and_causes(mismatch_page):
    r, page, report = mismatch_page
    assert r.exit_code == 1, r.output
    assert r.stderr == f"envprint: wrote {page}\n"
    text = page.read_text(encoding="utf-8")
    assert "<h1>envprint verify: <span class='verdict' style='background:#cf222e'>MISMATCH</span></h1>" in text
    # One figure (ULP and relative histograms, obtained vs expected, difference vs tolerance) per output.
    assert text.count("<figure><svg") == 1 and "<h3>Output <code>logits</code></h3>" in text
    for words in ("Error in ULP", "Relative error", "Obtained vs expected", "Difference against the tolerance"):
        assert words in text, words  # svg.fonttype "none": the plots' text stays text
    rtol = report["outputs"][0]["rtol"]
    assert f"rtol = {rtol:g} (+ atol / |expected|)" in text  # the tolerance drawn on the relative histogram
    assert f"rtol ≈ {rtol / 2**-23:.3g} ULP (rtol / eps)" in text  # ... and on the ULP histogram (float32)
    assert "<th>Index</th><th>Obtained</th><th>Expected</th><th>Difference</th>" in text
    assert "<td><b>model_changed</b></td><td>1.00</td>" in text
    assert "Environment differences (saved host → this host)" in text
    # Nothing to fetch: no script, every link a fragment inside the page, and a policy that forbids fetches.
    assert "<script" not in text
    assert links(text) and all(link.startswith("#") for link in links(text))
    assert "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none';" in text


def test_verify_json_carries_the_error_histogram_the_page_is_drawn_from(mismatch_page):
    _, _, report = mismatch_page
    (out,) = report["outputs"]
    hist = out["error_histogram"]
    assert out["status"] == "mismatch" and out["size"] == 32 * 3
    assert sum(hist["ulp_counts"]) == out["size"]  # every element is finite: each has a ULP distance
    assert sum(hist["rel_counts"]) + hist["rel_zero"] + hist["rel_skipped"] == out["size"]
    assert hist["ulp_edges"][:3] == [0, 1, 2] and hist["ulp_edges"][-2] <= out["max_ulp"] < hist["ulp_edges"][-1]
    assert len(hist["sample_expected"]) == len(hist["sample_obtained"]) == out["size"]  # 96 < 256: all of them


def test_report_command_draws_a_saved_json_report(mismatch_page, tmp_path):
    r, _, report = mismatch_page
    saved = tmp_path / "report.json"
    saved.write_text(r.stdout, encoding="utf-8")
    page = tmp_path / "again.html"
    r2 = invoke("report", str(saved), "--html", str(page))
    assert r2.exit_code == 0, r2.output
    assert r2.stdout == "" and r2.stderr == f"envprint: wrote {page}\n"
    text = page.read_text(encoding="utf-8")
    assert text.count("<figure><svg") == 1 and "MISMATCH" in text and "model_changed" in text
    assert report["model"] in text


def test_identical_verify_page_says_there_is_no_error_to_plot(drifted, tmp_path):
    model, _ = drifted
    page = tmp_path / "ok.html"
    r = invoke("verify", str(model), "--html", str(page))
    assert r.exit_code == 0, r.output
    text = page.read_text(encoding="utf-8")
    assert "PASSED (bit-identical)" in text
    assert "<p class='muted'>Bit-identical: no error to plot.</p>" in text and "<svg" not in text


def test_page_says_a_second_identical_prediction_differed(dropout_left_active, tmp_path):
    model = tmp_path / "model.keras"
    shutil.copy2(dropout_left_active, model)
    assert invoke("save", str(model)).exit_code == 0
    page = tmp_path / "random.html"
    r = invoke("verify", str(model), "--html", str(page))
    assert r.exit_code == 1, r.output
    text = page.read_text(encoding="utf-8")
    assert (
        "<p><b>outputs changed between two identical predictions on this host (out): "
        "a random layer is active at inference</b></p>"
    ) in text
    assert "a second, identical prediction differed" in text
    assert "Bit-identical: no error to plot." not in text


def test_page_of_another_model_names_the_file_the_differences_and_the_probes_not_run(mlp, two_inputs, tmp_path):
    model = tmp_path / "model.keras"
    shutil.copy2(mlp["keras"], model)
    assert invoke("save", str(model)).exit_code == 0
    shutil.copy2(two_inputs["keras"], model)  # another model over the recorded file
    page = tmp_path / "other.html"
    r = invoke("verify", str(model), "--html", str(page))
    assert r.exit_code == 1, r.output
    text = page.read_text(encoding="utf-8")
    assert "<tr><td>files changed</td><td>model.keras</td></tr>" in text
    assert "<td>files changed</td><td>.</td>" not in text
    assert "<tr><td>probes</td><td>not run: this model does not take the recorded inputs</td></tr>" in text
    assert "<tr><td>differs</td><td>inputs [features (None, 4) float32] -&gt; [a (None, 3) float32" in text
    assert "parameters 67 -&gt; 18" in text
    assert "<p><b>the model&#x27;s weights differ from the fingerprinted model&#x27;s: this is not the model" in text
    assert "<p class='muted'>None compared: the probes were not run.</p>" in text


def test_report_of_a_file_that_is_not_a_report_exits_3(tmp_path):
    fp = tmp_path / "fingerprint.json"
    fp.write_text('{"schema_version": 1}', encoding="utf-8")
    r = invoke("report", str(fp), "--html", str(tmp_path / "x.html"))
    assert r.exit_code == 3
    assert r.stderr == f"envprint: error: {fp}: not an envprint verify report (expected the JSON of verify --json)\n"
    missing = tmp_path / "nope.json"
    r = invoke("report", str(missing), "--html", str(tmp_path / "x.html"))
    assert r.exit_code == 3
    assert r.stderr == (
        f"envprint: error: {missing}: no such file; give a report saved with: envprint verify MODEL --json > REPORT.json\n"
    )
    assert not (tmp_path / "x.html").exists()


@pytest.mark.subprocess
def test_html_without_matplotlib_exits_5_with_the_pip_line(tmp_path):
    # A fresh interpreter in which matplotlib cannot be imported, as on a host without the extra.
    code = "import sys; sys.modules['matplotlib'] = None; from envprint.cli.app import main; sys.argv[0] = 'envprint'; main()"
    saved = tmp_path / "r.json"
    saved.write_text("{}", encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-c", code, "report", str(saved), "--html", str(tmp_path / "x.html")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 5, r.stderr
    assert r.stderr == (
        "envprint: error: the HTML report needs matplotlib, which is not installed; "
        "install it: pip install 'envprint[html]'\n"
    )


def test_error_histogram_bins_ulp_and_relative_error_exactly():
    expected = np.ones(8, dtype=np.float32)
    obtained = expected.copy()
    steps = [0, 0, 1, 2, 3, 5, 8, 100]  # ULP distances
    for i, k in enumerate(steps):
        for _ in range(k):
            obtained[i] = np.nextafter(obtained[i], np.float32(2))
    h = error_histogram(expected, obtained)
    assert h.ulp_edges == [0, 1, 2, 4, 8, 16, 32, 64, 128]
    #                       0   1   2-3 4-7 8-15 .. 64-127
    assert h.ulp_counts == [2, 1, 2, 1, 1, 0, 0, 1]
    assert h.rel_zero == 2 and h.rel_skipped == 0 and sum(h.rel_counts) == 6
    eps = 2.0**-23  # one ULP at 1.0 is eps relative: it lands in the bin [10**-7, 10**-6.75)
    assert h.rel_counts[h.rel_edges.index(next(e for e in h.rel_edges if e > eps)) - 1] == 1
    assert error_histogram(np.arange(3), np.arange(3)) is None  # integers have no ULP: nothing to draw


def test_error_histogram_skips_pairs_without_a_relative_error():
    expected = np.array([0.0, np.nan, 1.0, np.inf], dtype=np.float64)
    obtained = np.array([1e-9, np.nan, 1.0, np.inf], dtype=np.float64)
    h = error_histogram(expected, obtained)
    assert (h.rel_zero, h.rel_skipped) == (1, 3)  # expected 0, and two pairs that are not finite
    assert sum(h.ulp_counts) == 2  # finite pairs only
    assert h.sample_expected == [0.0, 1.0] and h.sample_obtained == [1e-9, 1.0]


@pytest.mark.subprocess
def test_help_imports_neither_matplotlib_nor_mlflow():
    code = (
        "import sys; from envprint.cli.app import main; sys.argv = ['envprint', '--help']\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('matplotlib', 'mlflow', 'tensorflow') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "[]"


# --------------------------------------------------------------------------- a real browser


def chromium(page: Path, screenshot: Path, profile: Path, size: str = "1200,1700") -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={screenshot}", f"--window-size={size}"]
        + [page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def pixel_std(png: Path) -> float:
    from PIL import Image  # matplotlib's own dependency

    with Image.open(png) as image:
        return float(np.asarray(image.convert("L"), dtype=np.float64).std())


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/test.sh installs it with apt-get when run as root)"
)


@needs_chromium
def test_html_report_renders_in_headless_chromium_without_console_errors(mismatch_page, tmp_path):
    _, page, _ = mismatch_page
    shot = tmp_path / "report.png"
    r = chromium(page, shot, tmp_path / "profile")
    assert r.returncode == 0, r.stderr[-2000:]
    assert console_lines(r.stderr) == []
    assert shot.stat().st_size > 0
    # Measured: the report ~40 (grey levels' standard deviation), a page with one heading ~4, a blank one 0.
    assert pixel_std(shot) > 20, "the screenshot is blank or nearly"


@needs_chromium
def test_the_browser_check_sees_a_page_that_tries_to_fetch(mismatch_page, tmp_path):
    # The same page with one remote image added: the policy blocks it, the console says so.
    _, page, _ = mismatch_page
    bad = tmp_path / "bad.html"
    bad.write_text(
        page.read_text(encoding="utf-8").replace("<body>", "<body><img src='https://example.invalid/x.png'>"),
        encoding="utf-8",
    )
    r = chromium(bad, tmp_path / "bad.png", tmp_path / "profile")
    assert r.returncode == 0, r.stderr[-2000:]
    (line,) = console_lines(r.stderr)
    assert "https://example.invalid/x.png" in line and "Content Security Policy" in line


@needs_chromium
def test_blank_page_fails_the_screenshot_check(tmp_path):
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    shot = tmp_path / "blank.png"
    assert chromium(blank, shot, tmp_path / "profile", size="400,300").returncode == 0
    assert pixel_std(shot) == 0.0


@pytest.mark.subprocess
def test_the_docs_html_example_runs(drifted, tmp_path):
    model, _ = drifted
    shutil.copy2(model, tmp_path / "model.keras")
    shutil.copytree(f"{model}.envprint", tmp_path / "model.keras.envprint")
    r = run_shell(block("docs/concepts/reports.md", "HTML report", "bash"), tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("envprint: wrote report.html\n") == 2
    assert json.loads((tmp_path / "report.json").read_text())["verdict"] == "identical"
    assert "PASSED (bit-identical)" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_html_with_preflight_is_a_usage_error(drifted, tmp_path):
    model, _ = drifted
    r = invoke("verify", str(model), "--preflight", "--html", str(tmp_path / "x.html"))
    assert r.exit_code == 2
    assert (
        r.stderr == "envprint: error: the html output cannot draw a preflight result (it draws a verify report or "
        "an error); choose text, json or markdown\n"
    )
    assert not (tmp_path / "x.html").exists()


def test_drawing_an_exact_policy_page_leaves_matplotlib_as_it_found_it(mismatch_page):
    import matplotlib

    from envprint.models import Report
    from envprint.render.html import render_html

    _, _, report = mismatch_page
    before, pyplot = dict(matplotlib.rcParams), "matplotlib.pyplot" in sys.modules
    exact = Report.model_validate(report)
    exact = exact.model_copy(
        update={"outputs": [o.model_copy(update={"rtol": 0.0, "atol": 0.0}) for o in exact.outputs]}
    )
    assert "exact: any ULP fails" in render_html(exact)
    assert dict(matplotlib.rcParams) == before
    assert ("matplotlib.pyplot" in sys.modules) == pyplot  # no pyplot: no global figure state, no backend chosen


def test_error_histogram_counts_across_chunks_and_keeps_a_strided_sample():
    n = (1 << 18) * 2 + 5  # three chunks
    expected = np.linspace(-2, 2, n, dtype=np.float64).astype(np.float16)
    obtained = expected.copy()
    obtained[::3] = np.nextafter(expected[::3], np.float16(np.inf))  # one ULP up, every third element
    h = error_histogram(expected, obtained)
    moved = len(range(0, n, 3))
    assert h.ulp_edges == [0, 1, 2] and h.ulp_counts == [n - moved, moved]
    assert len(h.sample_expected) == 256 and h.sample_expected[0] == -2.0 and h.sample_expected[-1] == 2.0


def test_page_lists_investigation_and_environment_and_escapes_what_the_report_holds(mismatch_page):
    from envprint.models import DiffEntry, InvestigationResult, Report
    from envprint.render.html import render_html

    _, _, data = mismatch_page
    report = Report.model_validate(data)
    env = report.environment.model_copy(
        update={
            "identical": False,
            "entries": [
                DiffEntry(path="tensorflow.onednn.enabled", section="tensorflow", status="changed", a=True, b=False,
                          topic="onednn", numerics=True),
                DiffEntry(path="packages.installed.rich", section="packages", status="only_in_b", a=None, b="14.0",
                          topic="packages", numerics=False),
            ],
        }
    )  # fmt: skip
    tried = InvestigationResult(
        cause="onednn",
        setting="TF_ENABLE_ONEDNN_OPTS=1",
        status="confirmed",
        detail="restoring it reproduces the reference",
    )
    hostile = report.model_copy(
        update={"model": "<script>alert(1)</script>.keras", "environment": env, "investigation": [tried]}
    )
    text = render_html(hostile)
    assert "<script" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;.keras" in text
    assert "<td>confirmed</td><td>onednn</td><td>TF_ENABLE_ONEDNN_OPTS=1</td>" in text
    assert "<p>2 differences, 1 can change numerics.</p>" in text
    assert "<td>~</td><td>tensorflow.onednn.enabled</td><td>yes</td><td>no</td><td>onednn</td>" in text
    assert "<details><summary>1 more that cannot change numerics</summary>" in text
    assert "<td>+</td><td>packages.installed.rich</td><td>(absent)</td><td>14.0</td>" in text
