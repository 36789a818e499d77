"""Read-only queries behind the console's Overview, Commands and sidebar.

The console must never slow the bot down, so every query here is bounded (LIMIT, indexed
filters, aggregates done in SQL) and returns plain dicts or DataFrames that a page can
render without touching the ORM again. Chart and trading views live in ``queries_chart``
and ``queries_trading`` to keep each module small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session as OrmSession

from db.bots import session_scope
from db.decision_scores import session_decisions
from db.models import Bot, Command, LLMTrace, MarketData, Position, Session, Trade
from db.performance_rollups import session_trips
from db.queries_replays import last_step
from db.queries_trading import action_summary, outcome_summary
from db.stats import figures_from_rows


@dataclass(frozen=True)
class SessionInfo:
    """The session a page shows, plus the ids of its run (plans and candles span days)."""

    id: int
    date: str
    kind: str
    run_name: str
    mode: str
    venue: str
    feed: str | None  # the market its bot wrote (``Session.feed``); None: unknown
    starting_balance: float
    run_session_ids: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"{self.date} · {self.kind}/{self.run_name} · {self.mode} #{self.id}"


def list_sessions(db: OrmSession, bot: str | None = None, limit: int = 60) -> list[dict]:
    """Newest first (the bot's live days before replays), for the sidebar's session picker."""
    query = select(Session.id, Session.date, Session.kind, Session.run_name, Session.mode)
    if bot is not None:
        query = query.where(session_scope(bot))
    rows = db.execute(
        query.order_by((Session.kind == "live").desc(), Session.date.desc(), Session.id.desc())
        .limit(limit)
    ).all()
    return [
        {"id": r.id, "label": f"{r.date} · {r.kind}/{r.run_name} · {r.mode} #{r.id}"} for r in rows
    ]


def session_info(
    db: OrmSession, session_id: int | None = None, bot: str | None = None
) -> SessionInfo | None:
    """The chosen session, or the bot's newest live one (a replay only when it has none)."""
    if session_id is not None:
        row = db.get(Session, session_id)
    else:
        query = select(Session)
        if bot is not None:
            query = query.where(session_scope(bot))
        row = db.scalars(
            query.order_by((Session.kind == "live").desc(), Session.date.desc(),
                           Session.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    run_ids = tuple(
        db.scalars(
            select(Session.id).where(Session.kind == row.kind, Session.run_name == row.run_name)
        )
    )
    return SessionInfo(
        id=row.id, date=row.date.isoformat(), kind=row.kind, run_name=row.run_name,
        mode=row.mode, venue=row.venue, feed=row.feed, starting_balance=row.starting_balance,
        run_session_ids=run_ids,
    )


def latest_prices(db: OrmSession, session_id: int, symbols: list[str]) -> dict[str, float]:
    """One indexed lookup per symbol (session_id, symbol, timestamp DESC LIMIT 1)."""
    prices: dict[str, float] = {}
    for symbol in symbols:
        price = db.scalar(
            select(MarketData.price)
            .where(MarketData.session_id == session_id, MarketData.symbol == symbol)
            .order_by(MarketData.timestamp.desc())
            .limit(1)
        )
        if price is not None:
            prices[symbol] = float(price)
    return prices


def overview_figures(db: OrmSession, info: SessionInfo) -> dict[str, Any]:
    """Session totals from the rows themselves (not the cache), so the page cannot drift.

    Equity is the account as the loop recorded it at its newest step, the same figure as the
    equity curve's last point and a replay's final equity (the session's starting equity
    until a step is recorded): the unrealized PnL counts since each entry, not since the
    day began, so it cannot be added to a start that already values holdings at the market.
    The win rate is of the round trips the session closed, after fees, as Performance's
    (None before one closes). The decisions are counted as the scorecard counts them, so a
    day retention thinned keeps its count.
    """
    figures = figures_from_rows(db, info.id)
    unrealized = sum(row["unrealized_pnl"] for row in open_exposure(db, info.id))
    gross, fees, llm_cost = figures.gross_pnl, figures.total_fees, figures.total_llm_cost
    trips = session_trips(db, info.run_session_ids, info.id)
    return {
        "trades": figures.total_trades,
        "fees": fees,
        "gross_pnl": gross,
        "llm_cost": llm_cost,
        "decisions": session_decisions(db, info.id, info.kind, info.run_name),
        "net_pnl": gross - fees - llm_cost,
        "unrealized_pnl": unrealized,
        "equity": float(last_step(db, [info.id]).get("equity", info.starting_balance)),
        "win_rate": (trips.wins / trips.count) if trips.count else None,
        "round_trips": trips.count,
        "wins": trips.wins,
        "losses": trips.losses,
    }


def open_exposure(db: OrmSession, session_id: int) -> list[dict]:
    """Positions valued at the latest market price (avg price when no tick is stored yet)."""
    positions = db.execute(
        select(Position.symbol, Position.quantity, Position.avg_price, Position.exchange_timestamp)
        .where(Position.session_id == session_id, Position.quantity != 0)
        .order_by(Position.symbol)
    ).all()
    prices = latest_prices(db, session_id, [p.symbol for p in positions])
    rows = []
    for p in positions:
        mark = prices.get(p.symbol, p.avg_price)
        rows.append(
            {
                "symbol": p.symbol,
                "quantity": p.quantity,
                "avg_price": p.avg_price,
                "mark_price": mark,
                "value": abs(p.quantity) * mark,
                "unrealized_pnl": (mark - p.avg_price) * p.quantity,
                "updated": p.exchange_timestamp,
            }
        )
    return rows


def pnl_vs_cost(db: OrmSession, session_id: int) -> pd.DataFrame:
    """Cumulative net trading PnL and cumulative LLM cost as one time series.

    Running sums are window functions in SQL so only the series comes back, not a rebuild.
    """
    trades = db.execute(
        select(
            Trade.timestamp.label("time"),
            func.sum(Trade.realized_pnl - Trade.fee)
            .over(order_by=(Trade.timestamp, Trade.id))
            .label("cum_pnl"),
        ).where(Trade.session_id == session_id)
    ).all()
    costs = db.execute(
        select(
            LLMTrace.created_at.label("time"),
            func.sum(LLMTrace.cost).over(order_by=(LLMTrace.created_at, LLMTrace.id)).label(
                "cum_llm_cost"
            ),
        ).where(LLMTrace.session_id == session_id)
    ).all()
    pnl = pd.DataFrame(trades, columns=["time", "cum_pnl"])
    cost = pd.DataFrame(costs, columns=["time", "cum_llm_cost"])
    if pnl.empty and cost.empty:
        return pd.DataFrame(columns=["time", "cum_pnl", "cum_llm_cost", "net_after_llm"])
    merged = pd.concat([pnl, cost]).sort_values("time", kind="stable")
    merged[["cum_pnl", "cum_llm_cost"]] = merged[["cum_pnl", "cum_llm_cost"]].ffill().fillna(0.0)
    merged["net_after_llm"] = merged["cum_pnl"] - merged["cum_llm_cost"]
    return merged.reset_index(drop=True)


def recent_decisions(db: OrmSession, session_id: int, limit: int = 10) -> pd.DataFrame:
    """The last decisions with what they asked for and what came of it, one line each."""
    rows = db.execute(
        select(
            LLMTrace.id, LLMTrace.created_at, LLMTrace.engine, LLMTrace.model, LLMTrace.status,
            LLMTrace.decision_json, LLMTrace.execution_result, LLMTrace.cost, LLMTrace.latency_ms,
        )
        .where(LLMTrace.session_id == session_id)
        .order_by(LLMTrace.created_at.desc(), LLMTrace.id.desc())
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [(r.id, r.created_at, r.engine, r.model, r.status, action_summary(r.decision_json),
          outcome_summary(r.execution_result), r.cost, r.latency_ms) for r in rows],
        columns=["id", "time", "engine", "model", "status", "actions", "outcome", "cost",
                 "latency_ms"],
    )


COMMAND_COLUMNS = ["id", "bot", "command", "argument", "status", "result", "created_at",
                   "executed_at", "duration_s"]


def _commands():
    """Commands with their addressee's name (a command row only holds the bot's id)."""
    return select(Command, Bot.name).outerjoin(Bot, Bot.id == Command.bot_id)


def command_status(db: OrmSession, command_ids: list[int]) -> list[dict]:
    """Progress of the commands this operator queued (newest first)."""
    if not command_ids:
        return []
    rows = db.execute(
        _commands().where(Command.id.in_(command_ids)).order_by(Command.id.desc())
    ).all()
    return [_command_dict(command, bot) for command, bot in rows]


def command_history(
    db: OrmSession, *, status: str | None = None, bot: str | None = None, limit: int = 200
) -> pd.DataFrame:
    """Newest first across all bots (or one), served by the (status, id) index."""
    query = _commands().order_by(Command.id.desc()).limit(limit)
    if status:
        query = query.where(Command.status == status)
    if bot:
        query = query.where(Bot.name == bot)
    rows = [_command_dict(command, name) for command, name in db.execute(query)]
    return pd.DataFrame(rows, columns=COMMAND_COLUMNS)


def _command_dict(row: Command, bot: str | None) -> dict:
    duration = (
        (row.executed_at - row.created_at).total_seconds()
        if row.executed_at and row.created_at
        else None
    )
    return {
        "id": row.id, "bot": bot, "command": row.command, "argument": row.argument,
        "status": row.status, "result": row.result, "created_at": row.created_at,
        "executed_at": row.executed_at, "duration_s": duration,
    }

