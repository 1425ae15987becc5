"""verify(): recompute a model's probes on this host and judge them against its saved record.

Owns: the order of the checks — signature, record integrity, model files, the model's identity
(weights digest, and inputs, outputs, parameter count and layer classes: settled before any probe is
fed, so another model is "model changed" whatever its inputs), outputs, inference randomness,
environment — and the verdict; ``verify(..., investigate=True)`` (the investigation runs on the
record verify read and checked, and re-ranks the explanations), and ``preflight`` (what to expect
from the record and this host alone, without loading the model). A check that ran and failed returns a Report
with verdict 'mismatch'; a check that could not run raises an EnvprintError, and so does a record
that cannot be trusted (a bad signature, arrays that do not match the fingerprint). Holds no
TensorFlow code, and writes nothing: a deployment host may be read-only. The record is located,
read and checked in ``check/record_read.py``; the model's identity is judged in ``check/identity.py``;
the probes are fitted to the model and its outputs judged in ``check/probe_outputs.py``; MLflow URIs
are resolved by ``check/mlflow_source.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envprint import formats
from envprint.check.identity import identity_check
from envprint.check.options import VerifyOptions
from envprint.check.probe_outputs import (
    Fed,
    compare_with_reference,
    fit_outputs,
    fit_probes,
    locate_layers,
    may_be_random,
    precision_of,
)
from envprint.check.record_read import locate_after_model, read_checked, read_fingerprint_only, recorded_model
from envprint.errors import EnvprintError, FingerprintError, ModelError
from envprint.models import (
    Fingerprint,
    FingerprintDiff,
    IdentityCheck,
    ModelIdentity,
    OutputComparison,
    Report,
    Tolerance,
)
from envprint.record import digests, sidecar
from envprint.render import text as _words  # noqa: F401  (registers str(report): models imports no render)


def _file_changes(saved: Mapping[str, str], now: Mapping[str, str]) -> tuple[list[str], list[str], list[str]]:
    changed = sorted(k for k in saved if k in now and now[k] != saved[k])
    missing = sorted(k for k in saved if k not in now)
    added = sorted(k for k in now if k not in saved)
    return changed, missing, added


def _verdict(outputs: list[OutputComparison], identity: IdentityCheck, stochastic_now: bool) -> str:
    if identity.weights == "changed" or identity.sidecar_files_changed or stochastic_now:
        return "mismatch"
    if any(o.status == "mismatch" for o in outputs):
        return "mismatch"
    if all(o.status == "identical" for o in outputs):
        return "identical"
    return "within_tolerance"


def outputs_digest(outputs: Mapping[str, Any]) -> str:
    """sha256 over every output's name, dtype, shape and bytes, by name: equal means bit-identical."""
    h = hashlib.sha256()
    for name in sorted(outputs):
        a = np.ascontiguousarray(outputs[name])
        h.update(f"{name}\0{a.dtype.str}\0{list(a.shape)}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_and_hash(
    model_path: Path, exclude: list[str], recorded: Mapping[str, str] | None = None, **load_options: Any
) -> tuple[Any, dict[str, str]]:
    """Load the model and digest its files at once: (LoadedModel, {relative path: sha256}).

    The files are hashed on a second core while TensorFlow loads the model on the first:
    sha256 releases the GIL and Keras' load is mostly single-threaded, so the check is nearly
    free (scripts/bench.py measures it against the load alone). A load that fails on files whose
    digests differ from ``recorded`` (the record's) says so: the model changed since save.
    """
    from envprint._tf import loading

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="envprint-digest") as pool:
        hashing = pool.submit(digests.tree_digests, model_path, exclude=exclude)
        try:
            loaded = loading.load_model(model_path, **load_options)
        except ModelError as exc:
            changed = _changed_since_save(recorded, hashing, model_path)
            if not changed:
                raise
            what = str(exc).rsplit("; ", 1)[0]  # the loader's fix (re-save it) would be the wrong one
            raise ModelError(
                f"{what}; its bytes are not the ones save recorded ({', '.join(changed)} changed since save: an "
                "incomplete copy or download?): copy the model again from where it was saved"
            ) from None
        return loaded, hashing.result()


def _changed_since_save(recorded: Mapping[str, str] | None, hashing: Any, model_path: Path) -> list[str]:
    """The recorded files whose bytes differ now (a file named '.' is the model's single file)."""
    if not recorded:
        return []
    try:
        now = hashing.result()
    except Exception:  # unreadable files: the load's own error says enough
        return []
    changed, _, _ = _file_changes(recorded, now)
    return [model_path.name if k == "." else k for k in changed]


def preflight(
    model: Any = None,
    *,
    fingerprint: str | Path | None = None,
    signing_key: bytes | str | None = None,
    require_signature: bool = False,
) -> FingerprintDiff:
    """What to expect on this host before verifying ``model``, from its record and this host alone.

    The model is not loaded (``model`` only locates the record beside it; pass ``fingerprint``
    for a model in memory). ``model`` may be an MLflow URI (``runs:/...``, ``models:/...``): its
    record is downloaded and named by its URI. Returns the diff of the record (A) against this
    host (B) with its ``expectations``, most likely first; ``result.expects_change`` is True when
    one is at least ``PREFLIGHT_THRESHOLD`` likely to move the outputs beyond tolerance or to
    break the load (what ``envprint verify --preflight`` exits 1 on). The signature is judged as
    in ``verify``.
    """
    from envprint.record.mlflow_model import is_mlflow_uri

    if is_mlflow_uri(model):
        from envprint.check.mlflow_source import local_copy

        with local_copy(model, fingerprint) as copy:
            try:
                return _preflight(copy.model, copy.fingerprint, signing_key, require_signature, copy.record_uri)
            except EnvprintError as exc:
                raise copy.relabel_error(exc) from None
    return _preflight(model, fingerprint, signing_key, require_signature, None)


def _preflight(model: Any, fingerprint: str | Path | None, signing_key: bytes | str | None, require_signature: bool,
               label: str | None) -> FingerprintDiff:  # fmt: skip
    from envprint.causes.explain import expect
    from envprint.check.capture import capture

    model_path = Path(model) if isinstance(model, (str, Path)) else None
    fp_path, _ = locate_after_model(model_path, None, fingerprint)
    saved = read_fingerprint_only(fp_path, signing_key, require_signature)
    result = expect(saved, capture(), label or str(fp_path), "current host")
    return result.model_copy(update={"passed": not result.expects_change})  # exit 0 of --preflight


def verify(
    model: Any,
    *,
    fingerprint: str | Path | None = None,
    tolerance: Tolerance | None = None,
    fmt: str | None = None,
    signature: str | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    safe_mode: bool = True,
    check_stochastic: bool = True,
    signing_key: bytes | str | None = None,
    require_signature: bool = False,
    investigate: bool = False,
    investigate_timeout: float = 120.0,
    progress: Callable[[str], None] | None = None,
    locate: bool = False,
) -> Report:
    """Verify ``model`` (a path, an MLflow URI, or a Keras model already loaded) against its fingerprint.

    Returns a Report; ``report.raise_for_status()`` raises MismatchError on 'mismatch'.
    Raises FingerprintError / ModelError / DependencyError when the check cannot run.
    Never writes anything: a deployment host may be read-only.

    ``model`` may be ``runs:/<run_id>/<path>`` or ``models:/<name>/<version>`` (or
    ``@<alias>``): the model and its run's ``envprint/`` record are downloaded from the MLflow
    tracking store (``MLFLOW_TRACKING_URI``) to a temporary directory, and the report names the
    URIs (the ``envprint[mlflow]`` extra).

    ``signing_key`` (the CLI reads it from ENVPRINT_SIGNING_KEY) checks the record's
    signature.json: a wrong key or a changed fingerprint.json is a FingerprintError. With
    ``require_signature`` an unsigned record is one too (and a missing key a UsageError). With
    neither, a signature is not checked and the report notes it.

    A record that declares a seed, of a model that may be random at inference, has the seed
    applied before the model loads and predicts, as ``save`` did (``report.seed_applied``).
    ``investigate``: when the outputs are not identical, re-run the probes in child processes
    (``investigate_timeout`` seconds each, ``progress`` called with one line per child) with one
    saved setting restored at a time (``report.investigation``); a cause ruled out by that drops
    out of ``report.explanations`` and a confirmed one leads.
    ``locate``: compare each layer's output with a record saved with ``layers=True`` and name the
    first that departs (``report.layers``); done without asking when such a record's outputs differ.
    """
    options = VerifyOptions(
        fingerprint=fingerprint,
        tolerance=tolerance,
        fmt=fmt,
        signature=signature,
        custom_objects=dict(custom_objects or {}),
        safe_mode=safe_mode,
        check_stochastic=check_stochastic,
        signing_key=signing_key,
        require_signature=require_signature,
        investigate=investigate,
        investigate_timeout=investigate_timeout,
        progress=progress,
        locate=locate,
    )
    return verify_with(model, options)


def verify_with(model: Any, options: VerifyOptions) -> Report:
    """``verify`` with its options as one value: what the CLI, ``sweep`` and ``fleet`` call."""
    from envprint.record.mlflow_model import is_mlflow_uri

    if is_mlflow_uri(model):
        from envprint.check.mlflow_source import local_copy

        with local_copy(model, options.fingerprint) as copy:
            try:
                return copy.relabel(_verify(copy.model, options.with_fingerprint(copy.fingerprint)))
            except EnvprintError as exc:
                raise copy.relabel_error(exc) from None
    return _verify(model, options)


@dataclass
class _Loaded:
    """The model as loaded for a verify, with what its files say against the record."""

    model: Any
    label: str
    files_changed: list[str] = dataclasses.field(default_factory=list)
    files_missing: list[str] = dataclasses.field(default_factory=list)
    files_added: list[str] = dataclasses.field(default_factory=list)

    @property
    def file_changes(self) -> tuple[list[str], list[str], list[str]]:
        return self.files_changed, self.files_missing, self.files_added


def _apply_recorded_seed(saved: Fingerprint) -> int | None:
    """The seed save declared, applied here when the model may be random; None when nothing was applied.

    A random model reproduces its reference only from the same seed, applied before it loads
    (Keras creates the layers' seed generators then) and predicts, as save did.
    """
    seed = saved.seeds.declared if may_be_random(saved) else None
    if seed is not None:
        from envprint._keras import set_random_seed

        set_random_seed(seed)
    return seed


def _verify(model: Any, options: VerifyOptions) -> Report:
    """The checks in their order: the record, the model's load and files, its identity, the probes, the verdict."""
    from envprint.causes.diff import diff_fingerprints
    from envprint.causes.explain import explain
    from envprint.causes.variants import match
    from envprint.check.capture import capture

    model_path = Path(model) if isinstance(model, (str, Path)) else None
    fp_path, fmt = locate_after_model(model_path, options.fmt, options.fingerprint)
    saved, trust, probes, reference, sidecar_changed, samples = read_checked(
        fp_path, options.signing_key, options.require_signature
    )
    custom_objects = options.loaded_custom_objects()
    seed = _apply_recorded_seed(saved)
    recorded = recorded_model(saved, fp_path)
    loaded = _load(model, model_path, fp_path, recorded, fmt, options, custom_objects)
    identity = identity_check(recorded, loaded.model, model_path, loaded.file_changes, sidecar_changed)
    fed = _feed_probes(
        recorded, loaded, identity.weights, probes, reference, str(fp_path.parent / saved.probe_arrays.file)
    )
    outputs, random_outputs = compare_with_reference(saved, loaded.model, fed, reference, options)
    environment = diff_fingerprints(saved, capture(), str(fp_path), "current host")
    stochastic_now = bool(random_outputs)
    digest = None if fed.obtained is None else outputs_digest(fed.obtained)
    variant = match(saved.variants, digest)
    identical = all(o.status == "identical" for o in outputs) and not identity.sidecar_files_changed
    layers = locate_layers(saved, samples, loaded.model, fed, options) if options.locate or not identical else None
    verdict = _verdict(outputs, identity, stochastic_now)
    report = Report(
        verdict=verdict,
        passed=verdict != "mismatch",
        record_signature=trust.status,
        signing_key_id=trust.key_id,
        model=loaded.label,
        fingerprint=str(fp_path),
        identity=identity,
        probes_run=fed.obtained is not None,
        inputs_by_position=fed.inputs_by_position,
        outputs_by_position=fed.outputs_by_position,
        probe_casts=fed.casts,
        outputs=outputs,
        random_at_inference=random_outputs,
        environment=environment,
        explanations=explain(
            saved, environment, identity, outputs, stochastic_now=stochastic_now, variant=variant, layers=layers
        ),
        precision=precision_of(saved, outputs, options) if fed.obtained is not None else None,
        seed_applied=seed,
        outputs_digest=digest,
        variant=variant,
        layers=layers,
    )
    if options.investigate and report.verdict != "identical":
        report = _investigate(report, model_path, saved, fp_path, probes, reference, fmt=fmt, options=options,
                              custom_objects=custom_objects)  # fmt: skip
    return report


def _load(model: Any, model_path: Path | None, fp_path: Path, recorded: ModelIdentity, fmt: str | None,
          options: VerifyOptions, custom_objects: dict[str, Any]) -> _Loaded:  # fmt: skip
    """Load the model from its path (digesting its files meanwhile), or wrap one already in memory."""
    from envprint._tf import loading

    if model_path is None:
        return _Loaded(loading.wrap_model(model, recorded.format), f"<in-memory {type(model).__name__}>")
    chosen = fmt or recorded.format
    loaded, now = load_and_hash(
        model_path,
        exclude=sidecar.sidecar_exclusions(model_path, fp_path.parent),
        recorded=recorded.files if chosen == recorded.format else None,
        fmt=chosen,
        signature=options.signature or (recorded.signature if formats.get(chosen).signatures else None),
        custom_objects=custom_objects,
        safe_mode=options.safe_mode,
    )
    recorded_files = recorded.files
    if loaded.format != recorded.format:
        # Another format: the record's single file ('.') is not this one rewritten but missing,
        # and this model's is added; name each, so that the record's model.keras is named.
        recorded_files = {recorded.name if k == "." else k: v for k, v in recorded_files.items()}
        now = {model_path.name if k == "." else k: v for k, v in now.items()}
    return _Loaded(loaded, str(model_path), *_file_changes(recorded_files, now))


def _feed_probes(recorded: ModelIdentity, loaded: _Loaded, weights: str, probes: dict[str, np.ndarray],
                 reference: Mapping[str, np.ndarray], where: str) -> Fed:  # fmt: skip
    """The probes fitted to this model's inputs and predicted; for another model that cannot take them, nothing."""
    fed = Fed()
    try:
        fed.feed = fit_probes(probes, loaded.model, where, fed.inputs_by_position, fed.casts)
        if fed.feed is None and weights != "changed":
            raise ModelError(
                f"{loaded.label}: the record's probes are for inputs {sorted(probes)} but this model's inputs are "
                f"{[s.name for s in loaded.model.inputs]}; verify the model the record was saved from "
                f"(a {recorded.format} file named {recorded.name}), or re-save the record from this one"
            )
        if fed.feed is not None:
            fed.obtained = fit_outputs(reference, loaded.model.predict(fed.feed), fed.outputs_by_position)
    except (ModelError, FingerprintError):
        if weights != "changed":
            raise
        # Another model: that it cannot take the probes is no surprise, and the error's advice
        # (fix the probes) would be wrong; the identity differences say what changed.
        return Fed()
    return fed


def _investigate(report: Report, model_path: Path | None, saved: Fingerprint, fp_path: Path, probes: Any,
                 reference: Any, *, fmt: str | None, options: VerifyOptions,
                 custom_objects: Mapping[str, Any]) -> Report:  # fmt: skip
    """The report with its investigation, and its explanations re-ranked by what the experiments found."""
    from envprint.causes.explain import rerank
    from envprint.check.investigate import investigate

    # A child imports each custom object again by the name it is importable under.
    specs = [f"{obj.__module__}:{obj.__qualname__}" for obj in custom_objects.values()]
    results = investigate(
        model_path, report, saved=saved, fp_path=fp_path, probes=probes, reference=reference,
        custom_objects_specs=specs, timeout_s=options.investigate_timeout, progress=options.progress, fmt=fmt,
        signature=options.signature, safe_mode=options.safe_mode, tolerance=options.tolerance,
    )  # fmt: skip
    return report.model_copy(update={"investigation": results, "explanations": rerank(report.explanations, results)})
