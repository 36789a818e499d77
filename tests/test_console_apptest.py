"""The console rendered in-process by Streamlit's AppTest, on a seeded and an empty database.

AppTest runs the real ``console.py`` (navigation, sidebar, gate) without a browser, so every
page is exercised on each run; the browser test covers what AppTest cannot (refreshes, JS).
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import plotly.io as plotly_io
import pytest
from sqlalchemy import delete, func, insert, select, update
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import (
    OHLCV,
    BotStatus,
    Command,
    LLMTrace,
    MarketData,
    Position,
    Session,
    Trade,
    TradePlan,
    TradePlanVersion,
)
from db.plans import revise_plan
from db.queries_chart import plan_steps
from tests.console_seed import seed_console_db
from tests.rendered import as_rendered

CONSOLE = Path(__file__).resolve().parent.parent / "console.py"
PAGES = ["overview", "chart", "portfolio", "trades", "performance", "decisions", "fleet", "commands",
         "settings"]
SECRET_MARKER = "marker-7f3a9c"


@pytest.fixture(autouse=True)
def _console_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local address (no password needed) and no bot process started by the console."""
    monkeypatch.setenv("TRADEDESK_NO_AUTOSTART", "1")
    previous = st_config.get_option("server.address")
    st_config.set_option("server.address", "127.0.0.1")
    yield
    st_config.set_option("server.address", previous)


@pytest.fixture
def seeded_url(sqlite_url: str) -> str:
    seed_console_db(sqlite_url)
    return sqlite_url


def _app(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(str(CONSOLE), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _open(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, (page, [e.value for e in at.exception])
    return at


def _rendered(at: AppTest) -> str:
    """Every bit of text the run produced (main area and sidebar), for 'is it shown' checks."""
    parts = []
    for node in at.main.children.values():
        parts.append(repr(node))
    parts.append(repr(at.sidebar))
    return "\n".join(parts)


def _all_text(at: AppTest) -> str:
    texts: list[str] = []
    for kind in ("markdown", "text", "code", "caption", "header", "subheader", "metric", "error",
                 "warning", "info", "success", "title"):
        for element in getattr(at, kind):
            texts.append(as_rendered(str(getattr(element, "value", ""))))
            texts.append(as_rendered(str(getattr(element, "label", ""))))
    for frame in at.dataframe:
        texts.append(frame.value.to_csv())
    return "\n".join(texts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_seeded(seeded_url, monkeypatch, page):
    at = _open(_app(seeded_url, monkeypatch), page)
    text = _all_text(at)
    assert "PAPER" in text
    assert "SIMULATED market" in text
    assert "running" in text  # the heartbeat's state in the sidebar


def test_a_bot_that_carried_out_stop_and_is_still_exiting_reads_as_stopping(seeded_url,
                                                                             monkeypatch):
    """The bot carried out STOP (its row says stopped, written by its own pid) and its
    process is still alive, exiting: the sidebar says stopping. It said starting, as for a
    bot just started whose first beat has not come."""
    import os
    import socket

    engine = make_engine(seeded_url)
    with session_factory(engine)() as db:  # as the STOP command leaves the row
        db.execute(update(BotStatus).where(BotStatus.name == "default").values(
            state="stopped", pid=os.getpid(), host=socket.gethostname()))
        db.commit()
    engine.dispose()
    at = _open(_app(seeded_url, monkeypatch), "overview")
    (state,) = [m.value for m in at.sidebar.markdown if m.value.startswith("**Bot ")]
    assert "stopping" in state, state


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_empty_db(sqlite_url, monkeypatch, page):
    at = _open(_app(sqlite_url, monkeypatch), page)
    text = _all_text(at)
    assert "stopped" in text
    if page == "fleet":  # no bot ran: a fresh database registers none
        assert "No bot has registered in this database yet." in text
    elif page not in ("commands", "settings"):
        assert "No trading session" in text


def test_a_command_before_the_bot_ever_ran_is_refused_in_words(sqlite_url, monkeypatch):
    """On a fresh database the console's own bot is registered only by its first beat: a
    PAUSE pressed before it is said to find no such bot, nothing queued, no traceback."""
    at = _app(sqlite_url, monkeypatch)
    at.button(key="cmd_pause").click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [as_rendered(e.value) for e in at.error]
    assert any("no bot named 'default'" in e and "nothing was queued" in e for e in errors), errors
    with session_factory(make_engine(sqlite_url))() as db:
        assert db.scalar(select(func.count(Command.id))) == 0


def test_key_values_shown(seeded_url, monkeypatch):
    at = _app(seeded_url, monkeypatch)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Trades"] == "5"
    assert "Equity (PAPER)" in labels and "Net PnL (PAPER)" in labels
    _open(at, "portfolio")
    text = _all_text(at)
    assert "O-9001" in text and "ETH/USDT" in text
    _open(at, "decisions")
    text = _all_text(at)
    assert "open_plan BTC/USDT" in text
    _open(at, "trades")
    assert {m.label: m.value for m in at.metric}["Fills"] == "5"
    _open(at, "chart")
    assert len(at.get("plotly_chart")) == 1


def test_hostile_trace_text_is_not_markdown(seeded_url, monkeypatch):
    at = _open(_app(seeded_url, monkeypatch), "decisions")
    error_trace = int(at.dataframe[0].value.query("status == 'error'")["id"].iloc[0])
    at.selectbox(key="dec_trace").set_value(error_trace).run()
    assert not at.exception
    for md in at.markdown:
        assert "<script>" not in md.value
    assert any("<script>" in c.value for c in at.code)  # shown, but as code
    assert any("timeout after 60s" in c.value for c in at.code)


def test_a_decision_shows_the_prompt_cache_tokens_its_cost_was_priced_from(
        seeded_url, monkeypatch):
    with session_factory(make_engine(seeded_url))() as db:
        trace_id = db.scalars(select(LLMTrace.id).order_by(LLMTrace.id)).first()
        db.execute(update(LLMTrace).where(LLMTrace.id == trace_id)
                   .values(tokens_in=12851, cache_write_tokens=2000, cache_read_tokens=10000))
        db.commit()
    at = _open(_app(seeded_url, monkeypatch), "decisions")
    at.selectbox(key="dec_trace").set_value(trace_id).run()
    assert not at.exception
    assert "tokens 12851/" in _all_text(at)
    assert "(cache write 2000, cache read 10000)" in _all_text(at)


def test_trades_link_opens_the_decision(seeded_url, monkeypatch):
    at = _app(seeded_url, monkeypatch)
    linked = _open(at, "trades").dataframe[0].value["decision #"].dropna().astype(int).iloc[0]
    at.query_params["trace"] = str(linked)
    _open(at, "decisions")
    assert at.selectbox(key="dec_trace").value == linked


def test_close_all_needs_confirmation_then_queues(seeded_url, monkeypatch):
    at = _app(seeded_url, monkeypatch)
    at.button(key="cmd_close_all").click().run()
    assert _pending(seeded_url) == []  # first click only asks
    at.button(key="confirm_close-all").click().run()
    assert not at.exception
    assert _pending(seeded_url) == [("close-all", None)]
    assert "close-all: pending" in _all_text(at)


def test_close_all_cancel_queues_nothing(seeded_url, monkeypatch):
    at = _app(seeded_url, monkeypatch)
    at.button(key="cmd_close_all").click().run()
    at.button(key="cancel_close-all").click().run()
    assert _pending(seeded_url) == []


def test_portfolio_close_and_cancel_take_a_second_click_that_names_it(seeded_url, monkeypatch):
    at = _open(_app(seeded_url, monkeypatch), "portfolio")
    at.button(key="close_BTC/USDT").click().run()
    assert _pending(seeded_url) == []  # the first click only asks
    assert "Close bot default's whole BTC/USDT position (+0.04) at market?" in _all_text(at)
    at.button(key="cancel_close_BTC/USDT").click().run()
    assert _pending(seeded_url) == []
    at.button(key="cancel_O-9001").click().run()
    assert _pending(seeded_url) == []
    assert "Cancel bot default's order O-9001 (SELL 0.04 BTC/USDT" in _all_text(at)
    at.button(key="confirm_cancel_O-9001").click().run()
    at.button(key="close_BTC/USDT").click().run()
    at.button(key="confirm_close_BTC/USDT").click().run()
    assert not at.exception
    assert _pending(seeded_url) == [("cancel", "O-9001"), ("close", "BTC/USDT")]


def test_settings_never_show_secrets(seeded_url, monkeypatch):
    monkeypatch.setenv("EXCHANGE_API_KEY", SECRET_MARKER)
    monkeypatch.setenv("EXCHANGE_API_SECRET", SECRET_MARKER + "-secret")
    monkeypatch.setenv("CONSOLE_PASSWORD", SECRET_MARKER + "-pw")
    monkeypatch.setenv("CONSOLE_REQUIRE_PASSWORD", "false")
    at = _open(_app(seeded_url, monkeypatch), "settings")
    text = _all_text(at) + _rendered(at)
    assert "EXCHANGE_API_KEY" in text and "•••• (set)" in text
    assert SECRET_MARKER not in text
    for page in PAGES:  # nor anywhere else
        _open(at, page)
        assert SECRET_MARKER not in _all_text(at) + _rendered(at), page


def test_invalid_config_is_shown_not_raised(sqlite_url, monkeypatch):
    monkeypatch.setenv("SYMBOLS", "btc-usdt")
    at = _app(sqlite_url, monkeypatch)
    assert "SYMBOLS" in _all_text(at)


def test_password_gate_when_required(seeded_url, monkeypatch):
    monkeypatch.setenv("CONSOLE_REQUIRE_PASSWORD", "true")
    monkeypatch.setenv("CONSOLE_PASSWORD", "right-horse")
    at = _app(seeded_url, monkeypatch)
    assert len(at.metric) == 0 and "Password" in [t.label for t in at.text_input]
    at.text_input[0].input("right-horse")
    at.button[0].click().run()
    assert not at.exception
    assert any(m.label == "Trades" for m in at.metric)


def test_password_required_but_unset_refuses(seeded_url, monkeypatch):
    monkeypatch.setenv("CONSOLE_REQUIRE_PASSWORD", "true")
    at = _app(seeded_url, monkeypatch)
    assert "CONSOLE_PASSWORD is empty" in _all_text(at)
    assert len(at.metric) == 0


def _pending(url: str) -> list[tuple[str, str | None]]:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as db:
            rows = db.scalars(
                select(Command).where(Command.status == "pending").order_by(Command.id)
            ).all()
            return [(r.command, r.argument) for r in rows]
    finally:
        engine.dispose()


def test_live_bot_shows_red_banner_even_if_console_says_paper(seeded_url, monkeypatch):
    engine = make_engine(seeded_url)
    with session_factory(engine)() as db:
        db.execute(update(BotStatus).values(mode="LIVE"))
        db.commit()
    engine.dispose()
    at = _app(seeded_url, monkeypatch)
    errors = " ".join(e.value for e in at.error)
    assert "LIVE TRADING" in errors
    assert any("the bot runs LIVE" in w.value for w in at.warning)


def _set(url: str, *changes) -> None:
    engine = make_engine(url)
    with session_factory(engine)() as db:
        for change in changes:
            db.execute(change)
        db.commit()
    engine.dispose()


def test_the_bots_market_wins_over_the_consoles_settings(seeded_url, monkeypatch):
    _set(seeded_url, update(BotStatus).values(feed="live"))  # the console's FEED: synthetic
    at = _app(seeded_url, monkeypatch)
    warnings = [w.value for w in at.warning]
    assert not any(w.startswith("SIMULATED market") for w in warnings), warnings
    assert any("live prices" in c.value for c in at.caption)
    assert any("settings say SIMULATED market" in w and "the bot runs on live prices" in w
               for w in warnings), warnings


def test_the_chart_draws_with_no_plan_level_to_fit(seeded_url, monkeypatch):
    """With the Plans toggle off (as with no plan open: a finished replay, a bot that has not
    bought yet) the price axis fits the candles alone: the chart is drawn, not an error."""
    at = _open(_app(seeded_url, monkeypatch), "chart")
    at.toggle(key="chart_plans").set_value(False).run()
    assert not at.exception
    layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    low, high = layout["yaxis"]["range"]
    assert low < high


def test_a_replay_sessions_chart_says_replayed(seeded_url, monkeypatch):
    _set(seeded_url, update(Session).values(kind="replay", run_name="r1", bot_id=None))
    at = _open(_app(seeded_url, monkeypatch), "chart")
    layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert layout["title"]["text"].endswith(" · PAPER · REPLAYED market")


def test_the_chart_names_the_market_its_session_was_traded_on(seeded_url, monkeypatch):
    _set(seeded_url, update(Session).values(feed="live"))
    at = _open(_app(seeded_url, monkeypatch), "chart")
    layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert layout["title"]["text"].endswith(" · PAPER · live prices")


def test_chart_date_window_and_toggles(seeded_url, monkeypatch):
    at = _open(_app(seeded_url, monkeypatch), "chart")
    at.toggle(key="chart_ema200").set_value(True)
    at.toggle(key="chart_bb").set_value(False)
    at.radio(key="chart_window").set_value("Date range").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 1
    at.selectbox(key="chart_symbol").set_value("ETH/USDT")
    at.selectbox(key="chart_tf").set_value("1h").run()
    assert not at.exception
    layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert layout["title"]["text"] == "ETH/USDT · 1h · PAPER · SIMULATED market"


def _a_year_before_the_seeded_day(url: str) -> tuple[int, float]:
    """A year of BTC/USDT 5m candles and the 1h ones rolled up from them, before the seeded
    ones, and a fill a day; returns the count and size of the run's BTC/USDT fills."""
    engine = make_engine(url)
    with session_factory(engine)() as db:
        session_id = db.scalar(select(Session.id).order_by(Session.id.desc()))
        seeded = db.scalar(select(func.min(OHLCV.timestamp)).where(
            OHLCV.symbol == "BTC/USDT", OHLCV.timeframe == "5m"))
        first = (seeded - timedelta(days=365)).replace(hour=0, minute=0)
        rows, hours = [], []

        def price_at(n: int) -> float:
            return 60_000 + 3_000 * math.sin(n / 2_000) + 40 * math.sin(n / 7)

        for n in range(int((seeded - first) / timedelta(minutes=5))):
            price = price_at(n)
            row = {"session_id": session_id, "symbol": "BTC/USDT", "timeframe": "5m",
                   "timestamp": first + timedelta(minutes=5 * n), "open": price,
                   "high": price + 25, "low": price - 25, "close": price + 5, "volume": 1.0}
            rows.append(row)
            if n % 12 == 11:
                hour = rows[-12:]
                hours.append({**hour[0], "timeframe": "1h", "close": hour[-1]["close"],
                              "high": max(r["high"] for r in hour),
                              "low": min(r["low"] for r in hour), "volume": 12.0})
        db.execute(insert(OHLCV), rows + hours)
        db.execute(insert(Trade), [
            {"session_id": session_id, "timestamp": first + timedelta(days=day, hours=7),
             "symbol": "BTC/USDT", "action": "BUY" if day % 3 else "SELL", "quantity": 0.01,
             "price": price_at(day * 288 + 84), "fee": 0.6, "realized_pnl": 0.0, "venue": "paper",
             "trade_id": f"Y{day}"} for day in range(365)])
        db.commit()
        fills = db.execute(select(func.count(), func.sum(Trade.quantity)).where(
            Trade.symbol == "BTC/USDT")).one()
    engine.dispose()
    return fills[0], fills[1]


def test_a_years_date_range_is_drawn_whole_as_coarser_bars(sqlite_url, monkeypatch):
    """A range holding more candles than the chart draws one by one is drawn whole, as the
    shortest bar that fits, and the page says so; its fills are one marker per bar and side
    that add up to the raw fills. A short range draws its candles one by one."""
    # seeded up to noon: a run just past midnight left the last day minutes of candles
    seeded_url = sqlite_url
    seed_console_db(seeded_url, now=datetime.now(UTC).replace(hour=12, minute=0))
    fills, size = _a_year_before_the_seeded_day(seeded_url)
    at = _open(_app(seeded_url, monkeypatch), "chart")
    at.radio(key="chart_window").set_value("Date range").run()
    dates = at.date_input(key="chart_dates")
    dates.set_value((dates.min, dates.max)).run()
    assert not at.exception, [e.value for e in at.exception]
    figure = _figure(at)
    bars = next(t for t in figure["data"] if t["type"] == "candlestick")["x"]
    assert 365 <= len(bars) <= 368  # whole: a day a bar, the first at the range's start
    assert _time(bars[0]).date() == dates.min and _time(bars[-1]).date() == dates.max
    words = _all_text(at)
    assert "Drawn as 1d bars" in words and "5m candles than the 1,000" in words, words
    assert "rolled up from the stored 1h candles (and the 5m ones where no 1h" in words
    markers = [t for t in figure["data"] if t.get("name", "").endswith(" fills per 1d bar")]
    assert {t["name"] for t in markers} == {"BUY fills per 1d bar", "SELL fills per 1d bar"}
    assert sum(c[0] for t in markers for c in t["customdata"]) == fills
    assert sum(c[1] for t in markers for c in t["customdata"]) == pytest.approx(size)
    names = {t.get("name") for t in figure["data"]}
    assert {"EMA 12 of 1d bars", "Bollinger (20, 2) of 1d bars"} <= names, names
    assert figure["layout"]["title"]["text"].startswith("BTC/USDT · 5m as 1d bars · ")

    dates.set_value((dates.max - timedelta(days=1), dates.max)).run()  # drawn one by one
    words = _all_text(at)
    assert "Drawn as" not in words
    candles = next(t for t in _figure(at)["data"] if t["type"] == "candlestick")["x"]
    assert 288 < len(candles) <= 576
    assert any(t.get("name") == "BUY fill" for t in _figure(at)["data"])


def test_plan_version_diff(seeded_url, monkeypatch):
    at = _open(_app(seeded_url, monkeypatch), "portfolio")
    diff = at.dataframe[-1].value
    assert diff["field"].tolist() == ["stop_price", "change"]


def test_plan_history_names_the_decision_that_wrote_each_version(sqlite_url, monkeypatch):
    """A version a decision wrote (a moved stop) shows that decision's number, the one the
    row opens; versions of the plan step, a fill or a command show none. On the chart, its
    step opens that decision; the others open the plan's."""
    seeded = seed_console_db(sqlite_url)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as db:
        plan = db.get(TradePlan, seeded.plan_ids[1])  # the open BTC plan the page shows first
        assert plan is not None
        revise_plan(db, plan, "updated: tighter", seeded.now, decided_by=seeded.trace_ids[9],
                    stop_price=plan.stop_price * 1.001)
        db.commit()
        steps = plan_steps(db, [seeded.session_id], "BTC/USDT",
                           seeded.now - timedelta(days=3), seeded.now, seeded.now)
    engine.dispose()
    assert steps[steps["plan_id"] == plan.id]["trace_id"].tolist() == [
        seeded.trace_ids[5], seeded.trace_ids[5], seeded.trace_ids[9]]
    at = _open(_app(sqlite_url, monkeypatch), "portfolio")
    history = next(d.value for d in at.dataframe if "change" in d.value.columns)
    assert history["change"].tolist()[-1] == "updated: tighter"
    assert [None if t != t else int(t) for t in history["decision #"]] == [
        None, None, seeded.trace_ids[9]]


def test_trade_filters_and_totals(seeded_url, monkeypatch):
    at = _open(_app(seeded_url, monkeypatch), "trades")
    at.selectbox(key="trades_side").set_value("SELL").run()
    assert {m.label: m.value for m in at.metric}["Fills"] == "2"
    at.text_input(key="trades_reason").input("target").run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert frame["reason"].tolist() == ["exit: target hit"]
    assert {m.label: m.value for m in at.metric}["Realized PnL (PAPER)"] != "0.00"
    assert len(at.get("download_button")) == 1


def test_trades_shows_a_page_of_fills_and_totals_over_all_of_them(sqlite_url, monkeypatch):
    """A year of a run is 20k fills: the table shows a page of the newest, the totals and
    the download cover every fill of the filter."""
    from datetime import timedelta

    from db.models import Trade

    PAGE_ROWS = 500  # views/trades.py's (importing a page runs it)
    seeded = seed_console_db(sqlite_url)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as db:
        before = db.query(Trade).filter_by(session_id=seeded.session_id).count()
        fees = sum(t.fee for t in db.query(Trade).filter_by(session_id=seeded.session_id))
        extra = 2 * PAGE_ROWS + 7
        db.add_all(Trade(session_id=seeded.session_id, symbol="BTC/USDT", action="BUY",
                         quantity=0.01, price=60_000.0, fee=0.5, realized_pnl=1.0,
                         timestamp=seeded.now - timedelta(days=1, seconds=k), venue="paper",
                         trade_id=f"bulk-{k}", reason="bulk")
                   for k in range(extra))
        db.commit()
    engine.dispose()
    at = _open(_app(sqlite_url, monkeypatch), "trades")
    total = before + extra
    shown = {m.label: m.value for m in at.metric}
    assert shown["Fills"] == f"{total:,}"
    assert float(re.sub(r"[^0-9.]", "", shown["Fees"])) == pytest.approx(fees + extra * 0.5,
                                                                          abs=0.01)
    frame = at.dataframe[0].value
    assert len(frame) == PAGE_ROWS
    assert frame["timestamp"].is_monotonic_decreasing
    assert at.get("download_button")[0].proto.label == f"Download CSV (all {total:,} fills)"
    at.number_input(key="trades_page").set_value(3).run()
    last = at.dataframe[0].value
    assert len(last) == total - 2 * PAGE_ROWS
    assert last["timestamp"].iloc[0] <= frame["timestamp"].iloc[-1]
    assert not set(last["id"]) & set(frame["id"])
    at.selectbox(key="trades_side").set_value("SELL").run()  # one page now: the first
    assert not at.exception, [e.value for e in at.exception]
    assert set(at.dataframe[0].value["action"]) == {"SELL"}


def test_picked_bot_scopes_pages_and_commands(seeded_url, monkeypatch):
    from datetime import UTC, datetime

    from db.bots import register_bot
    from db.models import Bot, Session

    engine = make_engine(seeded_url)
    with session_factory(engine)() as db:
        now = datetime.now(UTC)
        alpha = register_bot(db, "alpha", now)
        db.add(Session(date=now.date(), kind="live", run_name="alpha", bot_id=alpha.id,
                       mode="PAPER", venue="paper", starting_balance=500.0, created_at=now))
        db.commit()
    at = _app(seeded_url, monkeypatch)
    assert {m.label: m.value for m in at.metric}["Trades"] == "5"  # own bot by default
    assert at.query_params["bot"] == "default"
    at.selectbox(key="picked_bot").set_value("alpha").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Trades"] == "0"
    assert at.query_params["bot"] == "alpha"  # a reload or a shared link keeps the pick
    at.button(key="cmd_pause").click().run()
    with session_factory(engine)() as db:
        bot = db.execute(
            select(Bot.name).join(Command, Command.bot_id == Bot.id)
            .where(Command.status == "pending")
        ).scalar_one()
    engine.dispose()
    assert bot == "alpha"


def _two_bots(url: str) -> None:
    from datetime import UTC, datetime

    from db.bots import register_bot

    engine = make_engine(url)
    with session_factory(engine)() as db:
        register_bot(db, "alpha", datetime.now(UTC))
        db.commit()
    engine.dispose()


def _pending_by_bot(url: str) -> list[tuple[str, str]]:
    from db.models import Bot

    engine = make_engine(url)
    with session_factory(engine)() as db:
        rows = db.execute(
            select(Bot.name, Command.command).join(Command, Command.bot_id == Bot.id)
            .where(Command.status == "pending").order_by(Bot.name)
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_a_link_opens_the_named_bot(seeded_url, monkeypatch):
    _two_bots(seeded_url)
    monkeypatch.setenv("DATABASE_URL", seeded_url)
    at = AppTest.from_file(str(CONSOLE), default_timeout=60)
    at.query_params["bot"] = "alpha"
    at.run()
    assert not at.exception
    assert at.selectbox(key="picked_bot").value == "alpha"
    assert "No trading session" in _all_text(at)  # alpha's (none), not default's five trades


def test_fleet_lists_every_bot_and_commands_one(seeded_url, monkeypatch):
    from db.models import Bot

    _two_bots(seeded_url)
    engine = make_engine(seeded_url)
    with session_factory(engine)() as db:  # as the bot's heartbeat writes it
        db.scalars(select(Bot).where(Bot.name == "default")).one().symbols = "BTC/USDT"
        db.commit()
    engine.dispose()
    at = _open(_app(seeded_url, monkeypatch), "fleet")
    table = at.dataframe[0].value
    assert sorted(table["bot"]) == ["alpha", "default"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Bots"] == "2"
    assert metrics["Net PnL today (all bots)"].endswith(" USDT")  # counted in its currency
    at.button(key="fleet_stop_alpha").click().run()
    assert _pending_by_bot(seeded_url) == []  # the first click only asks
    assert "Stop bot alpha" in _all_text(at)
    at.button(key="confirm_fleet").click().run()
    assert not at.exception
    assert _pending_by_bot(seeded_url) == [("alpha", "stop")]


def test_fleet_names_each_bots_market_as_the_bot_recorded_it(seeded_url, monkeypatch):
    from db.heartbeat import status_row

    _two_bots(seeded_url)
    engine = make_engine(seeded_url)
    with session_factory(engine)() as db:
        status_row(db, "default").feed = "replay:BTC_USDT-5m.csv"
        db.commit()
    engine.dispose()
    table = _open(_app(seeded_url, monkeypatch), "fleet").dataframe[0].value
    markets = dict(zip(table["bot"], table["market"], strict=True))
    assert markets == {"default": "REPLAYED market", "alpha": "—"}  # alpha never started


def test_fleet_close_all_all_after_confirmation(seeded_url, monkeypatch):
    _two_bots(seeded_url)
    at = _open(_app(seeded_url, monkeypatch), "fleet")
    at.button(key="fleet_close_all_all").click().run()
    assert "EVERY bot" in _all_text(at)
    at.button(key="cancel_fleet").click().run()
    assert _pending_by_bot(seeded_url) == []
    at.button(key="fleet_close_all_all").click().run()
    at.button(key="confirm_fleet").click().run()
    assert _pending_by_bot(seeded_url) == [("alpha", "close-all"), ("default", "close-all")]


COMMAND_BUTTONS = ("close_BTC/USDT", "close_ETH/USDT", "cancel_O-9001", "cmd_pause",
                   "cmd_resume", "cmd_close_all", "cmd_stop")
PROCESS_BUTTONS = ("proc_start", "proc_stop", "proc_restart")


def _no_bot_to_command(at: AppTest, reason: str) -> None:
    """Every control that would command or signal a bot is disabled (AppTest, like the
    browser, refuses a click on it) and says why."""
    for key in COMMAND_BUTTONS + PROCESS_BUTTONS:
        assert at.button(key=key).disabled, key
        assert reason in at.button(key=key).help, key
    assert reason in _all_text(at)


def test_a_replay_session_commands_no_bot(seeded_url, monkeypatch):
    """Replays → Open in Overview → Portfolio → Close sold the live bot's position."""
    _set(seeded_url, update(Session).values(kind="replay", run_name="r1", bot_id=None))
    at = _open(_app(seeded_url, monkeypatch), "portfolio")
    assert "BTC/USDT: +0.04" in _all_text(at)  # the replay's positions are shown
    _no_bot_to_command(at, "replay run r1")


def _shown(at: AppTest, heading: str) -> list[tuple[float, str]]:
    """Each value of the column ``heading`` of the page's tables, with the text the browser
    draws for it (the column's printf format; none: the value as it is)."""
    out = []
    for frame in at.dataframe:
        if heading in frame.value.columns:
            config = json.loads(frame.proto.columns or "{}").get(heading, {})
            pattern = config.get("type_config", {}).get("format", "%s")
            out += [(float(v), pattern % v) for v in frame.value[heading] if v == v and v]
    return out


def _quoted_in_btc(url: str, scale: float = 1e-6) -> None:
    """The seeded run as a BTC-quoted pair's: BTC/USDT near 40,000 is priced near 0.04."""
    _set(url,
         update(Trade).values(price=Trade.price * scale, fee=Trade.fee * scale,
                              realized_pnl=Trade.realized_pnl * scale),
         update(Position).values(avg_price=Position.avg_price * scale),
         update(MarketData).values(price=MarketData.price * scale, bid=MarketData.bid * scale,
                                   ask=MarketData.ask * scale),
         update(OHLCV).values(open=OHLCV.open * scale, high=OHLCV.high * scale,
                              low=OHLCV.low * scale, close=OHLCV.close * scale),
         *(update(table).values(entry_price=table.entry_price * scale,
                                stop_price=table.stop_price * scale,
                                target_price=table.target_price * scale)
           for table in (TradePlan, TradePlanVersion)))


def test_a_btc_quoted_accounts_sums_are_not_cut_to_zero_in_tables(seeded_url, monkeypatch):
    """A 1 BTC account's fees, PnL and position values are thousandths: two decimals drew
    every one as 0.00 (or 0.0000 for a fee). The largest of a column keeps four significant
    digits, as the metrics above the tables do."""
    _quoted_in_btc(seeded_url)
    at = _app(seeded_url, monkeypatch)
    checked = {"value": _shown(at, "value"), "unrealized PnL": _shown(at, "unrealized PnL")}
    _open(at, "trades")
    checked |= {"fee": _shown(at, "fee"), "realized PnL": _shown(at, "realized PnL")}
    for heading, cells in checked.items():
        assert cells, heading
        value, text = max(cells, key=lambda cell: abs(cell[0]))
        assert float(text) == pytest.approx(value, rel=1e-3), (heading, value, text)


def test_a_btc_quoted_chart_keeps_its_prices_digits(seeded_url, monkeypatch):
    """ETH/BTC near 0.10 drew every price tick, candle, EMA, plan level and fill at two
    decimals: 0.10, 0.10, 0.10, 0.11, and a fill's fee and PnL as 0.0000 and -0.00."""
    _quoted_in_btc(seeded_url)
    at = _open(_app(seeded_url, monkeypatch), "chart")
    figure = plotly_io.from_json(at.get("plotly_chart")[0].proto.spec)
    highs = next(trace for trace in figure.data if trace.type == "candlestick").high
    if isinstance(highs, dict):  # plotly sends a numeric array as typed bytes
        highs = np.frombuffer(base64.b64decode(highs["bdata"]), dtype=highs["dtype"])
    top = float(max(highs))

    def kept(pattern: str, value: float) -> bool:  # a d3 ",.Nf" reads as Python's
        return float(format(value, pattern).replace(",", "")) == pytest.approx(value, rel=1e-3)

    assert kept(figure.layout.yaxis.tickformat, top)
    templates = {trace.name: trace.hovertemplate or "" for trace in figure.data}
    prices = [re.search(r"%\{y:([^}]+)\}", text).group(1) for name, text in templates.items()
              if "%{y:" in text and not name.startswith("Volume")]
    assert len(prices) >= 5  # two EMAs, three plan levels, the fills
    assert all(kept(pattern, top) for pattern in prices), prices
    fills = [trace for trace in figure.data if trace.name.endswith(" fill")]
    assert fills
    for trace in fills:
        fee = re.search(r"fee %\{customdata\[1\]:([^}]+)\}", trace.hovertemplate).group(1)
        pnl = re.search(r"PnL %\{customdata\[3\]:([^}]+)\}", trace.hovertemplate).group(1)
        for pattern, column in ((fee, 1), (pnl, 3)):
            largest = max((float(row[column]) for row in trace.customdata), key=abs)
            assert not largest or kept(pattern, largest), (trace.name, pattern, largest)


def test_the_overviews_win_rate_is_blank_until_a_round_trip_closes(seeded_url, monkeypatch):
    """Bought and still holding: no trip has won or lost yet, which 0% would say they all did."""
    _set(seeded_url, delete(Trade).where(Trade.action == "SELL"))
    at = _app(seeded_url, monkeypatch)
    win_rate = next(m for m in at.metric if m.label == "Win rate")
    assert win_rate.value == "—"
    assert "no round trip closed" in win_rate.help


def test_a_replays_overview_shows_no_bots_state_as_its_own(seeded_url, monkeypatch):
    """The live bot's state, heartbeat, loops and engine under a replay's figures read as
    the replay's own (a finished replay 'running', 'loop 33')."""
    at = _app(seeded_url, monkeypatch)
    assert {m.label: m.value for m in at.metric}["State"] == "running"  # a live session's bot
    _set(seeded_url, update(Session).values(kind="replay", run_name="r1", bot_id=None))
    at = _app(seeded_url, monkeypatch)
    labels = {m.label for m in at.metric}
    assert "Equity (PAPER)" in labels
    assert not labels & {"State", "Heartbeat", "Loops", "Engine"}, labels


def test_a_replay_databases_session_commands_no_bot(seeded_url, tmp_path, monkeypatch):
    """A live-looking session in a replay file is not this console's bot's, whatever its
    bot is called there."""
    from views._common import DATABASE_PICK_KEY, SESSION_PICK_KEY

    other = f"sqlite:///{tmp_path / 'replays.db'}"
    upgrade(other)
    shown = seed_console_db(other)
    at = _app(seeded_url, monkeypatch)
    at.session_state[DATABASE_PICK_KEY] = other
    at.session_state[SESSION_PICK_KEY] = shown.session_id
    _open(at, "portfolio")
    assert "Viewing replay database" in _all_text(at)
    _no_bot_to_command(at, "no bot of this console runs it")


def test_a_live_session_of_another_bot_commands_that_bot(seeded_url, monkeypatch):
    from datetime import UTC, datetime

    from db.bots import register_bot

    engine = make_engine(seeded_url)
    with session_factory(engine)() as db:
        alpha = register_bot(db, "alpha", datetime.now(UTC))
        db.execute(update(Session).values(run_name="alpha", bot_id=alpha.id))
        db.commit()
    engine.dispose()
    at = _app(seeded_url, monkeypatch)
    at.selectbox(key="picked_bot").set_value("alpha").run()
    _open(at, "portfolio")
    at.button(key="close_BTC/USDT").click().run()
    assert "Close bot alpha's whole BTC/USDT position" in _all_text(at)
    at.button(key="confirm_close_BTC/USDT").click().run()
    at.button(key="cmd_pause").click().run()
    assert not at.exception
    assert sorted(_pending_by_bot(seeded_url)) == [("alpha", "close"), ("alpha", "pause")]


def test_the_chart_is_the_same_figure_while_nothing_new_happened(seeded_url, monkeypatch):
    """The chart refreshes on its own; while no candle, fill or plan change came in, it must
    be the same figure. Streamlit takes a changed figure for a new chart: a user's click on a
    fill at that moment is lost and the zoom resets. So an open plan is drawn up to the newest
    candle (or its own newest version), not up to the wall clock."""
    at = _open(_app(seeded_url, monkeypatch), "chart")
    first = json.loads(at.get("plotly_chart")[0].proto.spec)
    at.run()
    again = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert any(trace.get("name") == "Plan stop" for trace in first["data"]), "no plan drawn"
    assert again == first


SNAKE_CASE = re.compile(r"[a-z0-9]_[a-z0-9]")


def _headers(at: AppTest) -> list[str]:
    """The header of every column of every table on the page, as the browser shows it: the
    column config's label where there is one, else the frame's column name."""
    shown = []
    for table in at.dataframe:
        config = json.loads(table.proto.columns or "{}")
        for column in table.value.columns:
            label = config.get(str(column), {}).get("label")
            shown.append(label or str(column))
    return shown


@pytest.mark.parametrize("page", [*PAGES, "replays"])
def test_table_headers_are_words(seeded_url, monkeypatch, page):
    at = _open(_app(seeded_url, monkeypatch), page)
    headers = _headers(at)
    assert headers or page in ("chart", "settings", "replays"), page
    assert [h for h in headers if SNAKE_CASE.search(h)] == []


def test_fleet_names_every_bot_in_words_and_money_in_cents(seeded_url, monkeypatch):
    """The fleet's buttons name their target in words ('CLOSE-ALL every bot', no label
    ending in ' ALL'), and net PnL shows in cents (-0.50, not -0.5)."""
    _two_bots(seeded_url)
    at = _open(_app(seeded_url, monkeypatch), "fleet")
    labels = [b.label for b in at.button]
    assert "STOP every bot" in labels and "CLOSE-ALL every bot" in labels
    assert not [label for label in labels if label.endswith(" ALL")]
    at.button(key="fleet_close_all_all").click().run()
    assert at.button(key="confirm_fleet").label == "Confirm CLOSE-ALL for every bot"
    config = json.loads(at.dataframe[0].proto.columns)
    assert config["net PnL"]["type_config"]["format"] == "%.2f"


def test_a_decision_and_its_execution_read_in_words(seeded_url, monkeypatch):
    """The Decision and Execution tabs are tables in words, each with its JSON behind an
    expander, wrapped."""
    decision = {"actions": [
        {"action": "BUY", "symbol": "BTC/USDT", "size": 0.03, "order_type": "market",
         "stop": 64000.5, "target": 66000.25, "confidence": 0.7, "reason": "trend up"},
        {"action": "BUY", "symbol": "ETH/USDT", "quote_value": 500.0, "reason": "breakout"},
    ], "summary": "two entries"}
    execution = {"equity": 10012.5, "unrealized_pnl": 3.25, "exposure": 1950.0,
                 "prices": {"BTC/USDT": 65000.0, "ETH/USDT": 2900.0}, "actions": [
        {"action": "BUY", "symbol": "BTC/USDT", "status": "placed", "plan_id": 4,
         "client_order_id": "tdl-17", "order_id": "P-17", "order_status": "closed",
         "filled": 0.03},
        {"action": "BUY", "symbol": "ETH/USDT", "status": "refused", "rule": "max_spread",
         "detail": "spread 0.9% over 0.5%"},
    ]}
    _set(seeded_url, update(LLMTrace).where(LLMTrace.id == 2).values(
        decision_json=json.dumps(decision), execution_result=json.dumps(execution)))
    at = _app(seeded_url, monkeypatch)
    at.query_params["trace"] = "2"
    _open(at, "decisions")
    tables = [t.value for t in at.dataframe]
    actions = next(t for t in tables if "stop" in t.columns and "confidence" in t.columns)
    assert actions["symbol"].tolist() == ["BTC/USDT", "ETH/USDT"]
    assert actions["stop"].iloc[0] == 64000.5 and actions["reason"].iloc[1] == "breakout"
    outcomes = next(t for t in tables if "refused because" in t.columns)
    assert outcomes["outcome"].tolist() == ["placed", "refused"]
    assert outcomes["filled"].iloc[0] == "0.03" and outcomes["sent as"].iloc[0] == "tdl-17"
    assert outcomes["refused because"].iloc[1] == "max_spread: spread 0.9% over 0.5%"
    text = _all_text(at)
    assert "Equity after 10,012.50 · unrealized 3.25 · exposure 1,950.00" in text
    assert [e.label for e in at.expander] == ["Raw JSON", "Raw JSON"]
    raw = [c for c in at.code if '"rule": "max_spread"' in c.value]
    assert raw and all(c.proto.wrap_lines for c in raw)


def _figure(at: AppTest) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def _time(value: str):
    """A time in the figure's JSON (naive or with its offset), as naive UTC."""
    import pandas as pd

    stamp = pd.Timestamp(value)
    return stamp.tz_convert(None) if stamp.tzinfo else stamp


def test_the_chart_opens_on_todays_plans_with_their_labels_clear_of_the_candles(
        seeded_url, monkeypatch):
    """The plan labels sat on the candles and fills at the right edge, and the default window
    of 500 candles squeezed the day's open plan into its last few per cent."""
    figure = _figure(_open(_app(seeded_url, monkeypatch), "chart"))
    candles = next(t for t in figure["data"] if t["type"] == "candlestick")
    newest = max(_time(x) for x in candles["x"])
    fills = [_time(x) for t in figure["data"] if t.get("name", "").endswith(" fill")
             for x in t["x"]]
    labels = [a for a in figure["layout"]["annotations"] if a["text"].startswith("#")]
    assert labels, "no open plan labelled"
    left, right = (_time(x) for x in figure["layout"]["xaxis"]["range"])
    for label in labels:  # right of every candle and fill, and inside the view
        assert label["xanchor"] == "left" and newest < _time(label["x"]) < right, label
        assert all(fill < _time(label["x"]) for fill in fills)
    entry = next(t for t in figure["data"] if t.get("name") == "Plan entry")["x"]
    gap = max(i for i, x in enumerate(entry) if x is None and i < len(entry) - 1)
    open_plan_start = _time(entry[gap + 1])  # the last plan drawn is the open one
    assert left <= open_plan_start
    assert (newest - open_plan_start) / (right - left) > 0.25  # not squeezed to the edge


def test_the_charts_ema_lines_are_the_engines_spans(seeded_url, monkeypatch):
    """The EMA toggle draws the spans the rules engine decides on (12 and 26)."""
    from bot.engine.indicators import DEFAULT_PARAMS

    at = _open(_app(seeded_url, monkeypatch), "chart")
    names = {trace.get("name") for trace in
             json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}
    assert {f"EMA {DEFAULT_PARAMS.ema_fast}", f"EMA {DEFAULT_PARAMS.ema_slow}"} <= names, names


def test_a_rules_trace_says_it_sent_no_prompt(seeded_url, monkeypatch):
    """The rules engine stores no prompt: its Prompt tab says so; an LLM's prompt, stored
    once in the blobs, is shown in full."""
    from db.models import LLMTrace
    from db.traces import store_blob

    engine = make_engine(seeded_url)
    with session_factory(engine)() as db:
        rules_id, llm_id = db.scalars(select(LLMTrace.id).order_by(LLMTrace.id).limit(2)).all()
        db.execute(update(LLMTrace).where(LLMTrace.id == rules_id)
                   .values(engine="rules", prompt="", raw_response=None))
        db.execute(update(LLMTrace).where(LLMTrace.id == llm_id)
                   .values(engine="gemini", prompt="", prompt_hash=store_blob(
                       db, "the stored prompt of the LLM")))
        db.commit()
    engine.dispose()
    for trace_id, shown in ((rules_id, "The rules engine sends no prompt"),
                            (llm_id, "the stored prompt of the LLM")):
        at = _app(seeded_url, monkeypatch)
        at.query_params["trace"] = str(trace_id)
        _open(at, "decisions")
        assert at.selectbox(key="dec_trace").value == trace_id
        assert shown in _all_text(at)


def test_a_past_day_of_a_bot_closes_and_cancels_nothing(seeded_url, monkeypatch):
    """Yesterday's session shows the positions and orders as that day left them. Its Close
    queued 'close BTC/USDT' for the bot, which sells whatever BTC the bot holds now (a new
    entry of today's, of another size than the +0.04 the question named); its Cancel, an
    order of yesterday's snapshot. A past day's rows command nothing; the bot's controls
    in the sidebar (pause, close-all) still reach it."""
    from datetime import UTC, datetime

    engine = make_engine(seeded_url)
    with session_factory(engine)() as db:
        seeded = db.scalars(select(Session)).one()
        today = seeded.date
        seeded.date = today - timedelta(days=1)
        db.flush()
        db.add(Session(date=today, kind=seeded.kind, run_name=seeded.run_name,
                       bot_id=seeded.bot_id, mode=seeded.mode, venue=seeded.venue,
                       feed=seeded.feed, starting_balance=seeded.starting_balance,
                       created_at=datetime.now(UTC)))
        db.commit()
        yesterday = seeded.id
    engine.dispose()
    at = _app(seeded_url, monkeypatch)
    next(s for s in at.sidebar.selectbox if s.label == "Session").set_value(yesterday).run()
    _open(at, "portfolio")
    assert "BTC/USDT: +0.04" in _all_text(at)  # yesterday's position, as the day left it
    for key in ("close_BTC/USDT", "cancel_O-9001"):
        assert at.button(key=key).disabled, key
        assert "trades in" in at.button(key=key).help, key
    assert not at.button(key="cmd_pause").disabled
    assert _pending(seeded_url) == []
