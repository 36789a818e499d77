"""What an LLM call costs, in USD, from its token counts.

The session cost cap is only as good as these numbers, so an unknown model is priced at
the most expensive known rate (the cap then trips early rather than late). List prices
change: ``LLM_PRICES_JSON`` overrides or extends the table without a release, e.g.
``{"gemini-2.5-flash": {"input": 0.3, "output": 2.5}}`` or ``{"my-model": [0.3, 2.5]}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

# USD per million tokens, paid tier, text, prompts up to 200k tokens; thinking tokens are
# billed as output. Read from https://ai.google.dev/gemini-api/docs/pricing on the date
# below (from memory of that page; not re-checked from this environment, which has no web).
PRICES_READ_ON = "2025-11-20"
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gemini-3-pro-preview": (2.00, 12.00),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.0-flash-lite": (0.075, 0.30),
}
ENV_VAR = "LLM_PRICES_JSON"


@dataclass(frozen=True)
class Price:
    input_per_m: float
    output_per_m: float
    source: str  # "table", "LLM_PRICES_JSON", or "unknown model: priced at the maximum"


def price_table() -> dict[str, tuple[float, float]]:
    """The defaults with the environment override applied; a bad override is an error."""
    table = dict(DEFAULT_PRICES)
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return table
    try:
        data = json.loads(raw)
        for model, value in data.items():
            pair = (value["input"], value["output"]) if isinstance(value, dict) else value
            inp, out = float(pair[0]), float(pair[1])
            if inp < 0 or out < 0:
                raise ValueError("negative price")
            table[str(model)] = (inp, out)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"invalid {ENV_VAR}: {exc}") from None
    return table


def price_for(model: str) -> Price:
    """The longest table key the model name starts with: versioned names share a price."""
    table = price_table()
    source = "LLM_PRICES_JSON" if os.environ.get(ENV_VAR, "").strip() else "table"
    name = model.removeprefix("models/")
    matches = [key for key in table if name == key or name.startswith(key + "-")]
    if matches:
        inp, out = table[max(matches, key=len)]
        return Price(inp, out, source)
    inp = max(p[0] for p in table.values())
    out = max(p[1] for p in table.values())
    return Price(inp, out, "unknown model: priced at the maximum")


def cost_usd(model: str, tokens_in: int, tokens_out: int) -> float:
    price = price_for(model)
    return (tokens_in * price.input_per_m + tokens_out * price.output_per_m) / 1_000_000
