"""Sums and prices as people read them, in any quote currency.

Two decimals suit dollars; a BTC-quoted market's prices (ETH/BTC near 0.05) and a 1 BTC
account's PnL and fees (thousandths) read 0.05 and 0.00 to two decimals, whatever they
are. Below one, a figure keeps four significant digits instead (at most eight decimals,
a satoshi), and no more trailing zeros than two decimals need. A percentage keeps two
decimals, and two significant digits when it is too small for them: a 0.004 % return is not
0.00 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real

SIGNIFICANT = 4
MAX_DECIMALS = 8
PERCENT_SIGNIFICANT = 2  # of a percentage too small for two decimals


def decimals(size: float) -> int:
    """The decimals a figure of this size is shown with: two from 1 up (and for 0), below
    as many as keep four significant digits."""
    if size == 0 or abs(size) >= 1 or not math.isfinite(size):
        return 2
    return min(MAX_DECIMALS, SIGNIFICANT - 1 - math.floor(math.log10(abs(size))))


def decimals_for(values: Iterable[object], least: int = 2) -> int:
    """The decimals a column of figures (a table's, a chart's axis) is shown with: ``least``,
    or as many as keep its largest figure's four significant digits when that is below one
    (a BTC-quoted pair's prices, a 1 BTC account's fees), so they do not all read 0.00."""
    sizes = [abs(float(v)) for v in values if isinstance(v, Real) and v == v]
    return max(least, decimals(max(sizes, default=0.0)))


def figure(value: float, *, sign: bool = False) -> str:
    """``value`` with thousands separators: two decimals from 1 up, four significant digits
    below; ``sign``: a + before a positive figure (a change, a PnL)."""
    plus = "+" if sign else ""
    places = decimals(value)
    if places == 2:
        return f"{value:{plus},.2f}"
    text = f"{value:{plus},.{places}f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{whole}.{fraction}"


def percent(value: float, *, sign: bool = False) -> str:
    """``value`` percent with its sign: two decimals, or two significant digits for a
    non-zero one that two decimals show as 0.00 (0.004 %, -0.0012 %); ``sign``: a + before
    a positive one (a return)."""
    plus = "+" if sign else ""
    if value == 0 or abs(value) >= 0.005 or not math.isfinite(value):
        return f"{value:{plus},.2f} %"
    places = min(MAX_DECIMALS, PERCENT_SIGNIFICANT - 1 - math.floor(math.log10(abs(value))))
    return f"{value:{plus}.{places}f}".rstrip("0") + " %"
