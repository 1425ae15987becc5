"""The words of a verify --endpoint report: the server, what it serves, its latency, and what is not known of it.

The report of an endpoint is a verify report (render/text.py draws it); these are the lines only
an endpoint has, and the environment's line, which for a server is what envprint cannot know.
"""

from __future__ import annotations

from envprint.models import EndpointMisfit, Report


def misfit_words(m: EndpointMisfit) -> str:
    what = m.field.replace("_", " ") + (f" {m.name!r}" if m.name else "")
    return f"{what}: the record's is {m.recorded}, the server's {m.served}"


def head_lines(report: Report) -> list[str]:
    """The report's model and fingerprint lines, and for an endpoint what the server said and how fast it was."""
    e = report.endpoint
    if e is None:
        return [f"  model:       {report.model}", f"  fingerprint: {report.fingerprint}"]
    served = " ".join(
        x
        for x in (
            e.served_model,
            f"version {e.served_version}" if e.served_version else None,
            f"signature {e.signature}" if e.signature else None,
        )
        if x  # fmt: skip
    )
    lines = [f"  endpoint:    {e.url} ({e.protocol}{', exact binary tensors' if e.exact_encoding else ', JSON'})",
             f"  served:      {served or '(the server did not say)'}", f"  fingerprint: {report.fingerprint}"]  # fmt: skip
    if e.batches:
        lines.append(f"  latency:     p50 {e.latency_ms_p50:.1f} ms, p95 {e.latency_ms_p95:.1f} ms per request "
                     f"({e.batches} of {e.batch_size} probes)")  # fmt: skip
    lines += [f"  misfit:      {misfit_words(m)}" for m in e.misfits]
    return lines


def misfit_problem(report: Report) -> str | None:
    """The first problem of an endpoint whose metadata does not take the recorded request (None otherwise)."""
    if report.endpoint is None or not report.endpoint.misfits:
        return None
    return f"the server does not take the recorded request ({misfit_words(report.endpoint.misfits[0])})"


def environment_same(report: Report) -> str:
    """The environment line of a report whose diff is empty: the same host, or a server's host not fingerprinted."""
    if report.endpoint is None:
        return "Environment: same as at save."
    return (
        "Environment: the server's host is not fingerprinted (an endpoint): its TensorFlow build, CPU and settings "
        "cannot be compared with the record's; its answers are the evidence."
    )
