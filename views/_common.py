"""What every page needs: the settings, a read session, the chosen session, formatting.

Pages stay thin: they call ``db.queries*`` through ``read_db`` and render. The only write a
page may make is ``enqueue`` (a pending command the bot validates and executes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.orm import Session as OrmSession

from bot.config import Settings
from bot.supervisor import Supervisor
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
def supervisor_for(database_url: str, bot_name: str) -> Supervisor:
    """One supervisor per server and database: reruns and sessions share the bot process."""
    return Supervisor(database_url, bot_name)


def supervisor() -> Supervisor:
    cfg = settings()
    return supervisor_for(cfg.database_url, cfg.bot_name)


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
    """Tell the operator, and rerun the page by itself once the bot has opened a session."""
    st.info("No trading session in this database yet: start the bot to create one.")
    rerun_when(lambda db: session_info(db) is not None)


def rerun_when(ready: Callable[[OrmSession], bool], every_s: float = 5) -> None:
    """Poll until ``ready`` holds, then rerun the whole page (for pages still empty)."""

    @st.fragment(run_every=every_s)
    def _poll() -> None:
        with read_db() as db:
            if ready(db):
                st.rerun()

    _poll()
