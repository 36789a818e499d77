"""Portfolio: what is held, what is working on the venue, and the plans that bind the bot.

Close and cancel only queue commands: the bot re-checks them against the venue and risk
caps, so a stale page can never send an order by itself.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from db.queries import open_exposure
from db.queries_trading import active_plans, open_orders, plan_versions, version_diff
from views._common import current_session, enqueue, mode_label, no_session_notice, read_db
from views._text import literal

st.header("Portfolio")
info = current_session()
if info is None:
    no_session_notice()
    st.stop()
label = mode_label(info)

@st.fragment(run_every=10)
def _holdings() -> None:
    """Positions and orders refresh on their own; a click here reruns only this part."""
    with read_db() as db:
        positions = pd.DataFrame(open_exposure(db, info.id))
        orders = open_orders(db, info.id)
    st.subheader(f"Positions ({label})")
    if positions.empty:
        st.info("No open positions.")
    else:
        st.dataframe(positions, hide_index=True, column_config={
            "unrealized_pnl": st.column_config.NumberColumn(format="%.2f"),
            "value": st.column_config.NumberColumn(format="%.2f"),
        })
        st.caption(
            f"Unrealized PnL {positions['unrealized_pnl'].sum():,.2f} vs latest market price"
        )
        for row in positions.itertuples():
            cols = st.columns([3, 1])
            cols[0].text(f"{row.symbol}: {row.quantity:+.6g} @ {row.avg_price:,.2f}")
            if cols[1].button("Close", key=f"close_{row.symbol}"):
                command_id = enqueue("close", row.symbol)
                st.toast(f"close {literal(row.symbol)} queued (#{command_id})")
    st.subheader("Open orders")
    if orders.empty:
        st.info("No open orders.")
        return
    st.dataframe(orders, hide_index=True)
    for row in orders.itertuples():
        cols = st.columns([3, 1])
        price = "market" if row.price is None or row.price != row.price else f"{row.price:,.2f}"
        cols[0].text(f"{row.order_id} {row.side} {row.remaining:g} {row.symbol} @ {price}")
        if cols[1].button("Cancel", key=f"cancel_{row.order_id}"):
            command_id = enqueue("cancel", row.order_id)
            st.toast(f"cancel {literal(row.order_id)} queued (#{command_id})")


_holdings()
with read_db() as db:
    plans = active_plans(db, info.run_session_ids)

st.subheader("Open plans")
if plans.empty:
    st.info("No open plans.")
    st.stop()
st.dataframe(plans, hide_index=True)
plan_id = st.selectbox(
    "Plan history", plans["id"].tolist(),
    format_func=lambda pid: f"#{pid} {plans.set_index('id').loc[pid, 'symbol']}",
    key="portfolio_plan",
)
with read_db() as db:
    versions = plan_versions(db, int(plan_id))
st.dataframe(versions, hide_index=True)
if len(versions) >= 2:
    numbers = versions["version"].tolist()
    old_col, new_col = st.columns(2)
    old = old_col.selectbox("From version", numbers[:-1], index=len(numbers) - 2, key="diff_old")
    new = new_col.selectbox("To version", [n for n in numbers if n > old], key="diff_new")
    diff = version_diff(versions, int(old), int(new))
    if diff.empty:
        st.caption("No field changed between these versions.")
    else:
        st.dataframe(diff, hide_index=True)
