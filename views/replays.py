"""Replays: runs of the live loop over history, their summary, and starting a new one.

Runs are read from the console's database and from a replay database file (the CLI's
default ``data/replays.db`` or a path the operator gives), the file opened read-only so the
page can never change or create it. A run opens in the same Overview, Chart and Decisions
pages as live trading: the page points the sidebar's database and session pick at it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from bot.config import ConfigError, load_settings
from bot.model.figures import figure
from bot.run_settings import (
    NOT_RECORDED_TEXT,
    flag_named,
    option_origins,
    replay_flags,
    replay_overrides,
    settings_diff,
    settings_hash,
)
from db.contamination import run_contamination
from db.engine import engine_for, session_factory
from db.migrate import schema_mismatch
from db.queries_replays import (
    equity_curve,
    normalised_curve,
    replay_runs,
    run_balance_warnings,
    run_figures,
    run_progress,
    run_session_ids,
    run_settings,
    run_summary,
)
from views._common import DATABASE_PICK_KEY, money, pick_session, settings
from views._equity import compare_figure, equity_figure
from views._replay_runs import (
    DEFAULT_REPLAY_DB,
    Launched,
    Launcher,
    PathRefused,
    allowed_folders,
    candle_files,
    candle_span,
    confined,
    sqlite_url,
)
from views._tables import table
from views._text import literal

FILE_KEY = "replay_db_path"
COMPARE_KEY = "compare_runs"
GOTO_KEY = "_replay_goto"
OPEN_IN = {"Overview": "views/overview.py", "Chart": "views/chart.py",
           "Decisions": "views/decisions.py"}
SUMMARY_LABELS = {
    "net_pnl": "Net PnL", "return_pct": "Return %", "buy_and_hold_pct": "Buy & hold %",
    "max_drawdown_pct": "Max drawdown %", "trades": "Trades", "round_trips": "Round trips",
    "win_rate": "Win rate %", "fees": "Fees", "llm_cost": "LLM cost", "exposure_time_pct": "Exposure time %",
}


@st.cache_resource
def _launcher() -> Launcher:
    """One registry per server: a replay started in one tab shows in every tab."""
    return Launcher()


def _sources(path: Path | None) -> list[tuple[str, str]]:
    """(label, URL) of each database to list: ours, and the replay file when it exists."""
    own = settings().database_url
    sources = [("console database", own)]
    if path is not None and path.is_file() and sqlite_url(path) != own:
        url = sqlite_url(path, read_only=True)
        try:
            mismatch = schema_mismatch(engine_for(url), url)
        except Exception:  # not SQLite at all, or unreadable
            st.warning(f"{literal(path)} is not a replay database.")
            return sources
        if mismatch is None:
            sources.append((f"replay file {path}", url))
        else:  # its runs would list, then fail to open in the pages
            st.warning(f"{literal(path)} {literal(mismatch)}. A file written by an older version opens once "
                       f"migrated: `DATABASE_URL={sqlite_url(path)} .venv/bin/python -m "
                       "db.migrate` (a replay started into it below migrates it too).")
    return sources


def _runs(url: str) -> list[dict]:
    try:
        with session_factory(engine_for(url))() as db:
            return replay_runs(db)
    except Exception as exc:  # a foreign or older file: say which, keep the page up
        st.warning(f"Cannot read replay runs from {literal(url.split('///', 1)[-1])}: "
                   f"{literal(exc)}")
        return []


def _open_run(url: str, session_id: int, page: str) -> None:
    """Point the sidebar at the run (the callback runs before the widgets are built)."""
    if url == settings().database_url:
        st.session_state.pop(DATABASE_PICK_KEY, None)
    else:
        st.session_state[DATABASE_PICK_KEY] = url
    pick_session(session_id)
    st.session_state[GOTO_KEY] = OPEN_IN[page]


def _run_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    table["period"] = table["from"].astype(str) + " → " + table["to"].astype(str)
    return table[["source", "run", "files", "period", "candles", "symbols", "trades", "net_pnl",
                  "return_pct", "fingerprint"]]


def _summary(url: str, run: dict) -> None:
    with session_factory(engine_for(url))() as db:
        ids = run_session_ids(db, run["run"])
        summary = run_summary(db, ids, run["starting_balance"], run["run"])
        curve = equity_curve(db, ids, run["starting_balance"])
        warnings = run_balance_warnings(db, ids, run["starting_balance"], run["run"])
        contamination = run_contamination(db, ids)
    st.subheader(f"{literal(run['run'])} · {literal(run['files'] or run['symbols'])}")
    st.caption(f"{literal(run['from'])} → {literal(run['to'])} · {summary['candles']:,} steps · "
               f"starting balance {money(run['starting_balance'])} · "
               f"fingerprint {literal(summary['fingerprint'])}")
    for warning in warnings:
        st.warning(literal(warning))
    if contamination:
        st.warning(literal(contamination))
    per_row = 5  # nine figures in one row cut a four-digit PnL short
    cols = [col for _ in range(0, len(SUMMARY_LABELS), per_row) for col in st.columns(per_row)]
    for col, (key, label) in zip(cols, SUMMARY_LABELS.items(), strict=False):
        value = summary[key]
        col.metric(label, f"{value:,}" if isinstance(value, int) else figure(value))
    if curve.empty:
        st.info("No step recorded yet.")
    else:
        st.plotly_chart(equity_figure(curve, "replay equity", height=380,
                                      title="Equity vs buy-and-hold"), width="stretch")
    buttons = st.columns(len(OPEN_IN))
    for col, page in zip(buttons, OPEN_IN, strict=True):
        col.button(f"Open in {page}", key=f"open_{page}", width="stretch", on_click=_open_run,
                   args=(url, run["last_session_id"], page))


def _compared(url: str, run: dict) -> tuple[dict, pd.DataFrame, dict | None]:
    """A run's summary, its equity normalised to its start, and its recorded settings."""
    with session_factory(engine_for(url))() as db:
        ids = run_session_ids(db, run["run"])
        summary = run_summary(db, ids, run["starting_balance"], run["run"])
        curve = normalised_curve(equity_curve(db, ids, run["starting_balance"]),
                                 run["starting_balance"])
        return summary, curve, run_settings(db, ids)


def _compare(rows: list[dict], keys: list[str], urls: dict[str, str]) -> None:
    st.subheader("Compare runs")
    picked = st.multiselect("Runs to compare", keys, key=COMPARE_KEY,
                            format_func=lambda k: k.replace("|", " · "))
    if len(picked) < 2:
        st.caption("Pick two or more runs: their equity on one chart, their figures side by "
                   "side and the settings that differ between them.")
        return
    runs = {key: rows[keys.index(key)] for key in picked}
    names = [run["run"] for run in runs.values()]
    figures: dict[str, dict[str, str]] = {}
    curves: dict[str, pd.DataFrame] = {}
    records: dict[str, dict | None] = {}
    for key, run in runs.items():
        # one run in two databases (the console's and a file) is told apart by its source
        name = run["run"] if names.count(run["run"]) == 1 else f"{run['run']} ({run['source']})"
        summary, curves[name], records[name] = _compared(urls[key], run)
        figures[name] = {words: f"{value:,}" if isinstance(value, int) else figure(value)
                         for words, value in run_figures(summary).items()}
        record = records[name]
        figures[name]["Settings hash"] = (settings_hash(record) if record is not None
                                          else NOT_RECORDED_TEXT)
    st.plotly_chart(compare_figure(curves, height=380), width="stretch")
    st.table(pd.DataFrame(figures))  # a few rows: a plain table, every value readable
    st.markdown("**Settings that differ**")
    unrecorded = [name for name, record in records.items() if record is None]
    if unrecorded:
        st.info(f"{literal(', '.join(unrecorded))}: {NOT_RECORDED_TEXT} (run before runs "
                "recorded them).")
    differ = settings_diff(records)
    if differ:
        st.table(pd.DataFrame(differ).set_index("setting").rename_axis("Setting"))
    elif len(records) - len(unrecorded) >= 2:
        st.caption("The runs recorded the same settings.")


def _start_form(db_path: Path | None, folders: list[Path]) -> None:
    if db_path is None:
        st.info("Enter a replay database file in an allowed folder above to start a replay.")
        return
    files = [p for p in candle_files() if any(p.resolve().is_relative_to(f) for f in folders)]
    configured = settings()
    with st.form("start_replay"):
        picked = st.multiselect("Candle files (several run in lockstep)",
                                [str(p) for p in files], format_func=lambda p: Path(p).name)
        typed = st.text_input("…or candle file path(s), comma-separated")
        top = st.columns(4)
        engine = top[0].selectbox("Engine", ["rules", "gemini"],
                                  index=["rules", "gemini"].index(configured.llm_provider))
        model = top[1].text_input("Model (gemini)", value=configured.llm_model)
        start = top[2].date_input("Start (UTC, optional)", value=None)
        end = top[3].date_input("End (UTC, optional)", value=None)
        money_cols = st.columns(4)
        balance = money_cols[0].number_input("Starting balance (quote currency)",
                                             min_value=0.0001, value=10_000.0, step=1000.0)
        maker = money_cols[1].number_input("Maker fee (fraction)", min_value=0.0,
                                           value=configured.maker_fee, step=0.0001,
                                           format="%.4f")
        taker = money_cols[2].number_input("Taker fee (fraction)", min_value=0.0,
                                           value=configured.taker_fee, step=0.0001,
                                           format="%.4f")
        entry = money_cols[3].number_input("Entry size (% of equity)", min_value=0.0,
                                           value=configured.entry_value_pct, step=0.5)
        risk = st.columns(4)
        max_order = risk[0].number_input("Max order value (blank: 10% of the balance)",
                                         min_value=0.0, value=None, step=100.0)
        max_exposure = risk[1].number_input("Max total exposure (blank: 50% of the balance)",
                                            min_value=0.0, value=None, step=100.0)
        positions = risk[2].number_input("Max open positions", min_value=0,
                                         value=configured.max_open_positions, step=1)
        daily_loss = risk[3].number_input("Max daily loss %", min_value=0.0,
                                          value=configured.max_daily_loss_pct, step=0.5)
        st.caption(f"Written to {literal(db_path)} (the replay database above).")
        submitted = st.form_submit_button("Start replay", type="primary")
    if not submitted:
        return
    options = {"model": model.strip() or None, "maker-fee": maker, "taker-fee": taker,
               "entry-value-pct": entry, "max-order-value": max_order,
               "max-total-exposure": max_exposure, "max-open-positions": positions,
               "max-daily-loss-pct": daily_loss}
    try:  # a bad value is named here, before a process is started for it
        load_settings(STARTING_BALANCE=balance, LLM_PROVIDER=engine,
                      **replay_overrides(options))
    except ConfigError as exc:
        st.error(literal(flag_named(exc, option_origins(replay_overrides(options)))))
        return
    if start is not None and end is not None and start >= end:
        st.error(f"The end ({end}) must be after the start ({start}).")
        return
    flags = ["--engine", engine, *replay_flags(options)]
    for flag, day in (("start", start), ("end", end)):
        if day is not None:
            flags += [f"--{flag}", day.isoformat()]
    try:
        paths = [confined(p, folders) for p in picked] + [
            confined(p.strip(), folders) for p in typed.split(",") if p.strip()]
    except PathRefused as exc:
        st.error(literal(exc))
        return
    missing = [str(p) for p in paths if not p.is_file()]
    if not paths or missing:
        st.error(f"No such candle file: {literal(', '.join(missing))}" if missing
                 else "Pick or enter at least one candle file.")
        return
    run = _launcher().start(paths, db_path, float(balance), flags)
    st.toast(f"replay {literal(run.name)} started (pid {run.proc.pid})")


@st.fragment(run_every=2)
def _progress() -> None:
    runs = _launcher().runs
    if not runs:
        return
    st.subheader("Started from this console")
    for run in runs:
        _one_progress(run)


def _one_progress(run: Launched) -> None:
    """Steps and the paper clock against the file's candles; the log tail once it ended."""
    spans = [candle_span(p) for p in run.paths if p.is_file()]
    first = min((f for f, _ in spans), default=0)
    last = max((la for _, la in spans), default=0)
    where = None
    if run.db_path.is_file():
        try:
            with session_factory(engine_for(sqlite_url(run.db_path, read_only=True)))() as db:
                where = run_progress(db, [str(p) for p in run.paths])
        except Exception:  # the replay is still creating its schema: try again next poll
            where = None
    code = run.exit_code
    state = "running" if code is None else ("done" if code == 0 else f"failed (exit {code})")
    files = literal(", ".join(p.name for p in run.paths))
    if where is None:
        st.progress(0.0, text=f"{literal(run.name)} · {files}: {state}, no step yet")
    else:
        span = max(last - first, 1)
        share = min(max((where["now_ms"] - first) / span, 0.0), 1.0) if last else 0.0
        clock = pd.to_datetime(where["now_ms"], unit="ms", utc=True)
        # steps, not "of N candles": the first candles only warm the indicators up
        st.progress(share, text=f"{literal(run.name)} · {files}: {state} · "
                                f"{where['steps']:,} steps · "
                                f"clock {clock:%Y-%m-%d %H:%M}")
    if code not in (None, 0):
        st.code(run.log_tail(), language=None)


st.header("Replays")
st.caption("The live loop over recorded candles: same engine, plans and risk, simulated "
           "clock. Each run opens in Overview, Chart and Decisions like live trading.")
if GOTO_KEY in st.session_state:
    st.switch_page(st.session_state.pop(GOTO_KEY))

path_text = st.text_input("Replay database file", value=str(DEFAULT_REPLAY_DB), key=FILE_KEY,
                          help="SQLite file written by `python -m bot replay --db` (opened "
                               "read-only); runs in the console's own database are listed too")
folders = allowed_folders(settings().replay_folders)
replay_db: Path | None = None
try:
    replay_db = confined(path_text, folders)
except PathRefused as refused:
    st.warning(literal(refused))
rows: list[dict] = []
urls: dict[str, str] = {}
for label, url in _sources(replay_db):
    for run in _runs(url):
        rows.append({**run, "source": label})
        urls[f"{label}|{run['run']}"] = url

if not rows:
    st.info("No replay run yet: start one below, or run "
            "`python -m bot replay --candles PATH --json`.")
else:
    table(_run_table(rows), width="stretch")
    keys = [f"{r['source']}|{r['run']}" for r in rows]
    chosen = st.selectbox("Run", keys, format_func=lambda k: k.replace("|", " · "))
    run = rows[keys.index(chosen)]
    _summary(urls[chosen], run)
    st.divider()
    _compare(rows, keys, urls)

st.divider()
st.subheader("Start a replay")
_start_form(replay_db, folders)
_progress()
