"""Package names as Python packaging compares them (PEP 503).

Owns: ``normalize_name``. Standard library only, so that the pins (``host.constraints``) and the
installed distributions (``host.collect``) name a package alike without importing
``packaging.utils``, whose import pulls in the wheel-tag machinery.
"""

from __future__ import annotations

import re


def normalize_name(name: str) -> str:
    """PEP 503 normalization, so 'tf_keras' and 'TF-Keras' are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()
