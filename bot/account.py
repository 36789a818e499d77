"""Account figures the decision step and the risk layer share."""

from __future__ import annotations

from collections import Counter

from bot.risk import RiskState
from bot.runtime import Runtime
from db.plans import active_plans
from db.stats import risk_figures


def quote_currency(rt: Runtime) -> str:
    return rt.settings.symbols[0].split("/")[1]


def quote_balance(rt: Runtime) -> float:
    balance = rt.call(rt.venue.fetch_balance)
    total = balance.get("total") or {}
    return float(total.get(quote_currency(rt)) or 0.0)


def exposure_by_symbol(rt: Runtime) -> dict[str, float]:
    exposure = {}
    for symbol, holding in rt.book.open_items().items():
        quote = rt.quotes.get(symbol)
        price = quote.last if quote else holding.avg_price
        exposure[symbol] = abs(holding.quantity) * price
    return exposure


def unrealized_pnl(rt: Runtime) -> float:
    total = 0.0
    for symbol, holding in rt.book.open_items().items():
        quote = rt.quotes.get(symbol)
        if quote is not None:
            total += (quote.last - holding.avg_price) * holding.quantity
    return total


def risk_state(rt: Runtime, db, equity: float) -> RiskState:
    """The account as the risk layer judges an entry. The active plans are the ones the
    plans step read, when no plan was written since (``StoreMirror.active_plans``; the
    decision's earlier actions are committed before an entry is judged)."""
    now = rt.now()
    cache = risk_figures(db, rt.session_id)
    realized = (cache.gross_pnl - cache.total_fees - cache.total_llm_cost) if cache else 0.0
    active = rt.mirror.active_plans
    if active is None:
        active = active_plans(db, rt.session_ids(db))
    plans = Counter(p.symbol for p in active)
    assert rt.breaker is not None
    return RiskState(
        now=now, equity=equity,
        start_of_day_equity=cache.start_of_day_equity if cache else equity,
        session_net_pnl=realized + unrealized_pnl(rt),
        llm_cost=cache.total_llm_cost if cache else 0.0,
        exposure_by_symbol=exposure_by_symbol(rt), active_plans_by_symbol=dict(plans),
        breaker_open=rt.breaker.is_open(now), paused=rt.paused,
    )
