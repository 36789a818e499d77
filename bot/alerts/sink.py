"""The bot's events in words: what the loop's services call, one line each, and what the
operator reads (the bot, symbol, price, size, PnL and PAPER/LIVE mode).

A sink without URLs (no ``NOTIFY_URLS``, or a replay) does nothing and costs a check.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from bot.alerts.delivery import Delivery
from bot.model.events import Event, EventKind
from bot.model.figures import figure
from bot.model.fill import Fill
from bot.model.vocabulary import OrderPurpose, PlanStatus, Side
from db.models import Session, TradePlan

if TYPE_CHECKING:
    from bot.breaker import CircuitBreaker
    from bot.config import Settings
    from bot.model.decision import DecisionContext

# the risk rules whose refusal means a limit of the day was reached (``bot.risk.Rule``)
LIMIT_RULES = {"llm_cost_cap": "the LLM cost cap", "max_daily_loss": "the daily loss limit",
               "max_daily_loss_pct": "the daily loss limit (%)"}


def amount(value: float) -> str:
    return f"{value:,.8g}"


def money(value: float, currency: str = "") -> str:
    return f"{figure(value, sign=True)}{' ' + currency if currency else ''}"


def _closed_words(plan: TradePlan, symbol: str, quote: str,
                  sold: tuple[int, float, float, float]) -> str:
    fills, quantity, value, realized = sold
    return (f"plan {plan.id} closed ({plan.exit_reason or 'exit'}): sold {amount(quantity)} "
            f"{symbol}" + (f" in {fills} fills" if fills > 1 else "")
            + f" at {amount(value / quantity if quantity else 0.0)}, realized PnL "
            f"{money(realized, quote)}")


class EventSink:
    def __init__(self, bot: str = "", mode: str = "PAPER", kinds: frozenset[EventKind] = frozenset(),
                 delivery: Delivery | None = None) -> None:
        self.bot, self.mode, self.kinds, self.delivery = bot, mode, kinds, delivery
        self._limits_told: set[tuple[int, str]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> EventSink:
        urls = settings.notify_url_list
        delivery = Delivery(urls, min_interval=settings.notify_min_interval_seconds,
                            secrets=settings.secret_values()) if urls else None
        return cls(settings.bot_name, settings.trading_mode,
                   frozenset(EventKind(k) for k in settings.notify_events), delivery)

    @property
    def failures(self) -> int:
        return 0 if self.delivery is None else self.delivery.failures

    def wants(self, kind: EventKind) -> bool:
        return self.delivery is not None and kind in self.kinds

    def emit(self, kind: EventKind, text: str | Callable[[], str]) -> None:
        """Queue one event of this bot (``text`` may be a callable: worded only when the
        kind is wanted)."""
        if self.delivery is None or kind not in self.kinds:
            return
        try:
            worded = text if isinstance(text, str) else text()
        except Exception as exc:  # the loop's thread words it: a message lost, never the loop
            self.delivery.lost(f"a {kind} message could not be worded ({type(exc).__name__})")
            return
        self.delivery.submit(Event(kind, self.bot, self.mode, worded))

    def tell(self, event: Event) -> None:
        """Queue an event worded elsewhere (another bot's, for ``bot.alerts.watch``)."""
        if self.delivery is not None and event.kind in self.kinds:
            self.delivery.submit(event)

    def close(self) -> None:
        if self.delivery is not None:
            self.delivery.close()

    # --- the hooks, one call each in the code where it happens

    def fill_booked(self, fill: Fill, realized: float, fee: float, purpose: str | None,
                    plan: TradePlan | None,
                    closed_by: Callable[[], tuple[int, float, float, float]] | None = None,
                    ) -> None:
        """A venue fill was booked: told as a fill, and as its plan's opening or closing.

        ``closed_by``: the plan's fills on this fill's side (count, quantity, value,
        realized PnL), read only when a close is told: a plan sold in parts closes with
        all it sold, not its last fill. ``fee``: the fill's fee in quote, as booked."""
        if self.delivery is None:
            return
        symbol, side, quantity, price = fill.symbol, fill.side, fill.amount, fill.price
        quote = symbol.split("/")[-1]
        self.emit(EventKind.FILL, lambda: (
            f"{'bought' if side is Side.BUY else 'sold'} {amount(quantity)} {symbol} at "
            f"{amount(price)} (fee {figure(fee)} {quote}"
            + (f", realized PnL {money(realized, quote)}" if side is Side.SELL else "") + ")"))
        if plan is None:
            return
        if purpose == OrderPurpose.ENTRY and plan.filled_size <= quantity * (1 + 1e-9):
            self.emit(EventKind.PLAN_OPENED, lambda: (
                f"plan {plan.id} opened: {'long' if plan.side == 'BUY' else 'short'} "
                f"{amount(quantity)} {symbol} at {amount(price)}, stop "
                f"{amount(plan.stop_price)}, target {amount(plan.target_price)}"
                + (f" ({plan.reason})" if plan.reason else "")))
        elif purpose != OrderPurpose.ENTRY and plan.status == PlanStatus.CLOSED:
            self.emit(EventKind.PLAN_CLOSED, lambda: _closed_words(
                plan, symbol, quote, closed_by() if closed_by else (1, quantity,
                                                                     quantity * price, realized)))

    def plan_closed(self, plan: TradePlan, reason: str) -> None:
        """A plan closed without a fill of its own (nothing held, or flattened by a command,
        whose sale is told as its own fill): no exit price to tell, so the entry's is named
        as the entry's."""
        self.emit(EventKind.PLAN_CLOSED, lambda: (
            f"plan {plan.id} on {plan.symbol} closed ({reason}); it entered at "
            f"{amount(plan.entry_price)}"))

    def breaker_changed(self, breaker: CircuitBreaker) -> None:
        if breaker.refusal is not None:
            self.emit(EventKind.BREAKER_TRIPPED, f"the exchange refuses the API key "
                      f"({breaker.refusal}): no new entries until it takes the key again, "
                      "which the bot keeps trying (exits and stops still run)")
        elif breaker.open_until is not None:
            self.emit(EventKind.BREAKER_TRIPPED, f"circuit breaker tripped after "
                      f"{breaker.threshold} venue errors in a row: no new entries for "
                      f"{breaker.cooldown_seconds:g} s (exits and stops still run)")
        else:
            self.emit(EventKind.BREAKER_RECOVERED, "circuit breaker closed: entries allowed again")

    def refused(self, rule: str, detail: str, session_id: int) -> None:
        """An entry was refused: a limit of the day is told once per session."""
        if rule in LIMIT_RULES and (session_id, rule) not in self._limits_told:
            self._limits_told.add((session_id, rule))
            self.emit(EventKind.LIMIT_REACHED,
                      f"{LIMIT_RULES[rule]} reached ({detail}): no new entries today")

    def llm_spent(self, context: DecisionContext, cap: float) -> None:
        """Before a decision: an LLM engine at its cap holds without asking for an entry,
        so the risk layer never refuses one; the cap is told from the session's spend."""
        spent = float(context.stats.get("total_llm_cost") or 0.0)
        if self.delivery is not None and spent >= cap > 0:
            self.refused("llm_cost_cap", f"session LLM cost {spent:.4f} of {cap:g}",
                         context.session_id)

    def command_finished(self, command: str, status: str, result: str | None) -> None:
        kind = EventKind.COMMAND_DONE if status == "done" else EventKind.COMMAND_FAILED
        self.emit(kind, lambda: f"command {command} {status}: {(result or '')[:500]}")

    def day_rolled(self, db_factory, session_id: int, day: date | None) -> None:
        """The session of ``day`` has ended: its figures as the daily summary."""
        if day is None or not self.wants(EventKind.DAILY_SUMMARY):
            return
        with db_factory() as db:
            session = db.get(Session, session_id)
            if session is None:
                return
            start = session.starting_balance
            share = f" ({session.net_pnl / start * 100:+.2f}% of {figure(start)})" if start else ""
            self.emit(EventKind.DAILY_SUMMARY, (
                f"day {day.isoformat()} ended: net PnL {money(session.net_pnl)}{share}, "
                f"{session.total_trades} trade(s), fees {figure(session.total_fees)}, "
                f"LLM cost {session.total_llm_cost:,.4f}"))
