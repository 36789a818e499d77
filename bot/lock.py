"""One bot per name per database, with a guard that dies with its holder.

SQLite: an exclusive ``flock`` on a file beside the database; the kernel releases it when
the process dies, even by SIGKILL. PostgreSQL: a session-level advisory lock held on a
dedicated connection; the server releases it when that connection drops.
"""

from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from db.engine import make_engine, normalize_url
from db.migrate import DatabaseError

LOST_PEER_KEEPALIVES = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5,
                        "tcp_keepalives_count": 3}


class BotAlreadyRunning(RuntimeError):
    """Another process holds this bot's lock."""


class BotLock:
    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = normalize_url(url), name
        self._handle = None
        self._connection = None

    def acquire(self) -> None:
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            path = Path(f"{parsed.database}.{self.name}.lock")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = path.open("a+")
            except OSError as exc:
                raise DatabaseError(
                    f"{path}: cannot create the bot's lock file beside the database "
                    f"({exc.strerror}); the database's folder must be writable"
                ) from exc
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise BotAlreadyRunning(self.name) from None
            self._handle = handle
            return
        key = int.from_bytes(hashlib.sha256(f"tradedesk:{self.name}".encode()).digest()[:8],
                             "big", signed=True)
        engine = make_engine(self.url, pool_size=1)
        connection = engine.connect()
        # A lost machine never closes its socket: let the server probe it (idle 10 s, then
        # 3 probes 5 s apart) so the lock is freed within ~25 s, inside the 30 s promise.
        for setting, value in LOST_PEER_KEEPALIVES.items():
            connection.execute(text(f"SET {setting} = {value}"))
        got = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        connection.commit()
        if not got:
            connection.close()
            engine.dispose()
            raise BotAlreadyRunning(self.name)
        self._connection = connection

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
