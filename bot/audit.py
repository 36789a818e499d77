"""Invariant checks over a database; ``python -m bot audit`` exits non-zero on any breach."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import func, select

from bot.positions import PositionBook
from db.models import Position, Session, SessionStatsCache, Trade, TradePlan
from db.plans import ACTIVE
from db.stats import figures_from_cache, figures_from_rows

TOLERANCE = 1e-6


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


def audit(db) -> list[Check]:
    return [_stats(db), _duplicates(db), *_runs(db)]


def _stats(db) -> Check:
    bad = []
    for cache in db.scalars(select(SessionStatsCache)):
        if not figures_from_rows(db, cache.session_id).close_to(figures_from_cache(cache)):
            bad.append(cache.session_id)
    return Check("stats_cache_equals_rebuild", not bad, f"sessions differing: {bad}" if bad else "")


def _duplicates(db) -> Check:
    rows = db.execute(
        select(Trade.venue, Trade.trade_id, func.count())
        .group_by(Trade.venue, Trade.trade_id)
        .having(func.count() > 1)
    ).all()
    return Check("no_duplicate_venue_trade_ids", not rows, str(rows[:10]) if rows else "")


def _runs(db) -> list[Check]:
    checks = []
    runs = db.execute(select(Session.kind, Session.run_name).distinct()).all()
    for kind, run_name in runs:
        sessions = list(db.scalars(
            select(Session).where(Session.kind == kind, Session.run_name == run_name)
            .order_by(Session.date)
        ))
        ids = [s.id for s in sessions]
        fills = db.execute(
            select(Trade.symbol, Trade.action, Trade.quantity, Trade.price)
            .where(Trade.session_id.in_(ids)).order_by(Trade.id)
        ).all()
        book = PositionBook.from_fills([tuple(f) for f in fills])
        snapshot = {p.symbol: p.quantity for p in db.scalars(
            select(Position).where(Position.session_id == sessions[-1].id))}
        expected = {s: h.quantity for s, h in book.open_items().items()}
        same = set(snapshot) == set(expected) and all(
            abs(snapshot[s] - expected[s]) <= TOLERANCE * max(1, abs(expected[s]))
            for s in expected)
        checks.append(Check(f"positions_equal_fills[{kind}:{run_name}]", same,
                            "" if same else f"snapshot {snapshot} vs fills {expected}"))
        orphans = [
            p.id for p in db.scalars(select(TradePlan).where(
                TradePlan.session_id.in_(ids), TradePlan.status.in_(ACTIVE),
                TradePlan.filled_size > 0))
            if book.quantity(p.symbol) + TOLERANCE < p.filled_size
        ]
        checks.append(Check(f"open_plans_have_positions[{kind}:{run_name}]", not orphans,
                            f"plans without holdings: {orphans}" if orphans else ""))
    return checks


def as_json(checks: list[Check]) -> dict:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
