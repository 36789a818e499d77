"""Console page render time on a 1-day database and on one with a year of history.

``python bench/console_bench.py [--runs N] [--rebuild] [--views VIEW ...]``. Both databases
hold the same seeded current day (tests/console_seed.py) plus bulk rows at the same density
per day: the 1-day one for today only, the year one for 364 more days of live sessions of
the same bot (over 2M market_data, 500k ohlcv, 20k trades, 50k traces), and a replay run of
5-minute steps as the rules engine writes it (a tick, a trace, an equity step and its
candles a step), finished as ``bot.replay`` finishes one (its summary recorded): one day of
it in the 1-day database, a year (105k steps) in the other. The only difference is
history, so a page or view whose time grows with it reads outside its session or without a
LIMIT; the goal is a ratio of at most 1.5. The closed sessions' rollups are written after
the bulk rows by the function the upgrade backfills them with (``db.backfill``), as a bot
writes them day by day. Besides every page as it opens (the Replays page with its run's
summary and equity curve), three views: Trades over the whole run, and Chart and the
Decisions scorecard over the widest dates they allow (the whole history).
Databases are built once with raw ``executemany`` in big transactions (the ORM row by row
would take an hour) and cached under data/bench/. Each page is rendered by the real
``console.py`` through Streamlit's AppTest, server side only, with no bot started.

Measured 2026-12-07 on a clean clone of main at ``79cb25c`` (2-core Intel Xeon, quiet;
README, Replay, has the table): every page within 1.22, and the views over a year within
1.42: Trades over the whole run 1.42, Performance 1.31, Chart 1.35, the scorecard 1.25.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from db.backfill import roll_up_stored  # noqa: E402
from db.bots import DEFAULT_BOT  # noqa: E402
from db.engine import make_engine, session_factory  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.queries_replays import finished_record, run_session_ids  # noqa: E402
from db.replay_runs import mark_finished  # noqa: E402
from tests.console_seed import seed_console_db  # noqa: E402

BENCH_DIR = ROOT / "data" / "bench"
PAGES = ["overview", "chart", "portfolio", "trades", "performance", "decisions", "fleet",
         "commands", "settings", "replays"]


def _whole_span(key: str) -> Callable[[AppTest], None]:
    """Pick the widest dates the date input ``key`` allows: all the run's history."""
    def pick(at: AppTest) -> None:
        dates = at.date_input(key=key)
        dates.set_value((dates.min, dates.max)).run()
    return pick


def _chart_range(at: AppTest) -> None:
    at.radio(key="chart_window").set_value("Date range").run()
    _whole_span("chart_dates")(at)


def _scorecard(at: AppTest) -> None:
    at.toggle(key="dec_scorecard").set_value(True).run()
    _whole_span("scorecard_dates")(at)


# view name: (page, what is set on it) besides each page as it opens
VIEWS: dict[str, tuple[str, Callable[[AppTest], None] | None]] = {
    **{page: (page, None) for page in PAGES},
    "trades whole run": ("trades", lambda at: at.toggle(key="trades_run").set_value(True).run()),
    "chart date range": ("chart", _chart_range),
    "decisions scorecard": ("decisions", _scorecard),
}
BUILD = 9  # in the cached files' names: a database built for another layout is not reused
REPLAY_RUN = "replay-bench"
REPLAY_STEP_S = 300
REPLAY_FILLS_PER_DAY = 27
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
BASE_PRICE = {"BTC/USDT": 64_000.0, "ETH/USDT": 3_100.0, "SOL/USDT": 150.0, "XRP/USDT": 0.6}
TIMEFRAMES = {"5m": 300, "15m": 900, "1h": 3600}  # 408 candles a day per symbol
TICK_S = 60  # 1,440 market_data rows a day per symbol
TRADES_PER_DAY = 60
TRACE_EVERY_S = 600  # 144 traces a day
HISTORY_DAYS = 364
PROMPT = "market context " * 70  # about 1 kB, like a real prompt's share of the row


def _stamp(when: datetime) -> str:
    """How SQLAlchemy stores our UTC datetimes in SQLite (naive text, microseconds)."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _bulk_day(cur: sqlite3.Cursor, session_id: int, day: date, rng: random.Random,
              trade_no: int) -> int:
    """One day of ticks, candles, fills and traces for ``session_id``; returns trade_no."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    ticks, candles = [], []
    for symbol in SYMBOLS:
        price = BASE_PRICE[symbol] * (1 + rng.uniform(-0.2, 0.2))
        for k in range(86_400 // TICK_S):
            price *= 1 + rng.gauss(0, 0.0008)
            spread = price * 0.0002
            ticks.append((session_id, symbol, _stamp(start + timedelta(seconds=k * TICK_S)),
                          price, price - spread / 2, price + spread / 2, rng.uniform(1, 9),
                          0.02, rng.uniform(1, 5), rng.uniform(1, 5), rng.uniform(-0.3, 0.3)))
        for timeframe, seconds in TIMEFRAMES.items():
            close = BASE_PRICE[symbol]
            for k in range(86_400 // seconds):
                open_, close = close, close * (1 + rng.gauss(0, 0.002))
                candles.append((session_id, symbol, timeframe,
                                _stamp(start + timedelta(seconds=k * seconds)), open_,
                                max(open_, close) * 1.001, min(open_, close) * 0.999, close,
                                rng.uniform(10, 900)))
    cur.executemany(
        "INSERT INTO market_data (session_id, symbol, timestamp, price, bid, ask, volume, "
        "spread_pct, bid_size, ask_size, ob_imbalance) VALUES (?,?,?,?,?,?,?,?,?,?,?)", ticks)
    cur.executemany(  # the seeded day already holds some of today's BTC/ETH candles
        "INSERT OR IGNORE INTO ohlcv (session_id, symbol, timeframe, timestamp, open, high, "
        "low, close, volume) VALUES (?,?,?,?,?,?,?,?,?)", candles)
    traces = []
    for k in range(86_400 // TRACE_EVERY_S):
        result = {"equity": 10_000 + rng.gauss(0, 50), "exposure": rng.choice([0, 0, 1]),
                  "prices": {s: BASE_PRICE[s] for s in SYMBOLS}, "actions": []}
        traces.append((session_id, "rules", None, PROMPT, None, '{"action": "HOLD"}',
                       '{"action": "HOLD"}', None, json.dumps(result), "ok", 900, 40,
                       0.0004, rng.uniform(5, 900),
                       _stamp(start + timedelta(seconds=k * TRACE_EVERY_S))))
    first_trace = cur.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM llm_traces").fetchone()[0]
    _add_traces(cur, traces)
    fills = []
    for k in range(TRADES_PER_DAY):
        trade_no += 1
        symbol = rng.choice(SYMBOLS)
        price = BASE_PRICE[symbol] * (1 + rng.uniform(-0.05, 0.05))
        qty = 500 / price
        second = k * 1_400 + 7  # each fill carries the decision traced just before it
        fills.append((session_id, _stamp(start + timedelta(seconds=second)), symbol,
                      "BUY" if k % 2 == 0 else "SELL", qty, price, qty * price * 0.001,
                      "taker", 0.0 if k % 2 == 0 else rng.gauss(0, 5), "bench fill", "paper",
                      f"B{trade_no:08d}", f"BO{trade_no:08d}", f"td-b-{trade_no}",
                      first_trace + second // TRACE_EVERY_S))
    _add_fills(cur, fills)
    return trade_no


def _add_traces(cur: sqlite3.Cursor, traces: list[tuple]) -> None:
    """Traces, with the equity step each decided step writes beside its trace."""
    cur.executemany(
        "INSERT INTO llm_traces (session_id, engine, model, prompt, tool_calls, raw_response, "
        "decision_json, errors, execution_result, status, tokens_in, tokens_out, cost, "
        "latency_ms, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", traces)
    steps = []
    for trace in traces:
        result = json.loads(trace[8])
        steps.append((trace[0], trace[-1], result["equity"], result["exposure"],
                      json.dumps(result["prices"])))
    cur.executemany("INSERT INTO equity_steps (session_id, created_at, equity, exposure, "
                    "prices) VALUES (?,?,?,?,?)", steps)


def _add_fills(cur: sqlite3.Cursor, fills: list[tuple]) -> None:
    """Fills, each with the trace of the decision it came from (None: none)."""
    cur.executemany(
        "INSERT INTO trades (session_id, timestamp, symbol, action, quantity, price, fee, "
        "liquidity, realized_pnl, reason, venue, trade_id, order_id, client_order_id, "
        "trace_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", fills)


def _replay_day(cur: sqlite3.Cursor, day: date, rng: random.Random, price: float,
                trade_no: int) -> tuple[float, int]:
    """One simulated day of the bench replay run: a session, and per 5-minute step a tick,
    a trace (no prompt: the rules engine sends none), an equity step and its candle (5m,
    and 1h every hour); some fills."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    cur.execute(
        "INSERT INTO sessions (date, kind, run_name, mode, venue, starting_balance, net_pnl, "
        "total_fees, total_llm_cost, total_trades, created_at) "
        "VALUES (?, 'replay', ?, 'PAPER', 'paper', 10000, 0, 0, 0, 0, ?)",
        (day.isoformat(), REPLAY_RUN, _stamp(start)))
    session_id = cur.lastrowid
    ticks, traces, candles = [], [], []
    for k in range(86_400 // REPLAY_STEP_S):
        opened, price = price, price * (1 + rng.gauss(0, 0.002))
        when = _stamp(start + timedelta(seconds=k * REPLAY_STEP_S))
        ticks.append((session_id, "BTC/USDT", when, price, price * 0.9999, price * 1.0001))
        for timeframe in ("5m", "1h")[:1 + (k % 12 == 0)]:
            candles.append((session_id, "BTC/USDT", timeframe, when, opened,
                            max(opened, price) * 1.001, min(opened, price) * 0.999, price,
                            rng.uniform(10, 900)))
        result = {"equity": 10_000 + rng.gauss(0, 50), "exposure": rng.choice([0, 0, 500]),
                  "prices": {"BTC/USDT": price}, "actions": [{"action": "HOLD"}]}
        traces.append((session_id, "rules", "rules-v1", "", None, None,
                       '{"actions": [{"action": "HOLD", "reason": "no entry"}]}', None,
                       json.dumps(result), "ok", 0, 0, 0.0, 1.0, when))
    cur.executemany("INSERT INTO market_data (session_id, symbol, timestamp, price, bid, ask) "
                    "VALUES (?,?,?,?,?,?)", ticks)
    cur.executemany("INSERT INTO ohlcv (session_id, symbol, timeframe, timestamp, open, high, "
                    "low, close, volume) VALUES (?,?,?,?,?,?,?,?,?)", candles)
    _add_traces(cur, traces)
    fills = []
    for k in range(REPLAY_FILLS_PER_DAY):
        trade_no += 1
        qty = 500 / price
        fills.append((session_id, _stamp(start + timedelta(seconds=k * 3_000 + 300)),
                      "BTC/USDT", "BUY" if k % 2 == 0 else "SELL", qty, price,
                      qty * price * 0.001, "taker", 0.0 if k % 2 == 0 else rng.gauss(0, 5),
                      "bench fill", f"paper:replay:{REPLAY_RUN}", f"R{trade_no:08d}",
                      f"RO{trade_no:08d}", f"td-r-{trade_no}", None))
    _add_fills(cur, fills)
    return price, trade_no


def _replay_run(con: sqlite3.Connection, last_day: date, days: int, rng: random.Random) -> None:
    """A finished replay run of ``days`` simulated days ending on ``last_day``."""
    cur = con.cursor()
    price, trade_no = BASE_PRICE["BTC/USDT"], 0
    for back in range(days - 1, -1, -1):
        price, trade_no = _replay_day(cur, last_day - timedelta(days=back), rng, price, trade_no)
        if back % 30 == 0:
            con.commit()
    end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC) + timedelta(days=1)
    cur.execute("INSERT INTO paper_clock (account, now_ms, seq, feed) VALUES (?, ?, 0, ?)",
                (REPLAY_RUN, int(end.timestamp() * 1000),
                 json.dumps({"paths": ["BTC_USDT-5m.csv"]})))
    cur.execute("INSERT INTO paper_balances (account, currency, total, used) "
                "VALUES (?, 'USDT', 10000, 0)", (REPLAY_RUN,))
    con.commit()


def _finish_replay(url: str, end: datetime) -> None:
    """Mark the bench run finished with its summary, as ``bot.replay.finish`` does, and
    write every closed session's performance rollup and every run's settled decision
    scores, as the bot does as each day closes (and the upgrade does for a database stored
    before)."""
    engine = make_engine(url)
    with session_factory(engine)() as db:
        ids = run_session_ids(db, REPLAY_RUN)
        mark_finished(db, REPLAY_RUN, end, finished_record(db, ids, 10_000.0, REPLAY_RUN))
        roll_up_stored(db)
        db.commit()
    engine.dispose()


def build(path: Path, history_days: int) -> None:
    """The seeded current day plus bulk rows for it and ``history_days`` earlier days."""
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade(url)
    seeded = seed_console_db(url)
    rng = random.Random(7)
    con = sqlite3.connect(path)
    cur = con.cursor()
    bot_id = cur.execute("SELECT id FROM bots WHERE name = ?", (DEFAULT_BOT,)).fetchone()[0]
    today = seeded.now.date()
    trade_no = _bulk_day(cur, seeded.session_id, today, rng, 0)
    for back in range(history_days, 0, -1):
        day = today - timedelta(days=back)
        cur.execute(
            "INSERT INTO sessions (date, kind, run_name, bot_id, mode, venue, starting_balance, "
            "net_pnl, total_fees, total_llm_cost, total_trades, created_at) "
            "VALUES (?, 'live', ?, ?, 'PAPER', 'paper', 10000, 0, 0, 0, 0, ?)",
            (day.isoformat(), DEFAULT_BOT, bot_id,
             _stamp(datetime(day.year, day.month, day.day, tzinfo=UTC))))
        trade_no = _bulk_day(cur, cur.lastrowid, day, rng, trade_no)
        if back % 30 == 0:
            con.commit()
    con.commit()
    _replay_run(con, today - timedelta(days=400), history_days + 1, rng)
    _finish_replay(url, datetime.combine(today - timedelta(days=399), datetime.min.time(), UTC))
    cur.execute("ANALYZE")
    con.close()


def database(name: str, history_days: int, rebuild: bool) -> Path:
    path = BENCH_DIR / f"console-{name}-b{BUILD}.db"
    if rebuild or not path.exists():
        started = time.perf_counter()
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        build(path, history_days)
        print(f"built {path} in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return path


def counts(path: Path) -> dict[str, int]:
    con = sqlite3.connect(path)
    try:
        return {table: con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("market_data", "ohlcv", "trades", "llm_traces", "equity_steps",
                              "sessions")}
    finally:
        con.close()


def _app(path: Path, view: str) -> AppTest:
    """console.py on ``path`` with ``view`` open and warmed up (imports, caches, engine)."""
    page, setup = VIEWS[view]
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    at = AppTest.from_file(str(ROOT / "console.py"), default_timeout=120)
    at.run()
    at.switch_page(f"views/{page}.py").run()
    if setup is not None:
        setup(at)
    at.run()
    if at.exception:
        raise RuntimeError(f"{page} failed on {path}: {[e.value for e in at.exception]}")
    return at


def render_times(paths: list[Path], runs: int, views: list[str]) -> list[dict[str, float]]:
    """Best ms of ``runs`` reruns of each page through console.py, for each database.

    The databases take turns run by run, so a slow moment of the machine hits both alike;
    the best run is the page's own cost (the median still carries GC and scheduler noise).
    """
    from streamlit import config as st_config

    os.environ["TRADEDESK_NO_AUTOSTART"] = "1"
    st_config.set_option("server.address", "127.0.0.1")
    out: list[dict[str, float]] = [{} for _ in paths]
    for page in views:
        apps = [_app(path, page) for path in paths]
        samples: list[list[float]] = [[] for _ in paths]
        for _ in range(runs):
            for at, path, bucket in zip(apps, paths, samples, strict=True):
                os.environ["DATABASE_URL"] = f"sqlite:///{path}"
                started = time.perf_counter()
                at.run()
                bucket.append((time.perf_counter() - started) * 1000)
        for result, bucket in zip(out, samples, strict=True):
            result[page] = min(bucket)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed reruns per page")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the databases")
    parser.add_argument("--views", nargs="+", choices=list(VIEWS), default=list(VIEWS),
                        metavar="VIEW", help="time only these views (default: all)")
    args = parser.parse_args()
    small = database("1day", 0, args.rebuild)
    large = database("year", HISTORY_DAYS, args.rebuild)
    for name, path in (("1-day", small), ("year", large)):
        print(f"{name}: " + ", ".join(f"{k} {v:,}" for k, v in counts(path).items()))
    one, year = render_times([small, large], args.runs, args.views)
    print(f"\n{'page':<18}{'1-day ms':>10}{'year ms':>10}{'ratio':>8}")
    worst = 0.0
    for page in args.views:
        ratio = year[page] / one[page]
        worst = max(worst, ratio)
        flag = "" if ratio <= 1.5 else "  > 1.5"
        print(f"{page:<18}{one[page]:>10.0f}{year[page]:>10.0f}{ratio:>8.2f}{flag}")
    print(f"\nworst ratio {worst:.2f} (goal ≤ 1.5)")


if __name__ == "__main__":
    main()
