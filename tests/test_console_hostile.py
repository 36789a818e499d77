"""Hostile rows: every stored text the console shows reads as the text it is, never markdown.

The database is seeded as usual, then every text column the pages show is overwritten with a
planted link, emphasis, raw HTML and a stray backtick (``tests.console_seed.PLANTED``), and a
second bot is named with it. AppTest reads the markdown source of every element Streamlit
renders as markdown (alerts, captions, metrics, widget and tab labels, toasts); the browser
test in ``test_console_browser`` checks the drawn pages for links.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.console_seed import PLANTED, plant_hostile_text, seed_console_db
from tests.rendered import as_rendered
from tests.test_console_apptest import _console_env  # noqa: F401 (autouse)

CONSOLE = Path(__file__).resolve().parent.parent / "console.py"
PAGES = ["overview", "chart", "portfolio", "trades", "performance", "decisions", "replays", "fleet",
         "commands", "settings"]
# markup the planted text forms when it reaches markdown unescaped (or as a bare autolink)
FORMED = re.compile(r"(?<!\\)(\]\(https|<a href|\*\*bold\*\*|`tick)|https?://")
MARKDOWN_KINDS = ("markdown", "caption", "header", "subheader", "title", "info", "warning",
                  "error", "success", "toast")
LABELLED_KINDS = ("selectbox", "multiselect", "button", "text_input", "toggle", "tabs")


@pytest.fixture
def hostile_url(sqlite_url: str) -> str:
    seed_console_db(sqlite_url)
    plant_hostile_text(sqlite_url)
    return sqlite_url


def _markdown_sources(at: AppTest) -> list[str]:
    """The markdown source of everything on the page that Streamlit renders as markdown."""
    sources = [str(e.value) for kind in MARKDOWN_KINDS for e in getattr(at, kind)]
    sources += [s for m in at.metric for s in (m.label, str(m.value))]
    sources += [w.label for kind in LABELLED_KINDS for w in getattr(at, kind)]
    sources += [e.proto.text for e in at.get("progress")]
    return sources


def _assert_literal(at: AppTest, page: str) -> None:
    assert not at.exception, (page, [e.value for e in at.exception])
    sources = _markdown_sources(at)
    formed = [s for s in sources if FORMED.search(s)]
    assert formed == [], (page, formed)
    assert any(PLANTED in as_rendered(s) for s in sources), page  # shown, as text


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_planted_markup_in_every_text_column_shows_as_text(hostile_url, monkeypatch, page):
    monkeypatch.setenv("DATABASE_URL", hostile_url)
    at = AppTest.from_file(str(CONSOLE), default_timeout=60)
    at.run()
    at.switch_page(f"views/{page}.py").run()
    _assert_literal(at, page)


def test_planted_symbol_in_a_toast_shows_as_text(hostile_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", hostile_url)
    at = AppTest.from_file(str(CONSOLE), default_timeout=60)
    at.run()
    at.switch_page("views/portfolio.py").run()
    at.button(key=f"close_{PLANTED}").click().run()
    _assert_literal(at, "portfolio")  # the question naming it, before the second click
    at.button(key=f"confirm_close_{PLANTED}").click().run()
    assert any(PLANTED in as_rendered(str(t.value)) for t in at.toast)
    _assert_literal(at, "portfolio")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def login_clock() -> Iterator[FakeClock]:
    """The server's one limiter (AppTest runs in this process), on a clock the test moves."""
    from views._login import login_limiter

    login_limiter.clear()
    clock = FakeClock()
    login_limiter().clock = clock
    yield clock
    login_limiter.clear()


def _login_page(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CONSOLE_REQUIRE_PASSWORD", "true")
    monkeypatch.setenv("CONSOLE_PASSWORD", "right-horse")
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(str(CONSOLE), default_timeout=60)
    at.run()
    return at


def _log_in(at: AppTest, password: str) -> bool:
    at.text_input[0].input(password)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return bool(at.session_state["_authenticated"]) if "_authenticated" in at.session_state \
        else False


def test_wrong_passwords_hold_back_every_session_of_the_address(sqlite_url, monkeypatch,
                                                                login_clock):
    """Several sessions from one address share one backoff: while it runs, no session's
    password is even checked (the right one included), and each wrong one doubles it."""
    sessions = [_login_page(sqlite_url, monkeypatch) for _ in range(3)]
    assert not _log_in(sessions[0], "guess-1")
    assert "Wrong password" in sessions[0].error[0].value
    for at in sessions[1:]:
        assert not _log_in(at, "right-horse")
        assert "try again in 1 s" in at.error[0].value
    login_clock.now += 1.0
    assert not _log_in(sessions[1], "guess-2")  # its turn: wrong, the backoff is now 2 s
    login_clock.now += 1.0
    assert not _log_in(sessions[2], "right-horse")
    assert "try again in 1 s" in sessions[2].error[0].value
    login_clock.now += 1.0
    assert _log_in(sessions[2], "right-horse")
    assert _log_in(sessions[0], "right-horse")  # a login clears the address's record


def test_login_backoff_doubles_per_address_up_to_its_cap():
    from views._login import MAX_BACKOFF_S, LoginLimiter

    clock = FakeClock()
    limiter = LoginLimiter(clock)
    waits = [limiter.failed("10.0.0.1") for _ in range(12)]
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0] and waits[-1] == MAX_BACKOFF_S
    assert limiter.wait_s("10.0.0.1") == MAX_BACKOFF_S
    assert limiter.wait_s("10.0.0.2") == 0.0  # another address is not held back
    clock.now += MAX_BACKOFF_S
    assert limiter.wait_s("10.0.0.1") == 0.0
