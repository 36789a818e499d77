"""Replay one live day and diff it against what happened live.

The live session's candles (its shortest timeframe per symbol, with the warm-up its run
stored before them) are written as replay candle files, replayed with the live run's
recorded settings and its LLM recording into a scratch database, and the two days are
compared: decisions matched by the candle they followed, fills, realized PnL, fees and net
PnL, each difference in words.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bot.replay import ReplayArgs, run_replay
from bot.steps.market_data import FIRST_FETCH_CANDLES
from bot.venue.feeds import FeedError, timeframe_ms
from bot.venue.feeds.candle_files import HEADER
from db.bots import bot_id
from db.engine import make_engine, session_factory
from db.live_diff import (
    day_sessions,
    decisions,
    fills,
    first_step,
    stored_candles,
    thinned_holds,
)
from db.models import Trade
from db.sessions import find_session

# what says where or against what a run traded, not how it decides: the replay has its own
NOT_REPLAYED = frozenset({
    "prompt_version", "feed", "feed_seed", "feed_exchange", "exchange", "exchange_sandbox",
    "trading_mode", "live_trading_confirmed", "symbols", "llm_recording", "starting_balance",
    "start", "end", "llm_provider"})
PRICE_TOLERANCE_PCT = 1e-6


class LiveDiffError(Exception):
    """A bad input to ``replay-live``: its message names it."""


@dataclass(frozen=True)
class LiveDay:
    session_id: int
    settings: dict[str, Any]
    starting_balance: float
    candles: dict[str, tuple[str, list[tuple]]]  # symbol -> (timeframe, rows)
    first_step: datetime | None
    # decided steps whose trace retention deleted (its holds that cost nothing): the day's
    # decisions are compared as retention left them
    holds_gone: int = 0


def load_live_day(url: str, bot: str, day: date) -> LiveDay:
    """The live session of ``bot`` on ``day`` and what its replay needs, or a named error."""
    with session_factory(make_engine(url))() as db:
        if bot_id(db, bot) is None:
            raise LiveDiffError(f"unknown bot {bot!r} on this database")
        session = find_session(db, "live", bot, day)
        if session is None:
            raise LiveDiffError(f"bot {bot!r} has no live session on {day.isoformat()}")
        if not session.settings:
            raise LiveDiffError(f"the live session of {bot!r} on {day.isoformat()} recorded "
                                "no settings (written before they were): it cannot be replayed")
        series = stored_candles(db, session.id, FIRST_FETCH_CANDLES)
        made = decisions(db, [session.id])
        first = first_step(db, session.id) or (made[0][0] if made else None)
        holds_gone = thinned_holds(db, session.id)
    shortest: dict[str, tuple[str, list[tuple]]] = {}
    for (symbol, timeframe), rows in series.items():
        if symbol not in shortest or timeframe_ms(timeframe) < timeframe_ms(shortest[symbol][0]):
            shortest[symbol] = (timeframe, rows)
    if not shortest:
        raise LiveDiffError(f"the live session of {bot!r} on {day.isoformat()} stored no candles")
    return LiveDay(session.id, json.loads(session.settings), session.starting_balance, shortest,
                   first, holds_gone)


def write_candle_files(day: LiveDay, folder: Path) -> list[Path]:
    """The day's candles as replay files (``BTC_USDT-5m.csv``), millisecond timestamps."""
    paths = []
    for symbol, (timeframe, rows) in day.candles.items():
        path = folder / f"{symbol.replace('/', '_')}-{timeframe}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for when, *ohlcv in rows:
                writer.writerow([int(when.timestamp() * 1000), *ohlcv])
        paths.append(path)
    return paths


def recording_of(day: LiveDay, bot: str, given: Path | None) -> Path | None:
    """The LLM answers to serve the replay from: ``given``, else the live run's own file; None
    for the rules engine, which asks nothing (a file given for it is refused: it would serve
    nothing)."""
    if day.settings.get("llm_provider", "rules") == "rules":
        if given is not None:
            raise LiveDiffError(f"--recording: bot {bot!r} decided its day with the rules "
                                "engine, which asks no model: leave --recording out")
        return None
    path = given or Path(day.settings.get("llm_recording") or f"data/llm-answers/{bot}.jsonl")
    if not path.is_file():
        raise LiveDiffError(f"no LLM recording at {path}: without the live answers the replay "
                            "would ask the model again (give --recording FILE)")
    return path


def replay_overrides(settings: dict[str, Any]) -> dict[str, object]:
    """The live run's recorded settings as the replay's, by their environment names."""
    return {name.upper(): ",".join(map(str, value)) if isinstance(value, list) else value
            for name, value in settings.items()
            if name not in NOT_REPLAYED and value is not None}


def replay_live(url: str, bot: str, day: date, recording: Path | None = None) -> dict[str, Any]:
    """Replay the live day into a scratch database and return the diff."""
    live = load_live_day(url, bot, day)
    served = recording_of(live, bot, recording)
    with tempfile.TemporaryDirectory(prefix="replay-live-") as tmp:
        folder = Path(tmp)
        scratch = f"sqlite:///{folder / 'replay.db'}"
        run_replay(ReplayArgs(
            candles=write_candle_files(live, folder), db_url=scratch,
            engine=live.settings.get("llm_provider", "rules"), start=live.first_step,
            balance=live.starting_balance, recording=served,
            overrides=replay_overrides(live.settings)), progress=False)
        thinned = live.holds_gone > 0
        with session_factory(make_engine(url))() as db:
            live_decisions = decisions(db, [live.session_id], as_thinned=thinned)
            live_fills = fills(db, [live.session_id])
        with session_factory(make_engine(scratch))() as db:
            ids = [s.id for s in day_sessions(db, "replay", day)]
            replay_decisions, replay_fills = decisions(db, ids, as_thinned=thinned), fills(db, ids)
    base_ms = min(timeframe_ms(tf) for tf, _ in live.candles.values())
    compared = diff_decisions(live_decisions, replay_decisions, base_ms)
    if thinned:
        compared["words"].insert(0, (
            f"the live day was thinned by retention (RETAIN_DAYS, python -m bot prune): "
            f"{live.holds_gone} of its decisions that caused nothing are gone, so only those "
            "that caused an order, a fill or a plan (or cost something) are compared"))
    return {"bot": bot, "day": day.isoformat(),
            "decisions": compared,
            "fills": diff_fills(live_fills, replay_fills),
            "pnl": diff_pnl(live_fills, replay_fills)}


def _actions(decision_json: str | None) -> list[str]:
    """A decision as its actions (``BUY BTC/USDT``); a decision with none holds."""
    try:
        actions = json.loads(decision_json or "{}").get("actions") or []
    except (ValueError, AttributeError):
        return ["unreadable"]
    return [" ".join(str(a.get(k)) for k in ("action", "symbol") if a.get(k)) for a in actions] \
        or ["HOLD"]


def _candle(when: datetime, base_ms: int) -> datetime:
    """The close of the candle a decision followed: a replay decides at each close, a live
    loop at any time after it."""
    ms = int(when.timestamp() * 1000) // base_ms * base_ms
    return datetime.fromtimestamp(ms / 1000, UTC)


Decided = tuple[datetime, str | None, str | None]  # time, decision JSON, request hash


def diff_decisions(live: list[Decided], replay: list[Decided], base_ms: int) -> dict[str, Any]:
    """Decisions matched by the candle they followed: the same actions, different ones, or
    one side's alone (latency: the live loop decides between candles, or more than once).

    A replay decision whose first request live never sent was not served from the recording:
    its prompt differed (other candles, positions or balance), so the model was asked anew.
    """
    sent = {request for _, _, request in live if request}
    asked_anew = sum(1 for _, _, request in replay if request and request not in sent)
    replayed: dict[datetime, list[list[str]]] = {}
    for when, decision, _ in replay:
        replayed.setdefault(_candle(when, base_ms), []).append(_actions(decision))
    steps, same = [], 0
    for when, decision, _ in live:
        at = _candle(when, base_ms)
        live_actions = _actions(decision)
        queue = replayed.get(at)
        clock = when.strftime("%H:%M:%S")
        if not queue:
            steps.append({"time": when.isoformat(), "live": live_actions, "replay": None,
                          "words": f"decision at {clock} missing in the replay: the live loop "
                                   "decided between candles (or again on the same candle)"})
            continue
        replay_actions = queue.pop(0)
        if replay_actions == live_actions:
            same += 1
            steps.append({"time": when.isoformat(), "live": live_actions,
                          "replay": replay_actions, "words": "same"})
        else:
            steps.append({"time": when.isoformat(), "live": live_actions,
                          "replay": replay_actions,
                          "words": f"decision at {clock} differs: live "
                                   f"{', '.join(live_actions)}, replay {', '.join(replay_actions)}"
                                   " (the context differed: fills, positions or the candles "
                                   "seen at that time)"})
    for at, queue in sorted(replayed.items()):
        for actions in queue:
            steps.append({"time": at.isoformat(), "live": None, "replay": actions,
                          "words": f"decision at {at.strftime('%H:%M:%S')} only in the replay: "
                                   "the live loop was not deciding at that candle's close"})
    steps.sort(key=lambda s: s["time"])
    words = [] if not asked_anew else [
        f"{asked_anew} replay decision(s) not served from the recording: their prompt differed "
        "from live's (other candles, positions or balance), so the model was asked anew"]
    return {"live": len(live), "replay": len(replay), "same": same, "asked_anew": asked_anew,
            "steps": steps, "words": words}


def diff_fills(live: list[Trade], replay: list[Trade]) -> dict[str, Any]:
    """Fills side by side in order: count, side, size and price, differences in words."""
    words = []
    if len(live) != len(replay):
        words.append(f"{len(live)} fills live, {len(replay)} in the replay: the decisions "
                     "above differ, or an order filled in parts on the venue's book")
    pairs = []
    for index, (a, b) in enumerate(zip(live, replay, strict=False), 1):
        pair = {"live": _fill(a), "replay": _fill(b)}
        pairs.append(pair)
        if (a.symbol, a.action) != (b.symbol, b.action):
            words.append(f"fill {index}: live {a.action} {a.symbol}, replay {b.action} {b.symbol}")
            continue
        if abs(a.quantity - b.quantity) > 1e-12 * max(abs(a.quantity), 1):
            words.append(f"fill {index} size differs: live {a.quantity:g}, replay {b.quantity:g} "
                         "(sized on an equity that the fills before moved)")
        price_pct = (b.price - a.price) / a.price * 100 if a.price else 0.0
        if abs(price_pct) > PRICE_TOLERANCE_PCT:
            words.append(f"fill {index} price differs by {abs(price_pct):.2f}%: live fills at "
                         "the venue's book, the replay at the candle")
    return {"live": len(live), "replay": len(replay),
            "sides_live": dict(Counter(t.action for t in live)),
            "sides_replay": dict(Counter(t.action for t in replay)),
            "pairs": pairs, "words": words or ["the same fills"]}


def _fill(trade: Trade) -> dict[str, Any]:
    return {"time": trade.timestamp.isoformat(), "symbol": trade.symbol, "side": trade.action,
            "size": trade.quantity, "price": trade.price, "fee": trade.fee}


def diff_pnl(live: list[Trade], replay: list[Trade]) -> dict[str, Any]:
    """Realized PnL, fees and net PnL (realized less fees) of each side, and the gap's cause."""
    def figures(trades: list[Trade]) -> dict[str, float]:
        realized = sum(t.realized_pnl for t in trades)
        fees = sum(t.fee for t in trades)
        return {"realized_pnl": realized, "fees": fees, "net_pnl": realized - fees}

    a, b = figures(live), figures(replay)
    gap = b["net_pnl"] - a["net_pnl"]
    if abs(gap) < 1e-9:
        words = "the same net PnL"
    else:
        words = (f"net PnL differs by {gap:+.4f} (realized {b['realized_pnl'] - a['realized_pnl']:+.4f}"
                 f", fees {b['fees'] - a['fees']:+.4f}): explained by the fills above")
    return {"live": a, "replay": b, "words": words}


def format_diff(diff: dict[str, Any]) -> str:
    """The diff as lines for a terminal."""
    d, f, p = diff["decisions"], diff["fills"], diff["pnl"]
    lines = [f"{diff['bot']} on {diff['day']}: live vs replay",
             f"decisions: {d['live']} live, {d['replay']} replay, {d['same']} the same"]
    lines += [f"  {s['time']}  {s['words']}" for s in d["steps"] if s["words"] != "same"]
    lines += [f"  {w}" for w in d["words"]]
    lines.append(f"fills: {f['live']} live {f['sides_live']}, {f['replay']} replay "
                 f"{f['sides_replay']}")
    lines += [f"  {w}" for w in f["words"]]
    for key in ("realized_pnl", "fees", "net_pnl"):
        lines.append(f"{key.replace('_', ' ')}: live {p['live'][key]:.4f}, "
                     f"replay {p['replay'][key]:.4f}")
    lines.append(f"  {p['words']}")
    return "\n".join(lines)


def run_replay_live(url: str, args: argparse.Namespace) -> int:
    """The command: the diff printed, or a bad input named with exit 2."""
    try:
        day = date.fromisoformat(args.day)
    except ValueError:
        print(f"replay-live input error: --day {args.day!r} is not a date (YYYY-MM-DD)",
              file=sys.stderr)
        return 2
    try:
        diff = replay_live(url, args.bot, day, Path(args.recording) if args.recording else None)
    except (LiveDiffError, FeedError) as exc:
        print(f"replay-live input error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(diff) if args.json else format_diff(diff))
    return 0
