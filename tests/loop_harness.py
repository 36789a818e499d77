"""Build a real runtime (paper venue over replayed real candles, SQLite) for loop tests."""

from __future__ import annotations

from pathlib import Path

from bot.alerts.sink import EventSink
from bot.config import load_settings
from bot.engine.base import DecisionContext, EngineResult
from bot.engine.rules import RulesEngine
from bot.engine.schema import Decision
from bot.loop import run_iteration, start
from bot.runtime import Runtime
from bot.venue.base import TransientVenueError
from bot.venue.feeds import ReplayFeed
from bot.venue.paper import PaperVenue
from db.engine import make_engine, session_factory
from db.paper_store import PaperStore


class ScriptedEngine:
    """An engine that returns prepared decisions in turn (HOLD once they run out).

    It stands in for the decision-maker only; the venue, store and loop are all real.
    """

    name = "scripted"

    def __init__(self, decisions: list[Decision]) -> None:
        self.decisions = list(decisions)
        self.contexts: list[DecisionContext] = []

    def decide(self, context: DecisionContext) -> EngineResult:
        self.contexts.append(context)
        decision = self.decisions.pop(0) if self.decisions else Decision()
        return EngineResult(decision=decision, engine="scripted", prompt="scripted")


class CostlyEngine(ScriptedEngine):
    """Each decision costs 1.0 of LLM spend, as a priced model call would."""

    def decide(self, context: DecisionContext) -> EngineResult:
        result = super().decide(context)
        result.cost = 1.0
        return result


class SendsRefused(PaperVenue):
    """The paper exchange, timing out on every order while ``down``."""

    down = False

    def create_order(self, *args, **kwargs):
        if self.down:
            raise TransientVenueError("timeout (the exchange is not answering)")
        return super().create_order(*args, **kwargs)


class TakenUnanswered(PaperVenue):
    """The paper exchange which, while ``down``, takes each order and times out answering:
    the order rests there unfilled (a sell at ``RESTING_ABOVE`` the last price), findable
    only by its client order id."""

    down = False
    RESTING_ABOVE = 1.05

    def create_order(self, symbol, type, side, amount, price=None, params=None):
        if not self.down:
            return super().create_order(symbol, type, side, amount, price, params)
        if side == "sell":
            price = self.fetch_ticker(symbol)["last"] * self.RESTING_ABOVE
            super().create_order(symbol, "limit", side, amount, price, params)
        raise TransientVenueError("timeout (the exchange took the order, no answer came)")


class FilledShownLate(PaperVenue):
    """The paper exchange which, while ``down``, takes each sell, fills it at once and times
    out answering; its fills show in the trade history only once ``late`` is turned off
    (a venue's trade history lags its orders). The order is findable by its client id."""

    down = False
    late = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.unshown: set[str] = set()

    def create_order(self, symbol, type, side, amount, price=None, params=None):
        if not self.down:
            return super().create_order(symbol, type, side, amount, price, params)
        if side == "sell":
            placed = super().create_order(symbol, "market", side, amount, None, params)
            self.unshown.add(placed["id"])
        raise TransientVenueError("timeout (the exchange took the order, no answer came)")

    def fetch_my_trades(self, symbol=None, since=None, limit=None):
        shown = super().fetch_my_trades(symbol, since, limit)
        return [t for t in shown if not self.late or t["order"] not in self.unshown]


def make_runtime(db_url: str, candles: list[Path], engine=None, *, run_name: str = "test",
                 kind: str = "replay", account: str | None = None, warmup: int = 200,
                 venue_class: type[PaperVenue] = PaperVenue,
                 **settings_overrides: object) -> Runtime:
    """``account``: the paper account's name (the run's, unless given: a restart with
    another goes on from its own clock); ``warmup``: the file's candles before the first
    step; ``venue_class``: the paper venue or an exchange modelled on it; and
    ``settings_overrides`` win over the defaults here (TIMEFRAMES 5m,1h)."""
    feed = ReplayFeed(candles, warmup=warmup)
    symbols = ",".join(feed.symbols)
    settings = load_settings(**({"DATABASE_URL": db_url, "SYMBOLS": symbols,
                                 "TIMEFRAMES": "5m,1h"} | settings_overrides))
    factory = session_factory(make_engine(db_url))
    venue = venue_class(feed, PaperStore(factory, account or run_name),
                        starting_balance=settings.starting_balance)
    runtime = Runtime(settings=settings, db=factory, venue=venue,
                      engine=engine or RulesEngine(settings), kind=kind, run_name=run_name,
                      events=EventSink.from_settings(settings))
    start(runtime)
    return runtime


def step(runtime: Runtime, iterations: int = 1) -> None:
    for _ in range(iterations):
        run_iteration(runtime)
        assert not runtime.errors, runtime.errors
        runtime.venue.advance()
