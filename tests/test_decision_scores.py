"""The scorecard's rollup (``db.decision_scores``): the rolled-up figures equal a reference
model's, computed here from the candles by hand, and a span's scorecard read from the
rollup equals the one computed from the raw traces and candles."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from bot.model.scorecard import scorecard
from db.decision_scores import rolled_tally
from db.engine import make_engine, session_factory
from db.migrate import upgrade
from db.models import OHLCV, DecisionScoreDay, DecisionScoreTip, LLMTrace, Session
from db.scorecard import decision_outcomes, settle_scores, span_scorecard
from db.sessions import run_session_ids

START = datetime(2026, 3, 1, tzinfo=UTC)
FIVE = timedelta(minutes=5)
HORIZONS = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "24h": timedelta(hours=24)}
ACTIONS = ["BUY", "SELL", "HOLD", "CANCEL", "CLOSE_PLAN"]


def _reference_price(closes: list[float], moment: datetime) -> float | None:
    """The close of the last 5-minute candle closed at or before ``moment``: candle i opens
    at START + i·5 min and closes 5 minutes later."""
    closed = math.floor((moment - START) / FIVE)  # candles 0 .. closed - 1 have closed
    return closes[min(closed, len(closes)) - 1] if closed >= 1 else None


def _reference_forward(closes: list[float], moment: datetime, horizon: timedelta
                       ) -> float | None:
    last_close = START + len(closes) * FIVE
    if last_close < moment + horizon:
        return None  # pending
    begin, end = _reference_price(closes, moment), _reference_price(closes, moment + horizon)
    if begin is None or end is None:
        return None
    return (end / begin - 1) * 100


decisions = st.lists(st.tuples(
    st.integers(min_value=0, max_value=3 * 288 * 5),  # minutes after START
    st.sampled_from(ACTIONS),
    st.booleans(),  # names the symbol, or leaves it to the run's only one
    st.one_of(st.none(), st.floats(min_value=0, max_value=1)),
    st.one_of(st.none(), st.floats(min_value=1, max_value=5_000)),
    st.one_of(st.none(), st.sampled_from(ACTIONS)),  # the shadow's call
    st.floats(min_value=0, max_value=0.05),  # cost
), min_size=1, max_size=25, unique_by=lambda call: call[0])


def _store_run(db, name: str, closes: list[float], calls: list[tuple]) -> list[int]:
    """A replay run of one symbol, one session a day, its candles stored by the day they
    open on, and its traces."""
    sessions: dict[date, int] = {}

    def session_of(when: datetime) -> int:
        if when.date() not in sessions:
            row = Session(date=when.date(), kind="replay", run_name=name)
            db.add(row)
            db.flush()
            sessions[when.date()] = row.id
        return sessions[when.date()]

    for index, close in enumerate(closes):
        opened = START + index * FIVE
        db.add(OHLCV(session_id=session_of(opened), symbol="BTC/USDT", timeframe="5m",
                     timestamp=opened, open=close, high=close, low=close, close=close,
                     volume=1.0))
    for minutes, action, named, confidence, quote_value, shadow, cost in calls:
        when = START + timedelta(minutes=minutes)
        call = {"action": action, "confidence": confidence, "quote_value": quote_value,
                **({"symbol": "BTC/USDT"} if named else {})}
        # a Core insert names only the columns given: the migration tests store at 0014
        db.execute(insert(LLMTrace.__table__).values(
            session_id=session_of(when), engine="gemini", prompt="", status="ok",
            decision_json=json.dumps({"actions": [call]}), tokens_in=100, tokens_out=10,
            cost=cost, latency_ms=1.0, created_at=when,
            shadow_decision=None if shadow is None else json.dumps(
                {"actions": [{"action": shadow, "quote_value": 1000.0}]})))
    db.commit()
    return run_session_ids(db, "replay", name)


def _same_card(rolled: dict, raw: dict) -> None:
    """Counts exactly; sums to the last bits the order of adding may move."""
    assert rolled.keys() == raw.keys()
    for key, value in raw.items():
        if isinstance(value, list):
            assert len(rolled[key]) == len(value), key
            for mine, theirs in zip(rolled[key], value, strict=True):
                _same_card(mine, theirs)
        elif isinstance(value, float):
            assert rolled[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
        else:
            assert rolled[key] == value, key


@pytest.fixture(scope="module")
def scores_db(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('scores') / 'scores.db'}"
    upgrade(url)
    return url


RUNS = iter(range(1_000_000))


def _bucket(confidence: float | None) -> str:
    if confidence is None:
        return "not given"
    return "0.9–1.0" if confidence >= 0.9 else "0.7–0.9" if confidence >= 0.7 else \
        "0.5–0.7" if confidence >= 0.5 else "0–0.5"


def _reference_groups(closes: list[float], calls: list[tuple], tip: datetime) -> dict:
    """Per (action, confidence bucket) and horizon, the rolled-up calls' figures as the
    scorecard defines them: count, with a return, hits, with a direction, sum of returns,
    forward PnL on the asked quote value."""
    groups: dict = {}
    for minutes, action, _named, confidence, quote_value, _shadow, _cost in calls:
        when = START + timedelta(minutes=minutes)
        if when >= tip:
            continue
        sign = {"BUY": 1, "SELL": -1}.get(action, 0)
        for horizon, span in HORIZONS.items():
            figures = groups.setdefault((action, _bucket(confidence), horizon), [0, 0, 0, 0,
                                                                                 0.0, 0.0])
            forward = _reference_forward(closes, when, span)
            figures[0] += 1
            if forward is None:
                continue
            figures[1] += 1
            figures[4] += forward
            if sign:
                figures[3] += 1
                figures[2] += sign * forward > 0
                figures[5] += sign * forward / 100 * (quote_value or 0.0)
    return groups


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(closes=st.lists(st.floats(min_value=1, max_value=1_000), min_size=300, max_size=700),
       calls=decisions, cut=st.integers(min_value=0, max_value=3 * 288 * 5))
def test_rolled_up_scores_equal_the_reference_and_the_raw_scorecard(scores_db, closes,
                                                                   calls, cut) -> None:
    with session_factory(make_engine(scores_db))() as db:
        name = f"run-{next(RUNS)}"
        ids = _store_run(db, name, closes, calls)
        settle_scores(db, "replay", name)
        db.commit()
        tip = db.scalar(select(DecisionScoreTip.through).where(DecisionScoreTip.run_name == name))
        # the tip: a day before the last candle's close, so each rolled-up decision has
        # every horizon
        assert tip == START + len(closes) * FIVE - HORIZONS["24h"]
        rolled = rolled_tally(db, ids, None, tip.date())
        before = [c for c in calls if START + timedelta(minutes=c[0]) < tip]
        assert rolled.decisions == len(before)
        assert rolled.cost == pytest.approx(sum(c[6] for c in before))
        assert rolled.pending == dict.fromkeys(HORIZONS, 0)
        assert rolled.shadowed == sum(1 for c in before if c[5] is not None)
        stored = {(action, bucket, horizon): [group.count, group.scored, group.hits,
                                              group.directional, group.forward_sum,
                                              group.forward_pnl]
                  for (action, bucket), per_horizon in rolled.by_call.items()
                  for horizon, group in per_horizon.items()}
        reference = _reference_groups(closes, calls, tip)
        assert stored.keys() == reference.keys()
        for key, figures in reference.items():
            assert stored[key][:4] == figures[:4], key
            assert stored[key][4:] == pytest.approx(figures[4:], rel=1e-9, abs=1e-9), key
        # the scorecard of the whole run, and of a span cut anywhere, from the rollup and
        # the traces it does not hold, is the one computed from the raw rows
        for start, end in ((None, None), (START + timedelta(minutes=cut), None),
                           (None, START + timedelta(minutes=cut)),
                           (START + timedelta(days=1), START + timedelta(days=2))):
            raw = scorecard(decision_outcomes(db, ids, start, end))
            _same_card(span_scorecard(db, ids, start, end).as_dict(), raw.as_dict())


def test_the_migration_rolls_up_a_database_stored_before(migration_db) -> None:
    """Traces and candles stored at 0014 are rolled up by the upgrade, and the scorecard read
    from the rollup is the one computed from them."""
    closes = [100.0 + (i % 37) - (i % 11) for i in range(600)]
    calls = [(m, ACTIONS[m % 5], m % 2 == 0, (m % 10) / 10, 500.0 if m % 3 else None,
              "BUY" if m % 5 == 0 else None, 0.01) for m in range(0, 3 * 288 * 5, 97)]
    engine = make_engine(migration_db)
    with session_factory(engine)() as db:
        ids = _store_run(db, "old-run", closes, calls)
    upgrade(migration_db)
    with session_factory(engine)() as db:
        tip = db.scalar(select(DecisionScoreTip.through))
        assert tip is not None and tip == START + 600 * FIVE - HORIZONS["24h"]
        rolled = db.scalar(select(func.sum(DecisionScoreDay.decisions)))
        assert rolled == sum(1 for c in calls if START + timedelta(minutes=c[0]) < tip) > 10
        raw = scorecard(decision_outcomes(db, ids))
        _same_card(span_scorecard(db, ids).as_dict(), raw.as_dict())
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def migration_db(request: pytest.FixtureRequest, tmp_path):
    from tests.conftest import database_at

    with database_at(request, tmp_path, "0014_compact_storage") as url:
        yield url
