"""Performance over a span: the standard figures of a strategy, from its equity and trips.

Returns are daily: each UTC day's last equity against the day before's (the first day's
against the span's opening equity). Sharpe and Sortino are empyrical's (risk-free rate 0),
annualised over 365 days because crypto trades every day; max drawdown is the deepest fall
below a running peak over every recorded step (empyrical's definition), not only day ends:
the step figures compose from per-session digests (``bot.model.step_digest``). Trip figures
(profit factor, expectancy, win rate, average win and loss, holding time) count the round
trips closed in the span, by net PnL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from bot.model.figures import figure, percent
from bot.model.round_trips import RoundTrip
from bot.model.trip_tally import TripTally, tally

ANNUALIZATION_DAYS = 365  # crypto trades every day of the year
PERIODS = {"day": "D", "week": "W-SUN", "month": "MS"}
# the figures read off the equity curve (none when the span recorded no step)
EQUITY_FIGURES = ("starting_equity", "final_equity", "total_return_pct", "days", "sharpe",
                  "sortino", "max_drawdown_pct", "max_drawdown_hours", "exposure_time_pct",
                  "buy_and_hold_pct")


@dataclass(frozen=True)
class EquityFigures:
    """What the figures need of a span's recorded steps (at least one)."""

    closes: pd.Series  # each UTC day's last equity, indexed by the day (midnight UTC)
    opening: float  # the span's first step's equity
    final: float
    max_drawdown_pct: float  # the deepest fall below a running peak over every step (≥ 0)
    max_drawdown_hours: float  # the longest time from a peak until back at it (or the end)
    exposure_time_pct: float  # share of steps with an open exposure
    first: datetime  # the first and last step's time
    last: datetime
    first_prices: dict[str, float]  # the first and last step's prices that name any
    last_prices: dict[str, float]
    curve: pd.DataFrame  # time, equity, drawdown_pct (≤ 0) of about 1,000 steps, for charts


@dataclass(frozen=True)
class Performance:
    metrics: dict[str, float | int | str | None]
    # time, equity, drawdown_pct (≤ 0: below the running peak) of about 1,000 steps, the
    # last and the deepest among them
    equity: pd.DataFrame
    returns: dict[str, pd.DataFrame]  # per "day" | "week" | "month": period, equity, return_pct
    by_symbol: pd.DataFrame


def period_returns(equity: pd.Series, opening: float, rule: str) -> pd.Series:
    """Each period's return (a fraction): its last equity against the period before's, the
    first against ``opening``; indexed by the period (pandas ``rule``: "D", "W-SUN", "MS")."""
    closes = equity.resample(rule).last().dropna()
    previous = closes.shift(1)
    if len(closes):
        previous.iloc[0] = opening
    return closes / previous - 1


def period_table(equity: pd.Series, opening: float, rule: str) -> pd.DataFrame:
    """``period_returns`` with each period's closing equity, returns in percent."""
    returns = period_returns(equity, opening, rule)
    closes = equity.resample(rule).last().dropna()
    return pd.DataFrame({"period": returns.index, "equity": closes.to_numpy(),
                         "return_pct": (returns * 100).to_numpy()})


def _finite(value: Any) -> float | None:
    """A library figure as a float, None when it is not a number (too few returns)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _iso(when: Any) -> str | None:
    return pd.Timestamp(when).isoformat() if when is not None else None


def _share_pct(part: float, gross: float) -> float | None:
    """``part`` as a percentage of a positive gross PnL; none of a loss or of nothing."""
    return part / gross * 100 if gross > 0 else None


Trips = Sequence[RoundTrip] | dict[str, TripTally]  # trips, or their per-symbol tallies


def _tallies(trips: Trips) -> dict[str, TripTally]:
    return trips if isinstance(trips, dict) else tally(trips)


def _figures(total: TripTally) -> dict[str, float | int | None]:
    return {
        "round_trips": total.count,
        "win_rate_pct": total.wins / total.count * 100 if total.count else None,
        "profit_factor": total.win_sum / -total.loss_sum if total.losses else None,
        "expectancy": total.net / total.count if total.count else None,
        "avg_win": total.win_sum / total.wins if total.wins else None,
        "avg_loss": total.loss_sum / total.losses if total.losses else None,
        "avg_holding_minutes": total.held_minutes / total.held if total.held else None,
        "gross_pnl": total.gross,
        "fees": total.fees,
        "net_pnl": total.net,
    }


def trip_figures(trips: Trips) -> dict[str, float | int | None]:
    """Round-trip figures over the trips that closed (by net PnL, fees included)."""
    return _figures(_total(_tallies(trips)))


def _total(tallies: dict[str, TripTally]) -> TripTally:
    total = TripTally()
    for one in tallies.values():
        total.add(one)
    return total


def by_symbol(trips: Trips) -> pd.DataFrame:
    """Per symbol: closed trips, win rate, gross PnL, fees, net PnL and average return."""
    tallies = _tallies(trips)
    rows = []
    for symbol in sorted(tallies):
        mine = tallies[symbol]
        figures = _figures(mine)
        rows.append({"symbol": symbol, "round_trips": figures["round_trips"],
                     "win_rate_pct": figures["win_rate_pct"], "gross_pnl": figures["gross_pnl"],
                     "fees": figures["fees"], "net_pnl": figures["net_pnl"],
                     "avg_return_pct": mine.return_pct_sum / mine.count if mine.count else None})
    return pd.DataFrame(rows, columns=["symbol", "round_trips", "win_rate_pct", "gross_pnl",
                                       "fees", "net_pnl", "avg_return_pct"])


def buy_and_hold_pct(first: dict[str, float], last: dict[str, float]) -> float | None:
    """Equal weights in every symbol from its first price in the span to its last."""
    moves = [last[s] / first[s] - 1 for s in first if s in last and first[s]]
    return sum(moves) / len(moves) * 100 if moves else None


def performance(equity: EquityFigures | None, trips: Trips, llm_cost: float,
                start: datetime | None = None, end: datetime | None = None) -> Performance:
    """The figures of one span. ``equity``: what its recorded steps come to (None: it
    recorded none); ``trips``: the round trips closed in it (open ones are left out of the
    figures) or their tallies."""
    trips = _tallies(trips)
    trip_stats = trip_figures(trips)
    gross = float(trip_stats["gross_pnl"] or 0.0)
    metrics: dict[str, float | int | str | None] = {
        "start": _iso(start or (equity.first if equity else None)),
        "end": _iso(end or (equity.last if equity else None)),
        "annualization_days": ANNUALIZATION_DAYS,
    }
    if equity is not None:
        import empyrical  # here: it loads scipy (~0.7 s), which only this needs of the bot

        opening, closes = equity.opening, equity.closes
        returns = period_returns(closes, opening, "D")
        metrics |= {
            "starting_equity": opening, "final_equity": equity.final,
            "total_return_pct": (equity.final / opening - 1) * 100 if opening else None,
            "days": len(returns),
            "sharpe": _finite(empyrical.sharpe_ratio(returns, annualization=ANNUALIZATION_DAYS))
            if len(returns) > 1 else None,
            "sortino": _finite(empyrical.sortino_ratio(returns, annualization=ANNUALIZATION_DAYS))
            if len(returns) > 1 else None,
            "max_drawdown_pct": equity.max_drawdown_pct,
            "max_drawdown_hours": equity.max_drawdown_hours,
            "exposure_time_pct": equity.exposure_time_pct,
            "buy_and_hold_pct": buy_and_hold_pct(equity.first_prices, equity.last_prices)
            if equity.first_prices else None,
        }
        curve = equity.curve
    else:  # nothing recorded in the span: the same keys, with no value
        opening, closes = 0.0, pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
        metrics |= dict.fromkeys(EQUITY_FIGURES)
        curve = pd.DataFrame(columns=["time", "equity", "drawdown_pct"])
    metrics |= trip_stats | {
        "llm_cost": llm_cost,
        "fees_share_of_gross_pct": _share_pct(float(trip_stats["fees"] or 0.0), gross),
        "llm_cost_share_of_gross_pct": _share_pct(llm_cost, gross),
    }
    periods = {name: period_table(closes, opening, rule) for name, rule in PERIODS.items()}
    return Performance(metrics=metrics, equity=curve, returns=periods, by_symbol=by_symbol(trips))


# Each figure's name in words and its unit, for the report's text and the console.
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "start": ("From", ""), "end": ("To", ""),
    "starting_equity": ("Starting equity", "quote"), "final_equity": ("Final equity", "quote"),
    "total_return_pct": ("Total return", "%"), "buy_and_hold_pct": ("Buy and hold", "%"),
    "days": ("Days with returns", "days"),
    "sharpe": ("Sharpe ratio (daily, ×√365)", ""), "sortino": ("Sortino ratio (daily, ×√365)", ""),
    "annualization_days": ("Annualised over", "days a year"),
    "max_drawdown_pct": ("Max drawdown", "%"), "max_drawdown_hours": ("Longest drawdown", "h"),
    "round_trips": ("Round trips closed", ""), "win_rate_pct": ("Win rate", "%"),
    "profit_factor": ("Profit factor", "×"), "expectancy": ("Expectancy per round trip", "quote"),
    "avg_win": ("Average win", "quote"), "avg_loss": ("Average loss", "quote"),
    "avg_holding_minutes": ("Average holding time", "min"),
    "exposure_time_pct": ("Time in the market", "%"),
    "gross_pnl": ("Gross PnL (round trips)", "quote"), "fees": ("Fees (round trips)", "quote"),
    "net_pnl": ("Net PnL after fees", "quote"), "llm_cost": ("LLM cost", "quote"),
    "fees_share_of_gross_pct": ("Fees as share of gross PnL", "%"),
    "llm_cost_share_of_gross_pct": ("LLM cost as share of gross PnL", "%"),
}


def shown(key: str, value: float | int | str | None) -> str:
    """A figure as words show it: its unit, two decimals (a sum of quote currency as
    ``figure`` shows it, a percentage as ``percent`` does), "–" when there is none."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    unit = METRIC_LABELS.get(key, ("", ""))[1]
    if unit == "%" and not isinstance(value, int):
        return percent(value)
    number = (f"{value:,}" if isinstance(value, int) else figure(value) if unit == "quote"
              else f"{value:,.2f}")
    return f"{number} {unit}".strip() if unit not in ("", "quote") else number
