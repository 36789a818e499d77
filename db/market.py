"""Market snapshots and the candle cache written by the loop's first step."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session as OrmSession

from db.models import OHLCV, MarketData

# Statements on the tables, not the mapped classes: the ORM's bulk-insert and statement
# compilation paths cost more than the SQL, and these run at every iteration.
_SNAPSHOTS, _CANDLES = MarketData.__table__, OHLCV.__table__
_ADD_SNAPSHOT, _ADD_CANDLES = insert(_SNAPSHOTS), insert(_CANDLES)


def add_snapshot(db: OrmSession, **fields: object) -> None:
    """One ticker row, inserted at once: the ORM unit of work cost more than the insert,
    and nothing reads the object back."""
    db.execute(_ADD_SNAPSHOT, [fields])


# Built once: constructing the select cost more than running it, at every iteration.
_LAST_CANDLE = select(func.max(_CANDLES.c.timestamp)).where(
    _CANDLES.c.session_id == bindparam("session_id"), _CANDLES.c.symbol == bindparam("symbol"),
    _CANDLES.c.timeframe == bindparam("timeframe"))


def last_candle_time(
    db: OrmSession, session_id: int, symbol: str, timeframe: str
) -> datetime | None:
    return db.scalar(_LAST_CANDLE, {"session_id": session_id, "symbol": symbol,
                                    "timeframe": timeframe})


def add_candles(
    db: OrmSession, session_id: int, symbol: str, timeframe: str, rows: list[list[float]],
    after: datetime | None,
) -> int:
    """Insert candles newer than ``after`` in one statement; returns how many were new."""
    new = []
    for ts, o, h, low, c, v in rows:
        when = datetime.fromtimestamp(ts / 1000, UTC)
        if after is not None and when <= after:
            continue
        new.append(
            {"session_id": session_id, "symbol": symbol, "timeframe": timeframe,
             "timestamp": when, "open": o, "high": h, "low": low, "close": c, "volume": v}
        )
    if new:
        db.execute(_ADD_CANDLES, new)
    return len(new)
