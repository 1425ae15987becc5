"""save --variants on a real depthwise CNN, and verify naming the variant a host is bit-identical to.

One record for the module: ``fleet_models.depthwise`` (oneDNN on and off give it different bits
on this CPU) saved with the oneDNN, instruction-set-cap and batch variants: three child processes
besides the fresh one, each predicting the probes as one batch and one per call. The verify that
flips TF_ENABLE_ONEDNN_OPTS runs in a subprocess (oneDNN is decided when TensorFlow starts).
The pure parts (matching a digest, the tolerance, the words) are tested on records built here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from envhelpers import invoke
from fleet_models import depthwise

import envprint
from envprint.causes.onednn import VARIABLE, flag
from envprint.causes.variants import match, settings_words
from envprint.check.variants import plan, tolerance_from_variants
from envprint.errors import UsageError
from envprint.models import Report, Tolerance, Variant, Variants, VariantSettings

KINDS = ["onednn", "isa", "batch"]


@pytest.fixture(scope="module")
def recorded(keras, tmp_path_factory) -> tuple[Path, envprint.SaveResult]:
    model = tmp_path_factory.mktemp("variants") / "dw.keras"
    depthwise(keras).save(model)
    return model, envprint.save(model, variants=KINDS, keep_variant_outputs=True)


def test_save_records_onednn_two_isa_caps_and_batch_versus_single_with_their_classes(recorded):
    model, result = recorded
    v = result.fingerprint.variants
    assert v is not None and v.cpu_isa is not None
    here = bool(v.onednn_default)
    flipped = f"onednn_{'off' if here else 'on'}"
    names = [x.name for x in v.variants]
    assert names == [
        "default", "batch1", flipped, f"{flipped}+batch1",
        "isa_avx", "isa_avx+batch1", "isa_sse41", "isa_sse41+batch1",
    ] if v.cpu_isa == "AVX2" else names[:4] == ["default", "batch1", flipped, f"{flipped}+batch1"]  # fmt: skip
    assert all(x.status == "recorded" and x.seconds for x in v.variants), [(x.name, x.error) for x in v.variants]
    by_name = {x.name: x for x in v.variants}
    # A fresh process with nothing changed reproduces the reference: the reference's class is A.
    assert by_name["default"].identical_to_reference and by_name["default"].equivalence_class == "A"
    assert v.classes[0].reference and "default" in v.classes[0].variants
    # oneDNN flipped changes this model's bits: its own class, its error measured.
    assert not by_name[flipped].identical_to_reference and by_name[flipped].max_ulp > 0
    assert by_name[flipped].settings == VariantSettings(onednn=not here, env={VARIABLE: flag(not here)})
    # The classes partition the recorded variants, each variant in the class of its digest.
    assert sorted(n for c in v.classes for n in c.variants) == sorted(names)
    assert all(by_name[n].outputs_digest == c.outputs_digest for c in v.classes for n in c.variants)
    assert v.parallel >= 1 and v.seconds > 0
    # Part of the record: in fingerprint.json (signed with it), the outputs in variants.npz by digest.
    written = result.summary().written
    assert v.arrays is not None and written["variants.npz"] == v.arrays.sha256
    assert set(v.arrays.arrays) == {f"{n}/logits" for n in names}
    assert json.loads((result.sidecar / "fingerprint.json").read_text())["variants"]["reference_digest"]


def test_the_isa_caps_below_this_cpu_are_planned_and_say_whether_they_acted(recorded):
    _, result = recorded
    v = result.fingerprint.variants
    if v.cpu_isa != "AVX2":
        pytest.skip(f"the caps asserted here are those of an AVX2 CPU; this one's highest is {v.cpu_isa}")
    caps = [x for x in v.variants if x.settings.max_cpu_isa]
    assert {x.settings.max_cpu_isa for x in caps} == {"AVX", "SSE41"}
    # Whether a cap changed the bits with oneDNN as it runs here is recorded either way: measured
    # on this AMD EPYC with oneDNN off, both caps did (TensorFlow's CPU kernels still reach oneDNN).
    assert all(x.identical_to_reference is not None for x in caps)


def test_save_says_the_classes_and_the_cost(recorded):
    _, result = recorded
    from envprint.render.variants import variants_lines

    lines = variants_lines(result.fingerprint.variants)
    v = result.fingerprint.variants
    assert lines[0].startswith(f"variants: {len(v.variants)} recorded in {v.seconds:.1f} s (")
    assert lines[1].startswith("  class A (the reference): nothing changed (a fresh process)")


@pytest.mark.subprocess
def test_verify_with_onednn_flipped_is_identical_to_its_variant_and_certain(recorded, tmp_path):
    model, result = recorded
    v = result.fingerprint.variants
    here = bool(v.onednn_default)
    env = {**os.environ, VARIABLE: flag(not here), "TF_CPP_MIN_LOG_LEVEL": "3"}
    text = tmp_path / "report.txt"
    done = subprocess.run(
        [sys.executable, "-m", "envprint", "verify", str(model), "--json", "--output", f"text={text}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = Report.model_validate_json(done.stdout)
    flipped = next(x for x in v.variants if x.name == f"onednn_{'off' if here else 'on'}")
    assert report.outputs_digest == flipped.outputs_digest
    assert report.variant.status == "matched" and report.variant.variant == flipped.name
    assert report.variant.equivalence_class == flipped.equivalence_class
    first = report.explanations[0]
    assert (first.cause, first.score) == ("recorded_variant", 1.0)
    state = "off" if here else "on"
    assert first.reasoning.startswith(
        f"the outputs are bit-identical to the variant recorded at save with oneDNN {state} "
        f"(class {flipped.equivalence_class}); this CPU's highest instruction set is {v.cpu_isa}"
    )
    assert first.remedy.startswith(f"export {VARIABLE}={flag(here)}; or accept this class")
    assert "unknown" not in [x.cause for x in report.explanations]
    words = text.read_text()
    recorded_n = len(v.variants)
    assert (
        f"  variant:     identical to the variant recorded with oneDNN {state} (class {flipped.equivalence_class} "
        f"of the {recorded_n} variants recorded at save)\n" in words
    )
    # aggregate names each class of hosts by the variant it matches: this host's report and one
    # from this process (oneDNN as at save), as two hosts of a fleet would send them.
    (tmp_path / "flipped.json").write_text(done.stdout)
    (tmp_path / "here.json").write_text(envprint.verify(model).model_dump_json())
    r = invoke("aggregate", tmp_path / "here.json", tmp_path / "flipped.json", "--json")
    assert r.exit_code == 0, r.output
    (fleet,) = json.loads(r.stdout)["models"]
    named = {c["hosts"][0]: (c["variant"]["status"], c["variant"]["variant"]) for c in fleet["classes"]}
    assert named == {str(tmp_path / "here.json"): ("reference", None), str(tmp_path / "flipped.json"): (
        "matched", flipped.name)}  # fmt: skip


def test_an_edited_variants_file_is_a_record_edited_after_save(recorded, tmp_path):
    model, result = recorded
    copy = tmp_path / model.name
    shutil.copy2(model, copy)
    shutil.copytree(result.sidecar, tmp_path / f"{model.name}.envprint")
    kept = tmp_path / f"{model.name}.envprint" / "variants.npz"
    kept.write_bytes(kept.read_bytes() + b"\0")
    report = envprint.verify(copy)
    assert report.verdict == "mismatch"
    assert report.identity.sidecar_files_changed == ["variants.npz"]
    assert report.explanations[0].cause == "probes_changed"


# --------------------------------------------------------------------------- pure: records built here


def _variants(*pairs: tuple[str, float | None], digests: dict[str, str] | None = None) -> Variants:
    digests = digests or {}
    made = [
        Variant(name=n, settings=VariantSettings(onednn=True), status="recorded", outputs_digest=digests.get(n, n),
                max_rel=rel, max_ulp=1, equivalence_class="B")
        for n, rel in pairs
    ]  # fmt: skip
    return Variants(reference_digest="ref", variants=made, classes=[], seconds=1.0, parallel=2, cpu_isa="AVX2")


def test_a_digest_matching_no_variant_is_said_as_such_and_a_record_without_variants_matches_nothing():
    v = _variants(("onednn_on", 1e-6))
    assert match(v, "ref").status == "reference"
    assert match(v, "onednn_on").variant == "onednn_on"
    odd = match(v, "something else")
    assert (odd.status, odd.variant, odd.recorded) == ("none", None, 1)
    assert match(None, "ref") is None and match(v, None) is None
    from envprint.render.variants import match_words

    assert match_words(odd) == "identical to none of the 1 variant recorded at save: a numerics path not seen at save"


def test_tolerance_from_variants_covers_the_largest_drift_with_the_margin_and_never_below_the_defaults():
    wide = _variants(("onednn_on", 3e-4), ("isa_avx", 1e-4))
    assert tolerance_from_variants(wide, 2.0, ["float32"]) == Tolerance(rtol=6e-4, margin=2.0, derived_from="variants")
    narrow = _variants(("onednn_on", 1e-7))
    assert tolerance_from_variants(narrow, 2.0, ["float32"]).rtol is None  # within the float32 default (1e-4)
    with pytest.raises(UsageError, match="--margin must be a number >= 1"):
        tolerance_from_variants(wide, 0.5, ["float32"])


def test_save_refuses_tolerance_from_variants_with_an_rtol_before_any_work(mlp, tmp_path):
    model = tmp_path / "m.keras"
    shutil.copy2(mlp["keras"], model)
    r = invoke("save", model, "--tolerance-from-variants", "--rtol", "1e-3")
    assert r.exit_code == 2, r.output
    assert "--tolerance-from-variants sets rtol from the variants' drift" in r.stderr
    assert not (tmp_path / "m.keras.envprint").exists()
    with pytest.raises(UsageError, match="unknown kind; choose from onednn, isa, isa_onednn, threads, batch, jax"):
        envprint.save(model, variants=["gpu"])


def test_the_plan_caps_each_instruction_set_below_this_cpus_and_flips_onednn(recorded):
    _, result = recorded
    fp = result.fingerprint.model_copy(update={"cpu": result.fingerprint.cpu.model_copy(update={"flags": [
        "avx", "avx2", "avx512f", "sse4_1"]})})  # fmt: skip
    here = bool(fp.tensorflow.onednn.enabled)
    children = plan(fp, ["onednn", "isa", "isa_onednn", "threads", "jax"], keras_file=True, jax=True)
    words = [settings_words(c.settings) for c in children]
    caps = [w for w in words if "capped" in w]
    assert words[0] == "nothing changed (a fresh process)"
    assert words[1] == f"oneDNN {'off' if here else 'on'}"
    assert [w.split("capped at ")[1] for w in caps][:1] == ["AVX2"] and len(caps) == (3 if here else 6)
    assert words[-2:] == ["1 thread", "the JAX backend"]


def test_the_variants_page_python_example_runs(recorded, tmp_path, monkeypatch, capsys):
    """docs/how-to/variants.md: save with two kinds of variant and a tolerance derived from them."""
    from docpages import block

    monkeypatch.chdir(tmp_path)
    shutil.copy2(recorded[0], tmp_path / "model.keras")
    code = block("docs/how-to/variants.md", "A tolerance that covers the fleet", "python")
    exec(compile(code, "docs/how-to/variants.md", "exec"), {})
    seconds, tolerance = capsys.readouterr().out.split(" ", 1)
    assert float(seconds) > 0 and "rtol" in tolerance
    assert envprint.verify("model.keras").passed
