"""Replay: the same loop over candle files, deterministic, with named input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import replay
from bot.config import Settings
from bot.engine.base import DecisionContext, EngineResult
from bot.engine.rules import RulesEngine
from bot.engine.schema import Action, ActionType, Decision
from bot.model.timeframes import timeframe_delta
from bot.replay import ReplayArgs, build_replay, run_replay
from db.models import Trade, TradePlan
from tests.conftest import ROOT, candle_file
from tests.loop_harness import ScriptedEngine, make_runtime, step

START_MS = 1_700_000_000_000 - (1_700_000_000_000 % 300_000)


def write_candles(path: Path, closes: list[float], gap_at: int | None = None,
                  gap_to: float | None = None) -> Path:
    lines = ["timestamp,open,high,low,close,volume"]
    previous = closes[0]
    for i, close in enumerate(closes):
        opened = previous
        if gap_at is not None and i == gap_at:
            opened = close = gap_to
        high, low = max(opened, close) * 1.0005, min(opened, close) * 0.9995
        lines.append(f"{START_MS + i * 300_000},{opened},{high},{low},{close},50")
        previous = close
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_two_replays_have_the_same_fingerprint(tmp_path) -> None:
    btc = candle_file("BTC_USDT-5m.csv")
    cut = tmp_path / "BTC_USDT-5m.csv"
    cut.write_text("".join(btc.read_text().splitlines(keepends=True)[:701]))
    first = run_replay(ReplayArgs([cut], f"sqlite:///{tmp_path / 'a.db'}"), progress=False)
    second = run_replay(ReplayArgs([cut], f"sqlite:///{tmp_path / 'b.db'}"), progress=False)
    assert first["trades"] > 0
    assert first["fingerprint"] == second["fingerprint"]
    assert first == second


class FutureGuard:
    """The rules engine, behind a check of every context a replay hands it: no candle that
    had not closed by the simulated time, and none missing either (the newest 5m candle is
    the one that just closed); no fill from after that time."""

    def __init__(self, engine: RulesEngine) -> None:
        self.engine, self.name, self.seen = engine, engine.name, 0

    def decide(self, context: DecisionContext) -> EngineResult:
        for market in context.markets.values():
            for timeframe, frame in market.candles.items():
                closes_at = frame["timestamp"].iloc[-1] + timeframe_delta(timeframe)
                assert closes_at <= context.now, (timeframe, closes_at, context.now)
                if timeframe == "5m":
                    assert closes_at == context.now
        assert all(t["timestamp"] <= context.now for t in context.recent_trades)
        self.seen += 1
        return self.engine.decide(context)


@pytest.mark.slow
def test_no_candle_from_after_the_simulated_time_reaches_the_engine(tmp_path, monkeypatch):
    guards: list[FutureGuard] = []

    def guarded(_args: ReplayArgs, settings: Settings) -> FutureGuard:
        guards.append(FutureGuard(RulesEngine(settings)))
        return guards[-1]

    monkeypatch.setattr(replay, "_engine", guarded)
    cut = tmp_path / "BTC_USDT-5m.csv"
    cut.write_text("".join(
        candle_file("BTC_USDT-5m.csv").read_text().splitlines(keepends=True)[:701]))
    summary = run_replay(ReplayArgs([cut], f"sqlite:///{tmp_path / 'a.db'}"), progress=False)
    assert guards[0].seen == summary["candles"] > 400 and summary["trades"] > 0


def test_a_stop_hit_by_a_gap_fills_at_the_gap_price(sqlite_url, tmp_path) -> None:
    closes = [100 + 0.01 * (i % 7) for i in range(260)]
    path = write_candles(tmp_path / "GAP_USDT-5m.csv", closes, gap_at=230, gap_to=90.0)
    engine = ScriptedEngine([Decision(actions=[Action(
        action=ActionType.BUY, symbol="GAP/USDT", size=1.0, stop=99.0, target=120.0,
        reason="gap test")])])
    rt = make_runtime(sqlite_url, [path], engine, TRAIL_BREAKEVEN_PCT=0, MAX_SPREAD_PCT=5,
                      MAX_SLIPPAGE_PCT=5)
    step(rt, 40)
    with rt.db() as db:
        plan = db.scalars(select(TradePlan)).one()
        sell = db.scalars(select(Trade).where(Trade.action == "SELL")).one()
    assert plan.status == "closed" and plan.exit_reason.startswith("stop hit")
    assert sell.price < 91.0, "the gap is not free: the exit fills near 90, not at the 99 stop"
    assert sell.realized_pnl < -8.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,open,high,low,close,volume\n1,1,1,1,1,1\n", "header"),
        ("timestamp,open,high,low,close,volume\n2000,1,1,1,1,1\n1000,1,1,1,1,1\n", "row"),
        ("timestamp,open,high,low,close,volume\n1000,1,1,1,1,1\n1000,1,1,1,1,1\n", "row"),
    ],
)
@pytest.mark.slow
def test_bad_files_give_named_errors(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "BAD_USDT-5m.csv"
    path.write_text(content)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "replay", "--candles", str(path), "--db",
         f"sqlite:///{tmp_path / 'r.db'}", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert str(path) in result.stderr and message in result.stderr.lower()


def test_missing_file_is_named(tmp_path) -> None:
    missing = tmp_path / "NOPE_USDT-5m.csv"
    with pytest.raises(Exception, match="NOPE_USDT-5m.csv"):
        build_replay(ReplayArgs([missing], f"sqlite:///{tmp_path / 'r.db'}"))


@pytest.mark.slow
def test_cli_prints_the_summary_as_the_last_json_line(tmp_path) -> None:
    btc = candle_file("BTC_USDT-5m.csv")
    cut = tmp_path / "BTC_USDT-5m.csv"
    cut.write_text("".join(btc.read_text().splitlines(keepends=True)[:400]))
    result = subprocess.run(
        [sys.executable, "-m", "bot", "replay", "--candles", str(cut), "--db",
         f"sqlite:///{tmp_path / 'r.db'}", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("net_pnl", "return_pct", "fees", "llm_cost", "trades", "win_rate",
                "max_drawdown_pct", "exposure_time_pct", "buy_and_hold_pct", "fingerprint"):
        assert key in summary


@pytest.mark.parametrize(("balance", "warned"), [(10_000.0, True), (1.0, False)])
def test_a_balance_far_beyond_the_market_is_warned_of(tmp_path, caplog, balance: float,
                                                      warned: bool) -> None:
    """ETH/BTC started with 10,000 holds 10,000 BTC, thousands of times what the pair trades
    per candle: the replay says so in its log and its summary, naming the balance, its
    currency and the pair; a balance of 1 BTC is not warned of."""
    eth = candle_file("ETH_BTC-5m.csv")
    cut = tmp_path / "ETH_BTC-5m.csv"
    cut.write_text("".join(eth.read_text().splitlines(keepends=True)[:203]))
    with caplog.at_level("WARNING", logger="bot.replay"):
        summary = run_replay(ReplayArgs([cut], f"sqlite:///{tmp_path / 'r.db'}",
                                        balance=balance), progress=False)
    if not warned:
        assert summary["warnings"] == [] and not caplog.records
        return
    (warning,) = summary["warnings"]
    assert "10,000 BTC" in warning and "ETH/BTC" in warning and "5m candle" in warning
    assert [r.getMessage() for r in caplog.records] == [warning]


@pytest.mark.parametrize(("feed", "symbols", "warned"), [
    ("replay:ETH_BTC-5m.csv", "ETH/BTC", True), ("synthetic", "BTC/USDT", False)])
def test_the_bot_warns_at_start_of_a_balance_far_beyond_its_market(
        tmp_path, caplog, feed: str, symbols: str, warned: bool) -> None:
    """The bot started with the default 10,000 on a BTC-quoted pair logs the warning before
    it trades; on the default synthetic BTC/USDT market it does not."""
    from bot.app import build_runtime, warn_of_oversized_balance
    from bot.config import load_settings

    if feed.startswith("replay:"):
        feed = f"replay:{candle_file(feed.removeprefix('replay:'))}"
    settings = load_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}", FEED=feed,
                             SYMBOLS=symbols)
    with caplog.at_level("WARNING", logger="bot.app"):
        warnings = warn_of_oversized_balance(build_runtime(settings))
    assert [r.getMessage() for r in caplog.records] == warnings
    assert len(warnings) == warned
    if warned:
        assert "10,000 BTC" in warnings[0] and "ETH/BTC" in warnings[0]


def _trip_wins(fills: list[Trade]) -> tuple[int, int]:
    """Closed round trips and the ones that made money after fees, folded by hand: a trip
    runs from flat to flat on its symbol, long only (spot)."""
    held: dict[str, float] = {}
    net: dict[str, float] = {}
    closed = won = 0
    for fill in fills:
        signed = fill.quantity if fill.action == "BUY" else -fill.quantity
        cash = -fill.quantity * fill.price if fill.action == "BUY" else fill.quantity * fill.price
        held[fill.symbol] = held.get(fill.symbol, 0.0) + signed
        net[fill.symbol] = net.get(fill.symbol, 0.0) + cash - fill.fee
        if abs(held[fill.symbol]) < 1e-9:
            closed += 1
            won += net.pop(fill.symbol) > 0
            held[fill.symbol] = 0.0
    return closed, won


def test_the_win_rate_counts_round_trips_won_after_fees(tmp_path) -> None:
    """The summary's win rate is the report's and the Performance page's: the share of
    closed round trips whose net PnL, fees taken, is above zero. A trip that sold above its
    entry but not by its fees is a loss."""
    btc = candle_file("BTC_USDT-5m.csv")
    cut = tmp_path / "BTC_USDT-5m.csv"
    cut.write_text("".join(btc.read_text().splitlines(keepends=True)[:3001]))
    url = f"sqlite:///{tmp_path / 'r.db'}"
    summary = run_replay(ReplayArgs([cut], url), progress=False)
    rt, _ = build_replay(ReplayArgs([cut], url))
    with rt.db() as db:
        fills = list(db.scalars(select(Trade).order_by(Trade.id)))
    closed, won = _trip_wins(fills)
    assert closed >= 20
    assert summary["round_trips"] == closed
    assert summary["win_rate"] == pytest.approx(won / closed * 100, abs=0.01)
