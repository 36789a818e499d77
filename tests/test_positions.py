"""Realized PnL by average cost on scripted fill sequences."""

from __future__ import annotations

import pytest

from bot.positions import PositionBook


def test_average_cost_and_realized_pnl_on_a_scripted_sequence() -> None:
    book = PositionBook()
    assert book.apply("BTC/USDT", "BUY", 1.0, 100.0) == 0.0
    assert book.apply("BTC/USDT", "BUY", 1.0, 110.0) == 0.0
    assert book.holdings["BTC/USDT"].avg_price == pytest.approx(105.0)
    assert book.apply("BTC/USDT", "SELL", 0.5, 120.0) == pytest.approx(7.5)
    assert book.holdings["BTC/USDT"].avg_price == pytest.approx(105.0)
    assert book.apply("BTC/USDT", "SELL", 1.5, 95.0) == pytest.approx(-15.0)
    assert book.quantity("BTC/USDT") == 0.0
    assert book.open_items() == {}


def test_partial_fills_are_each_their_own_step() -> None:
    whole, parts = PositionBook(), PositionBook()
    whole.apply("ETH/BTC", "BUY", 3.0, 0.05)
    for _ in range(3):
        parts.apply("ETH/BTC", "BUY", 1.0, 0.05)
    assert whole.apply("ETH/BTC", "SELL", 3.0, 0.06) == pytest.approx(
        sum(parts.apply("ETH/BTC", "SELL", 1.0, 0.06) for _ in range(3))
    )


def test_selling_through_zero_opens_the_rest_at_the_fill_price() -> None:
    book = PositionBook()
    book.apply("X/Y", "BUY", 1.0, 10.0)
    assert book.apply("X/Y", "SELL", 3.0, 12.0) == pytest.approx(2.0)
    holding = book.holdings["X/Y"]
    assert holding.quantity == pytest.approx(-2.0)
    assert holding.avg_price == pytest.approx(12.0)
    assert book.apply("X/Y", "BUY", 2.0, 11.0) == pytest.approx(2.0)
