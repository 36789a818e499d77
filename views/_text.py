"""Stored values inside the console's markdown, shown as the literal text they hold.

Streamlit reads markdown in ``st.markdown``, captions, alerts, toasts, headers, metric labels
and values, tab labels and widget labels. A value read from the database (a bot's name, a
heartbeat's engine, a command's status, a reason) is written by a bot, a venue or an LLM,
so it must never form a link, emphasis, a code span, HTML or a Streamlit directive there.
"""

from __future__ import annotations

import re

# Every ASCII punctuation character: CommonMark lets each be backslash-escaped, so no link,
# emphasis, code span, HTML, directive (``:red[``) or math forms.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
# GitHub's autolinks (``https://…``, ``www.…``, ``name@host``) are found in the parsed text,
# after escapes are undone, so an invisible word joiner splits where each one starts.
LINK_BREAK = "\u2060"
_AUTOLINK_STARTS = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)


def literal(value: object) -> str:
    """``value`` as markdown that renders its text, on one line (None: empty)."""
    text = "" if value is None else str(value)
    text = _AUTOLINK_STARTS.sub(LINK_BREAK, _LINE_BREAKS.sub(" ", text))
    return _PUNCTUATION.sub(r"\\\1", text)
