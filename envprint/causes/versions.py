"""Version causes: TensorFlow, Keras, NumPy, any other package, Python.

Owns: their entries (graded by how far the version moved), the remedies that reinstall the saved
stack in a way this host's TensorFlow can run (``pins``, ``tf_install``, ``keras``), the
preflight conditions on versions (a Keras major across a file format, a newer Keras 3 file:
``host.compat.keras_can_load``, the rule the loader applies) and what to offer instead of a
restore (no process can swap an installed package: ``instead``).
Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from collections.abc import Callable

from envprint.causes.base import (
    GRADE,
    Cannot,
    Cause,
    DiffEntry,
    Family,
    Fingerprint,
    Planning,
    Rule,
    Scoring,
    change,
    major,
    minor,
)
from envprint.host.compat import keras_can_load
from envprint.host.constraints import install_command

VERSION_TEXT = "{path} {a} -> {b} ({change}): expect identical outputs or ULP-level noise"
VERSION_MAJOR = "{path} {a} -> {b} ({change}): a major change may change results beyond tolerance or fail to load"
# fmt: off
# Distributions that TensorFlow's own requirements pin (numpy<2 on 2.15, protobuf>=6.31 on 2.21...):
# beside another TensorFlow, pinning one alone can break it; they are installed with the saved stack.
PINNED_BY_TENSORFLOW = frozenset(
    {"numpy", "h5py", "ml-dtypes", "protobuf", "keras", "tensorboard", "absl-py", "gast", "grpcio", "opt-einsum",
     "wrapt", "flatbuffers", "google-pasta", "astunparse", "libclang", "typing-extensions", "termcolor",
     "tensorflow-io-gcs-filesystem", "tensorflow-estimator", "setuptools", "six", "packaging", "requests"}
)
# Which Keras runs, by its settings: saved value -> what puts it back ("*": any other value).
KERAS_SETTINGS: dict[str, dict[object, str]] = {
    "tensorflow.keras_flavor": {"tf_keras": "export TF_USE_LEGACY_KERAS=1", "*": "unset TF_USE_LEGACY_KERAS"},
    "tensorflow.keras_backend": {"*": "export KERAS_BACKEND={a}"},
}
# fmt: on


def _package(e: DiffEntry, saved: Fingerprint) -> str | None:
    if e.path.startswith(("packages.key.", "packages.installed.")):
        return e.path.split(".", 2)[2]
    if e.path == "tensorflow.keras_version":
        return "tf-keras" if saved.tensorflow and saved.tensorflow.keras_flavor == "tf_keras" else "keras"
    return None


def _tensorflow_moved(c: Scoring) -> tuple[object, object] | None:
    """(saved, this host's) TensorFlow versions when they differ, from the fingerprints alone."""
    saved = c.saved.tensorflow.version if c.saved.tensorflow else None
    here = c.now("tensorflow.version", saved)
    return (saved, here) if saved is not None and here is not None and here != saved else None


def pins(c: Scoring, entries: list[DiffEntry]) -> str:
    found: dict[str, str] = {}
    drop: list[str] = []
    for e in entries:
        name = _package(e, c.saved) if e.numerics else None  # never pin what cannot change the numbers
        if name and e.a is None:
            drop.append(name)
        elif name:
            found.setdefault(name, f"'{name}=={e.a}'")
    # Beside another TensorFlow, a package its requirements pin is installed with the saved stack, never alone.
    moved = _tensorflow_moved(c)
    together = [name for name in found if moved and name in PINNED_BY_TENSORFLOW]
    rest = [pin for name, pin in found.items() if name not in together]
    more = f" (and {len(rest) - 10} more: envprint diff lists them)" if len(rest) > 10 else ""
    parts = [f"pip install {' '.join(rest[:10])}{more}"] if rest else []
    line = " && ".join(parts + ([f"pip uninstall -y {' '.join(drop)}"] if drop else []))
    if not (together and moved):
        return line
    stack = (
        f"{', '.join(together)} {'is' if len(together) == 1 else 'are'} pinned by TensorFlow's own requirements "
        f"and TensorFlow differs ({moved[0]} saved, {moved[1]} here): install the saved stack together: "
        f"{install_command(c.saved, c.record or 'RECORD')}"
    )
    return f"{line}; {stack}" if line else stack


def tf_install(c: Scoring, entries: list[DiffEntry]) -> str:
    dist = c.saved.packages.tensorflow_distribution or "tensorflow"
    version = c.saved.packages.key.get(dist) or (c.saved.tensorflow.version if c.saved.tensorflow else None)
    if version is None:
        return "install the TensorFlow recorded in the fingerprint (packages.key)"
    swap = next((e.b for e in entries if e.path == "packages.tensorflow_distribution" and e.b), None)
    return (f"pip uninstall -y {swap} && " if swap and swap != dist else "") + f"pip install '{dist}=={version}'"


def _keras_settings(entries: list[DiffEntry]) -> str:
    words = []
    for e in entries:
        by_value = KERAS_SETTINGS.get(e.path)
        if by_value is not None:
            key = e.a if isinstance(e.a, (str, bool, type(None))) and e.a in by_value else "*"
            words.append(by_value[key].format(a=e.a))
    return "; ".join(dict.fromkeys(words))


def _keras(c: Scoring, entries: list[DiffEntry]) -> str:
    """Restore the saved Keras in a way this host's TensorFlow can run.

    Keras 3 needs TensorFlow 2.16 or newer; Keras 2 must match TensorFlow's minor release, and
    beside TensorFlow 2.16+ it is the tf-keras package with TF_USE_LEGACY_KERAS=1. A pin that
    breaks the installed TensorFlow is never the remedy.
    """
    tf = c.saved.tensorflow
    saved_keras = tf.keras_version if tf else None
    tf_now = minor(c.now("tensorflow.version", tf.version if tf else None))
    keras_major = major(saved_keras)
    if saved_keras is None or tf_now is None or keras_major not in (2, 3):
        return "; ".join(p for p in (pins(c, entries), _keras_settings(entries)) if p)
    here = f"{tf_now[0]}.{tf_now[1]}"
    if keras_major == 3 and tf_now < (2, 16):
        return (
            f"Keras 3 needs TensorFlow 2.16 or newer and this host has {here}: install the saved stack: "
            f"{tf_install(c, entries)} 'keras=={saved_keras}'"
        )
    if keras_major == 3:
        legacy = c.now("tensorflow.keras_flavor", tf.keras_flavor if tf else None) == "tf_keras"
        return f"pip install 'keras=={saved_keras}'" + ("; unset TF_USE_LEGACY_KERAS" if legacy else "")
    same_minor = minor(saved_keras) == tf_now
    if tf_now >= (2, 16):
        version = f"=={saved_keras}" if same_minor else f"~={here}.0"
        return (
            f"Keras 2 runs beside TensorFlow {here} as tf-keras: pip install 'tf-keras{version}' and export "
            f"TF_USE_LEGACY_KERAS=1; or install the saved TensorFlow: {tf_install(c, entries)}"
        )
    if same_minor:
        return f"pip install 'keras=={saved_keras}'"
    return f"Keras {saved_keras} belongs to another TensorFlow than this host's {here}: {tf_install(c, entries)}"


def _format(c: Scoring) -> str | None:
    return c.saved.model.format if c.saved.model else None


def _loads(c: Scoring, e: DiffEntry) -> str:
    """verify's own rule for this record's file under this host's Keras (host.compat.keras_can_load)."""
    fmt = _format(c)
    if fmt is None:  # a host's fingerprint (envprint show), no model: nothing to load
        return "loads"
    saved, here = (None if v is None else str(v) for v in (e.a, e.b))
    return keras_can_load(fmt, saved, here)[0]


def _moved(kind: str) -> Callable[[Scoring, DiffEntry], bool]:
    return lambda c, e: change(e.a, e.b) == kind


def _pins_instead(c: Planning, cause: str) -> str:
    return install_command(c.saved, c.fingerprint)


def _python_instead(c: Planning, cause: str) -> str:
    return f"uv venv --python {c.saved.python.version}, then in it: {install_command(c.saved, c.fingerprint)}"


# fmt: off
FAMILY = Family(
    causes={
        "tensorflow_version": Cause(
            "TensorFlow version", "reduction_order", (0.8, 0.6, 0.6, 0.5, 0.1),
            ("{tf_install}",),
            (Rule("*", "major", 0.9, VERSION_MAJOR, graded=True, predicts="semantic"),
             Rule("*", "any", 0.9, VERSION_TEXT, graded=True)),
            Cannot("another TensorFlow is installed here; a process cannot swap it", "pins"),
            # TensorFlow's own framework library: its version is TensorFlow's.
            paths=("tensorflow", "tensorflow.version", "tensorflow.git_version", "tensorflow.compiler_version",
                   "packages.tensorflow_distribution", "packages.key.tensorflow*", "packages.key.tf-nightly*",
                   "packages.key.intel-tensorflow", "devices.loaded_libraries.tensorflow_framework"),
            graded=True, decisive="tensorflow.version"),
        "keras_version": Cause(
            "Keras version", "semantic", (0.4, 0.5, 0.8, 0.7, 0.1),
            ("{keras}",),
            # What loads depends on the record's format: TensorFlow, not Keras, loads a SavedModel.
            (Rule("tensorflow.keras_version", "keras_newer_file", 0.9, "Keras {a} -> {b}: a {format} file saved by "
                  "Keras {a}, newer than this host's Keras {b}, which may refuse its config (measured: Keras 3.12 "
                  "cannot read a .keras file from Keras 3.15): expect a load failure", predicts="semantic"),
             Rule("*", "keras3_to_2_file", 1.0, "Keras 3 -> Keras 2 ({a} -> {b}): a Keras 3 {format} file cannot "
                  "load here; save a SavedModel (model.export) and verify that", predicts="semantic"),
             Rule("*", "keras_major_savedmodel", 0.1, "Keras {a} -> {b}: TensorFlow loads a SavedModel without "
                  "Keras: no effect of Keras itself expected"),
             Rule("*", "keras3_to_2", 0.9, "Keras 3 -> Keras 2 ({a} -> {b}): a Keras 3 .keras or .h5 file cannot "
                  "load here; a SavedModel can", predicts="semantic"),
             Rule("*", "keras2_to_3", 0.9, "Keras 2 -> Keras 3 ({a} -> {b}): layers were reimplemented and Keras 2 "
                  "files load through a compatibility path: expect ULP noise or more, or a load error",
                  predicts="semantic"),
             Rule("tensorflow.keras_flavor", "any", 0.9, "tf.keras is {a} at save and {b} here: another Keras "
                  "loads the model: expect load errors or changed numerics", predicts="semantic"),
             Rule("*", "major", 0.7, VERSION_MAJOR, graded=True, predicts="semantic"),
             Rule("*", "any", 0.7, VERSION_TEXT, graded=True)),
            Cannot("another Keras is installed here; a process cannot swap it", "pins"),
            paths=("tensorflow.keras_*", "packages.key.keras", "packages.key.tf-keras"),
            # Which Keras runs is the fact; an installed Keras package nothing imports (tf-keras beside
            # Keras 3, keras beside tf-keras) changes nothing and is listed only.
            effective=("tensorflow.keras_flavor", "tensorflow.keras_version", "tensorflow.keras_backend"),
            follows=("packages.key.keras", "packages.key.tf-keras"),
            graded=True, decisive="tensorflow.keras_version"),
        "numpy_version": Cause(
            "NumPy version", "semantic", (0.3, 0.3, 0.5, 0.4, 0.1),
            ("{pins}",),
            (Rule("*", "numpy1_to_2", 0.4, "NumPy {a} -> {b}: NumPy 2 changed scalar type promotion (NEP 50): "
                  "preprocessing in NumPy may change dtype and rounding", predicts="semantic"),
             Rule("*", "major", 0.4, VERSION_MAJOR, graded=True, predicts="semantic"),
             Rule("*", "any", 0.4, VERSION_TEXT, graded=True)),
            Cannot("another NumPy is installed here; a process cannot swap it", "pins"),
            paths=("packages.key.numpy",),
            # NumPy's own BLAS (mapped, and as threadpoolctl reports it with its threads): TensorFlow's
            # kernels never call it (Eigen and oneDNN do the model's math), so it is listed only.
            listed=("devices.loaded_libraries.openblas", "threads.blas"),
            graded=True, decisive="packages.key.numpy"),
        "other_package": Cause(
            "another package", "reduction_order", (0.15, 0.15, 0.2, 0.1, 0.05),
            ("{pins}",),
            (Rule("*", "any", 0.2, "{path} {a} -> {b} ({change}): not a framework package; unlikely to matter",
                  graded=True),),
            Cannot("other package versions are installed here", "pins"),
            paths=("packages.key.*",), listed=("packages.installed.*",),
            graded=True),
        "python_version": Cause(
            "Python version", "reduction_order", (0.15, 0.1, 0.2, 0.1, 0.05),
            ("run under Python {python_version} like the saved host (e.g. uv venv --python {python_version})",),
            (Rule("*", "any", 0.1, "Python {a} -> {b} ({change}): rarely changes numerics by itself", graded=True),),
            Cannot("this host runs another Python", "python"),
            paths=("python*",),
            graded=True, decisive="python.version"),
    },
    values={"tf_install": tf_install, "pins": pins, "keras": _keras,
            "python_version": lambda c, _: c.saved.python.version},
    when={
        "keras_newer_file": lambda c, e: _loads(c, e) == "may_fail",
        "keras3_to_2_file": lambda c, e: major(e.a) == 3 and major(e.b) == 2 and _loads(c, e) == "fails",
        "keras_major_savedmodel": lambda c, e: {major(e.a), major(e.b)} == {2, 3} and _format(c) == "savedmodel",
        "keras3_to_2": lambda c, e: major(e.a) == 3 and major(e.b) == 2,
        "keras2_to_3": lambda c, e: major(e.a) == 2 and major(e.b) == 3,
        "numpy1_to_2": lambda c, e: major(e.a) == 1 and major(e.b) == 2,
        **{kind: _moved(kind) for kind in GRADE},
    },
    instead={"pins": _pins_instead, "python": _python_instead},
)
# fmt: on
