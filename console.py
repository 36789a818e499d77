"""Tradedesk operator console: ``streamlit run console.py``.

This script is the only entry point: it loads the settings, applies the password gate, draws
the sidebar and then runs the chosen page from ``views/``. Pages live outside a ``pages/``
folder on purpose, so a deep link can never run a page without the gate and the sidebar.
The bot itself runs as a separate process owned by ``bot.supervisor``.
"""

from __future__ import annotations

import hmac
import math
import os
from pathlib import Path

import streamlit as st
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.config import ConfigError, Settings, load_settings
from bot.secrets_filter import scrub
from db.engine import normalize_url
from db.migrate import upgrade
from db.retry import is_outage
from views._common import SETTINGS_KEY, supervisor_for, unreachable
from views._login import client_address, login_limiter
from views._sidebar import render_sidebar
from views._text import literal

HERE = Path(__file__).resolve().parent
LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")
AUTH_KEY = "_authenticated"
HOME, HOME_PATH = "overview", "home"
PAGES = [
    ("overview", "Overview", ":material/dashboard:"),
    ("chart", "Chart", ":material/candlestick_chart:"),
    ("portfolio", "Portfolio", ":material/account_balance_wallet:"),
    ("trades", "Trades", ":material/receipt_long:"),
    ("performance", "Performance", ":material/monitoring:"),
    ("decisions", "Decisions", ":material/psychology:"),
    ("replays", "Replays", ":material/history:"),
    ("fleet", "Fleet", ":material/lan:"),
    ("commands", "Commands", ":material/send:"),
    ("settings", "Settings", ":material/settings:"),
]


@st.cache_resource
def _prepared(database_url: str) -> bool:
    """Create or upgrade the schema once per server, before the bot is started.

    A fresh machine then works with no setup step, and doing it here (not in the bot only)
    keeps the console from failing on a database the bot has not touched yet. Raises the
    migration's error, which ``main`` shows; a failure is not cached, so a rerun retries.
    """
    upgrade(database_url)
    return True


@st.cache_resource
def _autostart(database_url: str, bot_name: str) -> bool:
    """Start the bot once per server when none runs for this database (tests opt out)."""
    if os.environ.get("TRADEDESK_NO_AUTOSTART") == "1":
        return False
    bot = supervisor_for(database_url, bot_name)
    bot.ensure_running()
    bot.supervise()
    return True


def _password_required(cfg: Settings) -> bool:
    address = (st.get_option("server.address") or "").strip()
    return cfg.console_require_password or address not in LOCAL_ADDRESSES


def _password_gate(cfg: Settings) -> None:
    """Stop the script unless this session has logged in (when a password is required)."""
    if st.session_state.get(AUTH_KEY) or not _password_required(cfg):
        return
    st.title("Tradedesk console")
    if cfg.console_password is None or not cfg.console_password.get_secret_value():
        st.error(
            "This console is reachable from other machines (server.address is not "
            "127.0.0.1) or CONSOLE_REQUIRE_PASSWORD is set, but CONSOLE_PASSWORD is empty. "
            "Set CONSOLE_PASSWORD, or run with --server.address 127.0.0.1."
        )
        st.stop()
    with st.form("login"):
        given = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        limiter, address = login_limiter(), client_address()
        wait = limiter.wait_s(address)
        if wait > 0:  # the password is not even checked: more sessions guess no faster
            st.error(f"Too many wrong passwords from this address: try again in "
                     f"{math.ceil(wait)} s.")
            st.stop()
        expected = cfg.console_password.get_secret_value().encode()
        if hmac.compare_digest(given.encode(), expected):
            limiter.succeeded(address)
            st.session_state[AUTH_KEY] = True
            st.rerun()
        wait = limiter.failed(address)
        st.error(f"Wrong password. The next try is possible in {math.ceil(wait)} s.")
    st.stop()


def _without_secrets(text: str, cfg: Settings) -> str:
    password = make_url(normalize_url(cfg.database_url)).password
    return scrub(text, [*cfg.secret_values(), *([password] if password else [])])


def _home_alias(home: st.Page) -> st.Page:
    """``/overview`` leads to the default page, which Streamlit serves only at ``/``: every
    page then answers at ``/<name>``, as the navigation suggests. The default page's own path
    (``HOME_PATH``) only identifies it, since two pages may not share one."""
    return st.Page(lambda: st.switch_page(home, query_params=st.query_params.to_dict()),
                   title=home.title, url_path=HOME, visibility="hidden")


def main() -> None:
    st.set_page_config(page_title="Tradedesk", page_icon="📈", layout="wide")
    try:
        cfg = load_settings()
    except ConfigError as exc:
        st.error("The configuration is invalid, so the console cannot start:")
        st.code(str(exc), language=None)
        st.stop()
    st.session_state[SETTINGS_KEY] = cfg
    _password_gate(cfg)
    try:
        _prepared(cfg.database_url)
    except Exception as exc:  # unreachable server, unknown revision: say so, don't crash
        if isinstance(exc, DBAPIError) and is_outage(exc):  # retried on the next run
            unreachable(cfg.database_url, exc)
        st.error("The database cannot be used:")
        st.code(_without_secrets(str(exc), cfg), language=None)
        st.stop()
    try:
        _autostart(cfg.database_url, cfg.bot_name)
    except OSError as exc:  # e.g. data/ not writable: the console still works without a bot
        st.warning(f"Could not start the bot process: {literal(_without_secrets(str(exc), cfg))}")
    pages = [
        st.Page(HERE / "views" / f"{name}.py", title=title, icon=icon,
                url_path=HOME_PATH if name == HOME else name, default=name == HOME)
        for name, title, icon in PAGES
    ]
    page = st.navigation([*pages, _home_alias(pages[0])])
    render_sidebar()
    page.run()


main()
