"""The decide step's mirrored ticker rows (bot/mirror.py) are what the database holds.

The context is built twice at each step, through the runtime's mirror and from the
database alone, and must come out the same; a restarted runtime starts with none kept.
"""

from __future__ import annotations

from bot.engine.context import build_context
from bot.engine.schema import Decision
from db.decision_queries import newest_market
from tests.conftest import candle_file
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.test_mirror import SYMBOL, buy


def _contexts(rt):
    with rt.db() as db:
        args = (db, rt.settings, rt.session_id, rt.now(), 1000.0, 500.0)
        return (build_context(*args, newest_markets=rt.mirror.market_rows),
                build_context(*args))


def test_the_mirrored_ticker_is_the_queried_one(sqlite_url: str) -> None:
    """Through entries and their fills, the context built with the runtime's mirrored
    ticker rows is the one built from the database alone."""
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], ScriptedEngine(
        [buy(), Decision(), Decision(), buy(0.02)]))
    for _ in range(12):
        step(rt)
        mirrored, fresh = _contexts(rt)
        assert _ticker(mirrored) == _ticker(fresh)


def _ticker(context) -> tuple:
    view = context.markets[SYMBOL]
    return view.last, view.bid, view.ask, view.spread_pct, view.ob_imbalance


def test_the_newest_ticker_row_kept_is_the_stored_one_across_a_restart(sqlite_url) -> None:
    btc = candle_file("BTC_USDT-5m.csv")
    rt = make_runtime(sqlite_url, [btc], ScriptedEngine([]))
    step(rt, 3)
    key = (rt.session_id, SYMBOL)
    with rt.db() as db:
        assert rt.mirror.market_rows[key] == newest_market(db.connection(), *key)
    restarted = make_runtime(sqlite_url, [btc], ScriptedEngine([]))
    assert restarted.mirror.market_rows == {}  # read again, not trusted from before
    step(restarted, 2)
    with restarted.db() as db:
        assert restarted.mirror.market_rows[key] == newest_market(db.connection(), *key)
