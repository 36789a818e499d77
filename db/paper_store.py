"""Write-through storage of a paper account in the ``paper_*`` tables: the store the paper
venue is given (``bot.venue.paper_account.AccountStore``).

The venue keeps its state in memory and hands this store only what changed, once per
operation, in one transaction: a replay of thousands of candles then costs one small
UPDATE of the clock per step instead of a reload of the account. Every write is a statement
built once on its table and run on a Core connection (an order and its fill were a dozen ORM
statements built anew each time, most of the cost of placing an order), and a balance is
written only when it differs from what the store last committed for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import sessionmaker

from bot.model.paper import FILL_FIELDS, ORDER_FIELDS, FillState, OrderState, Snapshot
from db.core import table_of
from db.engine import bound_engine
from db.models import PaperBalance, PaperClock, PaperFill, PaperOrder

_CLOCK, _BALANCES = table_of(PaperClock), table_of(PaperBalance)
_ORDERS, _FILLS = table_of(PaperOrder), table_of(PaperFill)
# The one write of most replay steps: built once, on the table (no ORM bulk-update path).
_MOVE_CLOCK = (update(_CLOCK).where(_CLOCK.c.account == bindparam("for_account"))
               .values(now_ms=bindparam("now_ms"), seq=bindparam("seq")))
_ADD_ORDERS, _ADD_FILLS, _ADD_BALANCE = insert(_ORDERS), insert(_FILLS), insert(_BALANCES)
# What an order can change after it is placed; the rest of its row is written once.
_ORDER_PROGRESS = ("filled", "cost", "fee", "status", "updated_ms")
_UPDATE_ORDERS = (update(_ORDERS).where(_ORDERS.c.id == bindparam("order_id"))
                  .values({name: bindparam(name) for name in _ORDER_PROGRESS}))
_UPDATE_BALANCE = (update(_BALANCES).where(_BALANCES.c.account == bindparam("for_account"),
                                           _BALANCES.c.currency == bindparam("for_currency"))
                   .values(total=bindparam("total"), used=bindparam("used")))


class PaperStore:
    """One account's rows; remembers which rows exist so each write is an INSERT or UPDATE,
    and the balances last committed so an unchanged one is not written again."""

    def __init__(self, sessions: sessionmaker, account: str) -> None:
        self.sessions = sessions
        self.engine = bound_engine(sessions)
        self.account = account
        self._orders: set[str] = set()
        self._balances: dict[str, tuple[float, float]] = {}  # currency -> (total, used) stored

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
        self._balances = {currency: (total, used) for currency, (total, used) in balances.items()}
        return Snapshot(clock.now_ms, clock.seq, feed, balances, orders, fills)

    def stored_feed(self) -> dict[str, Any] | None:
        """The feed descriptor stored with the account's clock, to rebuild the same market."""
        with self.sessions() as s:
            clock = s.get(PaperClock, self.account)
            return json.loads(clock.feed) if clock is not None and clock.feed else None

    def create(self, now_ms: int, feed: dict[str, Any], balances: dict[str, list[float]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(_CLOCK), {"account": self.account, "now_ms": now_ms, "seq": 0,
                                          "feed": json.dumps(feed)})
            written = self._write_balances(conn, balances)
        self._balances.update(written)

    def move_clock(self, now_ms: int, seq: int, conn: Connection | None = None) -> None:
        """Persist the clock alone: a replay step that fills nothing writes only this. In
        ``conn``'s transaction (uncommitted) when given, else in one of its own."""
        if conn is not None:
            conn.execute(_MOVE_CLOCK, {"for_account": self.account, "now_ms": now_ms, "seq": seq})
            return
        with self.engine.begin() as own:
            self.move_clock(now_ms, seq, own)

    def commit(
        self, now_ms: int, seq: int, orders: Iterable[OrderState] = (),
        fills: Iterable[FillState] = (), balances: dict[str, list[float]] | None = None,
    ) -> None:
        """Persist one operation's changes and the clock atomically."""
        new, changed = [], []
        for order in orders:
            if order.id in self._orders:
                changed.append({"order_id": order.id,
                                **{name: getattr(order, name) for name in _ORDER_PROGRESS}})
            else:
                new.append(order.row() | {"account": self.account})
        with self.engine.begin() as conn:
            conn.execute(_MOVE_CLOCK, {"for_account": self.account, "now_ms": now_ms, "seq": seq})
            if new:
                conn.execute(_ADD_ORDERS, new)
            if changed:
                conn.execute(_UPDATE_ORDERS, changed)
            rows = [f.row() | {"account": self.account} for f in fills]
            if rows:
                conn.execute(_ADD_FILLS, rows)
            written = self._write_balances(conn, balances or {})
        # only once committed: a failed write leaves the rows to be written again
        self._orders.update(row["id"] for row in new)
        self._balances.update(written)

    def _write_balances(
        self, conn: Connection, balances: dict[str, list[float]]
    ) -> dict[str, tuple[float, float]]:
        """Write the balances that differ from the stored ones; returns what it wrote."""
        written = {currency: (total, used) for currency, (total, used) in balances.items()
                   if self._balances.get(currency) != (total, used)}
        stored = [{"for_account": self.account, "for_currency": currency, "total": total,
                   "used": used} for currency, (total, used) in written.items()
                  if currency in self._balances]
        if stored:
            conn.execute(_UPDATE_BALANCE, stored)
        added = [{"account": self.account, "currency": currency, "total": total, "used": used}
                 for currency, (total, used) in written.items() if currency not in self._balances]
        if added:
            conn.execute(_ADD_BALANCE, added)
        return written


def _seq_of(ident: str) -> int:
    """Ids are a prefix letter and a counter; order by the counter, not the string."""
    digits = ident.split("-", 1)[0].lstrip("PT")
    return int(digits) if digits.isdigit() else 0
