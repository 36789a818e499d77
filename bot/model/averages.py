"""Moving averages as pandas-ta defines them, on plain arrays: one definition for the engine,
which decides on them, and the console's chart, which draws them (it may not import the
engine).

The EMA is pandas-ta's: seeded with the simple mean of its first ``length`` values, then
pandas' ``ewm(span=length, adjust=False)`` update, in the same float order, so the values are
pandas-ta's to the last bit (``tests/test_indicator_kernel.py``).
"""

from __future__ import annotations

import numba
import numpy as np

# These kernels, and the engine's that use this decorator, mirror pandas-ta and numpy
# operation by operation: each float result is one IEEE operation on the same operands in
# the same order as there, so they give the same bits. Hence no fastmath (it would reorder
# and fuse), and numpy's error model (a division by zero gives inf or NaN, as numpy's does,
# instead of raising). cache=True keeps the compiled code beside the module, so only the
# first run compiles.
compiled = numba.njit(cache=True, error_model="numpy")

# The spans of the EMAs the engine's trend signal compares (``IndicatorParams``), which the
# console's chart draws beside its decisions.
EMA_FAST_SPAN, EMA_SLOW_SPAN = 12, 26


@compiled
def pairwise_sum(values: np.ndarray) -> float:
    """numpy's float64 sum (``add.reduce``) of a contiguous array, in its order: eight
    running sums per block of at most 128, halves above that, onto the identity 0.0."""
    return 0.0 + _pairwise(values)


@compiled
def _pairwise(values: np.ndarray) -> float:
    n = len(values)
    if n < 8:
        total = -0.0
        for value in values:
            total += value
        return total
    if n <= 128:  # eight scalars, not an array: an allocation per window cost more
        r0, r1, r2, r3, r4, r5, r6, r7 = (values[0], values[1], values[2], values[3],
                                          values[4], values[5], values[6], values[7])
        i = 8
        while i < n - n % 8:
            r0 += values[i]
            r1 += values[i + 1]
            r2 += values[i + 2]
            r3 += values[i + 3]
            r4 += values[i + 4]
            r5 += values[i + 5]
            r6 += values[i + 6]
            r7 += values[i + 7]
            i += 8
        total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for k in range(i, n):
            total += values[k]
        return total
    half = n // 2
    half -= half % 8
    return _pairwise(values[:half]) + _pairwise(values[half:])


@compiled
def ewm(values: np.ndarray, com: float) -> np.ndarray:
    """pandas' ``ewm(com=..., adjust=False).mean()``, its update written out as it is.

    Takes the centre of mass because pandas converts span and alpha to it first, and the
    alpha it then derives is what the float results depend on.
    """
    alpha = 1.0 / (1.0 + com)
    factor = 1.0 - alpha
    out = np.empty(len(values))
    if not len(values):
        return out
    weighted = values[0]
    old_wt = 1.0
    out[0] = weighted
    for i in range(1, len(values)):
        cur = values[i]
        observed = cur == cur
        if weighted == weighted:
            old_wt *= factor
            if observed:
                if weighted != cur:
                    weighted = (old_wt * weighted + alpha * cur) / (old_wt + alpha)
                old_wt = 1.0
        elif observed:
            weighted = cur
        out[i] = weighted
    return out


@compiled
def sma_seeded(values: np.ndarray, length: int) -> np.ndarray:
    """pandas-ta's ``presma``: the first ``length`` values replaced by their mean."""
    seeded = values.copy()
    seeded[length - 1] = pairwise_sum(values[:length]) / length
    seeded[: length - 1] = np.nan
    return seeded


@compiled
def ema(close: np.ndarray, length: int) -> np.ndarray:
    if len(close) < length:
        return np.full(len(close), np.nan)
    return ewm(sma_seeded(close, length), (length - 1) / 2)  # ewm(span=length)


def writable(values: np.ndarray) -> np.ndarray:
    """A writable C array always: a read-only array (pandas' copy-on-write hands those out)
    is another type to numba, and would cost a second compilation."""
    return np.require(values, float, ("C", "W"))


def ema_of(values: np.ndarray, length: int) -> np.ndarray:
    """``ema`` of any float array."""
    return ema(writable(values), length)
