"""An API key the exchange refuses (revoked, IP not allowed, no trading permission): the real
loop, ccxt's real binance class, a binance account on the wire (``tests.binance_wire``) that
answers -2015 as binance does, and SQLite.

The bot does not ask again at once nor trade blind: entries pause, the operator is told
once, in words naming the key and never the key itself; it goes on asking at its cadence,
and once the key is taken again its stops sell and its entries go."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.alerts.sink import EventSink
from bot.loop import run_iteration
from bot.model.events import EventKind
from bot.runtime import Runtime
from tests.binance_wire import PRIVATE, BinanceWire, wire_runtime
from tests.ccxt_replay import API_KEY, SECRET, fixtures_dir
from tests.loop_harness import ScriptedEngine
from tests.test_live_orders import Clock, buy, orders, plans, step


@pytest.fixture(autouse=True)
def _fixtures() -> None:
    fixtures_dir()


class Told(EventSink):
    """The runtime's sink, keeping what it tells instead of sending it."""

    def __init__(self) -> None:
        super().__init__("live", "LIVE")
        self.told: list[tuple[EventKind, str]] = []

    def emit(self, kind, text) -> None:  # noqa: ANN001 - EventSink's own signature
        self.told.append((kind, text() if callable(text) else text))

    def kinds_told(self) -> list[EventKind]:
        return [kind for kind, _ in self.told if kind.startswith("breaker")]


def listening(rt: Runtime) -> Told:
    told = Told()
    rt.events = told
    assert rt.breaker is not None
    rt.breaker.on_change = told.breaker_changed
    return told


def refused_pass(rt: Runtime, clock: Clock, wire: BinanceWire) -> list[tuple[str, str, str]]:
    """One iteration with the key refused: the signed requests it sent."""
    sent = len(wire.sent)
    run_iteration(rt)
    assert rt.errors and all("-2015" in e for e in rt.errors), rt.errors
    clock.value += timedelta(seconds=10)
    return [(m, p, q.get("symbol", "")) for m, p, q in wire.sent[sent:] if p in PRIVATE]


def test_a_revoked_key_pauses_entries_once_and_the_stop_sells_when_it_is_back(
        sqlite_url) -> None:
    clock = Clock()
    wire = BinanceWire(clock, {"ETHUSDT": 2000.0})
    rt = wire_runtime(sqlite_url, wire, ScriptedEngine([buy(0.1)]))
    told = listening(rt)
    step(rt, clock, 2)  # bought and booked: ccxt has seen the key taken
    wire.refusing = "key"
    for _ in range(3):
        signed = refused_pass(rt, clock, wire)
        assert signed and len(signed) == len(set(signed)), f"asked again at once: {signed}"
    assert rt.breaker is not None and rt.breaker.is_open(rt.now()), "entries go on"
    assert told.kinds_told() == [EventKind.BREAKER_TRIPPED]
    (text,) = [t for k, t in told.told if k == EventKind.BREAKER_TRIPPED]
    assert "API key" in text and "-2015" in text
    assert API_KEY not in text and SECRET not in text
    wire.prices["ETHUSDT"] = 1900.0  # through the stop at 1960
    wire.refusing = None
    step(rt, clock)  # the key is taken again: the stop sells at once
    assert wire.balances["ETH"] == pytest.approx(0.0)
    assert told.kinds_told() == [EventKind.BREAKER_TRIPPED, EventKind.BREAKER_RECOVERED]
    assert not rt.breaker.is_open(rt.now())


def test_a_key_without_trading_permission_pauses_entries_until_one_is_taken(
        sqlite_url) -> None:
    clock = Clock()
    wire = BinanceWire(clock, {"ETHUSDT": 2000.0}, refusing="trading")
    rt = wire_runtime(sqlite_url, wire, ScriptedEngine([buy(0.1)] * 4),
                      LLM_MIN_INTERVAL_SECONDS=0)
    told = listening(rt)

    def posts() -> int:
        return len([s for s in wire.sent if s[:2] == ("POST", "order")])

    run_iteration(rt)  # the reads are taken, the entry is refused
    clock.value += timedelta(seconds=10)
    assert posts() == 1, "sent again at once"
    (refused,) = orders(rt)
    assert refused.status == "rejected" and "-2015" in (refused.error or "")
    step(rt, clock, 2)  # entries pause: no order goes
    assert posts() == 1
    assert told.kinds_told() == [EventKind.BREAKER_TRIPPED]
    wire.refusing = None
    clock.value += timedelta(seconds=rt.settings.circuit_breaker_cooldown_seconds)
    step(rt, clock, 2)  # after the cool-down an entry goes, and is taken
    assert posts() == 2
    assert wire.balances["ETH"] == pytest.approx(0.1)
    assert [p.status for p in plans(rt)] == ["closed", "open"]
    assert told.kinds_told() == [EventKind.BREAKER_TRIPPED, EventKind.BREAKER_RECOVERED]


def test_a_key_refused_from_the_start_is_told_once_and_recovers(sqlite_url) -> None:
    """Before any signed request is taken ccxt raises binance's -2015 as the
    AuthenticationError it is; the start's own reads meet it first."""
    clock = Clock()
    wire = BinanceWire(clock, {"ETHUSDT": 2000.0}, refusing="key")
    rt = wire_runtime(sqlite_url, wire, ScriptedEngine([]))
    told = listening(rt)
    for _ in range(3):
        signed = refused_pass(rt, clock, wire)
        assert signed and len(signed) == len(set(signed)), f"asked again at once: {signed}"
    assert all("AuthenticationError" in e for e in rt.errors)
    assert rt.breaker is not None and rt.breaker.is_open(rt.now()), "entries go on"
    assert rt.breaker.trips == 1 and told.kinds_told() == [], "told more than once"
    assert "AuthenticationError" in (rt.breaker.refusal or "")
    wire.refusing = None
    step(rt, clock)
    assert not rt.breaker.is_open(rt.now())
    assert told.kinds_told() == [EventKind.BREAKER_RECOVERED]
