"""Trading sessions: one per day (in the configured timezone) per run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, bindparam, exists, func, select
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.orm import Session as OrmSession

from db.bots import bot_id
from db.models import EquityStep, Session, SessionStatsCache

_SESSIONS = Session.__table__
_OF_RUN, _ASKING = _SESSIONS.alias("of_run"), _SESSIONS.alias("asking")


def of_run(session_id: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """Whether a row's ``session_id`` is a session of the run that the bound
    ``session_id`` parameter's session belongs to.

    Checked on each row the rest of the query finds, two primary-key reads each, so a
    lookup of the run's few live orders or active plans reads as much on a year of
    sessions as on a day's: binding the run's session ids (one a day) made it grow.
    """
    return exists().where(_OF_RUN.c.id == session_id, _ASKING.c.id == bindparam("session_id"),
                          _OF_RUN.c.kind == _ASKING.c.kind,
                          _OF_RUN.c.run_name == _ASKING.c.run_name)


def trading_day(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def find_session(db: OrmSession, kind: str, run_name: str, day: date) -> Session | None:
    return db.scalars(
        select(Session).where(Session.kind == kind, Session.run_name == run_name, Session.date == day)
    ).one_or_none()


def latest_session(db: OrmSession, kind: str = "live", run_name: str = "live") -> Session | None:
    return db.scalars(
        select(Session)
        .where(Session.kind == kind, Session.run_name == run_name)
        .order_by(Session.date.desc())
        .limit(1)
    ).one_or_none()


def open_session(
    db: OrmSession, *, kind: str, run_name: str, day: date, mode: str, venue: str,
    feed: str | None, equity: float, now: datetime, settings: str | None = None,
    settings_hash: str | None = None,
) -> Session:
    """Return the day's session, creating it (and its stats row) with today's equity.

    ``feed`` is the market its prices come from (``Session.feed``), ``settings`` the run's
    recorded settings and ``settings_hash`` their hash (``bot.run_settings``); a bot
    restarted the same day on another market or with other settings (or the first start
    after a column was added) records them, so the session says what it trades with now.
    """
    existing = find_session(db, kind, run_name, day)
    if existing is not None:
        if (existing.feed, existing.settings_hash) != (feed, settings_hash):
            existing.feed = feed
            existing.settings, existing.settings_hash = settings, settings_hash
            db.commit()
        return existing
    session = Session(
        date=day, kind=kind, run_name=run_name, mode=mode, venue=venue, feed=feed,
        settings=settings, settings_hash=settings_hash, starting_balance=equity, created_at=now,
        # a live run is named after its bot; replays belong to no bot
        bot_id=bot_id(db, run_name) if kind == "live" else None,
    )
    db.add(session)
    db.flush()
    db.add(SessionStatsCache(session_id=session.id, start_of_day_equity=equity, updated_at=now))
    db.commit()
    return session


def run_session_ids(db: OrmSession | Connection, kind: str, run_name: str) -> list[int]:
    """Every session of one run: plans, orders and positions carry over across days."""
    return list(
        db.scalars(select(Session.id).where(Session.kind == kind, Session.run_name == run_name))
    )


def earlier_session_ids(db: OrmSession | Connection, session_id: int,
                        limit: int | None = None) -> list[int]:
    """The sessions of ``session_id``'s run dated before it, newest first: where its candles'
    history is (a session stores only the candles newer than the run's, ``bot.steps``'s
    market data)."""
    this = aliased(Session)
    return list(db.scalars(
        select(Session.id)
        .join(this, and_(this.id == session_id, Session.kind == this.kind,
                         Session.run_name == this.run_name, Session.date < this.date))
        .order_by(Session.date.desc()).limit(limit)))


def runs(db: OrmSession) -> list[tuple[str, str]]:
    """Every run in the store, as (kind, run_name)."""
    return [(kind, run_name) for kind, run_name in
            db.execute(select(Session.kind, Session.run_name).distinct()).all()]


def run_sessions(db: OrmSession, kind: str, run_name: str) -> list[Session]:
    """Every session of one run, oldest day first."""
    return list(db.scalars(
        select(Session).where(Session.kind == kind, Session.run_name == run_name)
        .order_by(Session.date)
    ))


def in_order(db: OrmSession, ids: Sequence[int]) -> list[int]:
    """These sessions oldest first, as their steps and fills were recorded."""
    return list(db.scalars(select(Session.id).where(Session.id.in_(ids))
                           .order_by(Session.date, Session.id)))


def run_dates(db: OrmSession, ids: Sequence[int]) -> tuple[date, date] | None:
    """The first and last trading day of these sessions (None: no session)."""
    first, last = db.execute(select(func.min(Session.date), func.max(Session.date))
                             .where(Session.id.in_(ids))).one()
    return (first, last) if first is not None else None


def run_utc_days(db: OrmSession, ids: Sequence[int]) -> tuple[date, date] | None:
    """The UTC days these sessions' steps fall on: their trading days, widened to the UTC
    day of the first and the last step (a day in SESSION_TIMEZONE runs into the UTC day
    before or after it). Two lookups on the steps' index: the first session's first step,
    the last session's last."""
    days = run_dates(db, ids)
    if days is None:
        return None
    ordered = in_order(db, ids)
    first = db.scalar(select(func.min(EquityStep.created_at))
                      .where(EquityStep.session_id == ordered[0]))
    last = db.scalar(select(func.max(EquityStep.created_at))
                     .where(EquityStep.session_id == ordered[-1]))
    return (min(days[0], first.date()) if first else days[0],
            max(days[1], last.date()) if last else days[1])
