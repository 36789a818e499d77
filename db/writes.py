"""Which tables the committed transactions of an engine wrote: what keeps read caches right.

The decision context reads, at every step, rows that change a few times a day (open
orders, plans, the recent trades, the session's figures). A ``ReadCache`` keeps each
query's answer with a stamp of its tables: how many transactions writing each had
committed when it was read. A transaction bumps the counts of the tables it wrote when it
commits, whichever code wrote them (ORM flush or table statement), so a changed stamp
means the rows may have changed and the query runs again.

The rows cached must be written by this process only (a bot's own rows: ``bot.lock``
keeps one process per bot, and the console writes only commands): another process's
commits are not counted. Within that, it is safe by construction: a count moves at the
commit (before the database's own commit, so a failed commit costs one needless read, never
a stale one), a rolled-back transaction moves nothing, and a reader whose own transaction
has uncommitted writes to a table asks the database (its answer includes them). The caches
live in memory only, so a restart (or a SIGKILL between any two statements) starts them
empty. SQLite's driver and PostgreSQL's default isolation show each statement the latest
committed rows, which is what the stamp, taken before the read, describes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, event

T = TypeVar("T")
_PENDING = "writes: tables written, uncommitted"
_ANY = "*"  # a write whose table could not be named: it may have written any table
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class WriteClock:
    """Per table, how many transactions that wrote it have committed (since watching)."""

    def __init__(self) -> None:
        self.commits: dict[str, int] = {}

    def stamp(self, tables: tuple[str, ...]) -> tuple[int, ...]:
        commits = self.commits
        return (commits.get(_ANY, 0), *(commits.get(table, 0) for table in tables))

    def _written(self, conn: Connection, cursor: Any, statement: str, parameters: Any,
                 context: Any, executemany: bool) -> None:
        if context is not None and (context.isinsert or context.isupdate or context.isdelete):
            table = getattr(getattr(context.compiled, "statement", None), "table", None)
            name = getattr(table, "name", _ANY)
        elif statement.lstrip()[:7].upper().startswith(_WRITES):
            name = _ANY
        else:
            return
        if conn._is_autocommit_isolation():  # committed as it ran: no commit event follows
            self.commits[name] = self.commits.get(name, 0) + 1
        else:
            conn.info.setdefault(_PENDING, set()).add(name)

    def _committed(self, conn: Connection) -> None:
        for table in conn.info.pop(_PENDING, ()):
            self.commits[table] = self.commits.get(table, 0) + 1

    @staticmethod
    def _rolled_back(conn: Connection) -> None:
        conn.info.pop(_PENDING, None)


_CLOCKS: WeakKeyDictionary[Engine, WriteClock] = WeakKeyDictionary()


def write_clock(engine: Engine) -> WriteClock:
    """The engine's clock, listening from the first call on (before any cached read)."""
    clock = _CLOCKS.get(engine)
    if clock is None:
        clock = _CLOCKS[engine] = WriteClock()
        event.listen(engine, "after_cursor_execute", clock._written)
        event.listen(engine, "commit", clock._committed)
        event.listen(engine, "rollback", clock._rolled_back)
    return clock


class ReadCache:
    """The last answer of each named query, reused while its tables' stamp holds."""

    def __init__(self, clock: WriteClock) -> None:
        self.clock = clock
        self.entries: dict[str, tuple[Hashable, tuple[int, ...], Any]] = {}

    def get(self, conn: Connection, name: str, params: Hashable, tables: tuple[str, ...],
            load: Callable[[], T]) -> T:
        """``load()``, or its answer kept from a read with the same ``params`` since which
        no committed transaction wrote ``tables``."""
        pending = conn.info.get(_PENDING)
        if pending and (_ANY in pending or not pending.isdisjoint(tables)):
            return load()
        stamp = self.clock.stamp(tables)
        kept = self.entries.get(name)
        if kept is not None and kept[0] == params and kept[1] == stamp:
            return kept[2]
        value = load()
        self.entries[name] = (params, stamp, value)
        return value
