"""Secrets never leave the process: not into the database, the logs or the console's pages.

Marker values are planted in every secret setting, the real bot runs a few iterations as an
OS process with DEBUG logs captured, the console renders every page against the database it
left, and then every text column of every table, the logs and the pages are scanned for the
markers. LIVE mode is refused at the command line unless explicitly confirmed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import JSON, String, Text, column, inspect, select, table, update

from bot.secrets_filter import MASK, SecretScrubber, scrub
from bot.venue.base import OrderRejected, TransientVenueError
from bot.venue.paper import PaperVenue
from db.engine import make_engine, session_factory
from db.models import BotStatus, Command, LLMTrace, TraceBlob
from tests.conftest import ROOT, candle_file
from tests.console_seed import seed_console_db
from tests.test_console_apptest import (  # noqa: F401 (_console_env: autouse fixture)
    PAGES,
    _all_text,
    _app,
    _console_env,
    _open,
    _rendered,
)

RUN = uuid.uuid4().hex[:12]
MARKERS = {
    "EXCHANGE_API_KEY": f"mk-exkey-{RUN}",
    "EXCHANGE_API_SECRET": f"mk-exsecret-{RUN}",
    "EXCHANGE_API_PASSWORD": f"mk-expass-{RUN}",
    "GEMINI_API_KEY": f"mk-gemini-{RUN}",
    "CONSOLE_PASSWORD": f"mk-console-{RUN}",
    # port 9 refuses at once: the bot's notifications fail and are counted
    "NOTIFY_URLS": f"json://127.0.0.1:9/mk-notify-{RUN}",
}


def bot_env(db_url: str, **extra: str) -> dict[str, str]:
    """The test's (cleaned) environment plus the markers, a replay feed and DEBUG logs."""
    env = dict(os.environ)
    env.update(MARKERS)
    env.update(DATABASE_URL=db_url, FEED=f"replay:{candle_file('BTC_USDT-5m.csv')}",
               LOOP_INTERVAL_SECONDS="0.05", LOG_LEVEL="DEBUG", PYTHONPATH=str(ROOT), **extra)
    return env


def run_bot(tmp_path: Path, db_url: str, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """``python -m bot`` from an empty folder (no .env of the developer is read)."""
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path,
                          env=bot_env(db_url, **extra), capture_output=True, text=True,
                          timeout=300)


def database_text(url: str) -> str:
    """Every string and JSON column of every row of every table, and every stored prompt and
    answer (compressed in ``trace_blobs``), as one text to search."""
    engine = make_engine(url)
    parts: list[str] = []
    try:
        inspector = inspect(engine)
        with engine.connect() as conn:
            for name in inspector.get_table_names():
                columns = [c["name"] for c in inspector.get_columns(name)
                           if isinstance(c["type"], String | Text | JSON)]
                if not columns:
                    continue
                rows = conn.execute(select(*table(name, *map(column, columns)).c)).all()
                parts.extend(str(v) for row in rows for v in row if v is not None)
            parts.extend(zlib.decompress(data).decode()
                         for data in conn.execute(select(TraceBlob.data)).scalars())
    finally:
        engine.dispose()
    return "\n".join(parts)


def found(text: str) -> list[str]:
    return [name for name, marker in MARKERS.items() if marker in text]


def pages_with_markers_set(url: str, monkeypatch) -> Iterator[tuple[str, str]]:
    """Each console page's name and all its text, rendered with the markers as the secrets."""
    for name, marker in MARKERS.items():
        monkeypatch.setenv(name, marker)
    at = _app(url, monkeypatch)
    for page in PAGES:
        _open(at, page)
        yield page, _all_text(at) + _rendered(at)


@pytest.mark.slow
def test_no_secret_reaches_db_logs_or_console(tmp_path, sqlite_url, monkeypatch) -> None:
    done = run_bot(tmp_path, sqlite_url, "run", "--iterations", "6")
    assert done.returncode == 0, done.stderr[-3000:]
    logs = done.stdout + done.stderr
    assert "tradedesk.loop" in logs, "the run should have logged (LOG_LEVEL=DEBUG)"
    assert not found(logs), f"secrets in the bot's logs: {found(logs)}"

    stored = database_text(sqlite_url)
    assert "BTC/USDT" in stored  # the scan does read the bot's rows
    assert not found(stored), f"secrets in the database: {found(stored)}"

    for page, shown in pages_with_markers_set(sqlite_url, monkeypatch):
        assert not found(shown), f"secrets on the {page} page: {found(shown)}"


@pytest.mark.slow
def test_live_mode_needs_confirmation_at_the_cli(tmp_path, sqlite_url) -> None:
    refused = run_bot(tmp_path, sqlite_url, "run", "--iterations", "1",
                      TRADING_MODE="LIVE", EXCHANGE="binance")
    assert refused.returncode == 2
    assert "LIVE_TRADING_CONFIRMED" in refused.stderr
    assert "TRADING_MODE=LIVE" in refused.stderr
    assert not found(refused.stdout + refused.stderr)


@pytest.mark.slow
def test_live_confirmation_is_not_enough_on_the_paper_venue(tmp_path, sqlite_url) -> None:
    refused = run_bot(tmp_path, sqlite_url, "run", "--iterations", "1",
                      TRADING_MODE="LIVE", LIVE_TRADING_CONFIRMED="true", EXCHANGE="paper")
    assert refused.returncode == 2
    assert "EXCHANGE" in refused.stderr


@pytest.mark.parametrize("name", sorted(MARKERS))
def test_markers_are_what_the_settings_call_secrets(name, monkeypatch) -> None:
    """The scan is only as good as its markers: each one must be a secret setting."""
    from bot.config import load_settings

    monkeypatch.setenv(name, MARKERS[name])
    assert MARKERS[name] in load_settings().secret_values()


def test_scrub_masks_values_and_request_signatures() -> None:
    text = f"key {MARKERS['EXCHANGE_API_KEY']} at /api?symbol=X&signature=ab12cd&apiKey=zz9"
    out = scrub(text, [MARKERS["EXCHANGE_API_KEY"], ""])
    assert out == f"key {MASK} at /api?symbol=X&signature={MASK}&apiKey={MASK}"
    assert scrub(None, ["x"]) == "" and scrub(12.5, []) == "12.5"


def test_log_records_are_scrubbed_of_secrets_of_four_characters_or_more() -> None:
    import logging

    record = logging.LogRecord("t", logging.INFO, __file__, 1, "login %s with %s", ("abcd", "xyz"),
                               None)
    assert SecretScrubber(["abcd", "xyz"]).filter(record)
    assert record.getMessage() == f"login {MASK} with xyz"


def test_secrets_in_stored_text_are_masked_on_every_page(sqlite_url, monkeypatch) -> None:
    """Text the bot stored before a secret was configured (or by a bot that leaked it) is
    masked by the console itself: errors, answers, results and the last error."""
    seed_console_db(sqlite_url)
    leak = " ".join(MARKERS.values())
    engine = make_engine(sqlite_url)
    try:
        with session_factory(engine)() as db:
            db.execute(update(LLMTrace).values(
                raw_response=leak, execution_result=leak, decision_json=leak, prompt=leak,
                errors=[leak], answers=[{"raw_response": leak, "errors": [leak]}]))
            db.execute(update(Command).values(result=leak))
            db.execute(update(BotStatus).values(last_error=leak, state="crashed"))
            db.commit()
    finally:
        engine.dispose()
    for page, shown in pages_with_markers_set(sqlite_url, monkeypatch):
        assert MASK in shown, page  # the leaked text is on the page (the sidebar's last error)
        assert not found(shown), f"secrets on the {page} page: {found(shown)}"


def test_a_database_error_on_the_console_hides_the_url_password(monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.test_console_apptest import CONSOLE

    password = MARKERS["EXCHANGE_API_PASSWORD"] + "-db"
    monkeypatch.setenv("EXCHANGE_API_KEY", MARKERS["EXCHANGE_API_KEY"])
    # Port 9 (discard) refuses at once: the console reports the unusable database.
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:{password}@127.0.0.1:9/x?note="
                                       f"{MARKERS['EXCHANGE_API_KEY']}")
    at = AppTest.from_file(str(CONSOLE), default_timeout=60)
    at.run()
    shown = _all_text(at) + _rendered(at)
    assert "The database cannot be used" in shown
    assert password not in shown and MARKERS["EXCHANGE_API_KEY"] not in shown


def test_tracebacks_and_stacks_in_log_records_are_scrubbed() -> None:
    import io
    import logging

    secret = MARKERS["EXCHANGE_API_SECRET"]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(SecretScrubber([secret]))
    log = logging.getLogger(f"tradedesk.test-scrub-{RUN}")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise RuntimeError(f"the token `{secret}` was rejected")
        except RuntimeError:
            log.exception("failed", stack_info=True)
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    assert "RuntimeError: the token `***` was rejected" in text  # the traceback is kept
    assert "Stack (most recent call last)" in text
    assert secret not in text


def test_the_database_urls_password_is_a_secret_value(monkeypatch) -> None:
    """A password in DATABASE_URL is masked like any secret setting: the log scrubber and
    the pages mask what ``secret_values`` lists (percent-encoded or not)."""
    from bot.config import load_settings

    password = f"pg-{RUN}/+x"
    encoded = "pg-" + RUN + "%2F%2Bx"
    settings = load_settings(DATABASE_URL=f"postgresql://trader:{encoded}@db.example:5432/td")
    values = settings.secret_values()
    assert password in values and encoded in values
    line = scrub(f"connect to postgresql://trader:{encoded}@db.example failed ({password})",
                 values)
    assert password not in line and encoded not in line
    assert load_settings(DATABASE_URL="sqlite:///data/x.db").secret_values() == []


def test_a_secret_an_llm_was_shown_or_answers_is_masked_in_its_trace(sqlite_url, tmp_path):
    """A secret value that reaches a prompt, an answer or a tool result (a key pasted into
    a strategy note, a model echoing what it saw) is stored masked, blobs included."""
    from bot.engine.base import EngineResult
    from bot.engine.schema import Decision
    from tests.crafted import WARMUP, write_path
    from tests.loop_harness import make_runtime, step

    secret = MARKERS["GEMINI_API_KEY"]

    class Echoing:
        name = "gemini"

        def decide(self, context):
            return EngineResult(
                decision=Decision(), engine="gemini", provider="google",
                prompt=f"You trade. Note: {secret}", prompt_system=f"system {secret}",
                raw_response=f"my key is {secret}",
                answers=[{"raw_response": f"answer {secret}", "errors": [f"error {secret}"]}],
                tool_calls=[{"name": "candles", "result": f"tool saw {secret}"}])

    path = write_path(tmp_path / "TST_USDT-5m.csv", [100.0] * (WARMUP + 5))
    rt = make_runtime(sqlite_url, [path], Echoing(), run_name="secrets", GEMINI_API_KEY=secret)
    step(rt, 2)
    text = database_text(sqlite_url)
    assert "my key is" in text and "tool saw" in text  # the scan reads what was stored
    assert found(text) == []


class _EchoesItsKey(PaperVenue):
    """An exchange whose error answers echo the request's API key, as some exchanges' do:
    orders are refused, and, while ``down``, tickers time out."""

    key = ""
    down = False

    def create_order(self, *args, **kwargs):
        raise OrderRejected(f'{{"code": -2015, "msg": "key {self.key} may not trade"}}')

    def fetch_ticker(self, symbol):
        if self.down:
            raise TransientVenueError(f"timeout of GET /ticker (X-MBX-APIKEY: {self.key})")
        return super().fetch_ticker(symbol)


def test_a_venue_error_echoing_the_key_is_stored_masked(sqlite_url, tmp_path) -> None:
    """What a venue's error says reaches the database as the bot's last error (the
    heartbeat, which the console and ``watch``'s alerts show), as a refused order's error
    and in its decision's result; an error echoing the exchange key stored it there
    whole."""
    from bot.loop import heartbeat, run_iteration
    from tests.loop_harness import make_runtime
    from tests.test_kill import cut_file

    key = MARKERS["EXCHANGE_API_KEY"]
    rt = make_runtime(sqlite_url, [cut_file(tmp_path, 210)], kind="live", run_name="default",
                      venue_class=_EchoesItsKey, EXCHANGE_API_KEY=key)
    assert isinstance(rt.venue, _EchoesItsKey)
    rt.venue.key = key
    run_iteration(rt)  # the rules engine's entry, refused
    rt.venue.down = True
    run_iteration(rt)  # the ticker's timeout
    assert rt.errors, "the timeout is the iteration's error"
    heartbeat(rt)
    with rt.db() as db:
        assert db.scalar(select(BotStatus.last_error))
    stored = database_text(sqlite_url)
    assert key not in stored, [line for line in stored.splitlines() if key in line]
    assert MASK in stored
