"""Input tokens per decision for 1 and 5 symbols, and how often the budget cuts the prompt.

Issue 5 sets a default budget of 3,000 input tokens for five symbols, and issue 20 has
their whole context fit it, the cut staying as a safety net. This replays the
first candles of real data with the rules engine into a fresh SQLite file, then rebuilds
the decision context at sampled decision times from that database (``build_context``, as
the loop does) and measures the prompt with ``render_prompt`` (without and with the
Gemini tool declarations), plus what ``render_prompt`` had to cut to stay in budget.

Five symbols: only four candle files exist and they do not overlap in time, so the five
are copies of ``BTC_USDT-5m.csv`` at different price scales (digits are tokens, so the
scale matters), replayed in lockstep. ``uncut`` is the prompt with no budget at all (its
mean and its largest).

    .venv/bin/python bench/tokens_bench.py [--steps 300] [--every 10] [--json]
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

from sqlalchemy import select  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.decision_context import build_context  # noqa: E402
from bot.engine.prompt import estimate_input_tokens, render_prompt  # noqa: E402
from bot.replay import ReplayArgs, run_replay  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from db.engine import make_engine, session_factory  # noqa: E402
from db.models import LLMTrace  # noqa: E402
from db.traces import execution_result  # noqa: E402

CANDLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "candles"
FIVE = {"BTC_USDT": 1.0, "ETH_USDT": 0.07, "SOL_USDT": 0.0021, "XRP_USDT": 2e-5,
        "DOGE_USDT": 25.0}


def scaled_copy(source: Path, target: Path, factor: float) -> Path:
    lines = source.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        ts, *prices, volume = line.split(",")
        out.append(",".join([ts, *(f"{float(p) * factor:.8g}" for p in prices), volume]))
    target.write_text("\n".join(out) + "\n")
    return target


def measure(files: list[Path], folder: Path, steps: int, every: int) -> dict:
    url = f"sqlite:///{folder}/tokens-{len(files)}.db"
    seen: list[Settings] = []

    def keep_settings(rt: Runtime) -> None:
        if not seen:
            seen.append(rt.settings)

    run_replay(ReplayArgs(candles=files, db_url=url), progress=False, observer=keep_settings,
               max_steps=steps)
    settings = seen[0]
    engine = make_engine(url)
    tokens, with_tools, uncut, cut_prompts, cut_candles, cut_with_tools = [], [], [], 0, [], 0
    with session_factory(engine)() as db:
        traces = list(db.execute(select(LLMTrace.session_id, LLMTrace.created_at,
                                        LLMTrace.execution_result).order_by(LLMTrace.id)))
        for session_id, when, execution in traces[::every]:
            result = json.loads(execution_result(db, session_id, when, execution) or "{}")
            equity = float(result.get("equity", settings.starting_balance))
            context = build_context(db, settings, session_id, when, equity, equity)
            tokens.append(estimate_input_tokens(context, settings))
            tooled = render_prompt(context, settings, tools=True)
            with_tools.append(tooled.tokens)
            cut_with_tools += bool(tooled.cut)
            prompt = render_prompt(context, settings)
            uncut.append(render_prompt(context, settings, budget=10**9).tokens)
            if prompt.cut:
                cut_prompts += 1
            cut_candles.append(sum(int(part.split(": ")[1].split()[0]) for part in prompt.cut
                                   if "oldest candles" in part))
    engine.dispose()
    return {
        "symbols": len(files), "timeframes": list(settings.timeframes),
        "budget": settings.prompt_token_budget, "decisions": len(tokens),
        "tokens_mean": round(statistics.mean(tokens)), "tokens_min": min(tokens),
        "tokens_max": max(tokens), "tokens_with_tools_mean": round(statistics.mean(with_tools)),
        "tokens_per_symbol": round(statistics.mean(tokens) / len(files)),
        "tokens_uncut_mean": round(statistics.mean(uncut)), "tokens_uncut_max": max(uncut),
        "prompts_cut_pct": round(cut_prompts / len(tokens) * 100, 1),
        "prompts_cut_with_tools_pct": round(cut_with_tools / len(tokens) * 100, 1),
        "candles_cut_mean": round(statistics.mean(cut_candles), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="candles to replay per case")
    parser.add_argument("--every", type=int, default=10, help="measure every n-th decision")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    source = CANDLES / "BTC_USDT-5m.csv"
    with tempfile.TemporaryDirectory(prefix="tokens-bench-") as name:
        folder = Path(name)
        five = [scaled_copy(source, folder / f"{symbol}-5m.csv", factor)
                for symbol, factor in FIVE.items()]
        for files in ([source], five):
            result = measure(files, folder, options.steps, options.every)
            if options.json:
                print(json.dumps(result))
                continue
            print(f"{result['symbols']} symbol(s), timeframes {','.join(result['timeframes'])}: "
                  f"{result['tokens_mean']} input tokens per decision (min {result['tokens_min']}, "
                  f"max {result['tokens_max']}; {result['tokens_with_tools_mean']} with the "
                  f"tool declarations), {result['tokens_per_symbol']} per symbol, "
                  f"{result['tokens_uncut_mean']} uncut (max {result['tokens_uncut_max']}); budget "
                  f"{result['budget']}: {result['prompts_cut_pct']} % of prompts cut "
                  f"({result['prompts_cut_with_tools_pct']} % with the tools), "
                  f"{result['candles_cut_mean']} candles cut on average "
                  f"({result['decisions']} decisions measured)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
