"""Does the strategy earn its fees? The rules engine over a whole candle file, with the
MIN_TARGET_FEE_MULTIPLE rule off (0) and at its default, in one run of this script.

For each: fills per day, gross PnL (before fees), fees as a share of it, net return, and
buy-and-hold over the same candles. Each replay goes into a fresh SQLite file through
``bot.replay.run_replay`` (the real loop, paper venue and risk layer).

    .venv/bin/python bench/fees_bench.py                        # the shared BTC/USDT file
    .venv/bin/python bench/fees_bench.py --multiples 0,3,6      # more settings of the rule
    .venv/bin/python bench/fees_bench.py --candles PATH --json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import Settings  # noqa: E402
from bot.model.timeframes import timeframe_delta  # noqa: E402
from bot.replay import ReplayArgs, run_replay  # noqa: E402
from bot.venue.feeds import ReplayFeed  # noqa: E402

CANDLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "candles"
SETTING = "MIN_TARGET_FEE_MULTIPLE"


def replay(candles: Path, multiple: float, balance: float) -> dict:
    """One replay with the rule at ``multiple`` (replays read it from the environment)."""
    os.environ[SETTING] = repr(multiple)
    try:
        with tempfile.TemporaryDirectory(prefix="fees-bench-") as folder:
            args = ReplayArgs(candles=[candles], db_url=f"sqlite:///{folder}/bench.db",
                              balance=balance)
            started = time.perf_counter()
            summary = run_replay(args, progress=False)
            seconds = time.perf_counter() - started
    finally:
        del os.environ[SETTING]
    days = summary["candles"] * timeframe_delta(ReplayFeed([candles]).base_timeframe) / (
        timeframe_delta("1d"))
    gross = summary["net_pnl"] + summary["fees"] + summary["llm_cost"]
    return {
        "multiple": multiple, "days": round(days, 2), "fills": summary["trades"],
        "fills_per_day": round(summary["trades"] / days, 2), "gross_pnl": round(gross, 2),
        "fees": round(summary["fees"], 2),
        # a share of a loss means nothing: the fees then only add to it
        "fees_pct_of_gross": round(summary["fees"] / gross * 100, 1) if gross > 0 else None,
        "net_pnl": round(summary["net_pnl"], 2), "return_pct": round(summary["return_pct"], 2),
        "buy_and_hold_pct": round(summary["buy_and_hold_pct"], 2),
        "win_rate": summary["win_rate"], "fingerprint": summary["fingerprint"],
        "seconds": round(seconds, 1),
    }


def main() -> int:
    default = Settings.model_fields["min_target_fee_multiple"].default
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=Path, default=CANDLES / "BTC_USDT-5m.csv")
    parser.add_argument("--balance", type=float, default=10_000.0,
                        help="starting balance, in the pair's quote currency")
    parser.add_argument("--multiples", default=f"0,{default:g}",
                        help=f"{SETTING} values, comma-separated; 0 is the rule off")
    parser.add_argument("--json", action="store_true", help="one JSON object per replay")
    options = parser.parse_args()
    if SETTING in os.environ:
        parser.error(f"unset {SETTING}: this bench sets it for each replay")
    logging.basicConfig(level=logging.WARNING)
    multiples = [float(part) for part in options.multiples.split(",") if part.strip()]
    for multiple in multiples:
        result = replay(options.candles, multiple, options.balance)
        if options.json:
            print(json.dumps(result))
            continue
        share = (f"{result['fees_pct_of_gross']}% of gross PnL"
                 if result["fees_pct_of_gross"] is not None else "gross PnL not positive")
        rule = "off" if multiple == 0 else f"{multiple:g}"
        print(f"{options.candles.name}, {SETTING} {rule}: {result['fills_per_day']} fills/day "
              f"({result['fills']} over {result['days']} days), gross PnL "
              f"{result['gross_pnl']:,.2f}, fees {result['fees']:,.2f} ({share}), "
              f"net {result['net_pnl']:,.2f} = {result['return_pct']}% "
              f"(buy-and-hold {result['buy_and_hold_pct']}%), win rate "
              f"{result['win_rate']}%, fingerprint {result['fingerprint']}, "
              f"{result['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
