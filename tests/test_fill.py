"""A venue's fill read into the one shape the bot books (bot/model/fill.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.model.fill import Fill
from bot.model.vocabulary import Side

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def test_a_ccxt_fill_reads_into_its_fields() -> None:
    fill = Fill.from_venue({"id": 17, "order": 42, "symbol": "ETH/BTC", "side": "sell",
                            "amount": "2", "price": "0.05", "cost": 0.1, "timestamp": 1_709_294_400_000,
                            "takerOrMaker": "taker", "fee": {"cost": 0.01, "currency": "ETH"}},
                           "td-l000001")
    assert (fill.trade_id, fill.order_id, fill.side, fill.amount, fill.price) == (
        "17", "42", Side.SELL, 2.0, 0.05)
    assert fill.time(NOW) == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert fill.fee_in_quote() == 0.01 * 0.05  # paid in the base currency: valued at the price
    assert fill.cash_moved("BTC") == 0.1  # a sell brings its cost in; the fee was not in BTC
    assert fill.held_change() == 2.01  # the 2 ETH sold and the 0.01 ETH of its fee left us


def test_a_fill_that_says_little_takes_the_defaults() -> None:
    fill = Fill.from_venue({"id": "a1", "symbol": "BTC/USDT", "side": "buy", "amount": 0.5,
                            "price": 100.0, "fee": None}, None)
    assert fill.order_id is None and fill.client_order_id is None and fill.liquidity is None
    assert fill.time(NOW) == NOW  # a venue that does not say when: the sync's clock
    assert fill.fee_in_quote() == 0.0
    assert fill.cash_moved("USDT") == -50.0  # no cost given: price times amount, paid out
    assert fill.held_change() == 0.5  # no fee in the coin: all of it is ours
