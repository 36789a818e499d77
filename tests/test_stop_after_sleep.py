"""A plan's stop hit while the bot slept is sold at the stop, also when a command was
carried out in that sleep. The real loop (``drive`` with the live bot's clock) on the paper
venue over a synthetic market on a fake wall clock: only the sleep's length is the test's.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.config import load_settings
from bot.engine.schema import Action, ActionType, Decision
from bot.loop import WallClock, drive, obey_during_sleep
from bot.runtime import Runtime
from bot.venue.feeds import SyntheticFeed
from bot.venue.paper import PaperVenue
from db.commands import enqueue_command
from db.engine import make_engine, session_factory
from db.models import Order, Trade
from db.paper_store import PaperStore
from tests.loop_harness import ScriptedEngine

BTC = "BTC/USDT"
START_MS = 1_767_225_600_000  # 2026-01-01, a minute boundary
COMMAND_AFTER_MS = 50_000  # into the sleep, when the command is carried out
SLEEP_MS = 120_000  # the loop's interval: the 1m candle of the dip has closed by its end
SEED = 12  # its tape dips at 00:00:00-00:00:50 below all it trades at 00:00:50-00:02:00


class CommandInTheSleep(WallClock):
    """The live bot's clock, whose sleep passes on the fake wall clock: a command arrives
    part way through and is carried out as ``_sleep_watching_commands`` does."""

    def __init__(self, wall: list[int]) -> None:
        self.wall = wall

    def wait(self, rt: Runtime) -> None:
        slept_from = self.wall[0]
        self.wall[0] = slept_from + COMMAND_AFTER_MS
        with rt.db() as db:
            enqueue_command(db, "resume")
        obey_during_sleep(rt)
        self.wall[0] = slept_from + SLEEP_MS


def test_a_stop_hit_before_a_command_in_the_sleep_sells_at_the_stop(sqlite_url) -> None:
    """A command carried out in the sleep catches the synthetic market up to its moment;
    the stop's dip then lies before the venue's current candle, which only covers the time
    since the command. The bot sees the dip in the closed candle at its next iteration and
    sends its stop order at the plan's stop, which the venue judged against that candle
    alone: it rested, on a market trading above it, and the position stayed held."""
    wall = [START_MS]
    feed = SyntheticFeed([BTC], seed=SEED, clock=lambda: wall[0])
    tape = feed._tapes[BTC]  # the test reads the tape ahead, to place the stop in the dip
    end = START_MS + SLEEP_MS
    dip = tape.segment(START_MS, START_MS + COMMAND_AFTER_MS)
    after = tape.segment(START_MS + COMMAND_AFTER_MS, end)
    assert dip is not None and after is not None
    floor = min(after[3], tape.price_at(START_MS))
    assert dip[3] < floor, "the seed's tape no longer dips in the sleep: pick another"
    stop = round((dip[3] + floor) / 2, 2)

    factory = session_factory(make_engine(sqlite_url))
    settings = load_settings(DATABASE_URL=sqlite_url, SYMBOLS=BTC, TIMEFRAMES="1m",
                             MAX_SPREAD_PCT=5, MAX_SLIPPAGE_PCT=5, TRAIL_BREAKEVEN_PCT=0)
    buy = Decision(actions=[Action(action=ActionType.BUY, symbol=BTC, size=0.01, stop=stop,
                                   target=round(floor * 1.05, 2), reason="stop test")])
    rt = Runtime(settings=settings, db=factory,
                 venue=PaperVenue(feed, PaperStore(factory, "default")),
                 engine=ScriptedEngine([buy]), run_name="default")
    drive(rt, CommandInTheSleep(wall), max_iterations=2)

    assert not rt.errors, rt.errors
    with rt.db() as db:
        exits = db.scalars(select(Order).where(Order.purpose != "entry")).all()
    assert [(o.type, o.price) for o in exits] == [("stop", stop)], "the bot saw its stop hit"
    assert exits[0].status == "closed", f"the stop order is {exits[0].status} on a market above it"
    assert rt.book.quantity(BTC) == 0.0
    with rt.db() as db:
        sold = db.scalars(select(Trade).where(Trade.action == "SELL")).one()
    assert sold.price == stop  # at the stop the market passed, not at a later price
