"""Round trips: fills grouped from flat to flat, checked against a reference model written
here (a cost basis per symbol) and on a real replay's booked fills."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.__main__ import main
from bot.engine.schema import Action, ActionType, Decision
from bot.model.round_trips import TripFill, exit_reason, group_round_trips
from bot.model.vocabulary import ExitReason
from db.engine import make_engine, session_factory
from db.models import LLMTrace, Trade
from db.queries_replays import run_session_ids
from db.round_trips import filtered_trips, round_trips, trip_fills
from tests.analytics_replay import analytics_replay  # noqa: F401  (a fixture)
from tests.conftest import candle_file
from tests.crafted import flat_then
from tests.loop_harness import ScriptedEngine, make_runtime, step
from tests.test_commands import BTC, buy, command
from tests.test_plans import SYMBOL as PLAN_SYMBOL
from tests.test_plans import entry as plan_entry
from tests.test_plans import runtime as plans_runtime

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Reference:
    """Average cost kept as a cost basis (quantity and what it cost), one trip number per
    symbol that moves on whenever the symbol is flat again."""

    def __init__(self) -> None:
        self.quantity: dict[str, float] = {}
        self.cost: dict[str, float] = {}
        self.trip: dict[str, int] = {}
        self.realized = 0.0
        self.fees = 0.0
        self.member: dict[int, tuple[str, int]] = {}

    def fill(self, fill: TripFill) -> None:
        symbol = fill.symbol
        held, cost = self.quantity.get(symbol, 0.0), self.cost.get(symbol, 0.0)
        self.member[fill.id] = (symbol, self.trip.get(symbol, 0))
        self.fees += fill.fee
        if fill.side == "BUY":
            held, cost = held + fill.quantity, cost + fill.quantity * fill.price
        else:
            basis = cost / held
            self.realized += (fill.price - basis) * fill.quantity
            held, cost = held - fill.quantity, cost - basis * fill.quantity
        if held <= 1e-9:
            held, cost = 0.0, 0.0
            self.trip[symbol] = self.trip.get(symbol, 0) + 1
        self.quantity[symbol], self.cost[symbol] = held, cost


@st.composite
def fill_sequences(draw) -> list[TripFill]:
    """Long-only fills as spot trades them: buys (scale-ins), partial sells and whole
    sells, on two symbols, with fees."""
    held: dict[str, float] = {}
    fills = []
    for i in range(draw(st.integers(1, 40))):
        symbol = draw(st.sampled_from(["BTC/USDT", "ETH/USDT"]))
        price = draw(st.floats(1, 1000, allow_nan=False))
        fee = draw(st.floats(0, 2, allow_nan=False))
        have = held.get(symbol, 0.0)
        kind = draw(st.sampled_from(["buy", "part", "all"])) if have > 0 else "buy"
        if kind == "buy":
            side, quantity = "BUY", draw(st.floats(0.001, 5, allow_nan=False))
            held[symbol] = have + quantity
        else:
            side = "SELL"
            quantity = have if kind == "all" else have * draw(st.floats(0.05, 0.95))
            held[symbol] = 0.0 if kind == "all" else have - quantity
        fills.append(TripFill(id=i + 1, symbol=symbol, side=side, quantity=quantity,
                              price=price, fee=fee, timestamp=T0 + timedelta(minutes=i)))
    return fills


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(fill_sequences())
def test_round_trips_add_up_to_realized_pnl_and_hold_every_fill_once(fills) -> None:
    reference = Reference()
    for fill in fills:
        reference.fill(fill)
    trips = group_round_trips(fills)
    net = sum(t.net_pnl for t in trips)
    assert net == pytest.approx(reference.realized - reference.fees, rel=1e-9, abs=1e-6)
    owners = [fid for t in trips for fid in t.fill_ids]
    assert sorted(owners) == [f.id for f in fills]  # each fill in exactly one trip
    # and in the same trip as the reference's: fills share a trip exactly when they do there
    by_trip = {tuple(t.fill_ids) for t in trips}
    reference_trips: dict[tuple[str, int], list[int]] = {}
    for fid, key in reference.member.items():
        reference_trips.setdefault(key, []).append(fid)
    assert by_trip == {tuple(ids) for ids in reference_trips.values()}
    for trip in trips:
        flat = reference.quantity.get(trip.symbol, 0.0) == 0.0
        assert (trip.closed_at is None) == (trip is _last_of(trips, trip.symbol) and not flat)


def _last_of(trips, symbol):
    return [t for t in trips if t.symbol == symbol][-1]


def test_a_round_trip_by_hand() -> None:
    """Buy 1 at 100 and 1 at 110 (fees 1 each), sell 1.5 at 120 (fee 1), then 0.5 at 90
    (fee 0.5): average entry 105, average exit 112.5, gross 15, fees 3.5, net 11.5."""
    fills = [TripFill(1, "X/USDT", "BUY", 1, 100, 1, T0, "entry", trace_id=7, engine="rules"),
             TripFill(2, "X/USDT", "BUY", 1, 110, 1, T0 + timedelta(hours=1), "entry"),
             TripFill(3, "X/USDT", "SELL", 1.5, 120, 1, T0 + timedelta(hours=2), "exit",
                      "target hit at 120", trace_id=8),
             TripFill(4, "X/USDT", "SELL", 0.5, 90, 0.5, T0 + timedelta(hours=3), "exit",
                      "stop hit at 90", trace_id=9)]
    (trip,) = group_round_trips(fills)
    assert (trip.size, trip.avg_entry, trip.avg_exit) == (2, 105, 112.5)
    assert (trip.gross_pnl, trip.fees, trip.net_pnl) == (15, 3.5, 11.5)
    assert trip.return_pct == pytest.approx(11.5 / 210 * 100)
    assert trip.duration == timedelta(hours=3)
    assert (trip.exit_reason, trip.open_trace_id, trip.close_trace_id) == (ExitReason.STOP, 7, 9)
    assert trip.engine == "rules"


def test_wins_and_losses_are_closed_trips_only() -> None:
    """A trip still open (its entry fee makes its net PnL negative) is neither a win nor a
    loss, and neither is one that closed at exactly nothing."""
    def trip(first: int, sell: float | None) -> list[TripFill]:
        fills = [TripFill(first, f"S{first}/USDT", "BUY", 1, 100, 0 if sell == 100 else 1, T0)]
        if sell is not None:
            fills.append(TripFill(first + 1, f"S{first}/USDT", "SELL", 1, sell, 0,
                                  T0 + timedelta(hours=1), "exit"))
        return fills
    trips = group_round_trips([*trip(1, 110), *trip(3, 90), *trip(5, None), *trip(7, 100)])
    assert [t.symbol for t in filtered_trips(trips, outcome="win")] == ["S1/USDT"]
    assert [t.symbol for t in filtered_trips(trips, outcome="loss")] == ["S3/USDT"]
    assert len(filtered_trips(trips)) == 4


def test_a_fill_that_flips_the_position_closes_one_trip_and_opens_the_next() -> None:
    fills = [TripFill(1, "X/USDT", "BUY", 1, 100, 1, T0),
             TripFill(2, "X/USDT", "SELL", 3, 110, 3, T0 + timedelta(hours=1)),
             TripFill(3, "X/USDT", "BUY", 2, 100, 0, T0 + timedelta(hours=2))]
    first, second = group_round_trips(fills)
    assert (first.gross_pnl, first.fees, first.closed_at) == (10, 2, fills[1].timestamp)
    assert (second.direction, second.size, second.avg_entry) == ("short", 2, 110)
    assert (second.gross_pnl, second.fees, second.fill_ids) == (20, 2, [2, 3])


@pytest.mark.parametrize(("purpose", "reason", "trailed", "expected"), [
    ("exit", "stop hit at 95", False, ExitReason.STOP),
    ("exit", "stop hit at 100", True, ExitReason.TRAILING),
    ("stop", "stop hit at 95", False, ExitReason.STOP),
    ("exit", "target hit at 120", False, ExitReason.TARGET),
    ("exit", "plan older than 240 min", False, ExitReason.MAX_AGE),
    ("exit", "trend reversed on 1h: ema 1<2", False, ExitReason.ENGINE),
    ("exit", "close-all by operator", False, ExitReason.CLOSE_ALL),
    ("close", "close-all by operator", False, ExitReason.CLOSE_ALL),
    ("close", "close BTC/USDT by operator", False, ExitReason.MANUAL),
    ("exit", "close BTC/USDT by operator", False, ExitReason.MANUAL),
    ("adopted", "adopted at resync", False, ExitReason.MANUAL),
])
def test_exit_reasons(purpose, reason, trailed, expected) -> None:
    assert exit_reason(purpose, reason, trailed) == expected


@pytest.mark.slow
def test_round_trips_of_a_real_replay_add_up_to_its_booked_fills(
        analytics_replay) -> None:  # noqa: F811
    url, summary = analytics_replay.url, analytics_replay.summary
    assert summary["trades"] > 4
    with session_factory(make_engine(url))() as db:
        ids = run_session_ids(db, summary["run_name"])
        trips = round_trips(db, ids)
        fills = db.execute(select(Trade.id, Trade.realized_pnl, Trade.fee)
                           .where(Trade.session_id.in_(ids))).all()
        traces = set(db.scalars(select(LLMTrace.id)))
        assert len(trip_fills(db, ids)) == len(fills)
    assert sorted(f for t in trips for f in t.fill_ids) == sorted(f.id for f in fills)
    booked = sum(f.realized_pnl for f in fills) - sum(f.fee for f in fills)
    assert sum(t.net_pnl for t in trips) == pytest.approx(booked, abs=1e-6)
    assert sum(t.net_pnl for t in trips) == pytest.approx(summary["realized_pnl"] - summary["fees"])
    closed = [t for t in trips if t.closed_at is not None]
    assert closed and all(t.exit_reason is not None for t in closed)
    assert {t.exit_reason for t in closed} - {ExitReason.ENGINE}  # plans' exits are named
    assert all(t.open_trace_id in traces and t.close_trace_id in traces for t in closed)
    assert all(t.engine == "rules" for t in trips)
    # half the span by closing time: the trips closed before and after add up to the whole
    middle = closed[len(closed) // 2].closed_at
    with session_factory(make_engine(url))() as db:
        before, after = round_trips(db, ids, end=middle), round_trips(db, ids, start=middle)
    closed_before = [t for t in before if t.closed_at]
    closed_after = [t for t in after if t.closed_at]
    assert closed_before and closed_after
    assert len(closed_before) + len(closed_after) == len(closed)


@pytest.mark.slow
def test_round_trips_of_the_real_loop_name_the_operators_and_engines_exits(db_url, capsys
                                                                           ) -> None:
    """On both stores: two buys (two plans), a partial sell and a close-all (an exit per
    plan) make one trip of five fills; a buy closed
    by command, a manual one; a buy the engine sells, an engine one. The report lists them."""
    sell = Decision(actions=[Action(action=ActionType.SELL, symbol=BTC, reason="take some",
                                    size=0.03)])
    sell_all = Decision(actions=[Action(action=ActionType.SELL, symbol=BTC, reason="out")])
    rt = make_runtime(db_url, [candle_file("BTC_USDT-5m.csv")],
                      ScriptedEngine([buy(), buy(), sell]), PLAN_MAX_PER_SYMBOL=2,
                      run_name="scripted")
    step(rt, 3)
    assert command(rt, "close-all").status == "done"
    assert command(rt, "resume").status == "done"
    rt.engine.decisions.append(buy())
    step(rt)
    assert command(rt, "close", BTC).status == "done"
    rt.engine.decisions += [buy(), sell_all]
    step(rt, 3)  # the sell's fill is booked at the step after it
    with rt.db() as db:
        ids = run_session_ids(db, "scripted")
        trips = round_trips(db, ids)
        booked = db.execute(select(Trade.realized_pnl, Trade.fee)
                            .where(Trade.session_id.in_(ids))).all()
    assert [(t.exit_reason, len(t.fill_ids)) for t in trips] == [
        (ExitReason.CLOSE_ALL, 5), (ExitReason.MANUAL, 2), (ExitReason.ENGINE, 2)]
    assert trips[0].size == pytest.approx(0.1) and trips[0].exit_size == pytest.approx(0.1)
    assert sum(t.net_pnl for t in trips) == pytest.approx(sum(p - f for p, f in booked))
    assert main(["report", "--db", db_url, "--run", "scripted", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [t["exit_reason"] for t in report["round_trips"]] == ["close-all", "manual", "engine"]
    assert {t["engine"] for t in report["round_trips"]} == {"scripted"}
    assert report["metrics"]["round_trips"] == 3


@pytest.mark.parametrize(("after", "plan", "settings", "expected"), [
    ([100, 100, 100, 98.5, 98.5, 98.5], {}, {}, ExitReason.STOP),
    ([100, 100, 100, 106, 106, 106], {"target": 105.0}, {}, ExitReason.TARGET),
    ([100, 101.5, 101.5, 99.9, 99.9, 99.9], {"stop": 97.0}, {"TRAIL_BREAKEVEN_PCT": 1.0},
     ExitReason.TRAILING),
    ([100] * 6, {}, {"PLAN_MAX_AGE_MINUTES": 10}, ExitReason.MAX_AGE),
], ids=["stop", "target", "trailing", "max age"])
def test_each_exit_of_a_plan_names_its_round_trip(sqlite_url, tmp_path, after, plan, settings,
                                                 expected) -> None:
    """Crafted candles (as tests/test_plans.py's) take one plan to each of its exits: the
    plan step's wording of them is recognised."""
    rt = plans_runtime(sqlite_url, flat_then(tmp_path / "TST_USDT-5m.csv", after),
                       [plan_entry(**plan)], **settings)
    step(rt, len(after))
    with rt.db() as db:
        trips = round_trips(db, run_session_ids(db, "test"))
    assert [(t.symbol, t.exit_reason) for t in trips] == [(PLAN_SYMBOL, expected)]
