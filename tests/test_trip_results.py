"""The scorecard's realized PnL from trips rolled up per opening decision
(``db.trip_results``): for spans cut anywhere it equals a reference folded here by hand from
the raw fills, and the scorecard of the raw rows (every fill of the run folded)."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from bot.model.scorecard import scorecard
from bot.replay import ReplayArgs, run_replay
from db.core import table_of
from db.engine import make_engine, session_factory
from db.migrate import alembic_config, upgrade
from db.models import OHLCV, LLMTrace, Session, Trade, TripResult
from db.performance_rollups import roll_up_closed, roll_up_every_run
from db.queries_replays import run_session_ids
from db.scorecard import decision_outcomes, realized_of, settle_scores, span_scorecard
from tests.conftest import candle_file

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
FIVE = timedelta(minutes=5)
RUNS = itertools.count()

# a decision (trace), then fills that may carry one of the decisions made so far
traces_ = st.tuples(st.just("trace"), st.integers(60, 6 * 3600))
fills_ = st.tuples(st.just("fill"), st.sampled_from(["BTC/USDT", "ETH/USDT"]),
                   st.sampled_from(["BUY", "SELL"]), st.sampled_from([1.0, 2.0, 3.0]),
                   st.sampled_from([90.0, 100.0, 110.0]),
                   st.one_of(st.none(), st.integers(0, 5)),  # how many decisions back
                   st.booleans(),  # booked late: in the next day's session
                   st.integers(60, 6 * 3600))


def record(db, events: list[tuple]) -> tuple[list[int], int]:
    """A replay run of these events, one session per UTC day from DAY0 and one more holding
    the candles of the day after the last event (so the decisions of the last event day are
    settled), constant 5-minute candles of BTC/USDT throughout; returns the run's sessions,
    oldest first, and the day after the last."""
    run, now, sessions, number = f"trips-{next(RUNS)}", DAY0, {}, itertools.count()
    traces: list[int] = []
    late: list[tuple[int, Trade]] = []

    def session(day: int) -> int:
        if day not in sessions:
            row = Session(date=(DAY0 + timedelta(days=day)).date(), kind="replay",
                          run_name=run, mode="PAPER", venue="paper", starting_balance=100.0,
                          created_at=DAY0 + timedelta(days=day))
            db.add(row)
            db.flush()
            sessions[day] = row.id
        return sessions[day]

    def book_late(before_day: int) -> None:
        while late and late[0][0] < before_day:
            day, fill = late.pop(0)
            fill.session_id = session(day + 1)
            db.add(fill)
            db.flush()

    for event in events:
        now += timedelta(seconds=event[-1])
        day = (now - DAY0).days
        book_late(day)
        if event[0] == "trace":
            trace = LLMTrace(session_id=session(day), engine="rules", prompt="", status="ok",
                             decision_json=json.dumps({"actions": [{"action": "BUY"}]}),
                             tokens_in=0, tokens_out=0, cost=0.01, latency_ms=1.0,
                             created_at=now)
            db.add(trace)
            db.flush()
            traces.append(trace.id)
            continue
        _, symbol, side, quantity, price, back, booked_late, _ = event
        fill = Trade(session_id=session(day), timestamp=now, symbol=symbol, action=side,
                     quantity=quantity, price=price, fee=quantity * price * 0.001,
                     venue="paper", trade_id=f"{run}-{next(number)}",
                     trace_id=traces[-1 - back] if back is not None and back < len(traces)
                     else None)
        if booked_late:
            late.append((day, fill))
        else:
            db.add(fill)
            db.flush()
    last = (now - DAY0).days + 1
    book_late(last)
    candles = [{"session_id": session(int((k * FIVE).total_seconds() // 86_400)),
                "symbol": "BTC/USDT", "timeframe": "5m", "timestamp": DAY0 + k * FIVE,
                "open": 100.0, "high": 100.0, "low": 100.0, "close": 100.0, "volume": 1.0}
               for k in range((last + 1) * 288)]
    db.execute(insert(table_of(OHLCV)), candles)
    db.commit()
    return [sessions[d] for d in sorted(sessions)], last


def reference(db, ids: list[int]) -> tuple[dict[tuple[int, int], float], Counter[int]]:
    """By hand from the raw fills, in booking order: per (session of the closing fill,
    decision of the opening fill), the net PnL of the round trips closed; per decision, the
    trips it opened still open. A position's average cost moves on each fill that adds to
    it; a fill against it realizes (price - average) on the part that closes, its fee shared
    in proportion, and the rest of it opens the next trip at its price."""
    closed: dict[tuple[int, int], float] = defaultdict(float)
    held: dict[str, list] = {}  # symbol: [signed quantity, average, opening decision, net]
    for fill in db.scalars(select(Trade).where(Trade.session_id.in_(ids)).order_by(Trade.id)):
        sign = 1.0 if fill.action == "BUY" else -1.0
        position = held.setdefault(fill.symbol, [0.0, 0.0, fill.trace_id, 0.0])
        quantity, average, opened_by, net = position
        if quantity == 0 or (quantity > 0) == (sign > 0):
            size = abs(quantity) + fill.quantity
            held[fill.symbol] = [quantity + sign * fill.quantity,
                                 (abs(quantity) * average + fill.quantity * fill.price) / size,
                                 opened_by, net - fill.fee]
            continue
        part = min(fill.quantity, abs(quantity))
        net += (fill.price - average) * part * (1 if quantity > 0 else -1)
        net -= fill.fee * part / fill.quantity
        quantity += sign * part
        if quantity != 0:
            held[fill.symbol] = [quantity, average, opened_by, net]
            continue
        if opened_by is not None:
            closed[(fill.session_id, opened_by)] += net
        rest = fill.quantity - part
        if rest:
            held[fill.symbol] = [sign * rest, fill.price, fill.trace_id,
                                 -fill.fee * rest / fill.quantity]
        else:
            del held[fill.symbol]
    return closed, Counter(p[2] for p in held.values() if p[2] is not None)


def _decided(db, ids: list[int]) -> dict[int, datetime]:
    return dict(db.execute(select(LLMTrace.id, LLMTrace.created_at)
                           .where(LLMTrace.session_id.in_(ids))).all())


def assert_realized_is_the_reference(db, ids: list[int], spans) -> None:
    """For each span: the scorecard's realized PnL is the reference's for the span's
    decisions and the raw rows' scorecard's; each decision's, with its trips still open,
    is the reference's."""
    closed, still_open = reference(db, ids)
    decided = _decided(db, ids)
    realized = realized_of(db, ids)
    # what the rolled-up sessions hold is the reference's trips closed in them
    stored = {(r.session_id, r.open_trace_id): r.net for r in db.scalars(
        select(TripResult).where(TripResult.session_id.in_(ids)))}
    assert set(stored) == {key for key in closed if key[0] in realized.rolled}
    for key, net in stored.items():
        assert net == pytest.approx(closed[key], rel=1e-9, abs=1e-9), key
    for start, end in spans:
        inside = {trace_id for trace_id, at in decided.items()
                  if (start is None or at >= start) and (end is None or at < end)}
        expected = sum(net for (_, trace_id), net in closed.items() if trace_id in inside)
        card = span_scorecard(db, ids, start, end)
        assert card.realized_pnl == pytest.approx(expected, rel=1e-9, abs=1e-9), (start, end)
        raw = scorecard(decision_outcomes(db, ids, start, end))
        assert card.realized_pnl == pytest.approx(raw.realized_pnl, rel=1e-9, abs=1e-9)
        per_decision = defaultdict(float)
        for (_, trace_id), net in closed.items():
            per_decision[trace_id] += net
        for outcome in decision_outcomes(db, ids, start, end,
                                         realized=realized.by_decision(db, start, end)):
            trace_id = outcome.record.trace_id
            assert outcome.realized_pnl == pytest.approx(per_decision.get(trace_id, 0.0),
                                                         rel=1e-9, abs=1e-9), trace_id
            assert outcome.open_trips == still_open.get(trace_id, 0), trace_id


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.one_of(traces_, fills_), min_size=1, max_size=40), st.booleans(),
       st.integers(0, 4 * 86_400), st.integers(0, 4 * 86_400))
def test_rolled_up_realized_pnl_equals_the_reference_for_spans_cut_anywhere(
        db_session, events, finished, cut, length) -> None:
    """Trips held across days, flips, fills of no decision, fills booked in the session after
    their day; every closed session rolled up (all of them when finished), the decisions
    settled up to a day before the last candle: spans of whole days, cut anywhere, from and
    to the run's ends."""
    ids, _ = record(db_session, events)
    roll_up_closed(db_session, ids, None if finished else ids[-1])
    settle_scores(db_session, "replay", db_session.get_one(Session, ids[0]).run_name)
    db_session.commit()
    start = DAY0 + timedelta(seconds=cut)
    assert_realized_is_the_reference(db_session, ids, [
        (None, None), (start, None), (None, start), (start, start + timedelta(seconds=length)),
        (DAY0 + timedelta(days=1), DAY0 + timedelta(days=2))])


def test_a_trip_opened_by_one_decision_closes_days_later_in_a_flip(db_session) -> None:
    """Decision A buys 3 on day 0; decision B sells 1 on day 1 and 4 on day 2, which closes
    A's trip (+10 on 1, +20 on 2, less fees) and opens B's short of 2, still open: A's
    realized PnL is in day 2's rollup row, B's trip is open at the end."""
    events = [("trace", 3600), ("fill", "BTC/USDT", "BUY", 3.0, 100.0, 0, False, 60),
              ("trace", 86_400), ("fill", "BTC/USDT", "SELL", 1.0, 110.0, 0, False, 60),
              ("fill", "BTC/USDT", "SELL", 4.0, 110.0, 0, False, 86_400)]
    ids, _ = record(db_session, events)
    assert roll_up_closed(db_session, ids, ids[-1]) == 3
    a, b = sorted(_decided(db_session, ids))
    fees = 0.3 + 0.11 + 0.44 * 2 / 4
    assert db_session.execute(select(TripResult.session_id, TripResult.open_trace_id,
                                     TripResult.net)).all() == [
        (ids[2], a, pytest.approx(30.0 - fees))]
    found = {o.record.trace_id: (o.realized_pnl, o.open_trips) for o in decision_outcomes(
        db_session, ids, realized=realized_of(db_session, ids).by_decision(db_session, None,
                                                                            None))}
    assert found == {a: (pytest.approx(30.0 - fees), 0), b: (0.0, 1)}
    assert span_scorecard(db_session, ids).realized_pnl == pytest.approx(30.0 - fees)


def test_the_loop_rolls_trips_up_as_days_end_and_the_upgrade_backfills_them(tmp_path) -> None:
    """A real replay on the paper venue cut short on its third day: the days it rolled over
    hold their trips' results, the reference's, and the realized PnL of spans cut anywhere
    is the reference's; the upgrade's backfill writes the same rows; finishing the run
    rolls up its last day too."""
    cut = tmp_path / "BTC_USDT-5m.csv"
    lines = candle_file("BTC_USDT-5m.csv").read_text().splitlines(keepends=True)
    cut.write_text("".join(lines[:3 * 288 + 1]))
    url = f"sqlite:///{tmp_path / 'replays.db'}"
    summary = run_replay(ReplayArgs([cut], url), progress=False, max_steps=2 * 288)
    engine = make_engine(url)
    with session_factory(engine)() as db:
        ids = run_session_ids(db, summary["run_name"])
        first = db.scalar(select(LLMTrace.created_at).order_by(LLMTrace.created_at))
        spans = [(None, None), *((first + timedelta(hours=h), None) for h in (7, 30)),
                 (first + timedelta(hours=5), first + timedelta(hours=29))]
        written = set(db.execute(select(TripResult.session_id, TripResult.open_trace_id,
                                        TripResult.net)).all())
        assert {row[0] for row in written} and realized_of(db, ids).rolled == ids[:2]
        assert db.scalar(select(Trade.id).where(Trade.trace_id.is_(None))) is None
        assert_realized_is_the_reference(db, ids, spans)
    command.downgrade(alembic_config(url), "0018_fill_totals")
    upgrade(url)
    with session_factory(engine)() as db:
        assert set(db.execute(select(TripResult.session_id, TripResult.open_trace_id,
                                     TripResult.net)).all()) == written
        assert roll_up_every_run(db) == 0
    run_replay(ReplayArgs([cut], url), progress=False)
    with session_factory(engine)() as db:
        assert realized_of(db, ids).rolled == ids
        assert_realized_is_the_reference(db, ids, spans)
    engine.dispose()
