"""
``wait`` and ``watch-sync``: many sessions or providers at once, through one
monitor, with live progress.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .._models import ConnectionStatus, SyncStatus, Transition
from ._exit import Exit
from ._inputs import make_client
from ._progress import (
    CONNECTION_STATES,
    SYNC_STATES,
    Tally,
    connection_label,
    event_text,
    open_view,
    reason,
    sync_label,
    transition_record,
)
from ._render import Output

__all__ = ("UNTIL", "wait", "watch_sync")

UNTIL: dict[str, Callable[[SyncStatus], bool]] = {
    "all-synced": lambda status: status.all_synced,
    "settled": lambda status: status.settled,
}


async def wait(args: argparse.Namespace, out: Output) -> Exit:
    """
    ``wait SESSION_ID...``: exit status 0 only if every session connected.
    """
    sessions = list(dict.fromkeys(args.session_ids))
    tally = Tally("sessions", CONNECTION_STATES)
    for session_id in sessions:
        tally.set(session_id, "pending", change=False)

    title = f"Waiting on {len(sessions)} connect session(s)"
    async with make_client(args) as client, client.monitor() as monitor:
        for session_id in sessions:
            monitor.watch_connection(
                session_id, interval=args.interval, timeout=args.watch_timeout
            )
        with open_view(out, title, [tally]) as view:
            async for change in monitor:
                state = connection_label(change)
                tally.set(change.key.target, state)
                view.event(
                    transition_record(change),
                    _connection_line(change, state) if change.terminal else None,
                )

    connected = all(tally.get(s) == "connected" for s in sessions)
    return Exit.OK if connected else Exit.FAILED


def _connection_line(change: Transition[ConnectionStatus], state: str) -> Any:
    return lambda: event_text(change.key.target, state, reason(change.error))


async def watch_sync(args: argparse.Namespace, out: Output) -> Exit:
    """
    ``watch-sync PROVIDER...``: exit status 0 only if every provider synced.
    """
    tally = Tally("syncs", SYNC_STATES)
    async with make_client(args) as client, client.monitor() as monitor:
        providers = {
            monitor.watch_sync(
                provider,
                interval=args.interval,
                until=UNTIL[args.until],
                timeout=args.watch_timeout,
            ).target
            for provider in dict.fromkeys(args.providers)
        }
        title = f"Watching the sync of {len(providers)} provider(s) until {args.until}"
        with open_view(out, title, [tally]) as view:
            async for change in monitor:
                state = sync_label(change)
                tally.set(change.key.target, state)
                view.event(transition_record(change), _sync_line(change, state))

    synced = all(tally.get(p) == "synced" for p in providers)
    return Exit.OK if synced else Exit.FAILED


def _sync_line(change: Transition[SyncStatus], state: str) -> Any:
    def text() -> Any:
        detail = reason(change.error)
        if (
            detail is None
            and change.current is not None
            and change.current.failed_models
        ):
            detail = ", ".join(s.model for s in change.current.failed_models)
        return event_text(change.key.target, state, detail)

    return text
