"""The layer trace a record holds (``save --layers``) and where verify found the outputs first depart (``--locate``).

Must not import TensorFlow, Keras or any envprint module but ``errors`` (through ``base``).
"""

from typing import Literal

from pydantic import Field

from envprint.models.base import ArrayFile, Record


class TracedLayer(Record):
    """One layer's output on every probe, as one eager call of the model computed it."""

    name: str = Field(description="The layer's name; a layer called more than once: 'name#2', ... for later calls.")
    class_name: str = Field(description="The layer's class, e.g. 'DepthwiseConv2D'.")
    inbound: list[int] | None = Field(
        description="Indices (in this list) of the layers whose outputs feed it; None when Keras does not say "
        "(a subclassed model: the previous layer called is taken instead)."
    )
    digest: str = Field(description="First 16 hex digits of sha256 over its outputs' dtype, shape and bytes.")
    scale: float | None = Field(description="Largest finite |value| of its outputs; None when not numeric.")
    weights_digest: str | None = Field(
        None, description="First 16 hex digits of sha256 over its own weights; None for a layer without weights."
    )
    preprocessing: bool = Field(False, description="A Keras preprocessing layer (Rescaling, Normalization, ...).")


class LayerTrace(Record):
    """``save --layers``: every layer's output digest, scale and a strided sample, bounded per layer."""

    method: Literal["eager"] = Field(
        "eager",
        description="How the outputs were computed: one eager call of the model on every probe as one batch, "
        "each layer's own kernels with no graph fusion (verify recomputes them the same way).",
    )
    sample_size: int = Field(description="Elements sampled per layer (evenly strided over all its outputs).")
    arrays: ArrayFile = Field(
        description="The samples: one float32 array 'samples' [layers, sample_size], NaN where a layer has fewer."
    )
    layers: list[TracedLayer] = Field(description="In the order the layers ran: a topological order.")


LocateStatus = Literal["located", "no_departure", "not_traced"]


class LayerStep(Record):
    """One layer's output here against the record."""

    index: int
    name: str
    class_name: str
    identical: bool = Field(description="Its outputs are bit-identical to the record's (digest).")
    max_abs: float | None = Field(None, description="Largest |obtained - expected| over the sampled elements.")
    rel_error: float | None = Field(None, description="max_abs divided by the layer's recorded scale.")
    over_budget: bool = Field(False, description="rel_error is above the budget.")
    weights_changed: bool = Field(False, description="Its own weights differ from the record's.")
    preprocessing: bool = False


class LayerLocation(Record):
    """``verify --locate``: the first layer whose output departs from the record, and how the error grows."""

    status: LocateStatus
    not_traced: str | None = Field(
        None,
        description="Why no trace was compared (status 'not_traced'): 'not_recorded' (saved without --layers), "
        "'not_keras' (the model loaded is not a Keras model), 'no_probes' (the probes were not fed), "
        "'layers_changed' (the layers here are not the record's).",
    )
    budget_rtol: float = Field(description="A layer is over budget when its rel_error is above this.")
    first: int | None = Field(
        None, description="Index of the first layer whose outputs are not bit-identical (topological order)."
    )
    first_over_budget: int | None = Field(None, description="Index of the first layer over budget.")
    origins: list[int] = Field(
        default_factory=list,
        description="Each layer that departs while every layer feeding it matches: where each branch departs first.",
    )
    ops: dict[str, str] = Field(
        default_factory=dict, description="The TensorFlow op behind the first and each origin layer, by layer name."
    )
    departed: int = Field(0, description="How many layers' outputs are not bit-identical.")
    steps: list[LayerStep] = Field(default_factory=list, description="Every traced layer, in the record's order.")
