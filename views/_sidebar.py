"""The sidebar on every page: mode, market, bot state, process and command controls.

Destructive controls take two clicks (the second one names what will happen) because a
misclick on CLOSE-ALL in a live account sells everything at market. Queued commands are
tracked in the session and their progress refreshes on its own until done or failed.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import streamlit as st

from bot.supervisor import BotState, Supervisor
from db.bots import bot_names
from db.heartbeat import heartbeat
from db.queries import command_status, list_sessions
from views._common import (
    CONFIRM_KEY,
    DATABASE_PICK_KEY,
    PICKED_BOT_KEY,
    SESSION_PICK_KEY,
    TRACKED_KEY,
    CommandTarget,
    ask,
    command_target,
    enqueue,
    file_name,
    market,
    own_db,
    own_feed,
    pick_session,
    picked_bot,
    picker_key,
    read_db,
    scrub,
    second_click,
    settings,
)
from views._common import supervisor as supervisor_of
from views._text import literal

BOT_PARAM = "bot"  # the picked bot in the URL: ?bot=NAME
SETTLED_KEY = "_settled_commands"  # tracked commands whose end the page has shown
STATE_BADGES = {
    "running": ":green[● running]",
    "paused": ":orange[❚❚ paused]",
    "stale": ":orange[◌ stale heartbeat]",
    "starting": ":blue[◔ starting]",
    "stopping": ":blue[◑ stopping]",
    "stopped": ":gray[■ stopped]",
    "crashed": ":red[✖ crashed]",
}
COMMAND_ICONS = {"pending": "…", "running": "⟳", "done": "✓", "failed": "✗"}


def render_sidebar() -> None:
    cfg = settings()
    with st.sidebar:
        _bot_picker()
    with own_db() as db:
        beat = heartbeat(db, picked_bot())
    # the bot's own word wins: a console started with other settings must not say PAPER
    # while the running bot trades LIVE
    mode = beat["mode"] if beat and beat.get("mode") else cfg.trading_mode
    if mode == "LIVE":
        st.error("**LIVE TRADING** — real money, real orders", icon=":material/warning:")
    with st.sidebar:
        if mode == "LIVE":
            st.error("**LIVE TRADING** — real money", icon=":material/warning:")
        else:
            st.success("**PAPER** trading", icon=":material/description:")
        if mode != cfg.trading_mode:
            st.warning(f"The console's settings say {cfg.trading_mode}; the bot runs {literal(mode)}.")
        _market(beat)
        _session_picker()
        target = command_target()  # after the session picker: it acts on the shown session
        _bot_state(supervisor_of(target.bot))
        if target.bot is None:
            st.info(target.reason, icon=":material/block:")
        _process_controls(_process_target(target))
        _command_controls(target)
        _command_progress()


def _market(beat: dict | None) -> None:
    """The market the bot's prices come from, by its own word as for the mode: a console
    started with other settings must not say live prices while the bot trades a simulation."""
    ours = market(own_feed())
    shown = market(beat["feed"]) if beat and beat.get("feed") else ours
    if shown.icon:
        st.warning(literal(shown.described), icon=shown.icon)
    else:
        st.caption(literal(shown.described))
    if shown != ours:
        st.warning(f"The console's settings say {literal(ours.described)}; "
                   f"the bot runs on {literal(shown.described)}.")


def _bot_picker() -> None:
    """Only shown when the database holds several bots; pages follow the pick.

    The pick lives in the URL (``?bot=NAME``) as well, so a shared link or a reload opens
    the same bot; a link only sets the pick when the tab opens, after which the picker wins.
    """
    with own_db() as db:
        names = bot_names(db)
    own = settings().bot_name
    if own not in names:
        names.insert(0, own)
    if len(names) < 2:
        return
    linked = st.query_params.get(BOT_PARAM)
    if PICKED_BOT_KEY not in st.session_state and linked in names:
        st.session_state[PICKED_BOT_KEY] = linked
    if st.session_state.get(PICKED_BOT_KEY) not in names:
        st.session_state[PICKED_BOT_KEY] = own
    st.selectbox("Bot", names, key=PICKED_BOT_KEY)
    st.query_params[BOT_PARAM] = st.session_state[PICKED_BOT_KEY]


def _session_picker() -> None:
    _viewed_database()
    with read_db() as db:
        sessions = list_sessions(db, bot=picked_bot())
    if not sessions:
        return
    labels = {s["id"]: s["label"] for s in sessions}
    if st.session_state.get(SESSION_PICK_KEY) not in labels:
        st.session_state[SESSION_PICK_KEY] = sessions[0]["id"]  # newest of the picked bot
    key = picker_key()  # the picker shows the pick; its own value never is the pick
    st.session_state[key] = st.session_state[SESSION_PICK_KEY]
    st.selectbox("Session", options=list(labels), format_func=labels.__getitem__, key=key,
                 on_change=_session_picked, args=(key,))


def _session_picked(key: str) -> None:
    st.session_state[SESSION_PICK_KEY] = st.session_state[key]


def _viewed_database() -> None:
    """Say when the pages show a replay file (picked on Replays), with the way back."""
    picked = st.session_state.get(DATABASE_PICK_KEY)
    if not picked:
        return
    st.info(f"Viewing replay database {literal(file_name(picked))} (read-only).")
    st.button("Back to the console's database", key="db_back", on_click=_view_own_database)


def _view_own_database() -> None:
    st.session_state.pop(DATABASE_PICK_KEY, None)
    pick_session(None)


@st.fragment(run_every=5)
def _bot_state(supervisor: Supervisor) -> None:
    state = supervisor.state()
    badge = STATE_BADGES.get(state.state, literal(state.state))
    st.markdown(f"**Bot {literal(picked_bot())}:** {badge}")
    st.caption(_state_caption(state))
    if state.state in ("crashed", "stale") and state.last_error:
        st.code(scrub(state.last_error)[-800:], language=None)
    if state.state in ("stopped", "crashed") and supervisor.last_exit:
        st.text(supervisor.last_exit)
    pending = supervisor.restart_pending_in
    if pending is not None:
        st.caption(f"restart in {pending.total_seconds():.0f}s (backoff)")


def _state_caption(state: BotState) -> str:
    parts = []
    if state.pid:
        parts.append(f"pid {state.pid}")
    if state.heartbeat_age_s is not None:
        parts.append(f"heartbeat {state.heartbeat_age_s:.0f}s ago")
    if state.loop_count:
        parts.append(f"loop {state.loop_count}")
    if state.engine:
        parts.append(f"engine {literal(state.engine)}")
    return " · ".join(parts) or "no heartbeat yet"


def _process_target(target: CommandTarget) -> CommandTarget:
    """The bot whose process this console may start and signal: its own bot, or another
    whose heartbeat does not name another machine. Started here that one would run with
    this console's environment (its exchange, keys and mode), not that machine's, and no
    process of it here takes a signal. (The console's own bot runs with the console's
    environment wherever it last beat: a container's host name changes at each start.)"""
    if target.bot is None or target.bot == settings().bot_name:
        return target
    with own_db() as db:
        beat = heartbeat(db, target.bot)
    host, here = (beat or {}).get("host"), socket.gethostname()
    if host and host != here:
        return CommandTarget(None, f"Bot {literal(target.bot)} runs on {literal(host)}: this "
                                   f"console starts and signals only the bots of its own "
                                   f"machine ({literal(here)}). The commands below reach it.")
    return target


def _process_controls(target: CommandTarget) -> None:
    st.caption("Bot process (operating system)")
    bot, off = target.bot, target.bot is None
    start, stop, restart = st.columns(3)
    if start.button("Start", key="proc_start", width="stretch", disabled=off,
                    help=target.reason or "Start `python -m bot run` as its own process "
                                          "(watched: a crash is restarted with backoff)") and bot:
        supervisor = supervisor_of(bot)
        pid = supervisor.start()
        supervisor.supervise()
        st.toast(f"bot process {pid} started")
    if stop.button("Stop", key="proc_stop", width="stretch", disabled=off,
                   help=target.reason or "Signal the process (SIGTERM, SIGKILL after 15 s). The "
                                         "STOP command below is gentler: the bot finishes its "
                                         "loop and exits") and bot:
        ask(("proc_stop", bot))
    if restart.button("Restart", key="proc_restart", width="stretch", disabled=off,
                      help=target.reason or None) and bot:
        ask(("proc_restart", bot))
    if bot:
        _confirm("proc_stop", bot, f"Terminate bot {bot}'s process now?", "Confirm stop",
                 lambda: supervisor_of(bot).stop())
        _confirm("proc_restart", bot, f"Restart bot {bot}'s process?", "Confirm restart",
                 lambda: _restart(supervisor_of(bot)))


def _restart(supervisor: Supervisor) -> None:
    supervisor.restart()
    supervisor.supervise()


def _command_controls(target: CommandTarget) -> None:
    st.caption(f"Commands to bot `{target.bot}`" if target.bot else "Commands to the bot")
    bot, off, why = target.bot, target.bot is None, target.reason or None
    pause, resume = st.columns(2)
    if pause.button("PAUSE", key="cmd_pause", width="stretch", disabled=off, help=why) and bot:
        enqueue("pause", bot=bot)
    if resume.button("RESUME", key="cmd_resume", width="stretch", disabled=off,
                     help=why) and bot:
        enqueue("resume", bot=bot)
    close_all, stop = st.columns(2)
    if close_all.button("CLOSE-ALL", key="cmd_close_all", type="primary", width="stretch",
                        disabled=off, help=why) and bot:
        ask(("close-all", bot))
    if stop.button("STOP", key="cmd_stop", width="stretch", disabled=off, help=why) and bot:
        ask(("stop", bot))
    if bot:
        _confirm("close-all", bot, f"Close every position of bot {bot} at market and cancel "
                 "every order?", "Confirm CLOSE-ALL", lambda: enqueue("close-all", bot=bot))
        _confirm("stop", bot, f"Stop bot {bot} after this loop?", "Confirm STOP",
                 lambda: enqueue("stop", bot=bot))


def _confirm(action: str, bot: str, question: str, label: str,
             run: Callable[[], object]) -> None:
    """The second click, only for the bot the first one was for (the view may have changed)."""
    second_click(CONFIRM_KEY, (action, bot), question, label, run, key=action)


@st.fragment(run_every=2)
def _command_progress() -> None:
    tracked = st.session_state.get(TRACKED_KEY, [])
    if not tracked:
        return
    with own_db() as db:
        rows = command_status(db, tracked)
    settled = st.session_state.setdefault(SETTLED_KEY, set())
    finished = {row["id"] for row in rows if row["status"] in ("done", "failed")}
    if finished - settled:
        # a command just ended: rerun the whole page so positions, orders and plans show
        # its effect now, not at their own next refresh
        settled |= finished
        st.rerun()
    for row in rows:
        icon = COMMAND_ICONS.get(row["status"], "•")
        target = f" {row['argument']}" if row["argument"] else ""
        target += f" → {row['bot']}" if row["bot"] and row["bot"] != settings().bot_name else ""
        # text, not markdown: arguments and results come from the venue and the bot
        st.text(f"{icon} #{row['id']} {row['command']}{target}: {row['status']}")
        if row["result"]:
            st.text(scrub(row["result"])[:300])
