"""Write a realistic console database: what a few hours of a paper run leaves behind.

The console tests need every table filled the way the bot fills it (plans with versions,
fills linked to plans and traces, positions that match the fills, a heartbeat) so that each
page has something real to render. Values are deterministic for a given ``now``.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from db.bots import DEFAULT_BOT, register_bot, require_bot_id
from db.engine import make_engine, session_factory
from db.models import (
    OHLCV,
    Bot,
    BotStatus,
    Command,
    LLMTrace,
    MarketData,
    OpenOrder,
    Order,
    Position,
    Session,
    SessionStatsCache,
    Trade,
    TradePlan,
    TradePlanVersion,
)
from db.stats import rebuild_stats

HOSTILE_TEXT = "<script>alert('x')</script> **bold** [link](javascript:alert(1))"
CANDLES = 600
FIVE_MIN = timedelta(minutes=5)
# candle index of each decision (1, 5 and 7 are moved next to the plans they open)
TRACE_CANDLES = (40, 149, 200, 260, 330, 479, 500, 519, 540, 560, 580, 595)


@dataclass
class Seeded:
    """Ids and figures the tests assert on."""

    session_id: int
    now: datetime
    symbols: list[str]
    plan_ids: list[int] = field(default_factory=list)
    trace_ids: list[int] = field(default_factory=list)
    trade_count: int = 0
    open_order_ids: list[str] = field(default_factory=list)
    close_price: dict[str, float] = field(default_factory=dict)


def _walk(rng: random.Random, start: float, n: int, vol: float) -> list[tuple[float, ...]]:
    """OHLCV rows from a drifting random walk with a slow wave, so charts look like markets."""
    rows = []
    price = start
    for i in range(n):
        drift = math.sin(i / 45) * vol * 0.4
        open_ = price
        close = max(1.0, open_ * (1 + drift + rng.gauss(0, vol)))
        high = max(open_, close) * (1 + abs(rng.gauss(0, vol / 2)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, vol / 2)))
        volume = abs(rng.gauss(12, 4)) * (1 + abs(close - open_) / open_ * 200)
        rows.append((open_, high, low, close, volume))
        price = close
    return rows


def seed_console_db(url: str, now: datetime | None = None, seed: int = 11) -> Seeded:
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    now = now - timedelta(minutes=now.minute % 5)
    rng = random.Random(seed)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as db:
            seeded = _seed(db, now, rng)
            db.commit()
            return seeded
    finally:
        engine.dispose()


def _seed(db, now: datetime, rng: random.Random) -> Seeded:
    bot_id = register_bot(db, DEFAULT_BOT, now).id
    session = Session(date=now.date(), kind="live", run_name=DEFAULT_BOT, bot_id=bot_id,
                      mode="PAPER", venue="paper", starting_balance=10_000.0,
                      created_at=now - CANDLES * FIVE_MIN)
    db.add(session)
    db.flush()
    db.add(SessionStatsCache(session_id=session.id, start_of_day_equity=10_000.0, updated_at=now))
    seeded = Seeded(session_id=session.id, now=now, symbols=["BTC/USDT", "ETH/USDT"])
    times = [now - (CANDLES - 1 - i) * FIVE_MIN for i in range(CANDLES)]
    series = {
        "BTC/USDT": _walk(rng, 64_000.0, CANDLES, 0.0018),
        "ETH/USDT": _walk(rng, 3_100.0, CANDLES, 0.0024),
    }
    for symbol, rows in series.items():
        db.add_all(
            OHLCV(session_id=session.id, symbol=symbol, timeframe="5m", timestamp=t, open=o,
                  high=h, low=low, close=c, volume=v)
            for t, (o, h, low, c, v) in zip(times, rows, strict=True)
        )
        for hour in range(0, CANDLES, 12):  # 1h candles folded from the 5m ones
            chunk = rows[hour : hour + 12]
            db.add(OHLCV(session_id=session.id, symbol=symbol, timeframe="1h",
                         timestamp=times[hour], open=chunk[0][0],
                         high=max(r[1] for r in chunk), low=min(r[2] for r in chunk),
                         close=chunk[-1][3], volume=sum(r[4] for r in chunk)))
        for k in range(60):
            price = rows[-1][3] * (1 + rng.gauss(0, 0.0004))
            spread = price * 0.0002
            db.add(MarketData(session_id=session.id, symbol=symbol,
                              timestamp=now - timedelta(seconds=10 * (59 - k)), price=price,
                              bid=price - spread / 2, ask=price + spread / 2,
                              volume=rng.uniform(500, 900), spread_pct=0.02,
                              bid_size=rng.uniform(1, 5), ask_size=rng.uniform(1, 5),
                              ob_imbalance=rng.uniform(-0.3, 0.3)))
        seeded.close_price[symbol] = rows[-1][3]
    db.flush()
    last_price = {
        s: db.query(MarketData.price).filter_by(session_id=session.id, symbol=s)
        .order_by(MarketData.timestamp.desc()).first()[0]
        for s in series
    }
    seeded.close_price = last_price

    btc = series["BTC/USDT"]
    eth = series["ETH/USDT"]
    # plans sit where a sane strategy would have put them: longs at lows, shorts at highs,
    # stops beyond every later extreme (an open plan whose stop was crossed would be closed)
    i_open = _arg(btc, 3, range(60, 300), min)
    i_exit = _arg(btc, 3, range(i_open + 20, min(i_open + 200, 420)), max)
    i_trail = (i_open + i_exit) // 2
    i2 = _arg(btc, 3, range(CANDLES - 150, CANDLES - 40), min)
    i3 = _arg(eth, 3, range(CANDLES - 150, CANDLES - 30), max)
    traces = _traces(db, session.id, now, rng, {1: i_open - 1, 5: i2 - 1, 7: i3 - 1})
    seeded.trace_ids = [t.id for t in traces]

    # plan 1: BTC long, trailed once, closed at target
    entry1, exit1 = btc[i_open][3], btc[i_exit][3]
    plan1 = _plan(db, session.id, "BTC/USDT", "BUY", entry1, _low(btc, i_open, i_exit) * 0.995,
                  exit1, 0.05, times[i_open], traces[1].id, "EMA cross up with rising volume")
    _version(db, plan1, 2, min(entry1 * 1.002, _low(btc, i_trail, i_exit) * 0.998),
             "trail: stop raised after +1%", times[i_trail])
    plan1.status, plan1.closed_at, plan1.exit_reason = "closed", times[i_exit], "target hit"
    _version(db, plan1, 3, plan1.stop_price, "closed: target hit", times[i_exit],
             status="closed")
    # plan 2: BTC long, open, stop raised once
    entry2 = btc[i2][3]
    stop2 = _low(btc, i2, CANDLES) * 0.99
    plan2 = _plan(db, session.id, "BTC/USDT", "BUY", entry2, stop2,
                  max(entry2 * 1.03, _high(btc, i2, CANDLES) * 1.01), 0.04, times[i2],
                  traces[5].id, "pullback to EMA 50 in an uptrend")
    _version(db, plan2, 2, max(stop2, min(entry2, _low(btc, i2 + 20, CANDLES)) * 0.998),
             "stop raised under the new higher low", times[i2 + 20])
    # plan 3: ETH short, open
    entry3 = eth[i3][3]
    plan3 = _plan(db, session.id, "ETH/USDT", "SELL", entry3, _high(eth, i3, CANDLES) * 1.01,
                  min(entry3 * 0.97, _low(eth, i3, CANDLES) * 0.99), 0.6, times[i3],
                  traces[7].id, "lower highs; RSI divergence")
    db.flush()
    seeded.plan_ids = [plan1.id, plan2.id, plan3.id]

    fills = [
        ("BUY", "BTC/USDT", 0.05, entry1, times[i_open] + timedelta(seconds=20), plan1, 0.0,
         "entry: EMA cross up with rising volume", traces[1]),
        ("SELL", "BTC/USDT", 0.05, exit1, times[i_exit] + timedelta(seconds=15), plan1,
         (exit1 - entry1) * 0.05, "exit: target hit", traces[1]),
        ("BUY", "BTC/USDT", 0.025, entry2, times[i2] + timedelta(seconds=30), plan2, 0.0,
         "entry: pullback to EMA 50", traces[5]),
        ("BUY", "BTC/USDT", 0.015, entry2 * 1.0004, times[i2 + 1] + timedelta(seconds=5), plan2,
         0.0, "entry: pullback to EMA 50 (partial)", traces[5]),
        ("SELL", "ETH/USDT", 0.6, entry3, times[i3] + timedelta(seconds=40), plan3, 0.0,
         "entry: lower highs; RSI divergence", traces[7]),
    ]
    for n, (side, symbol, qty, price, ts, plan, pnl, reason, trace) in enumerate(fills, 1):
        client_id = f"td-{plan.id}-{n}"
        db.add(Order(session_id=session.id, client_order_id=client_id, order_id=f"P{n:04d}",
                     symbol=symbol, side=side, type="market", amount=qty, price=None,
                     purpose="exit" if pnl else "entry", status="closed", attempts=1,
                     reason=reason, plan_id=plan.id, trace_id=trace.id, created_at=ts,
                     updated_at=ts))
        db.add(Trade(session_id=session.id, timestamp=ts, symbol=symbol, action=side,
                     quantity=qty, price=price, fee=qty * price * 0.001, liquidity="taker",
                     realized_pnl=pnl, reason=reason, venue="paper", trade_id=f"F{n:05d}",
                     order_id=f"P{n:04d}", client_order_id=client_id, plan_id=plan.id,
                     trace_id=trace.id))
    seeded.trade_count = len(fills)
    db.add(Position(session_id=session.id, symbol="BTC/USDT", quantity=0.04,
                    avg_price=(0.025 * entry2 + 0.015 * entry2 * 1.0004) / 0.04,
                    exchange_timestamp=now))
    db.add(Position(session_id=session.id, symbol="ETH/USDT", quantity=-0.6, avg_price=entry3,
                    exchange_timestamp=now))
    for oid, symbol, side, price, amount in (
        ("O-9001", "BTC/USDT", "SELL", plan2.target_price, 0.04),
        ("O-9002", "ETH/USDT", "BUY", plan3.target_price, 0.6),
    ):
        db.add(OpenOrder(session_id=session.id, order_id=oid, client_order_id=f"td-{oid}",
                         symbol=symbol, side=side, type="limit", price=price, amount=amount,
                         remaining=amount, status="open", exchange_timestamp=now))
        seeded.open_order_ids.append(oid)
    for k, (cmd, arg, status, result) in enumerate((
        ("pause", None, "done", "paused"),
        ("resume", None, "done", "resumed"),
        ("cancel", "O-0000", "failed", "unknown order O-0000"),
    )):
        created = now - timedelta(minutes=90 - 10 * k)
        db.add(Command(session_id=session.id, bot_id=bot_id, command=cmd, argument=arg,
                       status=status,
                       result=result, created_at=created,
                       executed_at=created + timedelta(seconds=3 + k)))
    db.add(BotStatus(name="default", pid=None, host="seed-host", state="running", mode="PAPER",
                     venue="paper", engine="rules", symbols="BTC/USDT,ETH/USDT",
                     started_at=now - CANDLES * FIVE_MIN, heartbeat_at=datetime.now(UTC),
                     last_loop_at=datetime.now(UTC), loop_interval_seconds=10.0,
                     loop_count=4321, step_durations={"market": 0.12, "decide": 0.4},
                     paused=False))
    db.flush()
    rebuild_stats(db, session.id, now)
    return seeded


def _arg(rows: list[tuple[float, ...]], column: int, span: range, pick) -> int:
    return pick(span, key=lambda i: rows[i][column])


def _low(rows: list[tuple[float, ...]], start: int, end: int) -> float:
    return min(r[2] for r in rows[start:end])


def _high(rows: list[tuple[float, ...]], start: int, end: int) -> float:
    return max(r[1] for r in rows[start:end])


def _plan(db, session_id: int, symbol: str, side: str, entry: float, stop: float,
          target: float, size: float, opened: datetime, trace_id: int, reason: str) -> TradePlan:
    plan = TradePlan(session_id=session_id, symbol=symbol, side=side, entry_price=entry,
                     stop_price=stop, target_price=target, size=size, filled_size=size,
                     status="open", reason=reason, version=1, trace_id=trace_id,
                     opened_at=opened)
    db.add(plan)
    db.flush()
    db.add(TradePlanVersion(plan_id=plan.id, version=1, entry_price=entry, stop_price=stop,
                            target_price=target, size=size, status="open", change="opened",
                            created_at=opened))
    return plan


def _version(db, plan: TradePlan, version: int, stop: float, change: str, when: datetime,
             status: str = "open") -> None:
    plan.stop_price, plan.version = stop, version
    db.add(TradePlanVersion(plan_id=plan.id, version=version, entry_price=plan.entry_price,
                            stop_price=stop, target_price=plan.target_price, size=plan.size,
                            status=status, change=change, created_at=when))


def _traces(
    db, session_id: int, now: datetime, rng: random.Random, at_candle: dict[int, int]
) -> list[LLMTrace]:
    """Twelve decisions; those in ``at_candle`` are placed one candle before their plan."""
    traces = []
    for k in range(12):
        status = "ok"
        errors = None
        decision: dict = {"actions": [{"action": "hold"}], "reasoning": "no edge"}
        if k in (1, 5, 7):
            symbol = "ETH/USDT" if k == 7 else "BTC/USDT"
            decision = {"actions": [{"action": "open_plan", "symbol": symbol,
                                     "side": "SELL" if k == 7 else "BUY"}],
                        "reasoning": "setup confirmed"}
        if k == 3:
            status, errors = "rejected", ["risk: max_order_value exceeded"]
        if k == 9:
            status, errors = "error", ["timeout after 60s"]
            decision = None
        raw = json.dumps(decision) if decision else HOSTILE_TEXT
        trace = LLMTrace(
            session_id=session_id, engine="gemini" if k % 2 else "rules",
            model="gemini-2.5-flash" if k % 2 else None,
            prompt=f"You are a trader. Market snapshot #{k}. {HOSTILE_TEXT}",
            tool_calls=[{"name": "get_candles", "args": {"symbol": "BTC/USDT", "tf": "5m"}}],
            raw_response=raw, decision_json=json.dumps(decision) if decision else None,
            errors=errors, execution_result=f"executed {k}: {status}", status=status,
            tokens_in=1200 + k, tokens_out=150 + k,
            cost=round(0.0012 + 0.0003 * k, 6) if k % 2 else 0.0,
            latency_ms=rng.uniform(200, 2500),
            created_at=now - (CANDLES - 1 - at_candle.get(k, TRACE_CANDLES[k])) * FIVE_MIN,
        )
        db.add(trace)
        traces.append(trace)
    db.flush()
    return traces


# A link, emphasis, raw HTML and a stray backtick: stored text that must show as written.
PLANTED = ("[Session expired: re-login here](https://evil.example/x) **bold** "
           '<a href="https://evil.example/y">here</a> `tick')
PLANTED_BOT = f"bot {PLANTED}"


def plant_hostile_text(url: str) -> None:
    """Overwrite every text column the console shows with ``PLANTED`` (ETH/USDT is renamed
    to it throughout), and add a second bot whose name and heartbeat are ``PLANTED`` too.

    Columns the pages compute on (side, kind, timeframe, order and plan status) keep their
    values, so the pages still render the same rows and every one of them carries the text.
    """
    from sqlalchemy import update

    engine = make_engine(url)
    texts = {
        Bot: ("mode", "venue", "symbols", "engine", "host"),
        BotStatus: ("engine", "feed", "mode", "host", "venue", "symbols", "state"),
        Session: ("run_name", "mode", "venue", "feed"),
        Trade: ("reason", "liquidity", "venue"),
        TradePlan: ("reason", "exit_reason"),
        TradePlanVersion: ("change",),
        Order: ("reason", "error"),
        LLMTrace: ("engine", "model", "prompt", "raw_response", "execution_result",
                   "decision_json"),
    }
    try:
        with session_factory(engine)() as db:
            for model, columns in texts.items():
                db.execute(update(model).values(dict.fromkeys(columns, PLANTED)))
            for model in (Trade, TradePlan, Position, OpenOrder, Order, MarketData, OHLCV):
                db.execute(update(model).where(model.symbol == "ETH/USDT")
                           .values(symbol=PLANTED))
            db.execute(update(OpenOrder).where(OpenOrder.order_id == "O-9002")
                       .values(order_id=PLANTED))
            now = datetime.now(UTC)
            bot = register_bot(db, PLANTED_BOT, now)
            db.flush()
            db.add(BotStatus(name=PLANTED_BOT, host=PLANTED, state=PLANTED, mode=PLANTED,
                             venue=PLANTED, engine=PLANTED, symbols=PLANTED, feed=PLANTED,
                             heartbeat_at=now, last_loop_at=now, loop_count=1,
                             last_error=PLANTED))
            session_id = db.scalar(select(Session.id).limit(1))
            db.add(Command(session_id=session_id, bot_id=require_bot_id(db, DEFAULT_BOT),
                           command=PLANTED, argument=PLANTED, status=PLANTED, result=PLANTED,
                           created_at=now, executed_at=now))
            db.add(Command(session_id=None, bot_id=bot.id, command="pause", argument=PLANTED,
                           status="failed", result=PLANTED, created_at=now, executed_at=now))
            db.commit()
    finally:
        engine.dispose()
