"""A plan's level crossed inside the candle forming at an iteration, between two looks of a
10 s loop, the price back on the plan's side at every look: the bot sees it only in the
candle once closed (a 1m one, or a 5m one of the synthetic market's 1m candles). The real
loop (``drive`` with the live bot's clock) on the paper venue over a synthetic market, on
a fake wall clock and real SQLite.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.config import load_settings
from bot.engine.schema import Action, ActionType, Decision
from bot.loop import WallClock, drive
from bot.runtime import Runtime
from bot.venue.feeds import SyntheticFeed
from bot.venue.paper import PaperVenue
from db.engine import make_engine, session_factory
from db.models import Order, Trade, TradePlan
from db.paper_store import PaperStore
from tests.loop_harness import ScriptedEngine
from tests.test_kill import Crash, crash_before_selling

BTC = "BTC/USDT"
START_MS = 1_767_225_600_000  # 2026-01-01, a minute boundary
LOOP_MS = 10_000
MINUTE = 60_000


class TenSeconds(WallClock):
    """The live bot's clock, whose 10 s sleep passes on the fake wall clock."""

    def __init__(self, wall: list[int]) -> None:
        self.wall = wall

    def wait(self, rt: Runtime) -> None:
        self.wall[0] += LOOP_MS


def looks(candle_ms: int) -> int:
    """Iterations from the first look to the one after the first candle's close."""
    return candle_ms // LOOP_MS + 2


def run(sqlite_url: str, seed: int, *, stop: float, target: float, timeframes: str = "1m",
        candle_ms: int = MINUTE) -> Runtime:
    """Buy at the first look with the given levels, then loop on past the first candle."""
    wall = [START_MS]
    rt = runtime(sqlite_url, seed, wall, timeframes, [buy(stop, target)])
    drive(rt, TenSeconds(wall), max_iterations=looks(candle_ms))
    assert not rt.errors, rt.errors
    return rt


def buy(stop: float, target: float) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol=BTC, size=0.01, stop=stop,
                                    target=target, reason="levels test")])


def runtime(sqlite_url: str, seed: int, wall: list[int], timeframes: str,
            decisions: list[Decision]) -> Runtime:
    """The run, started or restarted (the market's tape and the account from the database
    going on from where they were)."""
    feed = SyntheticFeed([BTC], seed=seed, start_ms=START_MS, clock=lambda: wall[0])
    factory = session_factory(make_engine(sqlite_url))
    settings = load_settings(DATABASE_URL=sqlite_url, SYMBOLS=BTC, TIMEFRAMES=timeframes,
                             MAX_SPREAD_PCT=5, MAX_SLIPPAGE_PCT=5, TRAIL_BREAKEVEN_PCT=0,
                             MIN_TARGET_FEE_MULTIPLE=0)
    return Runtime(settings=settings, db=factory,
                   venue=PaperVenue(feed, PaperStore(factory, "default")),
                   engine=ScriptedEngine(decisions), run_name="default")


def looked_at(feed_seed: int, candle_ms: int = MINUTE
              ) -> tuple[list[float], list[float], list[float]]:
    """The tape read ahead: the first candle's (open, high, low), the (high, low) of the
    step before and the step after its close, and the prices at the looks."""
    feed = SyntheticFeed([BTC], seed=feed_seed, clock=lambda: START_MS)
    tape = feed._tapes[BTC]
    tape.close_through(START_MS + candle_ms + 2 * MINUTE)  # the looks after the close
    candle = tape.segment(START_MS, START_MS + candle_ms)
    tail = tape.segment(START_MS + candle_ms - LOOP_MS, START_MS + candle_ms + LOOP_MS)
    assert candle is not None and tail is not None
    prices = [tape.price_at(START_MS + i * LOOP_MS) for i in range(looks(candle_ms))]
    return candle[1:4], tail[2:4], prices


@pytest.mark.parametrize(("timeframes", "candle_ms"), [("1m", MINUTE), ("5m,1h", 5 * MINUTE)])
def test_a_stop_hit_inside_a_forming_candle_sells_at_the_stop(
        sqlite_url: str, timeframes: str, candle_ms: int) -> None:
    """The bot sees the dip in the closed candle and sends its stop order, which the venue
    judged against the last 10 s alone, trading above the stop: it rested, the position
    held. The venue judges it against the span whose candles showed the bot the hit."""
    (open_, _, low), (_, tail_low), prices = looked_at(12, candle_ms)
    floor = min(tail_low, *prices)
    assert low < floor, "the seed's first candle no longer dips between the looks: pick another"
    stop = round((low + floor) / 2, 2)
    assert open_ > stop  # traded through inside the candle, not gapped: it sells at the stop

    rt = run(sqlite_url, 12, stop=stop, target=round(max(prices) * 1.05, 2),
             timeframes=timeframes, candle_ms=candle_ms)

    with rt.db() as db:
        exits = db.scalars(select(Order).where(Order.purpose != "entry")).all()
        sells = db.scalars(select(Trade).where(Trade.action == "SELL")).all()
        plan = db.scalars(select(TradePlan)).one()
    assert [(o.type, o.price, o.status) for o in exits] == [("stop", stop, "closed")]
    assert [(t.price, t.quantity) for t in sells] == [(stop, 0.01)]  # once, at the stop
    assert rt.book.quantity(BTC) == 0.0
    assert plan.status == "closed" and plan.exit_reason == f"stop hit at {stop:g}"


def test_a_stop_exit_resent_after_a_crash_is_judged_over_the_span_that_showed_the_hit(
        sqlite_url: str) -> None:
    """As above, but the bot crashes once its stop exit is journaled, before it is sent; it
    restarts a look later and re-sends it. The resend is judged over the span whose candles
    showed the hit, as the send it stands for would have been, and sells at the stop. Before,
    it named no span: judged against nothing at the restart, it rested above a market that
    never came back to the stop, and the position stayed held."""
    (open_, _, low), (_, tail_low), prices = looked_at(12)
    floor = min(tail_low, *prices)
    stop = round((low + floor) / 2, 2)
    assert open_ > stop and low < floor

    wall = [START_MS]
    rt = runtime(sqlite_url, 12, wall, "1m", [buy(stop, round(max(prices) * 1.05, 2))])
    crash_before_selling(rt)
    with pytest.raises(Crash):
        drive(rt, TenSeconds(wall), max_iterations=looks(MINUTE))
    with rt.db() as db:
        (unsent,) = db.scalars(select(Order).where(Order.purpose != "entry")).all()
    assert (unsent.type, unsent.price, unsent.status) == ("stop", stop, "new")

    wall[0] += LOOP_MS  # the restart, a look later
    rt = runtime(sqlite_url, 12, wall, "1m", [])
    drive(rt, TenSeconds(wall), max_iterations=2)
    assert not rt.errors, rt.errors
    with rt.db() as db:
        exits = db.scalars(select(Order).where(Order.purpose != "entry")).all()
        sells = db.scalars(select(Trade).where(Trade.action == "SELL")).all()
        plan = db.scalars(select(TradePlan)).one()
    assert [(o.type, o.status) for o in exits] == [("stop", "closed")]
    assert [(t.price, t.quantity) for t in sells] == [(stop, 0.01)]
    assert plan.status == "closed" and rt.book.quantity(BTC) == 0.0


def test_a_target_crossed_inside_a_forming_candle_sells_at_the_market_of_then(
        sqlite_url: str) -> None:
    """The bot watches its target as it watches its stop, and sees a spike through it only in
    the candle once closed: it sells then at the market, as it would on an exchange, not at
    the target the market no longer offers (that would be better than it allowed)."""
    (_, high, low), (tail_high, _), prices = looked_at(25)
    ceiling = max(tail_high, *prices)
    assert high > ceiling, "the seed's first minute no longer spikes between the looks"
    target = round((high + ceiling) / 2, 2)

    rt = run(sqlite_url, 25, stop=round(low * 0.99, 2), target=target)

    with rt.db() as db:
        exits = db.scalars(select(Order).where(Order.purpose != "entry")).all()
        sells = db.scalars(select(Trade).where(Trade.action == "SELL")).all()
    assert [(o.type, o.status) for o in exits] == [("market", "closed")]
    seen_at = prices[MINUTE // LOOP_MS]  # the look at which the minute's candle had closed
    assert len(sells) == 1 and sells[0].price <= seen_at < target
    assert rt.book.quantity(BTC) == 0.0
