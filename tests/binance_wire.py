"""A binance spot account on the wire, for running the real loop against real ccxt (test helper).

ccxt's own binance class builds and signs every request; ``BinanceWire.fetch`` takes the
place of its HTTP call (``exchange.fetch``, see ``ccxt_replay``) and answers by path with
bodies in the shape of binance's recorded answers (shared/fixtures/ccxt/response/binance.json):
ticker, depth, klines, account, openOrders, myTrades (a page at a time, as binance caps one
answer) and order (create, cancel, query). The account keeps its orders, trades and
balances, so what the bot sends is what it later reads.

How a market order fills is the test's to say (``fill``): whole by default, its fee in the
quote currency; a share of it then ``EXPIRED`` (binance's answer to a market order the book
did not fill whole); its fee taken from the coins bought; its trades shown only once ``late``
is off (a venue's trade history lags its orders). An order's answer may be lost after it was
carried out (``answers_lost``). A client order id is refused as binance refuses it: only
while an order with it is still open (code -2010); once that one is done, binance takes the
id again. A sell of more than the account holds free is refused (-2010, insufficient
balance). The key may be refused (``refusing``, -2015), as ccxt maps binance's answer.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import ccxt
from ccxt_replay import case, make_exchange

from bot.alerts.sink import EventSink
from bot.config import load_settings
from bot.loop import start
from bot.runtime import Runtime
from bot.venue.ccxt_venue import CcxtVenue
from db.engine import make_engine, session_factory

MINUTE_MS = 60_000
PRIVATE = frozenset({"account", "openOrders", "myTrades", "order"})  # signed requests
REFUSED = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}


@dataclass
class Fill:
    """How the account fills the next market orders."""

    share: float = 1.0  # of the amount; below 1 the rest EXPIRES, as binance's market orders
    fee_rate: float = 0.001
    # the fee is taken from what the order brings in (Bybit's spot: a buy's from the coins
    # bought), else in the quote currency
    fee_in_received: bool = False


@dataclass
class BinanceWire:
    clock: Callable[[], datetime]
    prices: dict[str, float]  # binance symbol (ETHUSDT) -> last price
    balances: dict[str, float] = field(default_factory=lambda: {"USDT": 10_000.0})
    fill: Fill = field(default_factory=Fill)
    late: bool = False  # trades made meanwhile are not shown yet
    # the next this many orders are carried out and their answer lost (a read timeout)
    answers_lost: int = 0
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    hidden: set[str] = field(default_factory=set)  # trade ids not shown yet
    sent: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    page_max: int = 1000  # binance's cap of one myTrades answer; a test may lower it
    # the API key refused: "key" for every signed request (revoked, IP not allowed),
    # "trading" for orders only (a key without trading permission); binance answers -2015
    refusing: str | None = None
    exchange: ccxt.Exchange | None = None  # ccxt's binance whose fetch this is (its errors)

    def now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parts = urlsplit(url)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if body:
            params.update({k: v[-1] for k, v in parse_qs(body).items()})
        path = parts.path.removeprefix("/api/v3/")
        self.sent.append((method, path, params))
        if not self.late:
            self.hidden.clear()
        if self.refusing == "key" and path in PRIVATE or (
                self.refusing == "trading" and path == "order" and method != "GET"):
            self._refuse(url, method)
        answer = getattr(self, f"_{method.lower()}_{path.replace('/', '_')}")(params)
        return copy.deepcopy(answer)

    def _refuse(self, url: str, method: str) -> None:
        """binance's answer to a key it does not take, through ccxt's own error handling."""
        body = json.dumps(REFUSED)
        assert self.exchange is not None, "wire_runtime sets the exchange"
        self.exchange.handle_errors(401, "Unauthorized", url, method, {}, body, REFUSED,
                                    None, None)
        raise AssertionError("ccxt took binance's -2015 for an answer")

    # --- market data

    def _get_ticker_24hr(self, params: dict[str, str]) -> dict[str, Any]:
        body = case("binance", "fetchTicker")["httpResponse"]
        price = f"{self.prices[params['symbol']]:.2f}"
        return {**body, "symbol": params["symbol"], "lastPrice": price, "bidPrice": price,
                "askPrice": price, "closeTime": str(self.now_ms())}

    def _get_depth(self, params: dict[str, str]) -> dict[str, Any]:
        price = self.prices[params["symbol"]]
        return {"lastUpdateId": "1", "bids": [[f"{price:.2f}", "1000"]],
                "asks": [[f"{price:.2f}", "1000"]]}

    def _get_klines(self, params: dict[str, str]) -> list[list[Any]]:
        price = f"{self.prices[params['symbol']]:.2f}"
        step = {"m": MINUTE_MS, "h": 60 * MINUTE_MS}[params["interval"][-1]] * int(
            params["interval"][:-1])
        newest = self.now_ms() // step * step - step
        count = int(params.get("limit", 10))
        return [[t, price, price, price, price, "10", t + step - 1, "0", 1, "0", "0", "0"]
                for t in range(newest - (count - 1) * step, newest + 1, step)]

    # --- account

    def _get_account(self, params: dict[str, str]) -> dict[str, Any]:
        body = case("binance", "fetchBalance", "Spot balance")["httpResponse"]
        held = {a: self.balances.get(a, 0.0) - self._locked(a) for a in self.balances}
        body["balances"] = [{"asset": a, "free": f"{held[a]:.8f}",
                             "locked": f"{self._locked(a):.8f}"} for a in self.balances]
        return body

    def _locked(self, asset: str) -> float:
        return sum(float(o["origQty"]) - float(o["executedQty"]) for o in self.orders.values()
                   if o["status"] == "NEW" and o["side"] == "SELL"
                   and o["symbol"].startswith(asset))

    def _get_openOrders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return [o for o in self.orders.values()
                if o["status"] == "NEW" and o["symbol"] == params.get("symbol", o["symbol"])]

    def _get_myTrades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """The oldest trades from startTime, as many as ``limit`` (500 unless given) up to
        the cap of one answer."""
        since = int(params.get("startTime", 0))
        shown = [t for t in self.trades if t["symbol"] == params["symbol"]
                 and t["time"] >= since and t["id"] not in self.hidden]
        return shown[:min(int(params.get("limit", 500)), self.page_max)]

    # --- orders

    def _get_order(self, params: dict[str, str]) -> dict[str, Any]:
        for order in self.orders.values():
            if params.get("orderId") == order["orderId"] or (
                    params.get("origClientOrderId") == order["clientOrderId"]):
                return order
        raise ccxt.OrderNotFound("binance " + json.dumps(
            {"code": -2013, "msg": "Order does not exist."}))

    def _delete_order(self, params: dict[str, str]) -> dict[str, Any]:
        order = self.orders[params["orderId"]]
        order["status"] = "CANCELED"
        return order

    def _post_order(self, params: dict[str, str]) -> dict[str, Any]:
        symbol, side, amount = params["symbol"], params["side"], float(params["quantity"])
        if any(o["clientOrderId"] == params["newClientOrderId"] and o["status"] == "NEW"
               for o in self.orders.values()):
            raise ccxt.InvalidOrder("binance " + json.dumps(
                {"code": -2010, "msg": "Duplicate order sent."}))
        base = symbol[:-4]
        if side == "SELL" and amount > self.balances.get(base, 0.0) - self._locked(base) + 1e-12:
            raise ccxt.InsufficientFunds("binance " + json.dumps(
                {"code": -2010, "msg": "Account has insufficient balance for requested action."}))
        body = case("binance", "createOrder", "spot +selfTradePrevention +iceberg")
        order_id = str(9_780_331_417 + len(self.orders))
        order = {**body["httpResponse"], "symbol": symbol, "orderId": order_id,
                 "clientOrderId": params["newClientOrderId"], "transactTime": self.now_ms(),
                 "workingTime": self.now_ms(), "origQty": f"{amount:.8f}", "side": side,
                 "type": params["type"], "timeInForce": "GTC",
                 "price": params.get("price", "0.00000000"),
                 "executedQty": "0", "cummulativeQuoteQty": "0", "status": "NEW", "fills": []}
        order.pop("icebergQty", None)
        self.orders[order_id] = order
        if params["type"] == "MARKET":
            self._trade(order, amount * self.fill.share, self.prices[symbol])
        if self.answers_lost:
            self.answers_lost -= 1
            raise ccxt.RequestTimeout("binance POST https://api.binance.com/api/v3/order")
        return order

    def fill_resting(self, order_id: str, amount: float) -> None:
        """Fill ``amount`` of a resting limit order at its price."""
        order = self.orders[order_id]
        self._trade(order, amount, float(order["price"]))

    def _trade(self, order: dict[str, Any], amount: float, price: float) -> None:
        """A trade of ``amount`` of ``order``; a market order is then done (FILLED, or
        EXPIRED with the rest unfilled), a limit one rests until it is filled whole."""
        symbol = order["symbol"]
        base, quote = symbol[:-4], symbol[-4:]
        filled = round(amount, 8)
        buy = order["side"] == "BUY"
        fee_asset = base if self.fill.fee_in_received and buy else quote
        fee = filled * self.fill.fee_rate * (1.0 if fee_asset == base else price)
        self.balances[base] = self.balances.get(base, 0.0) + (filled if buy else -filled)
        self.balances[quote] += -filled * price if buy else filled * price
        self.balances[fee_asset] -= fee
        trade_id = str(309_520_010 + len(self.trades))
        self.trades.append({
            "symbol": symbol, "id": trade_id, "orderId": order["orderId"], "orderListId": "-1",
            "price": f"{price:.8f}", "qty": f"{filled:.8f}", "quoteQty": f"{filled * price:.8f}",
            "commission": f"{fee:.8f}", "commissionAsset": fee_asset, "time": self.now_ms(),
            "isBuyer": buy, "isMaker": False, "isBestMatch": True})
        if self.late:
            self.hidden.add(trade_id)
        executed = float(order["executedQty"]) + filled
        whole = executed >= float(order["origQty"]) - 1e-12
        order.update(executedQty=f"{executed:.8f}",
                     cummulativeQuoteQty=f"{float(order['cummulativeQuoteQty']) + filled * price:.8f}",
                     status="FILLED" if whole else "EXPIRED" if order["type"] == "MARKET" else "NEW")


def wire_runtime(db_url: str, wire: BinanceWire, engine: Any, **settings: object) -> Runtime:
    """A runtime of the real loop on ccxt's binance class over ``wire``; SYMBOLS and the
    rest of the settings as given (LIVE, opted in)."""
    exchange = make_exchange("binance")
    exchange.fetch = wire.fetch
    wire.exchange = exchange
    venue = CcxtVenue(exchange, str(settings.get("SYMBOLS", "ETH/USDT")).split(","),
                      clock=wire.clock, sleep=lambda _: None)
    config = load_settings(**({"DATABASE_URL": db_url, "TRADING_MODE": "LIVE",
                               "LIVE_TRADING_CONFIRMED": "true", "EXCHANGE": "binance",
                               "SYMBOLS": "ETH/USDT", "TIMEFRAMES": "5m",
                               "LLM_RECORDING": str(Path("/dev/null"))} | settings))
    factory = session_factory(make_engine(db_url))
    runtime = Runtime(settings=config, db=factory, venue=venue, engine=engine, kind="live",
                      run_name=config.bot_name, events=EventSink.from_settings(config))
    start(runtime)
    return runtime
