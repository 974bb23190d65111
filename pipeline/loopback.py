"""A small HTTP server on loopback that serves a site from memory.

The demo serves the bundled sample site with it; tests and benchmarks serve feeds, pages
and hostile responses with it. It keeps a log of the paths requested so callers can
assert on what was (and was not) fetched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[BaseHTTPRequestHandler], Reply | None]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-response is normal in tests of timeouts and caps."""


class LoopbackSite:
    """Routes by path (query ignored unless a route includes it). Use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.routes: dict[str, Reply | Handler] = {}
        self.requests: list[str] = []
        self._lock = threading.Lock()
        site = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with site._lock:
                    site.requests.append(self.path)
                route = site.routes.get(self.path) or site.routes.get(urlsplit(self.path).path)
                reply = route(self) if callable(route) else route
                if reply is None and route is not None:
                    return  # the handler wrote its own response
                reply = reply or Reply(
                    404, b"<html><body><h1>Not found</h1></body></html>", {"Content-Type": "text/html"}
                )
                self.send_response(reply.status)
                headers = {"Content-Length": str(len(reply.body)), **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = _QuietServer((host, port), _Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(
        self,
        path: str,
        body: bytes | str,
        content_type: str = "text/html; charset=utf-8",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Reply(status, data, {"Content-Type": content_type, **(headers or {})})
        return self.url(path)

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for p in self.requests if urlsplit(p).path == path)

    def __enter__(self) -> LoopbackSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
