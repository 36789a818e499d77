"""Feeds: bad replay input is named, symbols step in lockstep, nothing from the future leaks."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bot.venue.base import VenueError
from bot.venue.feeds import FeedError, LiveFeed, ReplayFeed, SyntheticFeed, price_level
from tests.conftest import CCXT_FIXTURES, candle_file

FIVE_MIN = 300_000
T0 = 1_672_531_200_000  # 2023-01-01 00:00 UTC: test files start here, timestamps relative
HEADER = "timestamp,open,high,low,close,volume\n"


def write_csv(path: Path, rows: list[tuple[float, ...]], header: str = HEADER) -> Path:
    path.write_text(header + "".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def flat_rows(timestamps: list[int], price: float = 100.0) -> list[tuple[float, ...]]:
    """Flat candles at ``T0 + ts`` for each ``ts``."""
    return [(T0 + ts, price, price + 1, price - 1, price, 10.0) for ts in timestamps]


# --- replay input errors ----------------------------------------------------------------


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="BTC_USDT-5m.csv: no such candle file"):
        ReplayFeed([tmp_path / "BTC_USDT-5m.csv"])


def test_wrong_header_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "BTC_USDT-5m.csv", flat_rows([0]), header="ts,o,h,l,c,v\n")
    with pytest.raises(FeedError, match=r"BTC_USDT-5m.csv row 1: header"):
        ReplayFeed([path])


def test_wrong_column_count_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(HEADER + f"{T0},1,2,0.5,1,10\n{T0 + FIVE_MIN},1,2,0.5,1\n")
    with pytest.raises(FeedError, match=r"BTC_USDT-5m.csv row 3: expected 6 columns"):
        ReplayFeed([path], warmup=1)


def test_non_number_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-5m.csv"
    path.write_text(HEADER + f"{T0},1,2,0.5,1,10\n{T0 + FIVE_MIN},1,abc,0.5,1,10\n")
    with pytest.raises(FeedError, match=r"row 3"):
        ReplayFeed([path], warmup=1)


@pytest.mark.parametrize(
    ("timestamps", "what", "row"),
    [([0, 600_000, 300_000], "unsorted", 4), ([0, 300_000, 300_000], "duplicate", 4)],
)
def test_unsorted_or_duplicate_timestamps_name_the_row(
    tmp_path: Path, timestamps: list[int], what: str, row: int
) -> None:
    path = write_csv(tmp_path / "BTC_USDT-5m.csv", flat_rows(timestamps))
    with pytest.raises(FeedError, match=rf"BTC_USDT-5m.csv row {row}: {what} timestamp"):
        ReplayFeed([path], warmup=1)


def test_files_without_overlap_are_refused(tmp_path: Path) -> None:
    a = write_csv(tmp_path / "BTC_USDT-5m.csv", flat_rows([0, FIVE_MIN]))
    b = write_csv(tmp_path / "ETH_USDT-5m.csv", flat_rows([10 * FIVE_MIN, 11 * FIVE_MIN]))
    with pytest.raises(FeedError, match="do not overlap"):
        ReplayFeed([a, b], warmup=1)


def test_bad_file_name_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "btcusdt.csv", flat_rows([0, FIVE_MIN]))
    with pytest.raises(FeedError, match="BASE_QUOTE-5m.csv"):
        ReplayFeed([path], warmup=1)


def test_feed_errors_are_venue_errors() -> None:
    assert issubclass(FeedError, VenueError)


# --- replay behaviour ----------------------------------------------------------------------


def test_lockstep_on_union_of_timestamps_with_gaps(tmp_path: Path) -> None:
    btc = flat_rows([i * FIVE_MIN for i in (0, 1, 2, 4, 5)], 100.0)
    eth = flat_rows([i * FIVE_MIN for i in (0, 1, 3, 5)], 10.0)
    a = write_csv(tmp_path / "BTC_USDT-5m.csv", btc)
    b = write_csv(tmp_path / "ETH_USDT-5m.csv", eth)
    feed = ReplayFeed([a, b], warmup=1)
    assert feed.symbols == ["BTC/USDT", "ETH/USDT"]
    seen: list[tuple[int, bool, bool]] = []
    while True:
        btc, eth = feed.current_candle("BTC/USDT"), feed.current_candle("ETH/USDT")
        seen.append(((feed.now_ms() - T0) // FIVE_MIN, btc is not None, eth is not None))
        if not feed.advance():
            break
    assert seen == [
        (1, True, True), (2, True, True), (3, True, False), (4, False, True),
        (5, True, False), (6, True, True),
    ]
    assert [(c[0] - T0) // FIVE_MIN for c in feed.candles("ETH/USDT", "5m")] == [0, 1, 3, 5]


@pytest.mark.parametrize("until_step", [None, 3, 4, 6, 9])
def test_remaining_steps_count_what_a_replay_to_that_end_runs(
    tmp_path: Path, until_step: int | None,
) -> None:
    """The progress bar's total: a replay stops after the step whose clock reaches its end."""
    feed = ReplayFeed([write_csv(tmp_path / "BTC_USDT-5m.csv",
                                 flat_rows([i * FIVE_MIN for i in (0, 1, 2, 4, 5, 7)]))], warmup=1)
    until_ms = None if until_step is None else T0 + until_step * FIVE_MIN
    expected = feed.remaining_steps(until_ms) + 1
    ran = 1
    while not (until_ms is not None and feed.now_ms() >= until_ms) and feed.advance():
        ran += 1
    assert ran == expected


def test_candles_never_include_the_future() -> None:
    feed = ReplayFeed([candle_file("BTC_USDT-5m.csv")], warmup=200)
    assert len(feed.candles("BTC/USDT", "5m")) == 200
    for _ in range(400):
        now = feed.now_ms()
        for timeframe, ms in (("5m", FIVE_MIN), ("1h", 3_600_000), ("4h", 14_400_000)):
            got = feed.candles("BTC/USDT", timeframe, limit=30)
            assert got and all(c[0] + ms <= now for c in got)
            assert got[-1][0] + 2 * ms > now  # the latest closed candle is included
        assert feed.current_candle("BTC/USDT") == feed.candles("BTC/USDT", "5m", limit=1)[0]
        feed.advance()


def test_aggregation_matches_the_base_candles() -> None:
    feed = ReplayFeed([candle_file("BTC_USDT-5m.csv")], warmup=500)
    hour = feed.candles("BTC/USDT", "1h", limit=3)[0]
    parts = feed.candles("BTC/USDT", "5m", since_ms=int(hour[0]), limit=12)
    assert all(hour[0] <= c[0] < hour[0] + 3_600_000 for c in parts)
    assert hour[1] == parts[0][1] and hour[4] == parts[-1][4]
    assert hour[2] == max(c[2] for c in parts) and hour[3] == min(c[3] for c in parts)
    assert hour[5] == pytest.approx(sum(c[5] for c in parts))
    assert feed.candles("BTC/USDT", "1h", limit=5)[-2:] == feed.candles(
        "BTC/USDT", "1h", since_ms=int(feed.candles("BTC/USDT", "1h", limit=2)[0][0])
    )


def test_polling_since_the_last_candle_sees_each_candle_once(tmp_path: Path) -> None:
    """The poll between two closes answers without aggregating; it must miss nothing, also
    on a file whose candles are not aligned to the epoch."""
    aligned = candle_file("BTC_USDT-5m.csv")
    shifted = write_csv(tmp_path / "ETH_USDT-5m.csv",
                        flat_rows([7_000 + i * FIVE_MIN for i in range(400)]))
    for path, symbol in ((aligned, "BTC/USDT"), (shifted, "ETH/USDT")):
        feed = ReplayFeed([path], warmup=200)
        seen = {tf: feed.candles(symbol, tf, limit=500) for tf in ("5m", "1h")}
        for _ in range(150):
            feed.advance()
            for timeframe, got in seen.items():
                got += feed.candles(symbol, timeframe, since_ms=int(got[-1][0]) + 1)
                assert got == feed.candles(symbol, timeframe, limit=len(got)), timeframe
            newest = feed.candles(symbol, "5m", since_ms=feed.now_ms() - FIVE_MIN)
            assert newest == seen["5m"][-1:]


def test_seek_restores_the_same_position() -> None:
    feed = ReplayFeed([candle_file("BTC_USDT-5m.csv")])
    for _ in range(50):
        feed.advance()
    stored = feed.now_ms()
    again = ReplayFeed([candle_file("BTC_USDT-5m.csv")])
    again.seek(stored)
    assert again.candles("BTC/USDT", "5m", limit=3) == feed.candles("BTC/USDT", "5m", limit=3)
    with pytest.raises(FeedError, match="not a step"):
        again.seek(stored + 1)


def test_book_and_ticker_are_plausible() -> None:
    feed = ReplayFeed([candle_file("BTC_USDT-5m.csv")])
    book = feed.book("BTC/USDT", 10)
    last = feed.candles("BTC/USDT", "5m", limit=1)[0][4]
    assert book["bids"][0][0] < last < book["asks"][0][0]
    assert [p for p, _ in book["bids"]] == sorted((p for p, _ in book["bids"]), reverse=True)
    assert [p for p, _ in book["asks"]] == sorted(p for p, _ in book["asks"])
    ticker = feed.ticker("BTC/USDT")
    assert ticker["last"] == last and ticker["timestamp"] == feed.now_ms()
    assert ticker["bid"] == book["bids"][0][0] and ticker["baseVolume"] > 0


# --- synthetic -----------------------------------------------------------------------------

START = 1_764_000_000_000


def make_synthetic(seed: int = 7, clock: list[int] | None = None) -> SyntheticFeed:
    now = clock if clock is not None else [START]
    return SyntheticFeed(["BTC/USDT", "ETH/BTC", "XYZ/USDT"], seed=seed, clock=lambda: now[0])


@pytest.mark.slow
def test_synthetic_is_labelled_deterministic_and_plausible() -> None:
    a, b, other = make_synthetic(), make_synthetic(), make_synthetic(seed=8)
    assert a.kind == "synthetic"
    history = a.candles("BTC/USDT", "1m")
    assert len(history) >= 500 and history[-1][0] + 60_000 <= a.now_ms()
    assert history == b.candles("BTC/USDT", "1m")
    assert history != other.candles("BTC/USDT", "1m")
    for symbol in a.symbols:
        last = a.candles(symbol, "1m", limit=1)[0][4]
        assert 0.5 * price_level(symbol) < last < 2 * price_level(symbol)
        book = a.book(symbol, 5)
        assert book["bids"][0][0] < book["asks"][0][0]
    assert price_level("XYZ/USDT") == 100.0 and price_level("ETH/BTC") < 1


@pytest.mark.slow
def test_synthetic_clock_follows_the_wall_clock() -> None:
    clock = [START + 5_000]
    feed = make_synthetic(clock=clock)
    closed = len(feed.candles("BTC/USDT", "1m"))
    assert feed.current_candle("BTC/USDT") is None
    clock[0] += 20_000
    assert feed.advance()
    part = feed.current_candle("BTC/USDT")
    assert part is not None and part[0] == START + 5_000
    assert len(feed.candles("BTC/USDT", "1m")) == closed  # the minute is still forming
    clock[0] += 60_000
    feed.advance()
    assert len(feed.candles("BTC/USDT", "1m")) == closed + 1
    twin_clock = [START + 5_000]
    twin = make_synthetic(clock=twin_clock)
    twin_clock[0] = clock[0]
    twin.advance()
    assert twin.candles("BTC/USDT", "1m") == feed.candles("BTC/USDT", "1m")


# --- live (real ccxt class, recorded responses) ----------------------------------------------


def _binance_offline() -> tuple[Any, dict[str, Any]]:
    import ccxt

    responses = json.loads((CCXT_FIXTURES / "response" / "binance.json").read_text())
    markets = json.loads((CCXT_FIXTURES / "markets" / "binance.json").read_text())
    for market in markets.values():  # the fixture stores decimal places; ccxt wants tick sizes
        market["precision"] = {
            k: 10.0 ** -v if isinstance(v, int) else v
            for k, v in market.get("precision", {}).items()
        }
    exchange = ccxt.binance({"enableRateLimit": False})
    exchange.options.update(responses.get("options", {}))
    exchange.set_markets(markets)
    cases = {m: responses["methods"][m][0] for m in ("fetchOHLCV", "fetchOrderBook", "fetchTicker")}
    bodies = {"klines": cases["fetchOHLCV"], "depth": cases["fetchOrderBook"],
              "ticker/24hr": cases["fetchTicker"]}

    def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        for fragment, case in bodies.items():
            if fragment in url:
                return copy.deepcopy(case["httpResponse"])
        raise AssertionError(f"unexpected request {url}")

    exchange.fetch = fetch
    return exchange, cases


def test_live_feed_reads_a_real_ccxt_exchange() -> None:
    exchange, cases = _binance_offline()
    expected = cases["fetchOHLCV"]["parsedResponse"]
    now = [expected[-1][0] + 1_800_000]  # the last hourly candle is still forming
    feed = LiveFeed("binance", ["BTC/USDT"], exchange=exchange, clock=lambda: now[0])
    got = feed.candles("BTC/USDT", "1h")
    assert got == [[float(x) for x in c] for c in expected[:-1]]
    book = feed.book("BTC/USDT", 2)
    assert book == {k: cases["fetchOrderBook"]["parsedResponse"][k] for k in ("bids", "asks")}
    ticker = feed.ticker("BTC/USDT")
    assert ticker["last"] == cases["fetchTicker"]["parsedResponse"]["last"]
    assert feed.kind == "live" and feed.descriptor() == {"kind": "live", "exchange": "binance"}


def test_live_feed_maps_network_errors_to_transient() -> None:
    import ccxt

    from bot.venue.base import TransientVenueError

    exchange, _ = _binance_offline()

    def down(*_: Any, **__: Any) -> Any:
        raise ccxt.NetworkError("connection reset")

    exchange.fetch = down
    feed = LiveFeed("binance", ["BTC/USDT"], exchange=exchange)
    with pytest.raises(TransientVenueError, match="connection reset"):
        feed.book("BTC/USDT", 5)


def test_a_stop_the_live_feed_fails_to_judge_is_not_taken(sqlite_url: str) -> None:
    """A stop sent naming since when its hit was seen is judged against candles the live
    feed fetches; a fetch that fails fails the placement whole: nothing rests, and the
    retry with the same client order id is placed (not answered as a duplicate)."""
    import ccxt

    from bot.venue.base import HIT_SEEN_SINCE, TransientVenueError
    from bot.venue.paper import PaperVenue
    from db.engine import make_engine, session_factory
    from db.paper_store import PaperStore

    exchange, _ = _binance_offline()
    answers = exchange.fetch

    def no_candles(url: str, *args: Any, **kwargs: Any) -> Any:
        if "klines" in url:
            raise ccxt.NetworkError("connection reset")
        return answers(url, *args, **kwargs)

    feed = LiveFeed("binance", ["BTC/USDT"], exchange=exchange)
    venue = PaperVenue(feed, PaperStore(session_factory(make_engine(sqlite_url)), "default"))
    venue.create_order("BTC/USDT", "market", "buy", 0.001)
    stop = {"stopPrice": 1.0, HIT_SEEN_SINCE: 0, "clientOrderId": "td-stop"}
    exchange.fetch = no_candles
    with pytest.raises(TransientVenueError, match="connection reset"):
        venue.create_order("BTC/USDT", "market", "sell", 0.001, params=stop)
    assert venue.fetch_open_orders() == []
    exchange.fetch = answers
    placed = venue.create_order("BTC/USDT", "market", "sell", 0.001, params=stop)
    assert [o["id"] for o in venue.fetch_open_orders()] == [placed["id"]]
