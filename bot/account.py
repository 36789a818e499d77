"""Account figures the decision step and the risk layer share."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import datetime

from bot.booking import entry_of, fetch_window, owning_order, unbooked_fills
from bot.model.vocabulary import LIVE_ORDER, PlanStatus
from bot.positions import DUST, PositionBook
from bot.risk import RiskState
from bot.runtime import Runtime
from bot.venue.base import VenueError
from db.models import TradePlan
from db.plans import active_plans
from db.stats import carried_unrealized, net_realized, risk_figures


def quote_currency(rt: Runtime) -> str:
    return rt.settings.symbols[0].split("/")[1]


def quote_balance(rt: Runtime) -> float:
    """The quote currency the bot trades with: the account's, or on an account it shares
    with other bots (``AVAILABLE_CAPITAL``) its own share: the capital plus its own realized
    PnL net of fees, less what its open positions cost, never more than the account holds.
    A fee paid in a third currency (BNB) counts against it, though the quote paid none."""
    balance = rt.call(rt.venue.fetch_balance)
    total = float((balance.get("total") or {}).get(quote_currency(rt)) or 0.0)
    capital = rt.settings.available_capital
    if capital is None:
        return total
    with rt.db() as db:
        realized = net_realized(db, rt.session_ids(db))
    cost = sum(h.quantity * h.avg_price for h in rt.book.open_items().values())
    return max(0.0, min(total, capital + realized - cost))


def start_of_day_equity(rt: Runtime, rollover: datetime) -> float:
    """The account at the ``rollover`` clock: cash plus holdings valued at the market then.

    Our fills the sync has not booked yet count by their own time, whatever the venue's
    balance already shows: one before the rollover is in the holdings (the day before
    ended holding it), one at or after it is the new day's, so its cash is given back.
    The bot's own share of the account (``AVAILABLE_CAPITAL``) counts booked fills only:
    there one before the rollover moves the cash too, and one after it moves nothing.
    """
    cash = quote_balance(rt)
    own_share = rt.settings.available_capital is not None
    book = PositionBook()
    book.holdings = {s: copy.copy(h) for s, h in rt.book.holdings.items()}
    window, fresh = fetch_window(rt, rollover)
    if fresh:
        with rt.db() as db:
            for fill in unbooked_fills(rt, db, window, fresh):
                if owning_order(rt, db, fill) is None:
                    continue  # not ours: in neither our book nor our day
                if fill.time(rollover) >= rollover:
                    if not own_share:
                        cash -= fill.cash_moved(quote_currency(rt))
                else:
                    book.apply(fill.symbol, fill.side, fill.held_change(), fill.price)
                    if own_share:
                        cash += fill.cash_moved(quote_currency(rt))
    return cash + sum(h.quantity * _market_price(rt, symbol, h.avg_price)
                      for symbol, h in book.open_items().items())



def _market_price(rt: Runtime, symbol: str, fallback: float) -> float:
    """The venue's last price now; the last quote seen, or ``fallback``, when it has none."""
    try:
        last = rt.call(rt.venue.fetch_ticker, symbol).get("last")
    except VenueError as exc:
        rt.note_error(f"price of {symbol} at the rollover", exc)
        last = None
    if last is not None:
        return float(last)
    quote = rt.quotes.get(symbol)
    return quote.last if quote else fallback


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


def _entries_not_held(db, plans: list[TradePlan]) -> dict[str, float]:
    """The value of what the plans' entries may still buy beyond their booked fills, by
    symbol: an entry not booked yet (one placed earlier in the same decision fills at once
    but is booked at the next iteration) and the rest of a limit entry still resting. The
    caps judge an entry against these as against a holding: each may become one."""
    committed: dict[str, float] = {}
    for plan in plans:
        rest = plan.size - plan.filled_size
        if rest <= DUST:
            continue
        if plan.status != PlanStatus.PENDING:
            entry = entry_of(db, plan) if plan.status == PlanStatus.OPEN else None
            if entry is None or entry.status not in LIVE_ORDER:
                continue
        committed[plan.symbol] = committed.get(plan.symbol, 0.0) + rest * plan.entry_price
    return committed


def _committed(held: dict[str, float], entries: dict[str, float]) -> dict[str, float]:
    return {symbol: held.get(symbol, 0.0) + entries.get(symbol, 0.0)
            for symbol in held.keys() | entries.keys()}


def risk_state(rt: Runtime, db, equity: float, cash: float) -> RiskState:
    """The account as the risk layer judges an entry. The active plans are the ones the
    plans step read, when no plan was written since (``Store.active_plans``; the
    decision's earlier actions are committed before an entry is judged)."""
    now = rt.now()
    cache = risk_figures(db, rt.session_id)
    realized = (cache.gross_pnl - cache.total_fees - cache.total_llm_cost) if cache else 0.0
    # today's: the unrealized PnL the holdings carried into the day had is yesterday's
    today = realized + unrealized_pnl(rt) - carried_unrealized(db, rt.session_id)
    active = rt.store.active_plans
    if active is None:
        active = active_plans(db, rt.session_id)
    plans = Counter(p.symbol for p in active)
    entries = _entries_not_held(db, active)
    assert rt.breaker is not None
    return RiskState(
        now=now, equity=equity,
        start_of_day_equity=cache.start_of_day_equity if cache else equity,
        session_net_pnl=today,
        llm_cost=cache.total_llm_cost if cache else 0.0,
        exposure_by_symbol=_committed(exposure_by_symbol(rt), entries),
        active_plans_by_symbol=dict(plans),
        breaker_open=rt.breaker.is_open(now), paused=rt.paused,
        # the entries placed and not yet booked will spend theirs
        cash=None if rt.settings.available_capital is None else cash - sum(entries.values()),
    )
