"""The deterministic engine: long-only trend and bounce entries with ATR stops and targets.

It is the default engine (no key, no network, no cost) and the baseline the LLM has to
beat, so it reads the same context as the LLM. It sends no prompt and so records none: its
trace keeps the decision, whose summary states the indicators each symbol's choice turned
on. Same context in, same decision out.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bot.config import Settings
from bot.engine import indicators
from bot.engine.base import EngineResult
from bot.engine.schema import Action, ActionType, Decision
from bot.model.decision import DecisionContext, MarketView, candle_columns
from bot.model.entry_price import entry_price
from bot.model.figures import figure
from bot.model.round_trip import (
    min_target_distance_pct,
    round_trip_cost_pct,
    round_trip_fees_pct,
)
from bot.model.timeframes import timeframe_delta


@dataclass(frozen=True)
class RulesParams:
    stop_atr: float = 1.5
    target_atr: float = 2.5
    rsi_overbought: float = 70.0
    rsi_oversold: float = 30.0
    trail_after_atr: float = 1.0  # tighten the stop once price is this far above entry
    trail_atr: float = 1.5  # ... to this distance below the price
    min_stop_step_atr: float = 0.1  # smaller moves are not worth a plan version
    min_stop_fees: float = 2.0  # the stop is at least this many round-trip fees away
    # the target clears the risk layer's MIN_TARGET_FEE_MULTIPLE of the round trip's costs
    # by this factor more: room for rounding the target to 8 significant digits
    target_cost_headroom: float = 1.001


class RulesEngine:
    name = "rules"
    model = "rules-v1"

    def __init__(self, settings: Settings, params: RulesParams | None = None) -> None:
        self.settings = settings
        self.params = params or RulesParams()

    def decide(self, context: DecisionContext) -> EngineResult:
        started = time.perf_counter()
        actions: list[Action] = []
        notes: list[str] = []
        for symbol in context.symbols:
            view = context.markets.get(symbol)
            if view is None:
                continue
            found, note = self._decide_symbol(context, view)
            actions.extend(found)
            notes.append(f"{symbol}: {note}")
        summary = "; ".join(notes)[:4000]
        if not actions:
            actions = [Action(action=ActionType.HOLD, reason=summary[:2000] or "no market")]
        return EngineResult(
            decision=Decision(actions=actions, summary=summary),
            engine=self.name,
            model=self.model,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def _decide_symbol(
        self, context: DecisionContext, view: MarketView
    ) -> tuple[list[Action], str]:
        timeframe, ind = self._signal_frame(view)
        if ind is None:
            return [], "not enough closed candles"
        price = view.last if _positive(view.last) else ind["close"]
        if not _positive(price) or not _positive(ind["atr"]):
            return [], "no price or ATR"
        plans = [p for p in context.open_plans if p.get("symbol") == view.symbol]
        if plans:
            return self._manage(plans, price, ind, timeframe)
        if _holding_value(context, view.symbol, price) >= self.settings.min_notional:
            return [], "position without a plan: left to the plan monitor"
        if any(o.get("symbol") == view.symbol and str(o.get("side")).lower() == "buy"
               for o in context.open_orders):
            return [], "entry order already open"
        return self._enter(context, view, price, ind, timeframe)

    def _signal_frame(self, view: MarketView) -> tuple[str, dict[str, Any] | None]:
        """The shortest configured timeframe with warmed-up indicators drives the signal."""
        need = indicators.DEFAULT_PARAMS.warmup
        for tf in _shortest_first(tuple(self.settings.timeframes)):
            columns = candle_columns(view, tf)
            if columns is not None and len(columns) >= need:
                ind = indicators.summary(columns)
                if all(_finite(ind.get(k)) for k in ("ema_fast", "ema_slow", "rsi", "macd_hist",
                                                   "atr", "rsi_prev")):
                    return tf, ind
        return "", None

    def _enter(self, context: DecisionContext, view: MarketView, price: float,
               ind: dict[str, Any], tf: str) -> tuple[list[Action], str]:
        p = self.params
        trend = (ind["ema_fast"] > ind["ema_slow"] and ind["macd_hist"] > 0
                 and ind["rsi"] < p.rsi_overbought)
        bounce = ind["rsi_prev"] < p.rsi_oversold and ind["rsi"] > ind["rsi_prev"]
        state = _state(tf, ind)
        if not (trend or bounce):
            return [], f"no entry ({state})"
        value = context.equity * self.settings.entry_value_pct / 100
        value = min(value, self.settings.max_order_value, context.quote_balance)
        if value < max(self.settings.min_notional, 1e-9):
            return [], f"signal but only {figure(value)} quote available ({state})"
        atr = ind["atr"]
        # On quiet short candles 1.5 ATR can be smaller than the round trip's fees, and a
        # target inside the fees is a guaranteed loss: the stop is never tighter than
        # min_stop_fees round trips, nor the target closer to the entry than the risk layer
        # lets through (MIN_TARGET_FEE_MULTIPLE); the target keeps the reward-to-risk ratio.
        entry = entry_price("market", None, view.ask, price)
        size = _sig_down(value / entry)
        reward_per_risk = p.target_atr / p.stop_atr
        costs = round_trip_cost_pct(view.bid, view.ask, view.book, size)
        need = min_target_distance_pct(self.settings.min_target_fee_multiple,
                                       self.settings.taker_fee, costs)
        least_target = entry * (1 + need * p.target_cost_headroom / 100)
        round_trip = round_trip_fees_pct(self.settings.taker_fee) / 100 * price
        risk = max(p.stop_atr * atr, p.min_stop_fees * round_trip,
                   (least_target - price) / reward_per_risk)
        stop, target = _sig(price - risk), _sig(price + risk * reward_per_risk)
        action = Action(
            action=ActionType.BUY,
            symbol=view.symbol,
            # valued at the price the risk layer values it at, and rounded down: an entry
            # sized at MAX_ORDER_VALUE is then not refused by it
            size=size,
            order_type="market",
            stop=stop,
            target=target,
            reason=f"{'trend' if trend else 'oversold bounce'}: {state}, atr {atr}",
            confidence=0.6 if trend and bounce else 0.5,
        )
        if not 0 < stop < price < target:
            return [], f"ATR too large for a stop below the price ({state})"
        return [action], action.reason

    def _manage(self, plans: list[dict[str, Any]], price: float, ind: dict[str, Any],
                tf: str) -> tuple[list[Action], str]:
        p = self.params
        atr = ind["atr"]
        actions: list[Action] = []
        for plan in plans:
            if plan.get("status") != "open" or str(plan.get("side", "BUY")).upper() != "BUY":
                continue
            if ind["ema_fast"] < ind["ema_slow"] and ind["macd_hist"] < 0:
                actions.append(Action(
                    action=ActionType.CLOSE_PLAN, symbol=plan["symbol"], plan_id=plan["id"],
                    reason=f"trend reversed on {tf}: ema {ind['ema_fast']}<{ind['ema_slow']}, "
                           f"macd_hist {ind['macd_hist']}"))
                continue
            stop = float(plan["stop_price"])
            if price - float(plan["entry_price"]) < p.trail_after_atr * atr:
                continue
            new_stop = _sig(price - p.trail_atr * atr)
            if new_stop > stop + p.min_stop_step_atr * atr and new_stop < price:
                actions.append(Action(
                    action=ActionType.UPDATE_PLAN, symbol=plan["symbol"], plan_id=plan["id"],
                    stop=new_stop,
                    reason=f"in profit: trail stop {stop} -> {new_stop} ({p.trail_atr} ATR)"))
        note = ("; ".join(a.reason for a in actions)
                or f"plan held ({len(plans)} open; {_state(tf, ind)})")
        return actions, note


def _state(tf: str, ind: dict[str, Any]) -> str:
    """The indicators a decision turns on, as its summary states them."""
    return (f"{tf} ema {ind['ema_fast']}/{ind['ema_slow']} macd_hist {ind['macd_hist']} "
            f"rsi {ind['rsi']}")


@lru_cache(maxsize=64)
def _shortest_first(timeframes: tuple[str, ...]) -> tuple[str, ...]:
    """The same few timeframes at every decision: sorted once."""
    return tuple(sorted(timeframes, key=timeframe_delta))


def _holding_value(context: DecisionContext, symbol: str, price: float) -> float:
    return sum(float(p.get("quantity") or 0) for p in context.positions
               if p.get("symbol") == symbol) * price


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _finite(value) and value > 0


def _sig(value: float) -> float:
    return float(f"{value:.8g}")


def _sig_down(value: float) -> float:
    """``value`` cut (not rounded) to 8 significant digits: never more than it."""
    scale = 10.0 ** (7 - math.floor(math.log10(value)))
    return math.floor(value * scale) / scale
