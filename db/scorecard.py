"""The scorecard of a bot's or a replay run's decisions over a span (``bot.model.scorecard``),
read from its traces, its stored candles and its round trips.

Candles are read up to the span's end plus the longest horizon, so a decision near the end
of the span is scored once its horizon has a candle; every session of the scope lends its
candles (a replay stores one day per session). Each symbol is priced from its shortest
stored timeframe.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from bot.model.scorecard import (
    HORIZONS,
    DecisionOutcome,
    DecisionRecord,
    PriceSeries,
    Scorecard,
    outcomes,
    price_series,
    scorecard,
)
from bot.model.timeframes import timeframe_delta
from bot.model.vocabulary import TraceStatus
from db.models import OHLCV, LLMTrace
from db.round_trips import round_trips


def decision_records(db: OrmSession, ids: Sequence[int], start: datetime | None = None,
                     end: datetime | None = None) -> list[DecisionRecord]:
    """The traced decisions of these sessions in [start, end), abandoned ones aside."""
    query = (select(LLMTrace.id, LLMTrace.created_at, LLMTrace.decision_json, LLMTrace.cost,
                    LLMTrace.tokens_in, LLMTrace.tokens_out, LLMTrace.shadow_decision)
             .where(LLMTrace.session_id.in_(ids), LLMTrace.status != TraceStatus.ABANDONED)
             .order_by(LLMTrace.created_at, LLMTrace.id))
    if start is not None:
        query = query.where(LLMTrace.created_at >= start)
    if end is not None:
        query = query.where(LLMTrace.created_at < end)
    return [DecisionRecord(r.id, r.created_at, r.decision_json, r.cost or 0.0,
                           r.tokens_in or 0, r.tokens_out or 0, r.shadow_decision)
            for r in db.execute(query)]


class CandleSeries(Mapping[str, PriceSeries]):
    """Each symbol's closes from its shortest stored timeframe, up to ``until``, read the
    first time a call names the symbol: a span's decisions name few of the stored symbols
    (HOLDs name none), and a year of 5-minute candles is 105k rows a symbol."""

    def __init__(self, db: OrmSession, ids: Sequence[int], until: datetime | None = None
                 ) -> None:
        self._db, self._ids, self._until = db, ids, until
        timeframes: dict[str, set[str]] = defaultdict(set)
        for symbol, timeframe in db.execute(select(OHLCV.symbol, OHLCV.timeframe)
                                            .where(OHLCV.session_id.in_(ids)).distinct()):
            timeframes[symbol].add(timeframe)
        self._shortest = {symbol: min(names, key=timeframe_delta)
                          for symbol, names in timeframes.items()}
        self._read: dict[str, PriceSeries] = {}

    def __getitem__(self, symbol: str) -> PriceSeries:
        if symbol not in self._read:
            shortest = self._shortest[symbol]
            query = select(OHLCV.timestamp, OHLCV.close).where(
                OHLCV.session_id.in_(self._ids), OHLCV.symbol == symbol,
                OHLCV.timeframe == shortest)
            if self._until is not None:
                query = query.where(OHLCV.timestamp < self._until)
            self._read[symbol] = price_series([(t, c) for t, c in self._db.execute(query)],
                                              timeframe_delta(shortest))
        return self._read[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._shortest)

    def __len__(self) -> int:
        return len(self._shortest)


def realized_by_decision(db: OrmSession, ids: Sequence[int]) -> dict[int, tuple[float, int]]:
    """Per trace: the net PnL (after fees) of the round trips it opened that have closed, and
    how many it opened are still open."""
    found: dict[int, tuple[float, int]] = {}
    for trip in round_trips(db, ids):
        if trip.open_trace_id is None:
            continue
        pnl, still_open = found.get(trip.open_trace_id, (0.0, 0))
        if trip.closed_at is None:
            found[trip.open_trace_id] = (pnl, still_open + 1)
        else:
            found[trip.open_trace_id] = (pnl + trip.net_pnl, still_open)
    return found


def decision_outcomes(db: OrmSession, ids: Sequence[int], start: datetime | None = None,
                      end: datetime | None = None) -> list[DecisionOutcome]:
    """Each decision of the span with its forward returns, its shadow's and its realized
    PnL."""
    series = CandleSeries(db, ids, None if end is None else end + max(HORIZONS.values()))
    only = next(iter(series)) if len(series) == 1 else None
    return outcomes(decision_records(db, ids, start, end), series,
                    realized_by_decision(db, ids), fallback_symbol=only)


def span_scorecard(db: OrmSession, ids: Sequence[int], start: datetime | None = None,
                   end: datetime | None = None) -> Scorecard:
    return scorecard(decision_outcomes(db, ids, start, end))
