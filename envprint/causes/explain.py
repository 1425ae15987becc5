"""Explain a verify result: rank what differs by how well it accounts for what the outputs did.

Owns: the reading of the outputs' signature, the scoring of the cause registry (``causes``:
each cause's fit, remedy template and preflight rules), the values remedies are filled with
(``VALUES``), the conditions preflight rules name (``WHEN``), and ``preflight`` predictions from
two fingerprints alone. Pure: models in, ``Explanation`` models out. Must not import TensorFlow,
Keras or NumPy, nor any envprint module but ``models``, ``causes``, ``diff``, ``constraints``
(pure: the install line of a saved stack) and ``_tf.settings`` (pure data). Every number is in a table.

Scoring:
1. ``observe`` reads the outputs' signature, the most severe over all outputs: identical <
   reduction_order (ULP noise) < precision (large relative change, top-1 agrees) < semantic
   (top-1 flips, NaN/Inf, a missing or reshaped output) < dtype; 'stochastic' when two identical
   calls disagreed on this host.
2. Identity evidence is decisive (``IDENTITY_RULES``): a changed weights digest or edited probes
   score 1.0 (ties: registry order, so model_changed first); randomness at inference 0.97, above
   any environment cause (at most 0.95).
3. An environment cause scores ``FIT[observed] x grade`` over its numerics-relevant diff entries,
   best entry wins. grade is 1 for a setting; for a version, major 1 / minor 0.7 / patch 0.4 /
   other 0.3 (packaging.version). An entry diff marks as not numerics-relevant (an unrelated
   installed package, NumPy's own BLAS, a declared seed, a variable whose effective state is the
   same on both hosts) is never a cause.
4. Bit-identical outputs blame no environment cause: only identity findings are returned,
   usually none, and the renderer says the environment differences did not touch the probes.
5. Outputs differ and no cause reaches ``UNKNOWN_BELOW``: 'unknown' (0.5 with no candidate at
   all, else 0.3), whose remedy is ``envprint verify --investigate``.
6. After an investigation (``rerank``): a confirmed cause leads, a ruled-out one drops out.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from string import Formatter

from packaging.version import InvalidVersion, Version

from envprint._tf.settings import SETTINGS
from envprint.causes.diff import diff_fingerprints
from envprint.causes.registry import FIT_KINDS, ORDER, REGISTRY, absent
from envprint.host.constraints import install_command
from envprint.models import (
    PREFLIGHT_THRESHOLD,
    DiffEntry,
    Explanation,
    Fingerprint,
    FingerprintDiff,
    IdentityCheck,
    InvestigationResult,
    OutputComparison,
)

# fmt: off
# Observed signatures, least severe first; a cause's fit columns follow causes.FIT_KINDS.
SEVERITY = ("identical", "reduction_order", "precision", "semantic", "dtype")
OBSERVED_WORDS = {"reduction_order": "ULP-level noise", "precision": "a large relative change with top-1 agreeing",
                  "semantic": "top-1 flips, NaN/Inf or a changed output", "dtype": "a changed output dtype",
                  "stochastic": "outputs that vary between identical calls"}
# Largest max_ulp that still reads as reduction-order noise, by output dtype. float32: the
# measured noise (oneDNN 720, XLA 805 ULP) with headroom; bfloat16 has 8 mantissa bits.
NOISE_ULP = {"float16": 16, "bfloat16": 8, "float32": 4096, "float64": 1 << 32}
PRECISION_REL = 1e-3  # at or above: a precision change (TF32 ~1e-3, bfloat16 ~1e-2..1e-1)
UNKNOWN_BELOW = 0.3
# Distributions that TensorFlow's own requirements pin (numpy<2 on 2.15, protobuf>=6.31 on 2.21...):
# beside another TensorFlow, pinning one alone can break it; they are installed with the saved stack.
PINNED_BY_TENSORFLOW = frozenset(
    {"numpy", "h5py", "ml-dtypes", "protobuf", "keras", "tensorboard", "absl-py", "gast", "grpcio", "opt-einsum",
     "wrapt", "flatbuffers", "google-pasta", "astunparse", "libclang", "typing-extensions", "termcolor",
     "tensorflow-io-gcs-filesystem", "tensorflow-estimator", "setuptools", "six", "packaging", "requests"}
)
GRADE = {"major": 1.0, "minor": 0.7, "patch": 0.4, "other": 0.3}
CHANGE_WORDS = {"major": "a major change", "minor": "a minor release", "patch": "a patch release",
                "other": "a build change"}
# fmt: on


# --------------------------------------------------------------------------- what the outputs did


def _matches(path: str, patterns: str) -> bool:
    """fnmatch with alternatives: 'a.b|*X*'."""
    return any(fnmatchcase(path, p) for p in patterns.split("|"))


def _noise(o: OutputComparison) -> bool:
    limit = NOISE_ULP.get(o.obtained_dtype or o.expected_dtype or "")
    return limit is not None and o.max_ulp is not None and o.max_ulp <= limit and (o.max_rel or 0) < PRECISION_REL


# First match wins.
# fmt: off
CLASSIFY: tuple[tuple[str, Callable[[OutputComparison], bool]], ...] = (
    ("dtype", lambda o: bool(o.problem) and o.expected_dtype != o.obtained_dtype and None not in (o.expected_dtype, o.obtained_dtype)),
    ("semantic", lambda o: bool(o.problem)),
    ("identical", lambda o: o.n_differ == 0),
    ("semantic", lambda o: bool(o.nan_appeared or o.nan_vanished or o.inf_appeared or o.inf_vanished)),
    ("semantic", lambda o: o.top1_agreement is not None and o.top1_agreement < 1.0),
    ("reduction_order", _noise),
    ("semantic", lambda o: o.max_ulp is None and o.max_rel is None),  # integer or bool outputs changed
    ("precision", lambda o: True),
)
# fmt: on


def observe(outputs: list[OutputComparison]) -> str:
    """The most severe signature over all outputs (a kind from SEVERITY)."""
    kinds = [next(kind for kind, test in CLASSIFY if test(o)) for o in outputs]
    return max(kinds, key=SEVERITY.index, default="identical")


def _evidence(outputs: list[OutputComparison]) -> str:
    ulps = [o.max_ulp for o in outputs if o.max_ulp is not None]
    rels = [o.max_rel for o in outputs if o.max_rel is not None]
    top1 = [o.top1_agreement for o in outputs if o.top1_agreement is not None]
    nonfinite = sum(o.nan_appeared + o.nan_vanished + o.inf_appeared + o.inf_vanished for o in outputs)
    parts = [o.problem for o in outputs if o.problem]
    parts += [f"max {max(ulps)} ULP"] if ulps else []
    parts += [f"max rel {max(rels):.1e}"] if rels else []
    parts += [f"top-1 {min(top1):.1%}"] if top1 else []
    parts += [f"{nonfinite} NaN/Inf changed"] if nonfinite else []
    return ", ".join(parts) or "no element statistics"


# --------------------------------------------------------------------------- versions


def change(a: object, b: object) -> str:
    """How far a version moved: 'major', 'minor', 'patch' or 'other' (build, pre-release, unparsable)."""
    if a is None or b is None:
        return "major"  # installed on one side only
    try:
        ra, rb = Version(str(a)).release + (0, 0), Version(str(b)).release + (0, 0)
    except InvalidVersion:
        return "other"
    for part, x, y in zip(("major", "minor", "patch"), ra, rb, strict=False):
        if x != y:
            return part
    return "other"


def _deciding(cause: str, entries: list[DiffEntry]) -> list[DiffEntry]:
    decisive = [e for e in entries if e.path == REGISTRY[cause].decisive and None not in (e.a, e.b)]
    return decisive or entries


def _grade(cause: str, e: DiffEntry) -> float:
    return GRADE[change(e.a, e.b)] if REGISTRY[cause].graded else 1.0


def _fit(cause: str, e: DiffEntry, observed: str) -> float:
    """How well this kind of difference explains the observation, before grading."""
    row = next((fit for pattern, fit in REGISTRY[cause].path_fit if _matches(e.path, pattern)), REGISTRY[cause].fit)
    return row[FIT_KINDS.index(observed)]


# --------------------------------------------------------------------------- remedies


@dataclass(frozen=True)
class _Ctx:
    saved: Fingerprint
    identity: IdentityCheck
    current: Fingerprint | None = None
    stochastic_now: bool = False
    observed: str = "identical"
    changed: tuple[DiffEntry, ...] = ()  # every difference from the saved host, to read this host's values
    record: str | None = None  # the saved record as the diff names it, for a remedy to quote

    def now(self, path: str, saved: object) -> object:
        """This host's value at ``path``: the diff's when it differs, else the saved one."""
        return next((e.b for e in self.changed if e.path == path), saved)


def _fmt(v: object, path: str = "") -> str:
    return absent(path) if v is None else ", ".join(v) if isinstance(v, list) else str(v)


def _moved_to(e: DiffEntry) -> str:
    """'a -> b'; for two lists (CPU flags) only what was gained and lost."""
    if isinstance(e.a, list) and isinstance(e.b, list):
        return ", ".join([f"+{x}" for x in e.b if x not in e.a] + [f"-{x}" for x in e.a if x not in e.b])
    return f"{_fmt(e.a, e.path)} -> {_fmt(e.b, e.path)}"


def _package(e: DiffEntry, saved: Fingerprint) -> str | None:
    if e.path.startswith(("packages.key.", "packages.installed.")):
        return e.path.split(".", 2)[2]
    if e.path == "tensorflow.keras_version":
        return "tf-keras" if saved.tensorflow and saved.tensorflow.keras_flavor == "tf_keras" else "keras"
    return None


def _tensorflow_moved(c: _Ctx) -> tuple[object, object] | None:
    """(saved, this host's) TensorFlow versions when they differ, from the fingerprints alone."""
    saved = c.saved.tensorflow.version if c.saved.tensorflow else None
    here = c.now("tensorflow.version", saved)
    return (saved, here) if saved is not None and here is not None and here != saved else None


def _pins(c: _Ctx, entries: list[DiffEntry]) -> str:
    pins: dict[str, str] = {}
    drop: list[str] = []
    for e in entries:
        name = _package(e, c.saved) if e.numerics else None  # never pin what cannot change the numbers
        if name and e.a is None:
            drop.append(name)
        elif name:
            pins.setdefault(name, f"'{name}=={e.a}'")
    # Beside another TensorFlow, a package its requirements pin is installed with the saved stack, never alone.
    moved = _tensorflow_moved(c)
    together = [name for name in pins if moved and name in PINNED_BY_TENSORFLOW]
    rest = [pin for name, pin in pins.items() if name not in together]
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


def _tf_install(c: _Ctx, entries: list[DiffEntry]) -> str:
    dist = c.saved.packages.tensorflow_distribution or "tensorflow"
    version = c.saved.packages.key.get(dist) or (c.saved.tensorflow.version if c.saved.tensorflow else None)
    if version is None:
        return "install the TensorFlow recorded in the fingerprint (packages.key)"
    swap = next((e.b for e in entries if e.path == "packages.tensorflow_distribution" and e.b), None)
    return (f"pip uninstall -y {swap} && " if swap and swap != dist else "") + f"pip install '{dist}=={version}'"


# Settings whose saved value a line of code or a variable restores: path -> {saved value: remedy, "*": otherwise}.
# {call} is the tf.config call that sets the saved value (envprint._tf.settings), {a} the saved value.
# fmt: off
SETTING_WORDS: tuple[tuple[str, dict], ...] = (
    ("tensorflow.tensor_float_32", {False: "export NVIDIA_TF32_OVERRIDE=0 or {call}", "*": "{call}, unset NVIDIA_TF32_OVERRIDE"}),
    ("tensorflow.jit", {"": "{call}, and load without jit_compile=True", "*": "{call}"}),
    ("tensorflow.keras_flavor", {"tf_keras": "export TF_USE_LEGACY_KERAS=1", "*": "unset TF_USE_LEGACY_KERAS"}),
    ("tensorflow.keras_backend", {"*": "export KERAS_BACKEND={a}"}),
    ("env.variables.*", {None: "unset {name}", "*": "export {name}={quoted}"}),
)
# fmt: on
_CALLS = {
    s.path: s for s in SETTINGS.values() if s.path.startswith("tensorflow.") and s.path != "tensorflow.dtype_policy"
}


def _setting(e: DiffEntry) -> str | None:
    name = e.path.rsplit(".", 1)[1]
    call = next((s for pattern, s in _CALLS.items() if _matches(e.path, pattern)), None)
    words = call and call.words({name: e.a} if call.path.endswith("*") else e.a)
    by_value = next(
        (by for pattern, by in SETTING_WORDS if _matches(e.path, pattern)), {"*": "{call}"} if call else None
    )
    if by_value is None:
        return None
    key = e.a if isinstance(e.a, (str, bool, type(None))) and e.a in by_value else "*"
    return by_value[key].format(a=e.a, name=name, quoted=shlex.quote(str(e.a)), call=words)


def _settings(c: _Ctx, entries: list[DiffEntry]) -> str:
    return "; ".join(dict.fromkeys(f for f in map(_setting, entries) if f))


def _device(c: _Ctx, entries: list[DiffEntry]) -> str:
    d = c.saved.devices
    if d.physical is None and d.gpus is None:
        return "run on the devices the saved host had (envprint diff lists them)"
    gpus = [x.model or x.name for x in d.physical or [] if x.device_type == "GPU"] or [g.name for g in d.gpus or []]
    if not gpus:
        return "export CUDA_VISIBLE_DEVICES=-1 to run on the CPU like the saved host"
    return f"run on the saved GPU ({gpus[0]}): export CUDA_VISIBLE_DEVICES={d.cuda_visible_devices or '0'}"


def _seed_call(c: _Ctx, entries: list[DiffEntry]) -> str:
    seed = c.saved.seeds.declared
    if seed is None:
        return "envprint.seed_everything(SEED) before predicting"
    return f"{SETTINGS['seed'].words(seed)} before predicting, as on the saved host"


def _model_digest(c: _Ctx, entries: list[DiffEntry]) -> str:
    m = c.saved.model
    if m is None or not (digest := m.files.get(".") or m.weights_digest):
        return "see fingerprint.json"
    return f"{m.name}, {'sha256' if '.' in m.files else 'weights sha256'} {digest[:16]}…"


def _onednn_remedy(c: _Ctx, entries: list[DiffEntry]) -> str:
    """Put back the saved effective state, never the value this host already has."""
    o = c.saved.tensorflow.onednn if c.saved.tensorflow else None
    want = None if o is None else o.enabled if o.enabled is not None else o.default
    here = c.now("env.variables.TF_ENABLE_ONEDNN_OPTS", c.saved.env.variables.get("TF_ENABLE_ONEDNN_OPTS"))
    if want is None:  # the saved state is unknown: put back the saved variable
        saved_var = c.saved.env.variables.get("TF_ENABLE_ONEDNN_OPTS")
        if saved_var == here:
            return "run with the saved host's oneDNN setting (its state was not recorded; envprint diff lists the rest)"
        return (
            f"{'unset TF_ENABLE_ONEDNN_OPTS' if saved_var is None else f'export TF_ENABLE_ONEDNN_OPTS={saved_var}'} "
            "before TensorFlow is imported, as on the saved host"
        )
    flag, state = ("1", "on") if want else ("0", "off")
    if here == flag:
        return (
            f"TF_ENABLE_ONEDNN_OPTS is already {flag} here, yet oneDNN is not {state}: this CPU or TensorFlow "
            "build decides it; run on a host like the saved one, or accept the drift (verify --rtol)"
        )
    return f"export TF_ENABLE_ONEDNN_OPTS={flag} before TensorFlow is imported (the saved host ran with oneDNN {state})"


_THREAD_VARIABLES = {"intra": "TF_NUM_INTRAOP_THREADS", "inter": "TF_NUM_INTEROP_THREADS"}


def _threads(c: _Ctx, entries: list[DiffEntry]) -> str:
    """Set the thread counts that differ to the saved ones; a count this host already has is left alone."""
    counts = {
        key: e.a for key in _THREAD_VARIABLES for e in entries if e.path == SETTINGS[key].path and e.a is not None
    }
    if counts:
        env = " ".join(f"{_THREAD_VARIABLES[k]}={v}" for k, v in counts.items())
        calls = " and ".join(SETTINGS[k].words(v) for k, v in counts.items())
        return f"export {env}, or call {calls} before the first op"
    variables = {e.path.split(".", 2)[2]: e.a for e in entries if e.path.startswith("threads.variables.")}
    if variables:
        return "; ".join(
            f"unset {k}" if v is None else f"export {k}={shlex.quote(str(v))}" for k, v in variables.items()
        )
    return "run with the saved host's thread counts (envprint diff lists them)"


def _minor(version: object) -> tuple[int, int] | None:
    try:
        return Version(str(version)).release[:2] if version is not None else None  # type: ignore[return-value]
    except InvalidVersion:
        return None


def _keras(c: _Ctx, entries: list[DiffEntry]) -> str:
    """Restore the saved Keras in a way this host's TensorFlow can run.

    Keras 3 needs TensorFlow 2.16 or newer; Keras 2 must match TensorFlow's minor release, and
    beside TensorFlow 2.16+ it is the tf-keras package with TF_USE_LEGACY_KERAS=1. A pin that
    breaks the installed TensorFlow is never the remedy.
    """
    tf = c.saved.tensorflow
    saved_keras = tf.keras_version if tf else None
    tf_now = _minor(c.now("tensorflow.version", tf.version if tf else None))
    major = _major(saved_keras)
    if saved_keras is None or tf_now is None or major not in (2, 3):
        return "; ".join(p for p in (_pins(c, entries), _settings(c, entries)) if p)
    here = f"{tf_now[0]}.{tf_now[1]}"
    if major == 3 and tf_now < (2, 16):
        return (
            f"Keras 3 needs TensorFlow 2.16 or newer and this host has {here}: install the saved stack: "
            f"{_tf_install(c, entries)} 'keras=={saved_keras}'"
        )
    if major == 3:
        legacy = c.now("tensorflow.keras_flavor", tf.keras_flavor) == "tf_keras"
        return f"pip install 'keras=={saved_keras}'" + ("; unset TF_USE_LEGACY_KERAS" if legacy else "")
    same_minor = _minor(saved_keras) == tf_now
    if tf_now >= (2, 16):
        version = f"=={saved_keras}" if same_minor else f"~={here}.0"
        return (
            f"Keras 2 runs beside TensorFlow {here} as tf-keras: pip install 'tf-keras{version}' and export "
            f"TF_USE_LEGACY_KERAS=1; or install the saved TensorFlow: {_tf_install(c, entries)}"
        )
    if same_minor:
        return f"pip install 'keras=={saved_keras}'"
    return f"Keras {saved_keras} belongs to another TensorFlow than this host's {here}: {_tf_install(c, entries)}"


def _cuda(c: _Ctx, entries: list[DiffEntry]) -> str:
    b, driver = c.saved.tensorflow and c.saved.tensorflow.build, c.saved.devices.driver_version
    if driver is None and not (b and b.is_cuda_build):
        return "the saved host ran without CUDA: run on the CPU (export CUDA_VISIBLE_DEVICES=-1)"
    versions = f"driver {_fmt(driver)}, CUDA {_fmt(b and b.cuda_version)}, cuDNN {_fmt(b and b.cudnn_version)}"
    return f"match the saved CUDA stack: {versions}"


# Template name -> its value, from the saved fingerprint (and the cause's diff entries).
# fmt: off
VALUES: dict[str, Callable[[_Ctx, list[DiffEntry]], str]] = {
    "model_digest": _model_digest, "seed_call": _seed_call, "tf_install": _tf_install, "pins": _pins,
    "settings": _settings, "device": _device, "cuda": _cuda,
    "cuda_pins": lambda c, _: " ".join(["pip install"] + [f"'{k}=={v}'" for k, v in sorted(w.items())]) if (
        w := c.saved.devices.nvidia_wheels) else "",
    "sidecar_files": lambda c, _: " and ".join(c.identity.sidecar_files_changed) or "probes.npz and reference.npz",
    "stochastic_layers": lambda c, _: ", ".join(c.saved.model.stochastic_layers if c.saved.model else [])
                                      or "Dropout and noise layers",
    "python_version": lambda c, _: c.saved.python.version,
    "cpu_model": lambda c, _: _fmt(c.saved.cpu.model),
    "cpu_flags": lambda c, _: _fmt(c.saved.cpu.flags),
    "threads": _threads, "onednn": _onednn_remedy, "keras": _keras,
    "dtype_policy": lambda c, _: SETTINGS["dtype_policy"].words((c.saved.tensorflow and c.saved.tensorflow.dtype_policy)
                                                                or (c.saved.model and c.saved.model.dtype_policy) or "float32"),
}
# fmt: on


def _remedy(cause: str, entries: list[DiffEntry], ctx: _Ctx) -> str:
    """The cause's remedy template filled in from the saved fingerprint and the cause's diff entries."""
    parts = []
    for part in REGISTRY[cause].remedy:
        names = {name for _, name, _, _ in Formatter().parse(part) if name}
        parts.append(part.format(**{name: VALUES[name](ctx, entries) for name in names}))
    listing = f"envprint diff {shlex.quote(ctx.record)} --current" if ctx.record else "envprint diff RECORD --current"
    return "; ".join(p for p in parts if p) or f"match the saved host: {listing} lists it"


# --------------------------------------------------------------------------- explain (verify)

# Identity and randomness evidence: (cause, score, applies, reasoning). First match per cause.
# fmt: off
IDENTITY_RULES: tuple[tuple[str, float, Callable[[_Ctx], bool], str], ...] = (
    ("model_changed", 1.0, lambda c: c.identity.weights == "changed",
     "the weights digest differs from the saved one: these are not the weights that produced the reference"),
    ("model_changed", 0.6, lambda c: c.identity.weights == "unknown" and not _other_format(c) and bool(
        c.identity.files_changed or c.identity.files_missing),
     "the weights could not be compared and model files changed ({files}): this may not be the model that was saved"),
    # Notes, not causes: said only when the outputs are not bit-identical.
    ("model_other_format", 0.1, lambda c: c.observed != "identical" and _other_format(c),
     "the weights cannot be compared across formats (saved {scheme_saved}, this model {scheme_now}) and the inputs "
     "and outputs match: the outputs are the evidence"),
    ("probes_changed", 1.0, lambda c: bool(c.identity.sidecar_files_changed),
     "{sidecar_files} {match_verb} the sha256 in fingerprint.json: {edited} edited after save"),
    ("stochastic_inference", 0.97, lambda c: c.stochastic_now,
     "two identical predictions on this host disagreed: the model is random at inference, "
     "which explains differences without any environment change"),
    ("stochastic_inference", 0.7, lambda c: c.observed != "identical" and c.saved.self_check is not None
                                            and not c.saved.self_check.deterministic,
     "at save, two identical calls disagreed: the saved reference is one random draw"),
    ("model_file_rewritten", 0.05, lambda c: c.observed != "identical" and c.identity.weights == "same" and bool(
        c.identity.files_changed or c.identity.files_missing or c.identity.files_added),
     "model files changed ({files}) but the weights digest is the saved one: a re-save, not another model"),
)
# fmt: on


def _edited_files(files: list[str]) -> str:
    """What an edit of these record files changed, named: the probes, the reference, or the record."""
    if set(files) == {"probes.npz"}:
        return "the probes were"
    if set(files) == {"reference.npz"}:
        return "the reference was"
    if set(files) == {"probes.npz", "reference.npz"}:
        return "the probes and the reference were"
    return "the record was"


def _other_format(c: _Ctx) -> bool:
    """Weights hashed by two schemes (another format of the model) with the same interface (else 'changed')."""
    i = c.identity
    return (
        i.weights == "unknown"
        and None not in (i.weights_digest_scheme_saved, i.weights_digest_scheme_now)
        and (i.weights_digest_scheme_saved != i.weights_digest_scheme_now)
    )


def _file_names(identity: IdentityCheck) -> str:
    """The model's changed, missing and added files; '.' (a single-file model) by its name."""
    files = identity.files_changed + identity.files_missing + identity.files_added
    return ", ".join(identity.model_name or "the model file" if f == "." else f for f in files)


# Diff topics that are not environment causes: identity evidence comes from the IdentityCheck.
# Scored from the diff: the causes whose fit is a row (identity causes say why not).
SCORED = {cause for cause, c in REGISTRY.items() if not isinstance(c.fit, str)}


def _by_cause(entries: list[DiffEntry]) -> dict[str, list[DiffEntry]]:
    """The numerics-relevant differences of each cause scored from the diff."""
    out: dict[str, list[DiffEntry]] = {}
    for e in entries:
        if e.topic in SCORED and e.numerics:
            out.setdefault(e.topic, []).append(e)
    return out


def _reason(cause: str, e: DiffEntry, n: int, fit: float, observed: str, evidence: str) -> str:
    grade = f", {CHANGE_WORDS[change(e.a, e.b)]}" if REGISTRY[cause].graded else ""
    more = f"; +{n - 1} more" if n > 1 else ""
    fits = "typical of it" if fit >= 0.7 else "consistent with it" if fit >= 0.35 else "not typical of it"
    return (
        f"{REGISTRY[cause].title} changed ({e.path}: {_moved_to(e)}{grade}{more}): "
        f"what the outputs did, {OBSERVED_WORDS[observed]} ({evidence}), is {fits}"
    )


def _explanation(
    cause: str, score: float, reasoning: str, entries: list[DiffEntry], ctx: _Ctx, predicts: str | None = None
) -> Explanation:
    score = round(min(max(score, 0.0), 1.0), 3)
    return Explanation(
        cause=cause,
        score=score,
        reasoning=reasoning,
        fields=entries,
        remedy=_remedy(cause, entries, ctx),
        predicts=predicts,
    )


def _ranked(found: list[Explanation]) -> list[Explanation]:
    return sorted(found, key=lambda x: (-x.score, ORDER[x.cause]))


def explain(
    saved: Fingerprint,
    env: FingerprintDiff,
    identity: IdentityCheck,
    outputs: list[OutputComparison],
    stochastic_now: bool = False,
) -> list[Explanation]:
    """Likely causes of what verify observed, most likely first (scoring: the module docstring).

    ``env`` is diff_fingerprints(saved, current); ``stochastic_now`` whether two identical
    predictions disagreed on this host. Bit-identical outputs blame no environment difference:
    then only identity or randomness findings are returned, usually none.
    """
    observed = observe(outputs)
    ctx = _Ctx(
        saved, identity, stochastic_now=stochastic_now, observed=observed, changed=tuple(env.entries), record=env.a
    )
    words = {
        "files": _file_names(identity),
        "scheme_saved": identity.weights_digest_scheme_saved,
        "scheme_now": identity.weights_digest_scheme_now,
        "sidecar_files": ", ".join(identity.sidecar_files_changed),
        "match_verb": "no longer matches" if len(identity.sidecar_files_changed) == 1 else "no longer match",
        "edited": _edited_files(identity.sidecar_files_changed),
    }
    found: dict[str, Explanation] = {}
    for cause, score, applies, why in IDENTITY_RULES:
        if cause not in found and applies(ctx):
            found[cause] = _explanation(cause, score, why.format(**words), [], ctx)
    if observed == "identical":
        return _ranked(list(found.values()))
    seen = "stochastic" if stochastic_now else observed
    evidence = _evidence(outputs)
    for cause, entries in _by_cause(env.entries).items():
        score, best = max(
            ((_fit(cause, e, seen) * _grade(cause, e), e) for e in _deciding(cause, entries)), key=lambda t: t[0]
        )
        why = _reason(cause, best, len(entries), _fit(cause, best, seen), seen, evidence)
        found[cause] = _explanation(cause, score, why, entries, ctx)
    if max((x.score for x in found.values()), default=0.0) < UNKNOWN_BELOW:
        why = f"outputs differ ({evidence}) " + (
            "and no recorded difference accounts for it well"
            if found
            else "but neither the model, the probes nor any recorded environment fact changed"
        )
        found["unknown"] = _explanation("unknown", 0.3 if found else 0.5, why, [], ctx)
    return _ranked(list(found.values()))


def rerank(found: list[Explanation], investigation: list[InvestigationResult]) -> list[Explanation]:
    """The ranking after ``verify --investigate``: experiments outrank inference from differences.

    A cause that a restored setting confirmed leads (confirmed causes in score order); a cause
    whose every run was ruled out drops out; untestable and untried causes keep their place.
    """
    status: dict[str, set[str]] = {}
    for r in investigation:
        status.setdefault(r.cause, set()).add(r.status)
    confirmed = [x for x in found if "confirmed" in status.get(x.cause, ())]
    kept = [x for x in found if x not in confirmed and status.get(x.cause) != {"ruled_out"}]
    return confirmed + kept


# --------------------------------------------------------------------------- preflight (two fingerprints)


def _gpu(fp: Fingerprint | None) -> bool:
    return fp is not None and any(d.device_type == "GPU" for d in fp.devices.physical or [])


def _major(v: object) -> int | None:
    try:
        return Version(str(v)).major
    except InvalidVersion:
        return None


def _format(c: _Ctx) -> str | None:
    return c.saved.model.format if c.saved.model else None


def _moved(kind: str) -> Callable[[_Ctx, DiffEntry], bool]:
    return lambda c, e: change(e.a, e.b) == kind


# fmt: off
WHEN: dict[str, Callable[[_Ctx, DiffEntry], bool]] = {
    "any": lambda c, e: True,
    "gpu": lambda c, e: _gpu(c.saved) or _gpu(c.current),
    "gpu_off_to_on": lambda c, e: (_gpu(c.saved) or _gpu(c.current)) and e.a is False and e.b is True,
    "keras3_to_2": lambda c, e: _major(e.a) == 3 and _major(e.b) == 2,
    "keras3_to_2_file": lambda c, e: _major(e.a) == 3 and _major(e.b) == 2 and _format(c) in ("keras", "h5"),
    "keras_major_savedmodel": lambda c, e: {_major(e.a), _major(e.b)} == {2, 3} and _format(c) == "savedmodel",
    "keras2_to_3": lambda c, e: _major(e.a) == 2 and _major(e.b) == 3,
    "numpy1_to_2": lambda c, e: _major(e.a) == 1 and _major(e.b) == 2,
    "cpu_to_gpu": lambda c, e: not _gpu(c.saved) and _gpu(c.current),
    "gpu_to_cpu": lambda c, e: _gpu(c.saved) and not _gpu(c.current),
    "random_layers": lambda c, e: bool(c.saved.model and c.saved.model.stochastic_layers),
    **{kind: _moved(kind) for kind in GRADE},
}


def _predict(cause: str, e: DiffEntry, ctx: _Ctx) -> tuple[float, str, str]:
    words = {"a": _fmt(e.a, e.path), "b": _fmt(e.b, e.path), "path": e.path, "change": change(e.a, e.b)}
    words |= {"moved": _moved_to(e)}
    words |= {"a_onoff": "on" if e.a else "off", "b_onoff": "on" if e.b else "off", "format": f".{_format(ctx)}"}
    for rule in REGISTRY[cause].preflight:
        if _matches(e.path, rule.paths) and WHEN[rule.when](ctx, e):
            return rule.score * (_grade(cause, e) if rule.graded else 1.0), rule.text.format(**words), rule.predicts
    raise AssertionError(f"causes.REGISTRY[{cause!r}].preflight ends with a rule for any path")  # pragma: no cover


def preflight(saved: Fingerprint, current: Fingerprint, env: FingerprintDiff | None = None) -> list[Explanation]:
    """What to expect on ``current`` before predicting: each numerics-relevant difference and its effect.

    Same causes and remedies as ``explain``; ``score`` is how likely the difference changes the
    outputs, ``predicts`` what that change would be (ULP-level noise stays within tolerance),
    ``reasoning`` the expected effect, with a measurement where one was made. Of a cause's
    differences, the likeliest change beyond tolerance that reaches the gate speaks for it, else
    the likeliest change of any kind.
    """
    if env is None:
        env = diff_fingerprints(saved, current, "saved", "current host")
    ctx = _Ctx(saved, IdentityCheck(weights="unknown"), current=current, changed=tuple(env.entries), record=env.a)
    found = []
    if saved.self_check is not None and not saved.self_check.deterministic:
        why = "at save, two identical calls disagreed: verify will differ until inference is deterministic"
        found.append(_explanation("stochastic_inference", 0.9, why, [], ctx, "semantic"))
    for cause, entries in _by_cause(env.entries).items():
        score, text, predicts = max(
            (_predict(cause, e, ctx) for e in _deciding(cause, entries)),
            key=lambda t: (t[2] != "noise" and t[0] >= PREFLIGHT_THRESHOLD, t[0]),
        )
        more = f" (+{len(entries) - 1} more of this kind)" if len(entries) > 1 else ""
        found.append(_explanation(cause, score, text + more, entries, ctx, predicts))
    return _ranked(found)


def expect(saved: Fingerprint, current: Fingerprint, label_a: str, label_b: str) -> FingerprintDiff:
    """The diff of ``saved`` (A) and ``current`` (B) with what its differences predict on B."""
    env = diff_fingerprints(saved, current, label_a, label_b)
    return env.model_copy(update={"expectations": preflight(saved, current, env)})
