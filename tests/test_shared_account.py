"""Two bots on one exchange account: each books, cancels and sells only its own orders.

The bots are two real runtimes on one database over ONE paper venue object (one account:
both bots' orders and fills are on it, as on a shared exchange account). Their names are
``default`` and ``x``, whose prefixes ``td`` and ``tdx`` start alike. Some exchanges leave
the client order id off their fills, so the fill sync must also tell ours by venue order id.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.actions import execute_action
from bot.config import load_settings
from bot.engine.schema import Action, ActionType, Decision
from bot.fleet import client_id_of
from bot.loop import run_iteration, start
from bot.runtime import Runtime
from bot.steps.commands import obey_commands
from bot.venue.feeds import ReplayFeed
from bot.venue.paper import PaperVenue
from db.commands import enqueue_command
from db.engine import make_engine, session_factory
from db.models import Command, LLMTrace, Order, Session, Trade
from db.paper_store import PaperStore
from tests.conftest import candle_file
from tests.loop_harness import ScriptedEngine

BTC = "BTC/USDT"


class NoClientIdVenue(PaperVenue):
    """An exchange whose fills name the venue order only, not the client order id."""

    def fetch_my_trades(self, symbol=None, since=None, limit=None) -> list[dict[str, Any]]:
        trades = super().fetch_my_trades(symbol, since, limit)
        for trade in trades:
            trade["clientOrderId"] = None
            trade["info"] = {k: v for k, v in trade["info"].items()
                             if k not in ("clientOrderId", "client_order_id")}
            assert client_id_of(trade) is None
        return trades


def buy(size: float, **extra: Any) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol=BTC, reason="shared test",
                                    size=size, **extra)])


def two_bots(db_url: str, venue_class: type[PaperVenue],
             **settings_overrides: object) -> tuple[Runtime, Runtime]:
    feed = ReplayFeed([candle_file("BTC_USDT-5m.csv")])
    factory = session_factory(make_engine(db_url))
    venue = venue_class(feed, PaperStore(factory, "shared"), starting_balance=10_000.0)
    bots = []
    for name, engine in (("default", ScriptedEngine([buy(0.05)])),
                         ("x", ScriptedEngine([buy(0.02)]))):
        settings = load_settings(DATABASE_URL=db_url, SYMBOLS=BTC, TIMEFRAMES="5m,1h",
                                 BOT_NAME=name, **settings_overrides)
        rt = Runtime(settings=settings, db=factory, venue=venue, engine=engine, run_name=name)
        start(rt)
        bots.append(rt)
    return bots[0], bots[1]


def iterate(*bots: Runtime) -> None:
    for rt in bots:
        run_iteration(rt)
        assert not rt.errors, rt.errors
    bots[0].venue.advance()


def obey(rt: Runtime, name: str, argument: str | None = None) -> Command:
    with rt.db() as db:
        command_id = enqueue_command(db, name, argument, bot=rt.settings.bot_name)
    obey_commands(rt)
    with rt.db() as db:
        return db.get(Command, command_id)


def trades_of(rt: Runtime) -> list[Trade]:
    with rt.db() as db:
        return list(db.scalars(select(Trade).join(Session, Trade.session_id == Session.id)
                               .where(Session.run_name == rt.run_name)))


@pytest.mark.parametrize("venue_class", [PaperVenue, NoClientIdVenue])
def test_a_bot_books_cancels_and_sells_only_its_own_on_a_shared_account(
        db_url: str, venue_class: type[PaperVenue]) -> None:
    a, b = two_bots(db_url, venue_class)
    assert (a.prefix, b.prefix) == ("td-", "tdx-")
    iterate(a, b)  # each buys at market: both fills are on the one account
    last = b.quotes[BTC].last
    b.engine.decisions.append(buy(0.01, order_type="limit", price=round(last * 0.8, 1)))
    iterate(a, b)  # each fill sync sees both fills; b rests a limit far below
    iterate(a, b)

    assert a.book.quantity(BTC) == pytest.approx(0.05)
    assert b.book.quantity(BTC) == pytest.approx(0.02)
    assert a.skipped_foreign_fills > 0
    assert {t.client_order_id[:3] for t in trades_of(a)} == {"td-"}
    assert {t.client_order_id[:4] for t in trades_of(b)} == {"tdx-"}
    with a.db() as db:
        resting = db.scalars(select(Order).where(Order.type == "limit")).one()
    assert resting.client_order_id.startswith("tdx-") and resting.status == "open"

    # a's cancel of b's order id is refused, by command and by its engine
    refused = obey(a, "cancel", resting.order_id)
    assert refused.status == "failed" and "no order of ours" in refused.result
    cancel = Action(action=ActionType.CANCEL, symbol=BTC, order_id=resting.order_id,
                    reason="not mine")
    a.engine.decisions.append(Decision(actions=[cancel]))
    iterate(a)  # validation drops it: not among a's open orders
    with a.db() as db:
        trace_id = db.scalars(select(LLMTrace.id).where(LLMTrace.session_id == a.session_id)
                              .order_by(LLMTrace.id.desc())).first()
        # and the action layer refuses it on its own, whoever hands it the order id
        assert execute_action(a, db, cancel, trace_id, None)["rule"] == "unknown_order"
        assert db.get(Order, resting.id).status == "open"
    assert [o["id"] for o in a.venue.fetch_open_orders()] == [resting.order_id]

    # a's close-all sells a's coins only: b's stay on the account and its order rests
    closed = obey(a, "close-all")
    assert closed.status == "done", closed.result
    assert a.book.quantity(BTC) == pytest.approx(0.0)
    assert a.venue.fetch_balance()["total"]["BTC"] == pytest.approx(0.02)
    assert [o["id"] for o in a.venue.fetch_open_orders()] == [resting.order_id]
    iterate(b)
    assert b.book.quantity(BTC) == pytest.approx(0.02)
    assert {t.client_order_id[:4] for t in trades_of(b)} == {"tdx-"}


def test_each_bot_counts_only_its_own_capital_on_a_shared_account(db_url: str) -> None:
    """With AVAILABLE_CAPITAL each bot's cash is its capital less what its own buys cost
    (the reference: its own fills), whatever the other bot spends on the same account;
    without it both counted the account's whole 10,000 as theirs."""
    a, b = two_bots(db_url, PaperVenue, AVAILABLE_CAPITAL=2_000)
    for _ in range(3):
        iterate(a, b)  # each buys at market on the one account, then books its fill
    assert a.book.quantity(BTC) == pytest.approx(0.05)
    assert b.book.quantity(BTC) == pytest.approx(0.02)
    cash = {}
    for rt in (a, b):
        contexts = rt.engine.contexts  # type: ignore[attr-defined]
        own = sum(t.quantity * t.price + t.fee for t in trades_of(rt))  # buys only
        assert contexts[-1].quote_balance == pytest.approx(2_000 - own), rt.run_name
        assert contexts[0].quote_balance == pytest.approx(2_000), rt.run_name
        cash[rt.run_name] = contexts[-1].quote_balance
    account = a.venue.fetch_balance()["total"]["USDT"]
    assert cash["default"] + cash["x"] <= account  # the rest of the account is other money
