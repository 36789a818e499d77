"""A real exchange behind the Venue contract, through ccxt's synchronous API.

ccxt already speaks the unified shapes the loop uses, so this layer only adds what the loop
relies on and ccxt does not promise: one error vocabulary, bounded retries for reads only
(a create is retried by the loop with the same client order id, never here), local refusal
of orders below the market minimums, and the client order id on every returned order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import ccxt

from bot.clock import SteadyClock
from bot.config import ConfigError
from bot.secrets_filter import scrub
from bot.venue.base import StoreRetry, TransientVenueError, VenueError, nothing_to_save
from bot.venue.ccxt_errors import to_venue_error
from bot.venue.ccxt_orders import prepare_order, with_client_order_id

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from bot.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

MARKETS_MAX_AGE = timedelta(days=1)
# After a failed daily refresh the old markets stay usable; do not hammer the exchange.
MARKETS_RETRY_AFTER = timedelta(hours=1)
# Pages of one trades read: binance's 1000 a page make it 50,000 trades a symbol a pass.
MAX_TRADE_PAGES = 50
CREDENTIAL_KEYS = ("apiKey", "secret", "password", "uid", "privateKey")


def enable_sandbox(exchange: ccxt.Exchange) -> None:
    """Switch to the exchange's test environment, or raise ConfigError naming the setting.

    ccxt's own ``set_sandbox_mode`` is the only switch used, because it knows each
    exchange's test URLs; it is not trusted to fail cleanly (kraken raises TypeError), so
    support is checked from ``urls`` and ``features`` first.
    """
    features = (exchange.features or {}).get("spot") or {}
    unsupported = ConfigError(
        f"invalid setting EXCHANGE_SANDBOX: {exchange.id} has no sandbox in ccxt; "
        "set EXCHANGE_SANDBOX=false or pick an exchange with a test environment"
    )
    if not (exchange.urls or {}).get("test") or features.get("sandbox") is False:
        raise unsupported
    try:
        exchange.set_sandbox_mode(True)
    except (ccxt.NotSupported, TypeError, KeyError):
        raise unsupported from None


def supports_stop_orders(exchange: ccxt.Exchange) -> bool:
    """Whether ccxt can rest a spot stop-loss order on the exchange: its ``features`` say
    so (``stopLossPrice`` on a spot ``createOrder``), or, for an exchange ccxt describes no
    features of, its ``has`` does (``createStopLossOrder``)."""
    spot = (exchange.features or {}).get("spot") or {}
    create = spot.get("createOrder")
    if create:
        return bool(create.get("stopLossPrice"))
    return bool(exchange.has.get("createStopLossOrder"))


def silence_ccxt_debug_log() -> None:
    """Keep ccxt's request log off even when the application logs at DEBUG.

    ccxt logs every request's headers at DEBUG, and those carry the API key (binance's
    X-MBX-APIKEY, kraken's API-Key); nothing below INFO from ccxt is worth that risk.
    """
    ccxt_log = logging.getLogger("ccxt")
    if ccxt_log.getEffectiveLevel() < logging.INFO:
        ccxt_log.setLevel(logging.INFO)


class CcxtVenue:
    """Any ccxt exchange as a Venue: unified shapes in and out, venue errors only."""

    is_paper = False
    market = "venue"  # its own prices

    def __init__(
        self,
        exchange: ccxt.Exchange,
        symbols: Iterable[str] = (),
        *,
        sandbox: bool | None = None,
        read_attempts: int = 3,
        backoff_seconds: float = 1.0,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Wrap a ready exchange; tests pass one whose markets and HTTP are recorded.

        ``sandbox`` defaults to what the exchange says, so an instance switched to its
        test environment elsewhere is still reported as such on the Settings page.
        """
        self.exchange = exchange
        self.name: str = exchange.id
        self.symbols = list(symbols)
        self.sandbox = (
            bool(getattr(exchange, "isSandboxModeEnabled", False)) if sandbox is None else sandbox
        )
        self._read_attempts = max(1, read_attempts)
        self._backoff = backoff_seconds
        self._steady: SteadyClock | None = None
        self._clock: Callable[[], datetime]
        if clock is None:
            steady = self._steady = SteadyClock()
            self._clock = lambda: datetime.fromtimestamp(steady() / 1000, UTC)
        else:
            self._clock = clock
        self._sleep = sleep
        self._markets_due: datetime | None = (
            self.now() + MARKETS_MAX_AGE if exchange.markets else None
        )
        self._last_price: dict[str, float] = {}
        self.supports_stop_orders = supports_stop_orders(exchange)

    @classmethod
    def from_settings(cls, settings: Settings) -> CcxtVenue:
        """The configured exchange with its keys, rate limiting and optional sandbox."""
        if settings.is_paper:
            raise ConfigError("invalid setting EXCHANGE: 'paper' is not a ccxt exchange")
        config: dict[str, Any] = {"enableRateLimit": True}
        for key, value in (
            ("apiKey", settings.exchange_api_key),
            ("secret", settings.exchange_api_secret),
            ("password", settings.exchange_api_password),
        ):
            if value is not None and value.get_secret_value():
                config[key] = value.get_secret_value()
        silence_ccxt_debug_log()
        exchange = getattr(ccxt, settings.exchange)(config)
        if settings.exchange_sandbox:
            enable_sandbox(exchange)
        if settings.stoploss_on_exchange and not supports_stop_orders(exchange):
            raise ConfigError(
                f"invalid setting STOPLOSS_ON_EXCHANGE: {exchange.id} takes no stop-loss "
                "orders in ccxt; set STOPLOSS_ON_EXCHANGE=false (the bot then watches its "
                "stops itself)")
        return cls(exchange, settings.symbols, sandbox=settings.exchange_sandbox)

    # --- clock

    def now(self) -> datetime:
        return self._clock()

    def advance(self) -> bool:
        return True

    def clock_note(self) -> str | None:
        return self._steady.jump_note() if self._steady is not None else None

    def catch_up(self) -> None:
        """The exchange's own market is always current."""

    def carry_clock(self, conn: Connection) -> Callable[[], None]:
        return nothing_to_save

    def use_outage(self, outage: StoreRetry) -> None:
        """The exchange keeps the account: no store of its own."""

    # --- the single path of every ccxt call

    def _secrets(self) -> list[str]:
        return [str(v) for k in CREDENTIAL_KEYS if (v := getattr(self.exchange, k, None))]

    def _call(self, what: str, fn: Callable[[], T], *, read: bool) -> T:
        """Run one ccxt call, translating errors; reads retry transient failures.

        The venue error is raised outside the ``except`` block so the unscrubbed ccxt
        exception is not attached as its context.
        """
        attempts = self._read_attempts if read else 1
        for attempt in range(1, attempts + 1):
            try:
                result = fn()
            except ccxt.BaseError as exc:
                error = to_venue_error(exc, f"{self.name} {what}", self._secrets())
            else:
                if result is None:
                    raise VenueError(f"{self.name} {what}: the exchange returned nothing")
                return result
            if not isinstance(error, TransientVenueError) or attempt == attempts:
                raise error
            delay = self._backoff * 2 ** (attempt - 1)
            log.warning("%s (attempt %d/%d, retry in %.1fs)", error, attempt, attempts, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _ensure_markets(self) -> None:
        """Load markets once, then again daily, so new limits and listings are seen."""
        now = self.now()
        if self._markets_due is not None and now < self._markets_due:
            return
        try:
            self._call("load_markets", lambda: self.exchange.load_markets(True), read=True)
        except TransientVenueError as exc:
            if not self.exchange.markets:
                raise
            log.warning("%s; keeping the markets loaded earlier", exc)
            self._markets_due = now + MARKETS_RETRY_AFTER
            return
        self._markets_due = now + MARKETS_MAX_AGE

    def _read(self, what: str, fn: Callable[[], T]) -> T:
        self._ensure_markets()
        return self._call(what, fn, read=True)

    # --- market data

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        ticker = self._read(f"fetch_ticker {symbol}", lambda: self.exchange.fetch_ticker(symbol))
        if ticker.get("last"):
            self._last_price[symbol] = float(ticker["last"])
        return ticker

    def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        return self._read(
            f"fetch_order_book {symbol}", lambda: self.exchange.fetch_order_book(symbol, limit)
        )

    def fetch_ohlcv(
        self, symbol: str, timeframe: str = "5m", since: int | None = None,
        limit: int | None = None,
    ) -> list[list[float]]:
        return self._read(
            f"fetch_ohlcv {symbol} {timeframe}",
            lambda: self.exchange.fetch_ohlcv(symbol, timeframe, since, limit),
        )

    # --- orders

    def create_order(
        self, symbol: str, type: str, side: str, amount: float, price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Place an order once; below-minimum orders are refused without a request.

        A ``stop`` (the stop as ``price``) goes as ccxt's unified stop-loss: a market order
        with ``stopLossPrice``, resting on the exchange until the price reaches it.
        """
        self._ensure_markets()
        what = f"create_order {side} {type} {amount} {symbol}"

        def place() -> dict[str, Any]:
            prepared = prepare_order(
                self.exchange, symbol, amount, price, params, self._last_price.get(symbol)
            )
            sent_type, sent_price, sent_params = type, prepared.price, prepared.params
            if type == "stop":
                sent_type, sent_price = "market", None
                sent_params = {**prepared.params, "stopLossPrice": prepared.price}
            # the loop sends only these; anything else is a bug, not an order to try
            assert sent_type in ("limit", "market") and side in ("buy", "sell"), what
            order = self.exchange.create_order(
                symbol, sent_type, side, prepared.amount, sent_price, sent_params
            )
            return with_client_order_id(order, prepared.client_order_id)

        return self._call(what, place, read=False)

    def cancel_order(self, id: str, symbol: str | None = None) -> dict[str, Any]:
        self._ensure_markets()
        return self._call(
            f"cancel_order {id} {symbol or ''}".rstrip(),
            lambda: self.exchange.cancel_order(id, symbol),
            read=False,
        )

    def fetch_order(self, id: str, symbol: str | None = None) -> dict[str, Any]:
        return self._read(f"fetch_order {id} {symbol or ''}".rstrip(),
                          lambda: self.exchange.fetch_order(id, symbol))

    def fetch_order_by_client_id(self, client_id: str, symbol: str) -> dict[str, Any]:
        """By ccxt's unified ``clientOrderId`` parameter of ``fetch_order``, which binance,
        bybit, okx and most others read (an exchange that does not refuses the request:
        an OrderRejected, as an order it has no record of is an OrderNotFound)."""
        return self._read(f"fetch_order by client id {client_id} {symbol}",
                          lambda: self.exchange.fetch_order(None, symbol,  # type: ignore[arg-type]
                                                            {"clientOrderId": client_id}))

    def fetch_open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        return self._per_symbol("fetch_open_orders", symbol, self.exchange.fetch_open_orders)

    def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The account's trades; from ``since`` without a ``limit``, every one up to now."""
        return self._per_symbol("fetch_my_trades", symbol, self._trades_since, since, limit)

    def _trades_since(
        self, symbol: str | None, since: int | None, limit: int | None
    ) -> list[dict[str, Any]]:
        """One answer is capped (binance: 500 trades, 1000 when asked), so the window is
        read page by page, oldest first, each page from the newest trade of the one before.
        That trade's millisecond is asked again, since the cap may have cut trades sharing
        it; what comes twice is kept once, by trade id. The pages end with one that brings
        nothing new: a page shorter than asked is not trusted to be the last one. (An
        exchange answering the newest trades of the window first, as kraken does, pages by
        offset instead; it is read as one page here.)
        """
        if since is None or limit is not None:
            return self.exchange.fetch_my_trades(symbol, since, limit)
        spot = (self.exchange.features or {}).get("spot") or {}
        page_size = (spot.get("fetchMyTrades") or {}).get("limit")
        trades: dict[str, dict[str, Any]] = {}
        start = since
        for _ in range(MAX_TRADE_PAGES):
            page = self.exchange.fetch_my_trades(symbol, start, page_size)
            new = [t for t in page if str(t["id"]) not in trades]
            trades.update((str(t["id"]), t) for t in new)
            if not new:
                if page_size and len(page) >= page_size:  # one millisecond fills a page
                    log.error("%s fetch_my_trades %s: more than %d trades at %d ms; the "
                              "rest of them are not read", self.name, symbol or "", page_size,
                              start)
                return sorted(trades.values(), key=lambda t: t.get("timestamp") or 0)
            start = max(int(t.get("timestamp") or start) for t in page)
        log.error("%s fetch_my_trades %s: stopped after %d pages at %d ms; later trades are "
                  "not read", self.name, symbol or "", MAX_TRADE_PAGES, start)
        return sorted(trades.values(), key=lambda t: t.get("timestamp") or 0)

    def _per_symbol(
        self, what: str, symbol: str | None, method: Callable[..., list[dict[str, Any]]],
        *args: Any,
    ) -> list[dict[str, Any]]:
        """Call ``method`` for one symbol, or for all when the exchange needs a symbol.

        Whether a symbol is needed is learned from ccxt itself, which refuses before any
        request is made (ArgumentsRequired, or binance's rate-limit warning).
        """
        self._ensure_markets()
        if symbol is not None:
            return self._call(f"{what} {symbol}", lambda: method(symbol, *args), read=True)
        needs_symbol = False

        def unscoped() -> list[dict[str, Any]]:
            nonlocal needs_symbol
            try:
                return method(None, *args)
            except ccxt.ArgumentsRequired:
                needs_symbol = True
            except ccxt.ExchangeError as exc:
                if "without specifying a symbol" not in str(exc):
                    raise
                needs_symbol = True
            return []

        items = self._call(what, unscoped, read=True)
        if not needs_symbol:
            return items
        if not self.symbols:
            raise VenueError(f"{self.name} {what} needs a symbol and none is configured")
        for each in self.symbols:
            items.extend(self._call(f"{what} {each}", lambda s=each: method(s, *args), read=True))
        return sorted(items, key=lambda item: item.get("timestamp") or 0)

    # --- account

    def fetch_balance(self) -> dict[str, Any]:
        return self._read("fetch_balance", self.exchange.fetch_balance)

    def describe_fill_model(self) -> dict[str, Any]:
        return {"venue": self.name, "fills": "real exchange", "sandbox": self.sandbox}

    def __repr__(self) -> str:
        return scrub(f"CcxtVenue({self.name!r}, sandbox={self.sandbox})", self._secrets())
