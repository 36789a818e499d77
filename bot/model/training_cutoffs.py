"""Training cutoffs: whether a replay's days are ones the model may have read about.

A model trained on text from after a replayed day may know what the market did next, so
its results on that day may be contaminated. The table holds the knowledge cutoffs the
providers publish, by model-name prefix, each taken as the last day of its month (a cutoff
known to the month could fall anywhere in it, and erring late only warns more).
``LLM_TRAINING_CUTOFF`` overrides it for any model.
"""

from __future__ import annotations

from datetime import date

# model-name prefix -> the last day of the published cutoff month; the longest prefix wins
TRAINING_CUTOFFS: dict[str, date] = {
    "gpt-4o": date(2023, 10, 31),
    "gpt-4-turbo": date(2023, 12, 31),
    "gpt-4.1": date(2024, 6, 30),
    "gpt-5": date(2024, 9, 30),
    "o1": date(2023, 10, 31),
    "o3": date(2024, 6, 30),
    "o4-mini": date(2024, 6, 30),
    "claude-3-5-sonnet": date(2024, 4, 30),
    "claude-3-5-haiku": date(2024, 7, 31),
    "claude-3-7-sonnet": date(2024, 10, 31),
    "claude-sonnet-4": date(2025, 3, 31),
    "claude-opus-4": date(2025, 3, 31),
    "claude-sonnet-4-5": date(2025, 7, 31),
    "claude-haiku-4-5": date(2025, 2, 28),
    "gemini-2.0-flash": date(2024, 8, 31),
    "gemini-2.5": date(2025, 1, 31),
    "llama3.1": date(2023, 12, 31),
    "llama-3.1": date(2023, 12, 31),
}


def training_cutoff(model: str, override: date | None = None) -> date | None:
    """The model's training cutoff: the override, else the table's longest prefix of the
    model's name (an OpenRouter-style ``vendor/model`` is read by its model part)."""
    if override is not None:
        return override
    name = model.rsplit("/", 1)[-1].lower()
    found = [prefix for prefix in TRAINING_CUTOFFS if name.startswith(prefix)]
    return TRAINING_CUTOFFS[max(found, key=len)] if found else None


def contamination_warning(provider: str, model: str, first_day: date, last_day: date,
                          override: date | None = None) -> str | None:
    """In words, why a replay's results may be contaminated (days before the model's
    cutoff), or that the cutoff is unknown; None for the rules engine or days after it."""
    if provider == "rules":
        return None
    cutoff = training_cutoff(model, override)
    if cutoff is None:
        return (f"The training cutoff of {model} is not known: its results may be contaminated "
                "if it was trained after these days; set LLM_TRAINING_CUTOFF=YYYY-MM-DD to "
                "check.")
    if first_day > cutoff:
        return None
    span = "all" if last_day <= cutoff else "some"
    return (f"{span.capitalize()} of the replayed days ({first_day} to {last_day}) fall on or "
            f"before {model}'s training cutoff ({cutoff}"
            f"{', LLM_TRAINING_CUTOFF' if override else ''}): the model may have read what "
            "the market did next, so these results may be contaminated.")
