"""
Progress of many watches: where each stands, and how it is shown.

On a terminal a rich live view counts the watches per state, with the time
elapsed and the rate of transitions, and prints notable events above it.
Otherwise each event is one JSON line on stdout.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from .._errors import ConnectionExpiredError, ConnectionFailedError, PollTimeoutError
from .._models import ConnectionStatus, SyncStatus, Transition
from ._exit import describe
from ._render import Mode, Output, iso

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

__all__ = (
    "CONNECTION_STATES",
    "SYNC_STATES",
    "Lazy",
    "Tally",
    "View",
    "connection_label",
    "event_text",
    "open_view",
    "reason",
    "sync_label",
    "transition_record",
)

Lazy = Callable[[], "RenderableType"]
"""Builds an event's terminal line only when a terminal shows it."""

CONNECTION_STATES: Final = (
    "pending",
    "connected",
    "failed",
    "expired",
    "timed out",
    "error",
)
SYNC_STATES: Final = (
    "not connected",
    "syncing",
    "synced",
    "failed",
    "timed out",
    "error",
)

_RARE: Final = frozenset({"not connected", "timed out", "error"})
"""States the live view shows only while some watch is in them."""

_MARKS: Final = {
    "connected": ("✓", "green"),
    "synced": ("✓", "green"),
    "failed": ("✗", "red"),
    "error": ("✗", "red"),
    "expired": ("⌛", "yellow"),
    "timed out": ("⌛", "yellow"),
}


def connection_state(status: ConnectionStatus | None) -> str | None:
    """
    The state of a session as a plain string.
    """
    return None if status is None else str(status.status)


def sync_state(status: SyncStatus | None) -> str | None:
    """
    One word for a provider's sync: not connected, syncing, synced or failed.
    """
    if status is None:
        return None
    if not status.connected:
        return "not connected"
    if status.all_synced:
        return "synced"
    if status.settled:
        return "failed"
    return "syncing"


def _ending(change: Transition[Any]) -> str | None:
    error = change.error
    if isinstance(error, PollTimeoutError):
        return "timed out"
    if error is not None and not isinstance(
        error, (ConnectionFailedError, ConnectionExpiredError)
    ):
        return "error"
    return None


def reason(error: BaseException | None) -> str | None:
    """
    Why a watch ended badly, in a few words: no session id, no repetition.
    """
    if error is None or isinstance(error, ConnectionExpiredError):
        return None
    if isinstance(error, ConnectionFailedError):
        return error.error
    if isinstance(error, PollTimeoutError):
        return f"no end within {error.timeout:g} s"
    return describe(error)


def connection_label(change: Transition[ConnectionStatus]) -> str:
    """
    Where a connection watch stands after ``change``.
    """
    return _ending(change) or connection_state(change.current) or "error"


def sync_label(change: Transition[SyncStatus]) -> str:
    """
    Where a sync watch stands after ``change``.
    """
    return _ending(change) or sync_state(change.current) or "error"


def transition_record(change: Transition[Any], **extra: object) -> dict[str, Any]:
    """
    ``change`` as one JSON object: key, previous, current, at, terminal, error.

    A sync's previous and current are one word each; ``models`` gives each
    model's status.
    """
    key = change.key
    state = connection_state if key.kind == "connection" else sync_state
    record: dict[str, Any] = {
        "kind": key.kind,
        "key": key.target,
        **extra,
        "previous": state(change.previous),
        "current": state(change.current),
        "at": iso(change.at),
        "terminal": change.terminal,
        "error": None,
    }
    if change.error is not None:
        record["error"] = {
            "type": type(change.error).__name__,
            "message": str(change.error),
        }
    if isinstance(change.current, SyncStatus):
        record["models"] = {s.model: str(s.status) for s in change.current.syncs}
    return record


class Tally:
    """
    The state of every watch of one kind, and how many changes were seen.
    """

    __slots__ = ("_states", "name", "order", "transitions")

    def __init__(self, name: str, order: Sequence[str]) -> None:
        self.name = name
        self.order = order
        self.transitions = 0
        self._states: dict[object, str] = {}

    def set(self, key: object, state: str, *, change: bool = True) -> None:
        """
        Record that ``key`` is now in ``state``; ``change`` counts a transition.
        """
        self._states[key] = state
        if change:
            self.transitions += 1

    def get(self, key: object) -> str | None:
        """
        The state of ``key``, or None if it is not watched.
        """
        return self._states.get(key)

    def counts(self) -> Counter[str]:
        """
        How many watches are in each state.
        """
        return Counter(self._states.values())


class View(Protocol):
    """
    Where the events of a running job go.
    """

    def event(self, record: Mapping[str, Any], text: Lazy | None) -> None:
        """
        Show one event: ``record`` as a JSON line, or ``text()`` above the live view.
        """

    def message(self, text: str) -> None:
        """
        Show a note (rich markup) on a terminal; JSON output leaves it out.
        """


class _Lines:
    __slots__ = ("_out",)

    def __init__(self, out: Output) -> None:
        self._out = out

    def event(self, record: Mapping[str, Any], text: Lazy | None) -> None:
        self._out.record(record)

    def message(self, text: str) -> None:
        pass


class _Live:
    __slots__ = ("_live", "_started", "_tallies", "_title")

    def __init__(self, title: str, tallies: Sequence[Tally], started: float) -> None:
        self._title = title
        self._tallies = tallies
        self._started = started
        self._live: Any = None

    def event(self, record: Mapping[str, Any], text: Lazy | None) -> None:
        if text is not None:
            self._live.console.print(text())

    def message(self, text: str) -> None:
        self._live.console.print(text)

    def render(self) -> RenderableType:
        from rich.table import Table
        from rich.text import Text

        board = Table.grid(padding=(0, 2))
        board.add_row(Text(self._title, style="bold"))
        for tally in self._tallies:
            counts = tally.counts()
            row = Text()
            for state in tally.order:
                count = counts.get(state, 0)
                if not count and state in _RARE:
                    continue
                style = _MARKS.get(state, ("", "cyan"))[1] if count else "dim"
                if row:
                    row.append("  ")
                row.append(f"{state} {count}", style=style)
            board.add_row(Text.assemble((f"{tally.name:<12}", "bold"), row))
        elapsed = time.monotonic() - self._started
        transitions = sum(tally.transitions for tally in self._tallies)
        rate = transitions / elapsed if elapsed > 0 else 0.0
        board.add_row(
            Text(
                f"{elapsed:6.1f} s elapsed   {transitions} transitions   {rate:.1f}/s",
                style="dim",
            )
        )
        return board


@contextlib.contextmanager
def open_view(out: Output, title: str, tallies: Sequence[Tally]) -> Iterator[View]:
    """
    A live view on a terminal, JSON lines otherwise, for the duration of a job.
    """
    if out.mode is not Mode.TABLE:
        yield _Lines(out)
        return

    from rich.live import Live

    view = _Live(title, tallies, time.monotonic())
    with Live(
        get_renderable=view.render,
        console=out.console,
        refresh_per_second=8,
        transient=False,
    ) as live:
        view._live = live
        yield view


def mark(state: str) -> tuple[str, str]:
    """
    The symbol and colour of a state in event lines.
    """
    return _MARKS.get(state, ("·", "cyan"))


def event_text(subject: str, state: str, detail: str | None = None) -> Text:
    """
    A one-line event for the terminal: ``✓ subject connected (detail)``.
    """
    from rich.text import Text

    symbol, style = mark(state)
    text = Text.assemble((f"{symbol} ", style), subject + " ", (state, style))
    if detail:
        text.append(f"  {detail}", style="dim")
    return text
