"""CcxtVenue over real ccxt exchange classes, fed recorded exchange HTTP responses.

ccxt builds, signs and parses every request here as in production; only the network is
replaced, either after signing (``replay_fetch``) or at the transport (``FakeTransport``)
so that ccxt's own HTTP error mapping runs too.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import ccxt
import pytest
import requests
from ccxt_replay import (
    API_KEY,
    PASSWORD,
    SECRET,
    FakeTransport,
    assert_matches,
    case,
    fixtures_dir,
    make_exchange,
    mount,
    replay_fetch,
    skip_keys,
)

from bot.config import ConfigError, Settings
from bot.venue.base import (
    AccessRefused,
    DuplicateOrder,
    OrderNotFound,
    OrderRejected,
    TransientVenueError,
    Venue,
    VenueError,
)
from bot.venue.ccxt_venue import CcxtVenue

SECRETS = (API_KEY, SECRET, PASSWORD)
CLIENT_ID = "td1a2b3c4d5e6f"
LIVE = {"TRADING_MODE": "LIVE", "LIVE_TRADING_CONFIRMED": True}  # an exchange's real money


@pytest.fixture(autouse=True)
def _fixtures() -> None:
    fixtures_dir()


class Clock:
    """A settable wall clock, so the daily markets refresh can be stepped over."""

    def __init__(self) -> None:
        self.value = datetime(2026, 1, 5, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.value


def venue_for(
    exchange_id: str, symbols: tuple[str, ...] = (), **kwargs: Any
) -> tuple[CcxtVenue, ccxt.Exchange]:
    exchange = make_exchange(exchange_id)
    sleeps: list[float] = []
    venue = CcxtVenue(exchange, symbols, sleep=sleeps.append, **kwargs)
    venue.sleeps = sleeps  # type: ignore[attr-defined]
    return venue, exchange


def assert_no_secret(error: BaseException) -> None:
    text = str(error) + repr(error)
    for secret in SECRETS:
        assert secret not in text
    assert error.__cause__ is None and error.__context__ is None


# --- reads, compared with ccxt's own expected parse of the recorded body

READS = [
    ("binance", "fetchTicker", "fetch_ticker", None),
    ("kraken", "fetchTicker", "fetch_ticker", None),
    ("gemini", "fetchTicker", "fetch_ticker", "public spot ticker"),
    ("binance", "fetchOrderBook", "fetch_order_book", "spot orderbook"),
    ("binance", "fetchOHLCV", "fetch_ohlcv", "Spot OHLCV with since and limit"),
    ("kraken", "fetchOHLCV", "fetch_ohlcv", None),
    ("gemini", "fetchOHLCV", "fetch_ohlcv", None),
    ("binance", "fetchBalance", "fetch_balance", "Spot balance"),
    ("binance", "fetchOpenOrders", "fetch_open_orders", "Fetch spot open orders"),
    ("binance", "fetchOrder", "fetch_order", "Fetch spot closed order"),
    ("binance", "fetchMyTrades", "fetch_my_trades", "Spot private trade"),
    ("kraken", "fetchOpenOrders", "fetch_open_orders", "open take-profit market order"),
]


@pytest.mark.parametrize(("exchange_id", "method", "call", "description"), READS)
def test_reads_return_ccxt_unified_shapes(
    exchange_id: str, method: str, call: str, description: str | None
) -> None:
    recorded = case(exchange_id, method, description)
    venue, exchange = venue_for(exchange_id)
    sent = replay_fetch(exchange, recorded["httpResponse"])
    args = recorded["input"]
    if call in ("fetch_open_orders", "fetch_my_trades"):
        args = args[:1]  # the venue takes the symbol only; limit is ccxt-side filtering
    result = getattr(venue, call)(*args)
    assert_matches(recorded["parsedResponse"], result, skip_keys(exchange_id))
    assert len(sent) == 1


def test_venue_satisfies_protocol_and_clock() -> None:
    venue, _ = venue_for("binance")
    assert isinstance(venue, Venue)
    assert venue.name == "binance" and venue.is_paper is False
    assert venue.now().tzinfo is not None and venue.now().utcoffset() == timedelta(0)
    assert venue.advance() is True
    assert venue.describe_fill_model() == {
        "venue": "binance", "fills": "real exchange", "sandbox": False,
    }


def test_markets_loaded_once_then_refreshed_daily(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    venue, exchange = venue_for("kraken", clock=clock)
    reloads: list[bool] = []

    def load_markets(reload: bool = False) -> dict[str, Any]:
        reloads.append(reload)
        return exchange.markets

    monkeypatch.setattr(exchange, "load_markets", load_markets)
    replay_fetch(exchange, case("kraken", "fetchTicker")["httpResponse"])
    venue.fetch_ticker("BTC/USDT")
    clock.value += timedelta(hours=23)
    venue.fetch_ticker("BTC/USDT")
    assert reloads == []
    clock.value += timedelta(hours=2)
    venue.fetch_ticker("BTC/USDT")
    venue.fetch_ticker("BTC/USDT")
    assert reloads == [True]


def test_failed_daily_refresh_keeps_old_markets(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    venue, exchange = venue_for("kraken", clock=clock)
    replay_fetch(exchange, case("kraken", "fetchTicker")["httpResponse"])
    attempts: list[bool] = []

    def load_markets(reload: bool = False) -> None:
        attempts.append(reload)
        raise ccxt.NetworkError("kraken GET https://api.kraken.com/0/public/AssetPairs")

    monkeypatch.setattr(exchange, "load_markets", load_markets)
    clock.value += timedelta(days=2)
    assert venue.fetch_ticker("BTC/USDT")["symbol"] == "BTC/USDT"
    assert len(attempts) == 3 and len(venue.sleeps) == 2  # type: ignore[attr-defined]
    clock.value += timedelta(minutes=30)
    venue.fetch_ticker("BTC/USDT")
    assert len(attempts) == 3, "a failed refresh is not retried on every call"


def test_markets_missing_and_unreachable_is_transient() -> None:
    exchange = ccxt.kraken({"enableRateLimit": False})
    transport = mount(exchange, FakeTransport((503, "maintenance")))
    venue = CcxtVenue(exchange, ("BTC/USDT",), sleep=lambda _: None)
    with pytest.raises(TransientVenueError, match="load_markets"):
        venue.fetch_ticker("BTC/USDT")
    assert len(transport.sent) == 3


# --- symbol-less order and trade listings


def test_open_orders_without_symbol_iterates_configured_symbols_on_binance() -> None:
    recorded = case("binance", "fetchOpenOrders", "Fetch spot open orders")
    venue, exchange = venue_for("binance", ("LTC/USDT", "BTC/USDT"))
    sent = replay_fetch(exchange, recorded["httpResponse"], [])
    orders = venue.fetch_open_orders()
    assert [s.params()["symbol"] for s in sent] == ["LTCUSDT", "BTCUSDT"]
    assert_matches(recorded["parsedResponse"], orders, skip_keys("binance"))


def test_my_trades_without_symbol_iterates_when_ccxt_requires_one() -> None:
    recorded = case("binance", "fetchMyTrades", "Spot private trade")
    venue, exchange = venue_for("binance", ("BTC/USDT", "LTC/USDT"))
    sent = replay_fetch(exchange, [], recorded["httpResponse"])
    trades = venue.fetch_my_trades(since=1_690_000_000_000)
    # a window's pages end with one that brings nothing new: LTC's is read from its trade
    assert [s.params()["symbol"] for s in sent] == ["BTCUSDT", "LTCUSDT", "LTCUSDT"]
    assert [s.params()["startTime"] for s in sent] == [
        "1690000000000", "1690000000000", str(trades[-1]["timestamp"])]
    assert_matches(recorded["parsedResponse"], trades, skip_keys("binance"))


def test_kraken_open_orders_without_symbol_is_one_request() -> None:
    venue, exchange = venue_for("kraken", ("BTC/USDT", "LTC/USDT"))
    sent = replay_fetch(exchange, case("kraken", "fetchOpenOrders")["httpResponse"])
    assert len(venue.fetch_open_orders()) == 1
    assert len(sent) == 1


def test_symbol_needed_and_none_configured_is_an_error() -> None:
    venue, exchange = venue_for("gemini")
    replay_fetch(exchange, [])
    with pytest.raises(VenueError, match="needs a symbol"):
        venue.fetch_my_trades()


# --- create and cancel: the client order id on the wire and on the answer


def test_binance_create_sends_new_client_order_id() -> None:
    recorded = case("binance", "createOrder", "spot +selfTradePrevention +iceberg")
    recorded["httpResponse"]["symbol"] = "ETHUSDT"  # SOL/USDT is not in the recorded markets
    venue, exchange = venue_for("binance")
    transport = mount(exchange, FakeTransport((200, recorded["httpResponse"])))
    order = venue.create_order(
        "ETH/USDT", "limit", "buy", 0.0512345, 2411.237, {"clientOrderId": CLIENT_ID}
    )
    (sent,) = transport.sent
    params = sent.params()
    assert sent.method == "POST" and sent.url.startswith("https://api.binance.com/api/v3/order")
    assert params["newClientOrderId"] == CLIENT_ID and "clientOrderId" not in params
    assert params["quantity"] == "0.0512" and params["price"] == "2411.24"
    assert order["id"] == "9780331417" and order["symbol"] == "ETH/USDT"
    assert order["clientOrderId"] == recorded["httpResponse"]["clientOrderId"]


def test_kraken_create_sends_cl_ord_id_and_keeps_it_on_the_order() -> None:
    recorded = case("kraken", "createOrder", "create order")
    venue, exchange = venue_for("kraken")
    sent = replay_fetch(exchange, recorded["httpResponse"])
    order = venue.create_order(
        "LTC/USDT", "market", "buy", 0.1, None, {"clientOrderId": CLIENT_ID}
    )
    assert sent[0].params()["cl_ord_id"] == CLIENT_ID
    assert sent[0].params()["volume"] == "0.1"
    assert recorded["parsedResponse"]["clientOrderId"] is None  # kraken does not echo it
    assert order["clientOrderId"] == CLIENT_ID
    assert_matches({**recorded["parsedResponse"], "clientOrderId": CLIENT_ID}, order)


def test_gemini_create_sends_client_order_id_in_signed_payload() -> None:
    # Body in the shape of gemini's createOrder answer as quoted in ccxt's gemini.py.
    answer = {
        "order_id": "106027397702", "id": "106027397702", "symbol": "ethusd",
        "exchange": "gemini", "avg_execution_price": "0.00", "side": "buy",
        "type": "exchange limit", "timestamp": "1650398122", "timestampms": 1650398122308,
        "is_live": True, "is_cancelled": False, "is_hidden": False, "was_forced": False,
        "executed_amount": "0", "options": [], "price": "2800.00",
        "original_amount": "0.014434", "remaining_amount": "0.014434",
    }
    venue, exchange = venue_for("gemini")
    transport = mount(exchange, FakeTransport((200, answer)))
    order = venue.create_order(
        "ETH/USD", "limit", "buy", 0.014434, 2800, {"clientOrderId": CLIENT_ID}
    )
    payload = json.loads(base64.b64decode(transport.sent[0].headers["X-GEMINI-PAYLOAD"]))
    assert payload["client_order_id"] == CLIENT_ID and payload["symbol"] == "ethusd"
    assert order["id"] == "106027397702" and order["clientOrderId"] == CLIENT_ID


def test_kraken_cancel_by_client_order_id_matches_recording() -> None:
    recorded = case("kraken", "cancelOrder")
    venue, exchange = venue_for("kraken")
    sent = replay_fetch(exchange, recorded["httpResponse"])
    result = exchange.cancel_order(*recorded["input"])
    assert_matches(recorded["parsedResponse"], result)
    sent.clear()
    assert venue.cancel_order("O45M52-BFD55-YXKQOU", "BTC/USD")["info"]["result"]["count"]
    assert sent[0].params()["txid"] == "O45M52-BFD55-YXKQOU"


# --- refusals before sending


def test_unknown_symbol_refused_without_any_request() -> None:
    venue, exchange = venue_for("kraken")
    transport = mount(exchange, FakeTransport(AssertionError("no request may be sent")))
    with pytest.raises(OrderRejected, match="BadSymbol"):
        venue.create_order("NOPE/USDT", "limit", "buy", 1, 1, {"clientOrderId": "x"})
    assert transport.sent == []


@pytest.mark.parametrize(
    ("amount", "price", "reason"),
    [
        (0.000001, 60_000.0, "minimum amount"),
        (0.0000001, 60_000.0, "minimum amount"),  # rounds to zero lots
        (0.00002, 100.0, "minimum cost"),
    ],
)
def test_below_minimum_refused_without_any_request(
    amount: float, price: float, reason: str
) -> None:
    venue, exchange = venue_for("binance")
    transport = mount(exchange, FakeTransport(AssertionError("no request may be sent")))
    with pytest.raises(OrderRejected, match=reason):
        venue.create_order("BTC/USDT", "limit", "buy", amount, price, {"clientOrderId": "x"})
    assert transport.sent == []


def test_market_order_cost_checked_against_last_ticker_price() -> None:
    venue, exchange = venue_for("binance")
    replay_fetch(exchange, {**case("binance", "fetchTicker")["httpResponse"],
                            "lastPrice": "100.0"})
    venue.fetch_ticker("BTC/USDT")
    transport = mount(exchange, FakeTransport(AssertionError("no request may be sent")))
    exchange.fetch = type(exchange).fetch.__get__(exchange)
    with pytest.raises(OrderRejected, match=r"0\.002 .*minimum cost 5"):
        venue.create_order("BTC/USDT", "market", "sell", 0.00002)
    assert transport.sent == []


# --- errors through ccxt's own HTTP error mapping

BINANCE_INSUFFICIENT = (
    400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}
)
BINANCE_DUPLICATE = (400, {"code": -2010, "msg": "Duplicate order sent."})
BINANCE_KEY_REFUSED = (
    401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
)


@pytest.mark.parametrize(
    ("answer", "expected", "ccxt_name"),
    [
        (BINANCE_INSUFFICIENT, OrderRejected, "InsufficientFunds"),
        (BINANCE_DUPLICATE, DuplicateOrder, "InvalidOrder"),
        ((429, {"code": -1003, "msg": "Too many requests."}), TransientVenueError, None),
        ((418, {"code": -1003, "msg": "Way too many requests; IP banned."}),
         TransientVenueError, None),
        ((503, "<html>Service Unavailable</html>"), TransientVenueError, None),
        ((502, "Bad Gateway"), TransientVenueError, None),
        (BINANCE_KEY_REFUSED, AccessRefused, "AuthenticationError"),
        ((400, {"code": -1121, "msg": "Invalid symbol."}), OrderRejected, "BadSymbol"),
        (requests.exceptions.ReadTimeout("read timed out"), TransientVenueError,
         "RequestTimeout"),
        (requests.exceptions.ConnectionError("refused"), TransientVenueError, "NetworkError"),
    ],
)
def test_binance_create_errors_are_mapped_and_not_retried(
    answer: Any, expected: type[Exception], ccxt_name: str | None
) -> None:
    venue, exchange = venue_for("binance")
    transport = mount(exchange, FakeTransport(answer))
    with pytest.raises(expected, match=ccxt_name) as raised:
        venue.create_order(
            "BTC/USDT", "limit", "buy", 0.001, 60_000, {"clientOrderId": CLIENT_ID}
        )
    assert type(raised.value) is expected
    assert len(transport.sent) == 1, "create_order is never retried inside the venue"
    assert transport.sent[0].params()["newClientOrderId"] == CLIENT_ID
    assert_no_secret(raised.value)


def test_binance_key_refused_after_one_was_taken_is_refused_not_retried() -> None:
    """ccxt raises binance's -2015 as DDoSProtection once a signed request was taken (a key
    revoked while the bot runs, an order without trading permission): still a refused key,
    asked once."""
    venue, exchange = venue_for("binance")
    exchange.options["hasAlreadyAuthenticatedSuccessfully"] = True
    transport = mount(exchange, FakeTransport(BINANCE_KEY_REFUSED))
    with pytest.raises(AccessRefused, match="DDoSProtection.*-2015") as raised:
        venue.fetch_balance()
    assert len(transport.sent) == 1
    assert_no_secret(raised.value)


def test_transient_read_is_retried_with_backoff_then_succeeds() -> None:
    body = case("binance", "fetchTicker")["httpResponse"]
    venue, exchange = venue_for("binance", backoff_seconds=0.5)
    transport = mount(exchange, FakeTransport((503, "busy"), (429, {"code": -1003}), (200, body)))
    assert venue.fetch_ticker("BTC/USDT")["symbol"] == "BTC/USDT"
    assert len(transport.sent) == 3
    assert venue.sleeps == [0.5, 1.0]  # type: ignore[attr-defined]


def test_transient_read_gives_up_after_bounded_attempts() -> None:
    venue, exchange = venue_for("kraken", read_attempts=4)
    transport = mount(exchange, FakeTransport(requests.exceptions.ReadTimeout("slow")))
    with pytest.raises(TransientVenueError, match="RequestTimeout"):
        venue.fetch_order_book("BTC/USDT")
    assert len(transport.sent) == 4


def test_rejections_on_reads_are_not_retried() -> None:
    venue, exchange = venue_for("binance")
    transport = mount(exchange, FakeTransport(
        (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    ))
    with pytest.raises(OrderRejected):
        venue.fetch_balance()
    assert len(transport.sent) == 1


@pytest.mark.parametrize(
    ("exchange_id", "answer", "expected"),
    [
        ("binance", (400, {"code": -2011, "msg": "Unknown order sent."}), OrderNotFound),
        ("kraken", (200, {"error": ["EOrder:Unknown order"]}), OrderNotFound),
        ("kraken", (200, {"error": ["EAPI:Rate limit exceeded"]}), TransientVenueError),
        ("kraken", (200, {"error": ["EGeneral:Internal error"]}), TransientVenueError),
        ("kraken", (200, {"error": ["EService:Unavailable"]}), TransientVenueError),
    ],
)
def test_cancel_errors_are_mapped(
    exchange_id: str, answer: Any, expected: type[Exception]
) -> None:
    venue, exchange = venue_for(exchange_id)
    transport = mount(exchange, FakeTransport(answer))
    with pytest.raises(expected) as raised:
        venue.cancel_order("12345", "BTC/USDT")
    assert len(transport.sent) == 1
    assert_no_secret(raised.value)


def test_kraken_insufficient_funds_is_rejected() -> None:
    venue, exchange = venue_for("kraken")
    mount(exchange, FakeTransport((200, {"error": ["EOrder:Insufficient funds"]})))
    with pytest.raises(OrderRejected, match="InsufficientFunds"):
        venue.create_order("BTC/USDT", "limit", "buy", 0.001, 60_000, {"clientOrderId": "a"})


def test_secrets_echoed_by_the_exchange_are_scrubbed() -> None:
    venue, exchange = venue_for("binance")
    echo = f"Invalid key {API_KEY} / {SECRET} / {PASSWORD}"
    transport = mount(exchange, FakeTransport((400, {"code": -2015, "msg": echo})))
    with pytest.raises(OrderRejected) as raised:
        venue.fetch_balance()
    assert "signature=" in transport.sent[0].url
    assert_no_secret(raised.value)
    assert "signature=***" in str(raised.value) or "signature" not in str(raised.value)
    assert API_KEY not in repr(venue)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ccxt.NetworkError, TransientVenueError),
        (ccxt.RequestTimeout, TransientVenueError),
        (ccxt.RateLimitExceeded, TransientVenueError),
        (ccxt.DDoSProtection, TransientVenueError),
        (ccxt.ExchangeNotAvailable, TransientVenueError),
        (ccxt.OnMaintenance, TransientVenueError),
        (ccxt.InsufficientFunds, OrderRejected),
        (ccxt.InvalidOrder, OrderRejected),
        (ccxt.BadSymbol, OrderRejected),
        (ccxt.PermissionDenied, AccessRefused),
        (ccxt.AuthenticationError, AccessRefused),
        (ccxt.AccountSuspended, AccessRefused),
        (ccxt.DuplicateOrderId, DuplicateOrder),
        (ccxt.OrderNotFound, OrderNotFound),
        (ccxt.ExchangeError, VenueError),
        (ccxt.NotSupported, VenueError),
    ],
)
def test_every_call_maps_ccxt_errors_the_same_way(
    raised: type[ccxt.BaseError], expected: type[VenueError]
) -> None:
    venue, exchange = venue_for("kraken", read_attempts=1)
    message = f"kraken {raised.__name__} {API_KEY}"
    calls = [
        ("fetch_ticker", lambda: venue.fetch_ticker("BTC/USDT")),
        ("fetch_balance", venue.fetch_balance),
        ("cancel_order", lambda: venue.cancel_order("1", "BTC/USDT")),
        ("create_order", lambda: venue.create_order("BTC/USDT", "limit", "buy", 1, 100)),
    ]
    for name, call in calls:
        def fail(*args: Any, **kwargs: Any) -> None:
            raise raised(message)

        setattr(exchange, name, fail)
        with pytest.raises(expected) as error:
            call()
        assert type(error.value) is expected, name
        assert_no_secret(error.value)


# --- construction from settings


def test_from_settings_uses_keys_rate_limit_and_sandbox() -> None:
    settings = Settings(
        EXCHANGE="binance", EXCHANGE_SANDBOX=True, EXCHANGE_API_KEY=API_KEY,
        EXCHANGE_API_SECRET=SECRET, SYMBOLS="BTC/USDT,ETH/USDT",
    )
    venue = CcxtVenue.from_settings(settings)
    exchange = venue.exchange
    assert exchange.apiKey == API_KEY and exchange.secret == SECRET
    assert exchange.enableRateLimit is True
    assert exchange.isSandboxModeEnabled is True and "testnet" in json.dumps(exchange.urls["api"])
    assert venue.describe_fill_model()["sandbox"] is True
    assert venue.symbols == ["BTC/USDT", "ETH/USDT"]
    assert API_KEY not in repr(venue) and SECRET not in repr(venue)


def test_from_settings_without_sandbox_keeps_production_urls() -> None:
    venue = CcxtVenue.from_settings(Settings(EXCHANGE="gemini", **LIVE))
    assert venue.exchange.urls["api"]["public"] == "https://api.gemini.com"
    assert not venue.exchange.apiKey


def test_sandbox_unsupported_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="EXCHANGE_SANDBOX") as raised:
        CcxtVenue.from_settings(
            Settings(EXCHANGE="kraken", EXCHANGE_SANDBOX=True, EXCHANGE_API_SECRET=SECRET)
        )
    assert SECRET not in str(raised.value)


def test_ccxt_request_log_stays_quiet_under_debug(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    venue = CcxtVenue.from_settings(
        Settings(EXCHANGE="binance", EXCHANGE_API_KEY=API_KEY, EXCHANGE_API_SECRET=SECRET,
                 **LIVE)
    )
    markets = make_exchange("binance").markets
    monkeypatch.setattr(venue.exchange, "load_markets", lambda reload=False: markets)
    venue.exchange.set_markets(markets)
    body = case("binance", "fetchBalance", "Spot balance")["httpResponse"]
    transport = mount(venue.exchange, FakeTransport((200, body)))
    venue.fetch_balance()
    assert transport.sent[0].headers["X-MBX-APIKEY"] == API_KEY
    assert API_KEY not in caplog.text


def test_paper_is_not_a_ccxt_exchange() -> None:
    with pytest.raises(ConfigError, match="EXCHANGE"):
        CcxtVenue.from_settings(Settings())


# --- an order found by its client id: a send whose answer never came


def test_binance_finds_an_order_by_its_client_id_open_or_done() -> None:
    """A send given up after timeouts may have been taken and filled: binance is asked for
    it by ``origClientOrderId``, and its closed order parses as ccxt's."""
    recorded = case("binance", "fetchOrder", "Fetch spot closed order")
    client_id = recorded["httpResponse"]["clientOrderId"]
    venue, exchange = venue_for("binance")
    transport = mount(exchange, FakeTransport((200, recorded["httpResponse"])))
    order = venue.fetch_order_by_client_id(client_id, "LTC/USDT")
    (sent,) = transport.sent
    assert sent.url.startswith("https://api.binance.com/api/v3/order")
    params = sent.params()
    assert params["origClientOrderId"] == client_id and "orderId" not in params
    assert_matches(recorded["parsedResponse"], order, skip_keys("binance"))
    assert order["status"] == "closed" and order["filled"] == 0.1


def test_binance_knowing_no_such_client_id_is_order_not_found() -> None:
    venue, exchange = venue_for("binance")
    mount(exchange, FakeTransport((400, {"code": -2013, "msg": "Order does not exist."})))
    with pytest.raises(OrderNotFound):
        venue.fetch_order_by_client_id(CLIENT_ID, "LTC/USDT")
