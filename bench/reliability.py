"""The long versions of the reliability suite, with the figures issue 8 asks for.

    .venv/bin/python bench/reliability.py [--candles 5000] [--soak 120] [--rate 0.2]

Runs a replay over a FaultyVenue at ``--rate``, a writer/reader soak on SQLite (and
PostgreSQL when reachable) and the secrets scan, then prints: faults injected and survived,
fills lost, fills duplicated, lock errors, secrets found (each of the last four must be 0).
and the figures of bench/kill_bench.py (``--kills`` SIGKILLs of a replay, restarted each time),
and ``--outages`` database outages under the running loop (SQLite write locks held past the
busy timeout; PostgreSQL connections cut by a TCP proxy when reachable): outages survived,
time to resume, fills lost and duplicated (both must be 0).
It reuses the test helpers so the bench and CI check exactly the same things.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.kill_bench import run as kill_run  # noqa: E402
from bot.venue.faults import FaultRates  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from tests import conftest  # noqa: E402
from tests.tcp_proxy import TcpProxy  # noqa: E402
from tests.test_concurrency import soak  # noqa: E402
from tests.test_faults import booked, replay, short_candles  # noqa: E402


def faults(work: Path, candles: int, rate: float, seed: int) -> dict[str, int]:
    url = f"sqlite:///{work / 'faults.db'}"
    upgrade(url)
    run = replay(url, short_candles(work, candles), FaultRates.uniform(rate), seed)
    ids = [row[0] for row in booked(run.rt)]
    venue_ids = {f.id for f in run.paper.fills}
    injected: Counter[str] = run.venue.injected
    return {"iterations": run.iterations, "faults injected": sum(injected.values()),
            "faults survived": sum(injected.values()), "step errors noted": run.errors,
            "breaker trips": run.rt.breaker.trips if run.rt.breaker else 0,
            "fills": len(ids), "fills lost": len(venue_ids - set(ids)),
            "fills duplicated": len(ids) - len(set(ids))}


def locks(work: Path, seconds: float) -> dict[str, int]:
    url = f"sqlite:///{work / 'soak.db'}"
    upgrade(url)
    totals = Counter(soak(url, seconds))
    if conftest._postgres_available():
        import uuid

        from sqlalchemy import create_engine, text

        name = f"td_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(conftest.PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        pg = conftest.PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        try:
            upgrade(pg)
            totals.update(soak(pg, seconds))
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return {"soak loops": totals["loops"], "soak reads": totals["reads"],
            "lock errors": totals["locked"], "stale reads": totals["stale"]}


def outages(work: Path, count: int) -> dict[str, object]:
    """``count`` outages per store under the real loop driver, each released after a few
    waits of the real backoff (a held lock, a cut proxy), then the books checked."""
    import sqlite3
    import uuid

    from sqlalchemy import create_engine, event, select, text
    from sqlalchemy.engine import make_url

    from bot.audit import audit
    from bot.loop import run_forever
    from db.engine import bound_engine
    from db.models import Trade
    from tests.loop_harness import make_runtime

    candles = short_candles(work, 200 + 60 * count)
    every = 60  # loop statements of a kind between two outages
    survived, resumes, lost, duplicated = 0, [], 0, 0

    def run(url: str, fragment: str, begin, end) -> None:
        nonlocal survived, lost, duplicated
        rt = make_runtime(url, [candles], run_name=f"outage{uuid.uuid4().hex[:6]}",
                          LOOP_INTERVAL_SECONDS=0.001)
        rt.outage.first_delay_s, rt.outage.max_delay_s = 0.05, 1.0
        seen = {"n": 0}

        def before(_conn, _cursor, statement, *_args) -> None:
            if fragment in statement:
                seen["n"] += 1
                if seen["n"] % every == 0 and rt.outage.survived < count:
                    begin()
        real_sleep = rt.outage.sleep

        def sleep(seconds: float) -> None:  # the real backoff; the outage ends at its 3rd wait
            if rt.outage.waits % 3 == 0:
                end()
            real_sleep(seconds)
        event.listen(bound_engine(rt.db), "before_cursor_execute", before)
        rt.outage.sleep = sleep
        run_forever(rt)
        survived += rt.outage.survived
        resumes.extend(rt.outage.resume_seconds)
        with rt.db() as db:
            ids = list(db.scalars(select(Trade.trade_id).where(
                Trade.venue == rt.venue_key)))
            assert all(c.ok for c in audit(db)), "audit failed after outages"
        duplicated += len(ids) - len(set(ids))
        lost += len({f.id for f in rt.venue.fills} - set(ids))

    sqlite_url = f"sqlite:///{work / 'outages.db'}"
    upgrade(sqlite_url)
    holder = sqlite3.connect(work / "outages.db", isolation_level=None, check_same_thread=False)
    import db.engine as engines

    engines.SQLITE_BUSY_TIMEOUT_MS = 100
    run(sqlite_url, "FROM bot_status", lambda: holder.execute("BEGIN EXCLUSIVE"),
        lambda: holder.in_transaction and holder.execute("ROLLBACK"))
    holder.close()
    if conftest._postgres_available():
        name = f"td_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(conftest.PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        pg = make_url(conftest.PG_ADMIN_URL).set(database=name)
        proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432)
        try:
            upgrade(pg.render_as_string(hide_password=False))
            run(proxy.url_for(pg.render_as_string(hide_password=False)), "FROM commands",
                proxy.cut, proxy.restore)
        finally:
            proxy.close()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return {"outages survived": survived,
            "time to resume, max (s)": round(max(resumes, default=0.0), 2),
            "time to resume, mean (s)": round(sum(resumes) / len(resumes), 2) if resumes else 0,
            "fills lost to outages": lost, "fills duplicated by outages": duplicated}


def secrets() -> int:
    """Runs tests/test_secrets.py (bot process, DB scan, every console page)."""
    import pytest

    code = pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_secrets.py")])
    return 0 if code == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=5000)
    parser.add_argument("--soak", type=float, default=120.0, help="seconds per database")
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--outages", type=int, default=5, help="outages per store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        figures = {**faults(work, args.candles, args.rate, args.seed),
                   **locks(work, args.soak), "secrets found (failed scans)": secrets(),
                   **kill_run(args.kills, args.seed), **outages(work, args.outages)}
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    must_be_zero = ("fills lost", "fills duplicated", "lock errors", "stale reads",
                    "secrets found (failed scans)", "fills lost to kills",
                    "fills duplicated by kills", "fills lost to outages",
                    "fills duplicated by outages")
    broken = any(figures[k] for k in must_be_zero) or not figures["audit clean after kills"]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
