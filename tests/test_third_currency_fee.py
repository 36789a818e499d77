"""A fee paid in a third currency is booked at its value in the quote currency.

Binance with its BNB discount on charges a BTC/USDT fill's fee in BNB: ccxt reads its
recorded spot fill with ``commissionAsset`` BNB as ``{cost, currency: 'BNB'}``. The exchange
here is the paper venue charging every fill's fee that way, at the BNB price its own BNB/USDT
ticker shows; the loop, the store and the books are the real ones. The figures expected are
worked out by hand from the fill's price and the venue's rate, not by the booking code.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.booking import book_new_fills
from bot.engine.schema import Action, ActionType, Decision
from bot.loop import heartbeat, run_iteration
from bot.model.fill import Fill
from bot.model.paper import FillState, OrderState
from bot.venue.paper import PaperVenue
from bot.venue.paper_model import split_symbol
from db.heartbeat import heartbeat as heartbeat_row
from db.models import Trade
from db.stats import risk_figures
from tests.ccxt_replay import case, make_exchange, replay_fetch
from tests.conftest import candle_file
from tests.loop_harness import ScriptedEngine, make_runtime, step

BTC = "BTC/USDT"
BNB_PRICE = 600.0  # USDT, the venue's BNB/USDT last price
BUY = Decision(actions=[Action(action=ActionType.BUY, symbol=BTC, size=0.05, reason="bnb fee")])


class BnbFeeVenue(PaperVenue):
    """An exchange that charges every fill's fee in BNB, as binance does with its BNB
    discount on: the fee's USDT value at the BNB price, paid from a BNB balance."""

    bnb_ticker = True  # whether it lists BNB/USDT

    def _fill(self, order: OrderState, price: float, amount: float, role: str) -> FillState:
        fill = super()._fill(order, price, amount, role)
        _, quote = split_symbol(order.symbol)
        self.balances[quote][0] += fill.fee  # the USDT fee given back, taken in BNB
        fill.fee, fill.fee_currency = fill.fee / BNB_PRICE, "BNB"
        self.balances.setdefault("BNB", [1.0, 0.0])[0] -= fill.fee
        return fill

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        if symbol == "BNB/USDT" and self.bnb_ticker:
            return {"symbol": symbol, "last": BNB_PRICE, "bid": BNB_PRICE, "ask": BNB_PRICE}
        return super().fetch_ticker(symbol)  # BNB/USDT unlisted: the venue's own refusal


class UnpricedBnbFeeVenue(BnbFeeVenue):
    bnb_ticker = False


def test_binance_reports_a_bnb_fee_in_bnb() -> None:
    """The fill shape the booking meets: ccxt's own parse of binance's recorded spot fill,
    its commission taken in BNB."""
    recorded = case("binance", "fetchMyTrades", "Spot private trade")
    recorded["httpResponse"][0].update(commission="0.00002321", commissionAsset="BNB")
    exchange = make_exchange("binance")
    replay_fetch(exchange, recorded["httpResponse"])
    fill = Fill.from_venue(exchange.fetch_my_trades("LTC/USDT", None, 1)[0], None)
    assert (fill.fee_cost, fill.fee_currency) == (0.00002321, "BNB")
    assert fill.cash_moved("USDT") == pytest.approx(13.926)  # no USDT went to the fee
    assert fill.held_change() == 0.2  # nor any LTC


def test_a_fee_paid_in_bnb_is_booked_at_its_usdt_value_once(sqlite_url) -> None:
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], ScriptedEngine([BUY]),
                      venue_class=BnbFeeVenue)
    step(rt, 2)  # the buy is placed and filled, then its fill is booked
    assert isinstance(rt.venue, BnbFeeVenue)
    with rt.db() as db:
        (buy,) = db.scalars(select(Trade)).all()
        figures = risk_figures(db, rt.session_id)
    usdt_fee = buy.price * 0.05 * rt.venue.taker_fee  # by hand: what the fee is worth
    assert rt.venue.balances["BNB"][0] == pytest.approx(1.0 - usdt_fee / BNB_PRICE)
    assert buy.fee == pytest.approx(usdt_fee, rel=1e-9)
    assert figures is not None and figures.total_fees == pytest.approx(usdt_fee, rel=1e-9)
    assert rt.book.quantity(BTC) == 0.05  # no BTC went to the fee
    assert book_new_fills(rt) == 0  # the next sync sees the fill booked
    with rt.db() as db:
        assert len(db.scalars(select(Trade)).all()) == 1


def test_a_bnb_fee_with_no_price_known_is_booked_at_nothing_and_said(sqlite_url) -> None:
    """No BNB/USDT on the venue: the fill is booked (the books follow the account), its fee
    not as if the BNB were USDT, and the heartbeat names the fee left out."""
    rt = make_runtime(sqlite_url, [candle_file("BTC_USDT-5m.csv")], ScriptedEngine([BUY]),
                      venue_class=UnpricedBnbFeeVenue)
    step(rt, 1)  # the buy is placed and filled
    run_iteration(rt)  # its fill is booked
    heartbeat(rt)
    with rt.db() as db:
        (buy,) = db.scalars(select(Trade)).all()
        beat = heartbeat_row(db, rt.settings.bot_name)
    assert buy.quantity == 0.05 and buy.fee == 0.0
    fee_bnb = buy.price * 0.05 * rt.venue.taker_fee / BNB_PRICE
    assert beat is not None and beat["last_error"] is not None
    assert "BNB" in beat["last_error"] and buy.trade_id in beat["last_error"]
    assert f"{fee_bnb:.8g}" in beat["last_error"]
    assert len(rt.errors) == 1  # and nothing else went wrong
