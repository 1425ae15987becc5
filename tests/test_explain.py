"""explain.py: which cause ranks first for what the outputs did, the remedies' exact words, preflight.

Pure tests: fingerprints come from the recorded A100 host and are perturbed with model_copy;
output comparisons carry numbers measured on a 2-core CPU (TF 2.21, Keras 3, 32 probes, max
over outputs) for an MLP 64-256-256-10, a small CNN and MobileNetV2 96x96.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from string import Formatter

import pytest
from envhelpers import run_python

from envprint.causes import registry
from envprint.causes.base import change
from envprint.causes.diff import diff_fingerprints
from envprint.causes.explain import expect, explain, observe, preflight
from envprint.causes.registry import (
    BUILDERS,
    FIT_KINDS,
    INSTEAD,
    NOT_A_SETTING,
    REGISTRY,
    SEED_NOT_HOST,
    TOPICS,
    VALUES,
    WHEN,
    Cannot,
)
from envprint.models import (
    PREFLIGHT_THRESHOLD,
    Device,
    Fingerprint,
    IdentityCheck,
    ModelIdentity,
    OutputComparison,
    SelfCheck,
)
from envprint.record.store import read_fingerprint
from envprint.render.fingerprint import render_diff, render_expectations
from envprint.render.text import Writer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAME = IdentityCheck(weights="same")
FILE_SHA = "3f" * 32


@pytest.fixture(scope="module")
def saved() -> Fingerprint:
    """The recorded A100 host, as `envprint save` would have written it for model.keras."""
    fp = read_fingerprint(FIXTURES / "handmade_gpu_host_a100.json")
    model = ModelIdentity(
        format="keras",
        name="model.keras",
        files={".": FILE_SHA},
        weights_digest="9a" * 32,
        weights_digest_scheme="named-v1",
        inputs=[],
        outputs=[],
        stochastic_layers=["dropout (Dropout)"],
    )
    return fp.model_copy(update={"model": model})


def tf_setting(fp: Fingerprint, **update) -> Fingerprint:
    return fp.model_copy(update={"tensorflow": fp.tensorflow.model_copy(update=update)})


def onednn_off(fp: Fingerprint) -> Fingerprint:
    return tf_setting(fp, onednn=fp.tensorflow.onednn.model_copy(update={"enabled": False}))


def tensorflow_at(fp: Fingerprint, version: str) -> Fingerprint:
    key = {**fp.packages.key, "tensorflow": version}
    fp = fp.model_copy(update={"packages": fp.packages.model_copy(update={"key": key})})
    return tf_setting(fp, version=version)


def package_at(fp: Fingerprint, name: str, version: str | None, key: bool = True) -> Fingerprint:
    section = "key" if key else "installed"
    packages = {**getattr(fp.packages, section), name: version}
    return fp.model_copy(update={"packages": fp.packages.model_copy(update={section: packages})})


def threads_at(fp: Fingerprint, n: int) -> Fingerprint:
    threads = fp.threads.model_copy(update={"tf_intra_op_effective": n, "tf_inter_op_effective": n})
    return fp.model_copy(update={"threads": threads})


def cpu_only(fp: Fingerprint) -> Fingerprint:
    cpu = [Device(name="/physical_device:CPU:0", device_type="CPU")]
    devices = fp.devices.model_copy(update={"physical": cpu, "gpus": None, "cuda_visible_devices": None})
    return fp.model_copy(update={"devices": devices})


def drift(n_differ: int, max_ulp: int, max_rel: float, top1: float = 1.0, **kw) -> OutputComparison:
    """One float32 output of 320 elements (32 probes x 10 classes), as compare_output reports it."""
    status = "mismatch" if max_rel > 1.3e-6 else "within_tolerance"
    return OutputComparison(
        name="logits",
        status="identical" if n_differ == 0 else status,
        expected_dtype="float32",
        obtained_dtype="float32",
        expected_shape=[32, 10],
        obtained_shape=[32, 10],
        size=320,
        n_differ=n_differ,
        max_ulp=max_ulp,
        max_rel=max_rel if n_differ else None,
        top1_agreement=top1,
        **kw,
    )


# The measurements (rows of the table in the brief) and the signature each must read as.
IDENTICAL = drift(0, 0, 0.0)
MLP_XLA = drift(298, 805, 8.1e-05)
MLP_BF16 = drift(320, 2_800_000, 2.8e-01, top1=0.97)
MLP_WEIGHT = drift(178, 512, 4.3e-05)
CNN_XLA = drift(272, 21, 1.7e-06)
CNN_BF16 = drift(320, 680_000, 4.6e-02)
MNV2_ONEDNN = drift(293, 720, 4.6e-05)
MNV2_BATCH1 = drift(297, 103, 7.5e-06)
MNV2_XLA = drift(300, 274, 2.6e-05)
MNV2_BF16 = drift(320, 1_800_000, 1.5e-01)
MNV2_WEIGHT = drift(318, 3284, 2.7e-04)


def causes(found) -> list[str]:
    return [x.cause for x in found]


def by_cause(found) -> dict:
    return {x.cause: x for x in found}


# --------------------------------------------------------------------------- reading the outputs


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        (IDENTICAL, "identical"),
        (MLP_XLA, "reduction_order"),
        (CNN_XLA, "reduction_order"),
        (MNV2_ONEDNN, "reduction_order"),
        (MNV2_BATCH1, "reduction_order"),
        (MNV2_XLA, "reduction_order"),
        # A weight scaled by 1+1e-3 reads as noise: that is why the weights digest, not the
        # outputs, decides model_changed.
        (MLP_WEIGHT, "reduction_order"),
        (MNV2_WEIGHT, "reduction_order"),
        (CNN_BF16, "precision"),
        (MNV2_BF16, "precision"),
        (MLP_BF16, "semantic"),
        (drift(3, 2, 1e-7, nan_appeared=1), "semantic"),
    ],
)
def test_measured_drifts_read_as_their_signature(output, kind):
    assert observe([output]) == kind


def test_a_changed_output_dtype_reads_as_dtype_and_the_worst_output_decides():
    retyped = OutputComparison(
        name="probs", status="mismatch", problem="dtype changed: float32 -> float16", expected_dtype="float32",
        obtained_dtype="float16",
    )  # fmt: skip
    assert observe([MNV2_ONEDNN, retyped]) == "dtype"
    assert observe([IDENTICAL, MNV2_BF16]) == "precision"
    assert observe([]) == "identical"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("2.15.1", "2.15.2", "patch"),
        ("2.15.1", "2.16.1", "minor"),
        ("2.15.0", "3.0.0", "major"),
        ("1.26.4", "2.0", "major"),
        ("2.15.1", "2.15.1.post1", "other"),
        ("v2.15.0-2-g0b15fdfcb3f", "v2.15.0-3-g1234", "other"),
        ("3.11.0", None, "major"),
    ],
)
def test_version_changes_are_graded_with_packaging(a, b, expected):
    assert change(a, b) == expected


# --------------------------------------------------------------------------- ranking


def test_changed_weights_rank_first_above_every_environment_cause(saved):
    current = tf_setting(onednn_off(saved), dtype_policy="mixed_bfloat16")
    found = explain(saved, diff_fingerprints(saved, current), IdentityCheck(weights="changed"), [MLP_BF16])
    assert causes(found)[0] == "model_changed"
    assert found[0].score == 1.0
    assert all(x.score < 1.0 for x in found[1:])
    assert found[0].remedy == (
        "this is not the model that was fingerprinted: deploy the saved model file "
        f"(model.keras, sha256 {FILE_SHA[:16]}…) or re-run envprint save on the new one"
    )


def test_edited_probes_rank_first(saved):
    identity = IdentityCheck(weights="same", sidecar_files_changed=["reference.npz"])
    found = explain(saved, diff_fingerprints(saved, onednn_off(saved)), identity, [MNV2_ONEDNN])
    assert causes(found)[:2] == ["probes_changed", "onednn"]
    assert "reference.npz no longer matches the sha256 in fingerprint.json" in found[0].reasoning
    assert found[0].remedy.startswith("restore reference.npz from the saved sidecar")


def test_randomness_at_inference_ranks_first_over_environment_differences(saved):
    current = tf_setting(onednn_off(saved), dtype_policy="mixed_bfloat16")
    env = diff_fingerprints(saved, current)
    found = explain(saved, env, SAME, [MNV2_BF16], stochastic_now=True)
    assert causes(found)[0] == "stochastic_inference"
    assert found[0].score > max(x.score for x in found[1:])
    assert "training=False" in found[0].remedy
    assert "remove any call with training=True on dropout (Dropout)" in found[0].remedy
    assert "envprint.seed_everything(1234)" in found[0].remedy
    # ... but never above a model that is not the saved one.
    found = explain(saved, env, IdentityCheck(weights="changed"), [MNV2_BF16], stochastic_now=True)
    assert causes(found)[:2] == ["model_changed", "stochastic_inference"]


def test_ulp_noise_with_a_onednn_change_ranks_onednn_above_a_tensorflow_patch(saved):
    current = tensorflow_at(onednn_off(saved), "2.15.2")
    found = explain(saved, diff_fingerprints(saved, current), SAME, [MNV2_ONEDNN])
    assert causes(found) == ["onednn", "tensorflow_version"]
    assert found[0].reasoning == (
        "oneDNN setting changed (tensorflow.onednn.enabled: True -> False): "
        "what the outputs did, ULP-level noise (max 720 ULP, max rel 4.6e-05, top-1 100.0%), is typical of it"
    )
    assert "2.15.1 -> 2.15.2, a patch release; +1 more" in found[1].reasoning
    assert found[0].score > found[1].score


def test_bfloat16_scale_error_ranks_the_dtype_policy_first(saved):
    current = threads_at(tensorflow_at(tf_setting(onednn_off(saved), dtype_policy="mixed_bfloat16"), "2.15.2"), 2)
    env = diff_fingerprints(saved, current)
    for measured in (MNV2_BF16, CNN_BF16, MLP_BF16):  # MLP: 97% top-1 makes it semantic; still the policy
        found = explain(saved, env, SAME, [measured])
        assert causes(found)[0] == "dtype_policy", measured
        assert found[0].remedy == "keras.mixed_precision.set_global_policy('float32') before loading the model"


def test_top1_flips_point_at_a_keras_major_change_over_reduction_order_causes(saved):
    # The Keras that runs changed (not only the installed package): tensorflow.keras_version says so.
    current = onednn_off(tf_setting(package_at(saved, "keras", "3.3.3"), keras_version="3.3.3"))
    found = explain(saved, diff_fingerprints(saved, current), SAME, [MLP_BF16])
    ranked = causes(found)
    assert ranked.index("keras_version") < ranked.index("onednn")
    assert by_cause(found)["keras_version"].remedy == "pip install 'keras==2.15.0'"


def test_a_threads_difference_with_drift_is_a_moderate_candidate(saved):
    found = explain(saved, diff_fingerprints(saved, threads_at(saved, 2)), SAME, [MLP_XLA])
    assert causes(found) == ["threads"]
    assert 0.3 <= found[0].score <= 0.6


def test_an_unrelated_package_scores_low_and_leaves_room_for_unknown(saved):
    current = package_at(package_at(saved, "typer", "0.13.0", key=False), "protobuf", "5.26.0")
    found = explain(saved, diff_fingerprints(saved, current), SAME, [MNV2_XLA])
    assert causes(found)[0] == "unknown"
    assert by_cause(found)["other_package"].score < 0.2
    assert by_cause(found)["unknown"].remedy == "run envprint verify --investigate"


def test_versions_weigh_major_above_minor_above_patch(saved):
    scores = []
    for version in ("3.0.0", "2.16.1", "2.15.2"):
        env = diff_fingerprints(saved, tensorflow_at(saved, version))
        scores.append(by_cause(explain(saved, env, SAME, [MLP_XLA]))["tensorflow_version"].score)
    assert scores[0] > scores[1] > scores[2]


def test_a_distribution_swap_is_graded_by_the_tensorflow_version_not_as_a_removal(saved):
    packages = saved.packages.model_copy(
        update={"tensorflow_distribution": "tensorflow-cpu", "key": {**saved.packages.key, "tensorflow": None,
                                                                      "tensorflow-cpu": "2.15.2"}}
    )  # fmt: skip
    current = tf_setting(saved.model_copy(update={"packages": packages}), version="2.15.2")
    found = by_cause(explain(saved, diff_fingerprints(saved, current), SAME, [MNV2_ONEDNN]))
    assert "tensorflow.version: 2.15.1 -> 2.15.2, a patch release" in found["tensorflow_version"].reasoning
    # a patch release is listed, and weighs less than a minor one would (not the removal of a package)
    minor = by_cause(explain(saved, diff_fingerprints(saved, tensorflow_at(saved, "2.16.1")), SAME, [MNV2_ONEDNN]))
    assert 0 < found["tensorflow_version"].score < minor["tensorflow_version"].score
    assert found["tensorflow_version"].remedy == "pip uninstall -y tensorflow-cpu && pip install 'tensorflow==2.15.1'"


def test_unrelated_installed_packages_are_never_a_cause_nor_pinned(saved):
    current = saved
    for name, version in (("rich", "13.7.1"), ("typer", "0.13.0"), ("cffi", "1.17.1"), ("cryptography", "43.0.1"),
                          ("google-auth", "2.35.0")):  # fmt: skip
        current = package_at(current, name, version, key=False)
    env = diff_fingerprints(saved, current)
    assert {e.path for e in env.entries} >= {"packages.installed.cffi", "packages.installed.google-auth"}
    found = explain(saved, env, SAME, [MNV2_XLA])
    assert causes(found) == ["unknown"]
    assert "pip install" not in found[0].remedy
    assert preflight(saved, current, env) == []


def test_cpu_flag_changes_name_what_was_gained_and_lost(saved):
    cpu = saved.cpu.model_copy(update={"flags": ["avx", "avx2", "avx512f", "fma", "sse4_1", "sse4_2"]})
    found = by_cause(explain(saved, diff_fingerprints(saved, saved.model_copy(update={"cpu": cpu})), SAME, [MNV2_XLA]))
    assert "(cpu.flags: +avx512f, -f16c)" in found["cpu_isa"].reasoning


def test_a_cuda_stack_remedy_for_a_saved_host_without_cuda_says_run_on_the_cpu(saved):
    no_cuda = cpu_only(saved).model_copy(
        update={
            "devices": cpu_only(saved).devices.model_copy(
                update={
                    "driver_version": None,
                    "cuda_driver_version": None,
                    "nvidia_wheels": {},
                    "loaded_libraries": None,
                }
            )
        }
    )
    no_cuda = tf_setting(no_cuda, build=saved.tensorflow.build.model_copy(update={"is_cuda_build": False}))
    found = by_cause(explain(no_cuda, diff_fingerprints(no_cuda, saved), SAME, [MNV2_XLA]))
    assert (
        found["cuda_stack"].remedy == "the saved host ran without CUDA: run on the CPU (export CUDA_VISIBLE_DEVICES=-1)"
    )


def test_identical_outputs_blame_no_environment_difference(saved):
    current = threads_at(tensorflow_at(tf_setting(onednn_off(saved), op_determinism=True), "2.15.2"), 1)
    env = diff_fingerprints(saved, current)
    assert len(env.entries) >= 5
    assert explain(saved, env, SAME, [IDENTICAL]) == []


def test_differing_outputs_with_no_difference_anywhere_are_unknown(saved):
    found = explain(saved, diff_fingerprints(saved, saved), SAME, [MNV2_XLA])
    assert causes(found) == ["unknown"]
    assert 0 < found[0].score < 1  # named as the one candidate, without a certainty nothing supports
    assert found[0].reasoning == (
        "outputs differ (max 274 ULP, max rel 2.6e-05, top-1 100.0%) but neither the model, "
        "the probes nor any recorded environment fact changed"
    )
    assert found[0].remedy == "run envprint verify --investigate"


def test_rewritten_model_files_with_the_same_weights_need_no_action(saved):
    identity = IdentityCheck(weights="same", files_changed=["."], model_name="mlp_resaved.keras")
    # Bit-identical outputs blame nothing: the rewrite is the report's note, not a cause.
    assert explain(saved, diff_fingerprints(saved, saved), identity, [IDENTICAL]) == []
    found = by_cause(explain(saved, diff_fingerprints(saved, saved), identity, [MNV2_XLA]))
    assert found["model_file_rewritten"].reasoning == (
        "model files changed (mlp_resaved.keras) but the weights digest is the saved one: a re-save, not another model"
    )
    assert found["model_file_rewritten"].remedy == "no action needed: the weights are the saved ones"


def test_another_format_of_the_model_is_a_neutral_note_not_model_changed(saved):
    """A .tflite file checked against its .keras record: the weights digests use two schemes."""
    tflite = IdentityCheck(
        weights="unknown", model_name="model.tflite", weights_digest_scheme_saved="named-v1",
        weights_digest_scheme_now="tflite-constants-v1", files_missing=["."], files_added=["."],
    )  # fmt: skip
    found = explain(saved, diff_fingerprints(saved, saved), tflite, [CNN_XLA])
    assert causes(found) == ["unknown", "model_other_format"]
    note = by_cause(found)["model_other_format"]
    assert note.score == 0.1
    assert note.reasoning == (
        "the weights cannot be compared across formats (saved named-v1, this model tflite-constants-v1) and the "
        "inputs and outputs match: the outputs are the evidence"
    )
    assert "not the model that was fingerprinted" not in note.remedy
    assert explain(saved, diff_fingerprints(saved, saved), tflite, [IDENTICAL]) == []
    # The same scheme that cannot be compared (no weights digest saved) with changed files stays model_changed.
    unknown = IdentityCheck(weights="unknown", files_changed=["."], model_name="model.keras")
    changed = explain(saved, diff_fingerprints(saved, saved), unknown, [CNN_XLA])
    assert causes(changed)[0] == "model_changed"
    assert changed[0].reasoning.startswith("the weights could not be compared and model files changed (model.keras)")


def test_every_explanation_is_scored_in_the_unit_interval_and_sorted(saved):
    current = cpu_only(threads_at(tensorflow_at(tf_setting(onednn_off(saved), jit="autoclustering"), "2.17.0"), 2))
    found = explain(saved, diff_fingerprints(saved, current), SAME, [MNV2_ONEDNN])
    assert found and all(0.0 <= x.score <= 1.0 for x in found)
    assert [x.score for x in found] == sorted((x.score for x in found), reverse=True)
    assert all(x.fields and x.remedy for x in found)


def test_every_diff_topic_has_a_registry_entry():
    topics = {topic for _, topic, _ in TOPICS} - {"context"}
    assert topics <= set(REGISTRY)


def test_the_documented_cause_ids_are_the_registry_in_its_order():
    page = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "causes.md").read_text()
    assert re.findall(r"^\| `([a-z0-9_]+)` \|", page, flags=re.M) == list(REGISTRY)


def test_the_registry_keeps_the_ranking_order_and_each_cause_lives_in_one_family():
    assert list(REGISTRY) == [
        "model_changed", "model_file_rewritten", "model_other_format", "probes_changed", "request_misfit",
        "transport_precision", "another_model_served", "recorded_variant", "stochastic_inference", "server_numerics",
        "preprocessing", "dtype_policy", "keras_backend", "onednn", "determinism_settings", "tensorflow_version", "keras_version", "numpy_version",
        "other_package", "cuda_stack", "device", "cpu_isa", "threads", "seed", "python_version", "environment",
        "unknown",
    ]  # fmt: skip
    owners = [cause for family in registry.FAMILIES for cause in family.causes]
    assert sorted(owners) == sorted(REGISTRY)


def test_every_setting_a_cause_words_is_one_the_child_can_make():
    """The words (causes) and the calls (envprint._tf.settings) of a process setting are keyed alike."""
    from envprint._tf.settings import SETTERS

    assert set(registry.CALLS) == set(SETTERS)
    for cause, c in REGISTRY.items():
        if isinstance(c.restorer, str) and c.restorer in BUILDERS:
            family = next(f for f in registry.FAMILIES if cause in f.causes)
            assert c.restorer in family.restorers, "a cause's restorer lives in its own family module"


@pytest.mark.parametrize("cause", list(REGISTRY))
def test_every_cause_has_each_part_or_says_why_not(cause):
    c = REGISTRY[cause]
    assert c.title and c.signature in ("semantic", "reduction_order", "precision", "stochastic", "identity")
    if isinstance(c.fit, str):
        assert c.fit, "a cause the diff does not score says why"
    else:
        assert len(c.fit) == len(FIT_KINDS) and all(0.0 <= f <= 1.0 for f in c.fit)
        assert c.paths or c.listed, "a cause scored from the diff owns fingerprint paths"
    names = {name for part in c.remedy for _, name, _, _ in Formatter().parse(part) if name}
    assert c.remedy and names <= set(VALUES), names - set(VALUES)
    if isinstance(c.preflight, str):
        assert c.preflight, "a cause without preflight rules says why"
    else:
        assert all(rule.when in WHEN and 0.0 <= rule.score <= 1.0 for rule in c.preflight)
        assert (c.preflight[-1].paths, c.preflight[-1].when) == ("*", "any"), "the last rule covers every path"
    if isinstance(c.restorer, Cannot):
        assert c.restorer.why and c.restorer.remedy in INSTEAD
    else:
        assert c.restorer in BUILDERS or c.restorer in (NOT_A_SETTING, SEED_NOT_HOST)


# --------------------------------------------------------------------------- remedies with saved values


@pytest.mark.parametrize(
    ("perturb", "cause", "remedy"),
    [
        (lambda fp: tensorflow_at(fp, "2.21.0"), "tensorflow_version", "pip install 'tensorflow==2.15.1'"),
        (lambda fp: threads_at(fp, 2), "threads", "export TF_NUM_INTRAOP_THREADS=32 TF_NUM_INTEROP_THREADS=32"),
        (lambda fp: threads_at(fp, 2), "threads", "tf.config.threading.set_intra_op_parallelism_threads(32)"),
        (onednn_off, "onednn", "export TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow is imported"),
        (lambda fp: tf_setting(fp, tensor_float_32=False), "determinism_settings",
         "tf.config.experimental.enable_tensor_float_32_execution(True)"),
        (lambda fp: tf_setting(fp, op_determinism=True), "determinism_settings",
         "do not enable op determinism"),
        (lambda fp: tf_setting(fp, jit="autoclustering"), "determinism_settings", "tf.config.optimizer.set_jit(False)"),
        (lambda fp: package_at(fp, "numpy", "2.1.0"), "numpy_version", "pip install 'numpy==1.26.4'"),
        (cpu_only, "device", "run on the saved GPU (NVIDIA A100-SXM4-40GB): export CUDA_VISIBLE_DEVICES=0"),
        (lambda fp: fp.model_copy(update={"env": fp.env.model_copy(update={"variables": {}})}), "device",
         "run on the saved GPU"),
        (lambda fp: fp.model_copy(update={"python": fp.python.model_copy(update={"version": "3.12.3"})}),
         "python_version", "run under Python 3.11.9 like the saved host"),
    ],
)  # fmt: skip
def test_remedies_restore_the_saved_values(saved, perturb, cause, remedy):
    found = by_cause(explain(saved, diff_fingerprints(saved, perturb(saved)), SAME, [MNV2_ONEDNN]))
    assert remedy in found[cause].remedy


def test_remedies_use_the_saved_distribution_and_settings(saved):
    """A CPU host saved with tensorflow-cpu 2.21.0, TF32 off and op determinism on, 2 threads."""
    packages = saved.packages.model_copy(
        update={"tensorflow_distribution": "tensorflow-cpu", "key": {**saved.packages.key, "tensorflow-cpu": "2.21.0"}}
    )
    cpu_host = threads_at(cpu_only(saved), 2).model_copy(update={"packages": packages})
    cpu_host = tf_setting(cpu_host, version="2.21.0", tensor_float_32=False, op_determinism=True)
    current = threads_at(tf_setting(tensorflow_at(saved, "2.20.0"), tensor_float_32=True), 1)
    found = by_cause(explain(cpu_host, diff_fingerprints(cpu_host, current), SAME, [MNV2_ONEDNN]))
    assert found["tensorflow_version"].remedy == "pip uninstall -y tensorflow && pip install 'tensorflow-cpu==2.21.0'"
    assert found["threads"].remedy.startswith("export TF_NUM_INTRAOP_THREADS=2 TF_NUM_INTEROP_THREADS=2")
    assert found["device"].remedy == "export CUDA_VISIBLE_DEVICES=-1 to run on the CPU like the saved host"
    assert found["determinism_settings"].remedy == (
        "tf.config.experimental.enable_op_determinism(); "
        "export NVIDIA_TF32_OVERRIDE=0 or tf.config.experimental.enable_tensor_float_32_execution(False)"
    )


def test_an_environment_variable_remedy_exports_the_saved_value(saved):
    variables = {**saved.env.variables, "NVIDIA_TF32_OVERRIDE": "0"}
    with_override = saved.model_copy(update={"env": saved.env.model_copy(update={"variables": variables})})
    found = by_cause(explain(with_override, diff_fingerprints(with_override, saved), SAME, [MNV2_BF16]))
    assert found["determinism_settings"].remedy == "export NVIDIA_TF32_OVERRIDE=0"
    # TF32 is a precision change: it fits a large relative error better than ULP-level noise.
    noise = by_cause(explain(with_override, diff_fingerprints(with_override, saved), SAME, [MNV2_XLA]))
    assert found["determinism_settings"].score > noise["determinism_settings"].score


# --------------------------------------------------------------------------- preflight


def test_preflight_expects_ulp_noise_when_onednn_is_switched_off(saved):
    found = by_cause(preflight(saved, onednn_off(saved)))
    assert found["onednn"].reasoning == (
        "saved with oneDNN on, this host has it off: expect float noise of up to a few hundred ULP "
        "(measured: 720 ULP on MobileNetV2, 0 on an MLP and a small CNN)"
    )
    assert found["onednn"].remedy.startswith("export TF_ENABLE_ONEDNN_OPTS=1")


def test_preflight_expects_tf32_scale_error_when_tf32_comes_on_on_a_gpu(saved):
    tf32_off = tf_setting(saved, tensor_float_32=False)
    found = preflight(tf32_off, saved)
    assert causes(found)[0] == "determinism_settings"
    assert found[0].reasoning == "TF32 off -> on on a GPU: expect relative error near 1e-3 in matmuls and convolutions"
    # Without a GPU on either host, TF32 cannot matter: listed, never a cause.
    cpu_a, cpu_b = cpu_only(tf32_off), cpu_only(saved)
    assert [(e.path, e.numerics) for e in diff_fingerprints(cpu_a, cpu_b).entries] == [
        ("tensorflow.tensor_float_32", False)
    ]
    assert preflight(cpu_a, cpu_b) == []


def test_preflight_warns_that_a_keras_3_file_cannot_load_under_keras_2(saved):
    keras3 = tf_setting(package_at(saved, "keras", "3.3.3"), keras_version="3.3.3", keras_flavor="keras3")
    found = preflight(keras3, saved)
    assert causes(found)[0] == "keras_version"
    # Keras 2 reads neither a .keras nor an .h5 file that Keras 3 wrote (tests/test_cross_version.py): only the SavedModel.
    assert found[0].reasoning.startswith(
        "Keras 3 -> Keras 2 (3.3.3 -> 2.15.0): a Keras 3 .keras file cannot load here; save a SavedModel "
        "(model.export) and verify that"
    )


def test_preflight_grades_version_differences(saved):
    scores = [
        by_cause(preflight(saved, tensorflow_at(saved, v)))["tensorflow_version"].score for v in ("3.0", "2.16.1")
    ]
    patch = by_cause(preflight(saved, tensorflow_at(saved, "2.15.2")))["tensorflow_version"]
    assert scores[0] > scores[1] > patch.score
    assert patch.reasoning.startswith("tensorflow.version 2.15.1 -> 2.15.2 (patch): expect identical outputs")


def test_preflight_predicts_a_mismatch_for_a_model_random_at_save(saved):
    check = SelfCheck(repeat_max_abs={"logits": 0.3}, batch1_max_abs={"logits": 0.0}, deterministic=False)
    found = preflight(saved.model_copy(update={"self_check": check}), saved)
    assert causes(found) == ["stochastic_inference"]


def test_preflight_of_a_host_against_itself_expects_nothing(saved):
    assert preflight(saved, saved) == []


@pytest.mark.subprocess
def test_explain_imports_neither_tensorflow_nor_numpy():
    done = run_python(
        "import sys, envprint.causes.explain; print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --------------------------------------------------------------------------- false differences and causes


def onednn_at(fp: Fingerprint, enabled: bool, variable: str | None) -> Fingerprint:
    variables = {k: v for k, v in fp.env.variables.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    variables |= {"TF_ENABLE_ONEDNN_OPTS": variable} if variable is not None else {}
    fp = fp.model_copy(update={"env": fp.env.model_copy(update={"variables": variables})})
    return tf_setting(fp, onednn=fp.tensorflow.onednn.model_copy(update={"enabled": enabled, "env": variable}))


def test_a_declared_seed_is_no_difference_from_a_host(saved):
    seeded = saved.model_copy(update={"seeds": saved.seeds.model_copy(update={"declared": 7, "source": "cli"})})
    host = saved.model_copy(update={"model": None, "seeds": saved.seeds.model_copy(update={"declared": None})})
    assert diff_fingerprints(seeded, host).identical
    # Between two records, a seed is how each reference was produced: listed, never a cause.
    other = seeded.model_copy(update={"seeds": seeded.seeds.model_copy(update={"declared": 8})})
    env = diff_fingerprints(seeded, other)
    assert [(e.path, e.topic, e.numerics) for e in env.entries] == [("seeds.declared", "seed", False)]
    assert causes(explain(seeded, env, SAME, [MNV2_XLA])) == ["unknown"]
    assert preflight(seeded, other, env) == []


def test_the_onednn_variable_on_a_host_where_onednn_is_already_off_is_no_numerics_difference(saved):
    off = onednn_at(saved, False, None)
    off_by_variable = onednn_at(saved, False, "0")
    env = diff_fingerprints(off, off_by_variable)
    assert {e.path for e in env.entries} == {"env.variables.TF_ENABLE_ONEDNN_OPTS", "tensorflow.onednn.env"}
    assert not any(e.numerics for e in env.entries)
    assert preflight(off, off_by_variable, env) == []
    assert causes(explain(off, env, SAME, [MNV2_ONEDNN])) == ["unknown"]


def test_a_onednn_remedy_never_names_this_hosts_own_value(saved):
    on, off = onednn_at(saved, True, None), onednn_at(saved, False, "0")
    assert by_cause(explain(on, diff_fingerprints(on, off), SAME, [MNV2_ONEDNN]))["onednn"].remedy == (
        "export TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow is imported (the saved host ran with oneDNN on)"
    )
    assert by_cause(explain(off, diff_fingerprints(off, on), SAME, [MNV2_ONEDNN]))["onednn"].remedy == (
        "export TF_ENABLE_ONEDNN_OPTS=0 before TensorFlow is imported (the saved host ran with oneDNN off)"
    )
    ignored = onednn_at(saved, False, "1")  # the variable asks for oneDNN and this host still runs without it
    remedy = by_cause(explain(on, diff_fingerprints(on, ignored), SAME, [MNV2_ONEDNN]))["onednn"].remedy
    assert remedy.startswith("TF_ENABLE_ONEDNN_OPTS is already 1 here, yet oneDNN is not on")
    assert "export" not in remedy


def test_numpys_openblas_is_not_a_threads_cause_and_does_not_grade_numpy(saved):
    """TensorFlow 2.15 / NumPy 1.26 saved; 2.21 / NumPy 2.x here: NumPy's BLAS moved with NumPy."""
    blas = saved.threads.model_copy(update={"blas": ["openblas 0.3.23.dev threads=2"]})
    old = saved.model_copy(update={"threads": blas})
    new_blas = saved.threads.model_copy(update={"blas": ["openblas 0.3.31.188.0 threads=2"]})
    new = tensorflow_at(package_at(saved, "numpy", "2.1.3"), "2.21.0").model_copy(update={"threads": new_blas})
    found = by_cause(explain(old, diff_fingerprints(old, new), SAME, [MNV2_ONEDNN]))
    assert "threads" not in found
    assert "packages.key.numpy: 1.26.4 -> 2.1.3, a major change" in found["numpy_version"].reasoning
    assert not any(e.numerics for e in found["numpy_version"].fields if e.path == "threads.blas")


def test_a_threads_remedy_sets_only_the_counts_that_differ(saved):
    two = threads_at(saved, 2)
    one = two.model_copy(update={"threads": two.threads.model_copy(update={"tf_intra_op_effective": 1})})
    remedy = by_cause(explain(two, diff_fingerprints(two, one), SAME, [MLP_XLA]))["threads"].remedy
    assert remedy == (
        "export TF_NUM_INTRAOP_THREADS=2, or call tf.config.threading.set_intra_op_parallelism_threads(2) "
        "before the first op"
    )
    # Logical cores differ but TensorFlow runs the same thread counts: nothing to blame.
    cores = two.model_copy(update={"cpu": two.cpu.model_copy(update={"logical_cores": 64})})
    assert causes(explain(two, diff_fingerprints(two, cores), SAME, [MLP_XLA])) == ["unknown"]


def keras_host(fp: Fingerprint, tf_version: str, keras_version: str, flavor: str) -> Fingerprint:
    keras_pkg = "tf-keras" if flavor == "tf_keras" else "keras"
    fp = package_at(tensorflow_at(fp, tf_version), keras_pkg, keras_version)
    return tf_setting(fp, keras_version=keras_version, keras_flavor=flavor)


def test_a_keras_3_record_on_tensorflow_2_15_installs_the_saved_tensorflow_not_keras_3_alone(saved):
    keras3 = keras_host(saved, "2.21.0", "3.15.1", "keras3")
    here = keras_host(saved, "2.15.1", "2.15.0", "keras2")
    remedy = by_cause(explain(keras3, diff_fingerprints(keras3, here), SAME, [MLP_BF16]))["keras_version"].remedy
    assert remedy == (
        "Keras 3 needs TensorFlow 2.16 or newer and this host has 2.15: install the saved stack: "
        "pip install 'tensorflow==2.21.0' 'keras==3.15.1'"
    )


def test_a_keras_2_record_on_tensorflow_2_21_uses_tf_keras_not_keras_2(saved):
    here = keras_host(saved, "2.21.0", "3.15.1", "keras3")
    remedy = by_cause(explain(saved, diff_fingerprints(saved, here), SAME, [MLP_BF16]))["keras_version"].remedy
    assert remedy == (
        "Keras 2 runs beside TensorFlow 2.21 as tf-keras: pip install 'tf-keras~=2.21.0' and export "
        "TF_USE_LEGACY_KERAS=1; or install the saved TensorFlow: pip install 'tensorflow==2.15.1'"
    )
    assert "'keras==2.15.0'" not in remedy


def test_preflight_of_a_keras_3_savedmodel_on_keras_2_expects_it_to_load(saved):
    keras3 = keras_host(saved, "2.21.0", "3.15.1", "keras3")
    exported = keras3.model_copy(update={"model": keras3.model.model_copy(update={"format": "savedmodel"})})
    keras_rule = by_cause(preflight(exported, saved))["keras_version"]
    assert "cannot load" not in keras_rule.reasoning
    assert keras_rule.score < 0.5
    assert keras_rule.reasoning.startswith("Keras 3.15.1 -> 2.15.0: TensorFlow loads a SavedModel without Keras")


def with_variable(fp: Fingerprint, name: str, value: str) -> Fingerprint:
    return fp.model_copy(update={"env": fp.env.model_copy(update={"variables": {**fp.env.variables, name: value}})})


def as_savedmodel(fp: Fingerprint) -> Fingerprint:
    return fp.model_copy(update={"model": fp.model.model_copy(update={"format": "savedmodel"})})


@pytest.mark.parametrize(
    ("hosts", "gate"),
    [
        (lambda fp: (cpu_only(fp), with_variable(cpu_only(fp), "NVIDIA_TF32_OVERRIDE", "0")), None),
        (lambda fp: (fp, with_variable(fp, "KERAS_HOME", "/srv/keras")), None),
        (lambda fp: (fp, threads_at(fp, 2)), None),
        # ULP-level noise, however likely, stays within tolerance: the README's drift table.
        (lambda fp: (fp, onednn_off(fp)), None),
        # A SavedModel saved under TensorFlow 2.21, checked under 2.15: TensorFlow loads it, bit-identical.
        (lambda fp: (as_savedmodel(keras_host(fp, "2.21.0", "3.15.1", "keras3")), fp), None),
        (lambda fp: (fp, tf_setting(fp, dtype_policy="mixed_bfloat16")), ("dtype_policy", "precision")),
        (lambda fp: (keras_host(fp, "2.21.0", "3.15.1", "keras3"), fp), ("keras_version", "semantic")),
    ],
    ids=["tf32-no-gpu", "keras-home", "threads", "onednn-off", "savedmodel-tf221-on-215", "dtype-policy",
         "keras3-file-on-keras2"],
)  # fmt: skip
def test_preflight_gates_only_on_a_likely_change_beyond_tolerance(saved, hosts, gate):
    base, current = hosts(saved)
    result = expect(base, current, "saved", "current host")
    assert not result.identical, "every case differs in something"
    assert result.expects_change is (gate is not None), [(x.cause, x.score, x.predicts) for x in result.expectations]
    beyond = [
        (x.cause, x.predicts) for x in result.expectations if x.score >= PREFLIGHT_THRESHOLD and x.predicts != "noise"
    ]
    assert beyond == ([gate] if gate else [])


def test_preflight_says_what_a_likely_change_would_be_and_the_text_agrees(saved):
    onednn = by_cause(preflight(saved, onednn_off(saved)))["onednn"]
    assert (onednn.score, onednn.predicts) == (0.7, "noise")
    assert "expect float noise of up to a few hundred ULP" in onednn.reasoning
    keras3 = keras_host(saved, "2.21.0", "3.15.1", "keras3")
    tf = by_cause(preflight(as_savedmodel(keras3), saved))["tensorflow_version"]
    assert (tf.score, tf.predicts) == (0.63, "noise")
    assert tf.reasoning.startswith("tensorflow.version 2.21.0 -> 2.15.1 (minor): expect identical outputs or ULP-level")
    major = by_cause(preflight(saved, tensorflow_at(saved, "3.0")))["tensorflow_version"]
    assert (major.score, major.predicts) == (0.9, "semantic")
    assert major.reasoning.startswith("tensorflow.version 2.15.1 -> 3.0 (major): a major change may change results")
    text = io.StringIO()
    render_expectations(preflight(saved, onednn_off(saved)), Writer(text))
    assert "  1. onednn (likelihood 0.70, ULP-level noise, within tolerance): saved with oneDNN on" in text.getvalue()


# --------------------------------------------------------------------------- causes that must not go quiet
# (suppressing the environment cause once passed the whole suite; a declared seed is no cause by
# design: test_a_declared_seed_is_no_difference_from_a_host)


def test_a_changed_environment_variable_is_named_as_the_environment(saved):
    variables = {**saved.env.variables, "TF_GPU_ALLOCATOR": "cuda_malloc_async"}
    current = saved.model_copy(update={"env": saved.env.model_copy(update={"variables": variables})})
    found = by_cause(explain(saved, diff_fingerprints(saved, current), SAME, [MNV2_XLA]))
    assert "environment" in found, list(found)
    assert "env.variables.TF_GPU_ALLOCATOR" in found["environment"].reasoning


# --------------------------------------------------------------------------- remedies beside another TensorFlow


def test_packages_tensorflow_pins_are_installed_with_the_saved_stack_when_tensorflow_differs(saved):
    """TF 2.21 here, a record from TF 2.15: pinning ml-dtypes 0.3.2 or protobuf 4 alone breaks TF 2.21."""
    here = tensorflow_at(saved, "2.21.0")
    for name, version in (("numpy", "2.4.6"), ("h5py", "3.16.0"), ("ml-dtypes", "0.6.0"), ("protobuf", "7.36.2")):
        here = package_at(here, name, version)
    here = package_at(here, "rich", "14.0.0")
    env = diff_fingerprints(saved, here, "rec.envprint/fingerprint.json", "current host")
    found = by_cause(explain(saved, env, SAME, [MNV2_ONEDNN]))
    stack = (
        "envprint env-export rec.envprint/fingerprint.json > constraints.txt && "
        "pip install -c constraints.txt 'tensorflow==2.15.1'"
    )
    assert found["numpy_version"].remedy == (
        "numpy is pinned by TensorFlow's own requirements and TensorFlow differs (2.15.1 saved, 2.21.0 here): "
        f"install the saved stack together: {stack}"
    )
    assert found["other_package"].remedy == (
        "pip uninstall -y rich; h5py, ml-dtypes, protobuf are pinned by TensorFlow's own requirements and TensorFlow differs "
        f"(2.15.1 saved, 2.21.0 here): install the saved stack together: {stack}"
    )
    # The same TensorFlow on both hosts: a package is pinned alone, as before.
    same_tf = package_at(saved, "numpy", "1.26.0")
    alone = by_cause(explain(saved, diff_fingerprints(saved, same_tf), SAME, [MNV2_ONEDNN]))
    assert alone["numpy_version"].remedy == "pip install 'numpy==1.26.4'"


def test_pythonhashseed_is_listed_never_a_numerics_difference(saved):
    current = with_variable(saved, "PYTHONHASHSEED", "3")
    env = diff_fingerprints(saved, current)
    assert [(e.path, e.topic, e.numerics) for e in env.entries] == [("env.variables.PYTHONHASHSEED", "seed", False)]
    assert preflight(saved, current, env) == []
    assert causes(explain(saved, env, SAME, [MNV2_XLA])) == ["unknown"]


def test_onednn_and_thread_variables_are_listed_when_the_effective_state_is_recorded(saved):
    """TF_ENABLE_ONEDNN_OPTS=1 -> 0 and TF_NUM_INTRAOP_THREADS=2 -> 1: two settings, two numerics differences."""

    def host(onednn: bool, variable: str, threads: int) -> Fingerprint:
        fp = onednn_at(saved, onednn, variable)
        update = {"tf_intra_op_effective": threads, "variables": {"TF_NUM_INTRAOP_THREADS": str(threads)}}
        return fp.model_copy(update={"threads": fp.threads.model_copy(update=update)})

    a, b = host(True, "1", 2), host(False, "0", 1)
    env = diff_fingerprints(a, b)
    assert {e.path: e.numerics for e in env.entries} == {
        "tensorflow.onednn.enabled": True,
        "threads.tf_intra_op_effective": True,
        "tensorflow.onednn.env": False,
        "env.variables.TF_ENABLE_ONEDNN_OPTS": False,
        "threads.variables.TF_NUM_INTRAOP_THREADS": False,
    }
    # The effective state unknown on one side: the variable is all there is, and it counts.
    unknown = onednn_at(saved, None, "0")
    counted = {e.path: e.numerics for e in diff_fingerprints(a, unknown).entries}
    assert counted["env.variables.TF_ENABLE_ONEDNN_OPTS"] is True


def test_a_missing_value_reads_unset_for_a_variable_and_absent_otherwise(saved):
    unknown_state = onednn_at(saved, None, None)  # the effective state not recorded: the variable decides
    current = onednn_at(saved, None, "0")
    env = diff_fingerprints(unknown_state, current)
    expected = by_cause(preflight(unknown_state, current, env))
    assert "env.variables.TF_ENABLE_ONEDNN_OPTS (unset) -> 0" in expected["onednn"].reasoning
    text = io.StringIO()
    render_diff(env, Writer(text))
    assert "TF_ENABLE_ONEDNN_OPTS  (unset)  0" in re.sub(r" +", "  ", text.getvalue())
    gone = package_at(saved, "h5py", None)
    found = by_cause(explain(saved, diff_fingerprints(saved, gone), SAME, [MNV2_XLA]))
    assert "packages.key.h5py: 3.11.0 -> (absent)" in found["other_package"].reasoning


# --------------------------------------------------------------------------- issue 19: causes that changed nothing


def keras3_host(fp: Fingerprint, keras_version: str = "3.15.1") -> Fingerprint:
    """TensorFlow 2.21 with Keras 3 (tf-keras not installed), a .keras model."""
    fp = package_at(keras_host(fp, "2.21.0", keras_version, "keras3"), "tf-keras", None)
    return tf_setting(fp, keras_backend="tensorflow")


def test_an_installed_tf_keras_that_nothing_imports_is_listed_not_a_keras_change(saved):
    """Keras 3 runs on both hosts; tf-keras 2.21.0 was installed beside it here and nothing imports it."""
    base = keras3_host(saved)
    current = package_at(base, "tf-keras", "2.21.0")
    env = diff_fingerprints(base, current)
    assert [(e.path, e.topic, e.numerics) for e in env.entries] == [("packages.key.tf-keras", "keras_version", False)]
    assert preflight(base, current, env) == []
    assert expect(base, current, "saved", "current host").expects_change is False
    assert causes(explain(base, env, SAME, [MNV2_ONEDNN])) == ["unknown"]


def test_a_keras_upgrade_is_one_numerics_difference_not_one_per_package(saved):
    base, current = keras3_host(saved, "3.12.0"), keras3_host(saved, "3.15.1")
    env = diff_fingerprints(base, current)
    assert {e.path: e.numerics for e in env.entries} == {
        "tensorflow.keras_version": True,
        "packages.key.keras": False,
    }


def test_preflight_predicts_that_keras_3_12_cannot_load_a_keras_3_15_file(saved):
    """verify exits 4 on it (host.compat.keras_can_load: 'may_fail'); preflight must say so and gate."""
    base, current = keras3_host(saved, "3.15.1"), keras3_host(saved, "3.12.0")
    result = expect(base, current, "saved", "current host")
    keras = by_cause(result.expectations)["keras_version"]
    assert (keras.score, keras.predicts) == (0.9, "semantic")
    assert keras.reasoning.startswith(
        "Keras 3.15.1 -> 3.12.0: a .keras file saved by Keras 3.15.1, newer than this host's Keras 3.12.0, "
        "which may refuse its config"
    )
    assert keras.remedy == "pip install 'keras==3.15.1'"
    assert result.expects_change is True
    # The other way round (an older file under a newer Keras) loads: a minor release, ULP-level at most.
    older = by_cause(preflight(current, base))["keras_version"]
    assert older.predicts == "noise"
    # A SavedModel loads through TensorFlow whatever Keras wrote it.
    exported = by_cause(preflight(as_savedmodel(base), current))["keras_version"]
    assert exported.predicts == "noise"


def test_cuda_visible_devices_on_cpu_only_hosts_is_listed_not_a_device_cause(saved):
    """CUDA_VISIBLE_DEVICES=-1 where neither host has a GPU: the variable changes nothing."""
    base = cpu_only(with_variable(saved, "CUDA_VISIBLE_DEVICES", "0")).model_copy(
        update={"env": saved.env.model_copy(update={"variables": {}})}
    )
    current = with_variable(base, "CUDA_VISIBLE_DEVICES", "-1")
    env = diff_fingerprints(base, current)
    assert [(e.path, e.topic, e.numerics) for e in env.entries] == [
        ("env.variables.CUDA_VISIBLE_DEVICES", "device", False)
    ]
    assert preflight(base, current, env) == []
    assert causes(explain(base, env, SAME, [MNV2_XLA])) == ["unknown"]
    # A GPU on this host that the variable hides: it is what keeps the model on the CPU, and counts.
    hidden = current.model_copy(update={"devices": current.devices.model_copy(update={"gpus": saved.devices.gpus})})
    counted = {e.path: e.numerics for e in diff_fingerprints(base, hidden).entries}
    assert counted["env.variables.CUDA_VISIBLE_DEVICES"] is True


@pytest.mark.parametrize(
    ("name", "value"), [("NVIDIA_TF32_OVERRIDE", "0"), ("KERAS_HOME", "/srv/keras"), ("TF_CUDNN_DETERMINISTIC", "1")]
)
def test_gpu_only_variables_and_keras_home_on_cpu_only_hosts_are_no_cause(saved, name, value):
    base = cpu_only(saved).model_copy(update={"env": saved.env.model_copy(update={"variables": {}})})
    current = with_variable(base, name, value)
    env = diff_fingerprints(base, current)
    assert [(e.path, e.numerics) for e in env.entries] == [(f"env.variables.{name}", False)]
    assert preflight(base, current, env) == []
    assert causes(explain(base, env, SAME, [MNV2_XLA])) == ["unknown"]


def test_tf32_on_a_gpu_host_still_counts(saved):
    current = with_variable(saved, "NVIDIA_TF32_OVERRIDE", "0")
    env = diff_fingerprints(saved, current)
    assert [(e.path, e.topic, e.numerics) for e in env.entries] == [
        ("env.variables.NVIDIA_TF32_OVERRIDE", "determinism_settings", True)
    ]
    assert by_cause(preflight(saved, current, env))["determinism_settings"].predicts == "precision"


def test_a_missing_variable_reads_unset_in_the_diff_and_the_fleet_report(saved):
    from envprint.models import EquivalenceClass, FleetReport
    from envprint.render.many import render_fleet

    current = saved.model_copy(
        update={"threads": saved.threads.model_copy(update={"variables": {"TF_NUM_INTRAOP_THREADS": "1"}})}
    )
    text = io.StringIO()
    render_diff(diff_fingerprints(saved, current), Writer(text))
    assert "TF_NUM_INTRAOP_THREADS  (unset)  1" in re.sub(r" +", "  ", text.getvalue())
    assert "(absent)" not in text.getvalue()
    # fleet renders the classes' differences from their JSON: the same words.
    unknown_state, here = onednn_at(saved, None, None), onednn_at(saved, None, "0")
    numerics = [e for e in diff_fingerprints(unknown_state, here).entries if e.numerics]
    cls = EquivalenceClass(name="A", verdict="mismatch", hosts=["h1"], representative="h1", outputs=[],
                           environment=numerics)  # fmt: skip
    report = FleetReport(model="m.keras", hosts=[], classes=[cls], by_status=dict.fromkeys(
        ("identical", "within_tolerance", "mismatch", "error", "unreachable"), 0), exit_code=1)  # fmt: skip
    text = io.StringIO()
    render_fleet(FleetReport.model_validate_json(report.model_dump_json()), Writer(text))
    assert "env.variables.TF_ENABLE_ONEDNN_OPTS: (unset) -> 0  [onednn]" in text.getvalue()


# --------------------------------------------------------------------------- knowledge written once


def test_the_onednn_remedy_and_its_restore_step_put_back_the_same_saved_state(saved):
    """The saved state not read but its default recorded (on): remedy and child both ask for oneDNN on."""
    from envprint.causes.base import Planning, Restore

    a = tf_setting(onednn_at(saved, None, None), onednn=saved.tensorflow.onednn.model_copy(
        update={"enabled": None, "env": None, "default": True}))  # fmt: skip
    b = onednn_at(saved, False, "0")
    env = diff_fingerprints(a, b)
    found = by_cause(explain(a, env, SAME, [MNV2_ONEDNN]))
    assert found["onednn"].remedy == (
        "export TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow is imported (the saved host ran with oneDNN on)"
    )
    entries = [e for e in env.entries if e.topic == "onednn" and e.numerics]
    [step] = BUILDERS[REGISTRY["onednn"].restorer](Planning(a, "rec.json", {}, frozenset()), entries)
    assert isinstance(step, Restore)
    assert (step.env, step.expect) == ({"TF_ENABLE_ONEDNN_OPTS": "1"}, {"onednn": True})


def test_the_threads_remedy_and_its_restore_step_set_the_same_variables(saved):
    from envprint.causes.base import Planning

    here = threads_at(saved, 2)
    env = diff_fingerprints(saved, here)
    remedy = by_cause(explain(saved, env, SAME, [MNV2_BATCH1]))["threads"].remedy
    entries = [e for e in env.entries if e.topic == "threads" and e.numerics]
    [step] = BUILDERS["threads"](Planning(saved, "rec.json", {}, frozenset()), entries)
    exported = " ".join(f"{k}={v}" for k, v in step.env.items())
    assert remedy.startswith(f"export {exported}, or call ")
    assert step.env == {"TF_NUM_INTRAOP_THREADS": "32", "TF_NUM_INTEROP_THREADS": "32"}


# --------------------------------------------------------------------------- Keras backends


def on_backend(fp: Fingerprint, backend: str, precision: str | None = None) -> Fingerprint:
    """``fp`` with Keras on ``backend``; off TensorFlow, TensorFlow's runtime facts are absent, as capture() leaves them."""
    from envprint.models import KerasInfo, OpenVinoInfo

    ov = OpenVinoInfo(version="2026.4.1", inference_precision=precision)  # installed; read only where it runs Keras
    update: dict = {"keras": KerasInfo(backend=backend, backend_source="KERAS_BACKEND", openvino=ov)}
    if backend != "tensorflow":
        update["tensorflow"] = None
        update["devices"] = fp.devices.model_copy(update={"physical": None})
        update["threads"] = fp.threads.model_copy(update={"tf_intra_op_effective": None, "tf_inter_op_effective": None})
        update["env"] = fp.env.model_copy(update={"variables": {**fp.env.variables, "KERAS_BACKEND": backend,
                                                                  "TF_FORCE_GPU_ALLOW_GROWTH": "true"}})  # fmt: skip
    return fp.model_copy(update=update)


JAX_MNV2 = drift(290, 40, 1.3e-06)  # measured order: JAX against TensorFlow, within 1.3e-6 relative


def test_a_jax_run_of_a_tensorflow_record_blames_the_backend_and_counts_tensorflows_absence_once(saved):
    a = on_backend(saved, "tensorflow")
    env = diff_fingerprints(a, on_backend(saved, "jax"))
    counted = [(e.path, e.topic) for e in env.entries if e.numerics]
    assert counted == [("keras.backend", "keras_backend")]
    listed = {e.path: e.topic for e in env.entries if not e.numerics}
    assert listed["tensorflow"] == listed["env.variables.TF_FORCE_GPU_ALLOW_GROWTH"] == "keras_backend"
    found = explain(a, env, SAME, [JAX_MNV2])
    assert causes(found)[0] == "keras_backend"
    assert found[0].remedy == (
        "export KERAS_BACKEND=tensorflow before Keras is imported (the saved host ran Keras on tensorflow, this one on jax)"
    )


def test_a_record_from_before_the_backend_was_recorded_is_no_backend_difference(saved):
    env = diff_fingerprints(saved.model_copy(update={"keras": None}), on_backend(saved, "tensorflow"))
    assert [(e.path, e.numerics) for e in env.entries if e.topic == "keras_backend"] == [("keras", False)]


def test_preflight_of_openvino_in_bf16_predicts_a_precision_change_and_offers_f32(saved):
    a = on_backend(saved, "tensorflow")
    found = by_cause(preflight(a, on_backend(saved, "openvino", precision="bf16")))
    assert found["keras_backend"].reasoning.startswith("OpenVINO computes float32 models in bf16 on this CPU")
    assert found["keras_backend"].remedy.endswith(
        "or, to stay on OpenVINO, compile in float32: its CPU plugin computes in bf16 here "
        "(openvino.compile_model(model, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'}))"
    )
    assert expect(a, on_backend(saved, "openvino", precision="bf16"), "a", "b").expects_change
    # In f32 (this AVX2 CPU's default) OpenVINO is another backend's float noise: nothing beyond tolerance.
    f32 = by_cause(preflight(a, on_backend(saved, "openvino", precision="f32")))
    assert f32["keras_backend"].reasoning.startswith("saved with Keras on tensorflow, this host runs it on openvino")
    assert "INFERENCE_PRECISION_HINT" not in f32["keras_backend"].remedy
    assert not expect(a, on_backend(saved, "openvino", precision="f32"), "a", "b").expects_change


def test_the_keras_backend_restore_step_runs_the_saved_backend_and_expects_the_child_to_report_it(saved):
    from envprint.causes.base import Planning, Restore

    a, b = on_backend(saved, "jax"), on_backend(saved, "openvino", precision="f32")
    entries = [e for e in diff_fingerprints(a, b).entries if e.topic == "keras_backend" and e.numerics]
    [step] = BUILDERS[REGISTRY["keras_backend"].restorer](Planning(a, "rec.json", {}, frozenset()), entries)
    assert isinstance(step, Restore)
    assert (step.env, step.expect) == ({"KERAS_BACKEND": "jax"}, {"keras_backend": "jax"})
    from envprint.causes.restore import remedy_for

    assert remedy_for(step) == "export KERAS_BACKEND=jax before Keras is imported"
