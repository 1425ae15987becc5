"""Verify reports built from fixed data: no timestamps, paths or host values, so that what they
render can be compared with golden files (tests/test_goldens.py) and shown in the README."""

from __future__ import annotations

import envprint.render.text  # noqa: F401  (Report's words: str(report))
from envprint.models import (
    DiffEntry,
    ErrorHistogram,
    Explanation,
    FingerprintDiff,
    IdentityCheck,
    OutputComparison,
    Report,
    WorstElement,
)

THREADS = DiffEntry(
    path="threads.tf_intra_op_effective", section="threads", status="changed", a=8, b=2, topic="threads", numerics=True
)
HOSTNAME = DiffEntry(
    path="platform.hostname", section="platform", status="changed", a="train-1", b="serve-7", topic="host",
    numerics=False,
)  # fmt: skip


def _histogram() -> ErrorHistogram:
    # ULP distances up to 2^20: wide enough that the tick labels of a log axis must not pile up.
    edges = [0, 1, 2, 4, 16, 256, 4096, 65536, 1048576, 2097152]
    return ErrorHistogram(
        ulp_edges=edges,
        ulp_counts=[10, 3, 5, 7, 9, 4, 2, 1, 1],
        rel_edges=[1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3],
        rel_counts=[2, 6, 9, 8, 4, 1],
        rel_zero=10,
        rel_skipped=3,
        sample_expected=[float(i) / 8 - 2 for i in range(32)],
        sample_obtained=[float(i) / 8 - 2 + (1e-5 if i % 3 else 0.0) for i in range(32)],
    )


def mismatch_report() -> Report:
    y = OutputComparison(
        name="y",
        status="mismatch",
        expected_dtype="float32",
        obtained_dtype="float32",
        expected_shape=[8, 3],
        obtained_shape=[8, 3],
        size=42,
        n_differ=32,
        n_out_of_tolerance=5,
        fraction_out_of_tolerance=5 / 42,
        max_abs=3.0e-4,
        max_rel=2.5e-3,
        max_ulp=1048577,
        mean_abs=4.0e-5,
        atol=1e-5,
        rtol=1e-5,
        rtol_needed=2.5e-3,
        atol_needed=3.0e-4,
        top1_agreement=0.875,
        worst=[
            WorstElement(index=[3, 1], obtained="0.1203", expected="0.1200", difference="0.0003"),
            WorstElement(index=[0, 2], obtained="-1.5002", expected="-1.5", difference="-0.0002"),
        ],
        error_histogram=_histogram(),
    )
    z = OutputComparison(
        name="z", status="identical", expected_dtype="int64", obtained_dtype="int64", expected_shape=[8],
        obtained_shape=[8], size=8, atol=0.0, rtol=0.0,
    )  # fmt: skip
    return Report(
        verdict="mismatch",
        model="m.keras",
        fingerprint="m.keras.envprint/fingerprint.json",
        identity=IdentityCheck(weights="same", model_name="m.keras"),
        outputs=[y, z],
        environment=FingerprintDiff(
            a="m.keras.envprint/fingerprint.json", b="current host", identical=False, entries=[THREADS, HOSTNAME]
        ),
        explanations=[
            Explanation(
                cause="threads",
                score=0.7,
                reasoning="intra-op threads changed 8 -> 2: reductions are summed in another order",
                fields=[THREADS],
                remedy="tf.config.threading.set_intra_op_parallelism_threads(8) before the model loads",
            )
        ],
    )


def identical_report() -> Report:
    z = OutputComparison(
        name="z", status="identical", expected_dtype="float32", obtained_dtype="float32", expected_shape=[8, 3],
        obtained_shape=[8, 3], size=24, atol=1e-5, rtol=1e-5,
    )  # fmt: skip
    return Report(
        verdict="identical",
        model="m.keras",
        fingerprint="m.keras.envprint/fingerprint.json",
        identity=IdentityCheck(weights="same", model_name="m.keras"),
        outputs=[z],
        environment=FingerprintDiff(
            a="m.keras.envprint/fingerprint.json", b="current host", identical=False, entries=[HOSTNAME]
        ),
    )
