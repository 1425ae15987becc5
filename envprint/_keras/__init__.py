"""The door to Keras 3 on a backend other than TensorFlow (JAX, OpenVINO, PyTorch, NumPy).

Owns: importing the backend-neutral ``keras`` package (late, inside functions) for the backend
``envprint.formats.selected_backend`` names, and seeding it. Keras 3 on JAX or OpenVINO loads and
runs a .keras or .h5 file without TensorFlow, so this package must never import TensorFlow itself
(the import contract ``keras-door`` and tests/test_backends.py, which checks ``sys.modules``); under
the TensorFlow backend it hands over to ``envprint._tf``.
"""

from __future__ import annotations

from types import ModuleType

from envprint import formats
from envprint.errors import DependencyError


def import_keras() -> ModuleType:
    """Keras 3 on the backend this process selected, or DependencyError with the pip line."""
    backend_id, source = formats.selected_backend()
    try:
        import keras
    except ImportError as exc:  # the package, or its backend's (jax, openvino, torch)
        extra = " ".join(formats.backend(backend_id).distributions) if backend_id in formats.BACKEND_IDS else ""
        raise DependencyError(
            f"Keras on the {backend_id!r} backend (from {source}) is not importable ({exc}); "
            f"install it: pip install keras {extra}".rstrip()
        ) from None
    return keras


def set_random_seed(seed: int) -> None:
    """Seed Python, NumPy and the selected Keras backend, as save did (TensorFlow's through envprint._tf)."""
    backend_id, _ = formats.selected_backend()
    if backend_id == formats.DEFAULT_BACKEND:
        from envprint._tf import set_random_seed as seed_tensorflow

        seed_tensorflow(seed)
        return
    import_keras().utils.set_random_seed(seed)
