"""Fleet: every bot on this database, totals across them, and commands to one or all.

Bots on other machines are only watched (heartbeat) and commanded (the commands table);
this page never starts or signals a process. STOP and CLOSE-ALL, for one bot or for all,
take a second click that names exactly what will happen, as in the sidebar.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from bot.fleet import FleetEntry, fleet_states, totals
from views._common import enqueue, enqueue_all, market, money, own_db, picked_bot, second_click
from views._tables import table
from views._text import literal

CONFIRM_KEY = "_fleet_confirm"
ACTIONS = {"stop": "STOP", "close-all": "CLOSE-ALL"}
QUESTIONS = {
    "stop": "Stop {who} after the current loop?",
    "close-all": "Close every position and cancel every order of {who}?",
}


def _entries() -> list[FleetEntry]:
    with own_db() as db:  # bots live in the console's own database, whatever is viewed
        return fleet_states(db, datetime.now(UTC))


def _table(entries: list[FleetEntry]) -> pd.DataFrame:
    rows = []
    for entry in entries:
        d = entry.as_dict()
        rows.append({
            "bot": d["name"], "state": d["state"], "host": d["host"] or "", "pid": d["pid"],
            "heartbeat age (s)": d["heartbeat_age_s"], "mode": d["mode"], "venue": d["venue"],
            "market": market(d["feed"]).label if d["feed"] else "—",
            "engine": d["engine"], "symbols": d["symbols"], "day": _day(d),
            "net PnL": d["net_pnl"], "open positions": d["open_positions"],
        })
    return pd.DataFrame(rows)


def _day(bot: dict) -> str:
    """The day the row's net PnL is of: today, or the bot's last day when it has none today
    (in its SESSION_TIMEZONE), so a stopped bot's figure does not read as today's."""
    if not bot["session_date"]:
        return ""
    return f"{bot['session_date']} ({'today' if bot['day_is_today'] else 'last day'})"


@st.fragment(run_every=5)
def _fleet() -> None:
    """Figures, table and per-bot controls refresh together, so a row's state and its
    buttons never disagree."""
    entries = _entries()
    if not entries:
        st.info("No bot has registered in this database yet.")
        return
    sums = totals(entries)
    bots, up, pnl, positions = st.columns(4)
    bots.metric("Bots", sums["bots"])
    up.metric("Bots up", sums["up"], help="running, paused, starting or stopping")
    pnl.metric("Net PnL today (all bots)", " · ".join(
        f"{money(value)} {literal(quote)}".rstrip() for quote, value in sums["net_pnl"].items())
        or "—")
    positions.metric("Open positions", sums["open_positions"])
    table(_table(entries), width="stretch")
    _controls(entries)


def _ask(action: str, bot: str | None) -> None:
    st.session_state[CONFIRM_KEY] = (action, bot)


def _confirmation() -> None:
    """The second click for the pending (action, bot); bot None means every bot."""
    pending = st.session_state.get(CONFIRM_KEY)
    if not pending:
        return
    action, bot = pending
    who = "EVERY bot" if bot is None else f"bot {literal(bot)}"

    def run() -> None:
        if bot is None:
            enqueue_all(action)
        else:
            enqueue(action, bot=bot)

    whom = "for every bot" if bot is None else literal(bot)
    second_click(CONFIRM_KEY, pending, QUESTIONS[action].format(who=who),
                 f"Confirm {ACTIONS[action]} {whom}", run, key="fleet")


def _controls(entries: list[FleetEntry]) -> None:
    st.subheader("Commands")
    every = st.columns(2)
    if every[0].button("STOP every bot", key="fleet_stop_all", width="stretch"):
        _ask("stop", None)
    if every[1].button("CLOSE-ALL every bot", key="fleet_close_all_all", type="primary",
                       width="stretch"):
        _ask("close-all", None)
    _confirmation()
    for entry in entries:
        name = entry.row.name
        label, stop, close_all = st.columns([3, 1, 1])
        marker = " (picked)" if name == picked_bot() else ""
        label.markdown(f"{literal(name)}{marker} · {literal(entry.state.state)}")
        if stop.button("STOP", key=f"fleet_stop_{name}", width="stretch"):
            _ask("stop", name)
            st.rerun()
        if close_all.button("CLOSE-ALL", key=f"fleet_close_all_{name}", width="stretch"):
            _ask("close-all", name)
            st.rerun()


st.title("Fleet")
st.caption("Every bot on this database. Bots on other machines are watched through their "
           "heartbeats and commanded through the commands table.")
_fleet()
