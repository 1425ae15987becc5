"""The corpus in CI: a representative subset of scripts/corpus.py (two small Keras Applications), saved with
envprint and verified in fresh processes with oneDNN flipped and on Keras's JAX backend.

The whole corpus (15 architectures, OpenVINO too) is the script's, and its table is in
docs/reference/corpus.md; this keeps the script and its claims honest on every run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.subprocess, pytest.mark.keras3]

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "corpus.py"


@pytest.fixture(scope="module")
def corpus():
    spec = importlib.util.spec_from_file_location("envprint_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_small_applications_pass_with_onednn_flipped_and_on_jax_each_blaming_its_cause(
    tf, corpus, tmp_path, monkeypatch, capsys
):
    """The command of docs/reference/corpus.md, as written: the CI subset, oneDNN flipped and on JAX."""
    import shlex

    from docpages import block

    argv = shlex.split(
        block("docs/reference/corpus.md", "The corpus: Keras Applications across settings and backends", "bash").strip()
    )
    assert argv[:2] == ["python", "scripts/corpus.py"], argv
    results: dict = {}
    real_run = corpus.run
    monkeypatch.setattr(corpus, "run", lambda *a: results.update(real_run(*a)) or results)  # the real run, kept
    assert corpus.main([*argv[2:], "--folder", str(tmp_path)]) == 0
    assert [line.split(" | ")[0] for line in capsys.readouterr().out.splitlines()[2:4]] == [
        f"| {name}" for name in corpus.CI_SUBSET
    ]
    expected_cause = {"oneDNN flipped": "onednn", "jax": "keras_backend"}
    for setting, rows in results.items():
        for name in corpus.CI_SUBSET:
            row = rows[name]
            assert row["verdict"] in ("identical", "within_tolerance"), (setting, row)
            if row["verdict"] == "within_tolerance":
                assert row["cause"] == expected_cause[setting], (setting, row)
    assert results["jax"]["_host"]["keras_backend"] == "jax"
    text = corpus.table(results, list(corpus.CI_SUBSET))
    assert text.splitlines()[0] == "| model | oneDNN flipped | jax |"
    assert text.splitlines()[2].startswith("| MobileNetV2 | ")
