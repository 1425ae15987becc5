"""A cheap HTTP server that answers TF Serving's status and metadata faithfully and each predict with a canned body.

For the endpoint fuzz tests: one thread in the test process, no TensorFlow. The model name in the
URL picks the answer (``/v1/models/<mode>:predict``); an answer is (status, headers, body), where
body is bytes, or a callable given the socket file, for bodies that never end or break off.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Mapping[str, str], bytes | Callable[[Any], None]]


@contextmanager
def hostile(metadata: Mapping[str, Any], answers: Mapping[str, Answer]) -> Iterator[str]:
    """Serve ``answers`` by mode; yields the base URL http://127.0.0.1:PORT."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, doc: Any) -> None:
            body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            mode = self.path.split("/")[3]
            if self.path.endswith("/metadata"):
                self._json({**metadata, "model_spec": {"name": mode, "version": "1", "signature_name": ""}})
            else:
                self._json({"model_version_status": [{"version": "1", "state": "AVAILABLE"}]})

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, headers, body = answers[self.path.split("/")[3].split(":")[0]]
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if not callable(body) and "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                body(self.wfile) if callable(body) else self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
