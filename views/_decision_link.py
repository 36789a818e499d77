"""A table whose rows decisions caused (fills, plan versions): a picked row opens its decision
on the Decisions page (``?trace=``) in this tab, so the viewed database, the session and the
login stay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import streamlit as st


def decision_ids(column: Iterable[Any]) -> list[int | None]:
    """A table's ``trace_id`` cells as ids (None where no decision caused the row: pandas
    reads a nullable column's missing ids as NaN, or None when all are missing)."""
    return [None if t is None or t != t else int(t) for t in column]


def remember_pick(table_key: str, picked_key: str, decisions: list[int | None],
                  none_said: str) -> None:
    """Note the picked row's decision (a table's ``on_select``): the table is keyed by the
    rows it showed when clicked, and a refresh may have changed them since."""
    rows = st.session_state[table_key].selection.rows
    decision = decisions[rows[0]] if rows else None
    if rows and decision is None:
        st.toast(none_said)
    st.session_state[picked_key] = decision


def open_picked(picked_key: str) -> None:
    """Open the decision a pick noted, if any (a page cannot switch inside a callback)."""
    picked = st.session_state.pop(picked_key, None)
    if picked is not None:
        st.switch_page("views/decisions.py", query_params={"trace": str(picked)})
