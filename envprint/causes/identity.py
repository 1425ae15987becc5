"""Identity causes: the model or its record is not the one fingerprinted (or is, in another form).

Owns: model_changed, model_file_rewritten, model_other_format, probes_changed: their entries,
the evidence rules verify scores them by (from the IdentityCheck, never from a difference) and
the values their remedies name. None is a setting of the host: nothing to restore or predict.
Pure: must not import TensorFlow, Keras or NumPy.
"""

from __future__ import annotations

from envprint import formats
from envprint.causes.base import NOT_A_SETTING, NOT_FROM_DIFF, Cause, DiffEntry, Family, Scoring


def format_change(c: Scoring) -> tuple[str, str] | None:
    """(the record's format, this model's) when they differ, else None."""
    change = next((d for d in c.identity.differences if d.field == "format"), None)
    return None if change is None else (str(change.saved), str(change.current))


def edited_files(files: list[str]) -> str:
    """What an edit of these record files changed, named: the probes, the reference, or the record."""
    if set(files) == {"probes.npz"}:
        return "the probes were"
    if set(files) == {"reference.npz"}:
        return "the reference was"
    if set(files) == {"probes.npz", "reference.npz"}:
        return "the probes and the reference were"
    return "the record was"


def format_words(c: Scoring) -> dict[str, str]:
    """{format_saved} and {format_now}: the two formats as a message names them ('a Keras (.keras) model')."""
    change = format_change(c)
    if change is None:
        return {"format_saved": "", "format_now": ""}
    words = {f.id: f.described for f in formats.FORMATS}
    return {"format_saved": words.get(change[0], change[0]), "format_now": words.get(change[1], change[1])}


def other_format(c: Scoring) -> bool:
    """Weights hashed by two schemes (another format of the model) with the same interface (else 'changed')."""
    i = c.identity
    return (
        i.weights == "unknown"
        and None not in (i.weights_digest_scheme_saved, i.weights_digest_scheme_now)
        and (i.weights_digest_scheme_saved != i.weights_digest_scheme_now)
    )


def _model_digest(c: Scoring, entries: list[DiffEntry]) -> str:
    m = c.saved.model
    if m is None or not (digest := m.files.get(".") or m.weights_digest):
        return "see fingerprint.json"
    return f"{m.name}, {'sha256' if '.' in m.files else 'weights sha256'} {digest[:16]}…"


# fmt: off
FAMILY = Family(
    causes={
        "model_changed": Cause(
            "the model is not the one fingerprinted", "semantic", NOT_FROM_DIFF,
            ("this is not the model that was fingerprinted: deploy the saved model file ({model_digest}) "
             "or re-run envprint save on the new one",),
            "the weights are checked when the model loads, not predicted from fingerprints", NOT_A_SETTING,
            paths=("model.weights_digest*", "model*")),
        "model_file_rewritten": Cause(
            "model files rewritten, weights identical", "identity", NOT_FROM_DIFF,
            ("no action needed: the weights are the saved ones",),
            "the files are checked when the model loads, not predicted from fingerprints", NOT_A_SETTING,
            paths=("model.files*",)),
        "model_other_format": Cause(
            "the model in another format", "identity", NOT_FROM_DIFF,
            ("none needed when the outputs pass: weights cannot be compared across formats, so the outputs are the "
             "check; for a weights check too, run envprint save on this format",),
            "the format is checked when the model loads, not predicted from fingerprints", NOT_A_SETTING),
        "probes_changed": Cause(
            "probe or reference arrays edited after save", "identity", NOT_FROM_DIFF,
            ("restore {sidecar_files} from the saved sidecar (fingerprint.json holds their sha256), "
             "or re-run envprint save on the training host",),
            "the sidecar's digests are checked by verify, not predicted from fingerprints", NOT_A_SETTING,
            # The probes are inputs (other probes, other outputs); the reference is what the model
            # answered, an effect of everything else: listed, not counted again.
            paths=("probes*", "probe_arrays*"), listed=("reference_arrays*",)),
    },
    values={
        "model_digest": _model_digest,
        "sidecar_files": lambda c, _: " and ".join(c.identity.sidecar_files_changed) or "probes.npz and reference.npz",
    },
    # (cause, score, applies, reasoning). First match per cause.
    identity_rules=(
        ("model_changed", 1.0, lambda c: c.identity.weights == "changed",
         "the weights digest differs from the saved one: these are not the weights that produced the reference"),
        ("model_changed", 0.6, lambda c: c.identity.weights == "unknown" and not other_format(c) and bool(
            c.identity.files_changed or c.identity.files_missing),
         "the weights could not be compared and model files changed ({files}): this may not be the model that was saved"),
        # Said only when the outputs are not bit-identical. Another format than the record's leads:
        # a converted model (TFLite above all) computes its outputs with other kernels, in another order.
        ("model_other_format", 0.5, lambda c: c.observed != "identical" and format_change(c) is not None,
         "this model is {format_now}, the record's is {format_saved}: another format of the model runs other "
         "kernels, so its outputs may differ in the last bits; the outputs are the evidence"),
        ("model_other_format", 0.1, lambda c: c.observed != "identical" and other_format(c),
         "the weights cannot be compared across formats (saved {scheme_saved}, this model {scheme_now}) and the inputs "
         "and outputs match: the outputs are the evidence"),
        ("probes_changed", 1.0, lambda c: bool(c.identity.sidecar_files_changed),
         "{sidecar_files} {match_verb} the sha256 in fingerprint.json: {edited} edited after save"),
        ("model_file_rewritten", 0.05, lambda c: c.observed != "identical" and c.identity.weights == "same" and bool(
            c.identity.files_changed or c.identity.files_missing or c.identity.files_added),
         "model files changed ({files}) but the weights digest is the saved one: a re-save, not another model"),
    ),
)
# fmt: on
