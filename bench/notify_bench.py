"""Notifications never slow the loop: a real loop's step times with NOTIFY_URLS unset and
with an unreachable URL, and their ratio (the goal: 1.0 within the noise of one run).

Each run replays the first ``--steps`` candles of ``BTC_USDT-5m.csv`` with the rules engine
into a fresh SQLite file (the loop harness of the tests: the real steps, the paper venue)
and sums ``rt.step_durations`` after each iteration. The two are run in the order A B B A
and each one's iterations pooled, so a machine whose load drifts during the bench (it is
shared) weighs on both alike. The unreachable run notifies every
event kind at once (NOTIFY_EVENTS=all, no rate limit), so every fill, plan and command
goes to the worker, which fails, retries and counts. Printed: each configuration's mean
and median loop time, the ratio of the means, and the median of the iteration-by-iteration
ratios (a run's times are bimodal, flat or holding, so the ratio of medians flips with
noise). The default URL is a local port
nothing listens on (refused at once); ``--url json://10.255.255.1/x`` tries one that
times out instead.

    .venv/bin/python bench/notify_bench.py
    .venv/bin/python bench/notify_bench.py --steps 2000 --url json://10.255.255.1/x
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.loop import run_iteration  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from tests.loop_harness import make_runtime  # noqa: E402
from tests.notify_server import closed_port  # noqa: E402

CANDLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "candles"


def run(steps: int, **settings: object) -> tuple[list[float], int, int]:
    """One replay of ``steps`` iterations: its loop times (ms), messages sent, failures."""
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        rt = make_runtime(url, [CANDLES / "BTC_USDT-5m.csv"], **settings)
        times = []
        for _ in range(steps):
            run_iteration(rt)
            times.append(sum(rt.step_durations.values()))
            if not rt.venue.advance():
                break
        sent = rt.events.delivery.sent if rt.events.delivery else 0
        rt.events.close()
        return times, sent, rt.events.failures


def figures(runs: list[tuple[list[float], int, int]]) -> dict:
    times = [ms for run_times, _, _ in runs for ms in run_times]
    return {"iterations": len(times), "mean_ms": round(statistics.fmean(times), 3),
            "median_ms": round(statistics.median(times), 3),
            "sent": sum(r[1] for r in runs), "failures": sum(r[2] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="iterations of each run")
    parser.add_argument("--url", help="the unreachable URL (default: a closed local port)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # each failure logs a warning: not the figure
    url = args.url or f"json://127.0.0.1:{closed_port()}/hook"
    notifying = {"NOTIFY_URLS": url, "NOTIFY_EVENTS": "all", "NOTIFY_MIN_INTERVAL_SECONDS": 0}
    runs: dict[str, list] = {"without": [], "unreachable": []}
    for name in ("without", "unreachable", "unreachable", "without"):
        runs[name].append(run(args.steps, **(notifying if name == "unreachable" else {})))
    without, unreachable = figures(runs["without"]), figures(runs["unreachable"])
    # the same candles give the same trades with or without notifications, so iteration i
    # does the same work in both: its ratio is free of the flat/holding mix of a run's times
    paired = [u / w for (w_times, _, _), (u_times, _, _) in zip(
        runs["without"], runs["unreachable"], strict=True)
        for w, u in zip(w_times, u_times, strict=True) if w > 0]
    print(json.dumps({
        "without": without, "unreachable": unreachable,
        "ratio_mean": round(unreachable["mean_ms"] / without["mean_ms"], 3),
        "ratio_median_paired": round(statistics.median(paired), 3),
    }, indent=2))


if __name__ == "__main__":
    main()
