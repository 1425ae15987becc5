"""Test-only Keras layers for the sweep and fleet tests: a real crash, a real stall.

``Crash`` calls os.abort() (SIGABRT: the process dies as from a segfault, no Python cleanup)
when ENVPRINT_TEST_CRASH_DIR is set: always, or only the first time (a marker file in that
directory remembers it). ``Stall`` sleeps ENVPRINT_TEST_STALL seconds when that is set. Unset,
both pass their input through, so the models save normally. Imported by worker processes
through ``--custom-objects fleet_layers:Crash`` (tests/ is on their sys.path or PYTHONPATH).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from envprint._tf import import_keras

keras = import_keras()


@keras.saving.register_keras_serializable(package="envprint_fleet_tests")
class Crash(keras.layers.Layer):
    def __init__(self, mode: str = "always", tag: str = "crash", **kwargs):
        super().__init__(**kwargs)
        self.mode, self.tag = mode, tag

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "tag": self.tag}

    def call(self, x):
        where = os.environ.get("ENVPRINT_TEST_CRASH_DIR")
        if where:
            marker = Path(where) / f"{self.tag}.crashed"
            if self.mode == "always" or not marker.exists():
                marker.touch()
                os.abort()
        return x


@keras.saving.register_keras_serializable(package="envprint_fleet_tests")
class Stall(keras.layers.Layer):
    def call(self, x):
        seconds = os.environ.get("ENVPRINT_TEST_STALL")
        if seconds:
            marker = os.environ.get("ENVPRINT_TEST_STALL_MARKER")
            if marker:
                Path(marker).touch()
            time.sleep(float(seconds))
        return x
