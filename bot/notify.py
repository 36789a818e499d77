"""Hear of a new command at once on PostgreSQL: LISTEN on a dedicated connection.

``db.commands`` sends ``NOTIFY tradedesk_commands, '<bot name>'`` with every command it
queues. Between iterations the loop waits on this connection instead of sleeping, so a
STOP or CLOSE-ALL is acted on within milliseconds while the database is asked only every
``FALLBACK_POLL_SECONDS``. The connection is a plain psycopg one in autocommit, outside the
SQLAlchemy pool, because a LISTEN lives as long as its connection and a pooled connection
is handed to other work. Anything going wrong here only costs latency: the loop's poll
still finds every command, so errors close the connection and it is reopened later.
"""

from __future__ import annotations

import contextlib
import logging
import time

import psycopg
from sqlalchemy.engine import make_url

from db.commands import COMMANDS_CHANNEL
from db.engine import is_sqlite, normalize_url

log = logging.getLogger("tradedesk.notify")
RECONNECT_AFTER_SECONDS = 30.0


class CommandListener:
    """Waits for NOTIFY addressed to one bot; None from ``for_url`` on SQLite."""

    def __init__(self, url: str, bot: str) -> None:
        parsed = make_url(normalize_url(url))
        self.conninfo = parsed.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self.bot = bot
        self._conn: psycopg.Connection | None = None
        self._retry_at = 0.0

    @classmethod
    def for_url(cls, url: str, bot: str) -> CommandListener | None:
        return None if is_sqlite(url) else cls(url, bot)

    def connect(self) -> bool:
        """Open the connection and LISTEN; False (and a later retry) when it cannot."""
        if self._conn is not None:
            return True
        if time.monotonic() < self._retry_at:
            return False
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5,
                                   application_name=f"tradedesk-listen-{self.bot}")
            conn.execute(f"LISTEN {COMMANDS_CHANNEL}")
        except psycopg.Error as exc:
            log.warning("cannot LISTEN for commands (polling instead): %s", exc)
            self._retry_at = time.monotonic() + RECONNECT_AFTER_SECONDS
            return False
        self._conn = conn
        return True

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` s; True when a command for this bot was announced.

        Without a connection it sleeps the timeout, so the caller's poll keeps its pace.
        """
        if not self.connect():
            time.sleep(timeout)
            return False
        assert self._conn is not None
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                for note in self._conn.notifies(timeout=left, stop_after=1):
                    if note.payload == self.bot:  # other bots' notes: keep waiting
                        return True
        except psycopg.Error as exc:
            log.warning("command listener lost its connection (polling instead): %s", exc)
            self.close()
            self._retry_at = time.monotonic() + RECONNECT_AFTER_SECONDS
        return False

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
