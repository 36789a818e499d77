"""Market snapshots and the candle cache written by the loop's first step."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Row, bindparam, insert, select

from db.core import table_of
from db.models import OHLCV, MarketData

# Statements on the tables, not the mapped classes, run on a Core connection: the ORM's
# bulk-insert path and a session cost more than the SQL, and these run at every iteration.
_SNAPSHOTS, _CANDLES = table_of(MarketData), table_of(OHLCV)
_ADD_SNAPSHOT, _ADD_CANDLES = insert(_SNAPSHOTS), insert(_CANDLES)


def add_snapshots(conn: Connection, rows: list[dict[str, object]]) -> None:
    """Ticker rows, all symbols' in one statement: nothing reads them back as objects."""
    if rows:
        conn.execute(_ADD_SNAPSHOT, rows)


# Built once: constructing the select cost more than running it, at every iteration.
_NEWEST_CANDLE = (select(_CANDLES.c.timestamp, _CANDLES.c.open, _CANDLES.c.high, _CANDLES.c.low,
                         _CANDLES.c.close, _CANDLES.c.volume)
                  .where(_CANDLES.c.session_id == bindparam("session_id"),
                         _CANDLES.c.symbol == bindparam("symbol"),
                         _CANDLES.c.timeframe == bindparam("timeframe"))
                  .order_by(_CANDLES.c.timestamp.desc()).limit(1))


def newest_candle(
    conn: Connection, session_id: int, symbol: str, timeframe: str
) -> Row[datetime, float, float, float, float, float] | None:
    """The newest stored candle (timestamp, open, high, low, close, volume), if any.

    One query gives both where the next fetch starts and the candle the plans may not
    have been checked against yet (candles are unique per timestamp).
    """
    return conn.execute(_NEWEST_CANDLE, {"session_id": session_id, "symbol": symbol,
                                       "timeframe": timeframe}).first()


_NEWEST_OF_SESSIONS = (select(*_NEWEST_CANDLE.selected_columns)
                       .where(_CANDLES.c.session_id.in_(bindparam("session_ids", expanding=True)),
                              _CANDLES.c.symbol == bindparam("symbol"),
                              _CANDLES.c.timeframe == bindparam("timeframe"))
                       .order_by(_CANDLES.c.timestamp.desc()).limit(1))


def newest_candle_of(
    conn: Connection, session_ids: list[int], symbol: str, timeframe: str
) -> Row[datetime, float, float, float, float, float] | None:
    """``newest_candle`` over several sessions (a run's earlier ones)."""
    if not session_ids:
        return None
    return conn.execute(_NEWEST_OF_SESSIONS, {"session_ids": session_ids, "symbol": symbol,
                                              "timeframe": timeframe}).first()


def new_candles(
    session_id: int, symbol: str, timeframe: str, rows: list[list[float]], after: datetime | None,
) -> list[dict[str, object]]:
    """The ``ohlcv`` rows of the candles newer than ``after``, for ``add_candles``."""
    new = []
    for ts, o, h, low, c, v in rows:
        when = datetime.fromtimestamp(ts / 1000, UTC)
        if after is not None and when <= after:
            continue
        new.append(
            {"session_id": session_id, "symbol": symbol, "timeframe": timeframe,
             "timestamp": when, "open": o, "high": h, "low": low, "close": c, "volume": v}
        )
    return new


def add_candles(conn: Connection, rows: list[dict[str, object]]) -> None:
    """Insert candle rows, every series' in one statement."""
    if rows:
        conn.execute(_ADD_CANDLES, rows)
