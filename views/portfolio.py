"""Portfolio: what is held, what is working on the venue, and the plans that bind the bot.

Close and cancel only queue commands: the bot re-checks them against the venue and risk
caps, so a stale page can never send an order by itself. They go to the bot whose session is
shown and take a second click that names it; on a replay there is no bot, and on a past day
the rows are that day's, not the bot's of now, so they are off.
"""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from bot.model.figures import figure
from db.queries import open_exposure
from db.queries_trading import active_plans, open_orders, plan_versions, version_diff
from views._common import (
    CONFIRM_KEY,
    ask,
    enqueue,
    mode_label,
    read_db,
    row_command_target,
    second_click,
    session_or_stop,
)
from views._decision_link import decision_ids, open_picked, remember_pick
from views._tables import table
from views._text import literal

st.header("Portfolio")
info = session_or_stop()
label = mode_label(info)
target = row_command_target(info)
VERSIONS_KEY, PICKED_KEY = "portfolio_versions", "_portfolio_picked_decision"
open_picked(PICKED_KEY)


def _queue(command: str, argument: str) -> None:
    """Queue for the shown session's bot, checked again at the second click."""
    if target.bot:
        command_id = enqueue(command, argument, bot=target.bot)
        st.toast(f"{command} {literal(argument)} queued for bot {literal(target.bot)} "
                 f"(#{command_id})")


def _two_click(column, label: str, command: str, argument: str, question: str) -> None:
    """One destructive row control: the first click asks, the second (named) one queues."""
    key = f"{command}_{argument}"
    if column.button(label, key=key, disabled=target.bot is None,
                     help=target.reason or None) and target.bot:
        ask((command, argument, target.bot))
    if target.bot:
        second_click(CONFIRM_KEY, (command, argument, target.bot), question,
                     f"Confirm {command} {literal(argument)}", lambda: _queue(command, argument), key=key)


@st.fragment(run_every=10)
def _holdings() -> None:
    """Positions and orders refresh on their own; a click here reruns only this part."""
    with read_db() as db:
        positions = pd.DataFrame(open_exposure(db, info.id))
        orders = open_orders(db, info.id)
    st.subheader(f"Positions ({label})")
    if target.bot is None:
        st.caption(target.reason)
    if positions.empty:
        st.info("No open positions.")
    else:
        table(positions)
        st.caption(
            f"Unrealized PnL {figure(positions['unrealized_pnl'].sum())} vs latest market price"
        )
        for symbol, quantity, avg_price in zip(positions["symbol"], positions["quantity"],
                                               positions["avg_price"], strict=True):
            cols = st.columns([3, 1])
            cols[0].text(f"{symbol}: {quantity:+.6g} @ {figure(avg_price)}")
            _two_click(cols[1], "Close", "close", str(symbol),
                       f"Close bot {literal(target.bot)}'s whole {literal(symbol)} position "
                       f"({quantity:+.6g}) at market?")
    st.subheader("Open orders")
    if orders.empty:
        st.info("No open orders.")
        return
    table(orders)
    for row in orders.itertuples():
        cols = st.columns([3, 1])
        limit = row.price  # None or NaN for a market order
        price = figure(limit) if isinstance(limit, int | float) and limit == limit else "market"
        cols[0].text(f"{row.order_id} {row.side} {row.remaining:g} {row.symbol} @ {price}")
        _two_click(cols[1], "Cancel", "cancel", str(row.order_id),
                   f"Cancel bot {literal(target.bot)}'s order {literal(row.order_id)} "
                   f"({row.side} {row.remaining:g} {literal(row.symbol)} @ {price})?")


_holdings()
with read_db() as db:
    plans = active_plans(db, info.run_session_ids)

st.subheader("Open plans")
if plans.empty:
    st.info("No open plans.")
    st.stop()
table(plans)
plan_id = st.selectbox(
    "Plan history", plans["id"].tolist(),
    format_func=lambda pid: f"#{pid} {plans.set_index('id').loc[pid, 'symbol']}",
    key="portfolio_plan",
)
if plan_id is None:  # the options are never empty; a selectbox is typed as maybe None
    st.stop()
with read_db() as db:
    versions = plan_versions(db, int(plan_id))
st.caption("Select a version to open the decision that wrote it.")
table(versions, key=VERSIONS_KEY, selection_mode="single-row",
      on_select=partial(remember_pick, VERSIONS_KEY, PICKED_KEY,
                        decision_ids(versions["trace_id"]),
                        "No decision wrote this version: the plan step, a fill or a command did."))
if len(versions) >= 2:
    numbers = versions["version"].tolist()
    old_col, new_col = st.columns(2)
    old = old_col.selectbox("From version", numbers[:-1], index=len(numbers) - 2, key="diff_old")
    new = new_col.selectbox("To version", [n for n in numbers if n > old], key="diff_new")
    if old is not None and new is not None:  # never empty here; typed as maybe None
        diff = version_diff(versions, int(old), int(new))
        if diff.empty:
            st.caption("No field changed between these versions.")
        else:
            table(diff)
