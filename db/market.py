"""Market snapshots and the candle cache written by the loop's first step."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session as OrmSession

from db.models import OHLCV, MarketData


def add_snapshot(db: OrmSession, **fields: object) -> None:
    """One ticker row, inserted at once: the ORM unit of work cost more than the insert,
    and nothing reads the object back."""
    db.execute(insert(MarketData), [fields])


# Built once: constructing the select cost more than running it, at every iteration.
_LAST_CANDLE = select(func.max(OHLCV.timestamp)).where(
    OHLCV.session_id == bindparam("session_id"), OHLCV.symbol == bindparam("symbol"),
    OHLCV.timeframe == bindparam("timeframe"))


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
        db.execute(insert(OHLCV), new)
    return len(new)
