"""The Decisions page's reading of an execution result, in words."""

from __future__ import annotations

import json

from views._trace_words import execution


def test_an_exit_that_sent_several_orders_shows_every_one() -> None:
    result = {"actions": [{
        "action": "SELL", "symbol": "BTC/USDT", "status": "exiting", "plans": [3, 4],
        "orders": [
            {"client_order_id": "td-x-3", "order_id": "v-31", "order_status": "closed",
             "filled": 0.05},
            {"client_order_id": "td-x-4", "order_id": "v-41", "order_status": "open",
             "filled": 0.0}]}]}
    (row,) = execution(json.dumps(result)).rows.to_dict("records")
    assert row["sent as"] == "td-x-3, td-x-4"
    assert row["venue order"] == "v-31, v-41"
    assert row["order status"] == "closed, open"
    assert row["filled"] == "0.05, 0.0"
    assert row["plan"] == "3, 4"


def test_a_single_order_action_reads_as_before() -> None:
    result = {"actions": [{"action": "BUY", "symbol": "BTC/USDT", "status": "placed",
                           "client_order_id": "td-1", "order_id": "v-1",
                           "order_status": "closed", "filled": 0.1, "plan_id": 7}]}
    (row,) = execution(json.dumps(result)).rows.to_dict("records")
    assert (row["sent as"], row["venue order"], row["order status"], row["filled"],
            row["plan"]) == ("td-1", "v-1", "closed", "0.1", "7")
