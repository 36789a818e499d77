"""The one translation from ccxt's exception tree to the venue errors the loop understands.

The loop decides what to do from the error class alone (retry later, record a rejection,
treat the order as placed), so every ccxt call of the venue goes through ``to_venue_error``
and no other place guesses. ccxt puts URLs and response bodies in its messages; those may
carry keys or signatures, so the text is scrubbed before it reaches a log or the console.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import ccxt

from bot.secrets_filter import scrub
from bot.venue.base import (
    AccessRefused,
    DuplicateOrder,
    OrderNotFound,
    OrderRejected,
    TransientVenueError,
    VenueError,
)

# Exchanges that do not raise ccxt.DuplicateOrderId for a reused client id say so in words:
# binance spot "Duplicate order sent." (-2010), binance futures "ClientOrderId is duplicated"
# (-4116), and other venues "client order id already exists / must be unique".
DUPLICATE_RE = re.compile(
    r"duplicate\w*\s+order|client[\s_-]?order[\s_-]?id\W.{0,40}"
    r"(already|must be unique|duplicat|exists)",
    re.IGNORECASE,
)
# Venues that answer a cancel of a gone order with a generic InvalidOrder (kraken
# "EOrder:Unknown order", binance "Unknown order sent.") still mean "not found".
NOT_FOUND_RE = re.compile(r"unknown order|order (does not|doesn't) exist|order not found", re.I)
# binance's "Invalid API-key, IP, or permissions for action." (-2015), which ccxt raises as
# DDoSProtection once a signed request of the process was taken (it may be a ban for a
# while): a key refused all the same, never a fault to retry at once.
KEY_REFUSED_RE = re.compile(r'"code":\s*-2015\b')

# Refusals of the request itself: sending it again unchanged gets the same answer.
_REJECTED = (
    ccxt.InsufficientFunds,
    ccxt.InvalidOrder,
    ccxt.BadRequest,  # includes BadSymbol
    ccxt.OperationRejected,  # includes MarketClosed, RestrictedLocation
    ccxt.InvalidAddress,
)
# The request may not have been processed (or its answer was garbled): try again later.
_TRANSIENT = (ccxt.NetworkError, ccxt.BadResponse)


def error_class(exc: ccxt.BaseError) -> type[VenueError]:
    """The venue error class for a ccxt exception; the order of checks is the policy."""
    if isinstance(exc, ccxt.AuthenticationError):  # includes PermissionDenied, AccountSuspended
        return AccessRefused
    if isinstance(exc, ccxt.DDoSProtection) and KEY_REFUSED_RE.search(str(exc)):
        return AccessRefused
    if isinstance(exc, _TRANSIENT):
        # NetworkError covers RequestTimeout, RateLimitExceeded, DDoSProtection,
        # ExchangeNotAvailable and OnMaintenance.
        return TransientVenueError
    if isinstance(exc, ccxt.DuplicateOrderId):
        return DuplicateOrder
    if isinstance(exc, ccxt.OrderNotFound):
        return OrderNotFound
    message = str(exc)
    if isinstance(exc, ccxt.ExchangeError) and DUPLICATE_RE.search(message):
        return DuplicateOrder
    if isinstance(exc, ccxt.InvalidOrder) and NOT_FOUND_RE.search(message):
        return OrderNotFound
    if isinstance(exc, _REJECTED):
        return OrderRejected
    return VenueError


def to_venue_error(exc: ccxt.BaseError, context: str, secrets: Iterable[str]) -> VenueError:
    """The venue error to raise instead of ``exc``, its text scrubbed of ``secrets``.

    The ccxt class name stays in the text because it is what a person needs to diagnose
    the failure; the original exception is not chained, since its text is unscrubbed.
    """
    cls = error_class(exc)
    return cls(scrub(f"{context}: {type(exc).__name__}: {exc}", secrets))
