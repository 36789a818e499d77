"""``python -m bot report``: a bot's or a replay run's performance over a span.

The figures come from ``db.performance.report``, the function the console's Performance
page shows, so the two agree for the same span.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, timedelta

from bot.model.figures import figure, percent
from bot.model.performance import METRIC_LABELS, shown


class ReportInputError(ValueError):
    """A user's mistake in the report's arguments: named, never a traceback."""


def span_bound(text: str | None, name: str, *, end: bool = False) -> datetime | None:
    """``--start``/``--end`` as an aware UTC time: a date (YYYY-MM-DD, whole days; an end
    date counts its own day) or an ISO time (naive means UTC)."""
    if not text:
        return None
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReportInputError(f"--{name} {text!r} is not a date (YYYY-MM-DD) or an ISO time"
                               ) from None
    except OverflowError:  # the day after 9999-12-31, the end of a whole last day
        raise ReportInputError(f"--{name} {text!r} is past the last date a report can span"
                               ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def add_parser(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="performance of a bot or a replay run over a span")
    report.add_argument("--db", help="database URL (default: DATABASE_URL or data/tradedesk.db)")
    scope = report.add_mutually_exclusive_group()
    scope.add_argument("--bot", help="a bot's live sessions (default: BOT_NAME or 'default')")
    scope.add_argument("--run", help="a replay run (its name, as the Replays page lists it)")
    report.add_argument("--start", help="from this date or ISO time (UTC)")
    report.add_argument("--end", help="to this date (inclusive) or ISO time (exclusive)")
    report.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace, url: str, bot: str) -> int:
    """Print the report; 2 with the reason for a bad input."""
    from db.engine import make_engine, missing_sqlite_file, session_factory
    from db.performance import UnknownScope, report, scope_sessions

    try:
        if (missing := missing_sqlite_file(url)) is not None:
            raise ReportInputError(f"--db: there is no database file at {missing}")
        start = span_bound(args.start, "start")
        end = span_bound(args.end, "end", end=True)
        if start is not None and end is not None and end <= start:
            raise ReportInputError(f"--end {args.end} is not after --start {args.start}")
        with session_factory(make_engine(url))() as db:
            ids = scope_sessions(db, bot=None if args.run else bot, run=args.run)
            result = report(db, ids, start, end)
    except (ReportInputError, UnknownScope) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(as_text(result))
    return 0


def as_text(result: dict) -> str:
    width = max(len(label) for label, _ in METRIC_LABELS.values())
    lines = [f"{METRIC_LABELS[key][0]:<{width}}  {shown(key, value)}"
             for key, value in result["metrics"].items() if key in METRIC_LABELS]
    if result["by_symbol"]:
        lines += ["", "Per symbol: round trips, win rate, net PnL"]
        lines += [f"  {row['symbol']:<12} {row['round_trips']:>5}  "
                  f"{shown('win_rate_pct', row['win_rate_pct']):>9}  {figure(row['net_pnl'])}"
                  for row in result["by_symbol"]]
    if result["by_month"]:
        lines += ["", "Per month: return"]
        lines += [f"  {row['period']}  {percent(row['return_pct'], sign=True)}"
                  for row in result["by_month"]]
    if result.get("scorecard", {}).get("decisions"):
        lines += ["", *scorecard_text(result["scorecard"])]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "—" if value is None else percent(value, sign=True)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} %"


def scorecard_text(card: dict) -> list[str]:
    """The scorecard in words: cost and tokens, calls by action and confidence (hit rate and
    average forward return per horizon; "—" where nothing is scored yet) and the LLM against
    its shadow."""
    lines = [
        f"Scorecard: {card['decisions']} decisions over {card['days']} "
        f"day{'' if card['days'] == 1 else 's'}",
        f"  LLM cost {card['cost']:.4f} (per decision {card['cost_per_decision']:.4f}, "
        f"per day {card['cost_per_day']:.4f}), tokens per decision "
        f"{card['tokens_per_decision']:.0f}",
        f"  realized PnL of the trips they opened {figure(card['realized_pnl'])}, net of LLM "
        f"cost {figure(card['realized_net_of_cost'])}",
        "  pending (no candle yet): " + ", ".join(
            f"{horizon} {count}" for horizon, count in card["pending"].items()),
        "  Action  confidence  count  hit rate / average forward return, per horizon",
    ]
    for row in card["by_call"]:
        horizons = "  ".join(
            f"{h}: {_rate(row[f'hit_rate_{h}_pct'])} / {_pct(row[f'avg_forward_{h}_pct'])}"
            for h in card["pending"])
        lines.append(f"  {row['action']:<6}  {row['confidence']:<10}  {row['count']:>5}  "
                     f"{horizons}")
    if card["versus_shadow"]:
        lines.append("  LLM against the rules shadow (forward PnL on the size asked, "
                     "hit rate; LLM net of its cost)")
        lines += [f"  {row['horizon']:>4}: LLM {figure(row['llm_forward_pnl'])} "
                  f"({_rate(row['llm_hit_rate_pct'])}), shadow "
                  f"{figure(row['shadow_forward_pnl'])} ({_rate(row['shadow_hit_rate_pct'])}), "
                  f"LLM net of cost {figure(row['llm_net_of_cost'])}, edge over the shadow "
                  f"{figure(row['llm_edge_net_of_cost'])}"
                  for row in card["versus_shadow"]]
    return lines
