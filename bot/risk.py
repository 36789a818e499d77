"""The risk layer: the last word over any engine, for entries only.

Exits, stops and close-all reduce risk and are never refused here. Each refusal names the
rule that refused, so the trace shows exactly why an action did not trade.

An entry's target is the one its plan will carry: the engine's, or the plan's default
target when the engine gave none. A careful trader enters no trade whose exit cannot pay
its costs, so that default target is held to MIN_TARGET_FEE_MULTIPLE like any other.

An engine's UPDATE_PLAN may move an open plan's target inside those costs: the rule asks
whether a trade is worth entering, and once in, the entry's fees and book walk are spent
whatever the target; where to take profit is an exit's question, and exits are never
refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.config import Settings
from bot.model.entry_price import within_cap
from bot.model.figures import figure
from bot.model.quote import Quote
from bot.model.round_trip import (
    book_slippage_pct,
    min_target_distance_pct,
    round_trip_cost_pct,
    round_trip_fees_pct,
    spread_pct,
)


class Rule(StrEnum):
    """Every rule that can refuse an entry: the one vocabulary of refusals (and of the cases
    that prove each refuses)."""

    PAUSED = "paused"
    CIRCUIT_BREAKER = "circuit_breaker"
    NO_MARKET_DATA = "no_market_data"
    LLM_COST_CAP = "llm_cost_cap"
    MIN_NOTIONAL = "min_notional"
    MAX_ORDER_VALUE = "max_order_value"
    AVAILABLE_CAPITAL = "available_capital"
    MAX_TOTAL_EXPOSURE = "max_total_exposure"
    MAX_DAILY_LOSS = "max_daily_loss"
    MAX_DAILY_LOSS_PCT = "max_daily_loss_pct"
    MAX_OPEN_POSITIONS = "max_open_positions"
    PLAN_MAX_PER_SYMBOL = "plan_max_per_symbol"
    STALE_TICKER = "stale_ticker"
    MAX_SPREAD_PCT = "max_spread_pct"
    MAX_SLIPPAGE_PCT = "max_slippage_pct"
    MIN_TARGET_FEE_MULTIPLE = "min_target_fee_multiple"


@dataclass(frozen=True)
class RiskState:
    """What the rules need to know about the account at decision time."""

    now: datetime
    equity: float
    start_of_day_equity: float
    # today's: realized − fees − LLM cost, plus the change in unrealized since the day began
    session_net_pnl: float
    llm_cost: float
    exposure_by_symbol: dict[str, float]
    active_plans_by_symbol: dict[str, int]
    breaker_open: bool
    paused: bool
    # what is left of AVAILABLE_CAPITAL to spend; None: the whole account's, which the venue
    # itself holds an entry to
    cash: float | None = None


@dataclass(frozen=True)
class Refusal:
    rule: Rule
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


def book_fill_within(book: dict, side: str, amount: float, cap_pct: float) -> float:
    """The most of ``amount`` the book fills with an average price within ``cap_pct`` of its
    best level: whole levels while they keep the average within, then the part of the next
    that brings the average to the cap (levels past the cap spend what room the cheaper
    ones left)."""
    levels = book.get("asks" if side == "BUY" else "bids") or []
    if not levels:
        return 0.0
    best = levels[0][0]
    limit = best * (1 + cap_pct / 100 if side == "BUY" else 1 - cap_pct / 100)
    filled = cost = 0.0
    for price, size in levels:
        take = min(size, amount - filled)
        beyond = (price - limit) if side == "BUY" else (limit - price)
        if beyond > 0:  # a level past the cap: only as much as keeps the average within
            room = (limit * filled - cost) if side == "BUY" else (cost - limit * filled)
            if room / beyond < take:
                return filled + max(room, 0.0) / beyond
        filled += take
        cost += take * price
        if filled >= amount:
            break
    return filled


def check_entry(
    settings: Settings, state: RiskState, symbol: str, side: str, amount: float,
    price: float, target: float, quote: Quote | None,
) -> Refusal | None:
    """Return the first rule an entry breaks, or None when it may go.

    ``price`` is what the entry is valued at (``bot.model.entry_price``) and ``target`` the
    target its plan will carry.
    """
    value = amount * price
    checks = (
        (state.paused, Rule.PAUSED, "entries are paused by the operator"),
        (state.breaker_open, Rule.CIRCUIT_BREAKER,
         "the circuit breaker is open (venue errors in a row, or the API key refused)"),
        (quote is None, Rule.NO_MARKET_DATA, f"no quote for {symbol} this iteration"),
        (state.llm_cost >= settings.llm_session_cost_cap > 0, Rule.LLM_COST_CAP,
         f"session LLM cost {state.llm_cost:.4f} reached {settings.llm_session_cost_cap}"),
        (value < settings.min_notional, Rule.MIN_NOTIONAL,
         f"order value {figure(value)} below {settings.min_notional}"),
        (not within_cap(value, settings.max_order_value), Rule.MAX_ORDER_VALUE,
         f"order value {figure(value)} above {settings.max_order_value}"),
        (state.cash is not None and value > state.cash, Rule.AVAILABLE_CAPITAL,
         f"order value {figure(value)} above the {figure(max(state.cash or 0.0, 0.0))} left of"
         f" AVAILABLE_CAPITAL {settings.available_capital}"),
        (sum(state.exposure_by_symbol.values()) + value > settings.max_total_exposure,
         Rule.MAX_TOTAL_EXPOSURE,
         f"exposure would be {figure(sum(state.exposure_by_symbol.values()) + value)}"
         f" > {settings.max_total_exposure}"),
        (-state.session_net_pnl >= settings.max_daily_loss, Rule.MAX_DAILY_LOSS,
         f"today's loss {figure(-state.session_net_pnl)} reached {settings.max_daily_loss}"),
        (state.start_of_day_equity > 0 and -state.session_net_pnl / state.start_of_day_equity
         * 100 >= settings.max_daily_loss_pct, Rule.MAX_DAILY_LOSS_PCT,
         f"today's loss reached {settings.max_daily_loss_pct}% of start-of-day equity"),
        (symbol not in state.exposure_by_symbol
         and len(state.exposure_by_symbol) >= settings.max_open_positions,
         Rule.MAX_OPEN_POSITIONS, f"{len(state.exposure_by_symbol)} positions open"),
        (state.active_plans_by_symbol.get(symbol, 0) >= settings.plan_max_per_symbol,
         Rule.PLAN_MAX_PER_SYMBOL,
         f"{state.active_plans_by_symbol.get(symbol, 0)} plan(s) already open on {symbol}"),
    )
    for failed, rule, detail in checks:
        if failed:
            return Refusal(rule, detail)
    assert quote is not None
    return _check_market(settings, state, symbol, side, amount, quote) or _check_target(
        settings, amount, price, target, quote)


def _check_market(
    settings: Settings, state: RiskState, symbol: str, side: str, amount: float, quote: Quote
) -> Refusal | None:
    age = (state.now - quote.timestamp).total_seconds()
    if age > settings.stale_ticker_seconds:
        return Refusal(Rule.STALE_TICKER, f"{symbol} quote is {age:.0f}s old")
    spread = spread_pct(quote.bid, quote.ask)
    if spread is not None and spread > settings.max_spread_pct:
        return Refusal(Rule.MAX_SPREAD_PCT, f"spread {spread:.3f}% > {settings.max_spread_pct}%")
    slippage = book_slippage_pct(quote.book, side, amount)
    if slippage is not None and slippage > settings.max_slippage_pct:
        cap = settings.max_slippage_pct
        base = symbol.split("/")[0]
        holds = (f"the book holds {book_fill_within(quote.book, side, amount, cap):.6g} {base}"
                 f" of the {amount:.6g} {base} wanted within the {cap:g}% slippage cap")
        if math.isinf(slippage):
            return Refusal(Rule.MAX_SLIPPAGE_PCT, holds)
        return Refusal(Rule.MAX_SLIPPAGE_PCT, f"walking the book costs {slippage:.3f}% > {cap:g}%:"
                                              f" {holds}")
    return None


def _check_target(
    settings: Settings, amount: float, price: float, target: float, quote: Quote
) -> Refusal | None:
    """Refuse an entry whose target lies within MIN_TARGET_FEE_MULTIPLE round trips' costs."""
    multiple = settings.min_target_fee_multiple
    if multiple <= 0:
        return None
    slippage = round_trip_cost_pct(quote.bid, quote.ask, quote.book, amount)
    need = min_target_distance_pct(multiple, settings.taker_fee, slippage)
    distance = (target / price - 1) * 100
    if distance >= need:
        return None
    fees = round_trip_fees_pct(settings.taker_fee)
    return Refusal(
        Rule.MIN_TARGET_FEE_MULTIPLE,
        f"target {distance:.3f}% above the entry is within {multiple:g} x the round trip's "
        f"costs {fees + slippage:.3f}% (fees {fees:.3f}%, half the spread and the book "
        f"{slippage:.3f}%) = {need:.3f}%",
    )
