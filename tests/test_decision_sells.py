"""SELLs of one decision sell together no more than is held, on the real loop.

A decision's fills are booked at the next iteration, so each of its SELLs is judged
against the same position: on a shared account, what a second SELL takes beyond our
position is another bot's coins.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.engine.schema import ActionType, Decision
from bot.venue.paper import PaperVenue
from db.models import Trade
from tests.test_decision_caps import act, outcomes
from tests.test_shared_account import iterate, two_bots

BTC = "BTC/USDT"


def test_sells_of_one_decision_sell_no_more_than_is_held_on_a_shared_account(
        db_url) -> None:
    """Bot ``default`` holds 0.05 BTC, bot ``x`` 0.02 BTC on the same account. Two SELLs of
    0.03 in one decision of ``default`` are 0.06: the second asks for more than the 0.02
    left and is rejected, so ``default`` sells 0.03 and ``x``'s 0.02 stay on the venue."""
    default, x = two_bots(db_url, PaperVenue)
    iterate(default, x)
    iterate(default, x)  # both entries filled and booked
    assert default.book.quantity(BTC) == pytest.approx(0.05)
    assert x.book.quantity(BTC) == pytest.approx(0.02)
    default.engine.decisions.append(Decision(actions=[
        act(ActionType.SELL, symbol=BTC, size=0.03), act(ActionType.SELL, symbol=BTC, size=0.03)]))
    iterate(default, x)
    iterate(default, x)
    sells = next(o for o in outcomes(default) if any(a["status"] == "exiting" for a in o))
    assert sorted(a["status"] for a in sells) == ["exiting", "invalid"], sells
    refused = next(a for a in sells if a["status"] == "invalid")
    assert "exceeds" in refused["reason"] and refused["action"]["size"] == 0.03, refused
    with default.db() as db:
        sold = sum(t.quantity for t in db.scalars(select(Trade).where(Trade.action == "SELL")))
    assert sold == pytest.approx(0.03)
    assert default.book.quantity(BTC) == pytest.approx(0.02)
    assert default.venue.balances["BTC"][0] == pytest.approx(0.02 + 0.02)  # ours and x's
