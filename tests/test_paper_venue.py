"""Paper venue: fills follow the stated model, money reconciles, and an account survives restarts."""

from __future__ import annotations

import csv
import itertools
import math
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sa_event

from bot.config import load_settings
from bot.venue.base import (
    HIT_SEEN_SINCE,
    DuplicateOrder,
    OrderNotFound,
    OrderRejected,
    Venue,
    VenueError,
)
from bot.venue.feeds import ReplayFeed
from bot.venue.paper import InsufficientFunds, PaperVenue
from db.engine import make_engine, session_factory
from db.paper_store import PaperStore
from tests.conftest import candle_file

FIVE_MIN = 300_000
T0 = 1_672_531_200_000  # 2023-01-01 00:00 UTC, where crafted files start
SYMBOL = "BTC/USDT"
FEES = {"maker_fee": 0.001, "taker_fee": 0.002}


def venue_on(url: str, paths: list[Path], warmup: int = 200, account: str = "default",
             **kwargs: Any) -> PaperVenue:
    store = PaperStore(session_factory(make_engine(url)), account)
    return PaperVenue(ReplayFeed(paths, warmup=warmup), store, **(FEES | kwargs))


def crafted(tmp_path: Path, rows: list[tuple[float, float, float, float, float]]) -> Path:
    """A BTC/USDT 5m file: three flat warm-up candles at 100, then the given (o,h,l,c,v)."""
    path = tmp_path / "BTC_USDT-5m.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    body = [(100.0, 100.5, 99.5, 100.0, 10.0)] * 3 + rows
    lines += [",".join(map(str, (T0 + i * FIVE_MIN, *r))) for i, r in enumerate(body)]
    path.write_text("\n".join(lines) + "\n")
    return path


def account_state(venue: PaperVenue) -> tuple[Any, ...]:
    """Everything a restart must keep; ids lose their account tag so accounts compare."""
    balance = venue.fetch_balance()
    return (
        venue.feed.now_ms(), balance["total"], balance["used"],
        [(_seq(o["id"]), o["clientOrderId"], o["filled"], o["status"])
         for o in venue.fetch_open_orders()],
        [(_seq(t["id"]), _seq(t["order"]), t["price"], t["amount"], t["fee"]["cost"])
         for t in venue.fetch_my_trades()],
    )


def _seq(ident: str) -> str:
    return ident.split("-")[0]


# --- contract and basics -------------------------------------------------------------------


def test_is_a_venue_with_ccxt_shapes(sqlite_url: str) -> None:
    venue = venue_on(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    assert isinstance(venue, Venue) and venue.is_paper and venue.name == "paper"
    assert venue.now().tzinfo is not None
    assert int(venue.now().timestamp() * 1000) == venue.feed.now_ms()
    order = venue.create_order(SYMBOL, "market", "buy", 0.05, params={"clientOrderId": "td-1"})
    assert order["status"] == "closed" and order["filled"] == 0.05 and order["remaining"] == 0
    assert order["clientOrderId"] == "td-1" and order["fee"]["currency"] == "USDT"
    trade = venue.fetch_my_trades(SYMBOL)[0]
    assert trade["order"] == order["id"] and trade["clientOrderId"] == "td-1"
    assert trade["info"]["clientOrderId"] == "td-1" and trade["takerOrMaker"] == "taker"
    assert trade["fee"]["cost"] == pytest.approx(trade["cost"] * FEES["taker_fee"])
    balance = venue.fetch_balance()
    assert balance["BTC"]["total"] == 0.05 == balance["total"]["BTC"]
    assert balance["USDT"]["free"] == pytest.approx(10_000 - trade["cost"] - trade["fee"]["cost"])
    ticker = venue.fetch_ticker(SYMBOL)
    assert ticker["bid"] < ticker["ask"] and ticker["timestamp"] == venue.feed.now_ms()
    assert venue.fetch_ohlcv(SYMBOL, "5m", limit=3)[-1][0] + FIVE_MIN <= venue.feed.now_ms()
    assert venue.fetch_order_book(SYMBOL, 5)["asks"][0][0] == ticker["ask"]
    assert venue.describe_fill_model()["slippage_cap_pct"] == 1.0
    assert venue.fetch_my_trades(since=trade["timestamp"] + 1) == []


def test_overdraw_and_oversell_are_rejected(sqlite_url: str) -> None:
    venue = venue_on(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    before = venue.fetch_balance()["total"]
    with pytest.raises(InsufficientFunds):
        venue.create_order(SYMBOL, "market", "buy", 1.0, params={"clientOrderId": "big"})
    with pytest.raises(OrderRejected):
        venue.create_order(SYMBOL, "limit", "buy", 1.0, 15_000.0)
    with pytest.raises(OrderRejected, match="only 0"):
        venue.create_order(SYMBOL, "market", "sell", 0.01)
    assert venue.fetch_balance()["total"] == before and venue.fetch_open_orders() == []
    # a rejected order did not consume its client order id
    venue.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "big"})
    # funds held by a resting order are not spendable twice
    venue.create_order(SYMBOL, "limit", "buy", 0.5, 16_000.0)
    with pytest.raises(InsufficientFunds):
        venue.create_order(SYMBOL, "limit", "buy", 0.2, 16_000.0)


def test_selling_everything_is_not_refused_for_a_rounding_difference(sqlite_url: str) -> None:
    """A bot sums its fills in its own order; the venue's balance may differ from that sum in
    the last bits. Selling "everything" by the bot's sum sells what the venue holds, as an
    exchange rounding to its precision would; a real shortfall is still refused."""
    venue = venue_on(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    for amount in (0.1, 0.2, 0.03):
        venue.create_order(SYMBOL, "market", "buy", amount)
    free = venue.fetch_balance()["free"]["BTC"]
    oversold = math.nextafter(math.nextafter(free, math.inf), math.inf)  # two bits over
    with pytest.raises(InsufficientFunds):
        venue.create_order(SYMBOL, "market", "sell", free * (1 + 1e-6))
    sold = venue.create_order(SYMBOL, "market", "sell", oversold)
    assert sold["filled"] == free and sold["status"] == "closed"
    assert venue.fetch_balance()["total"].get("BTC", 0.0) == 0.0


def test_duplicate_client_order_id_and_unknown_cancel(sqlite_url: str) -> None:
    venue = venue_on(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    order = venue.create_order(SYMBOL, "limit", "buy", 0.01, 10_000.0, {"clientOrderId": "x"})
    with pytest.raises(DuplicateOrder):
        venue.create_order(SYMBOL, "limit", "buy", 0.01, 10_000.0, {"clientOrderId": "x"})
    assert venue.cancel_order(order["id"])["status"] == "canceled"
    assert venue.fetch_balance()["used"]["USDT"] == 0
    with pytest.raises(DuplicateOrder):  # still used, like an exchange's order history
        venue.create_order(SYMBOL, "limit", "buy", 0.01, 10_000.0, {"clientOrderId": "x"})
    with pytest.raises(OrderNotFound):
        venue.cancel_order(order["id"])
    with pytest.raises(OrderNotFound):
        venue.cancel_order("nope")


# --- fill model on crafted candles ---------------------------------------------------------


def test_limit_needs_trade_through_and_fills_by_volume_share(sqlite_url: str, tmp_path: Path) -> None:
    path = crafted(tmp_path, [
        (100.0, 100.5, 99.0, 100.0, 10.0),   # touches 99: no fill
        (100.0, 100.5, 98.9, 100.0, 10.0),   # trades through: 1.0 (10% of 10)
        (100.0, 100.5, 98.0, 100.0, 10.0),   # 1.0 more
        (100.0, 100.5, 98.0, 100.0, 10.0),   # the last 0.5
        (100.0, 100.5, 98.0, 100.0, 10.0),
    ])
    venue = venue_on(sqlite_url, [path], warmup=3, volume_share=0.1)
    order = venue.create_order(SYMBOL, "limit", "buy", 2.5, 99.0)
    filled = []
    while venue.advance():
        filled.append(venue.fetch_order(order["id"])["filled"])
    assert filled == [0.0, 1.0, 2.0, 2.5, 2.5]
    trades = venue.fetch_my_trades()
    assert {t["price"] for t in trades} == {99.0} and {t["takerOrMaker"] for t in trades} == {"maker"}
    assert venue.fetch_order(order["id"])["status"] == "closed"
    assert venue.fetch_balance()["USDT"]["total"] == pytest.approx(10_000 - 2.5 * 99 * 1.001)


@pytest.mark.parametrize(
    ("side", "stop", "candle", "expected"),
    [
        ("sell", 95.0, (90.0, 91.0, 89.0, 90.0, 10.0), 90.0),     # gap down: fills at the open
        ("sell", 95.0, (100.0, 100.5, 94.0, 96.0, 10.0), 95.0),   # trades through: at the stop
        ("buy", 105.0, (110.0, 111.0, 109.0, 110.0, 10.0), 110.0),  # gap up: at the open
        ("sell", 95.0, (100.0, 100.5, 95.5, 96.0, 10.0), None),   # never reached
    ],
)
def test_stop_fills_at_the_worse_of_stop_and_gap_open(
    sqlite_url: str, tmp_path: Path, side: str, stop: float,
    candle: tuple[float, ...], expected: float | None,
) -> None:
    venue = venue_on(sqlite_url, [crafted(tmp_path, [candle])], warmup=3)  # type: ignore[list-item]
    venue.create_order(SYMBOL, "market", "buy", 1.0)
    order = venue.create_order(SYMBOL, "market", side, 1.0, params={"stopPrice": stop})
    assert order["type"] == "stop" and order["status"] == "open"
    assert venue.advance()
    trades = [t for t in venue.fetch_my_trades() if t["order"] == order["id"]]
    if expected is None:
        assert trades == [] and venue.fetch_order(order["id"])["status"] == "open"
        return
    assert [(t["price"], t["amount"], t["takerOrMaker"]) for t in trades] == [
        (expected, 1.0, "taker")
    ]
    assert trades[0]["fee"]["cost"] == pytest.approx(expected * FEES["taker_fee"])


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # the second candle gapped through: at its open, not at the stop the first open allows
        ([(100.0, 100.5, 99.0, 99.5, 10.0), (94.0, 96.0, 93.0, 96.0, 10.0)], 94.0),
        ([(100.0, 100.5, 94.0, 96.0, 10.0), (96.0, 96.5, 95.5, 96.0, 10.0)], 95.0),  # through
        ([(100.0, 100.5, 99.0, 99.5, 10.0), (99.5, 100.0, 95.5, 96.0, 10.0)], None),  # never
    ],
)
def test_a_stop_seen_hit_is_judged_candle_by_candle_over_the_span_named(
    sqlite_url: str, tmp_path: Path, rows: list[tuple[float, ...]], expected: float | None,
) -> None:
    """A stop placed naming since when the bot saw it hit is judged at once against the
    candles closed from then on, in order, then the step's: the first to reach it fills it,
    at the worse of the stop and that candle's open; one the span never reached rests."""
    last = (96.0, 96.5, 95.5, 96.0, 10.0)  # the step's candle, above the stop
    venue = venue_on(sqlite_url, [crafted(tmp_path, [*rows, last])], warmup=3)  # type: ignore[list-item]
    venue.create_order(SYMBOL, "market", "buy", 1.0)
    for _ in range(len(rows) + 1):
        assert venue.advance()
    order = venue.create_order(SYMBOL, "market", "sell", 1.0,
                               params={"stopPrice": 95.0, HIT_SEEN_SINCE: T0 + 3 * FIVE_MIN})
    trades = [(t["price"], t["amount"]) for t in venue.fetch_my_trades() if t["order"] == order["id"]]
    if expected is None:
        assert trades == [] and order["status"] == "open"
        return
    assert trades == [(expected, 1.0)] and order["status"] == "closed"


def test_market_order_walks_the_book_up_to_the_slippage_cap(
    sqlite_url: str, tmp_path: Path
) -> None:
    venue = venue_on(sqlite_url, [crafted(tmp_path, [])], warmup=3, slippage_cap_pct=0.5)
    book = venue.fetch_order_book(SYMBOL, 100)
    best = book["asks"][0][0]
    within = sum(a for p, a in book["asks"] if p <= best * 1.005)
    order = venue.create_order(SYMBOL, "market", "buy", within * 3)
    assert order["status"] == "closed"
    assert order["filled"] == pytest.approx(within) and order["remaining"] > 0
    assert best < order["average"] <= best * 1.005


# --- persistence, determinism, reconciliation ----------------------------------------------


def scripted(venue: PaperVenue, steps: int = 300) -> None:
    """Trade a little and run: a market buy, a resting sell, a dip buy, a stop."""
    venue.create_order(SYMBOL, "market", "buy", 0.2, params={"clientOrderId": "a"})
    last = venue.fetch_ticker(SYMBOL)["last"]
    venue.create_order(SYMBOL, "limit", "sell", 0.1, last * 1.003, {"clientOrderId": "b"})
    venue.create_order(SYMBOL, "limit", "buy", 0.1, last * 0.997, {"clientOrderId": "c"})
    venue.create_order(SYMBOL, "market", "sell", 0.05, params={"stopPrice": last * 0.99})
    venue.create_order(SYMBOL, "limit", "sell", 0.01, last * 1.5, {"clientOrderId": "far"})
    for _ in range(steps):
        venue.advance()


def test_restart_continues_the_same_account(db_url: str) -> None:
    path = candle_file("BTC_USDT-5m.csv")
    venue = venue_on(db_url, [path])
    scripted(venue)
    state = account_state(venue)
    assert state[3] and state[4]  # something rests and something filled
    venue.store.sessions.kw["bind"].dispose()
    del venue
    again = venue_on(db_url, [path])
    assert account_state(again) == state
    with pytest.raises(DuplicateOrder):
        again.create_order(SYMBOL, "market", "buy", 0.01, params={"clientOrderId": "a"})
    # continuing after the restart equals never having stopped
    twin = venue_on(f"{db_url}", [path], account="twin")
    scripted(twin)
    for venue_ in (again, twin):
        dip = venue_.fetch_ticker(SYMBOL)["last"] * 0.995
        venue_.create_order(SYMBOL, "limit", "buy", 0.05, dip)
        for _ in range(200):
            venue_.advance()
    assert account_state(again) == account_state(twin)


@pytest.mark.slow
def test_a_deferred_clock_is_stored_by_the_transaction_that_carries_it(sqlite_url: str) -> None:
    """``defer_clock``: a step that fills nothing leaves its clock to the caller's next
    transaction; until that commits, a restart continues at the clock last stored."""
    path = candle_file("BTC_USDT-5m.csv")
    venue = venue_on(sqlite_url, [path], defer_clock=True)
    start = venue.feed.now_ms()
    venue.advance()
    assert venue_on(sqlite_url, [path]).feed.now_ms() == start
    with venue.store.engine.connect() as conn:  # a transaction that never commits
        venue.carry_clock(conn)
    assert venue_on(sqlite_url, [path]).feed.now_ms() == start
    with venue.store.engine.begin() as conn:
        saved = venue.carry_clock(conn)
    saved()
    assert venue_on(sqlite_url, [path]).feed.now_ms() == start + FIVE_MIN
    venue.advance()
    venue.create_order(SYMBOL, "market", "buy", 0.01)  # its commit writes the clock too
    with venue.store.engine.begin() as conn:
        venue.carry_clock(conn)()  # nothing left to write
    assert venue_on(sqlite_url, [path]).feed.now_ms() == start + 2 * FIVE_MIN


@pytest.mark.slow
def test_determinism_across_databases(tmp_path: Path) -> None:
    from db.migrate import upgrade

    results = []
    for name in ("one", "two"):
        url = f"sqlite:///{tmp_path / name}.db"
        upgrade(url)
        venue = venue_on(url, [candle_file("BTC_USDT-5m.csv")])
        scripted(venue, steps=600)
        results.append(account_state(venue))
    assert results[0] == results[1]


def test_from_settings_builds_each_feed(sqlite_url: str) -> None:
    sessions = session_factory(make_engine(sqlite_url))
    path = candle_file("BTC_USDT-5m.csv")
    replay = PaperVenue.from_settings(load_settings(FEED=f"replay:{path}"),
                                      partial(PaperStore, sessions))
    assert replay.feed.kind == "replay" and replay.fetch_balance()["total"] == {"USDT": 10_000.0}
    synthetic = PaperVenue.from_settings(
        load_settings(FEED="synthetic", BOT_NAME="synth", SYMBOLS="BTC/USDT,ETH/USDT"),
        partial(PaperStore, sessions))
    assert synthetic.feed.kind == "synthetic"
    assert synthetic.fetch_balance()["total"] == {"USDT": 10_000.0}
    synthetic.create_order(SYMBOL, "market", "buy", 0.01)
    tape = synthetic.fetch_ohlcv(SYMBOL, "1m", limit=50)
    restarted = PaperVenue.from_settings(
        load_settings(FEED="synthetic", BOT_NAME="synth", SYMBOLS="BTC/USDT,ETH/USDT"),
        partial(PaperStore, sessions))
    assert restarted.fetch_ohlcv(SYMBOL, "1m", limit=50)[: len(tape) - 5] == tape[: len(tape) - 5]
    assert restarted.fetch_balance()["total"] == synthetic.fetch_balance()["total"]


@pytest.mark.slow
def test_replay_of_the_whole_file_is_not_slowed_by_the_store(sqlite_url: str) -> None:
    """The store's work per step stays the same from the first step to the last: statements
    are counted (not timed), so a query that grows with history or a step that re-reads the
    account would show as more statements late in the file than early."""
    engine = make_engine(sqlite_url)
    venue = PaperVenue(ReplayFeed([candle_file("BTC_USDT-5m.csv")], warmup=200),
                       PaperStore(session_factory(engine), "default"), **FEES)
    scripted(venue, steps=0)
    statements = [0]
    sa_event.listen(engine, "before_cursor_execute",
                 lambda *_: statements.__setitem__(0, statements[0] + 1))
    per_step, before = [], 0
    while venue.advance():  # a step: the clock moves (and is stored), then the bot's reads
        venue.fetch_ticker(SYMBOL)
        venue.fetch_open_orders()
        venue.fetch_balance()
        per_step.append(statements[0] - before)
        before = statements[0]
    assert len(per_step) > 10_000
    assert min(per_step) > 0  # every step is stored
    assert max(per_step[-1000:]) <= max(per_step[:1000])


# --- property: random orders on real candles -----------------------------------------------


def _candles_by_open(path: Path) -> dict[int, list[float]]:
    with path.open() as handle:
        reader = csv.reader(handle)
        next(reader)
        return {int(float(r[0])): [float(x) for x in r] for r in reader}


ORDER = st.tuples(
    st.sampled_from(["market", "limit", "stop"]), st.sampled_from(["buy", "sell"]),
    st.floats(0.001, 0.25), st.floats(-0.005, 0.005), st.integers(0, 60),
)
ACCOUNTS = itertools.count()


@pytest.mark.slow
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(orders=st.lists(ORDER, min_size=1, max_size=12), share=st.sampled_from([0.00005, 0.0005, 0.1]))
def test_random_orders_reconcile_and_respect_the_fill_model(
    sqlite_url: str, orders: list[tuple[str, str, float, float, int]], share: float
) -> None:
    path = candle_file("BTC_USDT-5m.csv")
    candles = _candles_by_open(path)
    venue = venue_on(sqlite_url, [path], account=f"prop{next(ACCOUNTS)}", volume_share=share)
    venue.create_order(SYMBOL, "market", "buy", 0.3)  # something to sell
    for kind, side, amount, offset, wait in orders:
        last = venue.fetch_ticker(SYMBOL)["last"]
        price = last * (1 + offset)
        try:
            if kind == "stop":
                venue.create_order(SYMBOL, "market", side, amount, params={"stopPrice": price})
            else:
                venue.create_order(SYMBOL, kind, side, amount, price if kind == "limit" else None)
        except OrderRejected:
            event("rejected")
        for _ in range(wait):
            venue.advance()
        balance = venue.fetch_balance()
        assert all(v >= -1e-9 for v in balance["free"].values())

    trades = venue.fetch_my_trades()
    buys = [t for t in trades if t["side"] == "buy"]
    sells = [t for t in trades if t["side"] == "sell"]
    fees = sum(t["fee"]["cost"] for t in trades)
    cash = 10_000 + sum(t["cost"] for t in sells) - sum(t["cost"] for t in buys) - fees
    position = sum(t["amount"] for t in buys) - sum(t["amount"] for t in sells)
    total = venue.fetch_balance()["total"]
    assert total["USDT"] == pytest.approx(cash, abs=1e-6)
    assert total.get("BTC", 0.0) == pytest.approx(position, abs=1e-12)
    last = venue.fetch_ticker(SYMBOL)["last"]
    spent = sum(t["cost"] for t in buys) - sum(t["cost"] for t in sells)
    equity = total["USDT"] + total.get("BTC", 0.0) * last
    assert equity == pytest.approx(10_000 - spent - fees + position * last, abs=1e-6)

    maker_by_candle: dict[int, float] = defaultdict(float)
    for trade in trades:
        order = venue.fetch_order(trade["order"])
        if order["type"] == "stop":
            candle = candles[trade["timestamp"] - FIVE_MIN]
            worse = max if trade["side"] == "buy" else min
            assert trade["price"] == worse(order["stopPrice"], candle[1])
        event(f"{order['type']} fill, {trade['takerOrMaker']}")
        if trade["takerOrMaker"] != "maker":
            continue
        candle = candles[trade["timestamp"] - FIVE_MIN]
        maker_by_candle[trade["timestamp"] - FIVE_MIN] += trade["amount"]
        if trade["side"] == "buy":
            assert candle[3] < trade["price"]
        else:
            assert candle[2] > trade["price"]
    for open_ms, amount in maker_by_candle.items():
        assert amount <= candles[open_ms][5] * share * (1 + 1e-12)


def test_crossing_limit_takes_the_book_up_to_its_price_and_rests_the_rest(
    sqlite_url: str, tmp_path: Path
) -> None:
    venue = venue_on(sqlite_url, [crafted(tmp_path, [])], warmup=3)
    asks = venue.fetch_order_book(SYMBOL, 100)["asks"]
    limit = asks[1][0]
    order = venue.create_order(SYMBOL, "limit", "buy", 5.0, limit)
    assert order["status"] == "open"
    assert order["filled"] == pytest.approx(asks[0][1] + asks[1][1])
    assert order["average"] <= limit
    assert venue.fetch_my_trades()[0]["takerOrMaker"] == "taker"
    assert venue.fetch_balance()["used"]["USDT"] == pytest.approx(
        order["remaining"] * limit * (1 + max(FEES.values()))
    )


def test_unknown_symbol_is_a_venue_error(sqlite_url: str) -> None:
    venue = venue_on(sqlite_url, [candle_file("BTC_USDT-5m.csv")])
    with pytest.raises(VenueError):
        venue.fetch_ticker("DOGE/USDT")
    with pytest.raises(OrderRejected):
        venue.create_order("DOGE/USDT", "market", "buy", 1.0)


def test_several_symbols_share_their_quote_balance(sqlite_url: str) -> None:
    paths = [candle_file("ETH_BTC-5m.csv"), candle_file("LTC_BTC-5m.csv")]
    venue = venue_on(sqlite_url, paths, starting_balance=1.0)
    assert venue.fetch_balance()["total"] == {"BTC": 1.0}
    venue.create_order("ETH/BTC", "market", "buy", 2.0)
    venue.create_order("LTC/BTC", "market", "buy", 5.0)
    total = venue.fetch_balance()["total"]
    assert total["ETH"] == 2.0 and total["LTC"] == 5.0 and 0 < total["BTC"] < 1.0
