"""Fill sync on an exchange whose trade history comes a page at a time: the real loop, ccxt's
real binance class, a binance account on the wire (``tests.binance_wire``) and SQLite.

binance answers one myTrades request with 500 trades, 1000 at most; a busy window (a limit
order filled in many trades, a restart after hours down) holds more. Every fill of the
window is booked, once, however the pages cut it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.engine.schema import Action, ActionType, Decision
from db.models import Trade
from tests.binance_wire import BinanceWire, wire_runtime
from tests.ccxt_replay import fixtures_dir
from tests.loop_harness import ScriptedEngine
from tests.test_live_orders import ETH, Clock, orders, plans, step

FILLS = 125
PART = 0.0008  # of the 0.1 ETH entry, FILLS times


@pytest.fixture(autouse=True)
def _fixtures() -> None:
    fixtures_dir()


def test_every_page_of_a_busy_window_is_booked_once(sqlite_url) -> None:
    """The entry rests, then fills in 125 trades, three to a millisecond; the account's
    answers are capped at 40 trades (binance's cap, lowered), so a page ends inside a
    millisecond and its other trades start the next page."""
    clock = Clock()
    wire = BinanceWire(clock, {"ETHUSDT": 2000.0}, page_max=40)
    limit = Decision(actions=[Action(action=ActionType.BUY, symbol=ETH, size=0.1,
                                     order_type="limit", price=1990.0, reason="a dip")])
    rt = wire_runtime(sqlite_url, wire, ScriptedEngine([limit]))
    step(rt, clock)  # the limit rests on the book
    (entry,) = orders(rt)
    since = int(clock().timestamp() * 1000)
    for n in range(FILLS):
        clock.value += timedelta(milliseconds=1 if n % 3 == 0 else 0)
        wire.fill_resting(entry.order_id or "", PART)
    step(rt, clock)
    with rt.db() as db:
        assert db.scalar(select(func.count()).select_from(Trade)) == FILLS
    assert rt.book.quantity(ETH) == pytest.approx(FILLS * PART)
    (plan,) = plans(rt)
    assert plan.filled_size == pytest.approx(FILLS * PART)
    shown = [t["id"] for t in rt.venue.fetch_my_trades(ETH, since)]
    assert sorted(shown) == sorted(t["id"] for t in wire.trades), "each trade once"


def test_a_window_is_read_in_a_bounded_number_of_pages(sqlite_url, caplog) -> None:
    """A window longer than the pages allowed stops at MAX_TRADE_PAGES, saying so, rather
    than asking the exchange without end."""
    from bot.venue.ccxt_venue import MAX_TRADE_PAGES

    clock = Clock()
    wire = BinanceWire(clock, {"ETHUSDT": 2000.0}, page_max=2)
    rt = wire_runtime(sqlite_url, wire, ScriptedEngine([]))
    wire.orders["1"] = {"orderId": "1", "symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT",
                        "price": "1990", "origQty": "1", "executedQty": "0",
                        "cummulativeQuoteQty": "0", "status": "NEW"}
    since = int(clock().timestamp() * 1000)
    for _ in range(2 * MAX_TRADE_PAGES + 10):
        clock.value += timedelta(milliseconds=1)
        wire.fill_resting("1", 0.001)
    asked = len(wire.sent)
    shown = rt.venue.fetch_my_trades(ETH, since)
    assert len(wire.sent) - asked == MAX_TRADE_PAGES
    assert len(shown) == MAX_TRADE_PAGES + 1  # each page repeats its first one's newest
    assert "later trades are not read" in caplog.text
