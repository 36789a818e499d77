"""Amounts rounded to the market's precision: float noise never costs a whole step.

The books sum fills as floats: 0.1 BTC and 0.7 BTC bought make 0.7999999999999999 held.
ccxt truncates an amount to the market's step (binance BTC/USDT: 0.00001, the recorded
markets), so the plan's exit of what is held would go out as 0.79999 and leave 0.00001 BTC,
worth some 0.3 USDT, under binance's minimum order cost of 5 USDT, which no later order
can sell. Real ccxt classes, the recorded markets and a recorded order response.
"""

from __future__ import annotations

import pytest
from ccxt_replay import FakeTransport, case, fixtures_dir, make_exchange, mount

from bot.venue.ccxt_venue import CcxtVenue


@pytest.mark.parametrize(("amount", "sent"), [
    (0.1 + 0.7, "0.8"),  # 0.7999999999999999: the float's noise, not an amount
    (0.123456789, "0.12345"),  # a real fraction of a step is still cut, never rounded up
])
def test_an_amount_is_cut_to_the_step_without_losing_one_to_float_noise(
        amount: float, sent: str) -> None:
    fixtures_dir()
    recorded = case("binance", "createOrder", "spot +selfTradePrevention +iceberg")
    exchange = make_exchange("binance")
    transport = mount(exchange, FakeTransport((200, recorded["httpResponse"])))
    CcxtVenue(exchange, ("BTC/USDT",)).create_order(
        "BTC/USDT", "market", "sell", amount, None, {"clientOrderId": "td-l000007"})
    (request,) = transport.sent
    assert request.params()["quantity"] == sent
