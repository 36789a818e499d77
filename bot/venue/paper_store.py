"""Write-through storage of a paper account in the ``paper_*`` tables.

The venue keeps its state in memory and hands this store only what changed, once per
operation, in one transaction: a replay of thousands of candles then costs one small
UPDATE of the clock per step instead of a reload of the account.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import sessionmaker

from bot.venue.paper_model import FILL_FIELDS, ORDER_FIELDS, FillState, OrderState
from db.engine import bound_engine
from db.models import PaperBalance, PaperClock, PaperFill, PaperOrder

_CLOCK = PaperClock.__table__
# The one write of most replay steps: built once, on the table (no ORM bulk-update path).
_MOVE_CLOCK = (update(_CLOCK).where(_CLOCK.c.account == bindparam("for_account"))
               .values(now_ms=bindparam("now_ms"), seq=bindparam("seq")))


@dataclass
class Snapshot:
    """A stored account as the venue needs it to continue."""

    now_ms: int
    seq: int
    feed: dict[str, Any]
    balances: dict[str, list[float]]  # currency -> [total, used]
    orders: list[OrderState] = field(default_factory=list)
    fills: list[FillState] = field(default_factory=list)


class PaperStore:
    """One account's rows; remembers which rows exist so each write is an INSERT or UPDATE."""

    def __init__(self, sessions: sessionmaker, account: str) -> None:
        self.sessions = sessions
        self.engine = bound_engine(sessions)
        self.account = account
        self._orders: set[str] = set()
        self._currencies: set[str] = set()

    def load(self) -> Snapshot | None:
        with self.sessions() as s:
            clock = s.get(PaperClock, self.account)
            if clock is None:
                return None
            balances = {
                b.currency: [b.total, b.used]
                for b in s.scalars(select(PaperBalance).where(PaperBalance.account == self.account))
            }
            orders = [
                OrderState(**{f: getattr(o, f) for f in ORDER_FIELDS})
                for o in s.scalars(
                    select(PaperOrder).where(PaperOrder.account == self.account)
                    .order_by(PaperOrder.timestamp_ms, PaperOrder.id)
                )
            ]
            fills = [
                FillState(**{f: getattr(x, f) for f in FILL_FIELDS})
                for x in s.scalars(
                    select(PaperFill).where(PaperFill.account == self.account)
                    .order_by(PaperFill.timestamp_ms, PaperFill.id)
                )
            ]
            feed = json.loads(clock.feed) if clock.feed else {}
        orders.sort(key=lambda o: (o.timestamp_ms, _seq_of(o.id)))
        fills.sort(key=lambda f: (f.timestamp_ms, _seq_of(f.id)))
        self._orders = {o.id for o in orders}
        self._currencies = set(balances)
        return Snapshot(clock.now_ms, clock.seq, feed, balances, orders, fills)

    @staticmethod
    def stored_feed(sessions: sessionmaker, account: str) -> dict[str, Any] | None:
        """The feed descriptor stored with an account's clock, to rebuild the same market."""
        with sessions() as s:
            clock = s.get(PaperClock, account)
            return json.loads(clock.feed) if clock is not None and clock.feed else None

    def create(self, now_ms: int, feed: dict[str, Any], balances: dict[str, list[float]]) -> None:
        with self.sessions.begin() as s:
            s.add(PaperClock(account=self.account, now_ms=now_ms, seq=0, feed=json.dumps(feed)))
            s.flush()
            self._write_balances(s, balances)

    def move_clock(self, now_ms: int, seq: int) -> None:
        """Persist the clock alone: a replay step that fills nothing writes only this."""
        with self.engine.begin() as conn:
            conn.execute(_MOVE_CLOCK, {"for_account": self.account, "now_ms": now_ms, "seq": seq})

    def commit(
        self, now_ms: int, seq: int, orders: Iterable[OrderState] = (),
        fills: Iterable[FillState] = (), balances: dict[str, list[float]] | None = None,
    ) -> None:
        """Persist one operation's changes and the clock atomically."""
        with self.sessions.begin() as s:
            s.execute(_MOVE_CLOCK, {"for_account": self.account, "now_ms": now_ms, "seq": seq})
            new, changed = [], []
            for order in orders:
                (changed if order.id in self._orders else new).append(order.row())
            if new:
                s.execute(insert(PaperOrder), [r | {"account": self.account} for r in new])
                self._orders.update(r["id"] for r in new)
            if changed:
                s.execute(update(PaperOrder), changed)
            rows = [f.row() | {"account": self.account} for f in fills]
            if rows:
                s.execute(insert(PaperFill), rows)
            if balances:
                self._write_balances(s, balances)

    def _write_balances(self, s: Any, balances: dict[str, list[float]]) -> None:
        for currency, (total, used) in balances.items():
            if currency in self._currencies:
                s.execute(
                    update(PaperBalance)
                    .where(PaperBalance.account == self.account,
                           PaperBalance.currency == currency)
                    .values(total=total, used=used)
                )
            else:
                s.execute(insert(PaperBalance).values(
                    account=self.account, currency=currency, total=total, used=used
                ))
                self._currencies.add(currency)


def _seq_of(ident: str) -> int:
    """Ids are a prefix letter and a counter; order by the counter, not the string."""
    digits = ident.split("-", 1)[0].lstrip("PT")
    return int(digits) if digits.isdigit() else 0
