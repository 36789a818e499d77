"""The paper venue: a ccxt-shaped exchange simulated over a Feed, persisted in the store.

Fill model (also returned by ``describe_fill_model()`` for the console):

* Market orders fill at once, as taker, by walking the feed's order book. Levels beyond
  ``slippage_cap_pct`` from the best price are not taken: the unfilled rest is dropped and
  the order is closed partly filled, or rejected if nothing could fill. One fill is
  recorded at the average price.
* Limit orders rest until ``advance()``; each step they are matched against the candle that
  traded since the previous step, as maker, at their limit price, only if the market traded
  THROUGH the price (low < buy limit, high > sell limit; touching is not enough), and only
  up to ``volume_share`` of that candle's volume for all resting limits of the symbol
  together, so a large order fills in parts across candles. A limit that crosses the book
  when placed takes liquidity at once as taker up to its price; the rest rests.
* Stop orders (type ``stop``, or ``params['stopPrice']``) trigger when a candle trades at or
  through the stop and then fill entirely as taker at the stop price, or at the candle's
  open when it gapped through the stop (the worse price: gaps are not free). A stop placed
  is first judged at once against what traded before it, candle by candle in the order it
  traded (the first candle to reach the stop fills it): the base candles closed from
  ``params[HIT_SEEN_SINCE]`` on when the order names it, then what traded since the step
  before the loop's last look (a ``catch_up`` between steps, a command in the loop's sleep,
  does not narrow it: it is what traded since the previous ``advance``). This is how the
  bot's plan stops, which it watches between steps and sends when it sees them hit, fill at
  what the market gave when it passed the stop rather than at the price of the later moment
  the bot looked: the bot names the span whose candles showed it the hit, which begins
  before its last look when the hit lay in the candle forming then. A stop that span never
  reached rests.
* Fees are charged in the quote currency on every fill (``maker_fee``/``taker_fee``).
  A buy whose cost plus fee exceeds the free quote balance, or a sell of more base than is
  free, is rejected with ``InsufficientFunds`` as an exchange would. Resting orders reserve
  their funds (``used``) until they fill or are canceled.

Ids come from a persisted counter, never from time or uuid4, so the same feed and orders
give identical fills. State lives in memory and is written through to the ``paper_*``
tables only when it changes, plus the clock on each step; a restart with the same
``account`` continues the same balances, orders, fills and clock. A driver that runs a loop
iteration after every step (a replay) may have the loop's first transaction of the step carry
the clock instead (``defer_clock``, ``carry_clock``).
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Callable
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot.model.paper import FillState, OrderState
from bot.venue.base import (
    HIT_SEEN_SINCE,
    DuplicateOrder,
    OrderNotFound,
    OrderRejected,
    StoreRetry,
    VenueError,
    nothing_to_save,
)
from bot.venue.feeds import (
    Candle,
    Feed,
    FeedError,
    LiveFeed,
    ReplayFeed,
    SyntheticFeed,
    iso_ms,
    merge_candles,
)
from bot.venue.paper_account import AccountStore, OpenStore, Unretried
from bot.venue.paper_model import (
    limit_trades_through,
    order_dict,
    split_symbol,
    stop_fill_price,
    trade_dict,
    walk_book,
)

if TYPE_CHECKING:
    from bot.config import Settings

BOOK_DEPTH = 100
AMOUNT_ROUNDING = 1e-9  # relative: far below any exchange's amount precision


class InsufficientFunds(OrderRejected):
    """The account cannot pay for the order (ccxt's InsufficientFunds)."""


class PaperVenue:
    """A simulated exchange account over a Feed; see the module docstring for the fills."""

    name = "paper"
    is_paper = True
    supports_stop_orders = True

    def __init__(
        self, feed: Feed, store: AccountStore, *, starting_balance: float = 10_000.0,
        maker_fee: float = 0.001, taker_fee: float = 0.001, slippage_cap_pct: float = 1.0,
        volume_share: float = 0.1, defer_clock: bool = False,
    ) -> None:
        self.feed = feed
        self.defer_clock = defer_clock
        self._unsaved_clock: tuple[int, int] | None = None  # (now_ms, seq) not stored yet
        self.account = store.account
        self.starting_balance = starting_balance
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.slippage_cap_pct = slippage_cap_pct
        self.volume_share = volume_share
        self.store = store
        # the account lives in the bot's database: an outage of it holds the simulated
        # exchange up (as latency) instead of losing a fill it has made; the runtime shares
        # its own (``use_outage``); a venue on its own runs each touch once
        self.outage: StoreRetry = Unretried()
        self._tag = f"{zlib.crc32(self.account.encode()):08x}"
        self.orders: dict[str, OrderState] = {}
        self.fills: list[FillState] = []
        self._trades: dict[str, dict[str, Any]] = {}  # fill id -> trade_dict; see _trade
        self.balances: dict[str, list[float]] = {}
        self._client_ids: dict[str, str] = {}  # client order id -> order id
        self._open: list[str] = []
        # Per symbol, once a catch-up (a command between iterations) has stepped the feed,
        # whose current candle then covers only the time since that catch-up: what the
        # catch-ups since the last ``advance`` stepped through, and what traded since the
        # step before the last ``advance`` ended (see ``_traded_since_look``).
        self._caught_up: dict[str, Candle | None] = {}
        self._since_look: dict[str, Candle | None] = {}
        snapshot = self.store.load()
        if snapshot is None:
            self.seq = 0
            for symbol in feed.symbols:
                self.balances[split_symbol(symbol)[1]] = [starting_balance, 0.0]
            self.store.create(feed.now_ms(), feed.descriptor(), self.balances)
            return
        feed.seek(snapshot.now_ms)
        self.seq = snapshot.seq
        self.balances = snapshot.balances
        self.fills = snapshot.fills
        for order in snapshot.orders:
            self._remember(order)

    @classmethod
    def from_settings(cls, settings: Settings, open_store: OpenStore) -> PaperVenue:
        """Build the feed named by ``settings.feed`` and the account ``settings.bot_name``.

        A synthetic market is rebuilt from the seed and start time stored with the account,
        so a restart continues the same tape rather than a new one.
        """
        store = open_store(settings.bot_name)
        feed: Feed
        if settings.feed == "synthetic":
            stored = store.stored_feed() or {}
            start = stored.get("start_ms") if stored.get("seed") == settings.feed_seed else None
            feed = SyntheticFeed(settings.symbols, seed=settings.feed_seed, start_ms=start)
        elif settings.feed == "live":
            feed = LiveFeed(settings.feed_exchange, settings.symbols)
        else:
            feed = ReplayFeed(settings.replay_paths)
        return cls(
            feed, store, starting_balance=settings.starting_balance,
            maker_fee=settings.maker_fee, taker_fee=settings.taker_fee,
            slippage_cap_pct=settings.paper_slippage_cap_pct,
            volume_share=settings.paper_volume_share,
        )

    @property
    def market(self) -> str:
        """The feed as ``FEED`` names it: what the console labels simulated, replayed or live."""
        if isinstance(self.feed, ReplayFeed):
            return "replay:" + ",".join(str(path) for path in self.feed.paths)
        return self.feed.kind

    # --- clock and market data -------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.feed.now_ms() / 1000, tz=UTC)

    def advance(self) -> bool:
        """Move the feed one step and match resting orders against what traded in it."""
        caught_up, self._caught_up = self._caught_up, {}
        if not self._step():
            return False
        self._since_look = {symbol: _joined(candle, self.feed.current_candle(symbol))
                            for symbol, candle in caught_up.items()}
        return True

    def _step(self) -> bool:
        if not self.feed.advance():
            return False
        changed: list[OrderState] = []
        fills: list[FillState] = []
        budgets: dict[str, float] = {}
        for order_id in list(self._open):
            order = self.orders[order_id]
            candle = self.feed.current_candle(order.symbol)
            if candle is None:
                continue
            fills.extend(self._match(order, candle, budgets))
            if order.updated_ms == self.feed.now_ms():
                changed.append(order)
        self._persist(changed, fills)
        return True

    def clock_note(self) -> str | None:
        return self.feed.clock_note()

    def catch_up(self) -> None:
        """A synthetic or live market steps to the wall clock (matching resting orders on
        what traded meanwhile, as ``advance`` does); a replayed one stays where it is."""
        if isinstance(self.feed, ReplayFeed):
            return
        looked = {symbol: self._traded_since_look(symbol) for symbol in self.feed.symbols}
        if not self._step():
            return
        for symbol, candle in looked.items():
            now = self.feed.current_candle(symbol)
            self._caught_up[symbol] = _joined(self._caught_up.get(symbol), now)
            self._since_look[symbol] = _joined(candle, now)

    def _traded_since_look(self, symbol: str) -> Candle | None:
        """What traded since the step before the loop's last look at the market: the span
        whose candles show the loop a stop hit, so the span its stop order is judged
        against. A command's catch-up in the sleep does not narrow it to the time since
        the command: the dip the loop then sees came before."""
        if symbol in self._since_look:
            return self._since_look[symbol]
        return self.feed.current_candle(symbol)

    def use_outage(self, outage: StoreRetry) -> None:
        self.outage = outage

    def carry_clock(self, conn: Connection) -> Callable[[], None]:
        """Write the clock a deferred ``advance`` left unsaved in ``conn``'s transaction;
        returns what to call once that transaction committed.

        With ``defer_clock``, a step that fills nothing writes no transaction of its own:
        the loop's next transaction carries the clock. A crash before that commit restarts
        at the previous step, whose iteration had completed; a crash right after
        ``advance`` did the same before.
        """
        unsaved = self._unsaved_clock
        if unsaved is None:
            return nothing_to_save
        self.store.move_clock(*unsaved, conn)

        def saved() -> None:
            if self._unsaved_clock == unsaved:
                self._unsaved_clock = None
        return saved

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        return self.feed.ticker(self._known(symbol))

    def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        book = self.feed.book(self._known(symbol), limit or 20)
        now = self.feed.now_ms()
        return {"symbol": symbol, "bids": book["bids"], "asks": book["asks"],
                "timestamp": now, "datetime": iso_ms(now), "nonce": None}

    def fetch_ohlcv(
        self, symbol: str, timeframe: str = "5m", since: int | None = None,
        limit: int | None = None,
    ) -> list[list[float]]:
        return self.feed.candles(self._known(symbol), timeframe, since, limit)

    # --- orders ----------------------------------------------------------------------------

    def create_order(
        self, symbol: str, type: str, side: str, amount: float, price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        params = params or {}
        client_id = params.get("clientOrderId")
        stop = params.get("stopPrice", params.get("triggerPrice"))
        if type == "stop" and stop is None:
            stop, price = price, None
        order_type = "stop" if stop is not None else type
        self._validate(symbol, order_type, side, amount, price, stop, client_id)
        order = OrderState(
            id="", client_order_id=client_id, symbol=symbol, side=side, type=order_type,
            price=float(price) if order_type == "limit" and price is not None else None,
            stop_price=None if stop is None else float(stop), amount=float(amount),
            filled=0.0, cost=0.0, fee=0.0, status="open",
            timestamp_ms=self.feed.now_ms(), updated_ms=self.feed.now_ms(),
        )
        fills = self._place(order, params.get(HIT_SEEN_SINCE))
        self._persist([order], fills)
        return order_dict(order, split_symbol(symbol)[1])

    def cancel_order(self, id: str, symbol: str | None = None) -> dict[str, Any]:
        order = self.orders.get(id)
        if order is None or order.status != "open" or (symbol and order.symbol != symbol):
            raise OrderNotFound(f"order {id} is not open on the paper venue")
        order.status = "canceled"
        order.updated_ms = self.feed.now_ms()
        self._open.remove(order.id)
        self._refresh_used()
        self._persist([order], [])
        return order_dict(order, split_symbol(order.symbol)[1])

    def fetch_order(self, id: str, symbol: str | None = None) -> dict[str, Any]:
        order = self.orders.get(id)
        if order is None or (symbol and order.symbol != symbol):
            raise OrderNotFound(f"order {id} is unknown to the paper venue")
        return order_dict(order, split_symbol(order.symbol)[1])

    def fetch_order_by_client_id(self, client_id: str, symbol: str) -> dict[str, Any]:
        order_id = self._client_ids.get(client_id)
        if order_id is None:
            raise OrderNotFound(f"client order id {client_id} is unknown to the paper venue")
        return self.fetch_order(order_id, symbol)

    def fetch_open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        return [
            order_dict(o, split_symbol(o.symbol)[1])
            for o in (self.orders[i] for i in self._open)
            if symbol is None or o.symbol == symbol
        ]

    def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        # Fills are kept oldest first (stamped with the clock, which only moves forward), so
        # the window starts at a bisection instead of a scan of the whole run's fills.
        first = 0 if since is None else bisect_left(self.fills, since, key=attrgetter("timestamp_ms"))
        chosen = [f for f in self.fills[first:] if symbol is None or f.symbol == symbol]
        if limit is not None:
            chosen = chosen[:limit] if since is not None else chosen[-limit:] if limit else []
        return [dict(self._trade(f)) for f in chosen]

    def fetch_balance(self) -> dict[str, Any]:
        out: dict[str, Any] = {"free": {}, "used": {}, "total": {}, "info": {}}
        for currency, (total, used) in sorted(self.balances.items()):
            free = total - used
            out[currency] = {"free": free, "used": used, "total": total}
            out["free"][currency], out["used"][currency] = free, used
            out["total"][currency] = total
        now = self.feed.now_ms()
        out["timestamp"], out["datetime"] = now, iso_ms(now)
        return out

    def describe_fill_model(self) -> dict[str, Any]:
        return {
            "feed": self.feed.kind, "base_timeframe": self.feed.base_timeframe,
            "maker_fee": self.maker_fee, "taker_fee": self.taker_fee,
            "fee_currency": "quote", "slippage_cap_pct": self.slippage_cap_pct,
            "volume_share": self.volume_share, "book_depth": BOOK_DEPTH,
            "market": "walks the book at once as taker; beyond the slippage cap the rest is "
                      "dropped (closed partly filled) or the order rejected",
            "limit": "fills as maker at its price only when a later candle trades through it, "
                     "up to volume_share of that candle's volume per symbol",
            "stop": "triggers when a candle trades at/through the stop (placed after the "
                    "market did, against the candles since the loop saw it hit); fills as "
                    "taker at the stop, or at the open when the candle gapped through it",
            "starting_balance": self.starting_balance,
        }

    # --- internals -------------------------------------------------------------------------

    def _known(self, symbol: str) -> str:
        if symbol not in self.feed.symbols:
            raise VenueError(f"symbol {symbol} is not traded on this paper feed")
        return symbol

    def _validate(
        self, symbol: str, type: str, side: str, amount: float, price: float | None,
        stop: float | None, client_id: str | None,
    ) -> None:
        if symbol not in self.feed.symbols:
            raise OrderRejected(f"symbol {symbol} is not traded on this paper feed")
        if side not in ("buy", "sell"):
            raise OrderRejected(f"side must be buy or sell, not {side!r}")
        if type not in ("market", "limit", "stop"):
            raise OrderRejected(f"order type {type!r} is not supported by the paper venue")
        if not amount or amount <= 0:
            raise OrderRejected(f"amount must be positive, got {amount}")
        if type == "limit" and (price is None or price <= 0):
            raise OrderRejected("a limit order needs a positive price")
        if type == "stop" and (stop is None or stop <= 0):
            raise OrderRejected("a stop order needs a positive stopPrice")
        if client_id is not None and client_id in self._client_ids:
            raise DuplicateOrder(f"clientOrderId {client_id} was already used")

    def _next_id(self, prefix: str) -> str:
        """Counter-based ids; the account tag keeps them unique in the shared id columns."""
        self.seq += 1
        return f"{prefix}{self.seq}-{self._tag}"

    def _free(self, currency: str) -> float:
        total, used = self.balances.get(currency, [0.0, 0.0])
        return total - used

    def _reserve_of(self, order: OrderState) -> tuple[str, float]:
        """Funds an open order holds: quote for a buy at its worst price, base for a sell."""
        base, quote = split_symbol(order.symbol)
        if order.side == "sell":
            return base, order.remaining
        price = order.price if order.type == "limit" else order.stop_price
        fee = max(self.maker_fee, self.taker_fee)
        return quote, order.remaining * (price or 0.0) * (1 + fee)

    def _place(self, order: OrderState, hit_seen_since: int | None) -> list[FillState]:
        """Check funds, take liquidity a market or crossing limit order can take, fill a stop
        that what traded before it reached (see the module docstring), rest the rest."""
        base, quote = split_symbol(order.symbol)
        if order.side == "sell" and order.amount > self._free(base):
            free = self._free(base)
            if order.amount - free > AMOUNT_ROUNDING * order.amount:
                raise InsufficientFunds(f"sell {order.amount} {base} but only {free} is free")
            # the seller's own sum of its fills differs in the last bits: an exchange
            # rounding to its precision sells what is there
            order.amount = free
        if order.side == "buy" and order.type != "market":
            need = self._reserve_of(order)[1]
            if need > self._free(quote):
                raise InsufficientFunds(f"needs {need} {quote}, {self._free(quote)} is free")
        taken, cost = 0.0, 0.0
        if order.type in ("market", "limit"):
            taken, cost = self._take(order)
        # read, as the book is, before the order becomes the account's: a feed may fail
        span = self._stop_span(order.symbol, hit_seen_since) if order.type == "stop" else []
        if order.type == "market" and taken == 0.0:
            raise OrderRejected(
                f"no liquidity within the {self.slippage_cap_pct}% slippage cap for {order.symbol}"
            )
        if order.side == "buy" and order.type == "market":
            need = cost * (1 + self.taker_fee)
            if need > self._free(quote):
                raise InsufficientFunds(f"needs {need} {quote}, {self._free(quote)} is free")
        order.id = self._next_id("P")
        if order.client_order_id is not None:
            self._client_ids[order.client_order_id] = order.id
        self.orders[order.id] = order
        fills = []
        if taken > 0:
            fills.append(self._fill(order, cost / taken, taken, "taker"))
        if order.type == "market":
            order.status = "closed"
        elif order.status == "open":
            self._open.append(order.id)
        self._refresh_used()
        for candle in span:
            fills.extend(self._match(order, candle, {}))
            if order.status != "open":
                break
        return fills

    def _stop_span(self, symbol: str, hit_seen_since: int | None) -> list[Candle]:
        """What a stop placed now is judged against, in the order it traded: the base candles
        closed from ``hit_seen_since`` on, then what traded since the step before the loop's
        last look, which holds the price the loop looked at. One candle at a time, so one
        that gapped through the stop sells at its open, however the candles before it
        traded."""
        closed = [] if hit_seen_since is None else self.feed.candles(
            symbol, self.feed.base_timeframe, int(hit_seen_since))
        step = self._traded_since_look(symbol)
        return closed if step is None else [*closed, step]

    def _take(self, order: OrderState) -> tuple[float, float]:
        book = self.feed.book(order.symbol, BOOK_DEPTH)
        levels = book["asks"] if order.side == "buy" else book["bids"]
        if not levels:
            return 0.0, 0.0
        cap = self.slippage_cap_pct / 100
        bound = levels[0][0] * (1 + cap if order.side == "buy" else 1 - cap)
        if order.price is not None:
            bound = min(bound, order.price) if order.side == "buy" else max(bound, order.price)
        return walk_book(book, order.side, order.amount, bound)

    def _match(
        self, order: OrderState, candle: list[float], budgets: dict[str, float]
    ) -> list[FillState]:
        if order.type == "stop":
            price = stop_fill_price(order, candle)
            if price is None:
                return []
            amount = order.remaining
            if order.side == "buy":
                quote = split_symbol(order.symbol)[1]
                held = self._reserve_of(order)[1]
                amount = min(amount, (self._free(quote) + held) / (price * (1 + self.taker_fee)))
            fills = [self._fill(order, price, amount, "taker")] if amount > 0 else []
            order.status = "closed" if fills else "canceled"
            order.updated_ms = self.feed.now_ms()
            if order.id in self._open:
                self._open.remove(order.id)
            self._refresh_used()
            return fills
        if not limit_trades_through(order, candle):
            return []
        budget = budgets.setdefault(order.symbol, candle[5] * self.volume_share)
        amount = min(order.remaining, budget)
        if amount <= 0:
            return []
        budgets[order.symbol] = budget - amount
        fill = self._fill(order, order.price or 0.0, amount, "maker")
        self._refresh_used()
        return [fill]

    def _fill(self, order: OrderState, price: float, amount: float, role: str) -> FillState:
        """Book one fill: balances, the order's totals, and the fill record."""
        base, quote = split_symbol(order.symbol)
        rate = self.taker_fee if role == "taker" else self.maker_fee
        now = self.feed.now_ms()
        fill = FillState(
            id=self._next_id("T"), order_id=order.id, client_order_id=order.client_order_id,
            symbol=order.symbol, side=order.side, price=price, amount=amount, fee=0.0,
            fee_currency=quote, taker_or_maker=role, timestamp_ms=now,
        )
        fill.fee = fill.cost * rate
        sign = 1.0 if order.side == "buy" else -1.0
        self.balances.setdefault(base, [0.0, 0.0])[0] += sign * amount
        self.balances.setdefault(quote, [0.0, 0.0])[0] -= sign * fill.cost + fill.fee
        order.filled = order.amount if amount >= order.remaining else order.filled + amount
        order.cost += fill.cost
        order.fee += fill.fee
        order.updated_ms = now
        if order.filled >= order.amount:
            order.status = "closed"
            if order.id in self._open:
                self._open.remove(order.id)
        self.fills.append(fill)
        return fill

    def _refresh_used(self) -> None:
        """Recompute reservations from the open orders, so they can never drift."""
        for entry in self.balances.values():
            entry[1] = 0.0
        for order_id in self._open:
            currency, held = self._reserve_of(self.orders[order_id])
            self.balances.setdefault(currency, [0.0, 0.0])[1] += held

    def _trade(self, fill: FillState) -> dict[str, Any]:
        """A fill's ccxt dict, built once: a fill never changes after it is made, and the
        fill sync fetches its whole window (some twenty fills) at every step."""
        trade = self._trades.get(fill.id)
        if trade is None:
            trade = self._trades[fill.id] = trade_dict(fill)
        return trade

    def _remember(self, order: OrderState) -> None:
        self.orders[order.id] = order
        if order.client_order_id is not None:
            self._client_ids[order.client_order_id] = order.id
        if order.status == "open":
            self._open.append(order.id)

    def _persist(self, orders: list[OrderState], fills: list[FillState]) -> None:
        now_ms, seq = self.feed.now_ms(), self.seq
        if not orders and not fills:
            if self.defer_clock:
                self._unsaved_clock = (now_ms, seq)
                return
            self.outage.run("paper venue", lambda: self.store.move_clock(now_ms, seq))
            return
        self.outage.run("paper venue", lambda: self.store.commit(
            now_ms, seq, orders, fills, self.balances))
        self._unsaved_clock = None  # the commit wrote the clock too


__all__ = ["FeedError", "InsufficientFunds", "PaperVenue"]


def _joined(earlier: Candle | None, later: Candle | None) -> Candle | None:
    """Two consecutive spans' candles as one (None: nothing traded in either)."""
    parts = [candle for candle in (earlier, later) if candle is not None]
    return merge_candles(parts) if parts else None
