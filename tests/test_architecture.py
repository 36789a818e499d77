"""The import rules of docs/architecture.md, checked on the source (at the top of a file or
inside a function):

- the domain knows no storage: no module under the engines, the venues or the model imports
  ``db``. The store builds the domain's values and the loop hands them over
  (``bot.model``); an engine or a venue that reached into ``db`` would bring the database
  back into code that must run on values alone;
- ``select(`` appears only under ``db/``: every SQL statement is the store's;
- no step imports another step: what two steps share is a service of ``bot/``
  (``bot.booking``, ``bot.reconcile``...), so a step can be read, and changed, alone;
- the console (``console.py``, ``views/``) never imports the venue nor the engine: it reads
  the store and writes commands, and cannot trade;
- the bot never imports Streamlit: it runs without the console.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORAGE_FREE = ("bot/engine", "bot/venue", "bot/model")


def imported_modules(source: str) -> list[tuple[int, str]]:
    """Every absolute module a source imports, with its line: ``import a.b``, and
    ``from a.b import c`` as both ``a.b`` and ``a.b.c`` (``c`` may be a module).
    Relative imports stay in their own package."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def sources(*places: str) -> list[Path]:
    """The Python files of folders (recursively) and single files, relative to the root."""
    found: list[Path] = []
    for place in places:
        path = ROOT / place
        found.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return found


def imports_of(places: tuple[str, ...], packages: tuple[str, ...]) -> list[str]:
    """Where a file of ``places`` imports a module within one of ``packages``."""
    return [f"{path.relative_to(ROOT)}:{line} imports {module}"
            for path in sources(*places)
            for line, module in imported_modules(path.read_text())
            if any(within(module, package) for package in packages)]


def test_the_parser_sees_every_form_of_import() -> None:
    source = ("import db\nimport db.models as m\nfrom db import retry\n"
              "def f():\n    from db.retry import Outage\nfrom .db import x\nimport dbx\n")
    modules = sorted(module for _, module in imported_modules(source))
    assert modules == ["db", "db", "db.models", "db.retry", "db.retry", "db.retry.Outage", "dbx"]
    assert not within("dbx", "db") and within("db.retry", "db") and within("db", "db")


def test_engines_venues_and_the_model_import_no_storage() -> None:
    assert all((ROOT / folder).is_dir() for folder in STORAGE_FREE)
    assert imports_of(STORAGE_FREE, ("db",)) == []


SELECT = re.compile(r"\bselect\(")


def test_select_appears_only_under_db() -> None:
    assert SELECT.search("rows = sa.select(Order)") and not SELECT.search("st.multiselect(")
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for path in sources("bot", "views", "console.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if SELECT.search(line)]
    assert offenders == []


DATAFRAME = re.compile(r"\bst\.dataframe\(")


def test_pages_show_their_tables_through_one_function() -> None:
    """Every page's table goes through ``views._tables.table``, which words its headers and
    formats its money alike everywhere."""
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for path in sources("views", "console.py")
                 if path.name != "_tables.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if DATAFRAME.search(line)]
    assert offenders == []


REMOTE_CONTROL = ("bot/remote.py", "bot/telegram.py", "bot/mcp_server.py")


def test_remote_control_reaches_no_venue_nor_engine() -> None:
    """Telegram and MCP read the store and queue commands; the bot alone trades."""
    offenders = [f"{name}:{line} imports {module}" for name in REMOTE_CONTROL
                 for line, module in imported_modules((ROOT / name).read_text())
                 if module.startswith(("bot.venue", "bot.engine", "ccxt"))]
    assert offenders == []


def test_no_step_imports_another_step() -> None:
    steps = sources("bot/steps")
    assert len(steps) > 3
    offenders = []
    for path in steps:
        for line, module in imported_modules(path.read_text()):
            if within(module, "bot.steps") and module not in ("bot.steps", f"bot.steps.{path.stem}"):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == []


def test_the_console_imports_neither_the_venue_nor_the_engine() -> None:
    assert (ROOT / "console.py").is_file() and (ROOT / "views").is_dir()
    assert imports_of(("console.py", "views"), ("bot.venue", "bot.engine")) == []


def test_the_bot_never_imports_streamlit() -> None:
    assert imports_of(("bot",), ("streamlit",)) == []


def test_migrations_import_nothing_of_the_application() -> None:
    """A migration runs on the schema of its own revision, while the application's models
    and functions follow the newest one: a backfill calling them breaks the upgrade of an
    older database as soon as a later revision adds a column they read. What a new table
    holds for the rows already stored is written at the head, after the upgrade
    (``db.backfill``)."""
    versions = sources("db/migrations/versions")
    assert len(versions) > 10
    assert imports_of(("db/migrations/versions",), ("db", "bot", "views")) == []
