"""The domain knows no storage: no module under the engines, the venues or the model
imports ``db``, at the top of the file or inside a function.

The store builds the domain's values and the loop hands them over (``bot.model``); an
engine or a venue that reached into ``db`` would bring the database back into code that
must run on values alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORAGE_FREE = ("bot/engine", "bot/venue", "bot/model")


def imported_modules(source: str) -> list[tuple[int, str]]:
    """Every absolute module a source imports, with its line: ``import a.b`` and
    ``from a.b import c`` (relative imports stay in their own package)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def storage_imports(folder: str) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {module}"
            for path in sorted((ROOT / folder).rglob("*.py"))
            for line, module in imported_modules(path.read_text())
            if module == "db" or module.startswith("db.")]


def test_the_parser_sees_every_form_of_import() -> None:
    source = ("import db\nimport db.models as m\nfrom db import retry\n"
              "def f():\n    from db.retry import Outage\nfrom .db import x\nimport dbx\n")
    modules = sorted(module for _, module in imported_modules(source))
    assert modules == ["db", "db", "db.models", "db.retry", "dbx"]


def test_engines_venues_and_the_model_import_no_storage() -> None:
    assert all((ROOT / folder).is_dir() for folder in STORAGE_FREE)
    offenders = [found for folder in STORAGE_FREE for found in storage_imports(folder)]
    assert offenders == []


REMOTE_CONTROL = ("bot/remote.py", "bot/telegram.py", "bot/mcp_server.py")


def test_remote_control_reaches_no_venue_nor_engine() -> None:
    """Telegram and MCP read the store and queue commands; the bot alone trades."""
    offenders = [f"{name}:{line} imports {module}" for name in REMOTE_CONTROL
                 for line, module in imported_modules((ROOT / name).read_text())
                 if module.startswith(("bot.venue", "bot.engine", "ccxt"))]
    assert offenders == []
