"""Telegram control: read a bot's state and queue its commands from a phone.

``Desk`` holds the words: a command and its arguments in, the answer out, with no Telegram
type in sight; ``build_application`` wires it to python-telegram-bot. Only the chats in
``TELEGRAM_CHAT_IDS`` are answered; any other chat's update is dropped before a handler
sees it, and logged. Commands are queued in the ``commands`` table exactly as the console's
buttons queue them (``bot.remote``). ``/closeall`` and ``/stop`` queue nothing until
confirmed, by the button under the question or by ``/closeall confirm`` from the same chat
within ``CONFIRM_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import InvalidToken, NetworkError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import remote
from bot.config import TELEGRAM_CONFIRM_WORD as CONFIRM_WORD
from bot.config import ConfigError, Settings
from bot.model.figures import figure
from bot.model.vocabulary import CommandKind
from bot.secrets_filter import scrub
from db.bots import UnknownBot

log = logging.getLogger("tradedesk.telegram")

CONFIRM_SECONDS = 60.0
MAX_MESSAGE_CHARS = 4000  # Telegram refuses messages over 4096 characters
FIRST_RETRY_SECONDS, LONGEST_RETRY_SECONDS = 1.0, 60.0  # a Bot API that does not answer
TOKEN_REJECTED = ("invalid setting TELEGRAM_BOT_TOKEN: rejected by the Bot API "
                  "(ask @BotFather for the bot's token)")
QUEUEING = {"pause": CommandKind.PAUSE, "resume": CommandKind.RESUME,
            "closeall": CommandKind.CLOSE_ALL, "stop": CommandKind.STOP}
CONFIRMED = {CommandKind.CLOSE_ALL: "Close every position and cancel every order of {bot}?",
             CommandKind.STOP: "Stop {bot} after its current loop?"}
READING = ("status", "pnl", "positions", "trades")
HELP = ("/status [bot] - state of the bot (of every bot when several and none named)\n"
        "/pnl [bot] - the figures of the bot's session today\n"
        "/positions [bot] - open positions at the market\n"
        "/trades [bot] - the last trades\n"
        "/pause [bot], /resume [bot]\n"
        "/closeall [bot], /stop [bot] - each asks for a confirmation")


@dataclass(frozen=True)
class Reply:
    """An answer: its text and any buttons under it (label, callback data)."""

    text: str
    buttons: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Question:
    """A close-all or stop waiting for its confirmation."""

    chat_id: int
    kind: CommandKind
    bot: str
    deadline: float  # on the desk's monotonic clock


@dataclass
class Desk:
    """Answers the allowed chats' commands from the database; queues their commands."""

    sessions: sessionmaker[OrmSession]
    allowed_chats: frozenset[int]
    secrets: tuple[str, ...] = ()  # masked in every answer (``bot.secrets_filter``)
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)  # what today is, for /pnl
    questions: dict[str, Question] = field(default_factory=dict)  # by the button's nonce

    def allows(self, chat_id: int | None) -> bool:
        return chat_id is not None and chat_id in self.allowed_chats

    def answer(self, chat_id: int, command: str, args: list[str]) -> Reply:
        """The reply to ``/command args`` from ``chat_id`` (an allowed chat)."""
        try:
            reply = self._answer(chat_id, command, args)
        except DBAPIError as exc:
            reply = Reply(remote.database_trouble(exc))
        return Reply(scrub(reply.text, self.secrets), reply.buttons)

    def _answer(self, chat_id: int, command: str, args: list[str]) -> Reply:
        confirm = CONFIRM_WORD in (a.lower() for a in args)
        names = [a for a in args if a.lower() != CONFIRM_WORD]
        if command in ("start", "help") or (command not in READING and command not in QUEUEING):
            return Reply(HELP)
        if len(names) > 1:
            return Reply(f"One bot at a time: /{command} NAME")
        try:
            with self.sessions() as db:
                if command == "status" and not names:
                    return Reply(_fleet_text(db) or "No bot has registered in this database yet.")
                bot = remote.pick_bot(db, names[0] if names else None)
                if command in READING:
                    return Reply(_reading(db, command, bot, self.now()))
                return self._command(db, chat_id, QUEUEING[command], bot, confirm)
        except remote.AmbiguousBot as exc:
            return Reply(f"Several bots run here: {', '.join(exc.names)}. "
                         f"Name one, e.g. /{command} {exc.names[0]}")
        except UnknownBot as exc:
            return Reply(str(exc))

    def _command(self, db: OrmSession, chat_id: int, kind: CommandKind, bot: str,
                 confirm: bool) -> Reply:
        if kind not in CONFIRMED:
            return Reply(_queued(db, kind, bot))
        if confirm:
            nonce = self._asked(chat_id, kind, bot)
            if nonce is None:
                word = _slash(kind)
                return Reply(f"Nothing to confirm: send /{word} {bot} first, then confirm "
                             f"within {CONFIRM_SECONDS:.0f} s.")
            del self.questions[nonce]
            return Reply(_queued(db, kind, bot))
        self._forget_expired()
        nonce = secrets.token_urlsafe(8)
        self.questions[nonce] = Question(chat_id, kind, bot, self.clock() + CONFIRM_SECONDS)
        return Reply(
            f"{CONFIRMED[kind].format(bot=bot)} Press Yes or send /{_slash(kind)} {bot} "
            f"{CONFIRM_WORD} within {CONFIRM_SECONDS:.0f} s.",
            buttons=((f"Yes, {kind} {bot}", f"yes:{nonce}"), ("Cancel", f"no:{nonce}")),
        )

    def press(self, chat_id: int, data: str) -> str:
        """The answer to a press of a confirmation button (``yes:NONCE`` or ``no:NONCE``)."""
        try:
            text = self._press(chat_id, data)
        except DBAPIError as exc:
            text = remote.database_trouble(exc)
        return scrub(text, self.secrets)

    def _press(self, chat_id: int, data: str) -> str:
        choice, _, nonce = data.partition(":")
        question = self.questions.get(nonce)
        if question is None or question.chat_id != chat_id:
            return "That question is no longer open; ask again."
        del self.questions[nonce]
        if choice != "yes":
            return f"Cancelled: no {question.kind} for {question.bot}."
        if self.clock() > question.deadline:
            return (f"Too late: the confirmation held {CONFIRM_SECONDS:.0f} s. "
                    f"Send /{_slash(question.kind)} {question.bot} again.")
        with self.sessions() as db:
            return _queued(db, question.kind, question.bot)

    def _asked(self, chat_id: int, kind: CommandKind, bot: str) -> str | None:
        """The nonce of this chat's open question for ``kind`` on ``bot``, if in time."""
        self._forget_expired()
        for nonce, question in self.questions.items():
            if (question.chat_id, question.kind, question.bot) == (chat_id, kind, bot):
                return nonce
        return None

    def _forget_expired(self) -> None:
        now = self.clock()
        for nonce in [n for n, q in self.questions.items() if now > q.deadline]:
            del self.questions[nonce]


def _slash(kind: CommandKind) -> str:
    return next(word for word, k in QUEUEING.items() if k == kind)


def _queued(db: OrmSession, kind: CommandKind, bot: str) -> str:
    command_id = remote.queue(db, kind, bot)
    return f"Queued {kind} for {bot} (command #{command_id}); the bot carries it out."


def _fleet_text(db: OrmSession, only: str | None = None, *, now: datetime | None = None) -> str:
    """One line per bot (or only ``only``'s): state, mode, venue, PnL, heartbeat."""
    lines = []
    for bot in remote.fleet(db, now or datetime.now(UTC)):
        if only is not None and bot["name"] != only:
            continue
        age = bot["heartbeat_age_s"]
        lines.append(f"{bot['name']}: {bot['state']}, {bot['mode']} on {bot['venue']}, "
                     f"{_day_pnl(bot)}, {bot['open_positions']} open"
                     + ("" if age is None else f", heartbeat {age:.0f} s ago")
                     + (f", error: {bot['last_error']}" if bot["last_error"] else ""))
    return "\n".join(lines)


def _day_pnl(bot: dict[str, Any]) -> str:
    """The bot's net PnL, said of its day: today's, or its last day's when it has no session
    today (in its SESSION_TIMEZONE)."""
    if bot["session_date"] is None:
        return "no trading day yet"
    day = "today" if bot["day_is_today"] else f"on its last day {bot['session_date']}"
    return f"net PnL {figure(bot['net_pnl'])} {day}"


def _reading(db: OrmSession, command: str, bot: str, now: datetime) -> str:
    if command == "status":
        remote.status(db, bot, now)  # a replay run's name: said, no empty text
        return _fleet_text(db, bot, now=now)
    if command == "pnl":
        # today is the bot's trading day in its SESSION_TIMEZONE, as on its fleet line
        line = remote.status(db, bot, now)
        figures = remote.pnl(db, bot) if line["day_is_today"] else None
        if figures is None:
            last = f" (its last day: {line['session_date']})" if line["session_date"] else ""
            return f"{bot} has no session today{last}."
        return (f"{bot} · {figures['session']} ({figures['mode']})\n"
                f"equity {figure(figures['equity'])}, net PnL {figure(figures['net_pnl'])} "
                f"(fees {figure(figures['fees'])}, LLM {figure(figures['llm_cost'])}), unrealized "
                f"{figure(figures['unrealized_pnl'])}\n{figures['trades']} trades, "
                f"{figures['wins']} wins, {figures['losses']} losses")
    if command == "positions":
        return _listing(remote.positions(db, bot), f"{bot} is flat: no open positions.",
                        lambda r: f"{r['symbol']}: {r['quantity']:g} @ {figure(r['avg_price'])}, "
                                  f"mark {figure(r['mark_price'])}, unrealized "
                                  f"{figure(r['unrealized_pnl'])}")
    return _listing(remote.recent_trades(db, bot), f"{bot} has no trades yet.",
                    lambda r: f"{r['timestamp'][:19]} {r['action']} {r['quantity']:g} "
                              f"{r['symbol']} @ {figure(r['price'])}, PnL {figure(r['realized_pnl'])} "
                              f"({r['reason'] or '-'})")


def _listing(rows: list[dict[str, Any]], empty: str, line: Callable[[dict[str, Any]], str]
             ) -> str:
    return "\n".join(map(line, rows)) if rows else empty


def build_application(settings: Settings, desk: Desk) -> Application:
    """The python-telegram-bot application for ``desk``, on ``TELEGRAM_API_BASE_URL``."""
    if problem := settings.telegram_problem():
        raise ConfigError(problem)
    assert settings.telegram_bot_token is not None
    base = settings.telegram_api_base_url.rstrip("/")
    app = (ApplicationBuilder().token(settings.telegram_bot_token.get_secret_value())
           .base_url(f"{base}/bot").base_file_url(f"{base}/file/bot").build())

    async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if not desk.allows(chat.id if chat else None):
            user = update.effective_user
            log.warning("ignored an update from chat %s (user %s): not in TELEGRAM_CHAT_IDS",
                        chat.id if chat else "?", user.id if user else "?")
            raise ApplicationHandlerStop

    async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        command, _, addressee = message.text.split()[0][1:].partition("@")
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # "/pause@other_bot" in a group: another bot's command
        command = command.lower()
        reply = await asyncio.to_thread(desk.answer, chat.id, command, list(context.args or []))
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton(label, callback_data=data) for label, data in reply.buttons]]
        ) if reply.buttons else None
        await message.reply_text(reply.text[:MAX_MESSAGE_CHARS], reply_markup=markup)

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, chat = update.callback_query, update.effective_chat
        if query is None or chat is None:
            return
        text = await asyncio.to_thread(desk.press, chat.id, query.data or "")
        await query.answer()
        await query.edit_message_text(text[:MAX_MESSAGE_CHARS])

    app.add_handler(TypeHandler(Update, gate), group=-1)
    app.add_handler(CommandHandler(["start", "help", *READING, *QUEUEING], on_command))
    app.add_handler(MessageHandler(filters.COMMAND, on_command))  # any other: the help
    app.add_handler(CallbackQueryHandler(on_press))
    return app


async def poll_until(app: Application, stop: asyncio.Event) -> None:
    """Answer updates until ``stop`` is set, then shut the application down cleanly.

    A Bot API that cannot be reached at the start (getMe, deleteWebhook) is tried again,
    waiting twice as long each time up to ``LONGEST_RETRY_SECONDS``, until ``stop``; once
    polling, python-telegram-bot rides out outages itself. The retries are ours rather than
    ``bootstrap_retries=-1``, whose loop does not see ``stop``. A rejected token is a
    ConfigError naming the setting (python-telegram-bot's own message quotes the token)."""
    wait = FIRST_RETRY_SECONDS
    while not stop.is_set():
        try:
            await _poll(app, stop)
            return
        except InvalidToken:
            raise ConfigError(TOKEN_REJECTED) from None
        except NetworkError as exc:  # TimedOut included
            log.warning("Telegram Bot API unreachable (%s); trying again in %.0f s", exc, wait)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
        wait = min(2 * wait, LONGEST_RETRY_SECONDS)


async def _poll(app: Application, stop: asyncio.Event) -> None:
    async with app:
        assert app.updater is not None
        # Polling first, as ``run_polling`` does: if its bootstrap fails the application is
        # not running yet, so leaving the block can shut it down for the next try.
        await app.updater.start_polling(allowed_updates=["message", "callback_query"])
        await app.start()
        await stop.wait()
        await app.updater.stop()
        await app.stop()


def desk_for(settings: Settings) -> Desk:
    from db.engine import make_engine, session_factory

    return Desk(session_factory(make_engine(settings.database_url)),
                frozenset(settings.telegram_chat_ids), tuple(settings.secret_values()))


def quiet_http_log() -> None:
    """httpx logs every request's URL at INFO, and a Bot API URL carries the token (the
    scrubber masks it too; this keeps the log readable)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class Background:
    """Telegram control polling on a thread of its own (next to a bot's loop, or a test)."""

    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    stop: asyncio.Event

    def close(self, timeout: float = 30.0) -> None:
        with contextlib.suppress(RuntimeError):  # its loop already ended, and closed
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout)


def start_background(app: Application) -> Background:
    """Poll for ``app`` on a daemon thread. Whatever goes wrong there is logged and ends
    only Telegram control: a bot beside it trades on."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        try:
            loop.run_until_complete(poll_until(app, stop))
        except ConfigError as exc:
            log.error("Telegram control stopped: %s", exc)
        except Exception:
            log.exception("Telegram control stopped")
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="telegram", daemon=True)
    thread.start()
    return Background(thread, loop, stop)


def serve(settings: Settings) -> None:
    """``python -m bot telegram``: answer the allowed chats until SIGINT or SIGTERM."""
    from bot.secrets_filter import install_log_scrubber
    from db.migrate import upgrade

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_scrubber(settings.secret_values())
    quiet_http_log()
    desk = desk_for(settings)
    app = build_application(settings, desk)  # refuses a missing token or chat list first
    upgrade(settings.database_url)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        log.info("answering Telegram chats %s", ", ".join(map(str, desk.allowed_chats)))
        await poll_until(app, stop)

    asyncio.run(main())
