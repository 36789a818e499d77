"""Shared fixtures: real SQLite and PostgreSQL databases, settings, and the shared data."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from db.engine import make_engine, session_factory
from db.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRADEDESK_SHARED", ROOT.parent / "shared"))
CANDLES = SHARED / "data" / "candles"
CCXT_FIXTURES = SHARED / "fixtures" / "ccxt"
PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://tradedesk:tradedesk@127.0.0.1:5432/postgres"
)


def candle_file(name: str) -> Path:
    """A file of ../shared/data/candles, or skip with the reason when shared/ is absent."""
    path = CANDLES / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared candle data is not beside this checkout")
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once per run: migrating one per test was most of
    many tests' time."""
    path = tmp_path_factory.mktemp("template") / "tradedesk.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated SQLite database for one test: a copy of the run's template."""
    path = tmp_path / "tradedesk.db"
    with closing(sqlite3.connect(sqlite_template)) as source, \
            closing(sqlite3.connect(path)) as copy:
        source.backup(copy)  # reads through the template's WAL, unlike a file copy
    return f"sqlite:///{path}"


def _postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; .ci/run starts it")
        pytest.skip("PostgreSQL is not running here (run scripts/postgres.sh)")
    return PG_ADMIN_URL


@contextmanager
def postgres_database(admin_url: str, revision: str | None = "head",
                      template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database at ``revision`` (None: empty), or a copy of the database
    named ``template``, dropped afterwards."""
    name = f"td_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'
                          + (f' TEMPLATE "{template}"' if template else "")))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    if revision is not None and template is None:
        upgrade(url, revision)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database_at(request: pytest.FixtureRequest, tmp_path: Path,
                revision: str | None) -> Iterator[str]:
    """A new database of the store a test is parametrized with (``request.param``: sqlite or
    postgres) at ``revision`` (None: empty): for the tests of a migration from it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        if revision is not None:
            upgrade(url, revision)
        yield url
        return
    with postgres_database(request.getfixturevalue("postgres_admin_url"), revision) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> Iterator[str]:
    """The name of a PostgreSQL database migrated to head once per run (see
    ``sqlite_template``); the server copies it for each test."""
    with postgres_database(postgres_admin_url) as url:
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def postgres_url(postgres_admin_url: str, postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test, dropped afterwards."""
    with postgres_database(postgres_admin_url, template=postgres_template) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run a test against both stores."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def db_session(sqlite_url: str) -> Iterator:
    engine = make_engine(sqlite_url)
    factory = session_factory(engine)
    with factory() as session:
        yield session
    engine.dispose()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's .env or secrets, nor write into data/."""
    for key in list(os.environ):
        if key.isupper() and key in _SETTING_NAMES:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


def _setting_names() -> set[str]:
    from bot.config import Settings

    return {(f.alias or name).upper() for name, f in Settings.model_fields.items()}


_SETTING_NAMES = _setting_names()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs PostgreSQL ``postgres``, so that ``-m "not postgres"`` (the
    fast tier) leaves them all out: those that take the server's fixture, and the sqlite/
    postgres parametrizations on their postgres side."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgres_admin_url" in getattr(item, "fixturenames", ()) or "postgres" in params.values():
            item.add_marker(pytest.mark.postgres)
