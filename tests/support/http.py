"""A local HTTP server that records what it receives, to test outgoing webhooks for real."""

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class RecordingServer:
    """Answers each request with the next status in `statuses` (then the last one forever)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                recorder.received.append(
                    Received("POST", self.path, dict(self.headers), self.rfile.read(length))
                )
                index = min(len(recorder.received) - 1, len(recorder.statuses) - 1)
                self.send_response(recorder.statuses[index])
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class FakeApi:
    """A provider's API on 127.0.0.1: each request is recorded, then answered by the first
    route whose method and path pattern match (`re.fullmatch` on the path without its query),
    else 404. A responder returns `(status, headers, body)`; `json_answer` builds one.

    Tests assert on `received` (method, path with query, headers, raw body) to check the exact
    wire format an adapter sends.
    """

    routes: list = field(default_factory=list)  # [(method, pattern, responder)]
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length", 0) or 0)
                request = Received(
                    self.command, self.path, dict(self.headers), self.rfile.read(length)
                )
                api.received.append(request)
                status, headers, body = api.answer(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def route(self, method: str, pattern: str, responder) -> None:
        """Add a route; later routes are tried first, so a test can override a default."""
        self.routes.insert(0, (method.upper(), re.compile(pattern), responder))

    def answer(self, request: Received) -> tuple[int, dict[str, str], bytes]:
        path = request.path.split("?", 1)[0]
        for method, pattern, responder in self.routes:
            if method == request.method and pattern.fullmatch(path):
                return responder(request)
        return 404, {"Content-Type": "application/json"}, b'{"error": "no such route"}'

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_answer(payload, status: int = 200, headers: dict[str, str] | None = None):
    """A responder that always answers `payload` as JSON."""
    body = json.dumps(payload).encode()

    def respond(_request: Received) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json", **(headers or {})}, body

    return respond
