"""Closed round trips summed per symbol: what the performance figures need of them.

Sums add across days, so a run's trip figures compose from each closed session's tally
(``db.performance_rollups``) and the trips closed since. What a later day needs to go on
grouping is each symbol's open trip with its holding, kept beside the tallies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import datetime

from bot.model.round_trips import RoundTrip
from bot.positions import Holding


@dataclass
class TripTally:
    """One symbol's closed trips, summed (by net PnL, fees included)."""

    count: int = 0
    wins: int = 0
    win_sum: float = 0.0
    losses: int = 0
    loss_sum: float = 0.0
    gross: float = 0.0
    fees: float = 0.0
    net: float = 0.0
    held_minutes: float = 0.0
    held: int = 0  # trips with a duration
    return_pct_sum: float = 0.0
    first_close: datetime | None = None
    last_close: datetime | None = None

    def add(self, other: TripTally) -> None:
        for f in fields(self):
            if f.name not in ("first_close", "last_close"):
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        closes = [c for c in (self.first_close, other.first_close, self.last_close,
                              other.last_close) if c is not None]
        self.first_close, self.last_close = (min(closes), max(closes)) if closes else (None, None)


def tally(trips: Iterable[RoundTrip]) -> dict[str, TripTally]:
    """The closed trips among ``trips`` per symbol (open ones are left out)."""
    out: dict[str, TripTally] = {}
    for trip in trips:
        if trip.closed_at is None:
            continue
        mine = out.setdefault(trip.symbol, TripTally())
        net = trip.net_pnl
        mine.count += 1
        mine.wins += int(net > 0)
        mine.win_sum += net if net > 0 else 0.0
        mine.losses += int(net < 0)
        mine.loss_sum += net if net < 0 else 0.0
        mine.gross += trip.gross_pnl
        mine.fees += trip.fees
        mine.net += net
        if trip.duration is not None:
            mine.held_minutes += trip.duration.total_seconds() / 60
            mine.held += 1
        mine.return_pct_sum += trip.return_pct
        mine.first_close = min(filter(None, (mine.first_close, trip.closed_at)))
        mine.last_close = max(filter(None, (mine.last_close, trip.closed_at)))
    return out


def merged(tallies: Iterable[dict[str, TripTally]]) -> dict[str, TripTally]:
    out: dict[str, TripTally] = {}
    for per_symbol in tallies:
        for symbol, one in per_symbol.items():
            out.setdefault(symbol, TripTally()).add(one)
    return out


OPEN_FIELDS = ("symbol", "direction", "size", "entry_value", "exit_size", "exit_value",
               "gross_pnl", "fees", "engine", "open_trace_id", "close_trace_id")


def tally_json(per_symbol: dict[str, TripTally], still_open: Iterable[RoundTrip]) -> str:
    """The tallies and the trips left open (with their holdings: what the next day's fills
    fold against; of their fills only the first and the last, which is all folding reads)."""
    return json.dumps({
        "symbols": {s: asdict(t) | {"first_close": _iso(t.first_close),
                                    "last_close": _iso(t.last_close)}
                    for s, t in per_symbol.items()},
        "open": [{f: getattr(t, f) for f in OPEN_FIELDS} | {
            "opened_at": t.opened_at.isoformat(),
            "fill_ids": sorted({t.fill_ids[0], t.fill_ids[-1]}),
            "holding": [t.holding.quantity, t.holding.avg_price]}
            for t in still_open if t.closed_at is None]})


def tally_from_json(text: str) -> tuple[dict[str, TripTally], list[RoundTrip]]:
    raw = json.loads(text)
    return ({s: TripTally(**(t | {"first_close": _time(t["first_close"]),
                                  "last_close": _time(t["last_close"])}))
             for s, t in raw["symbols"].items()},
            [RoundTrip(**{f: t[f] for f in OPEN_FIELDS},
                       opened_at=datetime.fromisoformat(t["opened_at"]),
                       fill_ids=t["fill_ids"], holding=Holding(*t["holding"]))
             for t in raw["open"]])


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None
