"""What the decide step takes from the runtime's store (bot/store.py) is what the
database holds.

The context is built twice at each step, through the runtime's store and from the
database alone, and must come out the same; a restarted runtime starts with none kept.
"""

from __future__ import annotations

from dataclasses import astuple
from datetime import timedelta

from bot.decision_context import build_context
from bot.engine.schema import Action, ActionType, Decision
from db.decision_queries import SessionCandles, newest_market, newest_trades, recent_trades
from tests.conftest import candle_file
from tests.loop_harness import CostlyEngine, ScriptedEngine, make_runtime, step
from tests.test_runtime_store import SYMBOL, buy


def _contexts(rt):
    with rt.db() as db:
        args = (db, rt.settings, rt.session_id, rt.now(), 1000.0, 500.0)
        return build_context(*args, store=rt.store), build_context(*args)


def _resting_buy() -> Decision:
    """A limit entry far below the market: it stays an open order."""
    return Decision(actions=[Action(action=ActionType.BUY, symbol=SYMBOL, size=0.01,
                                    order_type="limit", price=16000.0, reason="resting")])


def test_the_mirrored_rows_are_the_queried_ones(sqlite_url: str) -> None:
    """Through entries, their fills, a resting order and exits, the context built with the
    runtime's store is the one built from the database alone."""
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], ScriptedEngine(
        [buy(), Decision(), _resting_buy(), Decision(), buy(0.02), Decision(),
         Decision(actions=[Action(action=ActionType.SELL, symbol=SYMBOL,
                                  reason="out")])]), PLAN_MAX_PER_SYMBOL=3)
    seen = set()
    for _ in range(12):
        step(rt)
        mirrored, fresh = _contexts(rt)
        assert _ticker(mirrored) == _ticker(fresh)
        assert _candles(mirrored) == _candles(fresh)
        assert mirrored.stats == fresh.stats
        for rows in ("positions", "open_orders", "open_plans", "recent_trades"):
            assert getattr(mirrored, rows) == getattr(fresh, rows), rows
            seen.add((rows, bool(getattr(fresh, rows))))
    assert len(seen) == 8  # each kind of row was seen both present and absent


def test_the_mirrored_figures_follow_the_llm_cost(sqlite_url: str) -> None:
    """The decide step adds an LLM cost on its own connection: the figures kept are read
    again after it."""
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], CostlyEngine([buy()]))
    for spent in (1.0, 2.0, 3.0):
        step(rt)
        mirrored, fresh = _contexts(rt)
        assert mirrored.stats == fresh.stats
        assert mirrored.stats["total_llm_cost"] == spent


def _candles(context) -> dict:
    stored = context.markets[SYMBOL].candles
    return {tf: [column.tolist() for column in astuple(stored.columns(tf))] for tf in stored}


def _ticker(context) -> tuple:
    view = context.markets[SYMBOL]
    return view.last, view.bid, view.ask, view.spread_pct, view.ob_imbalance


def test_fills_kept_are_not_the_answer_once_one_is_later_than_now(sqlite_url) -> None:
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], ScriptedEngine(
        [buy(), Decision(), buy(0.02)]), PLAN_MAX_PER_SYMBOL=3)
    step(rt, 5)
    with rt.db() as db:
        conn = db.connection()
        newest = newest_trades(conn, rt.session_id, 20)
        assert len(newest) == 2
        stamp = newest[0]["timestamp"]
        assert recent_trades(conn, rt.session_id, stamp, 20, newest) == newest[::-1]
        # a clock before the newest fill: the kept rows are not the answer, the query is
        before = stamp - timedelta(microseconds=1)
        assert recent_trades(conn, rt.session_id, before, 20, newest) == newest[1:]


def test_the_newest_ticker_row_kept_is_the_stored_one_across_a_restart(sqlite_url) -> None:
    btc = candle_file("BTC_USDT-5m.csv")
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([]))
    step(rt, 3)
    key = (rt.session_id, SYMBOL)
    with rt.db() as db:
        assert rt.store.market_rows[key] == newest_market(db.connection(), *key)
    restarted = make_runtime(sqlite_url, [btc], ScriptedEngine([]))
    assert restarted.store.market_rows == {}  # read again, not trusted from before
    step(restarted, 2)
    with restarted.db() as db:
        assert restarted.store.market_rows[key] == newest_market(db.connection(), *key)


def test_a_new_days_candles_are_kept_from_their_first_write(sqlite_url, monkeypatch) -> None:
    """The day's first fetch stores only the candles after the run's newest, in a session
    that had none: the mirror carries the run's candles over to it, and the decide step
    reads none."""
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], ScriptedEngine([]))
    step(rt)
    first = rt.session_id

    def no_read(*_args):
        raise AssertionError("the new day's candles were read")

    monkeypatch.setattr(SessionCandles, "read", classmethod(no_read))
    while rt.session_id == first:
        step(rt)
    monkeypatch.undo()  # the context built without the store reads them
    mirrored, fresh = _contexts(rt)
    assert rt.store.candles[0] == rt.session_id
    assert _candles(mirrored) == _candles(fresh) and len(fresh.markets[SYMBOL].candles["5m"])
