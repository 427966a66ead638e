"""
``onboard FILE``: a bulk job, one organisation and provider per line.

Every line is connected (direct providers with their config; browser ones
print their link), every browser session is waited on through one monitor,
then the first sync of each connection is watched until it settles. Each
organisation has its own client made with ``with_options``, so they all
share one connection pool and one concurrency limit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import attrs

from .._client import AsyncOutlit
from .._errors import OutlitError
from .._models import BrowserSession, ConnectionStatus, SyncStatus, Transition
from .._monitor import Monitor
from . import _tables
from ._exit import CommandError, Exit, describe, say
from ._inputs import is_variable_name, make_client
from ._progress import (
    CONNECTION_STATES,
    SYNC_STATES,
    Tally,
    View,
    connection_label,
    event_text,
    open_view,
    reason,
    sync_label,
    transition_record,
)
from ._render import Mode, Output

__all__ = ("Job", "Onboarding", "onboard", "parse_jobs", "summarize")

_FIELDS: Final = {"org": str, "provider": str, "config": dict, "key_env": str}
_REQUIRED: Final = ("org", "provider")
_CONNECTED: Final = ("connected", "already connected")


@attrs.define(eq=False)
class Job:
    """
    One line of the file: an organisation's provider, and what became of it.

    :ivar connection: connected, already connected, pending, failed, expired,
        timed out or error.
    :ivar sync: synced, failed, timed out, error, or ``-`` when not watched.
    """

    index: int
    line: int
    org: str
    provider: str
    config: dict[str, Any] | None = attrs.field(default=None, repr=False)
    key: str = attrs.field(default="", repr=False)
    client: AsyncOutlit | None = attrs.field(default=None, repr=False)
    connection: str = "-"
    connection_error: str | None = None
    sync: str = "-"
    sync_error: str | None = None

    @property
    def ok(self) -> bool:
        """
        Whether the provider connected and its first sync succeeded.
        """
        return self.connection in _CONNECTED and self.sync == "synced"

    def subject(self) -> str:
        """
        ``org provider``, for event lines.
        """
        return f"{self.org} {self.provider}"

    def fields(self) -> dict[str, Any]:
        """
        The fields that name this job in JSON records.
        """
        return {"line": self.line, "org": self.org, "provider": self.provider}


def parse_jobs(
    lines: Iterable[str], *, default_key_env: str
) -> tuple[list[Job], list[tuple[int, str]]]:
    """
    The jobs of a JSON-lines file, and ``(line number, reason)`` for bad lines.

    A line may name the environment variable holding its organisation's key
    in ``key_env``; without it the key comes from ``default_key_env``. A key
    itself never belongs in the file. Blank lines are skipped.
    """
    jobs: list[Job] = []
    bad: list[tuple[int, str]] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            jobs.append(_parse_line(text, number, len(jobs), default_key_env))
        except ValueError as exc:
            bad.append((number, str(exc)))
    return jobs, bad


def _parse_line(text: str, number: int, index: int, default_key_env: str) -> Job:
    try:
        item = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON (column {exc.colno}: {exc.msg})") from None
    if not isinstance(item, dict):
        raise ValueError("expected a JSON object with 'org' and 'provider'")

    unknown = sorted(set(item) - set(_FIELDS))
    if unknown:
        hint = (
            "; name the environment variable that holds a key in 'key_env'"
            if any("key" in name for name in unknown)
            else ""
        )
        raise ValueError(f"unknown field(s) {', '.join(unknown)}{hint}")
    for name in _REQUIRED:
        if name not in item:
            raise ValueError(f"missing '{name}'")
    for name, kind in _FIELDS.items():
        value = item.get(name)
        if name in item and (not isinstance(value, kind) or value == ""):
            expected = "an object" if kind is dict else "a non-empty string"
            raise ValueError(f"'{name}' must be {expected}")

    key_env = item.get("key_env", default_key_env)
    if not is_variable_name(key_env):
        raise ValueError("'key_env' must name an environment variable, not hold a key")
    key = os.environ.get(key_env)
    if not key:
        raise ValueError(f"the key environment variable {key_env} is not set")
    return Job(
        index, number, item["org"], item["provider"], item.get("config"), key=key
    )


LinkHook = Callable[[Job, BrowserSession], None]


@attrs.define(eq=False)
class Onboarding:
    """
    Connect, wait and watch the first sync of many jobs under one monitor.

    :ivar on_link: called with each browser session as it opens.
    """

    jobs: Sequence[Job]
    view: View
    connections: Tally
    syncs: Tally
    interval: float
    timeout: float
    workers: int
    on_link: LinkHook | None = None

    async def run(self, client: AsyncOutlit) -> None:
        """
        Run every job to its end; ``client`` hosts the monitor and the pool.
        """
        for job in self.jobs:
            if job.client is None:
                self.connections.set(job.index, "error")
        async with client.monitor() as monitor:
            pending = iter([job for job in self.jobs if job.client is not None])
            async with anyio.create_task_group() as group:
                for _ in range(max(1, min(self.workers, len(self.jobs)))):
                    group.start_soon(self._connect_each, pending, monitor)
            async for change in monitor:
                job = self.jobs[_index(change.key.tag)]
                if change.key.kind == "connection":
                    self._connection_changed(monitor, job, change)
                else:
                    self._sync_changed(job, change)

    async def _connect_each(self, jobs: Iterable[Job], monitor: Monitor) -> None:
        for job in jobs:
            await self._connect(job, monitor)

    async def _connect(self, job: Job, monitor: Monitor) -> None:
        assert job.client is not None
        try:
            answer = await job.client.integrations.connect(job.provider, job.config)
        except (OutlitError, ValueError, TypeError) as exc:
            self._connect_failed(job, exc)
            return

        if isinstance(answer, BrowserSession):
            job.connection = "pending"
            self.connections.set(job.index, "pending", change=False)
            monitor.watch_connection(
                answer.session_id,
                interval=self.interval,
                timeout=self.timeout,
                client=job.client,
                tag=job.index,
            )
            record = {
                "event": "link",
                **job.fields(),
                "session_id": answer.session_id,
                "connect_url": answer.connect_url,
            }
            self.view.event(
                record,
                lambda: event_text(
                    job.subject(), "pending", f"open {answer.connect_url}"
                ),
            )
            if self.on_link is not None:
                self.on_link(job, answer)
            return

        job.connection = (
            "already connected" if answer.already_connected else "connected"
        )
        self.connections.set(job.index, "connected")
        record = {
            "event": "connect",
            **job.fields(),
            "outcome": job.connection,
            "connection_id": answer.connection_id,
        }
        self.view.event(record, lambda: event_text(job.subject(), job.connection))
        self._watch_sync(monitor, job)

    def _connect_failed(self, job: Job, exc: BaseException) -> None:
        job.connection = "error"
        job.connection_error = describe(exc)
        self.connections.set(job.index, "error")
        record = {
            "event": "connect",
            **job.fields(),
            "outcome": "error",
            "error": {"type": type(exc).__name__, "message": str(exc)},
        }
        self.view.event(
            record, lambda: event_text(job.subject(), "error", job.connection_error)
        )

    def _watch_sync(self, monitor: Monitor, job: Job) -> None:
        job.sync = "syncing"
        self.syncs.set(job.index, "syncing", change=False)
        monitor.watch_sync(
            job.provider,
            interval=self.interval,
            until=lambda status: status.settled,
            timeout=self.timeout,
            client=job.client,
            tag=job.index,
        )

    def _connection_changed(
        self, monitor: Monitor, job: Job, change: Transition[ConnectionStatus]
    ) -> None:
        state = connection_label(change)
        self.connections.set(job.index, state)
        detail = reason(change.error)
        self.view.event(
            transition_record(change, event="transition", **job.fields()),
            (lambda: event_text(job.subject(), state, detail))
            if change.terminal
            else None,
        )
        if not change.terminal:
            return
        job.connection = state
        job.connection_error = detail
        if state == "connected":
            self._watch_sync(monitor, job)

    def _sync_changed(self, job: Job, change: Transition[SyncStatus]) -> None:
        state = sync_label(change)
        self.syncs.set(job.index, state)
        detail = reason(change.error)
        if (
            detail is None
            and change.current is not None
            and change.current.failed_models
        ):
            detail = ", ".join(s.model for s in change.current.failed_models)
        self.view.event(
            transition_record(change, event="transition", **job.fields()),
            (lambda: event_text(f"{job.subject()} sync", state, detail))
            if change.terminal
            else None,
        )
        if change.terminal:
            job.sync = state
            job.sync_error = detail


def _index(tag: object) -> int:
    assert isinstance(tag, int)
    return tag


def bind_clients(args: argparse.Namespace, jobs: Sequence[Job]) -> AsyncOutlit | None:
    """
    Give each job its organisation's client; answer the one that owns the pool.

    The first key makes the client; every other key gets a ``with_options``
    copy of it. A key the client refuses fails its jobs, not the run.
    """
    base: AsyncOutlit | None = None
    clients: dict[str, AsyncOutlit] = {}
    for job in jobs:
        try:
            client = clients.get(job.key)
            if client is None:
                if base is None:
                    client = base = make_client(args, key=job.key)
                else:
                    client = base.with_options(api_key=job.key)
                clients[job.key] = client
            job.client = client
        except OutlitError as exc:
            job.connection = "error"
            job.connection_error = describe(exc)
    return base


def summarize(out: Output, jobs: Sequence[Job], bad_lines: int) -> None:
    """
    The summary: one row per job, then the totals.
    """
    if out.mode is not Mode.TABLE:
        for job in jobs:
            out.record(
                {
                    "event": "result",
                    **job.fields(),
                    "connection": job.connection,
                    "connection_error": job.connection_error,
                    "sync": job.sync,
                    "sync_error": job.sync_error,
                    "ok": job.ok,
                }
            )
        out.record(_totals(jobs, bad_lines))
        return

    rows = [
        [
            job.org,
            job.provider,
            _cell(job.connection, job.connection_error),
            _cell(job.sync, job.sync_error),
        ]
        for job in jobs
    ]
    totals = _totals(jobs, bad_lines)
    caption = (
        f"{totals['connected']} of {totals['jobs']} connected, "
        f"{totals['synced']} synced"
        + (f", {bad_lines} bad line(s)" if bad_lines else "")
    )
    summary = _tables.table("Summary", ["org", "provider", "connection", "sync"], rows)
    summary.caption = caption
    out.console.print(summary)


def _cell(state: str, error: str | None) -> str:
    return state if error is None else f"{state}: {error}"


def _totals(jobs: Sequence[Job], bad_lines: int) -> dict[str, Any]:
    return {
        "event": "summary",
        "jobs": len(jobs),
        "connected": sum(job.connection in _CONNECTED for job in jobs),
        "synced": sum(job.sync == "synced" for job in jobs),
        "ok": sum(job.ok for job in jobs),
        "bad_lines": bad_lines,
    }


def _read_lines(path: str) -> list[str]:
    if path == "-":
        return sys.stdin.read().splitlines()
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise CommandError(f"cannot read the file to onboard: {reason}") from None


async def onboard(args: argparse.Namespace, out: Output) -> Exit:
    """
    ``onboard FILE``: exit status 0 only if every line connected and synced.
    """
    jobs, bad = parse_jobs(_read_lines(args.file), default_key_env=args.api_key_env)
    for number, problem in bad:
        say(f"{args.file} line {number}: {problem}")
    if not jobs:
        say(f"{args.file}: no organisation to onboard")
        return Exit.FAILED

    connections = Tally("connections", CONNECTION_STATES)
    syncs = Tally("syncs", SYNC_STATES)
    title = f"Onboarding {len(jobs)} connection(s) from {args.file}"
    base = bind_clients(args, jobs)
    with open_view(out, title, [connections, syncs]) as view:
        if base is not None:
            async with base:
                await Onboarding(
                    jobs,
                    view,
                    connections,
                    syncs,
                    interval=args.interval,
                    timeout=args.watch_timeout,
                    workers=args.max_concurrency,
                ).run(base)
    summarize(out, jobs, len(bad))
    return Exit.OK if not bad and all(job.ok for job in jobs) else Exit.FAILED
