"""The variants a record holds (``save --variants``), and what a verify makes of them.

A variant is the probes predicted again on the saving machine, in a child process, under one
setting a fleet host may have (oneDNN on or off, oneDNN capped at a lower instruction set, one
thread, one probe per call, the JAX backend): its outputs digest, its error against the
reference, and the class of variants bit-identical to it. Data only (codes and numbers); the
words are made in ``render/`` and by the variants cause family.
"""

from typing import Literal

from pydantic import Field

from envprint.models.base import ArrayFile, Record


class VariantSettings(Record):
    """What a variant's child process changed from this machine's defaults (None: left as it was)."""

    onednn: bool | None = Field(
        None, description="oneDNN as the child ran it (its own report), when the variant sets TF_ENABLE_ONEDNN_OPTS."
    )
    max_cpu_isa: str | None = Field(
        None, description="ONEDNN_MAX_CPU_ISA as set, e.g. 'AVX' (acts only where oneDNN runs)."
    )
    threads: int | None = Field(None, description="Intra-op and inter-op threads, when the variant sets them.")
    batch_size: int | None = Field(None, description="1: the probes predicted one per call; None: as one batch.")
    keras_backend: str | None = Field(None, description="KERAS_BACKEND as set, e.g. 'jax' (Keras 3 .keras only).")
    env: dict[str, str] = Field(default_factory=dict, description="The environment variables the child had set.")


VariantStatus = Literal["recorded", "failed", "untestable"]


class Variant(Record):
    name: str = Field(description="Stable id made from the settings, e.g. 'onednn_on+isa_avx+batch1'; 'default'.")
    settings: VariantSettings
    status: VariantStatus = Field(
        description="'recorded'; 'failed': the child did not finish (see error); 'untestable': the setting did not "
        "take on this machine (oneDNN stayed as it was)."
    )
    error: str | None = Field(None, description="Why the variant was not recorded, one line.")
    outputs_digest: str | None = Field(None, description="sha256 of its outputs, as Report.outputs_digest.")
    equivalence_class: str | None = Field(None, description="Its class: variants with the same outputs digest.")
    identical_to_reference: bool | None = Field(None, description="Bit-identical to the record's reference.")
    max_ulp: int | None = Field(None, description="Largest ULP distance from the reference over the outputs.")
    max_rel: float | None = Field(None, description="Largest relative error against the reference.")
    max_abs: float | None = Field(None, description="Largest absolute error against the reference.")
    seconds: float | None = Field(None, description="Wall time of the child process that ran it.")


class VariantClass(Record):
    """Variants whose outputs are bit-identical: the hosts a fleet of such settings would group into."""

    name: str = Field(description="'A' holds the reference (when a variant reproduced it), then by size.")
    outputs_digest: str
    variants: list[str] = Field(description="Variant names, in the order recorded.")
    reference: bool = Field(description="The reference's class: these variants reproduce it bit for bit.")


class Variants(Record):
    """What ``save --variants`` recorded: each variant, their classes and what it cost."""

    reference_digest: str = Field(description="sha256 of the reference outputs (as Report.outputs_digest).")
    cpu_isa: str | None = Field(None, description="This CPU's highest instruction set in oneDNN's names, e.g. 'AVX2'.")
    onednn_default: bool | None = Field(None, description="oneDNN's state here with nothing set.")
    variants: list[Variant]
    classes: list[VariantClass]
    seconds: float = Field(description="Wall time of all the child processes together (the cost of --variants).")
    parallel: int = Field(description="Child processes run at once (the cores this process may use).")
    arrays: ArrayFile | None = Field(
        None, description="save --keep-variant-outputs: variants.npz, arrays named 'VARIANT/OUTPUT'."
    )


VariantMatchStatus = Literal["reference", "matched", "none"]


class VariantMatch(Record):
    """verify: which variant recorded at save this host's outputs are bit-identical to, if any."""

    status: VariantMatchStatus = Field(
        description="'reference': identical to the reference; 'matched': to a recorded variant (variant); "
        "'none': to none of them, a numerics path not seen at save."
    )
    variant: str | None = Field(None, description="The variant's name (status 'matched').")
    settings: VariantSettings | None = None
    equivalence_class: str | None = Field(None, description="The variant's class in the record.")
    recorded: int = Field(description="Variants recorded (status 'recorded').")
    cpu_isa: str | None = Field(None, description="The saving CPU's highest instruction set (Variants.cpu_isa).")
