"""What every page needs: the settings, a read session, the chosen session, formatting.

Pages stay thin: they call ``db.queries*`` through ``read_db`` and render. The only write a
page may make is ``enqueue`` (a pending command the bot validates and executes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

import streamlit as st
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session as OrmSession

from bot.alerts.watch import FleetWatch
from bot.config import Settings
from bot.model.figures import figure
from bot.secrets_filter import scrub as scrub_secrets
from bot.supervisor import Supervisor
from db.bots import UnknownBot, session_bot
from db.commands import ArgumentTooLong, enqueue_command, enqueue_for_all
from db.engine import engine_for, session_factory
from db.migrate import shown
from db.queries import SessionInfo, session_info
from db.retry import described, is_outage
from views._text import literal

SETTINGS_KEY = "_settings"
SESSION_PICK_KEY = "session_pick"  # the session the pages show: set by ``pick_session`` only
PICKER_GENERATION_KEY = "_session_picker_generation"  # counts ``pick_session``'s picks
DATABASE_PICK_KEY = "database_pick"  # a replay database opened read-only (Replays page)
PICKED_BOT_KEY = "picked_bot"
TRACKED_KEY = "tracked_commands"
CONFIRM_KEY = "_confirm_action"  # the destructive action awaiting its second click


def settings() -> Settings:
    """The settings console.py loaded for this run (pages never reload them)."""
    return st.session_state[SETTINGS_KEY]


@st.cache_resource
def supervisor_for(database_url: str, bot_name: str) -> Supervisor:
    """One supervisor per server and database: reruns and sessions share the bot process."""
    return Supervisor(database_url, bot_name, watch=FleetWatch.from_settings(settings()))


def supervisor(bot: str | None = None) -> Supervisor:
    """The supervisor of ``bot`` (default: the picked one) on the console's own database."""
    return supervisor_for(settings().database_url, bot or picked_bot())


def picked_bot() -> str:
    """The bot whose sessions, state and commands the pages show: the sidebar's pick, else
    this console's own BOT_NAME."""
    return st.session_state.get(PICKED_BOT_KEY) or settings().bot_name


@st.cache_resource
def _factory(url: str):
    return session_factory(engine_for(url))


def viewed_database_url() -> str:
    """The database the pages show: a replay file picked on the Replays page, else ours."""
    return st.session_state.get(DATABASE_PICK_KEY) or settings().database_url


@contextmanager
def read_db() -> Iterator[OrmSession]:
    """The viewed database (trading data: sessions, trades, traces, candles)."""
    with _reachable(viewed_database_url()) as db:
        yield db


@contextmanager
def own_db() -> Iterator[OrmSession]:
    """The console's own database, whatever is viewed: bots, heartbeats and commands live
    there, so controls keep acting on the real bot while a replay file is being looked at."""
    with _reachable(settings().database_url) as db:
        yield db


@contextmanager
def _reachable(url: str) -> Iterator[OrmSession]:
    """A session on ``url``; a database that is down, locked or full ends the page with
    that said in words (never a traceback with the server's paths and statements)."""
    try:
        with _factory(url)() as db:
            yield db
    except DBAPIError as exc:
        if not is_outage(exc):
            raise
        unreachable(url, exc)


def unreachable(url: str, exc: BaseException) -> NoReturn:
    """Say that the database at ``url`` is unreachable, and stop the page."""
    st.error(f"Database unreachable: {shown(url)} ({scrub(described(exc))}). The page "
             "shows it again once the database answers; the bot waits for it and resumes.")
    st.stop()


def pick_session(session_id: int | None) -> None:
    """Show ``session_id`` on every page (None: the picked bot's newest), from a callback.

    The sidebar's picker is rebuilt as a new widget for it. Every rerun the browser asks
    for carries the values of its widgets, a sidebar fragment's timed one too, and
    Streamlit merges one sent before the browser saw this pick into the page switch that
    follows (the switch's rerun takes the pending request's widget values). Those values
    are the old picker's, and no widget's value is the pick: only the picker's change
    callback and this function set it.
    """
    if session_id is None:
        st.session_state.pop(SESSION_PICK_KEY, None)
    else:
        st.session_state[SESSION_PICK_KEY] = session_id
    st.session_state[PICKER_GENERATION_KEY] = st.session_state.get(PICKER_GENERATION_KEY, 0) + 1


def picker_key() -> str:
    """The key of the sidebar's session picker: a new one after each ``pick_session``."""
    return f"session_picker_{st.session_state.get(PICKER_GENERATION_KEY, 0)}"


def current_session() -> SessionInfo | None:
    """The session picked in the sidebar, else the picked bot's newest live one."""
    with read_db() as db:
        return session_info(db, st.session_state.get(SESSION_PICK_KEY), bot=picked_bot())


@dataclass(frozen=True)
class CommandTarget:
    """The bot a view may command, or, when none, why not (shown on the disabled controls)."""

    bot: str | None
    reason: str = ""


def command_target() -> CommandTarget:
    """Which bot, if any, the controls of this view act on: the one whose session is shown.

    A replay (its own run, or any session of a replay file) has no bot behind it, so its
    controls are disabled rather than falling back to this console's bot: a Close on a
    replayed position must never sell the live one. A live session's commands go to the bot
    that owns it, whatever the console's own BOT_NAME is.
    """
    viewed = viewed_database_url()
    if viewed != settings().database_url:
        return CommandTarget(None, f"This view shows the replay database {literal(file_name(viewed))}:"
                                   " no bot of this console runs it, so there is nothing to "
                                   "command. Go back to the console's database to command a bot.")
    info = current_session()
    if info is None:  # no session yet: the picked bot, which may be starting
        return CommandTarget(picked_bot())
    if info.kind == "replay":
        return CommandTarget(None, f"Session #{info.id} is replay run {literal(info.run_name)}: no bot "
                                   "runs it, so there is nothing to command. Pick a live "
                                   "session to command its bot.")
    with read_db() as db:
        owner = session_bot(db, info.id)
    if owner is None:
        return CommandTarget(None, f"Session #{info.id} belongs to no bot in this database.")
    return CommandTarget(owner)


def row_command_target(info: SessionInfo) -> CommandTarget:
    """Which bot, if any, the controls of the shown session's positions and orders act on.

    Those are the rows as the session's day left them: a past day's BTC position is not
    what a 'close BTC/USDT' sells now (the bot's holding of today), nor is its order list
    the bot's, so only the bot's newest day commands its rows.
    """
    target = command_target()
    if target.bot is None:
        return target
    with read_db() as db:
        newest = session_info(db, bot=target.bot)
    if newest is not None and newest.id != info.id:
        return CommandTarget(None, f"Session #{info.id} is {info.date} of bot "
                                   f"{literal(target.bot)}, which trades in {newest.date} "
                                   f"(#{newest.id}) now: these positions and orders are as "
                                   "that day left them. Pick its newest session to close or "
                                   "cancel.")
    return target


def file_name(url: str) -> str:
    """The file of a SQLite URL (plain or ``file:...?mode=ro``), as the operator knows it."""
    return url.split("file:", 1)[-1].split("///", 1)[-1].split("?", 1)[0]


def enqueue(command: str, argument: str | None = None, *, bot: str) -> int:
    """Queue a command for ``bot`` (named by the caller: never a default) and track it; an
    argument too long to queue (a planted symbol), or a bot not registered (one registers
    at its first run), is said in words and nothing is queued."""
    with own_db() as db:
        try:
            command_id = enqueue_command(db, command, argument, bot=bot)
        except ArgumentTooLong as exc:
            st.error(literal(str(exc)))
            st.stop()
        except UnknownBot as exc:
            st.error(literal(f"{exc}: nothing was queued (a bot registers when it first runs)"))
            st.stop()
    _track([command_id])
    return command_id


def enqueue_all(command: str, argument: str | None = None) -> dict[str, int]:
    """One command per registered bot; each is tracked, since each bot answers for itself."""
    with own_db() as db:
        ids = enqueue_for_all(db, command, argument)
    _track(list(ids.values()))
    return ids


def _track(command_ids: list[int]) -> None:
    tracked = st.session_state.setdefault(TRACKED_KEY, [])
    tracked.extend(command_ids)
    del tracked[:-8]


def ask(wanted: object) -> None:
    """The first click of a destructive control: ``second_click`` then asks to confirm it
    (one at a time: a new first click replaces an unanswered one)."""
    st.session_state[CONFIRM_KEY] = wanted


def second_click(state_key: str, wanted: object, question: str, label: str,
                 run: Callable[[], object], key: str) -> None:
    """The confirmation step of a destructive control, shown only after the first click
    (which stored ``wanted`` under ``state_key``); it names exactly what will happen,
    because a misclick on CLOSE-ALL in a live account sells everything at market."""
    if st.session_state.get(state_key) != wanted:
        return
    st.warning(question)
    yes, no = st.columns(2)
    if yes.button(label, key=f"confirm_{key}", type="primary", width="stretch"):
        st.session_state.pop(state_key, None)
        run()
        st.rerun()
    if no.button("Cancel", key=f"cancel_{key}", width="stretch"):
        st.session_state.pop(state_key, None)
        st.rerun()


def scrub(text: object) -> str:
    """Mask any secret value that leaked into stored text before it reaches the page."""
    return scrub_secrets(text, settings().secret_values())


def money(value: float | None) -> str:
    return "—" if value is None else figure(value)


def mode_label(info: SessionInfo | None = None) -> str:
    """PAPER unless the session (or the settings) say LIVE; used to tag shown values."""
    mode = info.mode if info is not None else settings().trading_mode
    return "LIVE" if mode == "LIVE" else "PAPER"


@dataclass(frozen=True)
class Market:
    """How pages name the market a feed value stands for (``Session.feed``)."""

    label: str
    detail: str
    icon: str | None = None  # prices that are not today's market: the sidebar warns with it

    @property
    def described(self) -> str:
        return f"{self.label} ({self.detail})"


MARKETS = {
    "synthetic": Market("SIMULATED market", "synthetic feed", ":material/science:"),
    "replay": Market("REPLAYED market", "recorded candles", ":material/history:"),
    "live": Market("live prices", "exchange feed, paper fills"),
    "venue": Market("live prices", "the exchange's own"),
}


def market(feed: str) -> Market:
    """The one wording of a market on every page; an unknown value is shown as it is."""
    kind = "replay" if feed.startswith("replay") else feed
    return MARKETS.get(kind, Market(f"market {feed}", "unknown feed", ":material/help:"))


def own_feed() -> str:
    """The market this console's settings name, as a bot started with them records it."""
    cfg = settings()
    return cfg.feed if cfg.is_paper else "venue"


def session_feed(info: SessionInfo) -> str:
    """The shown session's market: as its bot wrote it, else any replay run's, else ours.

    Sessions written before the bot recorded its market have none.
    """
    return info.feed or ("replay" if info.kind == "replay" else own_feed())


def session_or_stop() -> SessionInfo:
    """The session the page shows; with none yet, the notice, and the page stops here."""
    info = current_session()
    if info is None:
        no_session_notice()
        st.stop()
    return info


def no_session_notice() -> None:
    """Tell the operator, and rerun the page by itself once the bot has opened a session."""
    st.info("No trading session in this database yet: start the bot to create one.")
    bot = picked_bot()  # another bot's session must not count: it would rerun forever
    rerun_when(lambda db: session_info(db, bot=bot) is not None)


def rerun_when(ready: Callable[[OrmSession], bool], every_s: float = 5) -> None:
    """Poll until ``ready`` holds, then rerun the whole page (for pages still empty)."""

    @st.fragment(run_every=every_s)
    def _poll() -> None:
        with read_db() as db:
            if ready(db):
                st.rerun()

    _poll()
