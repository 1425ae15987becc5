"""Host collectors, each fed a recorded host through its side-effect parameters."""

from __future__ import annotations

from envprint.host import collect, cpu

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_1 sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 pdpe1gb

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_1 sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 pdpe1gb

processor\t: 2
physical id\t: 1
core id\t\t: 0
"""

ARM_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimddp sve sve2 bf16 i8mm
CPU implementer\t: 0x41
"""


def test_cpuinfo_keeps_only_flags_that_change_kernels():
    facts = cpu.parse_proc_cpuinfo(X86_CPUINFO)
    assert facts["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert facts["vendor"] == "GenuineIntel"
    assert facts["flags"] == [
        "amx_bf16",
        "amx_tile",
        "avx",
        "avx2",
        "avx512_bf16",
        "avx512_vnni",
        "avx512f",
        "fma",
        "sse4_1",
        "sse4_2",
    ]
    assert facts["physical_cores"] == 2  # (socket 0, core 0) twice is one core; socket 1 is another


def test_cpuinfo_reads_arm64_features():
    facts = cpu.parse_proc_cpuinfo(ARM_CPUINFO)
    assert facts["flags"] == ["asimd", "asimddp", "asimdhp", "bf16", "i8mm", "sve", "sve2"]
    assert facts["vendor"] == "0x41"


def test_cpu_info_unreadable_proc_is_absent_with_reason_not_a_crash():
    def unreadable(path: str) -> str:
        raise PermissionError(13, "Permission denied", path)

    info = cpu.cpu_info(read=unreadable, system="Linux")
    assert info.flags is None and info.model is None and info.memory_bytes is None
    assert info.unavailable["flags"].startswith("/proc/cpuinfo: PermissionError")
    assert info.unavailable["memory_bytes"].startswith("/proc/meminfo: PermissionError")
    assert info.logical_cores is not None


def test_meminfo_total_in_bytes():
    assert cpu.parse_meminfo("MemTotal:       24684084 kB\nMemFree: 1 kB\n") == 24684084 * 1024


def test_env_records_allow_listed_variables_and_never_secrets():
    environ = {
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "CUDA_VISIBLE_DEVICES": "1",
        "XLA_FLAGS": "--xla_gpu_deterministic_ops",
        "TF_SOME_TOKEN": "tok-123",
        "KERAS_API_KEY": "k-456",
        "AWS_SECRET_ACCESS_KEY": "aws-789",
        "HOME": "/root",
        "TF_VAR_db_host": "db.internal",  # Terraform input, not TensorFlow: never recorded
        "TF_CPP_MIN_LOG_LEVEL": "3",  # logging only
        "OMP_NUM_THREADS": "4",  # reported under threads instead
    }
    env = collect.env_info(environ)
    assert env.variables == {
        "CUDA_VISIBLE_DEVICES": "1",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "XLA_FLAGS": "--xla_gpu_deterministic_ops",
    }
    assert env.redacted == ["KERAS_API_KEY", "TF_SOME_TOKEN"]
    dumped = env.model_dump_json()
    for secret in ("tok-123", "k-456", "aws-789", "db.internal"):
        assert secret not in dumped


def test_env_records_the_keras_backends_variables():
    environ = {
        "KERAS_BACKEND": "openvino",
        "JAX_ENABLE_X64": "1",
        "XLA_FLAGS": "--xla_cpu_enable_fast_math=false",
        "OV_SETTING": "1",  # any OV_* variable
        "OVERLAY_DIR": "/x",  # no prefix of a backend's: not recorded
    }
    assert collect.env_info(environ).variables == {k: v for k, v in environ.items() if k != "OVERLAY_DIR"}


def test_threads_effective_counts_follow_tensorflow_precedence():
    def no_blas():
        return ["openblas 0.3.27 threads=2"], None

    env = {"TF_NUM_INTRAOP_THREADS": "3", "OMP_NUM_THREADS": "1"}
    t = collect.threads_info((0, 5), environ=env, blas=no_blas)
    assert (t.tf_intra_op, t.tf_inter_op) == (0, 5)
    assert t.tf_intra_op_effective == 3  # unset in tf.config, so the variable decides
    assert t.tf_inter_op_effective == 5  # an explicit setting wins
    assert t.variables == {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "3"}


def test_threads_without_tensorflow_are_absent_with_reason():
    t = collect.threads_info(None, "TensorFlow is not importable", environ={}, blas=lambda: (None, "no BLAS"))
    assert t.tf_intra_op is None and t.tf_intra_op_effective is None
    assert t.unavailable["tf_intra_op"] == "TensorFlow is not importable"
    assert t.unavailable["blas"] == "no BLAS"


def test_packages_find_the_distribution_that_provides_tensorflow():
    installed = {"tensorflow-cpu": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6", "rich": "15.0.0"}
    info = collect.packages_info(installed)
    assert info.tensorflow_distribution == "tensorflow-cpu"
    assert info.key == {
        "tensorflow-cpu": "2.21.0",
        "keras": "3.15.1",
        "tf-keras": None,
        "numpy": "2.4.6",
        "ml-dtypes": None,
        "h5py": None,
        "protobuf": None,
    }
    assert info.installed == installed


def test_installed_distributions_normalizes_names_and_first_on_path_wins():
    class Dist:
        def __init__(self, name, version):
            self.metadata, self.version = {"Name": name}, version

    found = collect.installed_distributions(
        lambda: [Dist("TF_Keras", "2.15.0"), Dist("tf-keras", "2.10.0"), Dist("NumPy", "1.26.4")]
    )
    assert found == {"numpy": "1.26.4", "tf-keras": "2.15.0"}
