"""Retention: traces and ticks older than the kept days are thinned, never what caused an
order, what an active plan or an unfinished replay needs, nor the day's aggregates."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session as OrmSession

from bot.__main__ import main
from bot.engine.schema import Action, ActionType, Decision
from bot.model.vocabulary import TraceStatus
from db import retention
from db.engine import make_engine, session_factory
from db.models import (
    OHLCV,
    DecisionScoreTip,
    EquityStep,
    LLMTrace,
    MarketData,
    Order,
    PaperClock,
    PerformanceRollup,
    Session,
    TraceBlob,
    TradePlan,
    TradePlanVersion,
)
from db.performance import span_performance
from db.performance_rollups import roll_up_closed
from db.queries import overview_figures, session_info
from db.queries_trading import trace_detail
from db.scorecard import settle_scores
from db.traces import add_trace
from db.trades import record_trade
from tests.crafted import FIVE_MIN_MS, WARMUP, flat_then, write_path
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.waiting import wait_for

TODAY = date(2026, 12, 6)  # the fake clock: every prune here is given its day
OLD = TODAY - timedelta(days=10)
TICKS = 5
SYSTEM = "You trade BTC/USDT.\n\nAnswer in JSON."  # every prompt's system part, stored once


def _session(db: OrmSession, day: date, kind: str = "live", run_name: str = "live") -> int:
    session = Session(date=day, kind=kind, run_name=run_name, starting_balance=1000.0,
                      created_at=datetime.combine(day, time(), UTC))
    db.add(session)
    db.flush()
    at = datetime.combine(day, time(12), UTC)
    for k in range(TICKS):
        for symbol in ("BTC/USDT", "ETH/USDT"):
            db.add(MarketData(session_id=session.id, symbol=symbol, price=100.0 + k,
                              timestamp=at + timedelta(minutes=k)))
    for k in range(3):  # holds: nothing refers to them
        add_trace(db, session_id=session.id, engine="gemini", prompt_system=SYSTEM,
                  prompt=f"{SYSTEM}\n\nsession {session.id} hold {k}",
                  raw_response='{"actions": []}', created_at=at + timedelta(minutes=k),
                  execution_result=json.dumps({"equity": 1000.0}))
        db.add(EquityStep(session_id=session.id, created_at=at + timedelta(minutes=k),
                          equity=1000.0, exposure=0.0, prices="{}"))
    return session.id


def _ordering_trace(db: OrmSession, session_id: int, day: date, plan_status: str) -> int:
    """A trace that sent an entry and opened a plan (``plan_status``)."""
    at = datetime.combine(day, time(13), UTC)
    trace_id = add_trace(db, session_id=session_id, engine="gemini", prompt_system=SYSTEM,
                         prompt=f"{SYSTEM}\n\n{day} buy",
                         raw_response='{"actions": [{"action": "BUY"}]}', created_at=at)
    plan = TradePlan(session_id=session_id, symbol="BTC/USDT", side="BUY", entry_price=100.0,
                     stop_price=95.0, target_price=110.0, size=1.0, status=plan_status,
                     trace_id=trace_id, opened_at=at)
    db.add(plan)
    db.flush()
    db.add(Order(session_id=session_id, client_order_id=f"td-{session_id}", symbol="BTC/USDT",
                 side="buy", type="market", amount=1.0, purpose="entry", status="closed",
                 plan_id=plan.id, trace_id=trace_id, created_at=at, updated_at=at))
    return trace_id


@pytest.fixture
def history(db_url: str) -> dict[str, int]:
    """Old days of every kind, and today."""
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        ids = {
            "old": _session(db, OLD),
            "old_active_plan": _session(db, OLD + timedelta(days=1)),
            "old_finished_replay": _session(db, OLD, "replay", "replay-done"),
            "old_unfinished_replay": _session(db, OLD, "replay", "replay-running"),
            "today": _session(db, TODAY),
        }
        ids["old_order_trace"] = _ordering_trace(db, ids["old"], OLD, "closed")
        midnight = datetime.combine(TODAY, time(), UTC)
        for name, kind, run in (("old", "live", "live"), ("old_active_plan", "live", "live"),
                                ("old_finished_replay", "replay", "replay-done")):
            _rolled(db, ids[name], kind, run, midnight)
        _ordering_trace(db, ids["old_active_plan"], OLD + timedelta(days=1), "open")
        db.add_all([PaperClock(account="replay-done", now_ms=0, feed="",
                               finished_at=datetime.combine(OLD, time(), UTC)),
                    PaperClock(account="replay-running", now_ms=0, feed="")])
        db.commit()
    engine.dispose()
    return ids


def _kept(url: str) -> dict[int, tuple[int, int, int]]:
    """Per session: traces, ticks, equity steps."""
    engine = make_engine(url)
    with session_factory(engine)() as db:
        def per_session(model) -> dict[int, int]:
            return dict(db.execute(select(model.session_id, func.count())  # type: ignore[attr-defined]
                                   .group_by(model.session_id)).all())
        traces, ticks, steps = (per_session(m) for m in (LLMTrace, MarketData, EquityStep))
        sessions = db.scalars(select(Session.id)).all()
    engine.dispose()
    return {s: (traces.get(s, 0), ticks.get(s, 0), steps.get(s, 0)) for s in sessions}


def test_prune_thins_old_days_and_keeps_what_is_needed(db_url, history, capsys, monkeypatch):
    import bot.prune

    monkeypatch.setattr(bot.prune, "today", lambda: TODAY)
    before = _kept(db_url)
    assert main(["prune", "--db", db_url, "--days", "3", "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    # the old live day and the finished replay: their holds; the live day's ticks
    assert dry == {"days": 3, "dry_run": True, "sessions": 2, "traces": 6,
                   "market_data": 2 * TICKS - 2, "blobs": 0}
    assert _kept(db_url) == before  # a dry run deletes nothing

    assert main(["prune", "--db", db_url, "--days", "3"]) == 0
    done = json.loads(capsys.readouterr().out)
    # and the 6 holds' prompts; the answer they share with the kept holds stays
    assert done == {**dry, "dry_run": False, "blobs": 6}
    after = _kept(db_url)
    old = history["old"]
    assert after[old] == (1, 2, 3)  # the trace that ordered, the last tick per symbol, steps
    # a finished replay keeps its ticks (its step count) and its steps (its curve)
    assert after[history["old_finished_replay"]] == (0, 2 * TICKS, 3)
    for kept in ("old_active_plan", "old_unfinished_replay", "today"):
        assert after[history[kept]] == before[history[kept]], kept
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        assert db.get(LLMTrace, history["old_order_trace"]) is not None
        last = db.scalars(select(MarketData.price).where(MarketData.session_id == old)).all()
        assert last == [100.0 + TICKS - 1] * 2  # the day's closing prices
        named = {h for row in db.execute(select(LLMTrace.prompt_hash, LLMTrace.system_hash,
                                                LLMTrace.response_hash)) for h in row if h}
        assert set(db.scalars(select(TraceBlob.hash))) == named
        kept = trace_detail(db, history["old_order_trace"])  # the system part it shares stays
        assert kept is not None and kept["prompt"] == f"{SYSTEM}\n\n{OLD} buy"
    engine.dispose()

    assert main(["prune", "--db", db_url, "--days", "3"]) == 0  # a second pass finds nothing
    assert json.loads(capsys.readouterr().out) == {**done, "traces": 0, "market_data": 0,
                                                   "blobs": 0}


def test_prune_without_days_is_refused_in_words(sqlite_url, capsys) -> None:
    assert main(["prune", "--db", sqlite_url]) == 2
    assert "--days" in capsys.readouterr().err
    assert main(["prune", "--db", sqlite_url, "--days", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    # beyond the calendar: an OverflowError traceback (exit 1), not a refusal
    assert main(["prune", "--db", sqlite_url, "--days", "99999999"]) == 2
    err = capsys.readouterr().err
    assert "prune: --days must be at most 100,000, not 99999999" in err, err


def test_a_live_bot_thins_at_the_rollover(sqlite_url, tmp_path) -> None:
    """A live run on a simulated clock (the fake clock) crossing midnight: the day that
    falls out of RETAIN_DAYS is thinned at the rollover, not before. The bot runs at UTC-12,
    where the earliest calendar day anywhere, which a prune counts from, begins."""
    first_clock = datetime(2023, 11, 15, 11, 30, tzinfo=UTC)  # 23:30 on the 14th at UTC-12
    day = date(2023, 11, 14)
    start_ms = int(first_clock.timestamp() * 1000) - WARMUP * FIVE_MIN_MS
    path = write_path(tmp_path / "TST_USDT-5m.csv", [100.0] * (WARMUP + 12), start_ms=start_ms)
    rt = make_runtime(sqlite_url, [path], kind="live", run_name="live", RETAIN_DAYS=2,
                      SESSION_TIMEZONE="Etc/GMT+12")
    with rt.db() as db:  # another bot's day, kept while it is within the two days
        other = _session(db, day - timedelta(days=1), run_name="other")
        _session(db, day, run_name="other")
        _rolled(db, other, "live", "other", first_clock)
        db.commit()
    step(rt, 6)  # 23:30 ... 23:55
    assert _kept(sqlite_url)[other] == (3, 2 * TICKS, 3)
    step(rt, 2)  # midnight: a new day, and the day before yesterday is out of the two
    assert rt.session_day == day + timedelta(days=1)
    assert _kept(sqlite_url)[other] == (0, 2, 3)


def _rolled(db: OrmSession, session_id: int, kind: str, run_name: str,
            scored_through: datetime) -> None:
    """The session's day rolled up, and its run's decisions scored up to ``scored_through``,
    as the bot leaves them at a rollover."""
    db.add(PerformanceRollup(session_id=session_id, steps=None, trips='{"symbols": {}, "open": []}',
                             llm_cost=0.0))
    db.merge(DecisionScoreTip(kind=kind, run_name=run_name, through=scored_through))


def _new_york_pruned(db_url: str, days_back: tuple[int, ...]
                     ) -> tuple[list[int], dict[int, tuple[int, int, int]]]:
    """A New York bot's sessions dated ``days_back`` days before TODAY (oldest first), each
    rolled up but the newest (the day it trades in), then ``python -m bot prune --days 1``:
    the sessions' ids and what each kept (``_kept``)."""
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        ids = [_session(db, TODAY - timedelta(days=back), run_name="new-york")
               for back in days_back]
        for closed in ids[:-1]:
            _rolled(db, closed, "live", "new-york", datetime.combine(TODAY, time(), UTC))
        db.commit()
    engine.dispose()
    assert main(["prune", "--db", db_url, "--days", "1"]) == 0
    return ids, _kept(db_url)


def test_the_open_day_of_a_bot_west_of_utc_is_never_thinned(db_url, monkeypatch):
    """At 02:00 UTC a New York bot's open session is dated yesterday: a prune keeping one
    day (today, in UTC) must not thin the day the bot is trading in."""
    import bot.prune

    monkeypatch.setattr(bot.prune, "today", lambda: TODAY)
    (closed, open_day), after = _new_york_pruned(db_url, days_back=(2, 1))
    assert after[open_day] == (3, 2 * TICKS, 3)
    assert after[closed] == (0, 2, 3)


def _costed_day_rolled_up(db: OrmSession, day: date) -> list[int]:
    """A live day whose three holds cost 0.5 each, rolled up and scored, and today: the
    two sessions' ids."""
    ids = [_session(db, day), _session(db, TODAY)]
    db.execute(update(LLMTrace).where(LLMTrace.session_id == ids[0]).values(cost=0.5))
    assert roll_up_closed(db, ids, ids[-1]) == 1
    db.merge(DecisionScoreTip(kind="live", run_name="live",
                              through=datetime.combine(TODAY, time(), UTC)))
    db.commit()
    return ids


def test_a_day_the_fill_sync_can_still_book_into_keeps_its_llm_cost(db_url, capsys,
                                                                     monkeypatch):
    """Keeping one day thins yesterday at today's start, but the fill sync books a fill of
    yesterday's last step it sees only now (TRADE_SYNC_CUTOFF_MINUTES reaches back a day)
    into yesterday's session, which voids its rollup: the rollup written again must not
    lose the cost of the decisions that were thinned, so yesterday is kept until the sync
    can no longer book into it."""
    import bot.prune

    monkeypatch.setattr(bot.prune, "today", lambda: TODAY)
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        ids = _costed_day_rolled_up(db, TODAY - timedelta(days=1))
        yesterday = ids[0]
        assert main(["prune", "--db", db_url, "--days", "1"]) == 0
        capsys.readouterr()
        record_trade(db, datetime.combine(TODAY, time(0, 1), UTC), session_id=yesterday,
                     timestamp=datetime.combine(TODAY, time(), UTC) - timedelta(seconds=30),
                     symbol="BTC/USDT", action="BUY", quantity=1.0, price=100.0, fee=0.1,
                     realized_pnl=0.0, venue="paper", trade_id="seen-late")
        db.commit()
        assert roll_up_closed(db, ids, ids[-1]) == 1
        assert span_performance(db, ids)[0].metrics["llm_cost"] == pytest.approx(3 * 0.5)
    engine.dispose()


def test_the_command_keeps_the_days_a_bot_west_of_utc_can_still_book_into(
        db_url, monkeypatch):
    """``python -m bot prune`` at 02:00 UTC on TODAY: a New York bot trades in yesterday's
    date, and the day before ended 21 hours ago, so its fill sync can still book into it.
    The command knows no bot's time zone: keeping one day (and the sync's), it keeps both."""
    import bot.prune

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):  # the fake clock
            return datetime.combine(TODAY, time(2), UTC)

    monkeypatch.setattr(bot.prune, "datetime", Clock)
    (older, ended, _), after = _new_york_pruned(db_url, days_back=(3, 2, 1))
    assert after[ended] == (3, 2 * TICKS, 3)
    assert after[older] == (0, 2, 3)


def test_decisions_not_yet_scored_are_kept(db_url, capsys, monkeypatch):
    """The scorecard rolls a run's decisions up once their horizons have passed; a trace
    after the run's tip is still to be scored from, so retention keeps it."""
    import bot.prune

    monkeypatch.setattr(bot.prune, "today", lambda: TODAY)
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        old = _session(db, OLD)
        _session(db, TODAY)
        # the tip between the old day's second hold (12:01) and its third (12:02)
        _rolled(db, old, "live", "live", datetime.combine(OLD, time(12, 1, 30), UTC))
        db.commit()
    engine.dispose()
    assert main(["prune", "--db", db_url, "--days", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["traces"] == 2
    assert _kept(db_url)[old] == (1, 2, 3)


def _names_held(db: OrmSession) -> set[str]:
    """Every blob key a trace names: its prompt, system part, answer and answers."""
    named: set[str] = set()
    for *keys, answers in db.execute(select(LLMTrace.prompt_hash, LLMTrace.system_hash,
                                            LLMTrace.response_hash, LLMTrace.answers)):
        named.update(key for key in keys if key)
        named.update(a["response_hash"] for a in answers or [] if "response_hash" in a)
    return named


def _trace_again(conn: Connection, session_id: int, context: str, answer: str) -> None:
    """Another bot's decision, written as the bot writes one (``bot.steps.decide``)."""
    add_trace(conn, session_id=session_id, engine="gemini", prompt_system=SYSTEM,
              prompt=f"{SYSTEM}\n\n{context}", raw_response='{"actions": []}',
              answers=[{"raw_response": answer, "errors": []}],
              created_at=datetime.combine(TODAY, time(12), UTC))
    conn.commit()


def test_a_trace_written_while_a_prune_reads_names_keeps_its_blobs(db_url, monkeypatch):
    """Bot B stores a decision whose prompt and answer are blobs only thinned traces name
    (its insert of each finds it there and writes nothing) just after a prune has read the
    names: the prune must not delete them from under B's trace.

    PostgreSQL: B commits from its own connection at that moment, or waits for the prune
    and then stores them anew. SQLite: B finds the one write lock taken (``busy_timeout``
    0: it cannot wait), so it writes once the prune has committed."""
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        old = _session(db, OLD)
        today = _session(db, TODAY, run_name="bot-b")
        _rolled(db, old, "live", "live", datetime.combine(TODAY, time(), UTC))
        db.commit()
    # texts only the old day's holds stored: B's prompt's context and its answer
    context, answer = f"session {old} hold 0", f"session {old} hold 1"
    postgres = engine.dialect.name == "postgresql"
    writer = make_engine(db_url)
    outcome: dict[str, object] = {}

    def write() -> None:
        with writer.connect() as conn:
            if postgres:
                outcome["pid"] = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            else:
                conn.exec_driver_sql("PRAGMA busy_timeout=0")
            try:
                _trace_again(conn, today, context, answer)
            except OperationalError as exc:
                outcome["error"] = exc

    def b_waits() -> bool:
        with engine.connect() as conn:
            return bool(conn.scalar(text("SELECT count(*) FROM pg_locks WHERE pid = :p "
                                         "AND NOT granted"), {"p": outcome["pid"]}))

    thread = threading.Thread(target=write, daemon=True)
    read_names = retention.named_hashes

    def names_then_b_writes(db: OrmSession) -> set[str]:
        named = read_names(db)
        thread.start()
        if postgres:  # B commits, or is held back by the prune: then the prune goes on
            wait_for(lambda: "pid" in outcome and (not thread.is_alive() or b_waits()))
        else:
            thread.join(60)
        return named

    monkeypatch.setattr(retention, "named_hashes", names_then_b_writes)
    try:
        with session_factory(engine)() as db:
            assert retention.prune(db, TODAY - timedelta(days=2)).traces == 3
        thread.join(60)
        assert not thread.is_alive()
        if "error" in outcome:  # SQLite: the write lock was the prune's until it committed
            assert not postgres and "locked" in str(outcome["error"]), outcome["error"]
            with writer.connect() as conn:
                _trace_again(conn, today, context, answer)
        with session_factory(engine)() as db:
            named = _names_held(db)
            assert len(named) == 3 + 2 + 2  # today's holds (contexts, system, answer), B's two
            assert named - set(db.scalars(select(TraceBlob.hash))) == set()
            trace = db.scalars(select(LLMTrace.id).where(LLMTrace.session_id == today)
                               .order_by(LLMTrace.id.desc())).first()
            detail = trace_detail(db, trace)
            assert detail is not None and detail["prompt"] == f"{SYSTEM}\n\n{context}"
            assert detail["answers"] == [{"raw_response": answer, "errors": []}]
    finally:
        writer.dispose()
        engine.dispose()


def test_a_bot_east_of_utc_keeps_a_day_a_bot_west_of_it_can_still_book_into(
        sqlite_url, tmp_path) -> None:
    """A Tokyo bot keeping one day rolls over at 15:00 UTC. A New York bot on the same
    database ended its day 10 hours before (05:00 UTC): its fill sync can still book a fill
    into that day for 14 hours, so the Tokyo bot's prune must not thin it (the day's rollup,
    written again after such a fill, would lose its thinned decisions' LLM cost). It knows
    no other bot's time zone: it counts days as ``python -m bot prune`` does."""
    first_clock = datetime(2023, 11, 14, 14, 30, tzinfo=UTC)  # 23:30 in Tokyo
    start_ms = int(first_clock.timestamp() * 1000) - WARMUP * FIVE_MIN_MS
    path = write_path(tmp_path / "TST_USDT-5m.csv", [100.0] * (WARMUP + 12), start_ms=start_ms)
    rt = make_runtime(sqlite_url, [path], kind="live", run_name="live", RETAIN_DAYS=1,
                      SESSION_TIMEZONE="Asia/Tokyo")
    with rt.db() as db:  # New York's day of 2023-11-13 ended at 05:00 UTC on the 14th
        ended = _session(db, date(2023, 11, 13), run_name="new-york")
        _session(db, date(2023, 11, 14), run_name="new-york")
        _rolled(db, ended, "live", "new-york", first_clock)
        db.commit()
    step(rt, 8)  # past midnight in Tokyo: the bot's rollover, and its prune
    assert rt.session_day == date(2023, 11, 15)
    assert _kept(sqlite_url)[ended] == (3, 2 * TICKS, 3)


def test_a_thinned_days_llm_cost_stays_in_its_figures(db_url, capsys, monkeypatch):
    """An LLM's holds cost money as its trades do. A thinned day's Overview (and the MCP
    performance tool, which reads the same rows) still counts what its decisions cost: the
    day's net PnL does not rise by the cost of the holds the prune removed."""
    import bot.prune

    monkeypatch.setattr(bot.prune, "today", lambda: TODAY)
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        ids = _costed_day_rolled_up(db, OLD)
        old = ids[0]
        info = session_info(db, old)
        assert info is not None
        before = overview_figures(db, info)
        assert before["llm_cost"] == pytest.approx(3 * 0.5)
        assert main(["prune", "--db", db_url, "--days", "3"]) == 0
        assert json.loads(capsys.readouterr().out)["traces"] == 3
        db.expire_all()
        after = overview_figures(db, info)
        assert after["llm_cost"] == pytest.approx(before["llm_cost"])
        assert after["net_pnl"] == pytest.approx(before["net_pnl"])
        assert span_performance(db, ids)[0].metrics["llm_cost"] == pytest.approx(3 * 0.5)
        # thinned all the same: their prompts and answers are gone, and a second pass
        # finds nothing more to do
        assert db.scalar(select(func.count()).select_from(LLMTrace).where(
            LLMTrace.session_id == old, LLMTrace.prompt_hash.is_not(None))) == 0
        assert main(["prune", "--db", db_url, "--days", "3"]) == 0
        assert json.loads(capsys.readouterr().out)["traces"] == 0
    engine.dispose()


def _plan_decisions(db_url: str, tmp_path) -> dict[str, int]:
    """A live bot's day (2023-11-14, old by TODAY) on the real loop: a decision opens a plan,
    the next moves its stop and target (no order), the next closes it; then holds. The
    day is rolled up and scored, as at its rollover. The ids of the three traces."""
    path = flat_then(tmp_path / "TST_USDT-5m.csv", [100.0] * 6)
    plan = {"symbol": "TST/USDT", "reason": "retention test"}
    engine = ScriptedEngine([
        Decision(actions=[Action(action=ActionType.BUY, size=1.0, stop=99.0, target=110.0,
                                 **plan)]),
        Decision(actions=[Action(action=ActionType.UPDATE_PLAN, plan_id=1, stop=97.5,
                                 target=112.0, reason="widen")]),
        Decision(actions=[Action(action=ActionType.CLOSE_PLAN, plan_id=1, reason="done")])])
    rt = make_runtime(db_url, [path], engine, kind="live", run_name="live", MAX_SPREAD_PCT=5,
                      MAX_SLIPPAGE_PCT=5, TRAIL_BREAKEVEN_PCT=0)
    step(rt, 6)
    with rt.db() as db:
        assert db.scalars(select(TradePlan.status)).one() == "closed"
        traces = db.execute(select(LLMTrace.id, LLMTrace.session_id)
                            .order_by(LLMTrace.id)).all()
        assert len(traces) == 6  # the three decisions, then holds
        _rolled(db, traces[0].session_id, "live", "live", datetime.combine(TODAY, time(), UTC))
        db.commit()
    return dict(zip(("opened", "moved", "closed"), (t.id for t in traces), strict=False))


def test_the_decision_that_moved_a_plan_is_kept_with_the_version_it_wrote(
        db_url, tmp_path, capsys, monkeypatch) -> None:
    """UPDATE_PLAN sends no order: only the plan version it wrote can name it. Thinned, the
    plan's history would show its stop moved with no decision to say why."""
    import bot.prune

    monkeypatch.setattr(bot.prune, "today", lambda: TODAY)
    decided = _plan_decisions(db_url, tmp_path)
    assert main(["prune", "--db", db_url, "--days", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["traces"] == 3  # the holds
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        kept = set(db.scalars(select(LLMTrace.id)))
        assert set(decided.values()) <= kept, (decided, kept)
        by_change = {v.change: v.trace_id for v in db.scalars(select(TradePlanVersion))}
    engine.dispose()
    assert by_change["opened"] == decided["opened"]
    assert by_change["updated: widen"] == decided["moved"]
    assert by_change["exit: done"] == decided["closed"]
    assert by_change["exit filled: done"] is None  # the fill's, not a decision's


def test_a_thinned_days_decisions_still_count(db_url, capsys, monkeypatch) -> None:
    """The Overview's figures (and the MCP tools, which read them) counted a day's decisions
    as its trace rows: a prune thinned three holds and the day said it had made none. They
    are counted from the scorecard's rollup of the day (``db.decision_scores``) and the
    traces after it. A call abandoned for a close-all or stop decided nothing and is not
    counted (retention thins it too)."""
    import bot.prune

    monkeypatch.setattr(bot.prune, "today", lambda: TODAY)
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        ids = [_session(db, OLD), _session(db, TODAY)]
        add_trace(db, session_id=ids[0], engine="gemini", status=TraceStatus.ABANDONED,
                  prompt="", created_at=datetime.combine(OLD, time(14), UTC))
        noon = datetime.combine(TODAY, time(12), UTC)  # scored a day before its close
        db.add(OHLCV(session_id=ids[1], symbol="BTC/USDT", timeframe="5m", timestamp=noon,
                     open=100.0, high=100.0, low=100.0, close=100.0, volume=1.0))
        assert roll_up_closed(db, ids, ids[-1]) == 1
        assert settle_scores(db, "live", "live") == 3  # the old day's; today's wait
        db.commit()

        def counted() -> list[int]:
            return [overview_figures(db, info)["decisions"]
                    for info in (session_info(db, k) for k in ids) if info is not None]

        assert counted() == [3, 3]
        assert main(["prune", "--db", db_url, "--days", "3"]) == 0
        assert json.loads(capsys.readouterr().out)["traces"] == 4  # the holds and the call
        db.expire_all()
        assert counted() == [3, 3]
    engine.dispose()
