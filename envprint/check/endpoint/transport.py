"""The HTTP client every HTTP protocol shares: the standard library's http.client, bounded.

Owns what a server cannot be trusted with: the size of a response (read in chunks, refused past
``max_bytes``), the time it takes (connect and read timeouts, and a deadline for the whole
request however slowly the bytes drip), where it sends us (a redirect is followed only to the
same scheme, host and port: credentials never travel to another host), TLS (``cacert``), and
the headers taken from the environment (their values never appear in a message or a report).
Each request's seconds are measured for the report's latency.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from envprint.check.endpoint.base import NotReady, Protocol, Target, TransportOptions, public_url
from envprint.errors import EndpointError, UsageError, one_line

T = TypeVar("T")
MAX_REDIRECTS = 3
_CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    seconds: float

    def json(self, where: str) -> Any:
        """The body as JSON, or one line saying what it is instead (an HTML page, text, nothing)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise EndpointError(f"{where}: the answer is not JSON ({describe_body(self)})") from None


def describe_body(resp: Response) -> str:
    """A body in a few words for an error line: its error message, an HTML page's title, or its start."""
    body = resp.body
    if not body.strip():
        return "an empty body"
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict):
        for key in ("error", "message", "detail", "error_message"):
            if key in doc:
                return f"error {one_line(str(doc[key]), 160)!r}"
    text = body[:4096].decode("utf-8", "replace")
    if re.search(r"<\s*(html|!doctype)", text, re.I):
        title = re.search(r"<title[^>]*>(.*?)</title", text, re.I | re.S)
        return "an HTML page" + (f" titled {one_line(title.group(1), 80)!r}" if title else "")
    return f"{len(body)} bytes starting {one_line(text, 60)!r}"


class Transport:
    """Requests to one server (scheme, host and port of ``base_url``), bounded by ``options``."""

    def __init__(self, base_url: str, options: TransportOptions | None = None) -> None:
        self.options = options or TransportOptions()
        self.base_url = base_url
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"{public_url(base_url)}: not an http:// or https:// URL with a host")
        self._origin = (parts.scheme, parts.hostname, parts.port)
        self._headers = self.options.headers()
        self._context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._context = ssl.create_default_context(cafile=self.options.cacert)

    def request(
        self, method: str, url: str, body: bytes | None = None, content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Response:  # fmt: skip
        """One request, redirects followed on the same origin only; a status >= 400 is returned, not raised.

        ``headers``: a protocol's own (the V2 binary extension's header length), never secrets.
        """
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._once(method, url, body, content_type, headers or {})
            if resp.status not in (301, 302, 303, 307, 308):
                return resp
            target = urljoin(url, resp.headers.get("location", ""))
            parts = urlsplit(target)
            if (parts.scheme, parts.hostname, parts.port) != self._origin:
                raise EndpointError(
                    f"{public_url(url)}: the server redirects to another host ({public_url(target)}); envprint "
                    "follows redirects on the same host only: give that URL if you trust it"
                )
            url = target
        raise EndpointError(f"{public_url(url)}: more than {MAX_REDIRECTS} redirects")

    def _once(self, method: str, url: str, body: bytes | None, content_type: str, extra: Mapping[str, str]) -> Response:
        parts = urlsplit(url)
        opts = self.options
        start = time.monotonic()
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=opts.connect_timeout,
                                               context=self._context)  # fmt: skip
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=opts.connect_timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {**extra, **self._headers, "Accept": "application/json", "User-Agent": "envprint"}
        if body is not None:
            headers["Content-Type"] = content_type
        where = public_url(url)
        try:
            conn.connect()
            self._bound(conn, start)
            conn.request(method, path, body=body, headers=headers)
            raw = conn.getresponse()
            data = self._read(conn, raw, start, where)
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, data, time.monotonic() - start)
        except ssl.SSLError as exc:
            raise EndpointError(
                f"{where}: TLS failed ({one_line(exc, 120)}); give the server's CA with --cacert"
            ) from None
        except (ConnectionRefusedError, ConnectionResetError, socket.gaierror) as exc:
            raise NotReady(
                f"{where}: cannot connect ({one_line(exc.strerror or exc, 80)}); is the server running?"
            ) from None
        except TimeoutError:
            raise EndpointError(f"{where}: no answer within the timeout ({opts.read_timeout:g} s)") from None
        except http.client.IncompleteRead as exc:
            raise EndpointError(
                f"{where}: the answer is truncated ({len(exc.partial)} bytes, then the connection closed)"
            ) from None
        except (http.client.HTTPException, OSError) as exc:
            raise EndpointError(f"{where}: the answer broke off ({one_line(exc, 120)})") from None
        finally:
            conn.close()

    def _bound(self, conn: http.client.HTTPConnection, start: float) -> None:
        left = self.options.deadline - (time.monotonic() - start)
        if left <= 0:
            raise TimeoutError
        if conn.sock is not None:
            conn.sock.settimeout(min(self.options.read_timeout, left))

    def _read(self, conn: http.client.HTTPConnection, raw: http.client.HTTPResponse, start: float, where: str) -> bytes:
        cap = self.options.max_bytes
        declared = raw.getheader("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise EndpointError(f"{where}: the answer is {int(declared)} bytes, more than the cap ({cap})")
        chunks, size = [], 0
        while True:
            if time.monotonic() - start > self.options.deadline:
                raise EndpointError(
                    f"{where}: the answer did not end within {self.options.deadline:g} s (the deadline)"
                )
            self._bound(conn, start)
            chunk = raw.read1(_CHUNK) if hasattr(raw, "read1") else raw.read(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                raise EndpointError(f"{where}: the answer is larger than the cap ({cap} bytes)")
            chunks.append(chunk)
        if declared and declared.isdigit() and size < int(declared):
            raise EndpointError(f"{where}: the answer is truncated ({size} of {declared} bytes)")
        return b"".join(chunks)


class HttpProtocol(Protocol):
    """A protocol over HTTP: ``self.transport`` is bound to the URL's scheme, host and port."""

    def __init__(self, url: str, options: TransportOptions, target: Target) -> None:
        super().__init__(url, options, target)
        parts = urlsplit(url)
        self.transport = Transport(f"{parts.scheme}://{parts.netloc}", options)


def wait_for(ready: Callable[[], T], wait: float, sleep: Callable[[float], None] = time.sleep) -> T:
    """``ready()``, retried with backoff (0.1 s doubling to 2 s) while it raises NotReady and ``wait`` lasts."""
    end = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            return ready()
        except NotReady:
            if time.monotonic() + delay > end:
                raise
        sleep(delay)
        delay = min(delay * 2, 2.0)
