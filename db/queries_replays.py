"""Replay runs as the console's Replays page and ``bot.replay`` both see them.

A replay's summary is computed here, from the tables alone, because the console must never
import the venue or the engine (``bot.replay`` does); ``bot.replay.summarize`` calls
``run_summary`` so the CLI's last JSON line and the page cannot disagree. Everything a run
needs is in its rows: its steps in ``market_data`` (every step writes its ticker, at its
simulated time, whether or not a decision was made), fills in ``trades``, an equity point
per decided step in ``equity_steps`` (never the traces: they are wide), the files it replays in
``paper_clock.feed``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session as OrmSession

from bot.model.market_size import SIZING_CANDLES, balance_warnings
from bot.model.performance import buy_and_hold_pct
from bot.model.timeframes import timeframe_delta
from db.models import OHLCV, EquityStep, MarketData, PaperBalance, PaperClock, Session, Trade
from db.replay_runs import finished_summary
from db.round_trips import round_trips

MAX_CURVE_POINTS = 1000  # a year of 5m steps is 100k points: the browser gets a stride


class Fill(Protocol):
    """What a fingerprint reads of a fill (an ORM ``Trade`` or a selected row)."""

    timestamp: datetime
    symbol: str
    action: str
    quantity: float
    price: float
    fee: float


@dataclass(frozen=True)
class ReplaySummary:
    run_name: str
    candles: int
    net_pnl: float
    return_pct: float
    realized_pnl: float
    fees: float
    llm_cost: float
    trades: int  # fills
    round_trips: int  # closed, flat to flat
    win_rate: float  # of the closed round trips, after fees (the report's)
    max_drawdown_pct: float
    exposure_time_pct: float
    buy_and_hold_pct: float
    fingerprint: str
    final_equity: float


SUMMARY_FIELDS = {field.name for field in fields(ReplaySummary)}
RECORD_FIELDS = SUMMARY_FIELDS | {"warnings"}


def fingerprint(fills: Iterable[Fill]) -> str:
    """A hash of every fill, so two runs can be compared at a glance."""
    digest = hashlib.sha256()
    for t in fills:
        digest.update(f"{int(t.timestamp.timestamp() * 1000)}|{t.symbol}|{t.action}|"
                      f"{t.quantity:.10g}|{t.price:.10g}|{t.fee:.10g}\n".encode())
    return digest.hexdigest()[:16]


def run_session_ids(db: OrmSession, run_name: str) -> list[int]:
    """Every session (one per simulated day) of a replay run, oldest first."""
    return list(db.scalars(
        select(Session.id).where(Session.kind == "replay", Session.run_name == run_name)
        .order_by(Session.id)
    ))


def _fills(db: OrmSession, ids: Sequence[int]) -> list:
    return list(db.execute(
        select(Trade.timestamp, Trade.symbol, Trade.action, Trade.quantity, Trade.price,
               Trade.fee, Trade.realized_pnl)
        .where(Trade.session_id.in_(ids)).order_by(Trade.id)
    ))


def step_count(db: OrmSession, ids: Sequence[int]) -> int:
    """How many steps the run has taken: the simulated times its tickers were written at.

    Not its traces: a step whose decision is skipped (paused, stopping) writes none. A
    restart redoing the interrupted step writes its ticker again, at the same time.
    """
    return int(db.scalar(select(func.count(func.distinct(MarketData.timestamp)))
                         .where(MarketData.session_id.in_(ids))) or 0)


def account_equity(db: OrmSession, account: str, ids: Sequence[int]) -> float | None:
    """What the run's paper account is worth after its last step: every currency it holds at
    the last price its run saw of it against the quote currency (the quote itself at 1).

    From the account and not from the last trace: a step whose decision was skipped writes
    no trace, and a trace records the equity before its decision was carried out. None when
    the run saw no price or its account is not in this database.
    """
    newest = (select(func.max(MarketData.id)).where(MarketData.session_id.in_(ids))
              .group_by(MarketData.symbol))
    prices = dict(db.execute(select(MarketData.symbol, MarketData.price)
                             .where(MarketData.id.in_(newest))).all())
    balances = db.execute(select(PaperBalance.currency, PaperBalance.total)
                          .where(PaperBalance.account == account)).all()
    if not prices or not balances:
        return None
    quote = next(iter(prices)).partition("/")[2]
    worth = {quote: 1.0} | {symbol.partition("/")[0]: price for symbol, price in prices.items()
                            if symbol.partition("/")[2] == quote}
    return sum(total * worth.get(currency, 0.0) for currency, total in balances)


def _in_run(ids: Sequence[int]):
    return EquityStep.session_id.in_(ids)


def _step_figures(db: OrmSession, ids: Sequence[int]) -> tuple[int, int, float]:
    """Steps, steps holding exposure, and the largest drawdown from a running peak (%), of
    a run's equity steps: the database computes them, so a year of steps costs no rows."""
    peak = func.max(EquityStep.equity).over(order_by=EquityStep.id)
    steps = select(EquityStep.equity, EquityStep.exposure, peak.label("peak")).where(
        _in_run(ids)).subquery()
    count, exposed, drawdown = db.execute(select(
        func.count(), func.coalesce(func.sum(case((steps.c.exposure > 0, 1), else_=0)), 0),
        func.coalesce(func.max(case((steps.c.peak > 0, (steps.c.peak - steps.c.equity)
                                     / steps.c.peak * 100), else_=0.0)), 0.0),
    )).one()
    return int(count), int(exposed), float(drawdown)


def _edge_prices(db: OrmSession, ids: Sequence[int], *, newest: bool) -> dict[str, float]:
    """The first (or newest) step's prices that name any, among the 8 at that edge that
    name something; {} if none does. Read session by session from that edge: ordering the
    whole run's steps by id would walk past every other run's."""
    order = EquityStep.id.desc() if newest else EquityStep.id
    left = 8
    for session_id in reversed(ids) if newest else ids:
        for prices in db.scalars(select(EquityStep.prices).where(
                EquityStep.session_id == session_id, EquityStep.prices != "{}")
                .order_by(order).limit(left)):
            found = step_prices(prices)
            if found:
                return found
            left -= 1
            if not left:
                return {}
    return {}


def step_prices(prices: str) -> dict[str, float]:
    """A step's prices; text that is not a JSON object (a row written by hand or by another
    tool) is none: the curves and the pages that draw them must survive it."""
    try:
        found = json.loads(prices)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def last_step(db: OrmSession, ids: Sequence[int]) -> dict:
    """The newest step's account (equity, exposure, prices) of these sessions; {} when none
    was recorded."""
    last = db.execute(
        select(EquityStep.equity, EquityStep.exposure, EquityStep.prices)
        .where(EquityStep.session_id.in_(ids))
        .order_by(EquityStep.created_at.desc(), EquityStep.id.desc()).limit(1)
    ).first()
    if last is None:
        return {}
    return {"equity": last.equity, "exposure": last.exposure, "prices": step_prices(last.prices)}


def run_summary(db: OrmSession, ids: Sequence[int], starting_balance: float,
                run_name: str) -> dict:
    """The replay summary (net PnL, return, drawdown, buy-and-hold, fingerprint...).

    A finished run's is the one recorded as it finished (``finished_record``): its rows no
    longer change, and reading a year of them costs half a second. A run still going, or
    one recorded with other fields than these, is computed.
    """
    recorded = _recorded(db, run_name)
    if recorded is None:
        return computed_summary(db, ids, starting_balance, run_name)
    return {key: value for key, value in recorded.items() if key in SUMMARY_FIELDS}


def finished_record(db: OrmSession, ids: Sequence[int], starting_balance: float,
                    run_name: str) -> dict:
    """What a run records as it finishes: its summary and its balance warnings."""
    return (computed_summary(db, ids, starting_balance, run_name)
            | {"warnings": computed_balance_warnings(db, ids, starting_balance)})


def _recorded(db: OrmSession, run_name: str) -> dict | None:
    """The finished run's record, unless it holds other fields than ``finished_record``
    writes (one recorded by another version of it)."""
    recorded = finished_summary(db, run_name)
    return recorded if recorded is not None and recorded.keys() == RECORD_FIELDS else None


def computed_summary(db: OrmSession, ids: Sequence[int], starting_balance: float,
                     run_name: str) -> dict:
    """The replay summary computed from the run's rows.

    Net PnL and return are after LLM cost, since that is what a strategy costs to run; the
    win rate is the share of closed round trips that made money after fees, as the report's
    and the Performance page's.
    """
    fills = _fills(db, ids)
    steps, exposed, drawdown = _step_figures(db, ids)
    llm_cost = float(db.scalar(
        select(func.coalesce(func.sum(Session.total_llm_cost), 0.0)).where(Session.id.in_(ids))
    ) or 0.0)
    final_equity = account_equity(db, run_name, ids)
    if final_equity is None:
        final_equity = db.scalar(select(EquityStep.equity).where(_in_run(ids))
                                 .order_by(EquityStep.id.desc()).limit(1)) or starting_balance
    closed = [trip for trip in round_trips(db, ids) if trip.closed_at is not None]
    summary = ReplaySummary(
        run_name=run_name, candles=step_count(db, ids),
        net_pnl=round(final_equity - starting_balance - llm_cost, 8),
        return_pct=round((final_equity - llm_cost) / starting_balance * 100 - 100, 4),
        realized_pnl=round(sum(t.realized_pnl for t in fills), 8),
        fees=round(sum(t.fee for t in fills), 8), llm_cost=round(llm_cost, 8),
        trades=len(fills), round_trips=len(closed), win_rate=round(
            sum(trip.won for trip in closed) / len(closed) * 100, 2) if closed else 0.0,
        max_drawdown_pct=round(drawdown, 4),
        exposure_time_pct=round(exposed / steps * 100, 2) if steps else 0.0,
        buy_and_hold_pct=round(_buy_and_hold(db, ids), 4), fingerprint=fingerprint(fills),
        final_equity=round(final_equity, 8),
    )
    return asdict(summary)


def run_balance_warnings(db: OrmSession, ids: Sequence[int], starting_balance: float,
                         run_name: str) -> list[str]:
    """``bot.model.market_size``'s warnings for a run: a finished run's as it recorded them
    (``finished_record``), else computed (``computed_balance_warnings``)."""
    recorded = _recorded(db, run_name)
    if recorded is None:
        return computed_balance_warnings(db, ids, starting_balance)
    return [str(warning) for warning in recorded["warnings"]]


def computed_balance_warnings(db: OrmSession, ids: Sequence[int], starting_balance: float
                              ) -> list[str]:
    """The run's balance against the first SIZING_CANDLES candles it stored of each symbol
    (shortest timeframe), as its replay sized them from its file."""
    if not ids:
        return []
    shortest: dict[str, str] = {}
    for symbol, timeframe in db.execute(select(OHLCV.symbol, OHLCV.timeframe)
                                        .where(OHLCV.session_id.in_(ids)).distinct()):
        if symbol not in shortest or timeframe_delta(timeframe) < timeframe_delta(
                shortest[symbol]):
            shortest[symbol] = timeframe
    markets = []
    for symbol, timeframe in sorted(shortest.items()):
        # a candle stored by two sessions is counted once
        candles = db.execute(
            select(func.min(OHLCV.close), func.min(OHLCV.volume))
            .where(OHLCV.session_id.in_(ids), OHLCV.symbol == symbol,
                   OHLCV.timeframe == timeframe)
            .group_by(OHLCV.timestamp).order_by(OHLCV.timestamp).limit(SIZING_CANDLES)).all()
        markets.append((symbol, timeframe, [(close, volume) for close, volume in candles]))
    return balance_warnings(starting_balance, markets)


def run_settings(db: OrmSession, ids: Sequence[int]) -> dict | None:
    """The settings the run recorded (its newest session's: a live bot restarted with other
    settings records them on its session), or None when it recorded none: a run from before
    they were, or a record that is not a JSON object."""
    text = db.scalar(select(Session.settings).where(Session.id.in_(ids))
                     .order_by(Session.id.desc()).limit(1))
    try:
        record = json.loads(text) if text else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


# the figures a comparison shows side by side, in words, from a run's summary; return and
# equity are the paper account's after LLM cost, so their words are not the Performance
# page's (its total return leaves LLM cost out, its equity is each step's before deciding)
FIGURES = {"return_pct": "Return after LLM cost %", "max_drawdown_pct": "Max drawdown %",
           "trades": "Fills", "fees": "Fees", "final_equity": "Final account equity",
           "buy_and_hold_pct": "Buy & hold %", "net_pnl": "Net PnL", "llm_cost": "LLM cost"}


def run_figures(summary: dict) -> dict[str, float | int]:
    """A run's figures for a comparison, by their words (``FIGURES``), from its summary."""
    return {words: summary[key] for key, words in FIGURES.items()}


def _buy_and_hold(db: OrmSession, ids: Sequence[int]) -> float:
    """Equal weights in every symbol from the first price to the last, in percent."""
    first, last = _edge_prices(db, ids, newest=False), _edge_prices(db, ids, newest=True)
    return (buy_and_hold_pct(first, last) if first and last else None) or 0.0


def replay_runs(db: OrmSession, limit: int = 50) -> list[dict]:
    """Replay runs, newest first, each with its period, files, symbols and headline figures.

    Runs are few and small next to their rows; a finished one costs a handful of indexed
    queries and its recorded summary, one still going its fills (for the fingerprint) and
    its step count too.
    """
    runs = db.execute(
        select(Session.run_name, func.min(Session.id), func.min(Session.date),
               func.max(Session.date), func.count(Session.id))
        .where(Session.kind == "replay").group_by(Session.run_name)
        .order_by(func.max(Session.id).desc()).limit(limit)
    ).all()
    clocks = {row.account: row for row in db.scalars(
        select(PaperClock).where(PaperClock.account.in_([r[0] for r in runs])))}
    out = []
    for run_name, first_id, first_day, last_day, days in runs:
        ids = run_session_ids(db, run_name)
        start = float(db.scalar(select(Session.starting_balance).where(Session.id == first_id))
                      or 0.0)
        last = last_step(db, ids)
        figures = _recorded(db, run_name) or _running_figures(db, run_name, ids, start, last)
        clock = clocks.get(run_name)
        out.append({
            "run": run_name, "from": first_day, "to": last_day, "days": int(days),
            "candles": figures["candles"],
            "files": ", ".join(Path(p).name for p in feed_paths(clock)),
            "symbols": ", ".join(sorted(last.get("prices") or {})),
            "trades": figures["trades"], "net_pnl": figures["net_pnl"],
            "return_pct": figures["return_pct"], "fingerprint": figures["fingerprint"],
            "starting_balance": start, "last_session_id": ids[-1] if ids else first_id,
        })
    return out


def _running_figures(db: OrmSession, run_name: str, ids: Sequence[int], start: float,
                     last: dict) -> dict:
    """What the list shows of a run not finished, from its rows: as its summary names them,
    without the summary's drawdown and buy-and-hold (the list shows neither)."""
    llm_cost = float(db.scalar(select(func.coalesce(func.sum(Session.total_llm_cost), 0.0))
                               .where(Session.id.in_(ids))) or 0.0)
    fills = _fills(db, ids)
    final = account_equity(db, run_name, ids)
    if final is None:
        final = float(last.get("equity", start))
    return {"candles": step_count(db, ids), "trades": len(fills),
            "net_pnl": round(final - start - llm_cost, 8),
            "return_pct": round((final - llm_cost) / start * 100 - 100, 4) if start else 0.0,
            "fingerprint": fingerprint(fills)}


def feed_paths(clock: PaperClock | None) -> list[str]:
    """The candle files a run replays, as its paper clock recorded them."""
    if clock is None or not clock.feed:
        return []
    try:
        return [str(p) for p in json.loads(clock.feed).get("paths", [])]
    except (ValueError, AttributeError):
        return []


def equity_curve(db: OrmSession, ids: Sequence[int], starting_balance: float) -> pd.DataFrame:
    """Equity per step against buy-and-hold of the same symbols with the same money.

    Buy-and-hold is equal weights bought at each symbol's first price, like the summary's
    percentage. A long run is thinned to about ``MAX_CURVE_POINTS`` steps at evenly spaced
    row ids from its first to its last: a run writes its steps in order, so these are evenly
    spaced steps, each one lookup (numbering the steps reads them all: a quarter of a second
    for a year). An id another run wrote in between is a point less.
    """
    first, last = _edge_id(db, ids, newest=False), _edge_id(db, ids, newest=True)
    if first is None or last is None:
        return pd.DataFrame(columns=["time", "equity", "buy_and_hold"])
    query = select(EquityStep.created_at, EquityStep.equity, EquityStep.prices).where(
        _in_run(ids))
    if last - first >= MAX_CURVE_POINTS:
        query = query.where(EquityStep.id.in_(sorted({
            first + (last - first) * k // (MAX_CURVE_POINTS - 1)
            for k in range(MAX_CURVE_POINTS)})))
    first_prices = _edge_prices(db, ids, newest=False)
    rows = []
    for step in db.execute(query.order_by(EquityStep.id)):
        prices = step_prices(step.prices)
        moves = [prices[s] / first_prices[s] for s in first_prices
                 if s in prices and first_prices[s]]
        hold = starting_balance * sum(moves) / len(moves) if moves else None
        rows.append({"time": step.created_at, "equity": step.equity, "buy_and_hold": hold})
    return pd.DataFrame(rows, columns=["time", "equity", "buy_and_hold"])


def _edge_id(db: OrmSession, ids: Sequence[int], *, newest: bool) -> int | None:
    """The id of the run's first (or newest) step, from the first (or last) of its sessions
    holding one: a look at one session's steps, not at the run's. None: it has none."""
    edge = func.max(EquityStep.id) if newest else func.min(EquityStep.id)
    for session_id in reversed(ids) if newest else ids:
        found = db.scalar(select(edge).where(EquityStep.session_id == session_id))
        if found is not None:
            return int(found)
    return None


def normalised_curve(curve: pd.DataFrame, starting_balance: float) -> pd.DataFrame:
    """An ``equity_curve`` divided by the run's starting equity (1.0 is where it started),
    so runs of other balances share one chart."""
    scale = starting_balance or 1.0
    return curve.assign(equity=curve["equity"] / scale,
                        buy_and_hold=curve["buy_and_hold"] / scale)


def run_progress(db: OrmSession, paths: Sequence[str]) -> dict | None:
    """Where a (running) replay of exactly these files stands: its clock and its steps.

    The console launches replays as separate processes and does not know a run's name (a
    hash computed by ``bot.replay``); the paper clock records the files, which it does know.
    """
    wanted = [str(Path(p).resolve()) for p in paths]
    best: tuple[int, PaperClock, list[int]] | None = None
    for clock in db.scalars(select(PaperClock)):
        if [str(Path(p).resolve()) for p in feed_paths(clock)] != wanted:
            continue
        ids = run_session_ids(db, clock.account)
        # the same files with another balance is another run: the newest one is ours
        if ids and (best is None or ids[-1] > best[0]):
            best = (ids[-1], clock, ids)
    if best is None:
        return None
    _, clock, ids = best
    return {"run": clock.account, "now_ms": int(clock.now_ms), "steps": step_count(db, ids)}
