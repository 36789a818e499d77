"""A decision of several actions is held to the caps as a whole, on the real loop.

The caps (MAX_TOTAL_EXPOSURE, MAX_OPEN_POSITIONS) judge an entry against what the account
holds and what it has already committed to buy: an entry placed earlier in the same
decision, whose fill the fill sync books only at the next iteration, and a limit entry
still resting on the venue.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.engine.schema import Action, ActionType, Decision
from bot.runtime import Runtime
from db.models import LLMTrace, Order
from tests.conftest import candle_file
from tests.loop_harness import ScriptedEngine, make_runtime, step

ETH, LTC = "ETH/BTC", "LTC/BTC"
# BTC-quoted pairs: caps are in BTC, so the default 10 (quote) minimum notional is lifted
BTC_QUOTED = {"MIN_NOTIONAL": 0.001, "MAX_SPREAD_PCT": 5, "MAX_SLIPPAGE_PCT": 5,
              "MIN_TARGET_FEE_MULTIPLE": 0}


def act(kind: ActionType, **fields: object) -> Action:
    return Action(action=kind, reason="caps test", **fields)


def outcomes(rt: Runtime) -> list[list[dict]]:
    """The outcomes of each of the run's decisions, oldest first."""
    with rt.db() as db:
        traces = db.scalars(select(LLMTrace).where(LLMTrace.session_id == rt.session_id)
                            .order_by(LLMTrace.id))
        return [json.loads(t.execution_result).get("actions", []) for t in traces
                if t.execution_result]


def entry_amounts(rt: Runtime) -> dict[str, float]:
    with rt.db() as db:
        return {o.symbol: o.amount for o in db.scalars(select(Order).where(
            Order.purpose == "entry", Order.status.not_in(("rejected", "failed"))))}


def btc_pairs(db_url: str, engine: ScriptedEngine, **settings: object) -> Runtime:
    """A run on two BTC-quoted pairs, its balance of 10,000 in BTC."""
    return make_runtime(db_url, [candle_file("ETH_BTC-5m.csv"), candle_file("LTC_BTC-5m.csv")],
                        engine, **(BTC_QUOTED | settings))


def test_two_entries_of_one_decision_open_no_more_positions_than_the_cap(sqlite_url) -> None:
    """MAX_OPEN_POSITIONS 1: the decision's first entry takes the one position; the second,
    on another symbol, is refused by the cap, though the first's fill is not booked yet."""
    both = Decision(actions=[act(ActionType.BUY, symbol=ETH, size=1.0),
                             act(ActionType.BUY, symbol=LTC, size=1.0)])
    rt = btc_pairs(sqlite_url, ScriptedEngine([both]), MAX_OPEN_POSITIONS=1)
    step(rt, 2)
    first, second = outcomes(rt)[0]
    assert first["status"] == "placed", first
    assert (second["status"], second.get("rule")) == ("refused", "max_open_positions"), second
    assert entry_amounts(rt) == {ETH: 1.0}
    assert rt.book.quantity(LTC) == 0.0


def test_two_entries_of_one_decision_stay_within_the_total_exposure(sqlite_url) -> None:
    """MAX_TOTAL_EXPOSURE 0.15 BTC: 1 ETH at the ask of about 0.0889 BTC, then 5 LTC at
    about 0.01685 BTC each (0.0843 BTC); 0.0889 + 0.0843 = 0.173 BTC is over the cap, so
    the second entry is refused by it and only the first is bought."""
    both = Decision(actions=[act(ActionType.BUY, symbol=ETH, size=1.0),
                             act(ActionType.BUY, symbol=LTC, size=5.0)])
    rt = btc_pairs(sqlite_url, ScriptedEngine([both]), MAX_TOTAL_EXPOSURE=0.15,
                   MAX_ORDER_VALUE=1)
    step(rt, 2)
    first, second = outcomes(rt)[0]
    assert first["status"] == "placed", first
    assert (second["status"], second.get("rule")) == ("refused", "max_total_exposure"), second
    assert entry_amounts(rt) == {ETH: 1.0}
    assert rt.book.quantity(ETH) == 1.0 and rt.book.quantity(LTC) == 0.0


def test_a_resting_limit_entry_counts_against_the_caps_of_the_next_decision(
        sqlite_url) -> None:
    """A limit entry 5% under the market rests unfilled; the next decision's entry on the
    other symbol would be a second position the cap of 1 does not allow once both fill."""
    rest = Decision(actions=[act(ActionType.BUY, symbol=ETH, size=1.0, order_type="limit",
                                 price=0.085, stop=0.08, target=0.1)])
    other = Decision(actions=[act(ActionType.BUY, symbol=LTC, size=1.0)])
    rt = btc_pairs(sqlite_url, ScriptedEngine([rest, other]), MAX_OPEN_POSITIONS=1)
    step(rt, 2)
    first, second = outcomes(rt)[:2]
    assert first[0]["status"] == "placed" and first[0]["order_status"] == "open", first
    assert rt.book.quantity(ETH) == 0.0  # still resting: no fill booked
    assert (second[0]["status"], second[0].get("rule")) == ("refused", "max_open_positions"), second
