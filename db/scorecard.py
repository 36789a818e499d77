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
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session as OrmSession

from bot.model.round_trips import RoundTrip, group_round_trips
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
from db.decision_scores import add_days, rolled_tally, rolled_through, set_tip, tip_of
from db.models import OHLCV, LLMTrace, Session, Trade
from db.performance_rollups import rolled_open
from db.round_trips import trip_fills
from db.sessions import in_order, run_session_ids
from db.trip_results import rolled_by_decision, rolled_total


def decision_records(db: OrmSession | Connection, ids: Sequence[int],
                     start: datetime | None = None, end: datetime | None = None) -> list[DecisionRecord]:
    """The traced decisions of these sessions in [start, end), abandoned ones aside."""
    query = (select(LLMTrace.id, LLMTrace.created_at, LLMTrace.decision_json, LLMTrace.cost,
                    LLMTrace.tokens_in, LLMTrace.tokens_out, LLMTrace.shadow_decision,
                    LLMTrace.session_id)
             .where(LLMTrace.session_id.in_(ids), LLMTrace.status != TraceStatus.ABANDONED)
             .order_by(LLMTrace.created_at, LLMTrace.id))
    if start is not None:
        query = query.where(LLMTrace.created_at >= start)
    if end is not None:
        query = query.where(LLMTrace.created_at < end)
    return [DecisionRecord(r.id, r.created_at, r.decision_json, r.cost or 0.0,
                           r.tokens_in or 0, r.tokens_out or 0, r.shadow_decision,
                           r.session_id)
            for r in db.execute(query)]


class CandleSeries(Mapping[str, PriceSeries]):
    """Each symbol's closes from its shortest stored timeframe, up to ``until``, read the
    first time a call names the symbol: a span's decisions name few of the stored symbols
    (HOLDs name none), and a year of 5-minute candles is 105k rows a symbol."""

    def __init__(self, db: OrmSession | Connection, ids: Sequence[int],
                 until: datetime | None = None) -> None:
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


def realized_by_decision(db: OrmSession, ids: Sequence[int], carried: Sequence[RoundTrip] = ()
                         ) -> dict[int, tuple[float, int]]:
    """Per trace: the net PnL (after fees) of the round trips it opened that these sessions'
    fills closed, and how many it opened are still open; folded on from the trips
    ``carried`` (those the sessions before left open). A trip is opened by the decision its
    first fill carries, so with no fill or carried trip carrying one there is nothing to
    fold."""
    found: dict[int, tuple[float, int]] = {}
    if all(trip.open_trace_id is None for trip in carried) and db.scalar(
            select(Trade.id).where(Trade.session_id.in_(ids), Trade.trace_id.is_not(None))
            .limit(1)) is None:
        return found
    for trip in group_round_trips(trip_fills(db, ids), carried):
        if trip.open_trace_id is None:
            continue
        pnl, still_open = found.get(trip.open_trace_id, (0.0, 0))
        if trip.closed_at is None:
            found[trip.open_trace_id] = (pnl, still_open + 1)
        else:
            found[trip.open_trace_id] = (pnl + trip.net_pnl, still_open)
    return found


@dataclass(frozen=True)
class Realized:
    """A run's realized PnL per opening decision, as the scorecard reads it: ``rolled``, the
    sessions whose trips are rolled up per decision (``db.trip_results``), and ``live``, per
    decision, the net PnL of the trips closed after them and how many it opened are still
    open, folded from the later sessions' fills on from the trips the last rollup left
    open."""

    rolled: Sequence[int]
    live: dict[int, tuple[float, int]]

    def total(self, db: OrmSession, ids: Sequence[int], start: datetime | None,
              end: datetime) -> float:
        """The realized PnL of the decisions in [start, end)."""
        return rolled_total(db, self.rolled, start, end) + _live_between(
            db, ids, self.live, start, end)

    def by_decision(self, db: OrmSession, start: datetime | None,
                    end: datetime | None) -> dict[int, tuple[float, int]]:
        """Per decision of [start, end) (and of the live trips): its realized PnL and how
        many trips it opened are still open."""
        found = dict(self.live)
        for trace_id, net in rolled_by_decision(db, self.rolled, start, end).items():
            pnl, still_open = found.get(trace_id, (0.0, 0))
            found[trace_id] = (pnl + net, still_open)
        return found


def realized_of(db: OrmSession, ids: Sequence[int]) -> Realized:
    """A run's realized PnL: its rolled-up sessions' results, and the trips of the sessions
    after them (the open day) folded on from those the last rollup left open."""
    ordered = in_order(db, ids)
    done, carried = rolled_open(db, ordered)
    return Realized(ordered[:done], realized_by_decision(db, ordered[done:], carried))


def decision_outcomes(db: OrmSession, ids: Sequence[int], start: datetime | None = None,
                      end: datetime | None = None, candle_ids: Sequence[int] | None = None,
                      realized: dict[int, tuple[float, int]] | None = None
                      ) -> list[DecisionOutcome]:
    """Each decision of the span with its forward returns, its shadow's and its realized
    PnL; priced from the candles of ``candle_ids`` (default: every session of ``ids``)."""
    series = CandleSeries(db, ids if candle_ids is None else candle_ids,
                          None if end is None else end + max(HORIZONS.values()))
    return outcomes(decision_records(db, ids, start, end), series,
                    realized_by_decision(db, ids) if realized is None else realized,
                    fallback_symbol=only_symbol(series))


def only_symbol(series: CandleSeries) -> str | None:
    """The symbol an action naming none is on: the run's, when it has only one."""
    return next(iter(series)) if len(series) == 1 else None


# A session stores its candles from its first fetch (201 candles back) to its day's end, so
# the decisions from a time on are priced from the sessions of its day and later; the days
# before it are kept for a day boundary in another time zone and a late first fetch.
CANDLE_DAYS_BEFORE = timedelta(days=2)
# IN lists of trace ids go in chunks this long (SQLite's bound-parameter limit)
TRACE_CHUNK = 5_000


def sessions_from(db: OrmSession | Connection, ids: Sequence[int],
                  since: datetime | None) -> list[int]:
    """The sessions of ``ids`` that hold the candles pricing the decisions from ``since`` on
    (all of them when ``since`` is None): a span's decisions are priced without reading a
    year of candles."""
    if since is None:
        return list(ids)
    return list(db.scalars(select(Session.id).where(
        Session.id.in_(ids), Session.date >= (since - CANDLE_DAYS_BEFORE).date())))


def span_scorecard(db: OrmSession, ids: Sequence[int], start: datetime | None = None,
                   end: datetime | None = None) -> Scorecard:
    """The scorecard of one run's sessions over [start, end): the whole days before the run's
    rollup tip summed by the database (``db.decision_scores``), the rest (a day the span
    cuts, the traces from the tip on) scored from their traces and the candles of their
    days on."""
    realized = realized_of(db, ids)
    tip = rolled_through(db, ids)
    first = None if start is None else _day_from(start)
    last = tip if end is None else min(end, tip) if tip is not None else None
    if tip is None or last is None or (first is not None and _midnight(first) >= last):
        return scorecard(_raw(db, ids, start, end, realized))
    # the tip's own day is rolled up to the tip; a span ending before it, to its last midnight
    last_day = (last if last == tip else _midnight(last.astimezone(UTC).date())
                - timedelta(days=1)).astimezone(UTC).date()
    if first is not None and first > last_day:
        return scorecard(_raw(db, ids, start, end, realized))
    rolled = rolled_tally(db, ids, first, last_day)
    rolled_end = tip if last == tip else _midnight(last_day + timedelta(days=1))
    rolled.realized_pnl = realized.total(db, ids, None if first is None else _midnight(first),
                                         rolled_end)
    found = [*(_raw(db, ids, start, _midnight(first), realized) if first is not None else []),
             *_raw(db, ids, rolled_end, end, realized)]
    return scorecard(found, rolled)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _day_from(moment: datetime) -> date:
    """The first whole UTC day from ``moment`` on."""
    day = moment.astimezone(UTC).date()
    return day if _midnight(day) == moment else day + timedelta(days=1)


def _raw(db: OrmSession, ids: Sequence[int], start: datetime | None, end: datetime | None,
         realized: Realized) -> list[DecisionOutcome]:
    """The span's decisions scored from their traces, priced from the candles of their days
    on."""
    if start is not None and end is not None and start >= end:
        return []
    return decision_outcomes(db, ids, start, end, sessions_from(db, ids, start),
                             realized.by_decision(db, start, end))


def _live_between(db: OrmSession, ids: Sequence[int], realized: dict[int, tuple[float, int]],
                  start: datetime | None, end: datetime) -> float:
    """The realized PnL of ``realized``'s decisions in [start, end)."""
    opened = sorted(realized)
    total = 0.0
    for at in range(0, len(opened), TRACE_CHUNK):
        query = select(LLMTrace.id).where(
            LLMTrace.id.in_(opened[at:at + TRACE_CHUNK]), LLMTrace.session_id.in_(ids),
            LLMTrace.status != TraceStatus.ABANDONED, LLMTrace.created_at < end)
        if start is not None:
            query = query.where(LLMTrace.created_at >= start)
        total += sum(realized[trace_id][0] for trace_id in db.scalars(query))
    return total


def settle_scores(db: OrmSession | Connection, kind: str, run_name: str) -> int:
    """Roll a run's decisions up to its new tip: 24 h (the longest horizon) before the newest
    candle close its recent sessions hold, so every horizon of each decision before it is
    reached. Each is scored as ``span_scorecard`` scores a trace. Uncommitted; returns the
    rows added."""
    ids = run_session_ids(db, kind, run_name)
    tip = tip_of(db, kind, run_name)
    series = CandleSeries(db, sessions_from(db, ids, tip))
    newest = max((series[symbol].closed_at[-1] for symbol in series
                  if series[symbol].closed_at), default=None)
    if newest is None:
        return 0
    through = newest - max(HORIZONS.values())
    if tip is not None and through <= tip:
        return 0
    found = outcomes(decision_records(db, ids, tip, through), series,
                     fallback_symbol=only_symbol(series))
    add_days(db, found)
    set_tip(db, kind, run_name, through)
    return len(found)


def settle_all(db: OrmSession | Connection) -> int:
    """Roll up every run's decisions (uncommitted); returns the rows added."""
    return sum(settle_scores(db, kind, run_name) for kind, run_name in
               db.execute(select(Session.kind, Session.run_name).distinct()).all())
