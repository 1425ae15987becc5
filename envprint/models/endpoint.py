"""What a verify --endpoint report adds: the server, what it said it serves, the misfits, the transport's evidence."""

from typing import Literal

from pydantic import Field

from envprint.models.base import Leaf, Record


class EndpointMisfit(Record):
    """One way the request the record implies differs from what the server's metadata says it takes."""

    field: Literal["signature", "input_names", "input_dtype", "input_shape", "output_names"]
    name: str | None = Field(None, description="The input or output concerned, where one is.")
    recorded: Leaf = None
    served: Leaf = None


class EndpointFacts(Record):
    """verify --endpoint: what was asked of which server, what it said it serves, and how fast it answered."""

    protocol: str = Field(description="The protocol id, e.g. 'tfserving-rest', 'tfserving-grpc', 'kserve-v2'.")
    url: str = Field(description="The endpoint, without credentials, query or fragment.")
    served_model: str | None = Field(None, description="The model name the server's metadata gives.")
    served_version: str | None = Field(None, description="The model version the server's metadata gives.")
    requested_version: str | None = Field(None, description="The version or label the URL or options asked for.")
    signature: str | None = Field(None, description="The signature the probes were sent to.")
    exact_encoding: bool = Field(
        False, description="Whether the protocol carries every bit of a float (binary tensors), not decimal text."
    )
    batch_size: int = 0
    batches: int = 0
    latency_ms: list[float] = Field(default_factory=list, description="Wall time of each batch's request, ms.")
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    misfits: list[EndpointMisfit] = Field(
        default_factory=list, description="Differences between the recorded request and the server's metadata."
    )
    rounded_digits: dict[str, int] = Field(
        default_factory=dict,
        description="Output -> k: every differing value equals the reference rounded to k significant decimal "
        "digits (the pattern of a JSON printer, not of arithmetic).",
    )
    widened: list[str] = Field(
        default_factory=list,
        description="Outputs answered in float64 whose values are exactly the float32 values: widened in transit.",
    )
