"""What a reader sees of the console's markdown: ``views._text.literal`` escapes undone."""

from __future__ import annotations

import re

from views._text import LINK_BREAK


def as_rendered(source: str) -> str:
    """``source`` with its backslash escapes and link breaks removed, as it reads on screen."""
    return re.sub(r"\\(.)", r"\1", source).replace(LINK_BREAK, "")
