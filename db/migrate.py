"""Create or upgrade a database to the newest schema, refusing what is not ours.

Startup calls ``upgrade``: a fresh database is created, an older one is migrated, and a
database whose revision this code does not know (newer code wrote it) is left untouched
with a clear message instead of being overwritten.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession

from db.backfill import roll_up_stored
from db.engine import is_sqlite, make_engine, normalize_url
from db.retry import is_outage

ROOT = Path(__file__).resolve().parent.parent


class DatabaseError(RuntimeError):
    """The database cannot be used as it is; the message says why and what to do."""


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "db" / "migrations"))
    cfg.attributes["url"] = normalize_url(url)
    return cfg


def head_revision(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head() or ""


def current_revision(bind: Engine | Connection) -> str | None:
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return current_revision(conn)
    return MigrationContext.configure(bind).get_current_revision()


def schema_mismatch(engine: Engine, url: str) -> str | None:
    """How the database behind ``engine`` differs from this code's schema (None: it does
    not), read without changing it: a file opened read-only cannot be migrated, and the
    pages' queries fail on an older one."""
    found, head = current_revision(engine), head_revision(url)
    return None if found == head else f"is at schema {found or 'none'}; this code reads {head}"


def shown(url: str) -> str:
    """The URL as messages may show it: never with its password."""
    return make_url(normalize_url(url)).render_as_string(hide_password=True)


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (default: the newest).

    A database that cannot be opened or written (a read-only file or folder, a refused
    login) is a ``DatabaseError`` naming it, not a traceback; nothing is changed. A server
    that does not answer, or a lock or full disk, passes through as it is
    (``db.retry.is_outage``): that is waited out, not a setting to fix.
    """
    try:
        _upgrade(url, revision)
    except OperationalError as exc:
        if is_outage(exc):
            raise
        raise DatabaseError(
            f"{shown(url)}: cannot be opened or written ({exc.orig}). Check that the file and "
            "its folder are writable, or that the server is up and the login works."
        ) from exc


def _migration_engine(url: str) -> Engine:
    """An engine whose transactions hold DDL too, so a migration lands whole or not at all.

    Python's sqlite3 driver commits before each CREATE/ALTER on its own: a bot killed while
    it created the schema left some tables and no version stamp, a database the next start
    refused as not ours. Here the driver begins nothing and every transaction is an explicit
    BEGIN (SQLAlchemy's recipe for SQLite transactional DDL). Only this short-lived engine
    gets the listeners: on the loop's engine they would cost every transaction.
    """
    engine = make_engine(url)
    if is_sqlite(url):
        event.listen(engine, "connect", _driver_begins_nothing)
        event.listen(engine, "begin", _begin_explicitly)
    return engine


def _driver_begins_nothing(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None


def _begin_explicitly(conn: Connection) -> None:
    # IMMEDIATE: take the write lock first, so a second start waits on the busy timeout
    # and then sees the first one's schema, instead of both reading "none" and colliding
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# one key for every Tradedesk migration on a server: concurrent starts take turns
MIGRATION_LOCK_KEY = int.from_bytes(b"tdmigrat", "big", signed=True)


def _upgrade(url: str, revision: str) -> None:
    engine = _migration_engine(url)
    # Look before touching: our SQLite connect pragmas switch the file to WAL, which rewrites
    # its header, and a database that turns out not to be ours must stay byte for byte.
    probe = create_engine(normalize_url(url)) if is_sqlite(url) else engine
    try:
        known = {s.revision for s in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
        current = current_revision(probe)
        if current is None and inspect(probe).get_table_names():
            tables = ", ".join(sorted(inspect(probe).get_table_names())[:5])
            raise DatabaseError(
                f"{shown(url)}: has tables ({tables}, ...) but no Tradedesk schema version; "
                "refusing to touch it. Point DATABASE_URL at a new or Tradedesk database."
            )
        if current is not None and current not in known:
            raise DatabaseError(
                f"{shown(url)}: schema revision {current} is newer than this code knows; "
                "upgrade Tradedesk instead of pointing old code at a new database."
            )
        cfg = alembic_config(url)
        with engine.begin() as conn:
            if not is_sqlite(url):
                # Simultaneous first starts each saw no schema and both created it: one died
                # on alembic_version's key. The transaction's advisory lock makes them take
                # turns; the second then finds the first's stamp and has nothing to do.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            if revision == "head" and current != current_revision(conn):
                # the newest code's rollups of the rows stored before, in the same
                # transaction: the schema lands with them or not at all
                with OrmSession(bind=conn) as db:
                    roll_up_stored(db)
    finally:
        probe.dispose()
        engine.dispose()


if __name__ == "__main__":
    import os
    import sys

    from db.engine import DEFAULT_DATABASE_URL

    try:
        upgrade(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    except DatabaseError as exc:
        print(f"database error: {exc}", file=sys.stderr)
        sys.exit(2)  # as ``python -m bot`` does for a database it cannot use
    print("database is at the newest schema")
