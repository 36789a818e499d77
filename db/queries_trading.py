"""Read-only queries behind Portfolio, Trades and Decisions.

Filters are applied in SQL and every listing is capped, so a long-running run never makes a
page load its whole history; totals come from SQL aggregates over the same filters so they
agree with the table even when the table is truncated.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session as OrmSession

from db.fill_totals import FILL_SUMS, rolled_ids, rolled_spans, rolled_sums, rolled_symbols
from db.models import LLMTrace, OpenOrder, Order, Trade, TradePlan, TradePlanVersion
from db.plans import ACTIVE
from db.traces import decision_text, execution_result, outcomes_of, trace_texts

TRADE_COLUMNS = ["id", "timestamp", "symbol", "action", "quantity", "price", "fee",
                 "realized_pnl", "liquidity", "reason", "trade_id", "order_id", "plan_id",
                 "trace_id"]
PLAN_COLUMNS = ["id", "symbol", "side", "status", "entry_price", "stop_price", "target_price",
                "size", "filled_size", "version", "reason", "exit_reason", "opened_at",
                "closed_at", "trace_id"]
VERSION_COLUMNS = ["version", "entry_price", "stop_price", "target_price", "size", "status",
                   "change", "created_at", "trace_id"]


def open_orders(db: OrmSession, session_id: int) -> pd.DataFrame:
    rows = db.execute(
        select(
            OpenOrder.order_id, OpenOrder.client_order_id, OpenOrder.symbol, OpenOrder.side,
            OpenOrder.type, OpenOrder.price, OpenOrder.amount, OpenOrder.remaining,
            OpenOrder.status, OpenOrder.exchange_timestamp,
        )
        .where(OpenOrder.session_id == session_id)
        .order_by(OpenOrder.symbol, OpenOrder.order_id)
    ).all()
    return pd.DataFrame(
        rows,
        columns=["order_id", "client_order_id", "symbol", "side", "type", "price", "amount",
                 "remaining", "status", "time"],
    )


def active_plans(db: OrmSession, run_ids: Sequence[int]) -> pd.DataFrame:
    """Plans that still bind the bot, across the run's days."""
    query = select(*(getattr(TradePlan, c) for c in PLAN_COLUMNS)).where(
        TradePlan.session_id.in_(run_ids), TradePlan.status.in_(ACTIVE)
    )
    return pd.DataFrame(db.execute(query.order_by(TradePlan.id)).all(), columns=PLAN_COLUMNS)


def plan_versions(db: OrmSession, plan_id: int) -> pd.DataFrame:
    """A plan's versions, oldest first, each with the trace of the decision that wrote it
    (None: the plan step, a fill or a command)."""
    rows = db.execute(
        select(*(getattr(TradePlanVersion, c) for c in VERSION_COLUMNS))
        .where(TradePlanVersion.plan_id == plan_id)
        .order_by(TradePlanVersion.version)
    ).all()
    return pd.DataFrame(rows, columns=VERSION_COLUMNS)


def version_diff(versions: pd.DataFrame, old: int, new: int) -> pd.DataFrame:
    """Fields that differ between two versions of one plan (what the operator asks about)."""
    by_version = versions.set_index("version").to_dict("index")
    before, after = by_version[old], by_version[new]
    fields = [c for c in VERSION_COLUMNS if c not in ("version", "created_at", "trace_id")]
    changed = [  # as text: one column mixes prices and notes, which Arrow cannot type
        {"field": f, f"v{old}": str(before[f]), f"v{new}": str(after[f])}
        for f in fields
        if before[f] != after[f]
    ]
    return pd.DataFrame(changed, columns=["field", f"v{old}", f"v{new}"])


@dataclass(frozen=True)
class TradeFilter:
    """What the Trades page filters on; None means no filter."""

    session_ids: tuple[int, ...]
    symbols: tuple[str, ...] = ()
    side: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    reason_contains: str | None = None

    def apply(self, query: Select) -> Select:
        query = query.where(Trade.session_id.in_(self.session_ids))
        if self.symbols:
            query = query.where(Trade.symbol.in_(self.symbols))
        if self.side:
            query = query.where(Trade.action == self.side)
        if self.start is not None:
            query = query.where(Trade.timestamp >= self.start)
        if self.end is not None:
            query = query.where(Trade.timestamp < self.end)
        if self.reason_contains:
            query = query.where(Trade.reason.ilike(f"%{self.reason_contains}%"))
        return query


    @property
    def whole_sessions(self) -> bool:
        """Whether it holds every fill of its sessions: closed ones' totals stand for them."""
        return not (self.symbols or self.side or self.start is not None
                    or self.end is not None or self.reason_contains)


def _rolled_and_rest(db: OrmSession, where: TradeFilter
                     ) -> tuple[tuple[int, ...], TradeFilter | None]:
    """The closed sessions whose fill totals stand for their rows under ``where``, and the
    filter over the rest (None: nothing is left to read)."""
    rolled = rolled_ids(db, where.session_ids) if where.whole_sessions else ()
    done = set(rolled)
    rest = tuple(session_id for session_id in where.session_ids if session_id not in done)
    return rolled, replace(where, session_ids=rest) if rest else None


def trade_symbols(db: OrmSession, session_ids: Sequence[int]) -> list[str]:
    rolled, rest = _rolled_and_rest(db, TradeFilter(tuple(session_ids)))
    symbols = rolled_symbols(db, rolled) if rolled else set()
    if rest is not None:
        symbols.update(db.scalars(rest.apply(select(Trade.symbol).distinct())))
    return sorted(symbols)


def trades(db: OrmSession, where: TradeFilter, limit: int = 5000,
           offset: int = 0) -> pd.DataFrame:
    """The fills matching ``where``, newest first: ``limit`` of them after the ``offset``
    newest, read from the sessions that can hold them (``_holding_newest``)."""
    held = replace(where, session_ids=_holding_newest(db, where, offset + limit))
    query = select(*(getattr(Trade, c) for c in TRADE_COLUMNS))
    query = held.apply(query).order_by(Trade.timestamp.desc(), Trade.id.desc())
    return pd.DataFrame(db.execute(query.offset(offset).limit(limit)).all(),
                        columns=TRADE_COLUMNS)


def _holding_newest(db: OrmSession, where: TradeFilter, wanted: int) -> tuple[int, ...]:
    """The sessions that may hold the ``wanted`` newest fills matching ``where``.

    Sorting a year of a run's fills to show its newest page costs more than the page: the
    newest sessions (by their newest fill) that hold ``wanted`` fills between them set the
    cutoff (their oldest fill), and only sessions with a fill at or after it can hold one
    of the newest. Counted from the index of session, symbol and time, or taken from the
    closed sessions' fill totals when ``where`` holds their every fill.
    """
    rolled, rest = _rolled_and_rest(db, where)
    read: list[tuple[int, int, datetime, datetime]] = [] if rest is None else [
        (row[0], row[1], row[2], row[3]) for row in db.execute(rest.apply(
            select(Trade.session_id, func.count(), func.min(Trade.timestamp),
                   func.max(Trade.timestamp)).group_by(Trade.session_id)))]
    read.sort(key=lambda span: span[3], reverse=True)
    spans = heapq.merge(read, rolled_spans(db, rolled) if rolled else (),
                        key=lambda span: span[3], reverse=True)
    held, cutoff, holding = 0, None, []
    for session_id, count, oldest, newest in spans:
        if held >= wanted and cutoff is not None and newest < cutoff:
            break  # newest first: no later session reaches the cutoff
        holding.append(session_id)
        if held < wanted:
            held += count
            cutoff = oldest if cutoff is None else min(cutoff, oldest)
    return tuple(holding)


def all_trades(db: OrmSession, where: TradeFilter) -> pd.DataFrame:
    """Every fill matching ``where``, newest first: what the Trades page's download holds."""
    query = where.apply(select(*(getattr(Trade, c) for c in TRADE_COLUMNS)))
    return pd.DataFrame(db.execute(query.order_by(Trade.timestamp.desc(), Trade.id.desc()))
                        .all(), columns=TRADE_COLUMNS)


def trade_totals(db: OrmSession, where: TradeFilter) -> dict[str, float | int]:
    """The fills' totals: closed sessions' from their fill totals where they stand for the
    rows (``_rolled_and_rest``), summed with the rows of the rest."""
    rolled, rest = _rolled_and_rest(db, where)
    count, notional, fees, pnl, wins, losses = (
        db.execute(rest.apply(select(*FILL_SUMS))).one() if rest is not None
        else (0, 0.0, 0.0, 0.0, 0, 0))
    if rolled:
        more = rolled_sums(db, rolled)
        count, notional, fees, pnl = count + more[0], notional + more[1], fees + more[2], \
            pnl + more[3]
        wins, losses = wins + more[4], losses + more[5]
    return {
        "count": int(count), "notional": float(notional), "fees": float(fees),
        "realized_pnl": float(pnl), "net_pnl": float(pnl) - float(fees),
        "wins": int(wins), "losses": int(losses),
    }


TRACE_LIST_COLUMNS = ["id", "created_at", "engine", "model", "status", "cost", "latency_ms",
                      "tokens_in", "tokens_out", "decision_json", "errors"]


def traces(
    db: OrmSession,
    session_id: int,
    *,
    statuses: Sequence[str] = (),
    engines: Sequence[str] = (),
    errors_only: bool = False,
    limit: int = 200,
) -> pd.DataFrame:
    """The decision list (index session_id+created_at); prompts stay out of it."""
    query = select(*(getattr(LLMTrace, c) for c in TRACE_LIST_COLUMNS)).where(
        LLMTrace.session_id == session_id
    )
    if statuses:
        query = query.where(LLMTrace.status.in_(statuses))
    if engines:
        query = query.where(LLMTrace.engine.in_(engines))
    if errors_only:
        query = query.where(LLMTrace.status != "ok")
    query = query.order_by(LLMTrace.created_at.desc(), LLMTrace.id.desc()).limit(limit)
    frame = pd.DataFrame(db.execute(query).all(), columns=TRACE_LIST_COLUMNS)
    frame["actions"] = frame.pop("decision_json").map(action_summary)
    frame["errors"] = frame["errors"].map(
        lambda e: "; ".join(map(str, e)) if isinstance(e, list) else ""
    )
    return frame[["id", "created_at", "engine", "model", "status", "actions", "cost",
                  "latency_ms", "tokens_in", "tokens_out", "errors"]]


def action_summary(decision_json: object) -> str:
    """A one-line summary of a decision's actions; unparseable JSON is shown as such."""
    if not isinstance(decision_json, str) or not decision_json:
        return ""
    try:
        decision = json.loads(decision_json)
    except ValueError:
        return "(unparseable)"
    actions = decision.get("actions") if isinstance(decision, dict) else decision
    if not isinstance(actions, list):
        return str(decision.get("action", "")) if isinstance(decision, dict) else ""
    parts = []
    for action in actions:
        if isinstance(action, dict):
            kind = action.get("action") or action.get("type") or "?"
            parts.append(f"{kind} {action.get('symbol') or ''}".strip())
    return ", ".join(parts) or "hold"


def outcome_summary(execution_result: object) -> str:
    """What a decision's actions came to, in one line (``BUY placed, BUY refused: max_spread``).

    The loop records a JSON object with one outcome per action; any other text is shown as it
    is, cut short, so a foreign row still reads as something.
    """
    if not isinstance(execution_result, str) or not execution_result:
        return ""
    try:
        result = json.loads(execution_result)
    except ValueError:
        return execution_result[:120]
    outcomes = outcomes_of(result) if isinstance(result, dict) else None
    if not isinstance(outcomes, list):
        return execution_result[:120]
    parts = []
    for outcome in outcomes:
        if isinstance(outcome, dict):
            kind, status = str(outcome.get("action") or ""), str(outcome.get("status", "?"))
            why = outcome.get("rule") or ""
            words = [kind, status] if status.lower() != kind.lower() else [kind or status]
            parts.append(" ".join(filter(None, words)) + (f": {why}" if why else ""))
    return ", ".join(parts) or "nothing to do"


def trace_filters(db: OrmSession, session_id: int) -> dict[str, list[str]]:
    rows = db.execute(
        select(LLMTrace.engine, LLMTrace.status).where(LLMTrace.session_id == session_id).distinct()
    ).all()
    return {
        "engines": sorted({r.engine for r in rows}),
        "statuses": sorted({r.status for r in rows}),
    }


def trace_detail(db: OrmSession, trace_id: int) -> dict | None:
    """One trace with everything it caused: fills, plans and journaled orders."""
    trace = db.get(LLMTrace, trace_id)
    if trace is None:
        return None
    detail = {c.key: getattr(trace, c.key) for c in LLMTrace.__table__.columns}
    detail |= trace_texts(db, detail)
    detail["decision_json"] = decision_text(trace.decision_json)
    detail["shadow_decision"] = decision_text(trace.shadow_decision)
    detail["execution_result"] = execution_result(db, trace.session_id, trace.created_at,
                                                  trace.execution_result)
    detail["tool_calls"] = trace.tool_calls or []  # none called: NULL since, [] before
    detail["trades"] = pd.DataFrame(
        db.execute(
            select(*(getattr(Trade, c) for c in TRADE_COLUMNS))
            .where(Trade.trace_id == trace_id)
            .order_by(Trade.timestamp)
        ).all(),
        columns=TRADE_COLUMNS,
    )
    detail["plans"] = pd.DataFrame(
        db.execute(
            select(*(getattr(TradePlan, c) for c in PLAN_COLUMNS))
            .where(TradePlan.trace_id == trace_id)
            .order_by(TradePlan.id)
        ).all(),
        columns=PLAN_COLUMNS,
    )
    order_columns = ["client_order_id", "order_id", "symbol", "side", "type", "amount", "price",
                     "purpose", "status", "error"]
    detail["orders"] = pd.DataFrame(
        db.execute(
            select(*(getattr(Order, c) for c in order_columns))
            .where(Order.trace_id == trace_id)
            .order_by(Order.id)
        ).all(),
        columns=order_columns,
    )
    return detail
