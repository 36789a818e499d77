"""The scorecard's forward returns, checked against returns computed by hand from crafted
candle files, never against the scorecard's own arithmetic."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from bot.__main__ import main
from bot.model.scorecard import (
    DecisionRecord,
    outcomes,
    price_series,
    scorecard,
)
from bot.replay import ReplayArgs, run_replay
from db.engine import make_engine, session_factory
from db.models import OHLCV, LLMTrace, Session
from db.performance import scope_sessions
from db.scorecard import decision_outcomes, span_scorecard
from tests.crafted import DEFAULT_START_MS, FIVE_MIN_MS, WARMUP, flat_then, write_path

START = datetime.fromtimestamp(DEFAULT_START_MS / 1000, UTC)
FIVE = timedelta(milliseconds=FIVE_MIN_MS)


def _series(path: Path):
    with path.open() as handle:
        rows = [(datetime.fromtimestamp(int(r["timestamp"]) / 1000, UTC), float(r["close"]))
                for r in csv.DictReader(handle)]
    return {"BTC/USDT": price_series(rows, FIVE)}


def _decision(action: str, confidence: float | None = None, quote_value: float | None = None,
              symbol: str = "BTC/USDT") -> str:
    return json.dumps({"actions": [{"action": action, "symbol": symbol,
                                    "confidence": confidence, "quote_value": quote_value}]})


def test_forward_returns_hits_and_pending_match_the_hand_computed(tmp_path) -> None:
    # 5m candles: 100 for 12 candles, then 110 for 12, then 99 for 12, then the file ends.
    # The candle of row i closes at START + (i + 1) * 5 min.
    path = write_path(tmp_path / "c.csv", [100.0] * 12 + [110.0] * 12 + [99.0] * 12)
    at = [START + (i + 1) * FIVE for i in range(36)]
    records = [
        # at the close of row 0 (100): an hour later is row 12's close, 110: +10 %
        DecisionRecord(1, at[0], _decision("BUY", 0.8, quote_value=1000), cost=0.5,
                       tokens_in=100, tokens_out=20,
                       shadow_json=_decision("HOLD")),
        # at row 12 (110): an hour later row 24, 99: -10 %; a SELL hits
        DecisionRecord(2, at[12], _decision("SELL", 0.95, quote_value=500), cost=0.25,
                       tokens_in=50, tokens_out=10,
                       shadow_json=_decision("BUY", quote_value=1000)),
        # at row 13 (110): an hour later row 25, 99: -10 %; a BUY misses
        DecisionRecord(3, at[13], _decision("BUY", 0.75), cost=0.25),
        # at row 30: an hour later no candle has closed yet: pending, never 0
        DecisionRecord(4, at[30], _decision("HOLD"), cost=0.0),
        # a symbol with no candles: not priced, so not pending either
        DecisionRecord(5, at[30], _decision("HOLD", symbol="ETH/USDT"), cost=0.0),
    ]
    found = outcomes(records, _series(path), {1: (12.5, 0)})
    forward = [o.scored.forward["1h"] if o.scored else "none" for o in found]
    assert forward[0] == pytest.approx(10.0)
    assert forward[1] == pytest.approx(-10.0)
    assert forward[2] == pytest.approx(-10.0)
    assert forward[3] is None and forward[4] is None
    assert [o.scored.hit("1h") if o.scored else "none" for o in found] == [True, True, False,
                                                                            None, None]
    assert found[0].net_of_cost == pytest.approx(12.5 - 0.5)
    # 4 h after row 0 is row 48: past the file's end, so pending
    assert found[0].scored is not None and found[0].scored.forward["4h"] is None

    card = scorecard(found)
    rows = {(r["action"], r["confidence"]): r for r in card.by_call}
    assert rows[("BUY", "0.7–0.9")]["count"] == 2
    assert rows[("BUY", "0.7–0.9")]["hit_rate_1h_pct"] == pytest.approx(50.0)
    assert rows[("BUY", "0.7–0.9")]["avg_forward_1h_pct"] == pytest.approx(0.0)
    assert rows[("SELL", "0.9–1.0")]["hit_rate_1h_pct"] == pytest.approx(100.0)
    assert rows[("HOLD", "not given")]["hit_rate_1h_pct"] is None
    assert rows[("HOLD", "not given")]["avg_forward_1h_pct"] is None  # pending only
    assert rows[("HOLD", "not given")]["count"] == 2
    assert card.pending == {"1h": 1, "4h": 4, "24h": 4}  # decision 5 waits for nothing
    assert card.cost == pytest.approx(1.0)
    assert card.cost_per_decision == pytest.approx(1.0 / 5)
    # the file starts at 22:10 UTC: decision 4 (row 30, 00:45) falls on the next day
    assert card.days == 2 and card.cost_per_day == pytest.approx(0.5)
    assert card.tokens_per_decision == pytest.approx((120 + 60) / 5)
    assert card.realized_net_of_cost == pytest.approx(12.5 - 1.0)

    # LLM against shadow on decisions 1 and 2 over 1 h: the LLM's BUY of 1000 earns +100,
    # its SELL of 500 earns +50; the shadow HOLDs, then BUYs 1000 into -10 %: -100.
    versus = {r["horizon"]: r for r in card.versus_shadow}["1h"]
    assert versus["decisions"] == 2
    assert versus["llm_forward_pnl"] == pytest.approx(150.0)
    assert versus["shadow_forward_pnl"] == pytest.approx(-100.0)
    assert versus["llm_hit_rate_pct"] == pytest.approx(100.0)
    assert versus["shadow_hit_rate_pct"] == pytest.approx(0.0)
    assert versus["llm_cost"] == pytest.approx(0.75)
    assert versus["llm_edge_net_of_cost"] == pytest.approx(150.0 - 0.75 + 100.0)


@pytest.mark.slow
def test_a_replays_decisions_are_scored_from_its_stored_candles(db_url, tmp_path,
                                                                capsys) -> None:
    # after the warm-up at 100, closes 101, 102, ... 159: the first decision sees 100, the
    # k-th the close 100 + k; an hour later (12 candles) the close is 112 + k.
    path = flat_then(tmp_path / "BTC_USDT-5m.csv", [100.0 + i for i in range(1, 60)])
    url = db_url
    run_replay(ReplayArgs([path], url), progress=False)
    with session_factory(make_engine(url))() as db:
        ids = scope_sessions(db, run=_only_run(db))
        found = decision_outcomes(db, ids)
        card = span_scorecard(db, ids)
    assert len(found) == 60
    first, second = found[0].scored, found[1].scored
    assert first is not None and second is not None
    assert first.reference_price == 100.0
    assert first.forward["1h"] == pytest.approx(12.0)  # 112 / 100
    assert first.forward["4h"] == pytest.approx(48.0)  # 148 / 100
    assert first.forward["24h"] is None  # the file ends before
    assert second.forward["1h"] == pytest.approx((113 / 101 - 1) * 100)
    # the last decision sees 159 (row WARMUP + 58, the file's last): the k-th decision's
    # hour ends at row 211 + k, so 1 h is scored for k <= 47 (48) and 4 h for k <= 11 (12)
    assert found[-1].scored is not None and found[-1].scored.reference_price == 159.0
    assert card.pending == {"1h": 12, "4h": 48, "24h": 60}
    assert WARMUP == 200

    # python -m bot report shows the same scorecard, as JSON and in words
    with session_factory(make_engine(url))() as db:
        run = _only_run(db)
    assert main(["report", "--db", url, "--run", run, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["scorecard"]
    assert shown["decisions"] == 60 and shown["pending"] == card.pending
    assert main(["report", "--db", url, "--run", run]) == 0
    text = capsys.readouterr().out
    assert "Scorecard: 60 decisions" in text and "pending (no candle yet): 1h 12" in text


def _only_run(db) -> str:
    from sqlalchemy import select

    from db.models import Session
    names = set(db.scalars(select(Session.run_name)))
    assert len(names) == 1
    return names.pop()


def test_only_the_symbols_the_calls_name_have_their_candles_read(sqlite_url) -> None:
    """Two symbols stored, the decisions call BTC only (or no symbol): BTC is scored from its
    candles and ETH's candles are never read (a year of them is 105k rows)."""
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as db:
        session = Session(date=START.date(), kind="replay", run_name="two-symbols")
        db.add(session)
        db.flush()
        for k in range(30):  # closes 100, 101, ...: the 5 m candle opened at START + k·5 min
            for symbol, close in (("BTC/USDT", 100.0 + k), ("ETH/USDT", 50.0)):
                db.add(OHLCV(session_id=session.id, symbol=symbol, timeframe="5m",
                             timestamp=START + k * FIVE, open=close, high=close, low=close,
                             close=close, volume=1.0))
        for decision in ({"actions": [{"action": "BUY", "symbol": "BTC/USDT"}]},
                         {"actions": []}):
            db.add(LLMTrace(session_id=session.id, engine="rules", prompt="", status="ok",
                            decision_json=json.dumps(decision), tokens_in=0, tokens_out=0,
                            cost=0.0, latency_ms=0.0, created_at=START + 10 * FIVE))
        db.commit()
        statements: list[tuple] = []
        event.listen(engine, "before_cursor_execute",
                     lambda _c, _cur, sql, params, _ctx, _many: statements.append(
                         (sql, params)))
        found = decision_outcomes(db, [session.id])
    # at START + 50 min the last closed candle opened at START + 45 min (close 109); an hour
    # later the one opened at START + 1 h 45 min (close 121)
    assert found[0].scored is not None and found[0].scored.reference_price == 109.0
    assert found[0].scored.forward["1h"] == pytest.approx((121 / 109 - 1) * 100)
    assert found[1].scored is not None and found[1].scored.reference_price is None
    read = [params for sql, params in statements if "ohlcv.close" in sql]
    assert any("BTC/USDT" in params for params in read)
    assert not any("ETH/USDT" in params for params in read)
