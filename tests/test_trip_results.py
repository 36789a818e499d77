"""The scorecard's realized PnL from trips rolled up per opening decision
(``db.trip_results``): for spans cut anywhere it equals a reference folded here by hand from
the raw fills, and the scorecard of the raw rows (every fill of the run folded)."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import datetime, timedelta

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
from db.performance import span_performance
from db.performance_rollups import roll_up_closed, roll_up_every_run
from db.queries_replays import run_session_ids
from db.scorecard import decision_outcomes, realized_of, settle_scores, span_scorecard
from db.trades import record_trade
from tests.test_performance_rollups import DAY0, record, replay_cut_short, steps_

FIVE = timedelta(minutes=5)
# fills as the performance rollups' test draws them, but a quantity of 0 closes what is held
fills_ = st.tuples(st.just("fill"), st.sampled_from(["BTC/USDT", "ETH/USDT"]),
                   st.sampled_from(["BUY", "SELL"]), st.sampled_from([0.0, 1.0, 2.0, 3.0]),
                   st.sampled_from([90.0, 100.0, 110.0]),
                   st.sampled_from([False, False, False, True]),  # booked late
                   st.integers(60, 9 * 3600))


def closing(events: list[tuple]) -> list[tuple]:
    """The events with each fill of quantity 0 made the one that flattens its symbol (in the
    order drawn; one booked late may land elsewhere), or a buy of 1 when flat: trips close
    often, across days."""
    held: dict[str, float] = {}
    out = []
    for event in events:
        if event[0] == "fill":
            _, symbol, side, quantity, *rest = event
            if quantity == 0:
                side = "SELL" if held.get(symbol, 0.0) > 0 else "BUY"
                quantity = abs(held.get(symbol, 0.0)) or 1.0
            held[symbol] = held.get(symbol, 0.0) + (quantity if side == "BUY" else -quantity)
            event = ("fill", symbol, side, quantity, *rest)
        out.append(event)
    return out


def link(db, ids: list[int], backs: list[int | None]) -> None:
    """Give the run's fills, in booking order, the decision ``back`` decisions before the
    latest traced by the fill's time, or the first (None: none, an order placed outside the
    bot)."""
    traced = list(db.execute(select(LLMTrace.id, LLMTrace.created_at)
                             .where(LLMTrace.session_id.in_(ids)).order_by(LLMTrace.created_at)))
    fills = db.scalars(select(Trade).where(Trade.session_id.in_(ids)).order_by(Trade.id))
    for fill, back in zip(fills, itertools.cycle(backs or [None])):
        before = [trace_id for trace_id, at in traced if at <= fill.timestamp]
        fill.trace_id = before[max(-1 - back, -len(before))] if back is not None and before \
            else None
    db.commit()


def candles(db, ids: list[int], days: int) -> None:
    """Constant 5-minute BTC/USDT candles for the run's first ``days`` days (in its last
    session): the decisions are settled up to a day before their end."""
    db.execute(insert(table_of(OHLCV)), [
        {"session_id": ids[-1], "symbol": "BTC/USDT", "timeframe": "5m",
         "timestamp": DAY0 + k * FIVE, "open": 100.0, "high": 100.0, "low": 100.0,
         "close": 100.0, "volume": 1.0} for k in range(days * 288)])
    db.commit()


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


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.one_of(steps_, fills_, fills_), min_size=12, max_size=60),
       st.lists(st.sampled_from([0, 0, 0, 1, 3, None]), min_size=1, max_size=40), st.booleans(),
       st.integers(1, 6), st.integers(0, 5 * 86_400), st.integers(0, 5 * 86_400))
def test_rolled_up_realized_pnl_equals_the_reference_for_spans_cut_anywhere(
        db_session, events, backs, finished, days, cut, length) -> None:
    """Trips held across days, flips, fills of no decision or of one days before, fills
    booked in the session after their day; every closed session rolled up (all of them when
    finished), the decisions settled up to anywhere: spans of whole days, cut anywhere,
    from and to the run's ends."""
    ids = record(db_session, closing(events))
    link(db_session, ids, backs)
    candles(db_session, ids, days)
    roll_up_closed(db_session, ids, None if finished else ids[-1])
    settle_scores(db_session, "replay", db_session.get_one(Session, ids[0]).run_name)
    db_session.commit()
    start = DAY0 + timedelta(seconds=cut)
    assert_realized_is_the_reference(db_session, ids, [
        (None, None), (start, None), (None, start), (start, start + timedelta(seconds=length)),
        (DAY0 + timedelta(days=1), DAY0 + timedelta(days=2))])


def test_a_trip_opened_by_one_decision_closes_days_later_in_a_flip(db_session) -> None:
    """Decision A buys 3 on day 0; decision B sells 1 on day 1 and 4 on day 2, which closes
    A's trip (+10 on 1, +20 on 2, less fees) and opens B's short of 2, still open on day 3:
    A's realized PnL is in day 2's rollup row, B's trip is open at the end."""
    events = [("step", 100.0, 0.0, 3600), ("fill", "BTC/USDT", "BUY", 3.0, 100.0, False, 60),
              ("step", 100.0, 1.0, 86_400), ("fill", "BTC/USDT", "SELL", 1.0, 110.0, False, 60),
              ("fill", "BTC/USDT", "SELL", 4.0, 110.0, False, 86_400),
              ("step", 100.0, 1.0, 86_400)]
    ids = record(db_session, events)
    link(db_session, ids, [0])
    assert roll_up_closed(db_session, ids, ids[-1]) == 3
    a, b, c = sorted(_decided(db_session, ids))
    fees = 0.3 + 0.1 + 0.4 * 2 / 4  # the recorder's fee: 0.1 a unit
    assert db_session.execute(select(TripResult.session_id, TripResult.open_trace_id,
                                     TripResult.net)).all() == [
        (ids[2], a, pytest.approx(30.0 - fees))]
    found = {o.record.trace_id: (o.realized_pnl, o.open_trips) for o in decision_outcomes(
        db_session, ids, realized=realized_of(db_session, ids).by_decision(db_session, None,
                                                                            None))}
    assert found == {a: (pytest.approx(30.0 - fees), 0), b: (0.0, 1), c: (0.0, 0)}
    assert span_scorecard(db_session, ids).realized_pnl == pytest.approx(30.0 - fees)


def test_a_fill_booked_into_its_rolled_up_day_after_the_next_days_fill(db_session) -> None:
    """Decision A bought 1 on day 0; its stop sold it at 23:59 on day 1, a fill the sync saw
    only after decision C's buy on day 2 was booked: the sale is booked into day 1's session
    (rolled up, so voided), after C's buy. On the venue A's trip closed (+10 less fees) and
    C's opened; the scorecard and Performance say so before day 2 is rolled up and after,
    rather than fold the buy into A's trip until the day ends and then change their minds."""
    events = [("step", 100.0, 0.0, 3600), ("fill", "BTC/USDT", "BUY", 1.0, 100.0, False, 60),
              ("step", 100.0, 1.0, 86_400), ("step", 100.0, 1.0, 86_400)]
    ids = record(db_session, events)
    link(db_session, ids, [0])
    a, _, c = sorted(_decided(db_session, ids))
    assert roll_up_closed(db_session, ids, ids[-1]) == 2
    for session_id, day, side, price, trace_id, trade_id in (
            (ids[2], timedelta(days=2, minutes=1), "BUY", 120.0, c, "day-2-buy"),
            (ids[1], timedelta(days=1, hours=23, minutes=59), "SELL", 110.0, a, "late-stop")):
        record_trade(db_session, DAY0 + timedelta(days=2, minutes=2), session_id=session_id,
                     timestamp=DAY0 + day, symbol="BTC/USDT", action=side, quantity=1.0,
                     price=price, fee=0.1, realized_pnl=0.0, venue="paper", trade_id=trade_id,
                     trace_id=trace_id)
    db_session.commit()
    net = 110.0 - 100.0 - 0.1 - 0.1  # the recorder's fee: 0.1 a unit

    def figures() -> tuple:
        by_decision = realized_of(db_session, ids).by_decision(db_session, None, None)
        performance, still_open = span_performance(db_session, ids)
        return (span_scorecard(db_session, ids).realized_pnl, by_decision.get(a),
                by_decision.get(c), performance.metrics["round_trips"],
                performance.metrics["net_pnl"], [t.open_trace_id for t in still_open])

    assert figures() == (pytest.approx(net), (pytest.approx(net), 0), (0.0, 1), 1,
                         pytest.approx(net), [c])
    day3 = Session(date=(DAY0 + timedelta(days=3)).date(), kind="replay",
                   run_name=db_session.get_one(Session, ids[0]).run_name, mode="PAPER",
                   venue="paper", starting_balance=100.0)
    db_session.add(day3)
    db_session.flush()
    assert roll_up_closed(db_session, [*ids, day3.id], day3.id) == 2  # days 1 and 2 again
    assert figures() == (pytest.approx(net), (pytest.approx(net), 0), (0.0, 1), 1,
                         pytest.approx(net), [c])


def test_the_loop_rolls_trips_up_as_days_end_and_the_upgrade_backfills_them(tmp_path) -> None:
    """A real replay on the paper venue cut short on its third day: the days it rolled over
    hold their trips' results, the reference's, and the realized PnL of spans cut anywhere
    is the reference's; the upgrade's backfill writes the same rows; finishing the run
    rolls up its last day too."""
    cut, url, summary = replay_cut_short(tmp_path)
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
