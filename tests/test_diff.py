"""Fingerprint diff: what differs, how it is grouped and ranked, and how people and machines read it."""

from __future__ import annotations

from pathlib import Path

import pytest

import envprint
from envprint.causes.diff import diff_fingerprints, topic_of
from envprint.host.gpu import library_from_path
from envprint.record.store import read_fingerprint

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def cpu() -> envprint.Fingerprint:
    return envprint.capture()


@pytest.fixture(scope="module")
def gpu_host() -> envprint.Fingerprint:
    return read_fingerprint(FIXTURES / "handmade_gpu_host_a100.json")


def test_a_fingerprint_does_not_differ_from_itself(cpu):
    d = diff_fingerprints(cpu, cpu)
    assert d.identical and d.entries == []


def test_created_at_alone_is_not_a_difference(cpu):
    later = cpu.model_copy(update={"created_at": cpu.created_at.replace(year=2030)})
    assert diff_fingerprints(cpu, later).identical


def test_recorded_gpu_host_against_cpu_capture_names_the_gpu_stack(gpu_host, cpu):
    d = diff_fingerprints(gpu_host, cpu)
    by_path = {e.path: e for e in d.entries}
    assert by_path["tensorflow.build.is_cuda_build"].a is True
    assert by_path["tensorflow.build.is_cuda_build"].b is False
    assert by_path["tensorflow.build.is_cuda_build"].topic == "cuda_stack"
    gpu0 = by_path["devices.physical[GPU:0].model"]
    assert (gpu0.status, gpu0.a, gpu0.topic) == ("only_in_a", "NVIDIA A100-SXM4-40GB", "device")
    assert by_path["devices.driver_version"].status == "only_in_a"
    assert by_path["devices.loaded_libraries.cudnn"].a == "8"
    assert by_path["devices.nvidia_wheels.nvidia-cudnn-cu12"].a == "8.9.4.25"
    assert by_path["tensorflow.version"].topic == "tensorflow_version"
    assert by_path["packages.key.numpy"].topic == "numpy_version"


def test_numerics_relevant_entries_come_before_the_package_list(gpu_host, cpu):
    d = diff_fingerprints(gpu_host, cpu)
    flags = [e.numerics for e in d.entries]
    assert flags == sorted(flags, reverse=True)
    assert d.entries[0].numerics
    installed = [e for e in d.entries if e.path.startswith("packages.installed.")]
    assert installed and not any(e.numerics for e in installed)
    # A key package is reported once, under packages.key, not again in the installed list.
    assert "packages.installed.numpy" not in {e.path for e in d.entries}


def test_diff_mirrors_when_sides_swap(gpu_host, cpu):
    ab, ba = diff_fingerprints(gpu_host, cpu), diff_fingerprints(cpu, gpu_host)
    flip = {"changed": "changed", "only_in_a": "only_in_b", "only_in_b": "only_in_a"}
    assert {(e.path, e.status, repr(e.a), repr(e.b)) for e in ab.entries} == {
        (e.path, flip[e.status], repr(e.b), repr(e.a)) for e in ba.entries
    }


def test_missing_tensorflow_section_is_one_entry_not_one_per_field(cpu):
    no_tf = cpu.model_copy(update={"tensorflow": None})
    d = diff_fingerprints(cpu, no_tf)
    tf_entries = [e for e in d.entries if e.section == "tensorflow"]
    assert [(e.path, e.status, e.a) for e in tf_entries] == [("tensorflow", "only_in_a", cpu.tensorflow.version)]


def test_topics_cover_the_documented_causes():
    assert topic_of("tensorflow.onednn.enabled") == ("onednn", True)
    assert topic_of("env.variables.TF_ENABLE_ONEDNN_OPTS") == ("onednn", True)
    assert topic_of("tensorflow.tensor_float_32") == ("determinism_settings", True)
    assert topic_of("env.variables.NVIDIA_TF32_OVERRIDE") == ("determinism_settings", True)
    assert topic_of("cpu.flags") == ("cpu_isa", True)
    assert topic_of("threads.tf_intra_op") == ("threads", True)
    assert topic_of("seeds.declared") == ("seed", False)
    assert topic_of("tensorflow.dtype_policy") == ("dtype_policy", True)
    assert topic_of("packages.installed.rich") == ("other_package", False)
    assert topic_of("cpu.memory_bytes") == ("context", False)


def test_loaded_libraries_are_topics_of_their_own_family():
    assert topic_of("devices.loaded_libraries.cudnn") == ("cuda_stack", True)
    # NumPy's own BLAS: TensorFlow's kernels never call it, so it is listed, never a cause.
    assert topic_of("devices.loaded_libraries.openblas") == ("numpy_version", False)
    assert topic_of("threads.blas") == ("numpy_version", False)
    assert topic_of("devices.loaded_libraries.dnnl") == ("onednn", True)
    assert topic_of("devices.loaded_libraries.tensorflow_framework") == ("tensorflow_version", True)


@pytest.mark.parametrize(
    ("path", "family", "version"),
    [
        ("/v/numpy.libs/libopenblas64_p-r0-0cf96a72.3.23.dev.so", "openblas", None),  # NumPy 1.26
        ("/v/numpy.libs/libscipy_openblas64_-ff651d7f.so", "openblas", None),  # NumPy 2
        ("/usr/lib/libcudnn.so.8.9.7", "cudnn", "8.9.7"),
        ("/v/tensorflow/libtensorflow_framework.so.2", "tensorflow_framework", "2"),
    ],
)
def test_numerics_libraries_are_recognised_by_file_name(path, family, version):
    lib = library_from_path(path)
    assert (lib.name, lib.version) == (family, version)


def test_what_save_measured_is_listed_not_counted_as_a_cause(mlp_recorded):
    """Two records of one model differ in their self-check and reference (the effects): no setting changed."""
    saved = read_fingerprint(mlp_recorded.parent / f"{mlp_recorded.name}.envprint" / "fingerprint.json")
    other = saved.model_copy(
        update={
            "self_check": saved.self_check.model_copy(
                update={"batch1_max_abs": {k: v + 1e-6 for k, v in saved.self_check.batch1_max_abs.items()}}
            ),
            "reference_arrays": saved.reference_arrays.model_copy(update={"sha256": "0" * 64}),
        }
    )
    d = diff_fingerprints(saved, other)
    paths = {e.path: e for e in d.entries}
    assert any(p.startswith("self_check.batch1_max_abs") for p in paths)
    assert "reference_arrays.sha256" in paths
    assert not [e.path for e in d.entries if e.numerics]
