"""Connections to the store: one URL, SQLite (WAL) by default, PostgreSQL by URL.

SQLite is tuned for one writer (the bot) and many readers (the console): WAL so reads never
block the writer, a busy timeout so a brief lock waits instead of failing, and foreign keys
on because SQLite leaves them off.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import sessionmaker

DEFAULT_DATABASE_URL = "sqlite:///data/tradedesk.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# libpq's: a server that accepts and never answers fails the attempt (and the retry loop
# goes on) instead of holding it for ever; keepalives find a connection whose peer is gone.
# A URL that names one of them keeps its own.
POSTGRES_CONNECT_ARGS = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30,
                         "keepalives_interval": 10, "keepalives_count": 3}


def normalize_url(url: str) -> str:
    """Map the plain URLs hosting providers hand out onto the driver we ship (psycopg 3)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


URL_FORMS = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/NAME"


def check_url(url: str) -> str:
    """``url`` if it names a store we run on (SQLite or PostgreSQL through a driver we ship),
    else ValueError saying what is wrong, in words that never repeat the URL's password."""
    try:
        parsed = make_url(normalize_url(url.strip()))
        backend = parsed.get_backend_name()
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is no number
        raise ValueError(f"not a database URL; expected {URL_FORMS}") from None
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"{backend!r} databases are not supported; expected {URL_FORMS}")
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        # gone with the process: no command, console or restart could read what it holds
        raise ValueError(f"a SQLite URL names its file, e.g. {DEFAULT_DATABASE_URL}; a "
                         "database in memory ends with the process")
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise ValueError(f"driver {parsed.get_driver_name()!r} is not installed; expected "
                         f"{URL_FORMS}") from None
    return url


SQLITE_HEADER = b"SQLite format 3\x00"  # the first bytes of every SQLite database file


def _sqlite_file(url: str) -> Path | None:
    """The file a SQLite ``url`` names; None for another backend, memory or a ``file:`` URI."""
    parsed = make_url(normalize_url(url))
    path = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" or \
            path.startswith("file:"):
        return None
    return Path(path)


def missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite file ``url`` names that is not there, else None. A command that
    reads or commands an existing store names it, rather than creating an empty one where a
    mistyped path points (only ``run`` and ``replay`` start a store)."""
    path = _sqlite_file(url)
    return str(path) if path is not None and not path.exists() else None


def sqlite_file_problem(url: str) -> str | None:
    """Why the SQLite file ``url`` names cannot be a database (a folder, or a file of other
    bytes: a CSV given as --db), in words; None for a database, an empty file (SQLite's new
    one), a file not there or another backend. SQLite's own word for either is "unable to
    open" or "file is not a database", naming no path."""
    path = _sqlite_file(url)
    if path is None:
        return None
    if path.is_dir():
        return f"{path} is a directory, not a database file"
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_HEADER))
    except OSError:  # not there, or unreadable: SQLite says so in its own words
        return None
    return f"{path} is not a SQLite database file" if head and head != SQLITE_HEADER else None


def is_sqlite(url: str) -> bool:
    return make_url(normalize_url(url)).get_backend_name() == "sqlite"


SQLITE_PAGE_SIZE = 8192


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # Takes effect on a new file only, so before WAL (which fixes the page size): a prompt's
    # blob (~1.4 kB compressed) took a 4 kB page for two; 8 kB pages hold five, and every
    # table's pages waste less of their end.
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Build an engine; for SQLite file URLs the parent folder is created first."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # a ``file:`` URI (e.g. a read-only open) names an existing file: create nothing
        if parsed.database and parsed.database != ":memory:" and not (
            parsed.database.startswith("file:")
        ):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=2, pool_pre_ping=True,
                         connect_args={name: value for name, value in POSTGRES_CONNECT_ARGS.items()
                                       if name not in parsed.query})


@cache
def engine_for(url: str) -> Engine:
    """One engine per URL per process (the console reruns scripts; engines must persist)."""
    return make_engine(url)


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def bound_engine(sessions: sessionmaker) -> Engine:
    """The engine a factory from ``session_factory`` opens its sessions on.

    For the reads and writes made at every loop step with plain table statements: a Core
    connection costs a fraction of an ORM session.
    """
    return sessions.kw["bind"]
