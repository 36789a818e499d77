"""A session's equity steps digested so a run's step figures compose from its days.

A closed session's steps never change, so what the performance figures need of them is
kept once (``db.performance_rollups``) and the figures of a year are composed from 365
digests and the open day's steps. Everything composes exactly except the running peak,
which a day inherits from the days before: a day's deepest fall and its peaks depend on
that carried peak. So a digest keeps its *records* (the steps at or above every earlier
step of the day, its running highs): given the carried peak P, the day's run-level peaks
are its records at or above P, the steps before the first of them fall against P (their
lowest is kept per record) and those from it on fall against the day's own running peak
(their deepest fall is kept per record), so any P is answered exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pandas as pd

from bot.model.performance import EquityFigures

CURVE_POINTS_PER_DAY = 4  # a closed day's evenly spaced points: a year's ~1,000 on the curve
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class Step(NamedTuple):
    """One recorded step, in time order (ties by id)."""

    created_at: datetime
    equity: float
    exposure: float
    prices: str  # JSON {symbol: price}, as stored


@dataclass(frozen=True)
class Record:
    """A step at or above every earlier step of its session."""

    at: int  # microseconds since the epoch (a year's digests read thousands of them)
    equity: float
    low_before: float | None  # the lowest step of the session before it (None: the first)
    deepest_from: float | None  # the deepest fall against the day's running peak, from it on
    widest_from: int  # the longest time (µs) between consecutive records, from it on


@dataclass(frozen=True)
class StepDigest:
    """What the figures need of one session's steps (at least one)."""

    count: int
    exposed: int  # steps with an open exposure
    first: datetime
    last: datetime
    opening: float
    final: float
    low: float
    closes: dict[str, float]  # each UTC day's (ISO date) last equity
    first_prices: dict[str, float]
    last_prices: dict[str, float]
    records: list[Record]
    # (time in µs since the epoch, equity, the day's running peak) of evenly spaced steps,
    # its lowest and its last
    points: list[tuple[int, float, float]] = field(default_factory=list)

    @property
    def top(self) -> float:
        return self.records[-1].equity

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=_iso)

    @classmethod
    def from_json(cls, text: str) -> StepDigest:
        raw = json.loads(text)
        raw["first"], raw["last"] = _time(raw["first"]), _time(raw["last"])
        raw["records"] = [Record(**r) for r in raw["records"]]
        raw["points"] = [tuple(point) for point in raw["points"]]
        return cls(**raw)


def _iso(when: Any) -> str:
    if isinstance(when, datetime):
        return when.isoformat()
    raise TypeError(f"not JSON: {when!r}")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _micros(when: datetime) -> int:
    return (when - EPOCH) // MICROSECOND


def _fall(equity: float, peak: float) -> float | None:
    """How far below its peak a step is (a fraction); none against a peak not above 0."""
    return 1 - equity / peak if peak > 0 else None


def _deeper(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def digest(steps: Sequence[Step], prices: Callable[[str], dict[str, float]],
           *, thin: bool = True) -> StepDigest:
    """One session's (or one stretch's) steps, in order, digested. ``prices`` parses a
    step's prices; ``thin`` keeps ``CURVE_POINTS_PER_DAY`` curve points, else every step."""
    peaks, lows_before, closes = [], [], {}
    peak, low = steps[0].equity, None
    record_at = []
    for k, step in enumerate(steps):
        if step.equity >= peak:
            record_at.append(k)
        lows_before.append(low)
        low = step.equity if low is None else min(low, step.equity)
        peak = max(peak, step.equity)
        peaks.append(peak)
        closes[step.created_at.date().isoformat()] = step.equity
    records: list[Record] = []
    deepest: float | None = None
    widest = 0
    end = len(steps)
    for r in range(len(record_at) - 1, -1, -1):
        k = record_at[r]
        for i in range(k, end):
            deepest = _deeper(deepest, _fall(steps[i].equity, peaks[i]))
        end = k
        if r + 1 < len(record_at):
            gap = steps[record_at[r + 1]].created_at - steps[k].created_at
            widest = max(widest, gap // MICROSECOND)
        records.append(Record(at=_micros(steps[k].created_at), equity=steps[k].equity,
                              low_before=lows_before[k],
                              deepest_from=deepest, widest_from=widest))
    records.reverse()
    stride = max(1, len(steps) // CURVE_POINTS_PER_DAY) if thin else 1
    lowest = min(range(len(steps)), key=lambda i: steps[i].equity)
    kept = sorted({*range(0, len(steps), stride), lowest, len(steps) - 1})
    return StepDigest(
        count=len(steps), exposed=sum(1 for s in steps if s.exposure > 0),
        first=steps[0].created_at, last=steps[-1].created_at, opening=steps[0].equity,
        final=steps[-1].equity, low=steps[lowest].equity, closes=closes,
        first_prices=_edge_prices(steps, prices), last_prices=_edge_prices(steps[::-1], prices),
        records=records,
        points=[(_micros(steps[i].created_at), steps[i].equity, peaks[i]) for i in kept])


def _edge_prices(steps: Iterable[Step], prices: Callable[[str], dict[str, float]]
                 ) -> dict[str, float]:
    """The first step's prices (in the order given) that name any; {} if none does."""
    for step in steps:
        if step.prices != "{}" and (parsed := prices(step.prices)):
            return parsed
    return {}


def compose(digests: Sequence[StepDigest], max_points: int) -> EquityFigures | None:
    """The figures of consecutive stretches' digests (in time order); None if there are
    none. The same figures as the steps themselves give, by the carried peak."""
    if not digests:
        return None
    peak: float | None = None
    peak_at: int | None = None  # µs since the epoch
    deepest: float | None = None
    longest = 0  # µs
    closes: dict[str, float] = {}
    curve: list[tuple[int, float, float]] = []
    for part in digests:
        reached = next((r for r in part.records if peak is None or r.equity >= peak), None)
        if reached is None:  # the whole day below the carried peak
            assert peak is not None
            deepest = _deeper(deepest, _fall(part.low, peak))
        else:
            if reached.low_before is not None and peak is not None:
                deepest = _deeper(deepest, _fall(reached.low_before, peak))
            deepest = _deeper(deepest, reached.deepest_from)
            if peak_at is not None:
                longest = max(longest, reached.at - peak_at)
            longest = max(longest, reached.widest_from)
            peak_at = part.records[-1].at
        carried = peak
        peak = part.top if peak is None else max(peak, part.top)
        closes |= part.closes
        curve += [(at, equity, day_peak if carried is None else max(carried, day_peak))
                  for at, equity, day_peak in part.points]
    first, last = digests[0], digests[-1]
    assert peak is not None and peak_at is not None
    if last.final < peak:
        longest = max(longest, _micros(last.last) - peak_at)
    days = sorted(closes)
    return EquityFigures(
        closes=pd.Series([closes[d] for d in days], dtype=float, index=pd.DatetimeIndex(
            [pd.Timestamp(d, tz="UTC") for d in days])),
        opening=first.opening, final=last.final,
        max_drawdown_pct=abs(deepest or 0.0) * 100,
        max_drawdown_hours=longest / 3_600_000_000,
        exposure_time_pct=sum(d.exposed for d in digests) / sum(d.count for d in digests) * 100,
        first=first.first, last=last.last,
        first_prices=next((d.first_prices for d in digests if d.first_prices), {}),
        last_prices=next((d.last_prices for d in reversed(digests) if d.last_prices), {}),
        curve=_curve(curve, max_points))


def _curve(points: list[tuple[int, float, float]], max_points: int) -> pd.DataFrame:
    """About ``max_points`` evenly spaced points, the last and the first at the deepest
    fall, with each one's drawdown (%, ≤ 0) against the run's running peak."""
    falls = [_fall(equity, peak) for _, equity, peak in points]
    deepest = max((f for f in falls if f is not None), default=None)
    at_deepest = next((k for k, f in enumerate(falls) if deepest is not None and f == deepest),
                      None)
    stride = max(1, len(points) // max_points)
    kept = [k for k in range(len(points))
            if k % stride == 0 or k == len(points) - 1 or k == at_deepest]
    return pd.DataFrame({
        "time": pd.to_datetime([points[k][0] for k in kept], unit="us", utc=True),
        "equity": [float(points[k][1]) for k in kept],
        "drawdown_pct": [(points[k][1] / points[k][2] - 1) * 100 if points[k][2] > 0
                         else float("nan") for k in kept]},
        columns=["time", "equity", "drawdown_pct"])
