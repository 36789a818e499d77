"""A fee paid in the coin bought is not held: the books hold what the fill left us.

Bybit's spot account charges a buy's fee in the base currency (ccxt's recorded fill:
0.000336 BTC bought, fee 3.36e-07 BTC at a rate of 0.001), so 0.05 BTC bought at a 0.1%
taker fee leaves 0.04995 BTC in the account. The exchange here is the paper venue
charging a buy's fee that way; the loop, the store and the books are the real ones. The
position, the plan's exit and the realized PnL are checked against figures worked out by
hand from the fills' prices, not by the booking code.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.engine.schema import Action, ActionType, Decision
from bot.model.paper import FillState, OrderState
from bot.venue.paper import PaperVenue
from bot.venue.paper_model import split_symbol
from db.models import Trade, TradePlan
from tests.conftest import candle_file
from tests.loop_harness import ScriptedEngine, make_runtime, step

BTC = "BTC/USDT"
RATE = 0.001  # the paper venue's taker fee


class BaseFeeVenue(PaperVenue):
    """An exchange that charges a buy's fee in the coin bought, as Bybit's spot does."""

    def _fill(self, order: OrderState, price: float, amount: float, role: str) -> FillState:
        fill = super()._fill(order, price, amount, role)
        if order.side == "buy":
            base, quote = split_symbol(order.symbol)
            self.balances[quote][0] += fill.fee  # the quote fee given back, taken in base
            fill.fee, fill.fee_currency = amount * RATE, base
            self.balances[base][0] -= fill.fee
        return fill


def test_a_buy_whose_fee_is_paid_in_the_base_currency_holds_and_exits_the_rest(
        sqlite_url) -> None:
    close = Decision(actions=[Action(action=ActionType.CLOSE_PLAN, plan_id=1, reason="out")])
    engine = ScriptedEngine([Decision(actions=[Action(
        action=ActionType.BUY, symbol=BTC, size=0.05, reason="base fee test")]), Decision(),
        close])
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], engine,
                      venue_class=BaseFeeVenue)
    step(rt, 2)
    held = 0.05 * (1 - RATE)  # 0.04995 BTC: the fee's 0.00005 BTC never reached us
    assert rt.venue.balances["BTC"][0] == pytest.approx(held, rel=1e-12)
    assert rt.book.quantity(BTC) == pytest.approx(held, rel=1e-12)
    step(rt, 3)  # the engine closes the plan; the exit's fill is booked
    with rt.db() as db:
        buy, sell = db.scalars(select(Trade).order_by(Trade.id)).all()
        plan = db.get(TradePlan, 1)
        assert plan is not None
        status = plan.status
    assert status == "closed"
    assert rt.venue.balances["BTC"][0] == pytest.approx(0.0, abs=1e-12)  # all of it sold
    assert rt.book.quantity(BTC) == 0.0
    assert sell.quantity == pytest.approx(held, rel=1e-12)
    # what the round trip did to the USDT, by hand: the buy paid 0.05 BTC at its price
    # (its fee came out of the coins), the sell got 0.04995 BTC at its own less 0.1%
    cash = sell.price * held * (1 - RATE) - buy.price * 0.05
    assert rt.venue.balances["USDT"][0] - 10_000 == pytest.approx(cash, rel=1e-9)
    booked = sum(t.realized_pnl - t.fee for t in (buy, sell))
    assert booked == pytest.approx(cash, rel=1e-9)
