"""Comparing replays in a real browser: two runs of the same candles with other fees, picked
on the Replays page, show as two curves on one chart, their figures side by side and the
fees as the settings that differ; a run recorded before settings were says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import update

from bot.replay import ReplayArgs, run_replay
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import Session
from tests import test_console_browser as console_browser
from tests.conftest import candle_file
from tests.test_console_browser import (
    OUTPUT,
    _no_exception,
    _settled,
    _sidebar,
    _start_console,
    _stop_console,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
browser, page = console_browser.browser, console_browser.page  # the same fixtures
CUT_CANDLES = 400
PICK_ATTEMPTS = 3
PICK_WAIT_MS = 15_000  # a kept pick shows at once; this only rides out a slow machine
CURVE_NAMES_JS = """() => [...document.querySelectorAll('.js-plotly-plot')]
    .filter(gd => (gd.layout.title?.text || '').includes('starting equity'))
    .map(gd => gd.data.map(trace => trace.name))"""

TABLES_JS = """() => [...document.querySelectorAll('[data-testid="stTable"] table')].map(
    table => [...table.querySelectorAll('tr')].map(
        tr => [...tr.querySelectorAll('th, td')].map(cell => cell.innerText.trim())))"""


def _pick(page, run: str) -> None:
    """Pick one run in the comparison's multiselect (its option reads 'source · run').

    The list takes a click only while it counts itself open, and the sidebar's fragments
    redraw the page every few seconds; a click that lands as a redraw closes the list is
    dropped, as a person's would be, so the pick is made again until its tag shows."""
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Runs to compare")
    tag = box.get_by_role("group", name="Selected values").locator("[data-tag]").filter(
        has_text=run)
    for attempt in range(PICK_ATTEMPTS):
        if tag.is_visible():  # a pick that showed late is not made twice
            break
        box.locator("input").click()
        box.locator("input").fill(run)  # opens the list, whether or not the input had focus
        page.get_by_role("option", name=run).click()
        page.keyboard.press("Escape")  # closes the list
        try:
            tag.wait_for(timeout=PICK_WAIT_MS if attempt < PICK_ATTEMPTS - 1 else None)
            break
        except PlaywrightTimeout:
            continue
    _settled(page)


def test_two_replays_compare_with_their_settings_difference(browser, page, tmp_path: Path):
    lines = candle_file("BTC_USDT-5m.csv").read_text().splitlines()[: CUT_CANDLES + 1]
    candles = tmp_path / "BTC_USDT-5m.csv"
    candles.write_text("\n".join(lines) + "\n")
    (tmp_path / "data").mkdir()
    replay_url = f"sqlite:///{tmp_path / 'data' / 'replays.db'}"
    cheap = run_replay(ReplayArgs([candles], replay_url), progress=False)
    dear = run_replay(ReplayArgs([candles], replay_url,
                                 overrides={"MAKER_FEE": 0.003, "TAKER_FEE": 0.003}),
                      progress=False)
    assert cheap["trades"] > 0 and dear["fees"] != cheap["fees"]
    console_url = f"sqlite:///{tmp_path / 'tradedesk.db'}"
    upgrade(console_url)
    server = _start_console(tmp_path, console_url)
    try:
        page.goto(f"{server.url}/replays")
        _sidebar(page)
        page.get_by_text("Compare runs").first.wait_for()
        _settled(page)
        _pick(page, cheap["run_name"])
        _pick(page, dear["run_name"])
        page.get_by_text("Settings that differ").wait_for()
        page.wait_for_function(f"() => ({CURVE_NAMES_JS})().length === 1")
        page.wait_for_function(f"() => ({TABLES_JS})().length === 2")  # drawn after the text
        _settled(page)
        assert page.evaluate(CURVE_NAMES_JS) == [[cheap["run_name"], dear["run_name"]]]
        figures, rows = page.evaluate(TABLES_JS)
        figures = {cells[0]: cells[1:] for cells in figures}
        rows = {cells[0]: cells[1:] for cells in rows}
        assert figures[""] == [cheap["run_name"], dear["run_name"]]  # the header
        for words, key in (("Fees", "fees"), ("Final account equity", "final_equity"),
                           ("Return after LLM cost %", "return_pct")):
            # two decimals, or four significant digits below one
            assert [float(text.replace(",", "")) for text in figures[words]] == [
                pytest.approx(run[key], rel=5e-4, abs=0.005) for run in (cheap, dear)], words
        assert figures["Fills"] == [f"{cheap['trades']:,}", f"{dear['trades']:,}"]
        assert rows["Maker fee"] == ["0.001", "0.003"]
        assert rows["Taker fee"] == ["0.001", "0.003"]
        assert "Max order value" not in rows  # the same in both: not a difference
        _no_exception(page, server)
        OUTPUT.mkdir(exist_ok=True)
        page.get_by_text("Settings that differ").scroll_into_view_if_needed()
        page.screenshot(path=str(OUTPUT / "replays-compare.png"), full_page=True)

        # a run from before settings were recorded is named as such
        factory = session_factory(make_engine(replay_url))
        with factory() as db:
            db.execute(update(Session).where(Session.run_name == dear["run_name"])
                       .values(settings=None, settings_hash=None))
            db.commit()
        page.reload()
        _sidebar(page)
        page.get_by_text("Compare runs").first.wait_for()
        _settled(page)
        _pick(page, cheap["run_name"])
        _pick(page, dear["run_name"])
        page.get_by_text(f"{dear['run_name']}: settings not recorded").wait_for()
        _no_exception(page, server)
    finally:
        _stop_console(server)
