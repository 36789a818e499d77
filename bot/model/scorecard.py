"""The scorecard of decisions, storage-free: what each decision's call did after it.

A decision (one trace) is scored by its *call*: its first BUY or SELL action, else its first
other action, else HOLD. The call's symbol is priced from candles: the reference price is
the close of the last candle closed at the decision's time, the forward price the close of
the last candle closed at the time plus the horizon. A horizon whose end no stored candle
has reached yet is *pending* (None), never a return of 0. A BUY hits when the forward return
is above 0, a SELL when it is below; a HOLD, and the actions with no direction, are counted
but have no hit rate.

The shadow's call (the rules engine asked on the same context, never executed) is scored
the same way, so the LLM can be set against it net of what the LLM cost.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

from bot.engine.schema import ActionType

HORIZONS: dict[str, timedelta] = {"1h": timedelta(hours=1), "4h": timedelta(hours=4),
                                  "24h": timedelta(hours=24)}
# Confidence buckets: (label, lower bound inclusive), highest first; no confidence given
# is its own bucket.
CONFIDENCE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("0.9–1.0", 0.9), ("0.7–0.9", 0.7), ("0.5–0.7", 0.5), ("0–0.5", 0.0))
NO_CONFIDENCE = "not given"
DIRECTION = {ActionType.BUY: 1, ActionType.SELL: -1}


@dataclass(frozen=True)
class Call:
    """What a decision said, reduced to the one action it is scored by."""

    action: ActionType
    symbol: str | None
    confidence: float | None
    notional: float | None  # quote value asked for, when the action says (or its size does)
    size: float | None = None


@dataclass(frozen=True)
class PriceSeries:
    """One symbol's closes by the time each candle closed, ascending."""

    closed_at: tuple[datetime, ...]
    close: tuple[float, ...]

    def price_at(self, moment: datetime) -> float | None:
        """The close of the last candle closed at or before ``moment``."""
        index = bisect.bisect_right(self.closed_at, moment) - 1
        return self.close[index] if index >= 0 else None

    def reaches(self, moment: datetime) -> bool:
        """Whether a stored candle closed at or after ``moment`` (its price is known)."""
        return bool(self.closed_at) and self.closed_at[-1] >= moment


def price_series(rows: Sequence[tuple[datetime, float]], candle: timedelta) -> PriceSeries:
    """Candles as (open time, close) rows in any order, one timeframe ``candle`` long."""
    ordered = sorted(set(rows))
    return PriceSeries(tuple(t + candle for t, _ in ordered), tuple(c for _, c in ordered))


def forward_return(series: PriceSeries | None, moment: datetime,
                   horizon: timedelta) -> float | None:
    """The symbol's return in % from ``moment`` to ``moment + horizon``; None while pending
    (or with no price at the decision)."""
    if series is None or not series.reaches(moment + horizon):
        return None
    start, end = series.price_at(moment), series.price_at(moment + horizon)
    if start is None or end is None or start <= 0:
        return None
    return (end / start - 1) * 100


def call_of(decision_json: str | None, fallback_symbol: str | None = None) -> Call | None:
    """The call a decision is scored by; None when there is no decision to read. An action
    without a symbol takes ``fallback_symbol`` (a run on one symbol)."""
    if not decision_json:
        return None
    try:
        actions = json.loads(decision_json).get("actions") or []
    except (ValueError, AttributeError):
        return None
    actions = [a for a in actions if isinstance(a, dict) and a.get("action") in ActionType]
    if not actions:
        return Call(ActionType.HOLD, fallback_symbol, None, None)
    chosen = next((a for a in actions if a["action"] in DIRECTION),
                  next((a for a in actions if a["action"] != ActionType.HOLD), actions[0]))
    confidence = chosen.get("confidence")
    return Call(ActionType(chosen["action"]), chosen.get("symbol") or fallback_symbol,
                float(confidence) if isinstance(confidence, int | float) else None,
                _number(chosen.get("quote_value")), _number(chosen.get("size")))


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def confidence_bucket(confidence: float | None) -> str:
    if confidence is None:
        return NO_CONFIDENCE
    return next(label for label, low in CONFIDENCE_BUCKETS if confidence >= low)


class DecisionRecord(NamedTuple):
    """One traced decision as the scorecard reads it (a tuple: a year holds 52k, built on
    every read)."""

    trace_id: int
    created_at: datetime
    decision_json: str | None
    cost: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    shadow_json: str | None = None
    session_id: int | None = None


@dataclass
class ScoredCall:
    call: Call
    forward: dict[str, float | None]  # per horizon, in %; None: pending
    reference_price: float | None

    @property
    def direction(self) -> int:
        return DIRECTION.get(self.call.action, 0)

    def hit(self, horizon: str) -> bool | None:
        value = self.forward[horizon]
        if not self.direction or value is None:
            return None
        return value * self.direction > 0

    def forward_pnl(self, horizon: str) -> float | None:
        """What the call would have earned over the horizon on the size it asked for."""
        value, notional = self.forward[horizon], self.notional
        if not self.direction or value is None or notional is None:
            return None
        return self.direction * value / 100 * notional

    @property
    def notional(self) -> float | None:
        if self.call.notional is not None:
            return self.call.notional
        if self.call.size is not None and self.reference_price is not None:
            return self.call.size * self.reference_price
        return None


@dataclass
class DecisionOutcome:
    """A decision's forward outcome: its call's, its shadow's, and the realized PnL of the
    round trips it opened, net of its own LLM cost."""

    record: DecisionRecord
    scored: ScoredCall | None
    shadow: ScoredCall | None
    realized_pnl: float = 0.0  # net PnL (after fees) of the closed trips it opened
    open_trips: int = 0

    @property
    def net_of_cost(self) -> float:
        return self.realized_pnl - self.record.cost


def score_call(call: Call | None, moment: datetime,
               series: Mapping[str, PriceSeries]) -> ScoredCall | None:
    if call is None:
        return None
    found = series.get(call.symbol) if call.symbol else None
    return ScoredCall(call, {name: forward_return(found, moment, span)
                             for name, span in HORIZONS.items()},
                      found.price_at(moment) if found else None)


def outcomes(records: Sequence[DecisionRecord], series: Mapping[str, PriceSeries],
             realized: dict[int, tuple[float, int]] | None = None,
             fallback_symbol: str | None = None) -> list[DecisionOutcome]:
    """Each decision's outcome; ``realized`` maps a trace id to the (net PnL of its closed
    round trips, number still open)."""
    realized = realized or {}
    found = []
    for record in records:
        pnl, still_open = realized.get(record.trace_id, (0.0, 0))
        found.append(DecisionOutcome(
            record, score_call(call_of(record.decision_json, fallback_symbol),
                               record.created_at, series),
            score_call(call_of(record.shadow_json, fallback_symbol), record.created_at, series),
            pnl, still_open))
    return found


@dataclass
class Group:
    """Figures of a group of scored calls over one horizon; groups add up."""

    count: int = 0
    scored: int = 0  # with a forward return (not pending)
    hits: int = 0
    directional: int = 0
    forward_sum: float = 0.0
    forward_pnl: float = 0.0

    def add(self, item: ScoredCall, horizon: str) -> None:
        self.count += 1
        value = item.forward[horizon]
        if value is None:
            return
        self.scored += 1
        self.forward_sum += value
        hit = item.hit(horizon)
        if hit is not None:
            self.directional += 1
            self.hits += hit
        self.forward_pnl += item.forward_pnl(horizon) or 0.0

    def merge(self, other: Group) -> None:
        self.count += other.count
        self.scored += other.scored
        self.hits += other.hits
        self.directional += other.directional
        self.forward_sum += other.forward_sum
        self.forward_pnl += other.forward_pnl

    @property
    def hit_rate_pct(self) -> float | None:
        return self.hits / self.directional * 100 if self.directional else None

    @property
    def avg_forward_pct(self) -> float | None:
        return self.forward_sum / self.scored if self.scored else None


def _per_horizon() -> dict[str, Group]:
    return {horizon: Group() for horizon in HORIZONS}


@dataclass
class Tally:
    """The scorecard's figures before any is divided: each adds up over decisions, so a
    span's tally is that of its decisions rolled up (summed by the database,
    ``db.decision_scores``) merged with that of the rest."""

    decisions: int = 0
    cost: float = 0.0
    tokens: int = 0
    days: set[date] = field(default_factory=set)
    realized_pnl: float = 0.0
    # priced at the decision, a horizon not reached yet
    pending: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HORIZONS, 0))
    # (action, confidence bucket): per horizon
    by_call: dict[tuple[str, str], dict[str, Group]] = field(default_factory=dict)
    # the decisions with a call and a shadow's: their cost, the LLM's calls, the shadow's
    shadowed: int = 0
    shadowed_cost: float = 0.0
    llm: dict[str, Group] = field(default_factory=_per_horizon)
    shadow: dict[str, Group] = field(default_factory=_per_horizon)

    def add(self, outcome: DecisionOutcome) -> None:
        record, scored, shadow = outcome.record, outcome.scored, outcome.shadow
        self.decisions += 1
        self.cost += record.cost
        self.tokens += record.tokens_in + record.tokens_out
        self.days.add(record.created_at.date())
        self.realized_pnl += outcome.realized_pnl
        if scored is None:
            return
        # pending: priced at the decision, its horizon not reached yet (a call on no symbol,
        # or one with no candle, is not waiting for anything)
        for horizon in HORIZONS:
            self.pending[horizon] += (scored.reference_price is not None
                                      and scored.forward[horizon] is None)
        groups = self.by_call.setdefault(
            (scored.call.action.value, confidence_bucket(scored.call.confidence)),
            _per_horizon())
        for horizon, group in groups.items():
            group.add(scored, horizon)
        if shadow is None:
            return
        self.shadowed += 1
        self.shadowed_cost += record.cost
        for horizon in HORIZONS:
            self.llm[horizon].add(scored, horizon)
            self.shadow[horizon].add(shadow, horizon)

    def merge(self, other: Tally) -> None:
        self.decisions += other.decisions
        self.cost += other.cost
        self.tokens += other.tokens
        self.days |= other.days
        self.realized_pnl += other.realized_pnl
        for horizon in HORIZONS:
            self.pending[horizon] += other.pending[horizon]
            self.llm[horizon].merge(other.llm[horizon])
            self.shadow[horizon].merge(other.shadow[horizon])
        for key, groups in other.by_call.items():
            mine = self.by_call.setdefault(key, _per_horizon())
            for horizon, group in groups.items():
                mine[horizon].merge(group)
        self.shadowed += other.shadowed
        self.shadowed_cost += other.shadowed_cost


@dataclass
class Scorecard:
    decisions: int = 0
    by_call: list[dict] = field(default_factory=list)
    versus_shadow: list[dict] = field(default_factory=list)
    cost: float = 0.0
    cost_per_decision: float | None = None
    cost_per_day: float | None = None
    days: int = 0
    tokens_per_decision: float | None = None
    realized_pnl: float = 0.0
    realized_net_of_cost: float = 0.0
    pending: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"decisions": self.decisions, "by_call": self.by_call,
                "versus_shadow": self.versus_shadow, "cost": self.cost,
                "cost_per_decision": self.cost_per_decision, "cost_per_day": self.cost_per_day,
                "days": self.days, "tokens_per_decision": self.tokens_per_decision,
                "realized_pnl": self.realized_pnl,
                "realized_net_of_cost": self.realized_net_of_cost, "pending": self.pending}


def tally(found: Sequence[DecisionOutcome]) -> Tally:
    counted = Tally()
    for outcome in found:
        counted.add(outcome)
    return counted


def scorecard(found: Sequence[DecisionOutcome], rolled: Tally | None = None) -> Scorecard:
    """Figures over the decisions given (and those ``rolled`` up): by action and confidence
    bucket per horizon, the LLM against its shadow, cost and tokens."""
    counted = tally(found)
    if rolled is not None:
        counted.merge(rolled)
    return card_of(counted)


def card_of(counted: Tally) -> Scorecard:
    card = Scorecard(decisions=counted.decisions, cost=counted.cost, days=len(counted.days),
                     pending=dict(counted.pending), realized_pnl=counted.realized_pnl,
                     realized_net_of_cost=counted.realized_pnl - counted.cost)
    if counted.decisions:
        card.cost_per_decision = counted.cost / counted.decisions
        card.cost_per_day = counted.cost / card.days
        card.tokens_per_decision = counted.tokens / counted.decisions
    card.by_call = _by_call(counted.by_call)
    if counted.shadowed:
        card.versus_shadow = _versus_shadow(counted)
    return card


def _by_call(groups: dict[tuple[str, str], dict[str, Group]]) -> list[dict]:
    keys = sorted(groups, key=lambda k: (list(ActionType).index(ActionType(k[0])),
                                         _bucket_order(k[1])))
    rows = []
    for action, bucket in keys:
        per_horizon = groups[(action, bucket)]
        row: dict = {"action": action, "confidence": bucket,
                     "count": next(iter(per_horizon.values())).count}
        for horizon, group in per_horizon.items():
            row[f"hit_rate_{horizon}_pct"] = group.hit_rate_pct
            row[f"avg_forward_{horizon}_pct"] = group.avg_forward_pct
        rows.append(row)
    return rows


def _bucket_order(label: str) -> int:
    labels = [name for name, _ in CONFIDENCE_BUCKETS] + [NO_CONFIDENCE]
    return labels.index(label)


def _versus_shadow(counted: Tally) -> list[dict]:
    """Per horizon, the LLM's calls and the shadow's on the same decisions: hit rate,
    average directional forward return, forward PnL on the asked size, and the LLM's net
    of its cost (the shadow costs nothing)."""
    cost = counted.shadowed_cost
    rows = []
    for horizon in HORIZONS:
        llm, shadow = counted.llm[horizon], counted.shadow[horizon]
        rows.append({
            "horizon": horizon, "decisions": counted.shadowed,
            "llm_directional": llm.directional, "shadow_directional": shadow.directional,
            "llm_hit_rate_pct": llm.hit_rate_pct, "shadow_hit_rate_pct": shadow.hit_rate_pct,
            "llm_forward_pnl": llm.forward_pnl, "shadow_forward_pnl": shadow.forward_pnl,
            "llm_cost": cost, "llm_net_of_cost": llm.forward_pnl - cost,
            "llm_edge_net_of_cost": llm.forward_pnl - cost - shadow.forward_pnl,
        })
    return rows
