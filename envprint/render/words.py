"""The sentences check/ puts in its own results and messages: investigate's judgements of a child run,
save's refusal of probes or outputs without a finite value and its warning when every probe gave the
same outputs. Worded here, with the rest of envprint's words; check/ imports them where it speaks.
"""

from __future__ import annotations

from envprint.models import Report


def counts_words(size: int, n_differ: int, n_out_of_tolerance: int, max_ulp: int | None) -> str:
    """How far outputs are from the reference, in one phrase (verify --investigate's children)."""
    if n_differ == 0:
        return f"bit-identical ({size} elements)"
    ulp = f", max {max_ulp} ULP" if max_ulp is not None else ""
    return f"{n_differ} / {size} differ, {n_out_of_tolerance} out of tolerance{ulp}"


def control_words(reproduced: bool, control: str, seen: str) -> str:
    """verify --investigate's control run: a fresh process, nothing restored, against what verify saw."""
    if reproduced:
        return f"a fresh process reproduces the drift: {control} (verify saw {seen})"
    return (
        f"a fresh process on this host matches the reference bit for bit, while verify saw {seen}: the "
        "drift did not reproduce; suspect state in the verifying process (settings changed at run time, "
        "a random layer), not the host"
    )


def nonfinite_words(where: str, names: list[str], *, probes: bool) -> str:
    """save's refusal (or, allowed, warning) of probes or reference outputs that hold no finite value."""
    listed, one = ", ".join(repr(n) for n in names), len(names) == 1
    if probes:
        return (
            f"{where}: probe input{'' if one else 's'} {listed} hold{'s' if one else ''} only NaN or infinite values: "
            "any model on any host gives the same answer to them, so verify could never fail; give real samples"
        )
    return (
        f"{where}: output{'' if one else 's'} {listed} {'is' if one else 'are'} NaN or infinite for every probe, "
        "so verify could never tell this model from another; check the model and the probes"
    )


def same_for_every_probe_words(n: int) -> str:
    """save's warning when every probe gave the same outputs."""
    return (
        f"outputs are the same for all {n} probes: the record cannot tell much drift apart (a model that ignores "
        "its inputs, or probes it cannot tell apart); use real samples (--probes) or check the model"
    )


def signature_line(report: Report) -> str | None:
    """The record signature's line of a verify report, or None where there is nothing to say."""
    from envprint.record.signing import ALGORITHM, KEY_ENV

    status, key = report.record_signature, report.signing_key_id
    if status == "verified":
        return f"verified ({ALGORITHM}, key {key})"
    if status == "unchecked":
        return f"signed, not checked: pass {KEY_ENV} to check it"
    if key is not None:  # unsigned, with a key given
        return "not signed; a signature is not required, so the key was not used"
    return None


def layers_not_keras_words(where: str, fmt: str) -> str:
    """Why save --layers (or verify --locate) cannot trace a model of format ``fmt``, and what to do."""
    from envprint import formats

    why = formats.get(fmt).no_layers or "its layers are not exposed"
    return f"{where}: --layers traces Keras models only: {why}; save the Keras model (.keras) with --layers and verify that"
