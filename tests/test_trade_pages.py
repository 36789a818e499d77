"""The Trades page's pages of fills: each is the slice of all the filter's fills sorted
newest first, whatever the sessions' times (a run's days, or sessions overlapping in time),
and the download holds them all."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from db.engine import make_engine, session_factory
from db.models import Session, Trade
from db.queries_trading import TradeFilter, all_trades, trades

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _fills(db, rng: random.Random) -> list[int]:
    """Eight sessions: six days in a row, and two spanning the others' days (a restart's
    session, a fill booked late), with fills at random times, some at the same time."""
    ids = []
    for day in range(8):
        session = Session(date=date(2026, 1, 1) + timedelta(days=day), kind="live",
                          run_name=f"run-{day}", mode="PAPER", venue="paper",
                          starting_balance=1000.0, created_at=T0)
        db.add(session)
        db.flush()
        ids.append(session.id)
        first, span = (day * 86_400, 86_400) if day < 6 else (0, 6 * 86_400)
        for k in range(rng.randint(0, 60)):
            when = T0 + timedelta(seconds=first + rng.randrange(0, span, 600))
            db.add(Trade(session_id=session.id, symbol=rng.choice(["BTC/USDT", "ETH/USDT"]),
                         action="BUY", quantity=1.0, price=1.0, fee=0.0, timestamp=when,
                         venue="paper", trade_id=f"{day}-{k}"))
    db.commit()
    return ids


def test_every_page_is_its_slice_of_all_the_fills_newest_first(db_url: str) -> None:
    engine = make_engine(db_url)
    with session_factory(engine)() as db:
        ids = _fills(db, random.Random(5))
        for where in (TradeFilter(tuple(ids)), TradeFilter(tuple(ids), symbols=("ETH/USDT",)),
                      TradeFilter(tuple(ids[2:7]))):
            every = all_trades(db, where)
            assert every["timestamp"].is_monotonic_decreasing
            assert len(every) > 40
            for size in (1, 7, 25, 1000):
                for offset in range(0, len(every) + size, size):
                    page = trades(db, where, limit=size, offset=offset)
                    assert page["id"].tolist() == every["id"][offset:offset + size].tolist()
    engine.dispose()
