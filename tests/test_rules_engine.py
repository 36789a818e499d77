"""The rules engine on the real BTC/USDT 5m candles: deterministic, trades, sane brackets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from bot.config import load_settings
from bot.engine.rules import RulesEngine
from bot.engine.schema import ActionType
from bot.model.decision import DecisionContext, MarketView
from tests.conftest import candle_file

SETTINGS = load_settings(SYMBOLS="BTC/USDT", TIMEFRAMES="5m")
WINDOW = 150


def load_candles() -> pd.DataFrame:
    frame = pd.read_csv(candle_file("BTC_USDT-5m.csv"))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    return frame


def replay(frame: pd.DataFrame, start: int, stop: int, step: int) -> list[dict[str, Any]]:
    """Decide every ``step`` candles on closed candles only; fill plans on later candles."""
    engine = RulesEngine(SETTINGS)
    plan: dict[str, Any] | None = None
    log: list[dict[str, Any]] = []
    for i in range(start, stop):
        bar = frame.iloc[i]
        if i % step == 0:
            last = float(frame["close"].iloc[i - 1])
            view = MarketView("BTC/USDT", last, None, None, None, None,
                              {"5m": frame.iloc[max(0, i - WINDOW) : i]})
            context = DecisionContext(
                now=bar["timestamp"].to_pydatetime(), session_id=1, symbols=["BTC/USDT"],
                markets={"BTC/USDT": view}, positions=[], open_orders=[],
                open_plans=[plan] if plan else [], recent_trades=[], stats={},
                equity=10_000.0, quote_balance=10_000.0)
            for action in engine.decide(context).decision.actions:
                log.append({"i": i, "last": last, **action.model_dump()})
                if action.action is ActionType.BUY:
                    plan = {"id": i, "symbol": "BTC/USDT", "side": "BUY", "status": "open",
                            "entry_price": last, "stop_price": action.stop,
                            "target_price": action.target, "size": action.size}
                elif action.action is ActionType.CLOSE_PLAN:
                    plan = None
                elif action.action is ActionType.UPDATE_PLAN and plan:
                    plan = {**plan, "stop_price": action.stop}
        if plan and (bar["low"] <= plan["stop_price"] or bar["high"] >= plan["target_price"]):
            plan = None
    return log


@pytest.fixture(scope="module")
def full_replay() -> list[dict[str, Any]]:
    frame = load_candles()
    return replay(frame, 60, len(frame), step=6)


@pytest.mark.slow
def test_trades_on_the_real_file_with_stops_below_and_targets_above(full_replay) -> None:
    buys = [a for a in full_replay if a["action"] is ActionType.BUY]
    assert len(buys) >= 5
    for buy in buys:
        assert buy["stop"] < buy["last"] < buy["target"]
        assert buy["size"] * buy["last"] == pytest.approx(10_000 * 5 / 100, rel=1e-6)
    kinds = {a["action"] for a in full_replay}
    assert ActionType.UPDATE_PLAN in kinds or ActionType.CLOSE_PLAN in kinds
    for update in (a for a in full_replay if a["action"] is ActionType.UPDATE_PLAN):
        assert update["stop"] < update["last"]


@pytest.mark.slow
def test_same_input_same_decisions() -> None:
    frame = load_candles()
    assert replay(frame, 60, 700, step=1) == replay(frame, 60, 700, step=1)


def test_enters_quickly_on_a_synthetic_rising_1m_market() -> None:
    settings = load_settings(SYMBOLS="BTC/USDT", TIMEFRAMES="1m")
    rng = np.random.default_rng(11)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0.0002, 0.001, 60)))
    frame = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=60, freq="1min",
                                                     tz="UTC"),
                          "open": close, "high": close * 1.001, "low": close * 0.999,
                          "close": close, "volume": 1.0})
    view = MarketView("BTC/USDT", float(close[-1]), None, None, None, None, {"1m": frame})
    context = DecisionContext(now=frame["timestamp"].iloc[-1].to_pydatetime(), session_id=1,
                              symbols=["BTC/USDT"], markets={"BTC/USDT": view}, positions=[],
                              open_orders=[], open_plans=[], recent_trades=[], stats={},
                              equity=10_000.0, quote_balance=10_000.0)
    result = RulesEngine(settings).decide(context)
    assert result.decision.actions[0].action is ActionType.BUY
    assert result.engine == "rules" and result.model == "rules-v1" and result.cost == 0
    # it sends no prompt, so it stores none: its summary states the indicators it used
    assert result.prompt == "" and result.raw_response is None
    assert "1m ema" in result.decision.summary and "rsi" in result.decision.summary


def test_holds_without_enough_candles() -> None:
    frame = load_candles().iloc[:10]
    view = MarketView("BTC/USDT", float(frame["close"].iloc[-1]), None, None, None, None,
                      {"5m": frame})
    context = DecisionContext(now=frame["timestamp"].iloc[-1].to_pydatetime(), session_id=1,
                              symbols=["BTC/USDT"], markets={"BTC/USDT": view}, positions=[],
                              open_orders=[], open_plans=[], recent_trades=[], stats={},
                              equity=10_000.0, quote_balance=10_000.0)
    (action,) = RulesEngine(SETTINGS).decide(context).decision.actions
    assert action.action is ActionType.HOLD and "not enough" in action.reason
