"""Session-wide models for the loading tests: built once, tiny, seeded, saved in every format.

TensorFlow and Keras are imported inside fixtures only (ruff TID253), so that collecting the
tests never imports TensorFlow and tests of a TensorFlow-free process stay truthful. Weights come
from seeded initializers, not ``keras.utils.set_random_seed``: building the fixtures leaves the
global random state of Python, NumPy and TensorFlow as the other tests found it.
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from envhelpers import ci_requested, keras_flavor_without_tensorflow

CUSTOM_MODULE = "envprint_test_custom_layers"


@dataclass
class Saved:
    """One Keras model and the files it was saved to, by format."""

    model: Any
    files: dict[str, Path] = field(default_factory=dict)

    def __getitem__(self, fmt: str) -> Path:
        return self.files[fmt]


@pytest.fixture(autouse=True)
def _cli_json_matches_the_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test runs with --json, stdout must hold one document valid under schemas/ (tests/jsoncheck.py)."""
    from jsoncheck import checked_invoke
    from typer.testing import CliRunner

    monkeypatch.setattr(CliRunner, "invoke", checked_invoke(CliRunner.invoke))


@pytest.fixture(scope="session")
def tf() -> ModuleType:
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed: the loading tests need a real one")
    from envprint._tf import import_tensorflow

    return import_tensorflow()


@pytest.fixture(scope="session")
def keras(tf: ModuleType) -> ModuleType:
    from envprint._tf import import_keras

    return import_keras()


@pytest.fixture(scope="session")
def flavor(tf: ModuleType) -> str:
    from envprint._tf import keras_flavor

    return keras_flavor(tf)


def _init(keras: ModuleType, seed: int) -> dict[str, Any]:
    # Random biases too: the TFLite converter drops all-zero biases, which would hide them from digests.
    return {
        "kernel_initializer": keras.initializers.GlorotUniform(seed=seed),
        "bias_initializer": keras.initializers.RandomNormal(seed=seed + 1000),
    }


def save_formats(
    tf: ModuleType, keras: ModuleType, flavor: str, model: Any, folder: Path, formats: tuple[str, ...]
) -> dict[str, Path]:
    """Save ``model`` as each of ``formats`` under ``folder``, the way users do on this Keras."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras 2 warns that HDF5 is legacy
        for fmt in formats:
            if fmt == "keras":
                out[fmt] = folder / "model.keras"
                model.save(out[fmt])
            elif fmt == "h5":
                out[fmt] = folder / "model.h5"
                model.save(out[fmt])
            elif fmt == "savedmodel":
                out[fmt] = folder / "saved_model"
                if flavor == "keras3":
                    model.export(str(out[fmt]), verbose=False)
                else:
                    tf.saved_model.save(model, str(out[fmt]))
            elif fmt == "tflite":
                out[fmt] = folder / "model.tflite"
                out[fmt].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return out


@pytest.fixture(scope="session")
def save(tf, keras, flavor) -> Callable[[Any, Path, tuple[str, ...]], dict[str, Path]]:
    """``save(model, folder, formats)``: ``save_formats`` bound to this session's TensorFlow and Keras."""
    return lambda model, folder, formats: save_formats(tf, keras, flavor, model, folder, formats)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def mlp(tf, keras, flavor, models_dir) -> Saved:
    """features (None, 4) float32 -> hidden Dense(8, relu) -> logits Dense(3), in all four formats."""
    inp = keras.Input((4,), name="features")
    x = keras.layers.Dense(8, activation="relu", name="hidden", **_init(keras, 1))(inp)
    out = keras.layers.Dense(3, name="logits", **_init(keras, 2))(x)
    model = keras.Model(inp, out, name="mlp")
    return Saved(
        model, save_formats(tf, keras, flavor, model, models_dir / "mlp", ("keras", "h5", "savedmodel", "tflite"))
    )


@pytest.fixture(scope="session")
def mlp_probes() -> dict[str, np.ndarray]:
    return {"features": np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)}


@pytest.fixture(scope="session")
def mlp_fixed_batch_tflite(tf, keras, flavor, mlp, models_dir) -> Path:
    """The MLP's own layers (same weights) behind an input whose batch is fixed at 1."""
    inp = keras.Input((4,), batch_size=1, name="features")
    x = inp
    for layer in mlp.model.layers[1:]:
        x = layer(x)
    model = keras.Model(inp, x, name="mlp_batch1")
    return save_formats(tf, keras, flavor, model, models_dir / "mlp_batch1", ("tflite",))["tflite"]


@pytest.fixture(scope="session")
def mlp_one_weight_changed(tf, keras, flavor, mlp, models_dir) -> Saved:
    """The MLP with one element of one weight moved to the next float32."""
    model = keras.models.clone_model(mlp.model)
    weights = [w.copy() for w in mlp.model.get_weights()]
    weights[2][0, 0] = np.nextafter(weights[2][0, 0], np.float32(np.inf))
    model.set_weights(weights)
    return Saved(model, save_formats(tf, keras, flavor, model, models_dir / "mlp_changed", ("keras", "tflite")))


@pytest.fixture(scope="session")
def two_inputs(tf, keras, flavor, models_dir) -> Saved:
    """Inputs 'a' (None, 3) and 'b' (None, 2) -> outputs 'score' (None, 2) and 'aux' (None, 1)."""
    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b")
    joined = keras.layers.Concatenate(name="join")([a, b])
    score = keras.layers.Dense(2, name="score", **_init(keras, 3))(joined)
    aux = keras.layers.Dense(1, name="aux", **_init(keras, 4))(joined)
    model = keras.Model([a, b], [score, aux], name="two_inputs")
    return Saved(model, save_formats(tf, keras, flavor, model, models_dir / "two_inputs", ("keras", "savedmodel")))


@pytest.fixture(scope="session")
def dict_inputs(tf, keras, flavor, models_dir) -> Saved:
    """Inputs given as a dict {'a': (None, 3), 'b': (None, 2)} -> output 'score' (None, 2)."""
    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b")
    score = keras.layers.Dense(2, name="score", **_init(keras, 5))(keras.layers.Concatenate()([a, b]))
    model = keras.Model({"a": a, "b": b}, score, name="dict_inputs")
    return Saved(model, save_formats(tf, keras, flavor, model, models_dir / "dict_inputs", ("keras",)))


@pytest.fixture(scope="session")
def embedding_dropout(tf, keras, flavor, models_dir) -> Saved:
    """tokens (None, 5) int32 -> Embedding(50, 4) -> mean -> Dropout(0.5) -> Dense(1)."""
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(50, 4, name="emb", embeddings_initializer=keras.initializers.RandomUniform(seed=5))(
        tokens
    )
    x = keras.layers.GlobalAveragePooling1D(name="mean")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    out = keras.layers.Dense(1, name="out", **_init(keras, 6))(x)
    model = keras.Model(tokens, out, name="embedding_dropout")
    return Saved(model, save_formats(tf, keras, flavor, model, models_dir / "embedding", ("keras", "savedmodel")))


@pytest.fixture(scope="session")
def lambda_model(tf, keras, flavor, models_dir) -> Saved:
    """A Python lambda inside a Lambda layer: code that safe mode must refuse to load."""
    inp = keras.Input((2,), name="x")
    out = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inp)
    model = keras.Model(inp, out)
    return Saved(model, save_formats(tf, keras, flavor, model, models_dir / "lambda", ("keras", "h5")))


@pytest.fixture(scope="session")
def custom_layer(keras, tf, flavor, models_dir, tmp_path_factory) -> tuple[Saved, Path]:
    """A model with an unregistered custom layer ``Doubler``, and the folder that holds its module.

    The module is importable only while the model is saved: afterwards ``sys.path`` and
    ``sys.modules`` are restored, so loading must be told where ``Doubler`` lives.
    """
    src = tmp_path_factory.mktemp("custom_src")
    (src / f"{CUSTOM_MODULE}.py").write_text(
        textwrap.dedent("""
        from envprint._tf import import_keras

        keras = import_keras()


        class Doubler(keras.layers.Layer):
            def call(self, x):
                return x * 2.0
    """)
    )
    sys.path.insert(0, str(src))
    try:
        module = importlib.import_module(CUSTOM_MODULE)
        inp = keras.Input((2,), name="x")
        model = keras.Model(inp, module.Doubler(name="doubler")(inp))
        saved = Saved(model, save_formats(tf, keras, flavor, model, models_dir / "custom", ("keras", "h5")))
    finally:
        sys.path.remove(str(src))
        sys.modules.pop(CUSTOM_MODULE, None)
        importlib.invalidate_caches()
    return saved, src


@pytest.fixture(scope="session")
def dropout_left_active(keras, save, models_dir) -> Path:
    """A model whose Dropout drops at inference too (a call with training=True left in the code)."""

    @keras.saving.register_keras_serializable(package="envprint_tests")
    class AlwaysDropout(keras.layers.Dropout):
        def call(self, inputs, training=None):
            return super().call(inputs, training=True)

    inp = keras.Input((4,), name="x")
    x = keras.layers.Dense(16, name="d1")(inp)
    x = AlwaysDropout(0.5, name="drop")(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="out")(x))
    return save(model, models_dir / "dropout_active", ("keras",))["keras"]


@pytest.fixture(scope="session")
def mlp_retrained(keras, mlp, save, models_dir) -> Path:
    """Another model: the MLP with its output kernel x 1.01, as .keras; its logits differ beyond any tolerance."""
    model = keras.models.clone_model(mlp.model)
    weights = mlp.model.get_weights()
    weights[2] = weights[2] * 1.01
    model.set_weights(weights)
    return save(model, models_dir / "mlp_retrained", ("keras",))["keras"]


@pytest.fixture(scope="session")
def mlp_recorded(mlp, tmp_path_factory) -> Path:
    """The MLP's .keras file with its envprint record beside it (copy them before changing either)."""
    import envprint

    model = tmp_path_factory.mktemp("mlp_recorded") / "model.keras"
    model.write_bytes(mlp["keras"].read_bytes())
    envprint.save(model)
    return model


# --------------------------------------------------------------------------- CI skip guard
#
# A test that skips everywhere tests nothing, and a skip line in pytest's summary is easy to miss
# (threadpoolctl's CI fails a run for the same reason). With CI set, every skip's reason must
# match an entry of tests/skip_allowlist.txt, where each entry says why that skip may happen in
# CI; any other skip fails the run, listed after the summary. Expected failures (xfail) are not skips.

SKIP_ALLOWLIST = Path(__file__).resolve().parent / "skip_allowlist.txt"
_skips: list[tuple[str, str]] = []  # (test id, reason) of this session's skips
_unallowed: list[tuple[str, str]] = []


def read_skip_allowlist(path: Path = SKIP_ALLOWLIST) -> list[re.Pattern[str]]:
    """The allowed skip reasons: one regular expression per entry (``re.search`` on the reason), ``#`` comments."""
    patterns = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            raise pytest.UsageError(f"{path}:{number}: not a regular expression ({exc}): {text!r}") from None
    return patterns


def unallowed_skips(skips: list[tuple[str, str]], allowed: list[re.Pattern[str]]) -> list[tuple[str, str]]:
    return [(nodeid, reason) for nodeid, reason in skips if not any(p.search(reason) for p in allowed)]


def pytest_sessionstart(session: pytest.Session) -> None:
    _skips.clear()
    _unallowed.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        _skips.append((report.nodeid, reason.removeprefix("Skipped: ")))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not ci_requested():
        return
    _unallowed[:] = unallowed_skips(_skips, read_skip_allowlist())
    if _unallowed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _unallowed:
        return
    terminalreporter.section("skips not allowed in CI", red=True)
    for nodeid, reason in _unallowed:
        terminalreporter.line(f"SKIPPED {nodeid}: {reason}")
    terminalreporter.line(
        f"CI is set: {len(_unallowed)} test(s) skipped for a reason not in tests/{SKIP_ALLOWLIST.name}; "
        "make them run here, or add the reason there with why CI may skip it",
        red=True,
    )


# --------------------------------------------------------------------------- one Keras only
#
# @pytest.mark.keras3 marks a test of what only Keras 3 does (model.export()'s second signature,
# its predict-function reuse, keras.config). The Keras 2 and tf_keras passes of scripts/test.sh
# deselect them (-m "not keras3"); run by hand under another Keras, they skip with the reason.


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    flavor = keras_flavor_without_tensorflow()
    if flavor in (None, "keras3"):
        return
    skip = pytest.mark.skip(reason=f"Keras 3 only; this session runs {flavor} (scripts/test.sh deselects it there)")
    for item in items:
        if item.get_closest_marker("keras3") is not None:
            item.add_marker(skip)


@pytest.fixture
def world_tmp() -> Any:
    """A fresh directory that any user may enter (0755), for tests run as an unprivileged user.

    pytest's own tmp_path sits under a 0700 directory of the user running pytest, which the
    unprivileged user of ``envhelpers.as_unprivileged`` could not even enter.
    """
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="envprint-unprivileged-"))
    folder.chmod(0o755)
    home = folder / "home"
    home.mkdir()
    home.chmod(0o777)  # the unprivileged user's HOME (Keras writes ~/.keras there)
    try:
        yield folder
    finally:
        for p in [folder, *folder.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o700)
        shutil.rmtree(folder)
