"""capture(): compose the host facts into a Fingerprint; this_host(): the same, never importing
TensorFlow (a report's host properties); seed_everything(): declare and apply a seed.

Owns: the order in which facts are read, and the declared seed. TensorFlow is imported only when
the caller asks for its facts (the default), and through ``envprint._tf`` only.
"""

from __future__ import annotations

import datetime as _dt
import os
import random
from typing import Any

from envprint import formats
from envprint._version import __version__
from envprint.errors import DependencyError
from envprint.host import backends, collect, cpu, gpu
from envprint.host.collect import why
from envprint.models import Device, DevicesInfo, Fingerprint, TensorflowInfo

# The seed declared through seed_everything() in this process, and how.
_declared: dict[str, object] = {"seed": None, "source": None}


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and TensorFlow/Keras, and record the seed.

    TensorFlow is seeded only if it is importable; the seed is recorded either way, so the next
    ``capture()`` (and ``envprint save``) carries it.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    from envprint import _tf

    try:
        _tf.import_tensorflow()
    except DependencyError:
        pass
    else:
        _tf.set_random_seed(seed)
    _declared.update(seed=seed, source="seed_everything")


def declared_seed() -> tuple[int | None, str | None]:
    return _declared["seed"], _declared["source"]  # type: ignore[return-value]


def _tensorflow(wanted: bool) -> tuple[Any, str | None]:
    """(TensorFlow, None), or (None, why it was not read): absent, not wanted, or not what runs Keras here."""
    from envprint import _tf

    backend_id, chosen_by = formats.selected_backend()
    if _tf.tensorflow_imported() or (wanted and backend_id == formats.DEFAULT_BACKEND):
        try:
            return _tf.import_tensorflow(), None
        except DependencyError as exc:
            return None, str(exc)
    if wanted:  # Keras runs on JAX, OpenVINO, ...: TensorFlow is no part of this process's numerics
        return None, f"not imported: Keras runs on the {backend_id!r} backend ({chosen_by})"
    return None, "not imported (capture(tensorflow=False))"


def _tensorflow_facts(
    tf: Any, installed: dict[str, str], dev_unavailable: dict[str, str]
) -> tuple[TensorflowInfo, list[Device] | None, tuple[int, int] | None, str | None]:
    """(TensorFlow's facts, its physical devices, its thread settings, why those settings are missing)."""
    from envprint._tf import runtime

    physical: list[Device] | None = None
    settings: tuple[int, int] | None = None
    reason = None
    tf_info = runtime.tensorflow_info(tf, installed)
    try:
        physical = runtime.physical_devices(tf)
    except Exception as exc:  # device enumeration can fail on a broken driver; keep the rest
        dev_unavailable["physical"] = why(exc)
    try:
        settings = runtime.thread_settings(tf)
    except Exception as exc:
        reason = why(exc)
    return tf_info, physical, settings, reason


def _devices(physical: list[Device] | None, installed: dict[str, str], dev_unavailable: dict[str, str]) -> DevicesInfo:
    """The devices: TensorFlow's, the NVIDIA driver's, and the numerics libraries mapped into this process."""
    nvidia = gpu.nvidia_facts()
    libs, libs_reason = gpu.loaded_libraries()
    if libs_reason:
        dev_unavailable["loaded_libraries"] = libs_reason
    dev_unavailable.update(nvidia.pop("unavailable", {}))
    return DevicesInfo(
        physical=physical,
        **nvidia,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        loaded_libraries=libs,
        nvidia_wheels=gpu.nvidia_wheels(installed),
        unavailable=dev_unavailable,
    )


def capture(*, tensorflow: bool = True, seed: int | None = None) -> Fingerprint:
    """The current host's Fingerprint. Never raises for a fact it cannot read.

    tensorflow: import TensorFlow to read its facts (False: read them only if it is already imported); where
    Keras runs on another backend (KERAS_BACKEND=jax, ...) TensorFlow is read only if already imported.
    seed: a seed to declare in the record (overrides the one from seed_everything()).
    """
    unavailable: dict[str, str] = {}
    installed = collect.installed_distributions()
    tf, tf_reason = _tensorflow(tensorflow)
    dev_unavailable: dict[str, str] = {}
    tf_info: TensorflowInfo | None = None
    physical: list[Device] | None = None
    settings: tuple[int, int] | None = None
    if tf is not None:
        tf_info, physical, settings, tf_reason = _tensorflow_facts(tf, installed, dev_unavailable)
    else:
        unavailable["tensorflow"] = tf_reason or "not importable"
        dev_unavailable["physical"] = unavailable["tensorflow"]
    devices = _devices(physical, installed, dev_unavailable)
    seed_value: int | None
    source: str | None
    if seed is not None:
        seed_value, source = seed, "argument"
    else:
        seed_value, source = declared_seed()
    return Fingerprint(
        envprint_version=__version__,
        created_at=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0),
        python=collect.python_info(),
        platform=collect.platform_info(),
        cpu=cpu.cpu_info(),
        packages=collect.packages_info(installed),
        tensorflow=tf_info,
        devices=devices,
        threads=collect.threads_info(settings, tf_reason),
        seeds=collect.seeds_info(seed_value, source),
        env=collect.env_info(),
        keras=backends.keras_info(installed),
        unavailable=unavailable,
    )


def this_host() -> Fingerprint:
    """This host for a report's properties (JUnit): TensorFlow's facts only if the process already imported it."""
    return capture(tensorflow=False)
