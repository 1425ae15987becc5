"""Probe arrays handed over in memory (by the Keras callback or ``envprint.mlflow``), written as a file
``envprint.save`` reads. Owns nothing else; imports NumPy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def write_probes(folder: Path, probes: Any) -> Path | None:
    """Probe arrays given in memory, written where ``envprint.save`` reads probe files."""
    if probes is None or isinstance(probes, (str, Path)):
        return Path(probes) if probes is not None else None
    if isinstance(probes, Mapping):
        path = folder / "probes.npz"
        np.savez(path, **{str(k): np.asarray(v) for k, v in probes.items()})  # type: ignore[arg-type]  # numpy's stub: **kwds may be allow_pickle
        return path
    path = folder / "probes.npy"
    np.save(path, np.asarray(probes), allow_pickle=False)
    return path
