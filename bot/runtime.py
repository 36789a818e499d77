"""What one running bot holds between loop iterations.

The database is the truth; this is the working memory that makes an iteration cheap
(the position book folded from fills, the latest quotes, the breaker), all of it rebuilt
from the database on start so a restart continues exactly where the bot stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import sessionmaker

from bot.alerts.sink import EventSink
from bot.breaker import CircuitBreaker
from bot.config import Settings
from bot.engine.base import DecisionEngine, EngineResult
from bot.engine.prompt import PROMPT_VERSION
from bot.fleet import order_prefix
from bot.guard import StopGuard
from bot.model.quote import Quote
from bot.positions import PositionBook
from bot.run_settings import settings_record
from bot.secrets_filter import scrub
from bot.store import Store
from bot.venue.base import AccessRefused, TransientVenueError, Venue
from db.models import utcnow
from db.retry import Outage
from db.trades import fills_of_sessions

if TYPE_CHECKING:
    from bot.notify import CommandListener

T = TypeVar("T")
log = logging.getLogger("tradedesk.bot")


@dataclass
class Runtime:
    settings: Settings
    db: sessionmaker
    venue: Venue
    engine: DecisionEngine
    kind: str = "live"
    # decides beside an LLM on the same context, recorded on its trace, never executed
    shadow: DecisionEngine | None = None
    run_name: str = "live"
    session_id: int = 0
    session_day: Any = None
    book: PositionBook = field(default_factory=PositionBook)
    quotes: dict[str, Quote] = field(default_factory=dict)
    breaker: CircuitBreaker | None = None
    paused: bool = False
    stop_requested: bool = False
    skipped_foreign_fills: int = 0
    # plan id -> why it must exit: an exit the venue's faults kept from being placed, owed
    # whatever the price does next (``bot.booking.exit_plan``); read from the journal at
    # start (``db.orders.owed_exits``), so a restart owes what the run before it owed
    owed_exits: dict[int, str] = field(default_factory=dict)
    # the clock of the last fill sync that read its whole window (at start: when the run's
    # newest session opened); the next window reaches TRADE_SYNC_CUTOFF_MINUTES before it,
    # so a bot or venue down longer than that still books every fill of ours
    fills_synced_at: datetime | None = None
    step_durations: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    urgent_check: Callable[[], bool] | None = None
    # the engine calls an urgent command abandoned, still running: (session id, trace id,
    # call), their cost booked on the trace once they answer (``bot.steps.decide``)
    abandoned_calls: list[tuple[int, int, Future[EngineResult]]] = field(default_factory=list)
    # waits for a command's NOTIFY between iterations (PostgreSQL); None: poll only
    command_listener: CommandListener | None = None
    # waits out a database that is unreachable, locked or full (``bot.loop.run_forever``)
    outage: Outage = field(default_factory=Outage)
    # the open plans' stops, guarded while an outage is waited out (``bot.guard``)
    guard: StopGuard = field(default_factory=StopGuard)
    # the wall clock, which times commands as their created_at is timed (``now`` is the
    # venue's clock: a replay's is simulated)
    wall_clock: Callable[[], datetime] = utcnow
    # what each session of this run records it traded with (``bot.run_settings``); empty:
    # the settings as they are, with the prompt version
    run_settings: dict[str, Any] = field(default_factory=dict)
    # the operator's notifications (``bot.alerts``); silent unless NOTIFY_URLS is set
    events: EventSink = field(default_factory=EventSink)
    # every copy of its rows and every counter over them (``bot.store``), on ``db``
    store: Store = field(init=False, repr=False)
    # the secret values a trace's text is masked of (``Settings.secret_values``)
    secrets: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.store = Store(self.db, self.kind, self.run_name)
        self.secrets = self.settings.secret_values()
        if not self.run_settings:
            self.run_settings = settings_record(self.settings, prompt_version=PROMPT_VERSION)
        self.venue.use_outage(self.outage)
        if self.breaker is None:
            self.breaker = CircuitBreaker(
                self.settings.circuit_breaker_errors,
                self.settings.circuit_breaker_cooldown_seconds,
            )
        self.breaker.on_change = self.events.breaker_changed

    @property
    def venue_key(self) -> str:
        """Names the account fills come from; the unique key of a fill is (venue_key, id)."""
        if self.venue.is_paper:
            return f"paper:{self.kind}:{self.run_name}"
        return self.venue.name

    @property
    def prefix(self) -> str:
        """This bot's own orders and fills carry it; see ``bot.fleet.order_prefix``."""
        return order_prefix(self.settings) + "-"

    def owns(self, client_order_id: str | None) -> bool:
        """Whether a client order id carries this bot's prefix. The ``-`` ends the prefix and
        prefixes are alphanumeric, so ``td-`` never matches ``tdx-``'s orders."""
        return bool(client_order_id and client_order_id.startswith(self.prefix))

    def now(self) -> datetime:
        return self.venue.now()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the venue, feeding the breaker with the outcome."""
        assert self.breaker is not None
        what = getattr(fn, "__name__", repr(fn))
        try:
            result = fn(*args, **kwargs)
        except TransientVenueError:
            self.breaker.record_error(self.now())
            raise
        except AccessRefused as exc:
            self.breaker.record_refusal(self.now(), what, self.words(exc))
            raise
        self.breaker.record_success(self.now(), what)
        return result

    def words(self, exc: BaseException) -> str:
        """What ``exc`` says, fit to store and show: a venue's or an SDK's error may echo a
        key it was sent, so the secrets are masked (and signed request parameters)."""
        return scrub(exc, self.secrets)

    def note_error(self, where: str, exc: BaseException) -> None:
        """An error of this iteration: logged, and the heartbeat's last error (stored,
        shown on the console and in ``watch``'s alerts)."""
        message = f"{where}: {type(exc).__name__}: {self.words(exc)}"
        log.error(message, exc_info=not isinstance(exc, TransientVenueError | AccessRefused))
        self.errors.append(message)

    def session_ids(self, db) -> list[int]:
        """Every session of this run (``Store.session_ids``)."""
        return self.store.session_ids(db, self.session_id)

    def load_book(self) -> None:
        """Fold every fill of this run into the position book, oldest first."""
        with self.db() as db:
            rows = fills_of_sessions(db, self.session_ids(db))
        self.book = PositionBook.from_fills([(r[0], r[1], r[2], r[3]) for r in rows])
