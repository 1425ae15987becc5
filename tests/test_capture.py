"""capture() on this host with real TensorFlow, and in fresh processes with other environments."""

from __future__ import annotations

import json
import os
import platform
import random
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import tensorflow as tf
from envhelpers import capture_in_subprocess, keras_flavor_without_tensorflow

import envprint
from envprint.causes.diff import diff_fingerprints
from envprint.host.compat import onednn_default
from envprint.models import Fingerprint

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@pytest.fixture(scope="module")
def fp() -> Fingerprint:
    return envprint.capture()


def test_capture_reads_tensorflow_facts(fp):
    assert fp.tensorflow is not None
    assert fp.tensorflow.version == tf.__version__
    assert fp.tensorflow.op_determinism is False
    # This process's oneDNN: TF_ENABLE_ONEDNN_OPTS when set, else TensorFlow's default for this CPU
    # (on Linux x86-64 only with AVX-512 VNNI/BF16 or AMX: off on an AVX2-only EPYC). The rule itself is
    # checked against TensorFlow's own "oneDNN custom operations are on" line in tests/test_compat.py.
    env = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    expected = {"0": False, "1": True}.get(
        env,
        onednn_default(
            tuple(map(int, tf.__version__.split(".")[:2])), platform.system(), platform.machine(), fp.cpu.flags
        )[0],
    )
    assert (fp.tensorflow.onednn.env, fp.tensorflow.onednn.enabled, fp.tensorflow.onednn.unavailable) == (
        env,
        expected,
        {},
    )
    assert fp.packages.tensorflow_distribution in fp.packages.key
    assert any(d.device_type == "CPU" for d in fp.devices.physical)
    assert fp.threads.tf_intra_op == tf.config.threading.get_intra_op_parallelism_threads()
    assert fp.unavailable == {}


def test_the_session_runs_the_keras_its_test_pass_asked_for(fp):
    # scripts/test.sh names the Keras of each pass: a pass that ran another Keras would prove nothing.
    expected = os.environ.get("ENVPRINT_EXPECT_KERAS") or keras_flavor_without_tensorflow()
    assert fp.tensorflow.keras_flavor == expected


def test_capture_validates_against_committed_schema_and_round_trips(fp):
    data = json.loads(fp.model_dump_json())
    schema = json.loads((SCHEMAS / "fingerprint.v1.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert Fingerprint.model_validate(data) == fp


def process_state() -> tuple:
    """What capture() must not change: environment, TensorFlow settings, random generators."""
    return (
        dict(os.environ),
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
        random.getstate(),
        np.random.get_state()[1].tolist(),
        tf.config.experimental.tensor_float_32_execution_enabled(),
    )


def test_capture_leaves_the_process_as_it_found_it():
    before = process_state()
    envprint.capture()
    assert process_state() == before


def test_capture_reads_the_dtype_policy_the_user_set(keras):
    # keras.mixed_precision.set_global_policy: the one spelling Keras 2, tf_keras and Keras 3 all have.
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        assert envprint.capture().tensorflow.dtype_policy == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert envprint.capture().tensorflow.dtype_policy == "float32"


def test_seed_everything_is_recorded_and_seeds_all_generators():
    envprint.seed_everything(1234)
    first = (random.random(), np.random.rand(), float(tf.random.uniform(())))
    envprint.seed_everything(1234)
    assert (random.random(), np.random.rand(), float(tf.random.uniform(()))) == first
    seeds = envprint.capture().seeds
    assert (seeds.declared, seeds.source) == (1234, "seed_everything")
    assert envprint.capture(seed=7).seeds.declared == 7


def test_seed_everything_refuses_a_seed_tensorflow_cannot_take():
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\), got -1"):
        envprint.seed_everything(-1)


@pytest.mark.subprocess
def test_host_without_tensorflow_still_gets_a_fingerprint():
    fp = capture_in_subprocess(block_tensorflow=True)
    assert fp.tensorflow is None
    assert fp.unavailable["tensorflow"].startswith("TensorFlow is not importable")
    assert fp.devices.physical is None and "physical" in fp.devices.unavailable
    assert fp.threads.tf_intra_op is None
    assert fp.cpu.logical_cores == os.cpu_count()


@pytest.mark.subprocess
def test_secrets_in_the_environment_never_reach_the_fingerprint():
    fp = capture_in_subprocess(
        env={"AWS_SECRET_ACCESS_KEY": "aws-secret-value-1", "TF_SOME_TOKEN": "tf-token-value-2"}, block_tensorflow=True
    )
    text = fp.model_dump_json()
    assert "aws-secret-value-1" not in text and "tf-token-value-2" not in text
    assert "AWS_SECRET_ACCESS_KEY" not in fp.env.variables
    assert fp.env.redacted == ["TF_SOME_TOKEN"]


@pytest.mark.subprocess
def test_diff_of_two_real_captures_names_exactly_the_threads_and_onednn_differences():
    drop = ("TF_NUM_INTRAOP_THREADS", "TF_ENABLE_ONEDNN_OPTS")
    a = capture_in_subprocess(env={"TF_NUM_INTRAOP_THREADS": "2", "TF_ENABLE_ONEDNN_OPTS": "1"}, drop=drop)
    b = capture_in_subprocess(env={"TF_NUM_INTRAOP_THREADS": "1", "TF_ENABLE_ONEDNN_OPTS": "0"}, drop=drop)
    d = diff_fingerprints(a, b)
    changed = {e.path: (e.a, e.b, e.topic) for e in d.entries}
    assert changed == {
        "env.variables.TF_ENABLE_ONEDNN_OPTS": ("1", "0", "onednn"),
        "tensorflow.onednn.env": ("1", "0", "onednn"),
        "tensorflow.onednn.enabled": (True, False, "onednn"),
        "threads.variables.TF_NUM_INTRAOP_THREADS": ("2", "1", "threads"),
        "threads.tf_intra_op_effective": (2, 1, "threads"),
    }
    # Two settings, two numerics differences: the variables only asked for the effective states recorded beside them.
    assert [e.path for e in d.entries if e.numerics] == ["tensorflow.onednn.enabled", "threads.tf_intra_op_effective"]
