"""A whole-system stateful machine: two bots, one paper exchange account, one database.

Hypothesis drives the real loop (``bot.loop.run_iteration``/``start``) of two bots whose
runtimes share ONE ``PaperVenue`` (two bots on one exchange account, told apart by their
client order prefixes) over a replayed candle file that crosses local midnight in both bots'
session timezones. Between steps it feeds engine actions of every kind through a scripted
engine, queues operator commands (before a step or during the "sleep" after one), crashes a
runtime at a chosen point and rebuilds it from the database, and turns venue faults on and
off.

After every operation ``check`` compares the store with a reference ledger folded here, from
the venue's raw fills only (average cost, fees, sessions by local date). Nothing in it calls
the production arithmetic (``bot.positions``, ``db.stats``) to compute an expected value.

The machine is shared by ``tests/test_stateful_ledger.py`` (bounded, in CI) and
``bench/stateful_bench.py`` (long runs); ``machine_for(url)`` binds it to a database.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import bindparam, select, text

import bot.loop
from bot.config import Settings, load_settings
from bot.engine.base import DecisionContext, EngineResult
from bot.engine.schema import Action, ActionType, Decision
from bot.loop import heartbeat, obey_during_sleep, run_iteration, start
from bot.runtime import Runtime
from bot.venue.faults import FaultRates, FaultyVenue
from bot.venue.feeds import ReplayFeed
from bot.venue.paper import PaperVenue
from db.commands import enqueue_command
from db.engine import make_engine, session_factory
from db.models import (
    Command,
    LLMTrace,
    Order,
    PerformanceRollup,
    Position,
    Session,
    SessionStatsCache,
    Trade,
    TripResult,
)
from db.paper_store import PaperStore
from db.performance import span_performance
from db.queries_trading import TradeFilter, trade_totals
from db.scorecard import realized_of
from tests.crafted import FIVE_MIN_MS, WARMUP, write_path

SYMBOL = "BTC/USDT"
STARTING_BALANCE = 10_000.0
MAX_ORDER_VALUE = 200.0
FEE = 0.001
STEPS_AFTER_WARMUP = 1_500
# The first iteration's clock is 14:35 UTC: Tokyo's midnight (15:00 UTC) comes 5 steps
# later, New York's (05:00 UTC, EST) 14 hours after that.
FIRST_OPEN_MS = 1_699_974_000_000 - 30 * 60_000
START_MS = FIRST_OPEN_MS - WARMUP * FIVE_MIN_MS
BOTS = (("alpha", "Asia/Tokyo"), ("beta", "America/New_York"))
# a bot's journal orders, plans and trade count, in one statement (see _holdings_of)
HOLDINGS_SQL = text(
    "SELECT 'order', id, status, order_id, CAST(NULL AS DOUBLE PRECISION) FROM orders"
    " WHERE session_id IN :ids"
    " UNION ALL SELECT 'plan', id, status, CAST(NULL AS TEXT), filled_size FROM trade_plans"
    " WHERE session_id IN :ids"
    " UNION ALL SELECT 'trades', count(*), CAST(NULL AS TEXT), CAST(NULL AS TEXT),"
    " CAST(NULL AS DOUBLE PRECISION) FROM trades WHERE session_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
REL = 1e-7  # float tolerance of a sum of a few hundred products


# --- the market ---------------------------------------------------------------------------


def write_candles(folder: Path) -> Path:
    """A fixed random walk around 100 with a deep wick every 17th candle (stops get touched
    by a wick and the candle closes back above them) and a gap down every 53rd."""
    rng = random.Random(20240611)
    closes, wicks = [100.0] * WARMUP, {}
    price = 100.0
    for i in range(STEPS_AFTER_WARMUP):
        if i % 53 == 52:
            price *= 0.975
        price *= math.exp(rng.gauss(0.0, 0.003))
        closes.append(round(price, 4))
        index = WARMUP + i
        if i % 17 == 16:
            previous = closes[index - 1]
            wicks[index] = (max(previous, price) * 1.002, min(previous, price) * 0.97)
    path = folder / "BTC_USDT-5m.csv"
    write_path(path, closes, start_ms=START_MS, wicks=wicks, volume=500.0)
    return path


# --- the scripted engine ------------------------------------------------------------------


@dataclass
class Asked:
    """One decision the engine made: at what clock, what the test asked, what it sent."""

    now: datetime
    kind: str
    actions: list[Action]
    held: float
    quote_value: float | None = None
    sell_size: float | None = None


class IntentEngine:
    """Turns the machine's queued intents into decisions against the context it is shown.

    Only the decision-maker is scripted: validation, risk, execution, venue and store are the
    real ones. An intent is consumed by the next decision (none: HOLD).
    """

    name = "scripted"

    def __init__(self, observe: Callable[[DecisionContext], None] | None = None) -> None:
        self.pending: list[tuple[str, tuple]] = []
        self.asked: list[Asked] = []
        self.observe = observe

    def decide(self, context: DecisionContext) -> EngineResult:
        if self.observe is not None:
            self.observe(context)
        if not self.pending:
            return EngineResult(decision=Decision(), engine="scripted", prompt="scripted")
        kind, args = self.pending.pop(0)
        held = sum(float(p.get("quantity") or 0) for p in context.positions
                   if p.get("symbol") == SYMBOL)
        asked = Asked(context.now, kind, [], held)
        asked.actions = self._actions(kind, args, context, held, asked)
        self.asked.append(asked)
        return EngineResult(decision=Decision(actions=asked.actions), engine="scripted",
                            prompt=f"scripted {kind}")

    @staticmethod
    def _actions(kind: str, args: tuple, context: DecisionContext, held: float,
                 asked: Asked) -> list[Action]:
        last = context.markets[SYMBOL].last
        plans = [p for p in context.open_plans if p.get("status") != "closed"]
        plan_id = plans[0]["id"] if plans else 10_000_000
        if kind == "buy_market":
            asked.quote_value = args[0]
            return [Action(action=ActionType.BUY, symbol=SYMBOL, quote_value=args[0])]
        if kind == "buy_limit":
            asked.quote_value = args[0]
            return [Action(action=ActionType.BUY, symbol=SYMBOL, quote_value=args[0],
                           order_type="limit", price=round(last * (1 + args[1]), 4))]
        if kind == "sell_all":
            return [Action(action=ActionType.SELL, symbol=SYMBOL)]
        if kind == "sell_part":
            asked.sell_size = held * args[0] if held > 0 else 0.001
            return [Action(action=ActionType.SELL, symbol=SYMBOL, size=asked.sell_size)]
        if kind == "update_plan":
            return [Action(action=ActionType.UPDATE_PLAN, plan_id=plan_id,
                           stop=round(last * (1 - args[0]), 4),
                           target=round(last * (1 + args[1]), 4))]
        if kind == "close_plan":
            return [Action(action=ActionType.CLOSE_PLAN, plan_id=plan_id)]
        if kind == "cancel":
            ids = [o.get("order_id") for o in context.open_orders if o.get("order_id")]
            return [Action(action=ActionType.CANCEL, order_id=ids[0] if ids else "P999-none")]
        return [_invalid(args[0], last)]


def _invalid(which: int, last: float) -> Action:
    """Actions validation must refuse: unknown symbol, bad size, absurd limit, stop above."""
    return [
        Action(action=ActionType.BUY, symbol="DOGE/USDT", quote_value=50),
        Action(action=ActionType.BUY, symbol=SYMBOL, size=-1.0),
        Action(action=ActionType.BUY, symbol=SYMBOL, quote_value=50, order_type="limit",
               price=last * 3),
        Action(action=ActionType.BUY, symbol=SYMBOL, quote_value=50, stop=last * 1.1),
        Action(action=ActionType.SELL, symbol=SYMBOL, size=1e9),
        Action(action=ActionType.BUY, symbol=SYMBOL, quote_value=50, order_type="stop"),
    ][which]


# --- probes -------------------------------------------------------------------------------


class Crash(BaseException):
    """Stands in for SIGKILL: no ``except Exception`` in the loop catches it."""


class Tap:
    """One bot's view of the shared venue: every call goes through, and the machine notes
    which bot created or canceled which order (to check a bot touches only its own)."""

    def __init__(self, venue: Any, bot_name: str, log: list[tuple[str, str, str]]) -> None:
        self.inner, self.bot_name, self.log = venue, bot_name, log
        self.crash_after_create = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_order(self, symbol, type, side, amount, price=None, params=None):
        placed = self.inner.create_order(symbol, type, side, amount, price, params)
        self.log.append((self.bot_name, "create", str((params or {}).get("clientOrderId"))))
        if self.crash_after_create:
            self.crash_after_create = False
            raise Crash("the venue has the order; the journal never heard")
        return placed

    def cancel_order(self, id, symbol=None):
        order = self.inner.fetch_order(id)
        self.log.append((self.bot_name, "cancel", str(order.get("clientOrderId"))))
        return self.inner.cancel_order(id, symbol)


# --- the world ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ShownCash:
    """The cash a bot's engine was shown at a decision, with what it rests on then: the
    venue fills the bot had booked, and the account's whole quote balance."""

    cash: float
    booked: frozenset[str]
    account: float


@dataclass
class BotState:
    name: str
    tz: str
    settings: Settings
    rt: Runtime
    engine: IntentEngine
    faulty: bool = False
    stopped: bool = False
    # close-alls the bot began (killed while carrying one out): each pauses it from then on,
    # done or not, as a close-all pauses the bot before it starts
    begun: set[int] = field(default_factory=set)
    clean_clock_ms: int = 0  # clock of the last iteration that synced fills without faults
    sessions_seen: set[int] = field(default_factory=set)
    checked_asks: int = 0
    # the requests the machine made and their outcome checks
    commands: list[int] = field(default_factory=list)
    shown_cash: list[ShownCash] = field(default_factory=list)
    checked_cash: int = 0
    rollups_checked: tuple | None = None  # what the last passed rollup check read


def settings_for(url: str, name: str, tz: str, candles: Path,
                 capital: float | None = None) -> Settings:
    extra = {} if capital is None else {"AVAILABLE_CAPITAL": capital}
    return load_settings(
        DATABASE_URL=url, BOT_NAME=f"{name}", SYMBOLS=SYMBOL, TIMEFRAMES="5m,1h",
        SESSION_TIMEZONE=tz, STARTING_BALANCE=STARTING_BALANCE, MAX_ORDER_VALUE=MAX_ORDER_VALUE,
        MAX_TOTAL_EXPOSURE=100_000, PLAN_MAX_PER_SYMBOL=20, MAX_OPEN_POSITIONS=5,
        MAX_DAILY_LOSS=1_000_000, MAX_DAILY_LOSS_PCT=100, MIN_NOTIONAL=10,
        LOOP_INTERVAL_SECONDS=300, MAKER_FEE=FEE, TAKER_FEE=FEE, FEED=f"replay:{candles}",
        STALE_TICKER_SECONDS=100_000, **extra,
    )


class Violation(AssertionError):
    """An invariant the system broke; the message names it."""


class LedgerMachine(RuleBasedStateMachine):
    """See the module docstring. ``url`` is bound by ``machine_for``."""

    url: str = ""
    counters: dict[str, int] = {"operations": 0, "checks": 0, "examples": 0}
    serial = 0
    # Invariant names to skip while exploring locally (the committed test checks them all).
    skip: frozenset[str] = frozenset()
    # When given, only these invariants are checked: a named example test pins the one
    # its defect breaks, so it fails for that reason alone.
    only: frozenset[str] = frozenset()
    # Each bot's AVAILABLE_CAPITAL, by its key ("alpha", "beta"); a bot not named has none
    # and counts the account's whole balance as its cash.
    capitals: dict[str, float] = {}

    def __init__(self) -> None:
        super().__init__()
        LedgerMachine.serial += 1
        self.counters["examples"] += 1
        tag = f"{LedgerMachine.serial}{random.Random().getrandbits(24):06x}"
        self.folder = Path(tempfile.mkdtemp(prefix="ledger-"))
        self.candles = write_candles(self.folder)
        with self.candles.open() as handle:  # the market's closes by candle open time
            self.closes = {int(row["timestamp"]): float(row["close"])
                           for row in csv.DictReader(handle)}
        self.log: list[tuple[str, str, str]] = []
        self.venue_factory = session_factory(make_engine(self.url))
        self.venue = PaperVenue(ReplayFeed([self.candles]),
                                PaperStore(self.venue_factory, f"shared{tag}"),
                                starting_balance=STARTING_BALANCE,
                                maker_fee=FEE, taker_fee=FEE)
        self.ended = False
        self.bots: dict[str, BotState] = {}
        for name, tz in BOTS:
            full = f"{name}{tag}"
            settings = settings_for(self.url, full, tz, self.candles, self.capitals.get(name))
            engine = IntentEngine()
            rt = self._runtime(settings, full, engine)
            b = self.bots[name] = BotState(name=full, tz=tz, settings=settings, rt=rt,
                                           engine=engine)
            engine.observe = partial(self._shown, b)
        self.engines: list[Any] = []

    # --- building and crashing runtimes ---

    def _runtime(self, settings: Settings, name: str, engine: IntentEngine) -> Runtime:
        factory = session_factory(make_engine(self.url))
        rt = Runtime(settings=settings, db=factory, venue=Tap(self.venue, name, self.log),
                     engine=engine, kind="live", run_name=name)
        start(rt)
        return rt

    def _rebuild(self, b: BotState) -> None:
        """Drop the runtime as SIGKILL would (no cleanup, pending intents lost) and start
        a new one from the database over the same exchange account."""
        b.rt.db.kw["bind"].dispose()
        b.engine = IntentEngine(partial(self._shown, b))
        b.rt = self._runtime(b.settings, b.name, b.engine)
        if b.faulty:
            self._wrap(b)

    def _shown(self, b: BotState, context: DecisionContext) -> None:
        """Note the cash the engine of ``b`` is shown (with AVAILABLE_CAPITAL: its own share)
        and what it rests on; ``_check_cash`` judges it against the fills."""
        if b.settings.available_capital is None:
            return
        with b.rt.db() as db:
            booked = frozenset(db.scalars(select(Trade.trade_id).where(
                Trade.session_id.in_(b.rt.session_ids(db)))))
        account = self.venue.balances.get("USDT", [0.0])[0]
        b.shown_cash.append(ShownCash(context.quote_balance, booked, account))

    def _wrap(self, b: BotState) -> None:
        seed = len(self.log) + len(self.venue.fills)
        rates = FaultRates(transient_before=0.1, transient_after=0.1, duplicate_fill=0.2,
                           double_open_order=0.2, late_fill=0.2, late_calls=2)
        b.rt.venue = Tap(FaultyVenue(self.venue, rates, seed), b.name, self.log)

    def teardown(self) -> None:
        for b in self.bots.values():
            b.rt.db.kw["bind"].dispose()
        self.venue_factory.kw["bind"].dispose()

    # --- rules ---

    @precondition(lambda self: not self.ended)
    @rule(n=st.sampled_from([1, 1, 1, 3, 12]))
    def step(self, n: int) -> None:
        """``n`` loop iterations of every running bot, each followed by the venue's step."""
        for _ in range(n):
            for b in self.bots.values():
                before = self._others(b)
                self._iterate(b)
                self._untouched(b, before, "iteration")
            if not self.venue.advance():
                self.ended = True
                break
        self._count()

    def _iterate(self, b: BotState, crash_before: str | None = None) -> None:
        if b.stopped:
            return
        if crash_before is not None:
            steps = bot.loop.STEPS
            bot.loop.STEPS = tuple(
                step._replace(run=_crasher) if step.name == crash_before else step
                for step in steps)
            try:
                run_iteration(b.rt)
            finally:
                bot.loop.STEPS = steps
            return
        paused = self._paused_by_commands(b)
        entries = self._entries(b)
        run_iteration(b.rt)
        heartbeat(b.rt)
        self._expect("no_entry_while_paused", not (paused and self._entries(b) > entries),
                     f"{b.name} entered at {b.rt.now()} while paused by {paused}")
        if not b.faulty and not any(e.startswith("fill_sync") for e in b.rt.errors):
            b.clean_clock_ms = self.venue.feed.now_ms()
        if b.rt.stop_requested:
            b.stopped = True

    def _paused_by_commands(self, b: BotState) -> str | None:
        """The pause (or close-all) in force, by the commands the bot has carried out (in
        the order it takes them: oldest first)."""
        paused = None
        with b.rt.db() as db:
            for c in db.scalars(select(Command).where(Command.id.in_(b.commands))
                                .order_by(Command.id)):
                if c.status != "done" and c.id not in b.begun:
                    continue
                if c.command in ("pause", "close-all"):
                    paused = f"command {c.id} {c.command}"
                elif c.command == "resume":
                    paused = None
        return paused

    def _entries(self, b: BotState) -> int:
        with b.rt.db() as db:
            ids = b.rt.session_ids(db)
            return len(list(db.scalars(select(Order.id).where(
                Order.session_id.in_(ids), Order.purpose == "entry"))))

    @precondition(lambda self: not self.ended)
    @rule(bot_key=st.sampled_from(["alpha", "beta"]),
          kind=st.sampled_from(["buy_market", "buy_limit", "sell_all", "sell_part",
                                "update_plan", "close_plan", "cancel", "invalid"]),
          quote=st.sampled_from([15.0, 60.0, 150.0, 199.0, MAX_ORDER_VALUE, 250.0]),
          fraction=st.sampled_from([0.25, 0.5, 0.75]),
          offset=st.sampled_from([-0.01, -0.003, 0.002]),
          which=st.integers(0, 5))
    def engine_action(self, bot_key: str, kind: str, quote: float, fraction: float,
                      offset: float, which: int) -> None:
        """The bot's engine answers its next decision with this action."""
        args = {"buy_market": (quote,), "buy_limit": (quote, offset), "sell_part": (fraction,),
                "update_plan": (0.02 + fraction / 100, 0.03 + fraction / 50),
                "invalid": (which,)}.get(kind, ())
        self.bots[bot_key].engine.pending.append((kind, args))
        self._count()

    @rule(bot_key=st.sampled_from(["alpha", "beta"]),
          command=st.sampled_from(["pause", "resume", "close-all", "stop", "close", "cancel",
                                   "cancel-foreign", "close-bad"]),
          during_sleep=st.booleans())
    def operator(self, bot_key: str, command: str, during_sleep: bool) -> None:
        """Queue a command; ``during_sleep``: the bot picks it up before the venue steps."""
        b = self.bots[bot_key]
        other = next(o for k, o in self.bots.items() if k != bot_key)
        argument = None
        if command == "close":
            argument = SYMBOL
        elif command == "close-bad":
            command, argument = "close", "DOGE/USDT"
        elif command in ("cancel", "cancel-foreign"):
            owner = b if command == "cancel" else other
            argument = self._open_order_of(owner) or "P999-none"
            command = "cancel"
        with b.rt.db() as db:
            b.commands.append(enqueue_command(db, command, argument, bot=b.name))
        if during_sleep and not b.stopped:
            before = self._others(b)
            obey_during_sleep(b.rt)
            self._untouched(b, before, f"{command} in its sleep")
            heartbeat(b.rt)
            if b.rt.stop_requested:
                b.stopped = True
        self._count()

    def _open_order_of(self, b: BotState) -> str | None:
        prefix = b.rt.prefix
        for order in self.venue.fetch_open_orders():
            if str(order.get("clientOrderId") or "").startswith(prefix):
                return str(order["id"])
        return None

    @precondition(lambda self: not self.ended)
    @rule(bot_key=st.sampled_from(["alpha", "beta"]),
          point=st.sampled_from([None, "fill_sync", "plans", "decide", "commands",
                                 "after-send", "after-command", "in-command"]))
    def crash(self, bot_key: str, point: str | None) -> None:
        """Kill the bot (between iterations, before one of its steps, right after the venue
        accepted an order, right after the bot carried out its pending commands during the
        sleep and before its heartbeat, or right after the venue accepted the first order
        those commands sent) and start it again from the database."""
        b = self.bots[bot_key]
        if b.stopped:
            return
        before = self._others(b)
        try:
            if point == "after-send":
                tap = b.rt.venue
                tap.crash_after_create = True
                self._iterate(b)
                tap.crash_after_create = False
            elif point in ("after-command", "in-command"):
                self._obey_then_crash(b, mid_command=point == "in-command")
            elif point is not None:
                self._iterate(b, crash_before=point)
        except Crash:
            pass
        if not b.stopped:
            self._rebuild(b)
        self._untouched(b, before, f"crash ({point}) and restart")
        self._count()

    def _obey_then_crash(self, b: BotState, *, mid_command: bool) -> None:
        """The bot takes its pending commands during the sleep and is killed before its
        heartbeat (``mid_command``: as soon as the venue accepts an order they send)."""
        with b.rt.db() as db:
            b.begun |= {c.id for c in db.scalars(select(Command).where(
                Command.id.in_(b.commands), Command.status == "pending",
                Command.command == "close-all"))}
        tap = b.rt.venue
        tap.crash_after_create = mid_command
        try:
            obey_during_sleep(b.rt)
        finally:
            tap.crash_after_create = False
        if b.rt.stop_requested:  # a stop carried out ends the process before any kill
            b.stopped = True
            return
        raise Crash("killed after the commands, before the heartbeat")

    @rule(bot_key=st.sampled_from(["alpha", "beta"]), on=st.booleans())
    def faults(self, bot_key: str, on: bool) -> None:
        """Put the bot's view of the exchange behind a faulty network, or take it away."""
        b = self.bots[bot_key]
        if on and not b.faulty:
            b.faulty = True
            self._wrap(b)
        elif not on and b.faulty:
            b.faulty = False
            b.rt.venue = Tap(self.venue, b.name, self.log)
        self._count()

    def _count(self) -> None:
        self.counters["operations"] += 1

    def _others(self, b: BotState) -> dict[str, tuple]:
        """What the bots other than ``b`` hold, on the venue and in their books and rows:
        taken before ``b`` acts alone (its iteration, its commands, its crash and restart),
        during which nothing of theirs may change (the replayed market stands still)."""
        return {o.name: self._holdings_of(o) for o in self.bots.values() if o is not b}

    def _holdings_of(self, o: BotState) -> tuple:
        prefix = o.rt.prefix
        venue_orders = sorted((state.id, state.status, state.filled)
                              for state in self.venue.orders.values()
                              if str(state.client_order_id or "").startswith(prefix))
        venue_fills = sum(1 for f in self.venue.fills
                          if str(f.client_order_id or "").startswith(prefix))
        with o.rt.db() as db:
            # one statement: it runs around every iteration of every bot
            rows = db.execute(HOLDINGS_SQL, {"ids": o.rt.session_ids(db)}).all()
        orders = sorted(row[1:4] for row in rows if row[0] == "order")
        plans = sorted((row[1], row[2], row[4]) for row in rows if row[0] == "plan")
        trades = next((row[1] for row in rows if row[0] == "trades"), 0)
        return (("venue orders", venue_orders), ("venue fills", venue_fills),
                ("book", o.rt.book.quantity(SYMBOL)), ("orders", orders), ("plans", plans),
                ("trades", trades))

    def _untouched(self, b: BotState, before: dict[str, tuple], what: str) -> None:
        for o in self.bots.values():
            if o is b:
                continue
            after = self._holdings_of(o)
            changed = [f"{name}: {was} -> {now}"
                       for (name, was), (_, now) in zip(before[o.name], after, strict=True)
                       if was != now]
            self._expect("other_bot_untouched", not changed,
                         f"{b.name}'s {what} changed {o.name}'s holdings: {changed}")

    # --- invariants ---

    @invariant()
    def invariants_hold(self) -> None:
        self.check()

    def check(self) -> None:
        """Every invariant against the reference ledger; raises ``Violation`` on the first."""
        self.counters["checks"] += 1
        fills = {f.id: f for f in self.venue.fills}
        ordered = sorted(self.venue.fills, key=lambda f: (f.timestamp_ms, _seq(f.id)))
        self._check_venue_cash(ordered)
        self._check_ownership(fills)
        self._check_own_coins()
        booked_anywhere: dict[str, int] = defaultdict(int)
        for b in self.bots.values():
            with b.rt.db() as db:
                view = StoreView.read(db, b)
            for trade in view.trades:
                booked_anywhere[trade.trade_id] += 1
            self._check_bot(b, view, fills, ordered)
        for trade_id, count in booked_anywhere.items():
            self._expect("booked_once", count == 1,
                         f"venue fill {trade_id} is booked {count} times across the bots")

    def _expect(self, name: str, ok: bool, message: str) -> None:
        if not ok and name not in self.skip and (not self.only or name in self.only):
            raise Violation(f"[{name}] {message}")

    def _check_venue_cash(self, ordered: list) -> None:
        cash = STARTING_BALANCE
        base = 0.0
        for f in ordered:
            sign = 1.0 if f.side == "buy" else -1.0
            cash -= sign * f.price * f.amount + f.fee
            base += sign * f.amount
            self._expect("fee_rate", _close(f.fee, f.price * f.amount * FEE),
                         f"fill {f.id} charged {f.fee}, not {FEE:.2%} of its value")
        total = self.venue.balances.get("USDT", [0.0])[0]
        self._expect("venue_cash", _close(total, cash),
                     f"the account holds {total} USDT; its fills leave {cash}")
        held = self.venue.balances.get("BTC", [0.0])[0]
        self._expect("venue_base", abs(held - base) <= 1e-9,
                     f"the account holds {held} BTC; its fills leave {base}")

    def _check_own_coins(self) -> None:
        """Each fill on the account is one bot's (by its prefix), and no bot ever sells more
        than its own fills bought: what it sold beyond them was the other bot's coins. The
        venue's fills in the order it made them (its sequence), not the bots' books."""
        held = {b.name: 0.0 for b in self.bots.values()}
        for f in sorted(self.venue.fills, key=lambda f: _seq(f.id)):
            owners = [b.name for b in self.bots.values()
                      if str(f.client_order_id or "").startswith(b.rt.prefix)]
            self._expect("fill_has_one_owner", len(owners) == 1,
                         f"fill {f.id} of order {f.client_order_id} belongs to {owners}")
            if len(owners) != 1:
                continue
            held[owners[0]] += f.amount if f.side == "buy" else -f.amount
            self._expect("own_coins_only", held[owners[0]] >= -1e-9,
                         f"{owners[0]}'s {f.side} fill {f.id} of {f.amount} leaves its own fills "
                         f"holding {held[owners[0]]}: it sold the other bot's coins")

    def _check_ownership(self, fills: dict) -> None:
        prefixes = {b.name: b.rt.prefix for b in self.bots.values()}
        for bot_name, verb, cid in self.log:
            self._expect("own_orders_only", cid.startswith(prefixes[bot_name]),
                         f"bot {bot_name} {verb}d order {cid}, which is not its own")

    def _check_bot(self, b: BotState, view: StoreView, fills: dict, ordered: list) -> None:
        prefix = b.rt.prefix
        zone = ZoneInfo(b.tz)
        booked = {t.trade_id for t in view.trades}
        # each fill booked by its owner only, once every clean iteration has seen it
        for t in view.trades:
            fill = fills.get(t.trade_id)
            self._expect("known_fill", fill is not None,
                         f"{b.name} booked {t.trade_id}, which the venue never filled")
            if fill is None:
                continue
            self._expect("own_fills_only", str(fill.client_order_id or "").startswith(prefix),
                         f"{b.name} booked fill {fill.id} of order {fill.client_order_id}, "
                         f"which is not its own")
            self._expect(
                "trade_equals_fill",
                t.action == fill.side.upper() and _close(t.quantity, fill.amount)
                and _close(t.price, fill.price) and _close(t.fee, fill.fee),
                f"{b.name}'s trade {t.trade_id} ({t.action} {t.quantity}@{t.price} fee {t.fee})"
                f" differs from the venue fill ({fill.side} {fill.amount}@{fill.price} fee "
                f"{fill.fee})")
            local_day = _local_day(fill.timestamp_ms, zone)
            session_day = view.session_days.get(t.session_id)
            self._expect("fill_in_its_day", session_day == local_day,
                         f"{b.name}'s fill {fill.id} at {_iso(fill.timestamp_ms, zone)} is "
                         f"booked in the session of {session_day}")
        own = [f for f in ordered if str(f.client_order_id or "").startswith(prefix)]
        horizon = b.clean_clock_ms - b.settings.trade_sync_cutoff_minutes * 60_000
        for f in own:
            if horizon < f.timestamp_ms < b.clean_clock_ms:
                self._expect("fill_booked", f.id in booked,
                             f"{b.name}'s fill {f.id} at {_iso(f.timestamp_ms, zone)} is not "
                             f"booked after a clean iteration at {_iso(b.clean_clock_ms, zone)}")
        # positions, realized PnL and fees: a rebuild from the booked fills, average cost
        held = AverageCost()
        realized: dict[str, float] = {}
        for t in sorted(view.trades, key=lambda t: t.id):
            pnl = held.book(t)
            realized[t.trade_id] = pnl
            self._expect("realized_pnl", _close(t.realized_pnl, pnl, 1e-6),
                         f"{b.name}'s trade {t.trade_id} realized {t.realized_pnl}; average "
                         f"cost gives {pnl}")
        quantity, average = held.quantity, held.average
        self._expect("never_short", quantity >= -1e-9,
                     f"{b.name} sold more than it bought: {quantity}")
        book = b.rt.book.quantity(SYMBOL)
        self._expect("book_equals_fills", abs(book - quantity) <= 1e-9,
                     f"{b.name}'s position book holds {book}; its fills hold {quantity}")
        if b.rt.session_id in view.positions or quantity > 1e-12:
            snapshot = view.positions.get(b.rt.session_id, (0.0, 0.0))
            self._expect("positions_equal_fills",
                         abs(snapshot[0] - quantity) <= 1e-9
                         and (quantity <= 1e-12 or _close(snapshot[1], average, 1e-6)),
                         f"{b.name}'s positions table says {snapshot}; its fills hold "
                         f"{quantity}@{average}")
        # the stats cache and the session totals equal a rebuild from the trades
        for sid, cache in view.caches.items():
            rows = [t for t in view.trades if t.session_id == sid]
            fees = sum(t.fee for t in rows)
            gross = sum(realized[t.trade_id] for t in rows)
            wins = sum(1 for t in rows if realized[t.trade_id] > 1e-12)
            losses = sum(1 for t in rows if realized[t.trade_id] < -1e-12)
            expected = (len(rows), fees, gross, wins, losses)
            got = (cache.total_trades, cache.total_fees, cache.gross_pnl, cache.wins,
                   cache.losses)
            self._expect("stats_cache", _same(got, expected),
                         f"{b.name}'s stats cache of session {sid} is {got}; its trades give "
                         f"{expected}")
            net = view.net_pnl[sid]
            self._expect("session_net_pnl", _close(net, gross - fees - cache.total_llm_cost),
                         f"{b.name}'s session {sid} net_pnl {net}; its trades give "
                         f"{gross - fees - cache.total_llm_cost}")
        self._check_cash(b, fills)
        for order in view.orders:
            self._expect("own_orders_booked", order.client_order_id.startswith(prefix),
                         f"{b.name}'s books hold order {order.client_order_id}, which is not "
                         f"its own")
        closed_trips, by_opener = _trips(view)
        self._check_rollups(b, view, realized, closed_trips, by_opener)
        self._check_start_equity(b, view, ordered, zone)
        self._check_orders(b, view, fills)
        self._check_decisions(b, view)
        self._check_commands(b, view)

    def _check_cash(self, b: BotState, fills: dict) -> None:
        """With AVAILABLE_CAPITAL, the cash each decision was shown is the capital plus what
        the bot's own booked fills sold, less what they bought and their fees, never more
        than the whole account held then (nor less than nothing)."""
        capital = b.settings.available_capital
        for shown in b.shown_cash[b.checked_cash:]:
            if capital is None:
                break
            own = 0.0
            for f in (fills[i] for i in shown.booked if i in fills):  # else: known_fill
                own += (f.price * f.amount if f.side == "sell" else -f.price * f.amount) - f.fee
            expected = max(0.0, min(shown.account, capital + own))
            self._expect("cash_of_own_fills", _close(shown.cash, expected, 1e-6),
                         f"{b.name} was shown cash {shown.cash}; its capital {capital} and its "
                         f"{len(shown.booked)} booked fills give {capital + own} (the account "
                         f"held {shown.account})")
        b.checked_cash = len(b.shown_cash)

    def _check_rollups(self, b: BotState, view: StoreView, realized: dict[str, float],
                       closed_trips: list[float],
                       by_opener: dict[int, tuple[float, int]]) -> None:
        """The run's figures as the console reads them, from the closed days' rollups
        (``db.fill_totals``, ``db.performance_rollups``, ``db.trip_results``) and the open
        day's rows, equal the reference ledger's: across crashes, midnights and the other
        bot."""
        ids = tuple(view.session_days)
        if not ids:
            return
        with b.rt.db() as db:
            # the figures read the trades and the closed days' rollups: unchanged, they were
            # checked already (the check composes a year's figures, around every operation)
            read = (ids, tuple(t.trade_id for t in view.trades),
                    tuple(db.execute(select(PerformanceRollup.session_id,
                                            PerformanceRollup.fill_count,
                                            PerformanceRollup.trips)
                                     .where(PerformanceRollup.session_id.in_(ids))
                                     .order_by(PerformanceRollup.session_id))),
                    tuple(db.execute(select(TripResult.session_id, TripResult.open_trace_id,
                                            TripResult.net)
                                     .where(TripResult.session_id.in_(ids))
                                     .order_by(TripResult.session_id,
                                               TripResult.open_trace_id))))
            if read == b.rollups_checked:
                return
            totals = trade_totals(db, TradeFilter(session_ids=ids))
            metrics = span_performance(db, list(ids))[0].metrics
            scored = realized_of(db, list(ids))
            per_decision = scored.by_decision(db, None, None)
            scored_total = scored.total(db, list(ids), None, datetime.max.replace(tzinfo=UTC))
        pnl = list(realized.values())
        expected = (len(view.trades), sum(t.fee for t in view.trades), sum(pnl),
                    sum(1 for v in pnl if v > 1e-12), sum(1 for v in pnl if v < -1e-12))
        got = (totals["count"], totals["fees"], totals["realized_pnl"], totals["wins"],
               totals["losses"])
        self._expect("trade_totals", _same(got, expected),
                     f"{b.name}'s Trades totals over the run are {got}; its trades give "
                     f"{expected}")
        got_trips = (metrics["round_trips"], metrics["net_pnl"])
        expected_trips = (len(closed_trips), sum(closed_trips))
        self._expect("round_trips", _same(got_trips, expected_trips),
                     f"{b.name}'s Performance shows {got_trips} (closed round trips, net PnL);"
                     f" its trades give {expected_trips}")
        got_decisions = {trace_id: figures for trace_id, figures in per_decision.items()
                         if figures != (0.0, 0)}
        self._expect("realized_by_decision",
                     got_decisions.keys() == by_opener.keys() and all(
                         _same(got_decisions[k], by_opener[k]) for k in by_opener)
                     and _same((scored_total,), (sum(n for n, _ in by_opener.values()),)),
                     f"{b.name}'s scorecard gives its decisions {got_decisions} (realized, "
                     f"trips open), {scored_total} in all; its trades give {by_opener}")
        b.rollups_checked = read

    def _check_start_equity(self, b: BotState, view: StoreView, ordered: list,
                            zone: ZoneInfo) -> None:
        """A day's starting equity is the account's equity at the local midnight that began
        it: the (shared) cash after the fills before midnight, plus what this bot held then
        valued at the market's price at midnight (the close of the candle ending then, read
        from the test's own candle file), so that each day's start plus its PnL is the
        previous day's end. A faulty venue may hide that price; the bot then values at its
        last quote (the candle before) or, lacking one, at cost. With AVAILABLE_CAPITAL the
        cash is the bot's own: the capital plus what its own fills before midnight moved,
        never more than the account held."""
        prefix = b.rt.prefix
        capital = b.settings.available_capital
        first = min(view.session_days.values(), default=None)
        for sid, day in view.session_days.items():
            if day == first:
                continue  # opened at the bot's start: the account as it was then
            midnight = int(datetime.combine(day, datetime.min.time(), zone).timestamp() * 1000)
            cash, own_cash, quantity, cost = STARTING_BALANCE, capital or 0.0, 0.0, 0.0
            for f in ordered:
                if f.timestamp_ms >= midnight:
                    break
                sign = 1.0 if f.side == "buy" else -1.0
                cash -= sign * f.price * f.amount + f.fee
                if str(f.client_order_id or "").startswith(prefix):
                    own_cash -= sign * f.price * f.amount + f.fee
                    if f.side == "buy":
                        quantity, cost = quantity + f.amount, cost + f.price * f.amount
                    else:
                        cost -= cost / quantity * f.amount if quantity > 0 else 0.0
                        quantity -= f.amount
            # the other bot's fills stamped at midnight itself may precede this bot's
            # rollover in the same step: the shared cash it reads then may include them
            others = sum((f.price * f.amount if f.side == "sell" else -f.price * f.amount)
                         - f.fee for f in ordered if f.timestamp_ms == midnight
                         and not str(f.client_order_id or "").startswith(prefix))
            if capital is not None:  # its own cash: the other bot's fills move none of it
                cash, others = max(0.0, min(cash, own_cash)), 0.0
            prices = [self.closes[midnight - FIVE_MIN_MS]]
            if b.faulty:
                # a venue fault at midnight: the last quote (the candle before), the cost, or
                # a later clock when the new day waited for the venue to answer
                later = range(midnight, view.opened_ms[sid] + 1, FIVE_MIN_MS)
                prices += [self.closes.get(midnight - 2 * FIVE_MIN_MS, prices[0]),
                           cost / quantity if quantity > 1e-12 else prices[0],
                           *(self.closes[t - FIVE_MIN_MS] for t in later
                             if t - FIVE_MIN_MS in self.closes)]
            got = view.starting[sid]
            self._expect("start_of_day_equity",
                         any(_close(got, extra + cash + quantity * price, 1e-6)
                             for price in prices for extra in (0.0, others)),
                         f"{b.name}'s session of {day} starts with equity {got}; at local "
                         f"midnight {'its own' if capital else 'the account'} had {cash:.6f} cash "
                         f"and {b.name} held "
                         f"{quantity:.8f} worth {quantity * prices[0]:.6f} at {prices[0]}: "
                         f"{cash + quantity * prices[0]}")

    def _check_orders(self, b: BotState, view: StoreView, fills: dict) -> None:
        """Stops fill at their price or worse; exits and closes are never refused."""
        by_cid: dict[str, list] = defaultdict(list)
        for f in fills.values():
            if f.client_order_id:
                by_cid[f.client_order_id].append(f)
        for order in view.orders:
            match = re.match(r"stop hit at ([0-9.e+-]+)", order.reason or "")
            if match and order.side == "SELL":
                stop = float(match.group(1))
                for f in by_cid.get(order.client_order_id, []):
                    self._expect("stop_at_or_worse", f.price <= stop * (1 + 1e-5),
                                 f"{b.name}'s stop at {stop} sold at {f.price}, better than "
                                 f"the stop ({_iso(f.timestamp_ms, ZoneInfo(b.tz))})")
            if order.side == "SELL" and not b.faulty:
                self._expect("exit_order_not_rejected", order.status not in ("rejected", "failed"),
                             f"{b.name}'s {order.purpose} order {order.client_order_id} was "
                             f"{order.status}: {order.error}")

    def _check_decisions(self, b: BotState, view: StoreView) -> None:
        """What the engine asked for against what its trace and orders show."""
        for asked in b.engine.asked[b.checked_asks:]:
            trace = view.traces.get(asked.now)
            if trace is None or trace.execution_result is None:
                continue  # not carried out yet (or a crash ate it)
            outcomes = json.loads(trace.execution_result).get("actions", [])
            sells = [o for o in view.orders if o.trace_id == trace.id and o.side == "SELL"]
            if asked.kind in ("sell_all", "sell_part") and asked.held > 1e-12:
                # the part of a sell held by plans already exiting (or still filling) is
                # refused with that reason: selling it again would sell the same coins twice
                refused = [o for o in outcomes if o.get("status") in ("refused", "invalid")
                           and o.get("rule") != "not_in_open_plans"]
                self._expect("sell_not_refused", not refused or (
                    asked.sell_size is not None and asked.sell_size > asked.held),
                    f"{b.name}'s SELL of {asked.sell_size or asked.held} (holding "
                    f"{asked.held}) was refused: {refused}")
                if asked.kind == "sell_part" and not refused and sells:
                    sold = sum(o.amount for o in sells)
                    self._expect("partial_sell_size", _close(sold, asked.sell_size, 1e-9),
                                 f"{b.name} asked to sell {asked.sell_size} of {asked.held} "
                                 f"and its orders sell {sold}")
            if asked.kind in ("buy_market", "buy_limit") and asked.quote_value is not None:
                capped = [o for o in outcomes if o.get("rule") == "max_order_value"]
                self._expect("cap_admits_its_value", not capped
                             or asked.quote_value > MAX_ORDER_VALUE,
                             f"{b.name}'s entry of {asked.quote_value} (the cap is "
                             f"{MAX_ORDER_VALUE}) was refused: {capped}")
        b.checked_asks = len(b.engine.asked)

    def _check_commands(self, b: BotState, view: StoreView) -> None:
        for command in view.commands:
            if command.executed_at is not None:
                self._expect("command_time_forward", command.executed_at >= command.created_at,
                             f"{b.name}'s command {command.id} {command.command} was executed "
                             f"at {command.executed_at}, before it was queued at "
                             f"{command.created_at}")
            if command.command in ("close-all", "stop") or (
                    command.command == "close" and command.argument == SYMBOL):
                self._expect("close_never_refused", command.status != "failed" or b.faulty,
                             f"{b.name}'s {command.command} failed: {command.result}")
            if command.command == "cancel" and command.status == "done":
                cid = view.cancelled_cid(command.argument)
                self._expect("cancel_own_only", cid is not None and cid.startswith(b.rt.prefix),
                             f"{b.name}'s cancel of {command.argument} succeeded on order "
                             f"{cid}, which is not its own")


def _crasher(rt: Runtime) -> None:
    raise Crash("killed between two steps of an iteration")


def _seq(fill_id: str) -> int:
    return int(fill_id[1:].split("-")[0])


def _close(a: float, b: float, rel: float = REL) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def _same(got: tuple, expected: tuple) -> bool:
    return all(_close(float(g), float(e), 1e-6) for g, e in zip(got, expected, strict=True))


def _local_day(ms: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).date()


def _iso(ms: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).isoformat()


@dataclass
class AverageCost:
    """One symbol's long book by average cost, as the bot books it."""

    quantity: float = 0.0
    average: float = 0.0

    def book(self, t: Trade) -> float:
        """Add the fill ``t``; returns the PnL it realizes (a sale's, against the average)."""
        if t.action == "BUY":
            if self.quantity + t.quantity > 0:
                self.average = ((self.average * self.quantity + t.price * t.quantity)
                                / (self.quantity + t.quantity))
            self.quantity += t.quantity
            return 0.0
        pnl = (t.price - self.average) * min(t.quantity, self.quantity)
        self.quantity -= t.quantity
        if abs(self.quantity) <= 1e-12:  # flat: the next buy starts a new average
            self.quantity, self.average = 0.0, 0.0
        return pnl


def _trips(view: StoreView) -> tuple[list[float], dict[int, tuple[float, int]]]:
    """The net PnL of each closed round trip, and per decision that opened trips (its first
    fill's) their closed net and how many are open: the booked fills folded day by day (a
    fill the sync saw late is booked into its day after the fills of the days since), by
    average cost; a trip runs from a BUY on a flat book to the fill that flattens it."""
    held = AverageCost()
    trip_net: float | None = None
    closed_trips: list[float] = []
    by_opener: dict[int, tuple[float, int]] = {}
    opener: int | None = None
    for t in sorted(view.trades, key=lambda t: (view.session_days[t.session_id],
                                                 t.session_id, t.id)):
        if trip_net is None:
            opener = t.trace_id
        trip_net = (trip_net or 0.0) - t.fee + held.book(t)
        if t.action != "BUY" and held.quantity == 0.0:
            closed_trips.append(trip_net)
            if opener is not None:
                net, still_open = by_opener.get(opener, (0.0, 0))
                by_opener[opener] = (net + trip_net, still_open)
            trip_net = None
    if trip_net is not None and opener is not None:
        net, still_open = by_opener.get(opener, (0.0, 0))
        by_opener[opener] = (net, still_open + 1)
    return closed_trips, by_opener


@dataclass
class StoreView:
    """What the store holds for one bot, read in one session."""

    session_days: dict[int, date]
    opened_ms: dict[int, int]
    starting: dict[int, float]
    net_pnl: dict[int, float]
    trades: list[Trade]
    caches: dict[int, SessionStatsCache]
    positions: dict[int, tuple[float, float]]
    orders: list[Order]
    traces: dict[datetime, LLMTrace]
    commands: list[Command]
    all_orders: dict[str, str]

    @classmethod
    def read(cls, db, b: BotState) -> StoreView:
        sessions = list(db.scalars(select(Session).where(Session.kind == "live",
                                                         Session.run_name == b.name)))
        ids = [s.id for s in sessions]
        positions: dict[int, tuple[float, float]] = {}
        for p in db.scalars(select(Position).where(Position.session_id.in_(ids),
                                                   Position.symbol == SYMBOL)):
            positions[p.session_id] = (p.quantity, p.avg_price)
        bot_id = sessions[0].bot_id if sessions else None
        commands = list(db.scalars(select(Command).where(Command.bot_id == bot_id)
                                   .order_by(Command.id)))
        return cls(
            session_days={s.id: s.date for s in sessions},
            opened_ms={s.id: int(s.created_at.replace(tzinfo=s.created_at.tzinfo or UTC)
                                 .timestamp() * 1000) for s in sessions},
            starting={s.id: s.starting_balance for s in sessions},
            net_pnl={s.id: s.net_pnl for s in sessions},
            trades=list(db.scalars(select(Trade).where(Trade.session_id.in_(ids)))),
            caches={c.session_id: c for c in db.scalars(
                select(SessionStatsCache).where(SessionStatsCache.session_id.in_(ids)))},
            positions=positions,
            orders=list(db.scalars(select(Order).where(Order.session_id.in_(ids)))),
            traces={t.created_at: t for t in db.scalars(
                select(LLMTrace).where(LLMTrace.session_id.in_(ids)))},
            commands=commands,
            all_orders={o.order_id: o.client_order_id for o in db.scalars(select(Order).where(
                Order.order_id.in_([c.argument for c in commands if c.command == "cancel"])))},
        )

    def cancelled_cid(self, order_id: str | None) -> str | None:
        return self.all_orders.get(order_id or "")


def machine_for(url: str, skip: frozenset[str] = frozenset(),
                only: frozenset[str] = frozenset(),
                capitals: dict[str, float] | None = None) -> type[LedgerMachine]:
    """The machine bound to the database at ``url`` (migrated already); ``capitals``: the
    bots' AVAILABLE_CAPITAL by key ("alpha", "beta"), none when not named."""
    return type("LedgerMachineOn", (LedgerMachine,), {"url": url, "skip": skip, "only": only,
                                                      "capitals": capitals or {}})


__all__ = ["LedgerMachine", "Violation", "machine_for"]
