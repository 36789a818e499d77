"""A wide date range of the Chart page, drawn whole as coarser bars rolled up in SQL.

A range holding more candles than a chart can draw one by one (``BAR_CAP``) is drawn at the
shortest bar of ``BARS`` that fits it, so a year costs the page about what a day does. Each
bar is rolled up from the coarsest stored timeframe that divides it (a run stores 5m and 1h:
a day's bar reads 24 rows, not 288), and the fills are summed per bar and side, so no page
reads a year of rows into pandas.

Bars start where the exchanges' do: on the epoch for bars of a day or less, on Monday for
weeks. The candles are rolled up per session first (a session holds no timestamp twice),
then the sessions' pieces of a bar are joined; a bar whose pieces overlap in time (a run's
older databases stored some candles in two sessions) is rolled up from its rows, the newest
session's candle winning, as everywhere on the chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    SQLColumnExpression,
    and_,
    cast,
    extract,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import aliased

from bot.model.candles import CANDLE_COLUMNS
from bot.model.timeframes import timeframe_delta
from db.models import OHLCV, Trade, TradePlan
from db.queries_chart import candle_frame, session_spans
from db.sessions import in_order

BAR_CAP = 1_000  # candles a chart draws one by one: about three days of 5m ones
BARS = ("15m", "30m", "1h", "2h", "4h", "1d", "1w")
BAR_ORIGIN = 345_600  # 1970-01-05 00:00 UTC, a Monday; a multiple of every bar up to a day
JOINED_GAP = timedelta(days=1)  # a source's gap shorter than this is the exchange's
CLOSED_PIECES_KEPT = 64  # ranges whose closed sessions' pieces a console process keeps
_closed_pieces: dict[tuple, pd.DataFrame] = {}
PIECE_COLUMNS = ["bucket", "first", "last", "open", "high", "low", "close", "volume"]
FILL_COLUMNS = ["timestamp", "action", "fills", "quantity", "price", "fee", "realized_pnl",
                "trace_id"]


def _seconds(timeframe: str) -> int:
    return int(timeframe_delta(timeframe).total_seconds())


def wide_bar(timeframe: str, stored: Sequence[str], span: timedelta) -> tuple[str, str] | None:
    """The bar a range of ``span`` of ``timeframe`` candles is drawn at, and the stored
    timeframe it is rolled up from: the shortest bar of ``BARS``, a multiple of the
    timeframe, that draws the span in at most ``BAR_CAP`` bars (else the longest), from the
    coarsest stored timeframe, at least the chosen one, that divides it. None when no bar is
    coarser than the timeframe."""
    step = _seconds(timeframe)
    bars = [b for b in BARS if _seconds(b) > step and _seconds(b) % step == 0]
    if not bars:
        return None
    fits = [b for b in bars if span.total_seconds() / _seconds(b) <= BAR_CAP]
    bar = fits[0] if fits else bars[-1]
    sources = [t for t in stored if step <= _seconds(t) and _seconds(bar) % _seconds(t) == 0]
    return bar, max([timeframe, *sources], key=_seconds)


def bar_start(when: datetime, bar: str) -> datetime:
    """The start of the bar of ``bar`` holding ``when``."""
    seconds = _seconds(bar)
    epoch = int(when.timestamp())
    return datetime.fromtimestamp(epoch - (epoch - BAR_ORIGIN) % seconds, UTC)


def _epoch(db: OrmSession, column: SQLColumnExpression[datetime]) -> ColumnElement[int]:
    """Whole seconds since the epoch of a stored UTC time, floored."""
    if db.get_bind().dialect.name == "sqlite":  # naive UTC text
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(extract("epoch", column)), BigInteger)  # INTEGER ends in 2038


def _bucket(db: OrmSession, column: SQLColumnExpression[datetime], bar: str
            ) -> ColumnElement[int]:
    """The bar's number since ``BAR_ORIGIN``. Its constants are literals: PostgreSQL takes
    an expression in GROUP BY for the selected one only when both read the same."""
    origin = literal_column(str(BAR_ORIGIN), Integer)
    return (_epoch(db, column) - origin) // literal_column(str(_seconds(bar)), Integer)


def _stamps(buckets: pd.Series, bar: str) -> pd.Series:
    return pd.to_datetime(BAR_ORIGIN + buckets.astype("int64") * _seconds(bar), unit="s",
                          utc=True)


def holds_more_than(
    db: OrmSession, run_ids: Sequence[int], symbol: str, timeframe: str, start: datetime,
    end: datetime, count: int,
) -> bool:
    """Whether [start, end) holds more than ``count`` candles of ``timeframe``: a count that
    stops at ``count + 1``, so it costs the same for a year."""
    rows = (select(OHLCV.timestamp)
            .where(OHLCV.session_id.in_(run_ids), OHLCV.symbol == symbol,
                   OHLCV.timeframe == timeframe, OHLCV.timestamp >= start,
                   OHLCV.timestamp < end)
            .limit(count + 1).subquery())
    return (db.scalar(select(func.count()).select_from(rows)) or 0) > count


def bar_candles(
    db: OrmSession,
    run_ids: Sequence[int],
    symbol: str,
    timeframe: str,
    bar: str,
    source: str,
    *,
    start: datetime,
    end: datetime,
    warmup: int = 0,
) -> tuple[pd.DataFrame, datetime | None]:
    """Bars of ``bar`` over [start, end), plus ``warmup`` earlier ones so indicators start
    settled: open of the first candle, highest high, lowest low, close of the last, summed
    volume. They are rolled up from ``source`` candles and, where the run stores none (before
    its first, after its newest, whose bar is still forming, and between), from
    ``timeframe`` ones.

    Returns the frame (timestamp = the bar's start) and the first bar meant for display.
    """
    first_bar = bar_start(start, bar)
    stretches = _stretches(db, run_ids, symbol, timeframe, source,
                           first_bar - warmup * timeframe_delta(bar), end)
    if not stretches:
        return pd.DataFrame(columns=CANDLE_COLUMNS), None
    pieces = _run_pieces(db, run_ids, symbol, stretches, bar)
    overlapped = _overlapped(pieces)
    if overlapped:
        stamps = _stamps(pd.Series(overlapped), bar)
        since = stamps.min().to_pydatetime()
        until = (stamps.max() + timeframe_delta(bar)).to_pydatetime()
        clipped = [(kind, max(lo, since), min(hi, until)) for kind, lo, hi in stretches
                   if max(lo, since) < min(hi, until)]
        pieces = _joined([pieces[~pieces["bucket"].isin(overlapped)],
                          _rows_of(db, _candles_in(run_ids, symbol, clipped), bar, overlapped)])
    if pieces.empty:
        return pd.DataFrame(columns=CANDLE_COLUMNS), None
    frame = _roll_up(pieces)
    frame["timestamp"] = _stamps(frame.pop("bucket"), bar)
    frame = frame[CANDLE_COLUMNS]
    shown = frame["timestamp"] >= first_bar
    if not shown.any():
        return pd.DataFrame(columns=CANDLE_COLUMNS), None
    return frame, frame.loc[shown, "timestamp"].iloc[0].to_pydatetime()


def _stretches(
    db: OrmSession, run_ids: Sequence[int], symbol: str, timeframe: str, source: str,
    since: datetime, end: datetime,
) -> list[tuple[str, datetime, datetime]]:
    """The candles [since, end) is rolled up from, as stretches of one timeframe each: the
    source's where it is stored, the chosen one's before, after and between (days a run
    stored no source candle: its timeframes changed and changed back)."""
    stretches, at = [], since
    if source != timeframe:
        for first, after in _stored(db, run_ids, symbol, source):
            stretches += [(timeframe, at, min(end, first)),
                          (source, max(at, first), min(end, after))]
            at = max(at, after)
    stretches.append((timeframe, at, end))
    return [(kind, lo, hi) for kind, lo, hi in stretches if lo < hi]


def _stored(db: OrmSession, run_ids: Sequence[int], symbol: str,
            timeframe: str) -> list[tuple[datetime, datetime]]:
    """The spans [first, after the last) the run stores ``timeframe`` candles over: its
    sessions' spans, joined where one goes on from (or over) another, or leaves less than a
    day out. A session stores a series without a gap (a restart the same day goes on from
    its newest candle); a gap of hours is the exchange's (an hour without trades has no
    candle of any timeframe), and joining it keeps the stretches few (SQLite compounds at
    most 500 SELECTs)."""
    step = timeframe_delta(timeframe)
    spans: list[tuple[datetime, datetime]] = []
    for first, last in session_spans(db, run_ids, symbol, timeframe):
        if spans and first < spans[-1][1] + JOINED_GAP:
            spans[-1] = (spans[-1][0], max(spans[-1][1], last + step))
        else:
            spans.append((first, last + step))
    return spans


def _run_pieces(db: OrmSession, run_ids: Sequence[int], symbol: str,
                stretches: list[tuple[str, datetime, datetime]], bar: str) -> pd.DataFrame:
    """The pieces of the run's bars: its closed sessions' are kept per console process (a
    run writes candles into its newest session only), its newest session's are read each
    time, so a refresh of a year reads a day. Kept by the stretches too: a new source
    candle (an hour, for 1h) reads them anew."""
    *closed, newest = in_order(db, run_ids)
    key = (str(db.get_bind().engine.url), tuple(closed), symbol, tuple(stretches), bar)
    kept = _closed_pieces.get(key)
    if kept is None:
        kept = (_pieces(db, _candles_in(closed, symbol, stretches), symbol, bar) if closed
                else pd.DataFrame(columns=PIECE_COLUMNS))
        while len(_closed_pieces) >= CLOSED_PIECES_KEPT:
            _closed_pieces.pop(next(iter(_closed_pieces)), None)
        _closed_pieces[key] = kept
    return _joined([kept, _pieces(db, _candles_in([newest], symbol, stretches), symbol, bar)])


def _candles_in(run_ids: Sequence[int], symbol: str,
                stretches: list[tuple[str, datetime, datetime]]) -> list[ColumnElement[bool]]:
    """The run's candles of each stretch: a range of the candles' key each."""
    return [and_(OHLCV.session_id.in_(run_ids), OHLCV.symbol == symbol,
                 OHLCV.timeframe == kind, OHLCV.timestamp >= lo, OHLCV.timestamp < hi)
            for kind, lo, hi in stretches]


def _pieces(db: OrmSession, reads: list[ColumnElement[bool]], symbol: str,
            bar: str) -> pd.DataFrame:
    """Each session's share of each bar: its first and last time (in seconds), open and
    close (the first and last rows, found by their key), high, low and volume; the
    stretches' shares in one statement."""
    bucket = _bucket(db, OHLCV.timestamp, bar)
    shares = [select(OHLCV.session_id, OHLCV.timeframe, bucket.label("bucket"),
                     func.min(OHLCV.timestamp).label("first"),
                     func.max(OHLCV.timestamp).label("last"),
                     func.max(OHLCV.high).label("high"), func.min(OHLCV.low).label("low"),
                     func.sum(OHLCV.volume).label("volume"))
              .where(read).group_by(OHLCV.session_id, OHLCV.timeframe, bucket)
              for read in reads]
    per = (shares[0] if len(shares) == 1 else union_all(*shares)).subquery()
    opened, closed = aliased(OHLCV), aliased(OHLCV)

    def row_at(candle: type[OHLCV], when: ColumnElement[datetime]) -> ColumnElement[bool]:
        return and_(candle.session_id == per.c.session_id, candle.symbol == symbol,
                    candle.timeframe == per.c.timeframe, candle.timestamp == when)

    rows = db.execute(  # first and last as seconds: parsing times costs more than the query
        select(per.c.bucket, _epoch(db, per.c.first), _epoch(db, per.c.last), opened.open,
               per.c.high, per.c.low, closed.close, per.c.volume)
        .select_from(per)
        .join(opened, row_at(opened, per.c.first))
        .join(closed, row_at(closed, per.c.last))
    ).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=PIECE_COLUMNS)


def _overlapped(pieces: pd.DataFrame) -> list[int]:
    """Bars with a piece starting before an earlier piece ends: candles stored twice."""
    ordered = pieces.sort_values(["bucket", "first"])
    ended = ordered.groupby("bucket")["last"].shift()
    return sorted(ordered.loc[ordered["first"] <= ended, "bucket"].unique().tolist())


def _rows_of(db: OrmSession, reads: list[ColumnElement[bool]], bar: str,
             buckets: list[int]) -> pd.DataFrame:
    """The bars ``buckets`` from the candles of ``reads`` (from the first bar to the last),
    as pieces of one candle each, the newest session's winning."""
    frame = candle_frame(db.execute(union_all(*(
        select(OHLCV.timestamp, OHLCV.open, OHLCV.high, OHLCV.low, OHLCV.close, OHLCV.volume,
               OHLCV.session_id).where(read) for read in reads))).all())
    if frame.empty:
        return frame
    seconds = (frame["timestamp"] - pd.Timestamp(0, tz=UTC)) // timedelta(seconds=1)
    frame = frame.assign(bucket=(seconds - BAR_ORIGIN) // _seconds(bar), first=seconds)
    return frame[frame["bucket"].isin(buckets)]


def _joined(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Pieces of bars in one frame, its prices numbers (an empty part's columns are not)."""
    kept = [part for part in parts if not part.empty]
    if not kept:
        return pd.DataFrame(columns=PIECE_COLUMNS)
    frame = pd.concat(kept, ignore_index=True)
    return frame.astype({c: float for c in ("open", "high", "low", "close", "volume")})


def _roll_up(pieces: pd.DataFrame) -> pd.DataFrame:
    grouped = pieces.sort_values(["bucket", "first"]).groupby("bucket", sort=True)
    return grouped.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"),
                       close=("close", "last"), volume=("volume", "sum")).reset_index()


def bar_fills(
    db: OrmSession, run_ids: Sequence[int], symbol: str, bar: str, start: datetime,
    end: datetime,
) -> pd.DataFrame:
    """Our fills in [start, end) summed per bar and side: how many, their size, average
    price (by size), fees and realized PnL, and the decision of the bar's last-booked fill
    (what a click on its marker opens). ``timestamp`` is the bar's start."""
    bucket = _bucket(db, Trade.timestamp, bar)
    per = (select(bucket.label("bucket"), Trade.action, func.count().label("fills"),
                  func.sum(Trade.quantity).label("quantity"),
                  func.sum(Trade.quantity * Trade.price).label("notional"),
                  func.sum(Trade.fee).label("fee"),
                  func.sum(Trade.realized_pnl).label("realized_pnl"),
                  func.max(Trade.id).label("last_id"))
           .where(Trade.session_id.in_(run_ids), Trade.symbol == symbol,
                  Trade.timestamp >= start, Trade.timestamp < end)
           .group_by(bucket, Trade.action).subquery())
    rows = db.execute(
        select(per.c.bucket, per.c.action, per.c.fills, per.c.quantity, per.c.notional,
               per.c.fee, per.c.realized_pnl, Trade.trace_id)
        .select_from(per).join(Trade, Trade.id == per.c.last_id)
        .order_by(per.c.bucket, per.c.action)
    ).all()
    frame = pd.DataFrame([tuple(row) for row in rows],
                         columns=["bucket", "action", "fills", "quantity", "notional", "fee",
                                  "realized_pnl", "trace_id"])
    frame["timestamp"] = _stamps(frame.pop("bucket"), bar)
    frame["price"] = frame.pop("notional") / frame["quantity"]
    return frame[FILL_COLUMNS]


def plans_closed_within(
    db: OrmSession, run_ids: Sequence[int], symbol: str, start: datetime, end: datetime
) -> int:
    """Plans of ``symbol`` that closed in [start, end): those a chart drawing only the plans
    open at its end leaves out."""
    return db.scalar(select(func.count()).select_from(TradePlan).where(
        TradePlan.session_id.in_(run_ids), TradePlan.symbol == symbol,
        TradePlan.closed_at >= start, TradePlan.closed_at < end)) or 0
