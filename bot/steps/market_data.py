"""Step 1: ticker and top of book into ``market_data``; the run's new candles into ``ohlcv``.

Its transaction, the first of an iteration, also carries the step's bookkeeping: a replay's
clock and the position snapshot as of now, which would each cost a transaction of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection

from bot.decision_context import CONTEXT_CANDLES
from bot.model.quote import Quote
from bot.model.round_trip import spread_pct
from bot.model.timeframes import timeframe_delta
from bot.position_snapshot import positions_written, write_positions
from bot.runtime import Runtime
from bot.store import CandleKey, CandleTip
from db.engine import bound_engine
from db.market import add_candles, add_snapshots, new_candles

log = logging.getLogger("tradedesk.market")
BOOK_DEPTH = 20
IMBALANCE_LEVELS = 10
# A run's first fetch of a series: the decision's window, the chart's warm-up (its EMA 200
# settles from a run's first candle) and one more. A new day's session goes on from the
# run's newest candle (its previous session's), so the run stores each candle once; after
# a gap longer than the warm-up (a bot restarted days later) the series is fetched whole
# again, rather than everything missed.
CHART_WARMUP = 200
FIRST_FETCH_CANDLES = max(CONTEXT_CANDLES, CHART_WARMUP) + 1


def book_figures(book: dict) -> tuple[float | None, float | None, float | None, float | None, float | None]:
    """Best bid/ask, their sizes, and the imbalance of the top levels (-1 asks … +1 bids)."""
    bids, asks = book.get("bids") or [], book.get("asks") or []
    bid, bid_size = (bids[0][0], bids[0][1]) if bids else (None, None)
    ask, ask_size = (asks[0][0], asks[0][1]) if asks else (None, None)
    bid_depth = sum(level[1] for level in bids[:IMBALANCE_LEVELS])
    ask_depth = sum(level[1] for level in asks[:IMBALANCE_LEVELS])
    total = bid_depth + ask_depth
    imbalance = (bid_depth - ask_depth) / total if total > 0 else None
    return bid, ask, bid_size, ask_size, imbalance


@dataclass
class _Writes:
    """The step's rows, gathered over the symbols so each table takes one statement a step
    however many symbols run, and the newest candles and ticker rows to mirror once they
    are committed (``Store.market_written``)."""

    snapshots: list[dict[str, object]] = field(default_factory=list)
    candles: list[dict[str, object]] = field(default_factory=list)
    tips: dict[CandleKey, CandleTip] = field(default_factory=dict)
    tickers: dict[str, dict[str, object]] = field(default_factory=dict)


def fetch_market_data(rt: Runtime) -> None:
    now = rt.now()
    clock_note = rt.venue.clock_note()
    if clock_note is not None:  # on the heartbeat for as long as it lasts
        log.warning("clock: %s", clock_note)
        rt.errors.append(f"clock: {clock_note}")
    writes = _Writes()
    with bound_engine(rt.db).begin() as conn:  # table statements only: no ORM session
        for symbol in rt.settings.symbols:
            try:
                _fetch_symbol(rt, conn, symbol, now, writes)
            except Exception as exc:  # one symbol's fault must not hide the others
                rt.note_error(f"market data {symbol}", exc)
        add_snapshots(conn, writes.snapshots)
        add_candles(conn, writes.candles)
        # resync (next) would refresh the positions' time alone: the book is the same then
        clock_saved = rt.venue.carry_clock(conn)
        positions = write_positions(rt, conn, now)
    clock_saved()
    positions_written(rt, positions, now)
    rt.store.market_written(rt.session_id, writes.candles, writes.tips, writes.tickers)


def _fetch_symbol(rt: Runtime, conn: Connection, symbol: str, now: datetime,
                  writes: _Writes) -> None:
    ticker = rt.call(rt.venue.fetch_ticker, symbol)
    book = rt.call(rt.venue.fetch_order_book, symbol, BOOK_DEPTH)
    bid, ask, bid_size, ask_size, imbalance = book_figures(book)
    bid = bid if bid is not None else ticker.get("bid")
    ask = ask if ask is not None else ticker.get("ask")
    last = float(ticker.get("last") or ticker.get("close") or ((bid or 0) + (ask or 0)) / 2)
    stamp = ticker.get("timestamp")
    when = datetime.fromtimestamp(stamp / 1000, UTC) if stamp else now
    row = {
        "session_id": rt.session_id, "symbol": symbol, "timestamp": when, "price": last,
        "bid": bid, "ask": ask, "volume": ticker.get("baseVolume"), "spread_pct": spread_pct(bid, ask),
        "bid_size": bid_size, "ask_size": ask_size, "ob_imbalance": imbalance,
    }
    writes.snapshots.append(row)
    writes.tickers[symbol] = row
    base_rows: list = []
    for index, timeframe in enumerate(rt.settings.timeframes):
        key = (rt.session_id, symbol, timeframe)
        stored = rt.store.candle_tip(conn, key)
        after = stored[0] if stored is not None else None
        since, limit = None, FIRST_FETCH_CANDLES
        if after is not None and now - after <= FIRST_FETCH_CANDLES * timeframe_delta(timeframe):
            # on from the newest candle, naming how many it missed (and one more): an
            # exchange answers a request naming none with its default, OKX's 100 candles
            since = int(after.timestamp() * 1000) + 1
            limit = (now - after) // timeframe_delta(timeframe) + 1
        rows = rt.call(rt.venue.fetch_ohlcv, symbol, timeframe, since, limit)
        new = new_candles(rt.session_id, symbol, timeframe, rows, after)
        if new:
            writes.candles.extend(new)
            ms, open_, high, low, close, volume = max(rows, key=lambda r: r[0])
            writes.tips[key] = (datetime.fromtimestamp(ms / 1000, UTC), open_, high, low, close,
                                volume)
        if index == 0:
            base_rows = rows if stored is None else [
                [int(stored[0].timestamp() * 1000), *stored[1:]],
                *(row for row in rows if row[0] > stored[0].timestamp() * 1000)]
    unchecked = _unchecked(rt.quotes.get(symbol), base_rows)
    rt.quotes[symbol] = Quote(
        last=last, bid=bid, ask=ask, timestamp=when, book=book,
        low_since_check=min([last, *(r[3] for r in unchecked)]),
        high_since_check=max([last, *(r[2] for r in unchecked)]),
        extremes_from_ms=int(unchecked[0][0]) if unchecked else None,
        last_candle_ms=int(base_rows[-1][0]) if base_rows else None,
    )


def _unchecked(previous: Quote | None, rows: list) -> list:
    """Base candles the plans have not been checked against yet.

    While running: every candle newer than the last one seen (across a day rollover too,
    when the new session's candle cache starts empty). On the first look after a start: the
    newest closed candle, because a restart may be redoing the iteration that stored it
    before its plans were checked; plans opened after it began ignore it (see plans).
    """
    if previous is not None and previous.last_candle_ms is not None:
        return [r for r in rows if r[0] > previous.last_candle_ms]
    return list(rows[-1:])
