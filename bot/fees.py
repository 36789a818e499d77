"""A fill's fee in the quote currency, the one figure its trade row, the fee totals and the
net PnL count it by.

A fee paid in quote is booked as it is, and one paid in the base currency at the fill's
price (``Fill.fee_in_quote``). A fee paid in a third currency (binance with its BNB
discount on charges a BTC/USDT fill's fee in BNB) is valued at the price the bot knows for
that currency in quote when it books the fill: the quote of a symbol it trades, else the
venue's ticker of FEE/QUOTE. It is the price at booking, not at the fill: the sync books a
fill moments after it happens, and no venue tells a past price in one call.

With no price known (the venue lists no FEE/QUOTE, or does not answer), the fill is still
booked, since the books must hold what the account holds and exits are sized from them;
its fee counts as 0 in quote and an error on the heartbeat and in the log names the fee,
its currency and the trade, so the operator knows the net PnL leaves that fee out. Booking
the BNB as if it were USDT would be wrong by the price of BNB, and holding the fill back
until a price comes could leave it unbooked for good.
"""

from __future__ import annotations

import logging

from bot.model.fill import Fill
from bot.runtime import Runtime
from bot.venue.base import VenueError

log = logging.getLogger("tradedesk.fills")


def fee_in_quote(rt: Runtime, fill: Fill) -> float:
    """The fill's fee in its symbol's quote currency (see the module's docstring)."""
    currency = fill.third_fee_currency()
    if currency is None:
        return fill.fee_in_quote()
    quote = fill.symbol.split("/")[1]
    pair = f"{currency}/{quote}"
    price, why = _price(rt, pair)
    if price is not None:
        return fill.fee_in_quote(price)
    message = (f"fill {fill.trade_id}: its fee of {fill.fee_cost:.8g} {currency} is booked as "
               f"0 {quote} (no {pair} price: {why}); the net PnL leaves it out")
    log.error(message)
    rt.errors.append(message)
    return 0.0


def _price(rt: Runtime, pair: str) -> tuple[float | None, str]:
    """The last price of ``pair``: this iteration's quote of a traded symbol, else the
    venue's ticker; or None and why there is none."""
    quote = rt.quotes.get(pair)
    if quote is not None:
        return quote.last, ""
    try:
        last = rt.call(rt.venue.fetch_ticker, pair).get("last")
    except VenueError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if not last:
        return None, "the venue's ticker has no last price"
    return float(last), ""
