"""The console in a real browser: ``streamlit run console.py`` driven by Debian's Chromium.

What AppTest cannot show is covered here: the websocket round trip, auto-refreshing
fragments (a command's status turns 'done' on screen without a click), a cold deep link on a
fresh server, and what the chart actually looks like (a screenshot under test-output/).
The bot is simulated by a thread that marks pending commands done and keeps the heartbeat
fresh, so the test does not depend on the real bot's behaviour.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import select, update

from bot.config import Settings
from bot.supervisor import pid_alive
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import OHLCV, BotStatus, Command, Position
from tests.console_seed import PLANTED, plant_hostile_text, seed_console_db
from tests.waiting import wait_for
from views._text import LINK_BREAK

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CONSOLE = ROOT / "console.py"
OUTPUT = ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PAGES = {"overview": "Equity (PAPER)", "chart": "Candles", "portfolio": "Open orders",
         "trades": "Download CSV", "performance": "Round trips closed", "decisions": "Trace",
         "commands": "Status",
         "settings": "Risk caps", "fleet": "Bots up", "replays": "Start a replay"}
TIMEOUT_MS = 60_000  # generous: CI machines run other suites alongside
SETTING_NAMES = {(f.alias or n).upper() for n, f in Settings.model_fields.items()}


def _chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is absent (apt-get install chromium; scripts/chromium.sh in CI)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Console:
    url: str
    database_url: str
    process: subprocess.Popen
    log: Path


def _start_console(
    workdir: Path, database_url: str, *, autostart: bool = False, **extra_env: str
) -> Console:
    port = _free_port()
    log = workdir / f"streamlit-{port}.log"
    # the developer's own settings (keys, a LIVE mode) must not leak into the test server
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    env.update(DATABASE_URL=database_url, PYTHONPATH=str(ROOT),
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", **extra_env)
    env.pop("TRADEDESK_NO_AUTOSTART", None)
    if not autostart:
        env["TRADEDESK_NO_AUTOSTART"] = "1"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(CONSOLE), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{url}/_stcore/health", timeout=1).ok:
                return Console(url, database_url, process, log)
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"streamlit did not come up: {log.read_text()[-2000:]}")


def _stop_console(console: Console) -> None:
    console.process.terminate()
    try:
        console.process.wait(10)
    except subprocess.TimeoutExpired:
        console.process.kill()


class FakeBot(threading.Thread):
    """Marks pending commands done and keeps the heartbeat fresh, like the bot's loop."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True, name="fake-bot")
        self.engine = make_engine(database_url)
        self.halt = threading.Event()

    def run(self) -> None:
        factory = session_factory(self.engine)
        while not self.halt.wait(0.5):
            now = datetime.now(UTC)
            with factory() as db:
                for command in db.scalars(select(Command).where(Command.status == "pending")):
                    command.status, command.result = "done", f"{command.command}: ok (fake bot)"
                    command.executed_at = now
                db.execute(update(BotStatus).values(heartbeat_at=now, last_loop_at=now))
                db.commit()

    def stop(self) -> None:
        self.halt.set()
        self.join(5)
        self.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _seeded_db(directory: Path) -> str:
    url = f"sqlite:///{directory / 'tradedesk.db'}"
    upgrade(url)
    seed_console_db(url)
    return url


@pytest.fixture(scope="module")
def console(browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    workdir = tmp_path_factory.mktemp("console")
    server = _start_console(workdir, _seeded_db(workdir))
    bot = FakeBot(server.database_url)
    bot.start()
    yield server
    bot.stop()
    _stop_console(server)


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    yield tab
    context.close()


def _no_exception(page, console: Console) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text() + console.log.read_text()[-2000:]


IDLE_JS = """() => document.querySelector('[data-testid="stApp"]')
    ?.dataset.testScriptState === 'notRunning'"""
# a chart in an inactive tab is not displayed and never drawn until the tab is opened
CHARTS_DRAWN_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].every(
    gd => !gd.checkVisibility() || (gd._fullLayout && getComputedStyle(gd).visibility !== 'hidden'))"""


def _settled(page) -> None:
    """Wait for the script run to finish and every chart on the page to be drawn (plotly
    draws after the run ends)."""
    page.wait_for_function(IDLE_JS)
    page.wait_for_function(CHARTS_DRAWN_JS)


def _sidebar(page):
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Bot process").first.wait_for()
    return sidebar


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_renders(console, page, name):
    page.goto(f"{console.url}/{'' if name == 'overview' else name}")
    sidebar = _sidebar(page)
    page.get_by_text(PAGES[name], exact=False).first.wait_for()
    assert sidebar.get_by_text("PAPER", exact=False).count() > 0
    assert sidebar.get_by_text("SIMULATED market", exact=False).count() > 0
    _no_exception(page, console)
    _settled(page)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"page-{name}.png"), full_page=True)


def test_navigation_between_pages(console, page):
    page.goto(console.url)
    sidebar = _sidebar(page)
    for title in ("Trades", "Decisions", "Overview"):
        sidebar.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
        page.get_by_role("heading", name=title).wait_for()
    _no_exception(page, console)


def test_close_all_confirm_shows_done(console, page):
    page.goto(console.url)
    sidebar = _sidebar(page)
    sidebar.get_by_role("button", name="CLOSE-ALL").click()
    confirm = sidebar.get_by_role("button", name="Confirm CLOSE-ALL")
    confirm.wait_for()
    confirm.click()
    sidebar.get_by_text("close-all: done", exact=False).first.wait_for(timeout=TIMEOUT_MS)
    sidebar.get_by_text("close-all: ok (fake bot)", exact=False).first.wait_for()
    _no_exception(page, console)


def test_cold_deep_link_keeps_console_chrome(browser, tmp_path_factory, page):
    """A fresh server's first request is /chart: console.py must still run around the page."""
    workdir = tmp_path_factory.mktemp("deeplink")
    server = _start_console(workdir, _seeded_db(workdir))
    try:
        page.goto(f"{server.url}/chart")
        sidebar = _sidebar(page)
        sidebar.get_by_role("button", name="CLOSE-ALL").wait_for()
        page.get_by_role("heading", name="Chart").wait_for()
        page.locator(".js-plotly-plot").first.wait_for()
        _no_exception(page, server)
    finally:
        _stop_console(server)


def test_chart_screenshot(console, page):
    page.set_viewport_size({"width": 1600, "height": 1250})  # the volume pane fits too
    page.goto(f"{console.url}/chart")
    _sidebar(page)
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    chart.locator(".boxlayer path").first.wait_for()
    for label in ("Plan entry", "BUY fill", "EMA 12", "Bollinger (20, 2)"):
        chart.get_by_text(label, exact=True).first.wait_for()
    _settled(page)
    OUTPUT.mkdir(exist_ok=True)
    target = OUTPUT / "chart.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 20_000
    _no_exception(page, console)



REFRESHED_JS = """() => !document.querySelector('.js-plotly-plot[data-before-refresh]')
    && !!document.querySelector('.js-plotly-plot')"""


@pytest.mark.parametrize("what", ["fill", "plan"])
def test_clicking_a_fill_or_plan_opens_its_decision(console, page, what):
    page.goto(f"{console.url}/chart")
    _sidebar(page)
    chart = page.locator(".js-plotly-plot").first
    chart.locator(".scatterlayer .points path").first.wait_for()
    # The chart refreshes every 15 s, and a refresh with a changed figure draws a new
    # element (Streamlit derives a chart's identity from its figure): a click that lands
    # while it is redrawn meets no point. So aim and click just after a refresh, the next
    # being 15 s away; the moved candle makes sure that refresh changes the figure.
    _settled(page)
    chart.evaluate("gd => { gd.dataset.beforeRefresh = '1' }")
    _move_last_candle(console.database_url)
    page.wait_for_function(REFRESHED_JS)
    _settled(page)
    chart.scroll_into_view_if_needed()
    area = chart.locator(".nsewdrag").first.bounding_box()  # the price pane's plot area
    assert area is not None
    # the view opens on the open plans: points before it are drawn, but clipped away
    boxes = [b for m in chart.locator(".scatterlayer .points path").all()
             if (b := m.bounding_box()) and area["x"] < b["x"] + b["width"] / 2
             < area["x"] + area["width"] and area["y"] < b["y"] + b["height"] / 2
             < area["y"] + area["height"]]
    # fills are the big markers, plan levels the small ones at each version's ends; a plan
    # marker is taken away from any fill (an entry starts at its fill) and from the right
    # edge, where the open plans' labels sit
    fills = [b for b in boxes if b["height"] > 9]
    plans = sorted((b for b in boxes if b["height"] <= 9 and not any(
        abs(b["x"] - f["x"]) < 20 and abs(b["y"] - f["y"]) < 20 for f in fills)),
        key=lambda b: b["x"])
    box = fills[0] if what == "fill" else plans[0]
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    _move_last_candle(console.database_url)  # as live: the figure after the click differs
    page.mouse.move(x, y)  # plotly clicks the point it hovers: wait for its hover label
    chart.locator(".hoverlayer").get_by_text("click: open its decision").wait_for()
    page.mouse.click(x, y)
    page.get_by_role("heading", name="Decisions").wait_for()
    assert "trace=" in page.url
    linked = page.url.split("trace=")[1].split("&")[0]
    page.get_by_text(re.compile(rf"^#{linked} · .* · status ")).first.wait_for()  # its detail
    _no_exception(page, console)


def _move_last_candle(database_url: str) -> None:
    """Nudge the newest candle of the chart shown (BTC/USDT 5m), as a live market does."""
    engine = make_engine(database_url)
    with session_factory(engine)() as db:
        last = db.scalars(select(OHLCV).where(OHLCV.symbol == "BTC/USDT", OHLCV.timeframe == "5m")
                          .order_by(OHLCV.timestamp.desc()).limit(1)).one()
        last.close = last.close * 1.0001
        last.high = max(last.high, last.close)
        db.commit()
    engine.dispose()


def test_real_bot_autostarted_obeys_close_all(browser, tmp_path_factory, page):
    """No fake: the console autostarts ``python -m bot run`` on an empty database, shows it
    running, the bot buys on its own, and a CLOSE-ALL from the sidebar flattens it."""
    workdir = tmp_path_factory.mktemp("realbot")
    url = f"sqlite:///{workdir / 'tradedesk.db'}"
    server = _start_console(workdir, url, autostart=True, LOOP_INTERVAL_SECONDS="2")
    factory = session_factory(make_engine(url))

    def holdings() -> int:
        with factory() as db:
            return len(db.scalars(select(Position).where(Position.quantity > 0)).all())

    try:
        page.goto(server.url)
        sidebar = _sidebar(page)
        sidebar.get_by_text("● running").first.wait_for()
        # the page refreshed once a session began
        page.get_by_text("Equity (PAPER)", exact=True).first.wait_for()
        wait_for(lambda: holdings() > 0, timeout=120)  # the default market trades at once
        sidebar.locator('[data-testid="stSidebarNav"]').get_by_text("Portfolio").click()
        page.get_by_text("BTC/USDT: +", exact=False).first.wait_for()
        sidebar.get_by_role("button", name="CLOSE-ALL").click()
        sidebar.get_by_role("button", name="Confirm CLOSE-ALL").click()
        sidebar.get_by_text("close-all: done", exact=False).first.wait_for()
        assert holdings() == 0
        # the page shows the effect as soon as the command ends, not at its next refresh
        page.get_by_text("No open positions.").first.wait_for(timeout=5_000)
        page.get_by_text("No open orders.").first.wait_for(timeout=5_000)
        _no_exception(page, server)
    finally:
        _stop_console(server)
        _stop_detached_bot(workdir)


def _stop_detached_bot(workdir: Path) -> None:
    """The bot outlives the console on purpose (detached); a test must end it itself."""
    for pid_file in (workdir / "data").glob("bot-*.pid"):
        pid = int(json.loads(pid_file.read_text())["pid"])
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        try:
            wait_for(lambda p=pid: not pid_alive(p), timeout=15, every=0.1)
        except AssertionError:  # it did not stop in time: end it anyway
            os.kill(pid, signal.SIGKILL)


def test_killing_the_console_never_affects_the_bot(browser, tmp_path_factory, page):
    """SIGKILL the console's whole process group: the bot it started keeps trading."""
    from sqlalchemy import select

    from db.engine import make_engine, session_factory
    from db.models import BotStatus

    workdir = tmp_path_factory.mktemp("killconsole")
    url = f"sqlite:///{workdir / 'tradedesk.db'}"
    server = _start_console(workdir, url, autostart=True, LOOP_INTERVAL_SECONDS="1")
    factory = session_factory(make_engine(url))

    def status() -> BotStatus | None:
        with factory() as db:
            return db.scalars(select(BotStatus)).first()

    try:
        page.goto(server.url)
        _sidebar(page).get_by_text("● running").first.wait_for()
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        before = status()
        assert before is not None and pid_alive(before.pid)
        after = wait_for(lambda: (now := status()).loop_count > before.loop_count + 2 and now,
                         timeout=30, every=0.5)  # fails if the bot stopped looping
        assert after.pid == before.pid and after.state == "running" and pid_alive(after.pid)
    finally:
        if server.process.poll() is None:
            _stop_console(server)
        _stop_detached_bot(workdir)


def test_fleet_stop_one_bot_leaves_the_other_running(browser, tmp_path_factory, page):
    """Two real bot processes on one database: STOP on one from the Fleet page ends that
    process cleanly while the other keeps looping."""
    from tests.test_bot_process import bot_env

    workdir = tmp_path_factory.mktemp("fleet")
    url = f"sqlite:///{workdir / 'tradedesk.db'}"
    upgrade(url)
    bots = {
        name: subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--name", name], cwd=ROOT,
            env=bot_env(url, LOOP_INTERVAL_SECONDS="1"), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        for name in ("alpha", "beta")
    }
    factory = session_factory(make_engine(url))

    def loops(name: str) -> int:
        with factory() as db:
            row = db.scalars(select(BotStatus).where(BotStatus.name == name)).one_or_none()
            return 0 if row is None else row.loop_count or 0

    server = _start_console(workdir, url, BOT_NAME="alpha")
    try:
        wait_for(lambda: loops("alpha") > 0 and loops("beta") > 0)
        page.goto(f"{server.url}/fleet")
        _sidebar(page)
        table = page.locator('[data-testid="stDataFrame"]').first
        table.wait_for()
        page.locator(".st-key-fleet_stop_beta button").click()
        page.get_by_text("Stop bot beta after the current loop?").first.wait_for()
        page.get_by_role("button", name="Confirm STOP beta").click()
        assert bots["beta"].wait(timeout=60) == 0  # STOP ends the process cleanly
        before = loops("alpha")
        wait_for(lambda: loops("alpha") > before + 2, timeout=60)
        assert bots["alpha"].poll() is None
        page.get_by_text("stop → beta: done", exact=False).first.wait_for()
        page.get_by_text("beta · stopped").first.wait_for()  # the fleet refreshes on its own
        page.get_by_text("alpha (picked) · running").first.wait_for()
        _no_exception(page, server)
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "fleet.png"), full_page=True)
    finally:
        _stop_console(server)
        for process in bots.values():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def test_planted_markup_is_text_on_every_page(browser, tmp_path_factory, page):
    """Every text column holds a planted link, emphasis, HTML and a backtick: no page draws a
    link to it, and the sidebar (on every page) shows it as the literal text it is."""
    workdir = tmp_path_factory.mktemp("hostile")
    url = _seeded_db(workdir)
    plant_hostile_text(url)
    server = _start_console(workdir, url)
    try:
        for name, marker in PAGES.items():
            page.goto(f"{server.url}/{'' if name == 'overview' else name}")
            _sidebar(page)
            page.get_by_text(marker, exact=False).first.wait_for()
            _settled(page)
            _no_exception(page, server)
            links = page.locator('a[href*="evil.example"]')
            assert links.count() == 0, [
                link.evaluate("a => a.parentElement.parentElement.outerHTML")[:400]
                for link in links.all()[:5]]
            shown = page.locator("body").inner_text().replace(LINK_BREAK, "")
            assert PLANTED in shown, name
    finally:
        _stop_console(server)


def test_overview_has_its_own_address(console, page):
    """Every page in the navigation answers at /<name>, the default one too."""
    page.goto(f"{console.url}/overview")
    _sidebar(page)
    page.get_by_role("heading", name="Overview").wait_for()
    _settled(page)
    assert page.get_by_text("Page not found", exact=False).count() == 0
    _no_exception(page, console)


# every metric's value and label whose text is cut (an ellipsis, or wider than its box)
CUT_METRICS_JS = """() => [...document.querySelectorAll(
        '[data-testid="stMetricValue"], [data-testid="stMetricLabel"]')]
    .filter(box => [box, ...box.querySelectorAll('*')].some(
        el => el.scrollWidth > el.clientWidth + 1))
    .map(box => box.innerText)"""


@pytest.mark.parametrize("name", ["overview", "trades", "fleet"])
def test_metrics_are_not_cut_at_1400_px(console, page, name):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{console.url}/{name}")
    _sidebar(page)
    page.locator('[data-testid="stMetricValue"]').first.wait_for()
    _settled(page)
    assert page.evaluate(CUT_METRICS_JS) == []


def test_a_fill_opens_its_decision_in_place(browser, tmp_path_factory, page):
    """Trades → a fill's decision opens in the same tab, with the viewed replay file and the
    login kept: the trace is found and no password is asked again."""
    from bot.replay import ReplayArgs, run_replay
    from tests.conftest import candle_file

    workdir = tmp_path_factory.mktemp("inplace")
    (workdir / "data").mkdir()
    lines = candle_file("BTC_USDT-5m.csv").read_text().splitlines()[:401]
    cut = workdir / "BTC_USDT-5m.csv"
    cut.write_text("\n".join(lines) + "\n")
    run_replay(ReplayArgs(candles=[cut], db_url=f"sqlite:///{workdir / 'data' / 'replays.db'}"),
               progress=False)
    server = _start_console(workdir, _seeded_db(workdir), CONSOLE_REQUIRE_PASSWORD="true",
                            CONSOLE_PASSWORD="right-horse")
    try:
        page.goto(server.url)
        page.get_by_label("Password", exact=True).fill("right-horse")
        page.get_by_role("button", name="Log in").click()
        sidebar = _sidebar(page)
        nav = sidebar.locator('[data-testid="stSidebarNav"]')
        nav.get_by_text("Replays", exact=True).click()
        page.get_by_role("button", name="Open in Overview").click()
        sidebar.get_by_text("Viewing replay database").first.wait_for()
        page.get_by_role("heading", name="Overview").wait_for()
        _settled(page)  # a click while the Overview still runs may be lost to its rerun
        nav.get_by_text("Trades", exact=True).click()
        page.get_by_role("heading", name="Trades").wait_for()
        page.get_by_text("Whole run", exact=True).click()  # the run's fills, every day
        _settled(page)
        table = page.locator('[data-testid="stDataFrame"]').first
        table.wait_for()
        box = table.bounding_box()
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the first fill's row marker
        page.screenshot(path=str(OUTPUT / "trades-click.png"))
        page.get_by_role("heading", name="Decisions").wait_for()
        page.get_by_text(re.compile(r"^#\d+ · .* · status ")).first.wait_for()
        _settled(page)
        text = page.locator("body").inner_text()
        assert "That trace is gone" not in text and "Password" not in text
        assert sidebar.get_by_text("Viewing replay database").count() == 1
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "decision-in-place.png"), full_page=True)
        _no_exception(page, server)
    finally:
        _stop_console(server)


def test_a_plan_version_opens_the_decision_that_wrote_it(browser, tmp_path_factory, page):
    """Portfolio → a plan's history: the version a decision wrote (its stop moved) opens
    that decision, as a fill does on Trades."""
    from db.models import TradePlan
    from db.plans import revise_plan

    workdir = tmp_path_factory.mktemp("version")
    url = f"sqlite:///{workdir / 'tradedesk.db'}"
    upgrade(url)
    seeded = seed_console_db(url)
    moved_by = seeded.trace_ids[9]
    engine = make_engine(url)
    with session_factory(engine)() as db:
        plan = db.get(TradePlan, seeded.plan_ids[1])  # the open plan the page shows first
        assert plan is not None
        revise_plan(db, plan, "updated: tighter", seeded.now, decided_by=moved_by,
                    stop_price=plan.stop_price * 1.001)
        db.commit()
    engine.dispose()
    server = _start_console(workdir, url)
    try:
        page.goto(f"{server.url}/portfolio")
        _sidebar(page)
        history = page.locator(
            '[data-testid="stElementContainer"]:has([data-testid="stCaptionContainer"]'
            ':has-text("Select a version")) + [data-testid="stElementContainer"] '
            '[data-testid="stDataFrame"]')
        history.wait_for()
        _settled(page)
        history.scroll_into_view_if_needed()  # below the fold: a click lands only on screen
        box = history.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 2 * 35 + 17)  # the third version's marker
        page.get_by_role("heading", name="Decisions").wait_for()
        page.get_by_text(re.compile(rf"^#{moved_by} · .* · status ")).first.wait_for()
        assert f"trace={moved_by}" in page.url
        _no_exception(page, server)
    finally:
        _stop_console(server)
