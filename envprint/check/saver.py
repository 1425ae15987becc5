"""save(): record a model's identity, probes, reference predictions and environment beside it.

Owns: the order of the save — refuse to overwrite and check that the record can be written
before any work, load, probe, self-check, capture, sign, then publish the whole record at once
(``sidecar.publish_directory``). A save that fails or is killed at any point leaves the previous
record (or none) in place, never part of one. Composes ``check/save_target.py`` (the refusals
and the target prepared before any work), ``check/probing.py`` (the model loaded, probed and
self-checked), ``_tf.identity``, ``digests``, ``capture``, ``signing`` and ``store``; holds no
TensorFlow code.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envprint.causes import precision
from envprint.check.probing import load_and_probe
from envprint.check.save_target import cannot_write, prepare_parent, refuse_before_work, remove_created
from envprint.errors import FingerprintError, UsageError
from envprint.models import (
    ArrayFile,
    Fingerprint,
    ModelIdentity,
    SaveSummary,
    TensorSpec,
    Tolerance,
)
from envprint.record import atomic, digests, sidecar, signing, store

DEFAULT_NUM_PROBES = 8
DEFAULT_PROBE_SEED = 0


@dataclass
class SaveResult:
    sidecar: Path
    fingerprint: Fingerprint
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> SaveSummary:
        """What was written (each file of the record with its sha256), the self-check, the tolerance."""
        fp = self.fingerprint
        written = {name: digests.sha256_file(self.sidecar / name, error=FingerprintError)
                   for name in (sidecar.FINGERPRINT_FILE, signing.SIGNATURE_FILE)
                   if (self.sidecar / name).is_file()}  # fmt: skip
        kept = fp.variants.arrays if fp.variants is not None else None
        arrays = (fp.probe_arrays, fp.reference_arrays, kept, fp.layer_trace.arrays if fp.layer_trace else None)
        written.update({a.file: a.sha256 for a in arrays if a is not None})
        return SaveSummary(
            sidecar=str(self.sidecar),
            written=written,
            model=fp.model,
            probes=fp.probes,
            self_check=fp.self_check,
            tolerance=fp.tolerance or Tolerance(),
            signed=signing.SIGNATURE_FILE in written,
            variants=fp.variants,
            warnings=self.warnings,
        )


def _specs(items: Sequence[Mapping[str, Any]]) -> list[TensorSpec]:
    return [TensorSpec(name=i["name"], shape=list(i["shape"]), dtype=i["dtype"]) for i in items]


def identity_record(ident: Mapping[str, Any], model_path: Path, files: dict[str, str]) -> ModelIdentity:
    stochastic = [f"{s['name']} ({s['class_name']})" for s in ident.get("stochastic_layers") or []]
    return ModelIdentity(
        format=ident["format"],
        name=model_path.name,
        files=files,
        weights_digest=ident.get("weights_digest"),
        weights_digest_scheme=ident.get("weights_digest_scheme"),
        saved_model_fingerprint=ident.get("saved_model_fingerprint"),
        signature=ident.get("signature"),
        inputs=_specs(ident["inputs"]),
        outputs=_specs(ident["outputs"]),
        parameter_count=ident.get("parameter_count"),
        layer_classes=ident.get("layer_classes") or [],
        stochastic_layers=stochastic,
        dtype_policy=ident.get("dtype_policy"),
        compute_precision=ident.get("compute_precision"),
        unavailable=dict(ident.get("unavailable") or {}),
    )


def _array_file(directory: Path, name: str, arrays: Mapping[str, np.ndarray]) -> ArrayFile:
    from envprint.record.npz import save_arrays

    path = directory / name
    save_arrays(path, dict(arrays))
    return ArrayFile(file=name, sha256=digests.sha256_file(path), arrays={k: list(v.shape) for k, v in arrays.items()})


def save(  # size: long by its public keyword arguments and their documentation; the steps are below
    model: str | Path,
    *,
    out: str | Path | None = None,
    probes: str | Path | None = None,
    num_probes: int = DEFAULT_NUM_PROBES,
    probe_seed: int = DEFAULT_PROBE_SEED,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    fmt: str | None = None,
    signature: str | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    safe_mode: bool = True,
    seed: int | None = None,
    tolerance: Tolerance | None = None,
    tolerance_from: str | Path | None = None,
    margin: float = 2.0,
    force: bool = False,
    strict: bool = False,
    sign_key: bytes | str | None = None,
    allow_nonfinite: bool = False,
    layers: bool = False,
    model_files_hook: Callable[[Any, Mapping[str, np.ndarray]], Callable[[], None]] | None = None,
    variants: bool | Sequence[str] = False,
    keep_variant_outputs: bool = False,
    tolerance_from_variants: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SaveResult:
    """Write the record of ``model`` into its sidecar (or ``out``) and return where it went.

    Raises FingerprintError when a record exists and ``force`` is False, when ``out`` holds
    anything but an envprint record (never replaced, even with ``force``), is the model, inside it
    (but a SavedModel's assets.extra/envprint) or a parent of it, or the record cannot be written
    (all before any work); ModelError when the model cannot be loaded or predict,
    or when ``strict`` and the model's outputs change between identical calls. With
    ``sign_key`` (the CLI reads it from ENVPRINT_SIGNING_KEY) the record also gets
    signature.json, an HMAC-SHA256 of fingerprint.json (see ``envprint.record.signing``).
    ``model_files_hook(loaded, probes)`` runs after the self-check and before the model's files
    are digested, to add a file to the model (TF Serving's warm-up: ``integrations.tfserving``);
    it returns an undo that runs if the save fails.

    ``layers``: also record each layer's output on the probes (a Keras model: ``check/locate.py``),
    for ``verify --locate``; a model that is not Keras is a UsageError.

    ``tolerance_from``: a verify report (``envprint verify --json`` output) whose measured drift,
    times ``margin``, becomes the record's tolerance (``tolerance.tolerance_from_report``); it
    excludes ``tolerance``, and a report whose mismatch is not drift is a UsageError.

    Probes that cannot verify anything are refused: an input holding only NaN or infinite values
    (FingerprintError), or an output that is NaN or infinite for every probe (ModelError); with
    ``allow_nonfinite`` they are recorded with a warning instead.
    A declared seed (``seed``, else the one from ``seed_everything``) is recorded and applied
    before the model loads, so that verify, which applies it at the same point, can reproduce
    a model random at inference.

    ``variants`` (True, or some of ``check.variants.KINDS``: 'onednn', 'isa', 'threads', 'batch',
    'jax') predicts the probes again in child processes under the settings a fleet may have and
    records each variant's digest, error and class (``fingerprint.variants``); with
    ``keep_variant_outputs`` their outputs too (variants.npz). ``tolerance_from_variants`` (implies
    ``variants``) sets the tolerance to ``margin`` x the largest drift of any variant; it excludes
    ``tolerance`` and ``tolerance_from``. ``progress`` is told one line per step of the variants.
    """
    from envprint._tf.identity import model_identity
    from envprint.check.capture import capture

    model_path = Path(model)
    sidecar.require_readable(model_path)  # a model problem (exit 4) before any record problem
    target = Path(out) if out is not None else sidecar.default_sidecar(model_path)
    tolerance = _tolerance(tolerance, tolerance_from, margin)
    kinds = _variant_kinds(variants, tolerance_from_variants, keep_variant_outputs, tolerance)
    existed = refuse_before_work(model_path, target, force, num_probes)
    key = signing.signing_key(sign_key) if sign_key is not None else None
    created = prepare_parent(target)
    undo_hook: list[Callable[[], None]] = []
    try:
        loaded, inputs, reference, recipe, check, notes = load_and_probe(
            model_path, probes, num_probes, probe_seed, input_shapes, fmt, signature, custom_objects, safe_mode,
            seed, strict, allow_nonfinite,
        )  # fmt: skip
        trace = _trace(loaded, inputs, model_path) if layers else None
        if model_files_hook is not None:
            undo_hook.append(model_files_hook(loaded, inputs))
        files = digests.tree_digests(model_path, exclude=sidecar.sidecar_exclusions(model_path, target))
        host = capture(seed=seed)
        identity = _with_runtime(identity_record(model_identity(loaded), model_path, files), host)
        fp = host.model_copy(
            update={"model": identity, "probes": recipe, "self_check": check, "tolerance": _follow(tolerance, identity)}
        )
        kept: dict[str, np.ndarray] = {}
        if kinds:
            fp, kept = _with_variants(model_path, fp, inputs, reference, kinds, loaded.format, signature, safe_mode,
                                      custom_objects, tolerance_from_variants, margin, progress)  # fmt: skip
        fp = _write_and_publish(target, fp, inputs, reference, key, force=force, existed=existed,
                                variant_outputs=kept if keep_variant_outputs else None, trace=trace)  # fmt: skip
    except BaseException:
        for undo in undo_hook:
            undo()
        remove_created(created)  # the directories this save made for a record it did not write
        raise
    return SaveResult(sidecar=target, fingerprint=fp, warnings=notes + list(check.warnings))


def _variant_kinds(variants: bool | Sequence[str], from_variants: bool, keep: bool,
                   tolerance: Tolerance | None) -> tuple[str, ...]:  # fmt: skip
    """The kinds of variant to record; refusals that need no model loaded."""
    from envprint.check.variants import kinds_of

    kinds = kinds_of(True if from_variants and not variants else variants)
    if from_variants and tolerance is not None:
        raise UsageError(
            "--tolerance-from-variants sets rtol from the variants' drift; drop --rtol/--atol/--exact/--tolerance-from"
        )
    if keep and not kinds:
        raise UsageError("--keep-variant-outputs keeps the outputs of the variants: add --variants")
    return kinds


def _with_variants(model_path: Path, fp: Fingerprint, inputs: Mapping[str, np.ndarray],
                   reference: Mapping[str, np.ndarray], kinds: Sequence[str], fmt: str, signature: str | None,
                   safe_mode: bool, custom_objects: Mapping[str, Any] | None, from_variants: bool, margin: float,
                   progress: Callable[[str], None] | None) -> tuple[Fingerprint, dict[str, np.ndarray]]:  # fmt: skip
    """The fingerprint with its variants (and, from them, its tolerance), and the variants' outputs."""
    from envprint.check.variants import record_variants, tolerance_from_variants

    specs = [f"{obj.__module__}:{obj.__qualname__}" for obj in (custom_objects or {}).values()]
    found, kept = record_variants(
        model_path, fp, inputs, reference, kinds=kinds, fmt=fmt, signature=signature or (fp.model.signature if fp.model else None),
        safe_mode=safe_mode, custom_objects_specs=specs, progress=progress,
    )  # fmt: skip
    update: dict[str, Any] = {"variants": found}
    if from_variants:
        dtypes = sorted({np.asarray(a).dtype.name for a in reference.values()})
        update["tolerance"] = tolerance_from_variants(found, margin, dtypes)
    return fp.model_copy(update=update), kept


def _with_runtime(identity: ModelIdentity, host: Fingerprint) -> ModelIdentity:
    """The model's compute precision as this host runs it (TF32 on an Ampere+ GPU: a runtime fact)."""
    cp = precision.with_runtime(identity.compute_precision, host)
    return identity if cp is identity.compute_precision else identity.model_copy(update={"compute_precision": cp})


def _follow(tolerance: Tolerance | None, identity: ModelIdentity) -> Tolerance:
    """The record's tolerance; its defaults follow the model's compute precision (bfloat16, float16, TF32)."""
    tolerance = tolerance or Tolerance()
    if tolerance.exact or tolerance.precision is not None:
        return tolerance
    return tolerance.model_copy(update={"precision": precision.default_precision(identity.compute_precision)})


def _trace(loaded: Any, inputs: Mapping[str, np.ndarray], model_path: Path) -> Any:
    """The layer trace of a Keras model; for another format, a UsageError that says why not."""
    from envprint.check import locate

    if loaded.keras_model is None:
        from envprint.render.words import layers_not_keras_words

        raise UsageError(layers_not_keras_words(str(model_path), loaded.format))
    return locate.record_trace(loaded, inputs)


def _tolerance(tolerance: Tolerance | None, tolerance_from: str | Path | None, margin: float) -> Tolerance | None:
    """The tolerance to record: the one given, or the one a verify report's measured drift calls for."""
    if tolerance_from is None:
        return tolerance
    from envprint.check.tolerance import tolerance_from_report
    from envprint.record.store import read_report

    if tolerance is not None:
        raise UsageError("--tolerance-from sets rtol from measured drift; drop --rtol/--atol/--exact")
    return tolerance_from_report(read_report(Path(tolerance_from)), margin, str(tolerance_from))


def _write_and_publish(
    target: Path,
    fp: Fingerprint,
    inputs: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    key: bytes | None,
    *,
    force: bool,
    existed: bool,
    variant_outputs: Mapping[str, np.ndarray] | None = None,
    trace: Any = None,
) -> Fingerprint:
    """Write the whole record into a staging directory beside ``target``, then publish it at once."""
    try:
        staging = atomic.make_staging_dir(target)
    except OSError as exc:
        raise cannot_write(target, exc) from None
    try:
        fp = fp.model_copy(
            update={
                "probe_arrays": _array_file(staging, sidecar.PROBES_FILE, inputs),
                "reference_arrays": _array_file(staging, sidecar.REFERENCE_FILE, reference),
            }
        )
        if variant_outputs is not None and fp.variants is not None:
            kept = _array_file(staging, sidecar.VARIANTS_FILE, variant_outputs)
            fp = fp.model_copy(update={"variants": fp.variants.model_copy(update={"arrays": kept})})
        if trace is not None:
            from envprint.check.locate import write_trace

            fp = fp.model_copy(update={"layer_trace": write_trace(staging, trace)})
        fp = Fingerprint.model_validate(fp.model_dump())  # model_copy does not validate
        store.write_fingerprint(staging / sidecar.FINGERPRINT_FILE, fp)
        if key is not None:
            # Signed from the bytes on disk, so the signature covers exactly what verify will read.
            payload = (staging / sidecar.FINGERPRINT_FILE).read_bytes()
            signature = signing.sign(payload, key, sidecar.FINGERPRINT_FILE)
            atomic.atomic_write_text(staging / signing.SIGNATURE_FILE, signature)
        sidecar.publish_directory(staging, target, force, existed=existed)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise cannot_write(target, exc) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return fp
