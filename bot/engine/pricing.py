"""What an LLM call costs, in USD, from its token counts.

Prices come from ``genai-prices`` (a maintained table of every provider's list prices).
``LLM_PRICES_JSON`` overrides or extends it without a release, e.g.
``{"gemini-2.5-flash": {"input": 0.3, "output": 2.5, "cache_read": 0.03}}`` or
``{"my-model": [0.3, 2.5]}``. A local model (a base URL on this machine, or ``LLM_LOCAL``)
costs nothing. Prompt-cache writes and reads are billed at their own rates (Anthropic's
1.25x and 0.1x of the input rate), as genai-prices lists them. An override without
``cache_read``/``cache_write`` keeps genai-prices' ratio of them to the input rate for a
model it lists (an override mostly corrects a stale input rate, and providers price the
cache as a share of it), and charges the input rate for one it does not list, as for an
unknown model (a read never costs more than the input rate, so the cap errs early). The
session cost cap is only as good as these numbers, so an unknown paid model is priced at
the dearest known rate of its provider (the cap then trips early rather than late).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache

from genai_prices import Usage, calc_price, data

ENV_VAR = "LLM_PRICES_JSON"
LOCAL = "local"
UNKNOWN = "unknown model: priced at the maximum"
# genai-prices' id of each LLM_PROVIDER
PROVIDER_IDS = {"gemini": "google", "openai": "openai", "anthropic": "anthropic"}
_SAMPLE = 1000  # tokens: a size inside every first tier (tiers start at 128k or more)


@dataclass(frozen=True)
class Price:
    input_per_m: float
    output_per_m: float
    source: str  # "genai-prices", "LLM_PRICES_JSON", "local" or UNKNOWN
    cache_write_per_m: float | None = None  # None: the input rate
    cache_read_per_m: float | None = None

    def cost(self, tokens_in: int, tokens_out: int, cache_write: int = 0,
             cache_read: int = 0) -> float:
        """``tokens_in`` counts every input token, the cache's writes and reads among them."""
        write = self.input_per_m if self.cache_write_per_m is None else self.cache_write_per_m
        read = self.input_per_m if self.cache_read_per_m is None else self.cache_read_per_m
        plain = tokens_in - cache_write - cache_read
        return (plain * self.input_per_m + cache_write * write + cache_read * read
                + tokens_out * self.output_per_m) / 1_000_000


# A price from LLM_PRICES_JSON: input, output, cache write and cache read (None: not given)
Rates = tuple[float, float, float | None, float | None]


def overrides() -> dict[str, Rates]:
    """``LLM_PRICES_JSON`` as {model: rates}; a bad value is an error naming it."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return {}
    table: dict[str, Rates] = {}
    try:
        for model, value in json.loads(raw).items():
            given = value if isinstance(value, dict) else {"input": value[0], "output": value[1]}
            rates = [given["input"], given["output"], given.get("cache_write"),
                     given.get("cache_read")]
            inp, out, write, read = (None if r is None else float(r) for r in rates)
            if inp is None or out is None:
                raise ValueError("input and output prices are required")
            if any(r is not None and r < 0 for r in (inp, out, write, read)):
                raise ValueError("negative price")
            table[str(model)] = (inp, out, write, read)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"invalid {ENV_VAR}: {exc}") from None
    return table


def price_for(model: str, provider: str = "gemini", *, base_url: str | None = None,
              local: bool = False) -> Price:
    """The price of ``model`` as ``provider`` serves it (through ``base_url`` if given)."""
    if local:
        return Price(0.0, 0.0, LOCAL)
    name = model.removeprefix("models/")
    table = overrides()
    # The longest key the name starts with: versioned names share a price.
    matches = [key for key in table if name == key or name.startswith(key + "-")]
    provider_id = PROVIDER_IDS.get(provider, provider)
    if matches:
        inp, out, write, read = table[max(matches, key=len)]
        if write is None or read is None:
            listed = _listed(name, provider_id, base_url)
            write = _cache_default(write, listed, 2, inp)
            read = _cache_default(read, listed, 3, inp)
        return Price(inp, out, ENV_VAR, write, read)
    listed = _listed(name, provider_id, base_url)
    if listed is not None:
        inp, out, write, read = listed
        return Price(inp, out, "genai-prices", write, read)
    dearest = [*(rates[:2] for rates in table.values()), _dearest(provider_id)]
    return Price(max(p[0] for p in dearest), max(p[1] for p in dearest), UNKNOWN)


def cost_usd(model: str, tokens_in: int, tokens_out: int, provider: str = "gemini") -> float:
    return price_for(model, provider).cost(tokens_in, tokens_out)


def _cache_default(given: float | None, listed: tuple[float, float, float, float] | None,
                   index: int, inp: float) -> float:
    """An override's cache rate: as given, else genai-prices' ratio of it to the input rate
    applied to the override's input rate, else (a model it does not list) the input rate."""
    if given is not None:
        return given
    if listed is None or not listed[0]:
        return inp
    return round(inp * listed[index] / listed[0], 9)


@cache
def _listed(model: str, provider_id: str,
            base_url: str | None) -> tuple[float, float, float, float] | None:
    """Per-million rates from genai-prices, input, output, cache write and cache read: by
    the base URL's provider first (OpenRouter behind the OpenAI SDK is priced as
    OpenRouter), then by the provider's id. genai-prices counts cache tokens among the
    input tokens, and prices a cache it lists no rate for at the input rate."""
    samples = (Usage(input_tokens=_SAMPLE, output_tokens=_SAMPLE),
               Usage(input_tokens=_SAMPLE, cache_write_tokens=_SAMPLE),
               Usage(input_tokens=_SAMPLE, cache_read_tokens=_SAMPLE))
    lookups = [lambda usage: calc_price(usage, model, provider_api_url=base_url)] \
        if base_url else []
    lookups.append(lambda usage: calc_price(usage, model, provider_id=provider_id))
    for lookup in lookups:
        try:
            plain, write, read = (lookup(usage) for usage in samples)
        except LookupError:
            continue
        return (_per_million(plain.input_price), _per_million(plain.output_price),
                _per_million(write.input_price), _per_million(read.input_price))
    return None


@cache
def _dearest(provider_id: str) -> tuple[float, float]:
    """The highest input and output rates genai-prices lists for the provider (for an
    unknown provider, for every provider)."""
    providers = [p for p in data.providers if p.id == provider_id] or list(data.providers)
    rates = [(0.0, 0.0)]
    for provider in providers:
        for model in provider.models:
            try:
                found = calc_price(Usage(input_tokens=_SAMPLE, output_tokens=_SAMPLE), model.id,
                                   provider_id=provider.id)
            except (LookupError, ValueError, TypeError):
                continue
            rates.append((_per_million(found.input_price), _per_million(found.output_price)))
    return max(r[0] for r in rates), max(r[1] for r in rates)


def _per_million(price: object) -> float:
    return round(float(str(price)) * 1_000_000 / _SAMPLE, 9)
