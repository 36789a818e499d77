"""A venue that misbehaves on purpose: faults injected by rate from a seeded RNG.

Real exchanges time out, rate-limit, answer 5xx, reject orders, list a fill twice, show a
fill minutes after it happened, report an order twice and disappear for minutes. The loop
must survive all of it without losing or double-booking a fill, and a test can only prove
that against faults it can repeat, so every decision here comes from one
``random.Random(seed)`` drawn in call order: the same loop over the same feed sees the same
faults. Partial fills are left to the wrapped venue's own fill model.

``FaultyVenue`` wraps any ``Venue``; the clock (``now``/``advance``) and
``describe_fill_model`` never fail, because they are the harness, not the network.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from bot.venue.base import OrderRejected, StoreRetry, TransientVenueError, Venue

if TYPE_CHECKING:
    from sqlalchemy import Connection

T = TypeVar("T")

#: The transient failures a ccxt exchange maps onto ``TransientVenueError``.
TRANSIENT_KINDS = ("timeout", "network error", "429 rate limit", "503 service unavailable")
#: Calls that change venue state, where an error raised after the call matters.
MUTATING = ("create_order", "cancel_order")


class InjectedFault(TransientVenueError):
    """A transient error made up by ``FaultyVenue``; ``after`` means the call did happen."""

    def __init__(self, kind: str, call: str, after: bool) -> None:
        when = "after the venue acted" if after else "before the venue saw it"
        super().__init__(f"injected {kind} on {call} ({when})")
        self.kind, self.call, self.after = kind, call, after


class InjectedRejection(OrderRejected):
    """An order refused by ``FaultyVenue`` (never sent to the wrapped venue)."""


@dataclass(frozen=True)
class FaultRates:
    """Probabilities per call (or per trade / listed order) of each fault.

    ``transient_after`` only applies to mutating calls: a read that fails after it ran is
    indistinguishable from one that failed before. A late fill stays hidden for
    ``late_calls`` calls covering its symbol, or until ``late_seconds`` of venue clock after
    it happened when that is positive (a fill shown seconds late, within one loop, must not
    change anything; one shown several loops late legitimately delays its plan's exit). An
    outage lasts ``outage_calls`` calls, or ``outage_seconds`` of venue clock when positive.
    """

    transient_before: float = 0.0
    transient_after: float = 0.0
    reject: float = 0.0
    duplicate_fill: float = 0.0
    late_fill: float = 0.0
    late_calls: int = 3
    late_seconds: float = 0.0
    double_open_order: float = 0.0
    outage: float = 0.0
    outage_calls: int = 20
    outage_seconds: float = 0.0

    @classmethod
    def uniform(cls, rate: float, **extra: Any) -> FaultRates:
        """Every fault at ``rate`` (outages rarer: one starts per ~1/(rate/50) calls)."""
        return cls(transient_before=rate, transient_after=rate, reject=rate / 4,
                   duplicate_fill=rate, late_fill=rate, double_open_order=rate,
                   outage=rate / 50, **extra)

    @classmethod
    def harmless(cls, rate: float, **extra: Any) -> FaultRates:
        """Only faults that must not change what is filled: the loop has to absorb them.

        Duplicate fills, an order listed twice and errors raised after a create/cancel
        succeeded. Late fills are not among them: the loop books an exit's fill before the
        engine decides, so a fill shown late rightly changes that decision (they are tested
        for being booked once, not for equal fills).
        """
        return cls(transient_after=rate, duplicate_fill=rate, double_open_order=rate, **extra)

    @classmethod
    def parse(cls, spec: str) -> tuple[FaultRates, int]:
        """``"uniform=0.2,seed=7"`` or ``"transient_before=0.1,late_calls=5,seed=3"``.

        For a FAULTS setting; unknown names raise ValueError naming them.
        """
        values: dict[str, str] = {}
        for part in spec.split(","):
            if part.strip():
                name, _, value = part.partition("=")
                values[name.strip()] = value.strip()
        seed = int(values.pop("seed", "0"))
        known = {f.name: f.type for f in fields(cls)}
        base = cls.uniform(float(values.pop("uniform"))) if "uniform" in values else cls()
        if "harmless" in values:
            base = cls.harmless(float(values.pop("harmless")))
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown fault name(s) {unknown}; known: {sorted(known)}")
        typed = {k: int(v) if k in ("late_calls", "outage_calls") else float(v)
                 for k, v in values.items()}
        return replace(base, **typed), seed


class FaultyVenue:
    """Wraps ``inner`` and injects the faults of ``rates``; ``injected`` counts each kind."""

    def __init__(self, inner: Venue, rates: FaultRates, seed: int = 0) -> None:
        self.inner = inner
        self.rates = rates
        self.rng = random.Random(seed)
        self.name = inner.name
        self.is_paper = inner.is_paper
        self.injected: Counter[str] = Counter()
        self.enabled = True
        self._outage_calls_left = 0
        self._outage_until: datetime | None = None
        self._withheld: dict[str, list[Any]] = {}  # trade id -> [calls left, symbol, due ms]
        self._decided: set[str] = set()  # trade ids already chosen to be late or not

    def __getattr__(self, name: str) -> Any:
        """Anything else (``fetch_order``, ``feed``, ``store``) is the inner venue's."""
        return getattr(self.inner, name)

    # --- the clock is the harness: never faulty ------------------------------------------

    def now(self) -> datetime:
        return self.inner.now()

    def advance(self) -> bool:
        return self.inner.advance()

    def clock_note(self) -> str | None:
        return self.inner.clock_note()

    def catch_up(self) -> None:
        self.inner.catch_up()

    def carry_clock(self, conn: Connection) -> Callable[[], None]:
        return self.inner.carry_clock(conn)

    def use_outage(self, outage: StoreRetry) -> None:
        self.inner.use_outage(outage)

    def describe_fill_model(self) -> dict[str, Any]:
        return self.inner.describe_fill_model()

    # --- calls -------------------------------------------------------------------------------

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        return self._call("fetch_ticker", lambda: self.inner.fetch_ticker(symbol))

    def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        return self._call("fetch_order_book", lambda: self.inner.fetch_order_book(symbol, limit))

    def fetch_ohlcv(
        self, symbol: str, timeframe: str = "5m", since: int | None = None,
        limit: int | None = None,
    ) -> list[list[float]]:
        return self._call(
            "fetch_ohlcv", lambda: self.inner.fetch_ohlcv(symbol, timeframe, since, limit)
        )

    def fetch_balance(self) -> dict[str, Any]:
        return self._call("fetch_balance", self.inner.fetch_balance)

    def create_order(
        self, symbol: str, type: str, side: str, amount: float, price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        def send() -> dict[str, Any]:
            if self.enabled and self.rng.random() < self.rates.reject:
                self.injected["reject"] += 1
                raise InjectedRejection(f"injected rejection of {side} {amount} {symbol}")
            return self.inner.create_order(symbol, type, side, amount, price, params)

        return self._call("create_order", send)

    def cancel_order(self, id: str, symbol: str | None = None) -> dict[str, Any]:
        return self._call("cancel_order", lambda: self.inner.cancel_order(id, symbol))

    def fetch_open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        orders = self._call("fetch_open_orders", lambda: self.inner.fetch_open_orders(symbol))
        out: list[dict[str, Any]] = []
        for order in orders:
            out.append(order)
            if self.enabled and self.rng.random() < self.rates.double_open_order:
                self.injected["double_open_order"] += 1
                out.append(copy.deepcopy(order))
        return out

    def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Late fills: a new trade may be hidden for a while (see ``FaultRates``).

        It is then shown only if the caller's ``since`` still reaches back to it, as an
        exchange would: a caller whose window moved past it has lost it.
        """
        now_ms = int(self.inner.now().timestamp() * 1000)
        for trade_id, entry in list(self._withheld.items()):
            if symbol is None or entry[1] == symbol:
                entry[0] -= 1
                if (entry[0] <= 0) if entry[2] is None else now_ms >= entry[2]:
                    del self._withheld[trade_id]
        trades = self._call("fetch_my_trades",
                            lambda: self.inner.fetch_my_trades(symbol, since, limit))
        out: list[dict[str, Any]] = []
        for trade in trades:
            trade_id = str(trade["id"])
            if trade_id in self._withheld:
                continue
            if trade_id not in self._decided:
                self._decided.add(trade_id)
                if self.enabled and self.rng.random() < self.rates.late_fill:
                    due = (int(trade["timestamp"] + self.rates.late_seconds * 1000)
                           if self.rates.late_seconds > 0 else None)
                    if due is None or now_ms < due:
                        self.injected["late_fill"] += 1
                        self._withheld[trade_id] = [self.rates.late_calls, trade["symbol"], due]
                        continue
            out.append(trade)
        for trade in list(out):
            if self.enabled and self.rng.random() < self.rates.duplicate_fill:
                self.injected["duplicate_fill"] += 1
                out.append(copy.deepcopy(trade))
        return out

    @property
    def withheld(self) -> int:
        """Fills still hidden from the caller (a run should end with none owed)."""
        return len(self._withheld)

    def release_all(self) -> None:
        """Stop injecting and show every withheld fill: the venue is healthy again."""
        self.enabled = False
        self._withheld.clear()
        self._outage_calls_left, self._outage_until = 0, None

    # --- internals ---------------------------------------------------------------------------

    def _in_outage(self) -> bool:
        if self._outage_until is not None:
            if self.inner.now() < self._outage_until:
                return True
            self._outage_until = None
        if self._outage_calls_left > 0:
            self._outage_calls_left -= 1
            return True
        if self.rng.random() < self.rates.outage:
            self.injected["outage"] += 1
            if self.rates.outage_seconds > 0:
                self._outage_until = self.inner.now() + timedelta(seconds=self.rates.outage_seconds)
            else:
                self._outage_calls_left = max(0, self.rates.outage_calls - 1)
            return True
        return False

    def _call(self, name: str, fn: Callable[[], T]) -> T:
        if not self.enabled:
            return fn()
        if self._in_outage():
            self.injected["outage_call"] += 1
            raise InjectedFault("503 service unavailable (outage)", name, after=False)
        if self.rng.random() < self.rates.transient_before:
            self.injected["transient_before"] += 1
            raise InjectedFault(self.rng.choice(TRANSIENT_KINDS), name, after=False)
        result = fn()
        if name in MUTATING and self.rng.random() < self.rates.transient_after:
            self.injected["transient_after"] += 1
            raise InjectedFault(self.rng.choice(TRANSIENT_KINDS), name, after=True)
        return result
