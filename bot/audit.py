"""Invariant checks over a database; ``python -m bot audit`` exits non-zero on any breach."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bot.positions import PositionBook
from db.plans import active_filled_plans
from db.sessions import run_sessions, runs
from db.snapshots import positions_of_session
from db.stats import figures_from_cache, figures_from_rows, stats_caches
from db.trades import duplicate_fills, fills_of_sessions

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
    for cache in stats_caches(db):
        if not figures_from_rows(db, cache.session_id).close_to(figures_from_cache(cache)):
            bad.append(cache.session_id)
    return Check("stats_cache_equals_rebuild", not bad, f"sessions differing: {bad}" if bad else "")


def _duplicates(db) -> Check:
    rows = duplicate_fills(db)
    return Check("no_duplicate_venue_trade_ids", not rows, str(rows[:10]) if rows else "")


def _runs(db) -> list[Check]:
    checks = []
    for kind, run_name in runs(db):
        sessions = run_sessions(db, kind, run_name)
        ids = [s.id for s in sessions]
        fills = fills_of_sessions(db, ids)
        book = PositionBook.from_fills([(f[0], f[1], f[2], f[3]) for f in fills])
        snapshot = {p.symbol: p.quantity for p in positions_of_session(db, sessions[-1].id)}
        expected = {s: h.quantity for s, h in book.open_items().items()}
        same = set(snapshot) == set(expected) and all(
            abs(snapshot[s] - expected[s]) <= TOLERANCE * max(1, abs(expected[s]))
            for s in expected)
        checks.append(Check(f"positions_equal_fills[{kind}:{run_name}]", same,
                            "" if same else f"snapshot {snapshot} vs fills {expected}"))
        orphans = [
            p.id for p in active_filled_plans(db, ids)
            if book.quantity(p.symbol) + TOLERANCE < p.filled_size
        ]
        checks.append(Check(f"open_plans_have_positions[{kind}:{run_name}]", not orphans,
                            f"plans without holdings: {orphans}" if orphans else ""))
    return checks


def as_json(checks: list[Check]) -> dict:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
