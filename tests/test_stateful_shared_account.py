"""Two bots on one exchange account, each with or without its own AVAILABLE_CAPITAL, in the
whole-system stateful machine (``tests/ledger_machine.py``).

The machine interleaves the two bots' iterations, engine actions, commands (close,
close-all, cancel, stop and the rest, addressed to either, and cancels of the other's
orders), crashes and restarts of either, venue faults and midnights, over ONE paper venue
object. Among its invariants, each judged against a reference folded in the test from the
venue's fills (never the production arithmetic):

* ``own_coins_only``: no bot's fills ever sell more than its own fills bought (what the
  account holds beyond a bot's own coins is the other bot's, and never goes negative);
* ``own_orders_only``, ``own_fills_only``, ``own_orders_booked``, ``cancel_own_only``: a
  bot creates, cancels and books only orders and fills of its own prefix;
* ``other_bot_untouched``: while one bot iterates, carries out its commands (a close-all
  among them) or crashes and restarts, the other's orders and fills on the venue, its book,
  its orders, plans and trades stay as they were;
* ``cash_of_own_fills``: with AVAILABLE_CAPITAL, the cash each decision is shown is the
  capital plus its own booked fills' sells less their buys and fees, capped by the account;
* ``book_equals_fills``, ``positions_equal_fills``, ``fill_booked``: each bot's position is
  the sum of its own fills.

Here the bots have capitals (one of them, or both): the capital's refusals and the cash
figure come into play, which the ledger test (no capital) leaves out. Bounded as that test
is: a derandomized set of examples plus a short random budget, without shrinking.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, run_state_machine_as_test

from tests.ledger_machine import LedgerMachine, machine_for
from tests.test_stateful_ledger import replay

FIXED = settings(max_examples=3, stateful_step_count=25, deadline=None, database=None,
                 derandomize=True, phases=[Phase.generate],
                 suppress_health_check=list(HealthCheck))
RANDOM = settings(FIXED, max_examples=1, derandomize=False)
# alpha's share runs out after a few entries of up to 200; beta's lasts longer
CAPITALS = {"alpha only": {"alpha": 700.0}, "both": {"alpha": 700.0, "beta": 2_500.0}}


def both_holding(url: str, capitals: dict[str, float]) -> type[LedgerMachine]:
    """The machine whose examples start with both bots holding coins on the account, so
    that each exit, close, close-all and stop that follows has the other's coins beside
    its own to take by mistake (from a flat start few sequences of this length get both to
    hold at once)."""

    class BothHolding(machine_for(url, capitals=capitals)):  # type: ignore[misc]
        @initialize(alpha=st.sampled_from([60.0, 150.0]), beta=st.sampled_from([60.0, 199.0]))
        def both_buy(self, alpha: float, beta: float) -> None:
            self.engine_action("alpha", "buy_market", alpha, 0.5, -0.003, 0)
            self.engine_action("beta", "buy_market", beta, 0.5, -0.003, 0)
            self.step(1)
            self.step(1)

    return BothHolding


@pytest.mark.slow
@pytest.mark.parametrize("capitals", CAPITALS.values(), ids=CAPITALS.keys())
def test_bots_sharing_an_account_keep_to_their_own(db_url: str,
                                                   capitals: dict[str, float]) -> None:
    machine = both_holding(db_url, capitals)
    run_state_machine_as_test(machine, settings=FIXED)
    run_state_machine_as_test(machine, settings=RANDOM)


# --- the machine's minimal examples ----------------------------------------------------------


def test_a_day_starts_from_the_bots_own_cash_with_a_fill_booked_after_midnight(
        db_url: str) -> None:
    """Alpha (Asia/Tokyo, AVAILABLE_CAPITAL 700) buys 150 worth at 23:55; the fill is booked
    at 00:00, after the day rolled. Its own cash counts only booked fills, so at the rollover
    it still held the 150 the buy cost, and the coins bought were counted beside it: the
    new day started at 849, not 699."""
    replay(db_url, "start_of_day_equity", [
        lambda s: s.step(3), lambda s: s.step(1), lambda s: s.step(1),
        lambda s: s.engine_action("alpha", "buy_market", 150.0, 0.5, -0.003, 0),
        lambda s: s.step(1), lambda s: s.step(1),
    ], capitals={"alpha": 700.0})
