"""SQLAlchemy 2 declarative models of the domain in ``shared/seed/domain_model.md``.

The seed's ten tables keep the seed's field names; the additions are the ones the loop and
the console need to be safe (links from trades and plans to the trace that caused them, the
order journal that makes retries idempotent, plan version history, the heartbeat row) and the
paper venue's own account so that a restart continues the same paper account.

Every timestamp is timezone-aware UTC (``UtcDateTime``): SQLite stores naive text, so the
type re-attaches UTC on the way out instead of trusting every caller to remember.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A DateTime that refuses naive values and always returns aware UTC values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: every timestamp must be aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    # None is SQL NULL rather than the JSON text 'null': it needs no bytes, and reads the same
    type_annotation_map = {datetime: UtcDateTime(), dict: JSON(none_as_null=True),
                           list: JSON(none_as_null=True)}


class Bot(Base):
    """One named bot: the owner of its sessions and the addressee of its commands.

    Several bots (one per account, strategy or machine) share one database; the row is
    registered or resumed by ``python -m bot run --name NAME`` and ``last_seen_at`` follows
    its heartbeat, so a console elsewhere can tell a silent bot from a stopped one.
    """

    __tablename__ = "bots"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    mode: Mapped[str] = mapped_column(String(8), default="PAPER")
    venue: Mapped[str] = mapped_column(String(64), default="paper")
    symbols: Mapped[str] = mapped_column(Text, default="")
    engine: Mapped[str] = mapped_column(String(32), default="rules")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    # a replay registers under its run name to take its commands; the fleet is the live ones
    kind: Mapped[str] = mapped_column(String(16), default="live", server_default="live")


class Session(Base):
    """One trading day (in the configured timezone) of one run: live or replay."""

    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("kind", "run_name", "date", name="uq_sessions_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16), default="live")  # live | replay
    run_name: Mapped[str] = mapped_column(String(120), default="live")
    # the bot a live session belongs to (run_name is its name); replays belong to none
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id"), index=True)
    mode: Mapped[str] = mapped_column(String(8), default="PAPER")  # PAPER | LIVE
    venue: Mapped[str] = mapped_column(String(64), default="paper")
    # the market its prices came from (``Venue.market``): synthetic | live | replay:PATHS on
    # the paper venue, ``venue`` on an exchange; NULL: written before it was recorded
    feed: Mapped[str | None] = mapped_column(Text)
    # the run's effective settings, secrets left out, as canonical JSON, and their hash
    # (``bot.run_settings``); NULL: written before they were recorded
    settings: Mapped[str | None] = mapped_column(Text)
    settings_hash: Mapped[str | None] = mapped_column(String(16))
    starting_balance: Mapped[float] = mapped_column(Float, default=0.0)
    net_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    total_fees: Mapped[float] = mapped_column(Float, default=0.0)
    total_llm_cost: Mapped[float] = mapped_column(Float, default=0.0)
    total_trades: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    stats: Mapped[SessionStatsCache | None] = relationship(back_populates="session")


class Trade(Base):
    """One venue fill. No row exists without a fill; partial fills are separate rows."""

    __tablename__ = "trades"
    __table_args__ = (
        UniqueConstraint("venue", "trade_id", name="uq_trades_venue_trade_id"),
        Index("ix_trades_session_symbol_ts", "session_id", "symbol", "timestamp"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    timestamp: Mapped[datetime]
    symbol: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(4))  # BUY | SELL
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float, default=0.0)  # in quote currency
    liquidity: Mapped[str | None] = mapped_column(String(8))  # maker | taker
    realized_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str | None] = mapped_column(Text)
    venue: Mapped[str] = mapped_column(String(64), default="paper")
    trade_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str | None] = mapped_column(String(128))
    client_order_id: Mapped[str | None] = mapped_column(String(128), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("trade_plans.id"), index=True)
    trace_id: Mapped[int | None] = mapped_column(ForeignKey("llm_traces.id"), index=True)


class TradePlan(Base):
    """The current version of a plan; every version is kept in ``trade_plan_versions``."""

    __tablename__ = "trade_plans"
    __table_args__ = (Index("ix_trade_plans_status_symbol", "status", "symbol"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))  # BUY (long) | SELL (short)
    entry_price: Mapped[float] = mapped_column(Float)
    stop_price: Mapped[float] = mapped_column(Float)
    target_price: Mapped[float] = mapped_column(Float)
    size: Mapped[float] = mapped_column(Float)
    filled_size: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default="open")  # pending|open|closed
    reason: Mapped[str | None] = mapped_column(Text)
    exit_reason: Mapped[str | None] = mapped_column(Text)
    entry_order_id: Mapped[str | None] = mapped_column(String(128))
    entry_client_order_id: Mapped[str | None] = mapped_column(String(128), index=True)
    exit_client_order_id: Mapped[str | None] = mapped_column(String(128))
    trail_armed: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    trace_id: Mapped[int | None] = mapped_column(ForeignKey("llm_traces.id"))
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    versions: Mapped[list[TradePlanVersion]] = relationship(
        back_populates="plan", order_by="TradePlanVersion.version"
    )


class TradePlanVersion(Base):
    """An immutable snapshot of a plan as it was at one version."""

    __tablename__ = "trade_plan_versions"
    __table_args__ = (UniqueConstraint("plan_id", "version", name="uq_plan_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("trade_plans.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    entry_price: Mapped[float] = mapped_column(Float)
    stop_price: Mapped[float] = mapped_column(Float)
    target_price: Mapped[float] = mapped_column(Float)
    size: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    change: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    # the decision that wrote this version (None: the plan step, a fill, a command): its
    # trace is kept by retention, so the history says why a stop moved
    trace_id: Mapped[int | None] = mapped_column(ForeignKey("llm_traces.id"), index=True)

    plan: Mapped[TradePlan] = relationship(back_populates="versions")


class Position(Base):
    """Snapshot of one holding, rebuilt from our fills at every resync."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("session_id", "symbol", name="uq_positions_symbol"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[float] = mapped_column(Float)
    avg_price: Mapped[float] = mapped_column(Float)
    exchange_timestamp: Mapped[datetime | None]


class OpenOrder(Base):
    """Snapshot of our open orders on the venue (filtered by the client order prefix)."""

    __tablename__ = "open_orders"
    __table_args__ = (UniqueConstraint("session_id", "order_id", name="uq_open_orders_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    order_id: Mapped[str] = mapped_column(String(128))
    client_order_id: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(16), default="limit")
    price: Mapped[float | None] = mapped_column(Float)
    amount: Mapped[float] = mapped_column(Float)
    remaining: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    exchange_timestamp: Mapped[datetime | None]


class Order(Base):
    """Journal of every order we decided to send, keyed by its client order id.

    Written before the venue call so that a crash between "sent" and "recorded" is retried
    with the same client order id (the venue then says "already placed") and so that a fill
    can always be attributed to its reason, plan and trace.
    """

    __tablename__ = "orders"
    # the live ones (new, open) are few: found by status, not by reading every order
    __table_args__ = (Index("ix_orders_status_session", "status", "session_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    client_order_id: Mapped[str] = mapped_column(String(128), unique=True)
    order_id: Mapped[str | None] = mapped_column(String(128), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(16))
    amount: Mapped[float] = mapped_column(Float)
    price: Mapped[float | None] = mapped_column(Float)
    purpose: Mapped[str] = mapped_column(String(16))  # entry | exit | close
    status: Mapped[str] = mapped_column(String(16), default="new")  # new|open|closed|canceled|rejected
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("trade_plans.id"), index=True)
    trace_id: Mapped[int | None] = mapped_column(ForeignKey("llm_traces.id"))
    # a paper stop exit: the open (ms) of the first candle of the span that showed the hit,
    # which the venue judges it over (``HIT_SEEN_SINCE``), at its send and at a resend
    seen_since_ms: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MarketData(Base):
    __tablename__ = "market_data"
    __table_args__ = (Index("ix_market_data_session_symbol_ts", "session_id", "symbol", "timestamp"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    symbol: Mapped[str] = mapped_column(String(32))
    timestamp: Mapped[datetime]
    price: Mapped[float] = mapped_column(Float)
    bid: Mapped[float | None] = mapped_column(Float)
    ask: Mapped[float | None] = mapped_column(Float)
    volume: Mapped[float | None] = mapped_column(Float)
    spread_pct: Mapped[float | None] = mapped_column(Float)
    bid_size: Mapped[float | None] = mapped_column(Float)
    ask_size: Mapped[float | None] = mapped_column(Float)
    ob_imbalance: Mapped[float | None] = mapped_column(Float)


class OHLCV(Base):
    """A candle, keyed by what makes it unique. On SQLite the table is its key's b-tree
    (``WITHOUT ROWID``): no row id, and no separate unique index repeating the key."""

    __tablename__ = "ohlcv"
    __table_args__ = {"sqlite_with_rowid": False}

    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(primary_key=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)


class Command(Base):
    """Console → bot control message. Status: pending → running → done | failed."""

    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    bot_id: Mapped[int | None] = mapped_column(ForeignKey("bots.id"), index=True)  # addressee
    command: Mapped[str] = mapped_column(String(32))
    argument: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    executed_at: Mapped[datetime | None]


class LLMTrace(Base):
    """Everything one decision saw, said and caused; self-contained for audit."""

    __tablename__ = "llm_traces"
    __table_args__ = (Index("ix_llm_traces_session_created", "session_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    engine: Mapped[str] = mapped_column(String(32), default="rules")
    model: Mapped[str | None] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text, default="")
    tool_calls: Mapped[list | None]
    raw_response: Mapped[str | None] = mapped_column(Text)  # the answer decided on
    # Every answer of an LLM asked more than once or not: [{"raw_response", "errors"}, ...]
    answers: Mapped[list | None]
    # compact: ``Decision.stored_json``; ``db.traces.decision_text`` reads it whole
    decision_json: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[list | None]
    # each action's outcome; the account's figures are its equity step's
    # (``db.traces.execution_result`` reads them together; rows written before hold them)
    execution_result: Mapped[str | None] = mapped_column(Text)
    # The prompt and the answer decided on as ``trace_blobs`` keys (``db.traces``); a row
    # that has one keeps its ``prompt`` / ``raw_response`` empty. ``system_hash``: the
    # prompt's system part, the same at every decision, stored apart; ``prompt_hash`` then
    # names the rest (the prompt is the two joined by a blank line).
    prompt_hash: Mapped[str | None] = mapped_column(String(64))
    system_hash: Mapped[str | None] = mapped_column(String(64))
    response_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="ok")  # ok|rejected|error|abandoned
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    # the prompt cache's writes and reads among ``tokens_in``: priced at their own rates, so
    # the cost can be read back from the counts
    cache_write_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    cache_read_tokens: Mapped[int] = mapped_column(Integer, server_default="0")
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    # reproducibility: who answered as which version, how, and the first request's hash
    provider: Mapped[str | None] = mapped_column(String(32))
    model_version: Mapped[str | None] = mapped_column(String(128))
    temperature: Mapped[float | None] = mapped_column(Float)
    prompt_version: Mapped[str | None] = mapped_column(String(32))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    price_source: Mapped[str | None] = mapped_column(String(64))  # "local": costs nothing
    # the rules engine's decision on the same context as an LLM's, recorded, never executed
    shadow_decision: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class EquityStep(Base):
    """The account after one decided step, in a narrow row: a run's equity curve and
    summary read these, never the traces, and its trace's ``execution_result`` leaves these
    figures to it."""

    __tablename__ = "equity_steps"
    __table_args__ = (Index("ix_equity_steps_session_created", "session_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    created_at: Mapped[datetime]
    equity: Mapped[float] = mapped_column(Float)
    exposure: Mapped[float] = mapped_column(Float)
    prices: Mapped[str] = mapped_column(Text)  # JSON {symbol: last price}


class DecisionScoreDay(Base):
    """A day's rolled-up decisions of a session (``db.decision_scores``), their figures that
    add up (``bot.model.scorecard.Tally``): how many, their LLM cost and tokens, how many an
    LLM's shadow also called and their cost, and per horizon those still pending. A day
    rolled up in two goes has two rows; the scorecard of a span sums them."""

    __tablename__ = "decision_score_days"
    __table_args__ = (Index("ix_decision_score_days_session_day", "session_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    day: Mapped[date] = mapped_column(Date)  # the decisions' UTC day
    decisions: Mapped[int] = mapped_column(Integer)
    cost: Mapped[float] = mapped_column(Float)
    tokens: Mapped[int] = mapped_column(Integer)
    shadowed: Mapped[int] = mapped_column(Integer)
    shadowed_cost: Mapped[float] = mapped_column(Float)
    pending_1h: Mapped[int] = mapped_column(Integer)
    pending_4h: Mapped[int] = mapped_column(Integer)
    pending_24h: Mapped[int] = mapped_column(Integer)


class DecisionScoreGroup(Base):
    """One group of a day's rolled-up calls over one horizon (``bot.model.scorecard.Group``):
    ``side`` "call" (by action and confidence bucket), "llm" or "shadow" (the LLM's calls and
    its shadow's on the decisions that have both; action and confidence empty)."""

    __tablename__ = "decision_score_groups"
    __table_args__ = (Index("ix_decision_score_groups_session_day", "session_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    day: Mapped[date] = mapped_column(Date)
    side: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[str] = mapped_column(String(16))
    horizon: Mapped[str] = mapped_column(String(8))
    count: Mapped[int] = mapped_column(Integer)
    scored: Mapped[int] = mapped_column(Integer)
    hits: Mapped[int] = mapped_column(Integer)
    directional: Mapped[int] = mapped_column(Integer)
    forward_sum: Mapped[float] = mapped_column(Float)
    forward_pnl: Mapped[float] = mapped_column(Float)


class DecisionScoreTip(Base):
    """How far a run's decisions are rolled up: every trace of the run (abandoned ones aside)
    created before ``through`` is counted in its session's ``decision_score_days`` and
    ``decision_score_groups``; those after are scored from their traces when read."""

    __tablename__ = "decision_score_tips"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    run_name: Mapped[str] = mapped_column(String(120), primary_key=True)
    through: Mapped[datetime]


class TraceBlob(Base):
    """A prompt or an LLM answer, stored once however many traces repeat it: keyed by the
    SHA-256 of its text, held zlib-compressed."""

    __tablename__ = "trace_blobs"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)  # characters of the text


class PerformanceRollup(Base):
    """A closed session's equity steps and closed round trips, digested, and its fills' totals
    (``bot.model.step_digest``, ``bot.model.trip_tally``): the Performance page composes a
    run's figures from these and the open day's rows. Written when the session closes, in
    session order (a session's trips need the open trips the one before left)."""

    __tablename__ = "performance_rollups"

    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    steps: Mapped[str | None] = mapped_column(Text)  # a StepDigest as JSON; None: no step
    trips: Mapped[str] = mapped_column(Text)  # per-symbol TripTally and the open trips, JSON
    llm_cost: Mapped[float] = mapped_column(Float)  # of its traces, and their first and last
    llm_first: Mapped[datetime | None]
    llm_last: Mapped[datetime | None]
    # Its fills' totals, as the Trades page sums them (``db.fill_totals``); None: not yet
    # written (read from its rows).
    fill_count: Mapped[int | None]
    fill_notional: Mapped[float | None] = mapped_column(Float)
    fill_fees: Mapped[float | None] = mapped_column(Float)
    fill_realized: Mapped[float | None] = mapped_column(Float)
    fill_wins: Mapped[int | None]
    fill_losses: Mapped[int | None]
    fill_first: Mapped[datetime | None]
    fill_last: Mapped[datetime | None]
    fill_symbols: Mapped[str | None] = mapped_column(Text)  # its distinct symbols, JSON list


class TripResult(Base):
    """The net PnL (after fees) of the round trips a closed session's fills closed, summed
    per decision (trace) that opened them, with the decision's time: the scorecard's realized
    PnL of a span's decisions sums these rows rather than folding every fill of the run
    (``db.trip_results``). Written with the session's performance rollup."""

    __tablename__ = "trip_results"

    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    open_trace_id: Mapped[int] = mapped_column(ForeignKey("llm_traces.id"), primary_key=True)
    decided_at: Mapped[datetime]  # the opening trace's created_at
    net: Mapped[float] = mapped_column(Float)


class SessionStatsCache(Base):
    """The session's aggregates for a fast restart; always equal to a rebuild from rows."""

    __tablename__ = "session_stats_cache"

    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), primary_key=True)
    total_trades: Mapped[int] = mapped_column(Integer, default=0)
    total_fees: Mapped[float] = mapped_column(Float, default=0.0)
    gross_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    total_llm_cost: Mapped[float] = mapped_column(Float, default=0.0)
    start_of_day_equity: Mapped[float] = mapped_column(Float, default=0.0)
    wins: Mapped[int] = mapped_column(Integer, default=0)
    losses: Mapped[int] = mapped_column(Integer, default=0)
    last_trade_row_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[Session] = relationship(back_populates="stats")


class BotStatus(Base):
    """The heartbeat: one row per bot process identity, rewritten every loop."""

    __tablename__ = "bot_status"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, default="default")
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="stopped")
    mode: Mapped[str] = mapped_column(String(8), default="PAPER")
    venue: Mapped[str] = mapped_column(String(64), default="paper")
    engine: Mapped[str] = mapped_column(String(32), default="rules")
    symbols: Mapped[str] = mapped_column(Text, default="")
    # the market the bot's prices come from, as on ``Session.feed``; NULL: not yet known
    feed: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    last_loop_at: Mapped[datetime | None]
    loop_interval_seconds: Mapped[float] = mapped_column(Float, default=10.0)
    loop_count: Mapped[int] = mapped_column(BigInteger, default=0)
    step_durations: Mapped[dict | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # notifications this process could not deliver (``bot.alerts.delivery``); NULL: none
    # were configured or the bot predates them
    notify_failures: Mapped[int | None] = mapped_column(Integer)


class PaperBalance(Base):
    """The paper venue's account: one row per (account, currency)."""

    __tablename__ = "paper_balances"
    __table_args__ = (UniqueConstraint("account", "currency", name="uq_paper_balance"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(16))
    total: Mapped[float] = mapped_column(Float, default=0.0)
    used: Mapped[float] = mapped_column(Float, default=0.0)


class PaperOrder(Base):
    __tablename__ = "paper_orders"
    __table_args__ = (
        UniqueConstraint("account", "client_order_id", name="uq_paper_client_order"),
        Index("ix_paper_orders_account_status", "account", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    client_order_id: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))  # buy | sell (ccxt case)
    type: Mapped[str] = mapped_column(String(16))  # market | limit | stop
    price: Mapped[float | None] = mapped_column(Float)
    stop_price: Mapped[float | None] = mapped_column(Float)
    amount: Mapped[float] = mapped_column(Float)
    filled: Mapped[float] = mapped_column(Float, default=0.0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    fee: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16))  # open | closed | canceled | rejected
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class PaperFill(Base):
    __tablename__ = "paper_fills"
    __table_args__ = (Index("ix_paper_fills_account_ts", "account", "timestamp_ms"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(ForeignKey("paper_orders.id"))
    client_order_id: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    price: Mapped[float] = mapped_column(Float)
    amount: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float)
    fee_currency: Mapped[str] = mapped_column(String(16))
    taker_or_maker: Mapped[str] = mapped_column(String(8))
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)


class PaperClock(Base):
    """Where the paper venue's feed stands, so a restart resumes the same market."""

    __tablename__ = "paper_clock"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    now_ms: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    feed: Mapped[str] = mapped_column(Text, default="")
    # a replay run that reached the end of its candles (or --end): it is not run again
    finished_at: Mapped[datetime | None]
    # its summary (``db.queries_replays.run_summary``) as JSON, recorded as it finished
    summary: Mapped[str | None] = mapped_column(Text)
