"""``python -m bot prune``: thin what is older than the kept days (``db.retention``), and the
bot's own pass at each rollover."""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session as OrmSession

from bot.config import MAX_RETAIN_DAYS, ConfigError, load_settings
from db.engine import make_engine, session_factory
from db.retention import Pruned, prune

log = logging.getLogger(__name__)
MINUTES_A_DAY = 1440
EARLIEST_ZONE = timedelta(hours=-12)  # UTC-12: where a calendar day ends last


def cutoff(today: date, days: int, sync_minutes: int) -> date:
    """The first day kept in full: today and the ``days - 1`` before it, and every day the
    fill sync can still book a fill into (it looks ``sync_minutes`` back: a day ended less
    than that ago). A fill booked into a closed day voids its rollup, which is written
    again from its rows: its decisions thinned by then would be missing from it."""
    return today - timedelta(days=max(days - 1, math.ceil(sync_minutes / MINUTES_A_DAY)))


def prune_days(db: OrmSession, today: date, days: int, sync_minutes: int, *,
               dry_run: bool = False) -> Pruned:
    """Thin what is older than the ``days`` kept up to ``today`` (and the fill sync's
    ``sync_minutes`` back)."""
    pruned = prune(db, cutoff(today, days, sync_minutes), dry_run=dry_run)
    log.info("retention (%d days%s): %s", days, ", dry run" if dry_run else "",
             pruned.as_dict())
    return pruned


def earliest_day(now: datetime) -> date:
    """The earliest calendar day anywhere at ``now``: a prune knows no bot's time zone (the
    command's, and a bot's own at its rollover, which thins every bot's days), and a bot
    west of UTC still trades in (or its fill sync books into) a day UTC has left."""
    return (now.astimezone(UTC) + EARLIEST_ZONE).date()


def today() -> date:
    """The command's day: the earliest calendar day anywhere now."""
    return earliest_day(datetime.now(UTC))


def run_prune(url: str, days: int | None, dry_run: bool) -> int:
    """The command: prints what went (or would) as one JSON line."""
    settings = load_settings()
    if days is None:
        days = settings.retain_days
        if not days:
            raise ConfigError("prune: give --days N, or set RETAIN_DAYS (0 keeps everything)")
    if days < 1:
        raise ConfigError(f"prune: --days must be at least 1, not {days}")
    if days > MAX_RETAIN_DAYS:
        raise ConfigError(f"prune: --days must be at most {MAX_RETAIN_DAYS:,}, not {days}")
    engine = make_engine(url)
    try:
        with session_factory(engine)() as db:
            pruned = prune_days(db, today(), days, settings.trade_sync_cutoff_minutes,
                                dry_run=dry_run)
    finally:
        engine.dispose()
    print(json.dumps({"days": days, "dry_run": dry_run, **pruned.as_dict()}))
    return 0


def add_parser(sub: argparse._SubParsersAction,
               command: Callable[[argparse.Namespace], int]) -> None:
    """Register ``prune`` on the bot's command line; ``command`` runs it."""
    found = sub.add_parser("prune", help="thin traces and ticks older than the kept days")
    found.add_argument("--db", help="database URL (default: DATABASE_URL or data/tradedesk.db)")
    found.add_argument("--days", type=int, help="days kept in full (default: RETAIN_DAYS)")
    found.add_argument("--dry-run", action="store_true",
                       help="count what would go; delete nothing")
    found.set_defaults(func=command)
