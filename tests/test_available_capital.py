"""AVAILABLE_CAPITAL: a bot's own share of an exchange account shared with other bots.

Several bots may trade one account (each books only its own orders), but each took the
account's whole quote balance for its cash: its equity, the sizes it was offered and its
entries counted the other bots' money, and moved when they traded. With
``AVAILABLE_CAPITAL`` the bot's cash is that capital plus its own realized PnL net of fees,
less what its open positions cost, never more than the account holds; an entry beyond it is
refused. The paper venue, the loop and the store are real; "the other bots" are cash on the
same paper account that this bot never traded.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.config import ConfigError, load_settings
from bot.engine.schema import Action, ActionType, Decision
from db.models import Trade
from tests.crafted import flat_then
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.test_plans import LOOSE, SYMBOL
from tests.test_risk import last_outcome

ACCOUNT = 10_000.0  # the shared account's USDT; this bot's share is CAPITAL
CAPITAL = 1_000.0
FEE = 0.001


def _buy(value: float) -> Decision:
    return Decision(actions=[Action(action=ActionType.BUY, symbol=SYMBOL, quote_value=value,
                                    stop=90.0, target=130.0, reason="share")])


def _sell() -> Decision:
    return Decision(actions=[Action(action=ActionType.SELL, symbol=SYMBOL, reason="take")])


def _bot(url, tmp_path, closes, decisions, **settings):
    path = flat_then(tmp_path / "TST_USDT-5m.csv", closes)
    engine = ScriptedEngine(decisions)
    rt = make_runtime(url, [path], engine, STARTING_BALANCE=ACCOUNT,
                      TAKER_FEE=FEE, MAKER_FEE=FEE, **{**LOOSE, **settings})
    return rt, engine


def test_the_bot_counts_its_own_capital_not_the_shared_account(sqlite_url, tmp_path) -> None:
    rt, engine = _bot(sqlite_url, tmp_path, [100.0] * 6, [], AVAILABLE_CAPITAL=CAPITAL)
    step(rt, 1)
    assert engine.contexts[-1].quote_balance == pytest.approx(CAPITAL)
    assert engine.contexts[-1].equity == pytest.approx(CAPITAL)
    rt.venue.balances["USDT"][0] -= 6_000.0  # another bot buys with its share
    step(rt, 1)
    assert engine.contexts[-1].equity == pytest.approx(CAPITAL)


def test_an_entry_beyond_its_own_cash_is_refused(sqlite_url, tmp_path) -> None:
    rt, _ = _bot(sqlite_url, tmp_path, [100.0] * 6, [_buy(1_500.0)], AVAILABLE_CAPITAL=CAPITAL,
                 MAX_ORDER_VALUE=5_000, MAX_TOTAL_EXPOSURE=20_000)
    step(rt, 1)
    outcome = last_outcome(rt)
    step(rt, 1)
    assert rt.book.quantity(SYMBOL) == 0.0
    assert outcome["status"] == "refused" and outcome["rule"] == "available_capital", outcome
    assert "1,000" in outcome["detail"] or "1000" in outcome["detail"], outcome


def test_its_cash_follows_its_own_fills(sqlite_url, tmp_path) -> None:
    """Bought 500 worth near 100, sold near 110: the cash is the capital plus what its sell
    brought less what its buy cost, both fees paid (summed from its fills, the reference);
    what the other bots spend meanwhile moves nothing of it."""
    closes = [100.0] * 2 + [110.0] * 8
    rt, engine = _bot(sqlite_url, tmp_path, closes, [_buy(500.0), *[Decision()] * 3, _sell()],
                      AVAILABLE_CAPITAL=CAPITAL)
    step(rt, 2)
    held = rt.book.quantity(SYMBOL)
    assert held > 0
    assert engine.contexts[-1].quote_balance == pytest.approx(CAPITAL - _spent(rt))
    rt.venue.balances["USDT"][0] -= 4_000.0  # another bot buys with its share
    step(rt, 5)
    assert rt.book.quantity(SYMBOL) == 0.0
    with rt.db() as db:
        sells = db.scalars(select(Trade).where(Trade.action == "SELL")).all()
    assert sells and all(t.price > 105 for t in sells)  # a gain to count
    sold = engine.contexts[-1]
    assert sold.quote_balance == pytest.approx(CAPITAL - _spent(rt), rel=1e-9)
    assert sold.quote_balance > CAPITAL
    assert sold.equity == pytest.approx(sold.quote_balance)


def _spent(rt) -> float:
    """What the bot's own fills took from its cash: buys' cost, less sells' proceeds, plus
    every fee (all in USDT on the paper venue)."""
    with rt.db() as db:
        trades = db.scalars(select(Trade)).all()
    return sum(t.quantity * t.price * (1 if t.action == "BUY" else -1) + t.fee for t in trades)


def test_never_more_than_the_account_holds(sqlite_url, tmp_path) -> None:
    rt, engine = _bot(sqlite_url, tmp_path, [100.0] * 6, [], AVAILABLE_CAPITAL=CAPITAL)
    rt.venue.balances["USDT"][0] = 300.0  # the other bots overspent the account
    step(rt, 1)
    assert engine.contexts[-1].quote_balance == pytest.approx(300.0)


def test_without_it_the_bot_counts_the_whole_account(sqlite_url, tmp_path) -> None:
    rt, engine = _bot(sqlite_url, tmp_path, [100.0] * 6, [])
    step(rt, 1)
    assert engine.contexts[-1].quote_balance == pytest.approx(ACCOUNT)


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_a_bad_capital_is_named(value: str) -> None:
    with pytest.raises(ConfigError, match="AVAILABLE_CAPITAL"):
        load_settings(AVAILABLE_CAPITAL=value)
