"""Recorded HTTP bodies served to a real SDK through an httpx transport.

The openai and anthropic SDKs build their requests and parse the answers for real; only the
network is replaced. Every request the SDK sent is kept for the test to read. The openai SDK
runs on httpx and the anthropic SDK on httpx2 (same API, separate classes), so the client
is built from the module the SDK takes.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / name).read_bytes()


def fixture_json(provider: str, name: str) -> dict[str, Any]:
    return json.loads(fixture(provider, name))


class UnrecordedRequest(BaseException):
    """A request beyond the recorded answers. Not an ``Exception``: the engine turns every
    ``Exception`` into a HOLD, which would let a test expecting a HOLD pass by accident."""


class RecordedAnswers:
    """Serves (status, body) pairs in order as JSON responses and keeps each request."""

    def __init__(self, *answers: tuple[int, bytes], http: ModuleType = httpx) -> None:
        self.http = http
        self.queue = list(answers)
        self.requests: list[dict[str, Any]] = []
        self.urls: list[str] = []
        self.headers: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.urls.append(str(request.url))
        self.headers.append(request.headers)
        self.requests.append(json.loads(request.content))
        if not self.queue:
            raise UnrecordedRequest(f"request {len(self.requests)} has no recorded answer")
        status, body = self.queue.pop(0)
        return self.http.Response(status, content=body,
                                  headers={"content-type": "application/json"})

    def client(self) -> Any:
        return self.http.Client(transport=self.http.MockTransport(self))


def answers(provider: str, *names: str | tuple[int, str],
            http: ModuleType = httpx) -> RecordedAnswers:
    """The provider's recorded bodies in order; a bare name is served with status 200."""
    pairs = [(200, name) if isinstance(name, str) else name for name in names]
    return RecordedAnswers(*[(status, fixture(provider, name)) for status, name in pairs],
                           http=http)


def usage(provider: str, names: tuple[str, ...], tokens_in: str,
          tokens_out: str) -> tuple[int, int]:
    """Tokens in and out summed over these recorded bodies' ``usage`` objects."""
    meta = [fixture_json(provider, name)["usage"] for name in names]
    return sum(m[tokens_in] for m in meta), sum(m[tokens_out] for m in meta)
