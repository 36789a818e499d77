"""The Replays page through AppTest: empty, with a real small replay, and started from it.

The replay is a real ``bot.replay.run_replay`` over a 400-candle cut of the shared BTC file,
so the page is checked against the very summary the CLI prints; the form test launches the
real ``python -m bot replay`` subprocess and waits (bounded) for its run to be listed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import streamlit as st
from streamlit import config as st_config
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
from streamlit.testing.v1 import AppTest

from bot.replay import ReplayArgs, run_replay
from db.engine import make_engine, session_factory
from db.queries_replays import replay_runs, run_session_ids, run_settings
from tests.conftest import candle_file
from tests.console_seed import seed_console_db
from tests.rendered import as_rendered
from tests.waiting import wait_for

CONSOLE = Path(__file__).resolve().parent.parent / "console.py"
CUT_CANDLES = 400


@pytest.fixture(autouse=True)
def _console_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No password, no bot process, data/ (logs, default replay file) under tmp, and tmp an
    allowed folder."""
    monkeypatch.setenv("TRADEDESK_NO_AUTOSTART", "1")
    monkeypatch.setenv("REPLAY_FOLDERS", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    previous = st_config.get_option("server.address")
    st_config.set_option("server.address", "127.0.0.1")
    yield
    st_config.set_option("server.address", previous)


@pytest.fixture
def cut_file(tmp_path: Path) -> Path:
    source = candle_file("BTC_USDT-5m.csv")
    lines = source.read_text().splitlines()[: CUT_CANDLES + 1]
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _replays_page(console_url: str, monkeypatch: pytest.MonkeyPatch,
                  replay_file: Path | None = None) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", console_url)
    at = AppTest.from_file(str(CONSOLE), default_timeout=60)
    at.run()
    at.switch_page("views/replays.py").run()
    if replay_file is not None:
        at.text_input(key="replay_db_path").set_value(str(replay_file)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_empty_database_says_there_is_no_run(sqlite_url, monkeypatch, tmp_path):
    at = _replays_page(sqlite_url, monkeypatch, tmp_path / "absent.db")
    assert any("No replay run yet" in i.value for i in at.info)
    assert not (tmp_path / "absent.db").exists()  # listing never creates the file


@pytest.mark.slow
def test_replay_file_run_is_listed_with_its_summary(sqlite_url, monkeypatch, tmp_path, cut_file):
    replay_db = tmp_path / "replays.db"
    summary = run_replay(ReplayArgs(candles=[cut_file], db_url=f"sqlite:///{replay_db}"),
                         progress=False)
    at = _replays_page(sqlite_url, monkeypatch, replay_db)
    table = at.dataframe[0].value
    assert list(table["run"]) == [summary["run_name"]]
    assert table["fingerprint"][0] == summary["fingerprint"]
    assert table["trades"][0] == summary["trades"]
    assert table["files"][0] == "BTC_USDT-5m.csv" and table["symbols"][0] == "BTC/USDT"
    shown = _metrics(at)
    for label, key in (("Net PnL", "net_pnl"), ("Return %", "return_pct"),
                       ("Buy & hold %", "buy_and_hold_pct")):
        # two decimals, or four significant digits below one
        assert float(shown[label].replace(",", "")) == pytest.approx(
            summary[key], rel=5e-4, abs=0.005), label
    assert shown["Trades"] == f"{summary['trades']:,}"
    assert len(at.get("plotly_chart")) == 1

    at.button(key="open_Chart").click().run()  # the run opens in the live pages
    assert not at.exception, [e.value for e in at.exception]
    assert [h.value for h in at.header] == ["Chart"]
    assert any("Viewing replay database" in i.value for i in at.sidebar.info)
    assert "replay/" + summary["run_name"] in _picked_session(at)
    at.switch_page("views/decisions.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.sidebar.button(key="db_back").click().run()
    assert not any("Viewing replay database" in i.value for i in at.sidebar.info)


@pytest.mark.slow
def test_a_replay_file_of_an_older_schema_says_how_to_migrate_it(
    sqlite_url, monkeypatch, tmp_path, cut_file,
):
    """Opened read-only, an older file cannot be migrated by the page, and the pages' queries
    would fail on it: its runs are offered only once it is at this code's schema."""
    from alembic import command

    from db.migrate import alembic_config, upgrade

    replay_db = tmp_path / "replays.db"
    url = f"sqlite:///{replay_db}"
    summary = run_replay(ReplayArgs(candles=[cut_file], db_url=url), progress=False)
    command.downgrade(alembic_config(url), "0002_bots")
    at = _replays_page(sqlite_url, monkeypatch, replay_db)
    shown = [as_rendered(w.value) for w in at.warning]
    assert any("is at schema 0002_bots" in w and "db.migrate" in w for w in shown)
    assert not at.dataframe  # nothing offered that would fail to open

    upgrade(url)
    at = _replays_page(sqlite_url, monkeypatch, replay_db)
    assert list(at.dataframe[0].value["run"]) == [summary["run_name"]]
    at.button(key="open_Chart").click().run()
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.slow
@pytest.mark.parametrize(("pair", "balance", "warned"), [
    ("ETH_BTC-5m.csv", 10_000.0, True), ("BTC_USDT-5m.csv", 10_000.0, False)])
def test_a_run_whose_balance_is_far_beyond_its_market_says_so(
        sqlite_url, monkeypatch, tmp_path, pair: str, balance: float, warned: bool):
    """ETH/BTC started with 10,000 (BTC): the run's summary on the page carries the same
    warning, to the figure, as the replay's own summary (both size the market on the run's
    first candles, here 600 of them over two sessions); BTC/USDT with 10,000 USDT carries
    none."""
    cut = tmp_path / pair
    cut.write_text("".join(candle_file(pair).read_text().splitlines(keepends=True)[:601]))
    replay_db = tmp_path / "replays.db"
    summary = run_replay(ReplayArgs(candles=[cut], db_url=f"sqlite:///{replay_db}",
                                    balance=balance), progress=False)
    at = _replays_page(sqlite_url, monkeypatch, replay_db)
    shown = [as_rendered(w.value) for w in at.main.warning]
    if not warned:
        assert shown == [] and summary["warnings"] == []
        return
    (warning,) = shown
    assert "10,000 BTC" in warning and "ETH/BTC" in warning and "5m candle" in warning
    assert shown == [as_rendered(w) for w in summary["warnings"]]


@pytest.mark.slow
def test_replay_in_the_console_database_is_listed(sqlite_url, monkeypatch, tmp_path, cut_file):
    summary = run_replay(ReplayArgs(candles=[cut_file], db_url=sqlite_url), progress=False)
    at = _replays_page(sqlite_url, monkeypatch, tmp_path / "absent.db")
    table = at.dataframe[0].value
    assert list(table["source"]) == ["console database"]
    assert list(table["run"]) == [summary["run_name"]]
    at.button(key="open_Overview").click().run()
    assert not at.exception and [h.value for h in at.header] == ["Overview"]
    assert not any("Viewing replay database" in i.value for i in at.sidebar.info)


@pytest.mark.slow
def test_form_starts_a_replay_process_whose_run_appears(sqlite_url, monkeypatch, tmp_path,
                                                        cut_file):
    replay_db = tmp_path / "started.db"
    at = _replays_page(sqlite_url, monkeypatch, replay_db)
    at.text_input[1].set_value(str(cut_file))
    next(n for n in at.number_input if n.label.startswith("Taker fee")).set_value(0.0025)
    at.date_input[1].set_value(date(2023, 1, 4))  # before the cut file ends
    next(b for b in at.button if b.label == "Start replay").click().run()
    assert not at.exception, [e.value for e in at.exception]
    logs = list((tmp_path / "data").glob("replay-*.log"))
    assert len(logs) == 1
    wait_for(lambda: '"fingerprint"' in logs[0].read_text(), timeout=180, every=0.5)
    with session_factory(make_engine(f"sqlite:///{replay_db}"))() as db:
        (run,) = replay_runs(db)
        record = run_settings(db, run_session_ids(db, run["run"]))
    assert record is not None  # the form's settings reached the run
    assert (record["taker_fee"], record["end"]) == (0.0025, "2023-01-04T00:00:00+00:00")

    def done() -> bool:  # the summary is printed a moment before the process exits
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return any("done" in p.proto.text for p in at.get("progress"))

    wait_for(done, every=0.5)
    table = at.dataframe[0].value
    assert len(table) == 1 and table["candles"][0] > 0


@pytest.mark.slow
def test_the_page_imports_neither_venue_nor_engine():
    """The console process must not load trading code: checked in a fresh interpreter."""
    root = CONSOLE.parent
    code = ("import sys, views._replay_runs, db.queries_replays; print(sorted(m for m in "
            "sys.modules if m.startswith(('bot.venue', 'bot.engine', 'bot.replay'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=root)
    assert out.stdout.strip() == "[]"
    assert "bot.replay" not in (root / "views" / "replays.py").read_text()


def _shown(at: AppTest, kind: str) -> list[str]:
    return [as_rendered(e.value) for e in getattr(at, kind)]


@pytest.mark.parametrize("where", ["/etc/passwd", "/etc/no-such-file", "data/../../../etc/passwd",
                                   "link.db"])
def test_a_replay_file_outside_the_allowed_folders_is_refused_in_words(
    sqlite_url, monkeypatch, tmp_path, where,
):
    """Whether the file exists or not, through ``..`` or a symlink: the same refusal."""
    (tmp_path / "link.db").symlink_to("/etc/passwd")
    at = _replays_page(sqlite_url, monkeypatch, Path(where))
    assert any("is outside the folders replays may use" in w and "REPLAY_FOLDERS" in w
               for w in _shown(at, "warning")), _shown(at, "warning")
    assert not at.dataframe  # nothing was opened
    assert not [b for b in at.button if b.label == "Start replay"]  # nowhere to write to


def test_a_non_database_file_in_an_allowed_folder_is_named_not_raised(
    sqlite_url, monkeypatch, tmp_path,
):
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    at = _replays_page(sqlite_url, monkeypatch, tmp_path / "notes.txt")
    assert any("is not a replay database" in w for w in _shown(at, "warning"))


def test_the_form_refuses_candles_outside_the_allowed_folders(sqlite_url, monkeypatch, tmp_path):
    outside = candle_file("BTC_USDT-5m.csv")  # the shared folder, not configured here
    at = _replays_page(sqlite_url, monkeypatch, tmp_path / "started.db")
    assert at.multiselect[0].options == []  # the shared files are not offered either
    at.text_input[1].set_value(str(outside))
    next(b for b in at.button if b.label == "Start replay").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("is outside the folders replays may use" in e for e in _shown(at, "error"))
    assert not list((tmp_path / "data").glob("replay-*.log"))  # nothing started


@pytest.mark.parametrize(("label", "value", "named"), [
    ("Maker fee", 0.07, "invalid setting MAKER_FEE (--maker-fee): Input should be less than 0.05"),
    ("Max open positions", 0, "MAX_OPEN_POSITIONS (--max-open-positions): Input should be greater"),
])
def test_form_names_a_bad_setting_and_starts_nothing(sqlite_url, monkeypatch, tmp_path,
                                                    label, value, named):
    at = _replays_page(sqlite_url, monkeypatch, tmp_path / "started.db")
    at.text_input[1].set_value(str(tmp_path / "BTC_USDT-5m.csv"))
    next(n for n in at.number_input if n.label.startswith(label)).set_value(value)
    next(b for b in at.button if b.label == "Start replay").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(named in as_rendered(e.value) for e in at.error), [e.value for e in at.error]
    assert not (tmp_path / "data").exists() or not list((tmp_path / "data").glob("replay-*.log"))


def test_form_refuses_an_end_before_the_start(sqlite_url, monkeypatch, tmp_path):
    at = _replays_page(sqlite_url, monkeypatch, tmp_path / "started.db")
    at.date_input[0].set_value(date(2023, 1, 5))
    at.date_input[1].set_value(date(2023, 1, 4))
    next(b for b in at.button if b.label == "Start replay").click().run()
    assert any("must be after the start" in e.value for e in at.error)


@pytest.mark.slow
def test_open_in_overview_keeps_its_pick_when_a_fragment_rerun_crosses_it(
        sqlite_url, monkeypatch, tmp_path, cut_file):
    """The browser's timed fragment reruns (the sidebar's every few seconds) carry the values
    of every widget it holds. One sent just after the click on "Open in Overview" reaches
    the server while the click's run works, and Streamlit merges it into that run's switch
    to Overview: the switch's rerun takes its widget values. It carried the sidebar's old
    session pick, the live session, which won about one click in four in Chromium: the
    Overview showed the live session, with its bot's controls. The browser's message is
    delivered here at that moment (just before the switch), through Streamlit's own
    request queue."""
    seed_console_db(sqlite_url)
    run_replay(ReplayArgs(candles=[cut_file], db_url=sqlite_url), progress=False)
    at = _replays_page(sqlite_url, monkeypatch, tmp_path / "absent.db")
    assert "live/" in _picked_session(at)
    held = at._tree.get_widget_states()  # what the browser holds until the click's run shows
    switch_page = st.switch_page

    def crossed_by_a_fragment_rerun(page, **kwargs):
        ctx = get_script_run_ctx()
        assert ctx is not None
        ctx.script_requests.request_rerun(RerunData(
            fragment_id="a sidebar fragment", widget_states=held,
            page_script_hash=ctx.page_script_hash))
        switch_page(page, **kwargs)

    monkeypatch.setattr(st, "switch_page", crossed_by_a_fragment_rerun)
    at.button(key="open_Overview").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [h.value for h in at.header] == ["Overview"]
    opened = _picked_session(at)
    assert "replay/" in opened
    assert any(opened in as_rendered(c.value) for c in at.main.caption)  # the run's figures
    stop = at.sidebar.button(key="cmd_stop")
    assert stop.disabled and "replay run" in stop.help


def _picked_session(at: AppTest) -> str:
    """The label of the session the sidebar's picker shows."""
    picker = next(s for s in at.sidebar.selectbox if s.label == "Session")
    return picker.format_func(picker.value)
