"""Replay recorded exchange HTTP through real ccxt exchange classes (test helper).

The fixtures under shared/fixtures/ccxt come from ccxt's own offline test suite (see its
README). Two ways in: replacing ``exchange.fetch`` hands ccxt the recorded body right after
it built and signed the request, and a fake transport adapter on ``exchange.session``
returns a status code and body so ccxt's HTTP error mapping runs as it does in production.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ccxt
import pytest
import requests
from conftest import CCXT_FIXTURES
from requests.adapters import BaseAdapter

API_KEY = "account-replay-key-4f1c9e"  # gemini signs only account-scoped keys
SECRET = "cmVwbGF5LXNlY3JldC05YjI3ZDE="  # base64, as kraken's HMAC needs
PASSWORD = "replay-password-77a0"


def fixtures_dir() -> Path:
    """The fixture folder, or skip with the reason when shared/ is not beside the checkout."""
    if not (CCXT_FIXTURES / "response").is_dir():
        pytest.skip(f"{CCXT_FIXTURES} is absent: the shared ccxt fixtures are not here")
    return CCXT_FIXTURES


@cache
def _load(kind: str, exchange_id: str) -> dict[str, Any]:
    path = fixtures_dir() / kind / f"{exchange_id}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def case(exchange_id: str, method: str, description: str | None = None) -> dict[str, Any]:
    """One recorded case (the first of the method unless described), deep-copied."""
    cases = _load("response", exchange_id)["methods"][method]
    chosen = next(c for c in cases if description in (None, c["description"]))
    return copy.deepcopy(chosen)


def _tick_size_precision(markets: dict[str, Any]) -> dict[str, Any]:
    """binance's fixture stores decimal places; ccxt's binance now works in tick sizes."""
    for market in markets.values():
        precision = market.get("precision") or {}
        for key in ("amount", "price", "base", "quote"):
            if isinstance(precision.get(key), int):
                precision[key] = 10.0 ** -precision[key]
    return markets


def make_exchange(exchange_id: str, **options: Any) -> ccxt.Exchange:
    """The real ccxt class with dummy keys and recorded markets: load_markets stays offline."""
    exchange: ccxt.Exchange = getattr(ccxt, exchange_id)(
        {"apiKey": API_KEY, "secret": SECRET, "password": PASSWORD, "enableRateLimit": False}
    )
    exchange.options.update(copy.deepcopy(_load("response", exchange_id).get("options") or {}))
    exchange.options.update(options)
    markets = copy.deepcopy(_load("markets", exchange_id))
    if exchange.precisionMode == ccxt.TICK_SIZE:
        markets = _tick_size_precision(markets)
    # Older recordings lack keys newer ccxt reads directly (binance: market['inverse']).
    markets = {s: {**exchange.safe_market_structure(), **m} for s, m in markets.items()}
    currencies = copy.deepcopy(_load("currencies", exchange_id)) or None
    exchange.set_markets(markets, currencies)
    return exchange


@dataclass
class Sent:
    """One request as ccxt handed it to the network layer."""

    method: str
    url: str
    body: str | None
    headers: dict[str, str] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        """Query and form/JSON body parameters together, single-valued."""
        found = {k: v[-1] for k, v in parse_qs(urlsplit(self.url).query).items()}
        if self.body:
            try:
                decoded = json.loads(self.body)
            except ValueError:
                decoded = {k: v[-1] for k, v in parse_qs(self.body).items()}
            if isinstance(decoded, dict):
                found.update({k: str(v) for k, v in decoded.items()})
        return found


def replay_fetch(exchange: ccxt.Exchange, *bodies: Any) -> list[Sent]:
    """Answer each ``fetch`` with the next recorded body (the last one repeats)."""
    sent: list[Sent] = []
    queue = [copy.deepcopy(b) for b in bodies]

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        sent.append(Sent(method, url, body, dict(headers or {})))
        return copy.deepcopy(queue.pop(0) if len(queue) > 1 else queue[0])

    exchange.fetch = fetch
    return sent


Answer = tuple[int, Any] | BaseException


class FakeTransport(BaseAdapter):
    """A requests adapter answering with recorded (status, body) pairs or raising."""

    def __init__(self, *answers: Answer) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[Sent] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        self.sent.append(Sent(request.method or "", request.url or "", body, dict(request.headers)))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        status, payload = answer
        response = requests.Response()
        response.status_code = status
        response.reason = HTTPStatus(status).phrase
        response._content = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to release."""


def mount(exchange: ccxt.Exchange, transport: FakeTransport) -> FakeTransport:
    """Route every HTTP(S) request of the exchange through ``transport``."""
    exchange.session.mount("https://", transport)
    exchange.session.mount("http://", transport)
    return transport


def assert_matches(
    expected: Any, actual: Any, skip: tuple[str, ...] = (), path: str = "$"
) -> None:
    """Compare as ccxt's static tests do: walk expected, ignore info and skipKeys,
    numbers numerically, extra keys in ``actual`` allowed."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected a dict, got {actual!r}"
        for key, value in expected.items():
            if key == "info" or key in skip:
                continue
            assert key in actual, f"{path}.{key} is missing"
            assert_matches(value, actual[key], skip, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_matches(e, a, skip, f"{path}[{i}]")
    elif isinstance(expected, int | float) and not isinstance(expected, bool):
        assert isinstance(actual, int | float | str), f"{path}: {actual!r} is not a number"
        assert math.isclose(float(actual), float(expected), rel_tol=1e-9), f"{path}: {actual!r}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def skip_keys(exchange_id: str) -> tuple[str, ...]:
    return tuple(_load("response", exchange_id).get("skipKeys") or ())

