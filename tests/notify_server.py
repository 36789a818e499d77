"""A local HTTP server standing in for a notification service: apprise's ``json://`` URLs
post each message to it, and the tests read what arrived."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Received:
    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.lock = threading.Lock()

    def bodies(self) -> list[str]:
        with self.lock:
            return [f"{m.get('title')}\n{m.get('message')}" for m in self.messages]

    def containing(self, *words: str) -> list[str]:
        return [b for b in self.bodies() if all(w in b for w in words)]


@contextmanager
def notify_server() -> Iterator[tuple[str, Received]]:
    """Yields the ``json://`` URL to notify and what it received."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with received.lock:
                received.messages.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"json://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A local port nothing listens on: a connection to it is refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
