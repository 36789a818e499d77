"""What every page needs: the settings, a read session, the chosen session, formatting.

Pages stay thin: they call ``db.queries*`` through ``read_db`` and render. The only write a
page may make is ``enqueue`` (a pending command the bot validates and executes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.orm import Session as OrmSession

from bot.config import Settings
from db.commands import enqueue_command
from db.engine import engine_for, session_factory
from db.queries import SessionInfo, session_info

SETTINGS_KEY = "_settings"
SESSION_PICK_KEY = "session_pick"
TRACKED_KEY = "tracked_commands"


def settings() -> Settings:
    """The settings console.py loaded for this run (pages never reload them)."""
    return st.session_state[SETTINGS_KEY]


@st.cache_resource
def _factory(url: str):
    return session_factory(engine_for(url))


@contextmanager
def read_db() -> Iterator[OrmSession]:
    with _factory(settings().database_url)() as db:
        yield db


def current_session() -> SessionInfo | None:
    """The session picked in the sidebar, else the newest live one."""
    with read_db() as db:
        return session_info(db, st.session_state.get(SESSION_PICK_KEY))


def enqueue(command: str, argument: str | None = None) -> int:
    """Queue a command and track it so the sidebar shows its progress."""
    with read_db() as db:
        command_id = enqueue_command(db, command, argument)
    tracked = st.session_state.setdefault(TRACKED_KEY, [])
    tracked.append(command_id)
    del tracked[:-5]
    return command_id


def scrub(text: object) -> str:
    """Mask any secret value that leaked into stored text before it reaches the page."""
    out = "" if text is None else str(text)
    for secret in settings().secret_values():
        out = out.replace(secret, "****")
    return out


def money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def mode_label(info: SessionInfo | None = None) -> str:
    """PAPER unless the session (or the settings) say LIVE; used to tag shown values."""
    mode = info.mode if info is not None else settings().trading_mode
    return "LIVE" if mode == "LIVE" else "PAPER"


def no_session_notice() -> None:
    st.info("No trading session in this database yet: start the bot to create one.")
