"""Step 6 (and between loops): obey the operator's commands, oldest first.

Close-all and stop never wait for the engine and are never refused by a risk rule. After a
close-all the bot stays paused until ``resume`` so it does not buy straight back in.

A command is carried out at the market as of now: between iterations a live paper market
stands where the last iteration left it, so it is caught up first (``Venue.catch_up``).
Its times are wall times, like its ``created_at``, also in a replay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from bot.booking import book_new_fills, exit_plan, free_base
from bot.execution import (
    cancel_order,
    found_taken,
    learn_given_up,
    own_order,
    place_order,
    withdraw_unsent,
)
from bot.model.figures import figure
from bot.model.vocabulary import (
    LIVE_ORDER,
    CommandKind,
    CommandStatus,
    OrderPurpose,
    OrderStatus,
    PlanStatus,
    Side,
)
from bot.positions import DUST
from bot.reconcile import reconcile_with_venue
from bot.runtime import Runtime
from bot.venue.base import OrderNotFound, TransientVenueError
from db.commands import (
    ArgumentTooLong,
    check_argument,
    finish_command,
    pending_commands,
    retry_later,
)
from db.heartbeat import keep_paused, keep_stopped
from db.models import Command
from db.orders import live_orders, unbooked_sells
from db.plans import active_plans, revise_plan
from db.retry import described, is_outage

log = logging.getLogger("tradedesk.commands")
URGENT = (CommandKind.CLOSE_ALL, CommandKind.STOP, CommandKind.CLOSE)
TAKES_ARGUMENT = (CommandKind.CLOSE, CommandKind.CANCEL)
BATCH = 200


class CommandError(ValueError):
    """The command cannot be carried out as given; its text becomes the result."""


class PartlyClosed(RuntimeError):
    """A close sold part of what it closes and the market took no more (the paper venue
    fills a market order only within its slippage cap): the command waits, as for a venue
    fault, and sells the rest at the next iteration."""


def obey_commands(rt: Runtime, roll: Callable[[Runtime], None] | None = None) -> int:
    """Work through pending commands; returns how many were handled.

    ``roll``: rolls the session to the day of the market as caught up (``bot.loop`` between
    iterations: a day begun in the sleep is opened before the commands trade in it, so their
    fills book into it and it starts from the account as midnight left it).
    """
    if not rt.store.may_have_commands(rt.settings.bot_name):
        return 0
    try:
        rt.call(rt.venue.catch_up)
    except Exception as exc:  # a stop or close-all is still carried out, on the last market
        rt.note_error("catching the market up for commands", exc)
    if roll is not None:
        roll(rt)
    with rt.db() as db:
        batch = pending_commands(db, BATCH, rt.settings.bot_name)
        for command in batch:
            handler = HANDLERS.get(command.command)
            try:
                if handler is None:
                    raise CommandError(f"unknown command {command.command!r}; known: "
                                       + ", ".join(sorted(HANDLERS)))
                result = handler(rt, db, _argument(command))
                finish_command(db, command, CommandStatus.DONE, result, rt.wall_clock())
                rt.events.command_finished(command.command, CommandStatus.DONE, result)
            except TransientVenueError as exc:  # the venue will answer again: not refused
                db.rollback()
                rt.note_error(f"command {command.id} {command.command}", exc)
                retry_later(db, db.get(Command, command.id), f"a venue fault: {rt.words(exc)}")
            except PartlyClosed as exc:  # the market takes the rest later: not refused
                db.rollback()
                retry_later(db, db.get(Command, command.id), rt.words(exc))
            except Exception as exc:
                db.rollback()
                if is_outage(exc):  # so will the database (locked, restarting): not refused
                    rt.note_error(f"command {command.id} {command.command}", exc)
                    retry_later(db, db.get(Command, command.id),
                                f"a database outage: {described(exc)}")
                    continue
                if not isinstance(exc, CommandError):
                    rt.note_error(f"command {command.id} {command.command}", exc)
                finish_command(db, db.get(Command, command.id), CommandStatus.FAILED,
                               rt.words(exc), rt.wall_clock())
                rt.events.command_finished(command.command, CommandStatus.FAILED, rt.words(exc))
        return len(batch)


def _argument(command: Command) -> str | None:
    """The argument of a command that takes one, refused (never echoed) when oversized.

    A row may be written by anyone with access to the table; the commands that take no
    argument (stop, close-all) ignore it, since they are never refused.
    """
    if command.command not in TAKES_ARGUMENT:
        return None
    try:
        check_argument(command.argument)
    except ArgumentTooLong as exc:
        raise CommandError(f"{command.command} refused: {exc}") from None
    return command.argument


def _set_paused(rt: Runtime, db, paused: bool) -> None:
    """Pause or resume, on the bot's status row too (committed with the command), so a bot
    killed before its next heartbeat starts again as the command left it."""
    rt.paused = paused
    keep_paused(db, rt.settings.bot_name, paused)


def _pause(rt: Runtime, db, argument: str | None) -> str:
    _set_paused(rt, db, True)
    return "paused: no new entries; open plans are still enforced"


def _resume(rt: Runtime, db, argument: str | None) -> str:
    _set_paused(rt, db, False)
    return "resumed"


def _close_symbols(rt: Runtime, db, symbols: set[str] | None, reason: str) -> str:
    """Cancel our orders, close plans and flatten positions for ``symbols`` (None: all)."""
    now = rt.now()
    held_before = {s: h.quantity for s, h in rt.book.open_items().items()}
    canceled = 0
    for symbol in rt.settings.symbols if symbols is None else symbols:
        _cancel_taken_sells(rt, db, symbol, now)
    for order in live_orders(db, rt.session_id):
        if symbols is not None and order.symbol not in symbols:
            continue
        if order.order_id:
            cancel_order(rt, db, order)
            canceled += 1
        elif order.purpose == OrderPurpose.ENTRY:
            # left unsent: the next iteration would send it after its plan is closed here
            # (an exit left unsent is sent, and what it may sell is awaited: _sold_unseen)
            withdraw_unsent(rt, db, order, reason)
            canceled += 1
    plans = [p for p in active_plans(db, rt.session_id) if symbols is None or p.symbol in symbols]
    for plan in plans:
        if plan.status != PlanStatus.CLOSING:  # a closing plan's exit is under way: not sold twice
            exit_plan(rt, db, plan, reason, now)
    db.commit()
    book_new_fills(rt)
    flattened, awaited, dust = [], {}, {}
    for symbol, holding in list(rt.book.open_items().items()):
        if (symbols is None or symbol in symbols) and holding.quantity > 0:
            _cancel_taken_sells(rt, db, symbol, now)  # the exit just given up on, say
            unseen = _sold_unseen(rt, db, symbol, now)
            # what the books hold beyond what the venue has is sold already (a fill the
            # venue shows late): awaited too
            amount = min(holding.quantity - unseen, free_base(rt, symbol))
            awaited[symbol] = holding.quantity - amount
            if amount <= DUST * max(1.0, holding.quantity):
                continue  # an exit already sold it: its fill is awaited, not sold again
            placement = place_order(rt, db, symbol=symbol, side=Side.SELL, amount=amount,
                                    purpose=OrderPurpose.CLOSE, reason=reason)
            if placement.below_minimum:  # no order can sell it: left held, and said
                dust[symbol] = amount
                continue
            if not placement.ok:
                if placement.status == OrderStatus.FAILED:  # the venue's faults outlasted
                    # the send's attempts: it answers again, and the close is tried then
                    raise TransientVenueError(f"could not flatten {symbol}: {placement.error}")
                raise RuntimeError(f"could not flatten {symbol}: {placement.error}")
            flattened.append(symbol)
    book_new_fills(rt)
    db.commit()
    db.expire_all()  # the fill sync revised the plans in its own session: read them afresh
    for plan in active_plans(db, rt.session_id):
        in_scope = symbols is None or plan.symbol in symbols
        if in_scope and plan.status != PlanStatus.CLOSED and rt.book.quantity(plan.symbol) <= 0:
            revise_plan(db, plan, f"closed: {reason}", now, status=PlanStatus.CLOSED,
                        exit_reason=reason, closed_at=now)
            rt.events.plan_closed(plan, reason)
    db.commit()
    reconcile_with_venue(rt)
    left = {s: h.quantity for s, h in rt.book.open_items().items()
            if (symbols is None or s in symbols)
            and h.quantity - awaited.get(s, 0.0) - dust.get(s, 0.0) > DUST * max(1.0, h.quantity)}
    if left:
        if any(quantity < held_before.get(s, 0.0) - DUST for s, quantity in left.items()):
            raise PartlyClosed(f"sold part, the market took no more; still open: {left}")
        raise RuntimeError(f"positions still open after closing: {left}")
    waiting = {s: q for s, q in awaited.items() if q > DUST and rt.book.quantity(s) > DUST}
    return (f"canceled {canceled} order(s), closed {len(plans)} plan(s), "
            f"flattened {len(set(flattened) | {p.symbol for p in plans})} position(s)"
            + (f"; awaiting the fills of exits already sold: {waiting}" if waiting else "")
            + (f"; left held, below the exchange's minimum order: {_amounts(dust)}"
               if dust else ""))


def _amounts(by_symbol: dict[str, float]) -> str:
    return ", ".join(f"{figure(amount)} {symbol.split('/')[0]}"
                     for symbol, amount in by_symbol.items())


def _sold_unseen(rt: Runtime, db, symbol: str, now) -> float:
    """What our sells of ``symbol`` sold on the venue (its own count of each order's fills)
    beyond the fills booked: venues show fills late, and a close that sold those coins
    again would sell what is not ours (another bot's, on a shared account)."""
    since = now - timedelta(minutes=rt.settings.trade_sync_cutoff_minutes)
    sold = 0.0
    for order, booked in unbooked_sells(db, rt.session_id, symbol, since):
        learn_given_up(rt, order)  # taken and filled after all, its fill shown late
        if order.order_id is None:
            # the venue took it (a duplicate client id answered) without saying its id:
            # all of it may have sold
            sold += order.amount - booked if order.status in LIVE_ORDER else 0.0
            continue
        try:
            filled = float(rt.call(rt.venue.fetch_order, order.order_id, symbol)["filled"] or 0)
        except OrderNotFound:
            continue  # gone from the venue: nothing of it is still to come
        sold += max(0.0, filled - booked)
    return sold


def _cancel_taken_sells(rt: Runtime, db, symbol: str, now) -> None:
    """Cancel our sells of ``symbol`` given up after timeouts that the venue took after all
    (they rest there, found by their client id): the close counts what they sold and sells
    the rest itself, instead of selling beside them what they would sell too."""
    since = now - timedelta(minutes=rt.settings.trade_sync_cutoff_minutes)
    for order, _ in unbooked_sells(db, rt.session_id, symbol, since):
        if found_taken(rt, order):
            cancel_order(rt, db, order)


def _close_all(rt: Runtime, db, argument: str | None) -> str:
    # first, committed: a close-all that waits out a fault, or that a kill interrupts (the
    # restarted bot decides before it takes its commands again), buys nothing meanwhile
    _set_paused(rt, db, True)
    db.commit()
    result = _close_symbols(rt, db, None, "close-all by operator")
    return result + "; paused until resume"


def _close(rt: Runtime, db, argument: str | None) -> str:
    symbol = (argument or "").strip().upper()
    if symbol not in rt.settings.symbols:
        raise CommandError(f"close needs a configured symbol, got {argument!r}")
    return _close_symbols(rt, db, {symbol}, f"close {symbol} by operator")


def _cancel(rt: Runtime, db, argument: str | None) -> str:
    order = own_order(rt, db, (argument or "").strip())
    if order is None:
        raise CommandError(f"no order of ours with id {argument!r}")
    if order.status != OrderStatus.OPEN:
        raise CommandError(f"order {argument} is {order.status}, not open")
    return f"order {argument}: {cancel_order(rt, db, order)}"


def _stop(rt: Runtime, db, argument: str | None) -> str:
    canceled = 0
    for order in live_orders(db, rt.session_id):
        if order.purpose != OrderPurpose.ENTRY:
            continue
        if order.order_id:
            cancel_order(rt, db, order)
        else:
            withdraw_unsent(rt, db, order, "stop")
        canceled += 1
    rt.stop_requested = True
    keep_stopped(db, rt.settings.bot_name)
    return f"canceled {canceled} open entry order(s); stopping"


HANDLERS: dict[str, Callable[[Runtime, object, str | None], str]] = {
    CommandKind.PAUSE: _pause,
    CommandKind.RESUME: _resume,
    CommandKind.CLOSE_ALL: _close_all,
    CommandKind.CLOSE: _close,
    CommandKind.CANCEL: _cancel,
    CommandKind.STOP: _stop,
}
