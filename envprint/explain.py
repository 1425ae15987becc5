"""Explain a verify result: rank what differs by how well it accounts for what the outputs did.

Owns: the cause catalogue (title, numeric signature, fit to each observed signature, remedy
template), the reading of the outputs' signature, the scoring, and ``preflight`` predictions from
two fingerprints alone. Pure: models in, ``Explanation`` models out. Must not import TensorFlow,
Keras or NumPy, nor any envprint module but ``models`` and ``diff``. Every number is in a table.

Scoring:
1. ``observe`` reads the outputs' signature, the most severe over all outputs: identical <
   reduction_order (ULP noise) < precision (large relative change, top-1 agrees) < semantic
   (top-1 flips, NaN/Inf, a missing or reshaped output) < dtype; 'stochastic' when two identical
   calls disagreed on this host.
2. Identity evidence is decisive (``IDENTITY_RULES``): a changed weights digest or edited probes
   score 1.0 (ties: catalogue order, so model_changed first); randomness at inference 0.97, above
   any environment cause (at most 0.95).
3. An environment cause scores ``FIT[observed] x grade`` over its diff entries, best entry wins.
   grade is 1 for a setting; for a version, major 1 / minor 0.7 / patch 0.4 / other 0.3
   (packaging.version); an entry diff marks as not numerics-relevant counts half.
4. Bit-identical outputs blame no environment cause: only identity findings are returned,
   usually none, and the renderer says the environment differences did not touch the probes.
5. Outputs differ and no cause reaches ``UNKNOWN_BELOW``: 'unknown' (0.5 with no candidate at
   all, else 0.3), whose remedy is ``envprint verify --investigate``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from string import Formatter

from packaging.version import InvalidVersion, Version

from .diff import diff_fingerprints
from .models import DiffEntry, Explanation, Fingerprint, FingerprintDiff, IdentityCheck, OutputComparison

# fmt: off
# Observed signatures, least severe first; FIT columns follow FIT_KINDS.
SEVERITY = ("identical", "reduction_order", "precision", "semantic", "dtype")
FIT_KINDS = ("reduction_order", "precision", "semantic", "dtype", "stochastic")
OBSERVED_WORDS = {"reduction_order": "ULP-level noise", "precision": "a large relative change with top-1 agreeing",
                  "semantic": "top-1 flips, NaN/Inf or a changed output", "dtype": "a changed output dtype",
                  "stochastic": "outputs that vary between identical calls"}
# Largest max_ulp that still reads as reduction-order noise, by output dtype. float32: the
# measured noise (oneDNN 720, XLA 805 ULP) with headroom; bfloat16 has 8 mantissa bits.
NOISE_ULP = {"float16": 16, "bfloat16": 8, "float32": 4096, "float64": 1 << 32}
PRECISION_REL = 1e-3  # at or above: a precision change (TF32 ~1e-3, bfloat16 ~1e-2..1e-1)
UNKNOWN_BELOW = 0.3
GRADE = {"major": 1.0, "minor": 0.7, "patch": 0.4, "other": 0.3}
CHANGE_WORDS = {"major": "a major change", "minor": "a minor release", "patch": "a patch release",
                "other": "a build change"}
# The entry that decides a version cause's grade when both sides have it: a distribution swap
# (tensorflow -> tensorflow-cpu) leaves packages.key.tensorflow on one side only, not a major change.
VERSION_PATH = {"tensorflow_version": "tensorflow.version", "keras_version": "tensorflow.keras_version",
                "python_version": "python.version"}
NOT_NUMERICS = 0.5  # weight of a diff entry that diff.py marks numerics=False
# fmt: on


@dataclass(frozen=True)
class Cause:
    title: str
    signature: str  # what it typically does: semantic, reduction_order, precision, stochastic or identity
    fit: tuple[float, ...]  # per FIT_KINDS: how well it explains that observation; () for identity causes
    graded: bool  # a version: fit is scaled by GRADE
    remedy: tuple[str, ...]  # parts joined by '; ', {names} filled from VALUES, empty parts dropped


# Dict order is the tie-break order. fit columns: reduction_order, precision, semantic, dtype, stochastic.
# fmt: off
CATALOGUE: dict[str, Cause] = {
    "model_changed": Cause("the model is not the one fingerprinted", "semantic", (), False, (
        "this is not the model that was fingerprinted: deploy the saved model file ({model_digest}) "
        "or re-run envprint save on the new one",)),
    "model_file_rewritten": Cause("model files rewritten, weights identical", "identity", (), False, (
        "no action needed: the weights are the saved ones",)),
    "probes_changed": Cause("probe or reference arrays edited after save", "identity", (), False, (
        "restore {sidecar_files} from the saved sidecar (fingerprint.json holds their sha256), "
        "or re-run envprint save on the training host",)),
    "stochastic_inference": Cause("a random layer is active at inference", "stochastic", (), False, (
        "call the model with training=False (model.predict(x) or model(x, training=False))",
        "remove any call with training=True on {stochastic_layers}", "or seed random ops: {seed_call}")),
    "tensorflow_version": Cause("TensorFlow version", "reduction_order", (0.8, 0.6, 0.6, 0.5, 0.1), True, (
        "{tf_install}",)),
    "keras_version": Cause("Keras version", "semantic", (0.4, 0.5, 0.8, 0.7, 0.1), True, ("{pins}", "{settings}")),
    "numpy_version": Cause("NumPy version", "semantic", (0.3, 0.3, 0.5, 0.4, 0.1), True, ("{pins}",)),
    "python_version": Cause("Python version", "reduction_order", (0.15, 0.1, 0.2, 0.1, 0.05), True, (
        "run under Python {python_version} like the saved host (e.g. uv venv --python {python_version})",)),
    "other_package": Cause("another package", "reduction_order", (0.15, 0.15, 0.2, 0.1, 0.05), True, ("{pins}",)),
    "cuda_stack": Cause("CUDA stack", "reduction_order", (0.75, 0.4, 0.2, 0.05, 0.1), False, (
        "{cuda}", "{cuda_pins}")),
    "device": Cause("device", "reduction_order", (0.8, 0.7, 0.2, 0.1, 0.1), False, ("{device}",)),
    "cpu_isa": Cause("CPU model or instruction set", "reduction_order", (0.8, 0.3, 0.1, 0.05, 0.05), False, (
        "run on a CPU like the saved host ({cpu_model}; flags {cpu_flags})",
        "or accept the drift: verify --rtol, or re-run envprint save on this host")),
    "threads": Cause("thread counts", "reduction_order", (0.5, 0.15, 0.05, 0.0, 0.1), False, (
        "export TF_NUM_INTRAOP_THREADS={intra} TF_NUM_INTEROP_THREADS={inter}, or call "
        "tf.config.threading.set_intra_op_parallelism_threads({intra}) and "
        "set_inter_op_parallelism_threads({inter}) before the first op",)),
    "onednn": Cause("oneDNN setting", "reduction_order", (0.9, 0.3, 0.1, 0.05, 0.05), False, (
        "export TF_ENABLE_ONEDNN_OPTS={onednn_flag} before TensorFlow is imported "
        "(the saved host ran with oneDNN {onednn_state})",)),
    "determinism_settings": Cause("determinism or XLA settings", "reduction_order", (0.85, 0.3, 0.1, 0.05, 0.1),
                                  False, ("{settings}",)),
    "dtype_policy": Cause("Keras dtype policy", "precision", (0.2, 0.95, 0.85, 0.95, 0.05), False, (
        "keras.mixed_precision.set_global_policy('{dtype_policy}') before loading the model",)),
    "seed": Cause("declared seed", "stochastic", (0.05, 0.05, 0.05, 0.05, 0.6), False, ("{seed_call}", "{settings}")),
    "environment": Cause("environment variable", "reduction_order", (0.2, 0.2, 0.2, 0.1, 0.1), False, ("{settings}",)),
    "unknown": Cause("no recorded difference explains it", "semantic", (), False, (
        "run envprint verify --investigate",)),
}
# Per-entry fit overrides: TF32 is a precision change, not a reduction-order one.
PATH_FIT = (("tensorflow.tensor_float_32|env.variables.NVIDIA_TF32_OVERRIDE", (0.4, 0.9, 0.2, 0.05, 0.1)),)
# fmt: on
_ORDER = {cause: i for i, cause in enumerate(CATALOGUE)}


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
    decisive = [e for e in entries if e.path == VERSION_PATH.get(cause) and None not in (e.a, e.b)]
    return decisive or entries


def _grade(cause: str, e: DiffEntry) -> float:
    g = GRADE[change(e.a, e.b)] if CATALOGUE[cause].graded else 1.0
    return g if e.numerics else g * NOT_NUMERICS


def _fit(cause: str, e: DiffEntry, observed: str) -> float:
    """How well this kind of difference explains the observation, before grading."""
    row = next((fit for pattern, fit in PATH_FIT if _matches(e.path, pattern)), CATALOGUE[cause].fit)
    return row[FIT_KINDS.index(observed)]


# --------------------------------------------------------------------------- remedies


@dataclass(frozen=True)
class _Ctx:
    saved: Fingerprint
    identity: IdentityCheck
    current: Fingerprint | None = None
    stochastic_now: bool = False
    observed: str = "identical"


def _fmt(v: object) -> str:
    return "(none)" if v is None else ", ".join(v) if isinstance(v, list) else str(v)


def _moved_to(e: DiffEntry) -> str:
    """'a -> b'; for two lists (CPU flags) only what was gained and lost."""
    if isinstance(e.a, list) and isinstance(e.b, list):
        return ", ".join([f"+{x}" for x in e.b if x not in e.a] + [f"-{x}" for x in e.a if x not in e.b])
    return f"{_fmt(e.a)} -> {_fmt(e.b)}"


def _package(e: DiffEntry, saved: Fingerprint) -> str | None:
    if e.path.startswith(("packages.key.", "packages.installed.")):
        return e.path.split(".", 2)[2]
    if e.path == "tensorflow.keras_version":
        return "tf-keras" if saved.tensorflow and saved.tensorflow.keras_flavor == "tf_keras" else "keras"
    return None


def _pins(c: _Ctx, entries: list[DiffEntry]) -> str:
    pins: dict[str, str] = {}
    drop: list[str] = []
    for e in sorted(entries, key=lambda e: not e.numerics):
        name = _package(e, c.saved)
        if name and e.a is None:
            drop += [name] if e.numerics else []  # never advise removing what the host merely has besides
        elif name:
            pins.setdefault(name, f"'{name}=={e.a}'")
    shown = list(pins.values())[:10]
    more = f" (and {len(pins) - 10} more: envprint diff lists them)" if len(pins) > 10 else ""
    parts = [f"pip install {' '.join(shown)}{more}"] if shown else []
    return " && ".join(parts + ([f"pip uninstall -y {' '.join(drop)}"] if drop else []))


def _tf_install(c: _Ctx, entries: list[DiffEntry]) -> str:
    dist = c.saved.packages.tensorflow_distribution or "tensorflow"
    version = c.saved.packages.key.get(dist) or (c.saved.tensorflow.version if c.saved.tensorflow else None)
    if version is None:
        return "install the TensorFlow recorded in the fingerprint (packages.key)"
    swap = next((e.b for e in entries if e.path == "packages.tensorflow_distribution" and e.b), None)
    return (f"pip uninstall -y {swap} && " if swap and swap != dist else "") + f"pip install '{dist}=={version}'"


# Settings whose saved value a line of code or a variable restores: path -> {saved value: remedy, "*": otherwise}.
# fmt: off
SETTINGS: tuple[tuple[str, dict], ...] = (
    ("tensorflow.op_determinism", {True: "tf.config.experimental.enable_op_determinism()",
                                   "*": "do not enable op determinism (no enable_op_determinism(), unset TF_DETERMINISTIC_OPS)"}),
    ("tensorflow.tensor_float_32", {False: "export NVIDIA_TF32_OVERRIDE=0 or "
                                           "tf.config.experimental.enable_tensor_float_32_execution(False)",
                                    "*": "tf.config.experimental.enable_tensor_float_32_execution(True), unset NVIDIA_TF32_OVERRIDE"}),
    ("tensorflow.jit", {"": "tf.config.optimizer.set_jit(False), and load without jit_compile=True",
                        "*": "tf.config.optimizer.set_jit('{a}')"}),
    ("tensorflow.grappler.*", {"*": "tf.config.optimizer.set_experimental_options({{'{name}': {a}}})"}),
    ("tensorflow.keras_flavor", {"tf_keras": "export TF_USE_LEGACY_KERAS=1", "*": "unset TF_USE_LEGACY_KERAS"}),
    ("tensorflow.keras_backend", {"*": "export KERAS_BACKEND={a}"}),
    ("env.variables.*", {None: "unset {name}", "*": "export {name}={quoted}"}),
)
# fmt: on


def _setting(e: DiffEntry) -> str | None:
    for pattern, by_value in SETTINGS:
        if _matches(e.path, pattern):
            key = e.a if isinstance(e.a, (str, bool, type(None))) and e.a in by_value else "*"
            return by_value[key].format(a=e.a, name=e.path.rsplit(".", 1)[1], quoted=shlex.quote(str(e.a)))
    return None


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
    return f"envprint.seed_everything({seed}) before predicting, as on the saved host"


def _model_digest(c: _Ctx, entries: list[DiffEntry]) -> str:
    m = c.saved.model
    if m is None or not (digest := m.files.get(".") or m.weights_digest):
        return "see fingerprint.json"
    return f"{m.name}, {'sha256' if '.' in m.files else 'weights sha256'} {digest[:16]}…"


def _onednn(c: _Ctx) -> bool | None:
    o = c.saved.tensorflow.onednn if c.saved.tensorflow else None
    return None if o is None else o.enabled if o.enabled is not None else o.default


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
    "intra": lambda c, _: _fmt(c.saved.threads.tf_intra_op_effective or c.saved.threads.cpu_count),
    "inter": lambda c, _: _fmt(c.saved.threads.tf_inter_op_effective or c.saved.threads.cpu_count),
    "onednn_flag": lambda c, _: {True: "1", False: "0"}.get(_onednn(c), "1"),
    "onednn_state": lambda c, _: {True: "on", False: "off"}.get(_onednn(c), "unknown; 1 is TensorFlow's default on x86 Linux"),
    "dtype_policy": lambda c, _: (c.saved.tensorflow and c.saved.tensorflow.dtype_policy)
                                 or (c.saved.model and c.saved.model.dtype_policy) or "float32",
}
# fmt: on


def _remedy(cause: str, entries: list[DiffEntry], ctx: _Ctx) -> str:
    """The cause's remedy template filled in from the saved fingerprint and the cause's diff entries."""
    parts = []
    for part in CATALOGUE[cause].remedy:
        names = {name for _, name, _, _ in Formatter().parse(part) if name}
        parts.append(part.format(**{name: VALUES[name](ctx, entries) for name in names}))
    return "; ".join(p for p in parts if p) or "match the saved host: envprint diff FINGERPRINT --current lists it"


# --------------------------------------------------------------------------- explain (verify)

# Identity and randomness evidence: (cause, score, applies, reasoning). First match per cause.
# fmt: off
IDENTITY_RULES: tuple[tuple[str, float, Callable[[_Ctx], bool], str], ...] = (
    ("model_changed", 1.0, lambda c: c.identity.weights == "changed",
     "the weights digest differs from the saved one: these are not the weights that produced the reference"),
    ("model_changed", 0.6, lambda c: c.identity.weights == "unknown" and bool(c.identity.files_changed
                                                                              or c.identity.files_missing),
     "the weights could not be compared and model files changed ({files}): this may not be the model that was saved"),
    ("probes_changed", 1.0, lambda c: bool(c.identity.sidecar_files_changed),
     "{sidecar_files} no longer match the sha256 in fingerprint.json: the reference was edited after save"),
    ("stochastic_inference", 0.97, lambda c: c.stochastic_now,
     "two identical predictions on this host disagreed: the model is random at inference, "
     "which explains differences without any environment change"),
    ("stochastic_inference", 0.7, lambda c: c.observed != "identical" and c.saved.self_check is not None
                                            and not c.saved.self_check.deterministic,
     "at save, two identical calls disagreed: the saved reference is one random draw"),
    ("model_file_rewritten", 0.05, lambda c: c.identity.weights == "same" and bool(
        c.identity.files_changed or c.identity.files_missing or c.identity.files_added),
     "model files changed ({files}) but the weights digest is the saved one: a re-save, not another model"),
)
# fmt: on
# Diff topics that are not environment causes: identity evidence comes from the IdentityCheck.
NOT_ENVIRONMENT = {"context", "model_changed", "model_file_rewritten", "probes_changed", "stochastic_inference"}


def _by_cause(entries: list[DiffEntry], numerics_only: bool = False) -> dict[str, list[DiffEntry]]:
    out: dict[str, list[DiffEntry]] = {}
    for e in entries:
        if e.topic in CATALOGUE and e.topic not in NOT_ENVIRONMENT and (e.numerics or not numerics_only):
            out.setdefault(e.topic, []).append(e)
    return out


def _reason(cause: str, e: DiffEntry, n: int, fit: float, observed: str, evidence: str) -> str:
    grade = f", {CHANGE_WORDS[change(e.a, e.b)]}" if CATALOGUE[cause].graded else ""
    more = f"; +{n - 1} more" if n > 1 else ""
    fits = "typical of it" if fit >= 0.7 else "consistent with it" if fit >= 0.35 else "not typical of it"
    return (
        f"{CATALOGUE[cause].title} changed ({e.path}: {_moved_to(e)}{grade}{more}): "
        f"{OBSERVED_WORDS[observed]} ({evidence}) is {fits}"
    )


def _explanation(cause: str, score: float, reasoning: str, entries: list[DiffEntry], ctx: _Ctx) -> Explanation:
    score = round(min(max(score, 0.0), 1.0), 3)
    return Explanation(
        cause=cause, score=score, reasoning=reasoning, fields=entries, remedy=_remedy(cause, entries, ctx)
    )


def _ranked(found: list[Explanation]) -> list[Explanation]:
    return sorted(found, key=lambda x: (-x.score, _ORDER[x.cause]))


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
    ctx = _Ctx(saved, identity, stochastic_now=stochastic_now, observed=observed)
    words = {
        "files": ", ".join(identity.files_changed + identity.files_missing + identity.files_added),
        "sidecar_files": ", ".join(identity.sidecar_files_changed),
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


# --------------------------------------------------------------------------- preflight (two fingerprints)


def _gpu(fp: Fingerprint | None) -> bool:
    return fp is not None and any(d.device_type == "GPU" for d in fp.devices.physical or [])


def _major(v: object) -> int | None:
    try:
        return Version(str(v)).major
    except InvalidVersion:
        return None


def _moved(kind: str) -> Callable[[_Ctx, DiffEntry], bool]:
    return lambda c, e: change(e.a, e.b) == kind


# fmt: off
WHEN: dict[str, Callable[[_Ctx, DiffEntry], bool]] = {
    "any": lambda c, e: True,
    "gpu": lambda c, e: _gpu(c.saved) or _gpu(c.current),
    "gpu_off_to_on": lambda c, e: (_gpu(c.saved) or _gpu(c.current)) and e.a is False and e.b is True,
    "keras3_to_2": lambda c, e: _major(e.a) == 3 and _major(e.b) == 2,
    "keras2_to_3": lambda c, e: _major(e.a) == 2 and _major(e.b) == 3,
    "numpy1_to_2": lambda c, e: _major(e.a) == 1 and _major(e.b) == 2,
    "cpu_to_gpu": lambda c, e: not _gpu(c.saved) and _gpu(c.current),
    "gpu_to_cpu": lambda c, e: _gpu(c.saved) and not _gpu(c.current),
    "random_layers": lambda c, e: bool(c.saved.model and c.saved.model.stochastic_layers),
    **{kind: _moved(kind) for kind in GRADE},
}

# (cause, path pattern, WHEN key, score, expectation with {a} {b} {path} {change}). First match per entry.
# Measured: 2-core CPU, TF 2.21, Keras 3, 32 probes; MLP 64-256-256-10, a small CNN, MobileNetV2 96x96.
PREDICTIONS: tuple[tuple[str, str, str, float, str], ...] = (
    ("dtype_policy", "*", "any", 0.95, "saved with dtype policy {a}, this host uses {b}: expect a large relative change "
     "and possibly top-1 flips (measured float32 -> mixed_bfloat16: max rel 2.8e-01 and 97% top-1 on an MLP)"),
    ("onednn", "tensorflow.onednn.enabled", "any", 0.7, "saved with oneDNN {a_onoff}, this host has it {b_onoff}: "
     "expect float noise of up to a few hundred ULP (measured: 720 ULP on MobileNetV2, 0 on an MLP and a small CNN)"),
    ("onednn", "*", "any", 0.5, "{path} {a} -> {b}: oneDNN kernels may switch: expect ULP-level noise"),
    ("determinism_settings", "tensorflow.tensor_float_32", "gpu_off_to_on", 0.85,
     "TF32 off -> on on a GPU: expect relative error near 1e-3 in matmuls and convolutions"),
    ("determinism_settings", "tensorflow.tensor_float_32|*TF32*", "gpu", 0.6, "{path} {a} -> {b} on a GPU: TF32 rounding differs "
     "between the reference and this host: expect relative error near 1e-3"),
    ("determinism_settings", "tensorflow.tensor_float_32|*TF32*", "any", 0.05, "{path} {a} -> {b}, but neither host has a GPU: "
     "no effect expected"),
    ("determinism_settings", "tensorflow.jit", "any", 0.7, "XLA {a} -> {b}: fusion reorders float operations: expect "
     "ULP-level noise (measured with jit_compile: 805 ULP on an MLP, 274 on MobileNetV2)"),
    ("determinism_settings", "*XLA_FLAGS", "any", 0.5, "{path} {a} -> {b}: XLA may fuse differently: expect ULP noise"),
    ("determinism_settings", "tensorflow.op_determinism", "any", 0.15, "op determinism {a} -> {b}: no change measured "
     "on CPU (0 ULP on three models); on a GPU, reductions and convolutions may pick other kernels"),
    ("determinism_settings", "*", "any", 0.3, "{path} {a} -> {b}: graph rewrites can reorder float operations"),
    ("keras_version", "*", "keras3_to_2", 1.0, "Keras 3 -> Keras 2 ({a} -> {b}): a .keras or .h5 file written by "
     "Keras 3 cannot load here; use the SavedModel"),
    ("keras_version", "*", "keras2_to_3", 0.9, "Keras 2 -> Keras 3 ({a} -> {b}): keras.models.load_model cannot read a "
     "SavedModel here (use keras.layers.TFSMLayer), and layers were reimplemented: expect ULP noise or more"),
    ("keras_version", "tensorflow.keras_flavor", "any", 0.9, "tf.keras is {a} at save and {b} here: another Keras "
     "loads the model: expect load errors or changed numerics"),
    ("numpy_version", "*", "numpy1_to_2", 0.4, "NumPy {a} -> {b}: NumPy 2 changed scalar type promotion (NEP 50): "
     "preprocessing in NumPy may change dtype and rounding"),
    ("threads", "*", "any", 0.2, "thread counts changed ({path}: {a} -> {b}): usually bit-identical (measured 2 -> 1: "
     "0 ULP on an MLP, a small CNN and MobileNetV2), though some reductions depend on the thread count"),
    ("device", "*", "cpu_to_gpu", 0.9, "saved on CPU, this host runs on a GPU: expect ULP noise, and relative error "
     "near 1e-3 where TF32 is on (the default on Ampere and newer)"),
    ("device", "*", "gpu_to_cpu", 0.9, "saved on a GPU, this host has none: expect ULP noise, and relative error "
     "near 1e-3 if the reference used TF32"),
    ("device", "*", "any", 0.6, "{path} {a} -> {b}: other devices run other kernels: expect ULP-level noise"),
    ("cuda_stack", "*", "any", 0.5, "CUDA stack differs ({path}: {a} -> {b}): cuDNN and cuBLAS may choose other "
     "algorithms: expect ULP-level noise"),
    ("cpu_isa", "*", "any", 0.5, "CPU differs ({path}: {moved}): oneDNN and Eigen dispatch on the instruction set: "
     "expect ULP-level noise"),
    ("seed", "*", "random_layers", 0.5, "seed {a} -> {b} matters: the model has random layers"),
    ("seed", "*", "any", 0.05, "seed {a} -> {b}: the probes are stored, so a seed only matters to random layers"),
    ("environment", "*", "any", 0.2, "{path} {a} -> {b}: a variable that can change numerics or device choice"),
    ("python_version", "*", "any", 0.1, "Python {a} -> {b} ({change}): rarely changes numerics by itself"),
    ("other_package", "*", "any", 0.2, "{path} {a} -> {b} ({change}): not a framework package; unlikely to matter"),
)
# fmt: on
# A version difference no row matched: score VERSION_SCORE x GRADE.
VERSION_PREDICTION = (
    "{path} {a} -> {b} ({change}): expect identical outputs or ULP-level noise, more for a major change"
)
VERSION_SCORE = {"tensorflow_version": 0.9, "keras_version": 0.7, "numpy_version": 0.4}


def _predict(cause: str, e: DiffEntry, ctx: _Ctx) -> tuple[float, str]:
    words = {"a": _fmt(e.a), "b": _fmt(e.b), "path": e.path, "change": change(e.a, e.b), "moved": _moved_to(e)}
    words |= {"a_onoff": "on" if e.a else "off", "b_onoff": "on" if e.b else "off"}
    grade = _grade(cause, e) if cause in ("python_version", "other_package") else 1.0
    for row_cause, pattern, when, score, text in PREDICTIONS:
        if row_cause == cause and _matches(e.path, pattern) and WHEN[when](ctx, e):
            return score * grade, text.format(**words)
    return VERSION_SCORE.get(cause, 0.3) * _grade(cause, e), VERSION_PREDICTION.format(**words)


def preflight(saved: Fingerprint, current: Fingerprint, env: FingerprintDiff | None = None) -> list[Explanation]:
    """What to expect on ``current`` before predicting: each numerics-relevant difference and its effect.

    Same causes and remedies as ``explain``; ``score`` is how likely the difference changes the
    outputs, ``reasoning`` the expected effect, with a measurement where one was made.
    """
    ctx = _Ctx(saved, IdentityCheck(weights="unknown"), current=current)
    found = []
    if saved.self_check is not None and not saved.self_check.deterministic:
        why = "at save, two identical calls disagreed: verify will differ until inference is deterministic"
        found.append(_explanation("stochastic_inference", 0.9, why, [], ctx))
    if env is None:
        env = diff_fingerprints(saved, current, "saved", "current host")
    for cause, entries in _by_cause(env.entries, numerics_only=True).items():
        score, text = max((_predict(cause, e, ctx) for e in _deciding(cause, entries)), key=lambda t: t[0])
        more = f" (+{len(entries) - 1} more of this kind)" if len(entries) > 1 else ""
        found.append(_explanation(cause, score, text + more, entries, ctx))
    return _ranked(found)
