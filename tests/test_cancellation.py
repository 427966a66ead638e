"""
Cancelling the caller's scope ends every request and wait at once, and leaves
no task and no connection behind.

Each test cancels at a different point: while an answer is awaited, while a
retry's backoff sleeps, while a ``Retry-After`` wait runs, and across a
monitor's polls. It measures how late the call ends after the cancel, checks
that the client's aiohttp connector holds no connection, and that no task of
the client outlives the cancel. FakeOutlit's own handler tasks (a slow answer
still sleeping on the server side) are not the client's and are left out.
The client has one request slot, so a slot or connection kept by the
cancelled call would also stall the request each test sends afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import anyio
import pytest
from aiohttp import web_protocol

from outlit_async import AsyncOutlit
from outlit_async.testing import FakeOutlit, Fault

pytestmark = pytest.mark.anyio

API: Final = "/api/integrations"
CANCEL_AFTER: Final = 0.2
BOUND: Final = 0.1
"""How long after the cancel the call may take to end, in seconds."""


def _client_tasks() -> set[asyncio.Task[Any]]:
    """
    The running tasks, less those of FakeOutlit's server.
    """
    return {
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "cr_code", None) is None
        or task.get_coro().cr_code.co_filename != web_protocol.__file__  # type: ignore[union-attr]
    }


@pytest.fixture
async def client(fake: FakeOutlit) -> AsyncIterator[AsyncOutlit]:
    async with AsyncOutlit(
        fake.api_key,
        base_url=fake.url,
        timeout=10.0,
        retry_delay=30.0,
        max_concurrency=1,
    ) as outlit:
        await outlit.integrations.list()
        yield outlit


async def _cancel_midway(
    fake: FakeOutlit,
    client: AsyncOutlit,
    call: Callable[[], Awaitable[object]],
    what: str,
) -> int:
    """
    Run ``call``, cancel it after ``CANCEL_AFTER``, and check what it left.

    :return: how many faults the call met
    """
    before = _client_tasks()

    started = time.perf_counter()
    with anyio.move_on_after(CANCEL_AFTER) as scope:
        await call()
    late = time.perf_counter() - started - CANCEL_AFTER

    print(f"\ncancelled {what}: ended {late * 1000:.1f} ms after the cancel")
    assert scope.cancelled_caught
    assert late < BOUND
    session, _ = client._transport.pool.get()
    assert session.connector is not None
    assert len(session.connector._acquired) == 0
    assert _client_tasks() - before == set()
    met = len(fake.faults.injected)
    fake.faults.clear()
    with anyio.fail_after(1):
        await client.integrations.list()
    return met


@pytest.mark.parametrize(
    ("path", "method"),
    [(API, "list"), (f"{API}/connect", "connect")],
    ids=["GET", "POST"],
)
async def test_cancel_while_an_answer_is_awaited(
    path: str, method: str, fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """A request cancelled before its slow answer ends at once and frees its slot."""
    fake.faults.add(path, Fault.slow(5.0))
    call: Callable[[], Awaitable[object]] = (
        client.integrations.list
        if method == "list"
        else lambda: client.integrations.connect("hubspot")
    )

    assert await _cancel_midway(fake, client, call, f"a {method} awaiting its answer")


async def test_cancel_during_a_retry_backoff(
    fake: FakeOutlit, client: AsyncOutlit, caplog: pytest.LogCaptureFixture
) -> None:
    """A request cancelled while it sleeps before a retry ends at once."""
    fake.faults.add(API, *[Fault.status(503)] * 4)

    met = await _cancel_midway(fake, client, client.integrations.list, "a backoff")

    assert 1 <= met < 4
    assert any(r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize(
    ("path", "fault"),
    [(API, Fault.status(503, "30")), (f"{API}/connect", Fault.status(429, "30"))],
    ids=["GET 503", "POST 429"],
)
async def test_cancel_during_a_retry_after_wait(
    path: str,
    fault: Fault,
    fake: FakeOutlit,
    client: AsyncOutlit,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request cancelled during a 30 s Retry-After wait ends at once."""
    fake.faults.add(path, fault)
    call: Callable[[], Awaitable[object]] = (
        client.integrations.list
        if path == API
        else lambda: client.integrations.connect("hubspot")
    )

    assert await _cancel_midway(fake, client, call, "a Retry-After wait") == 1
    assert "in 30.00 s" in caplog.text


async def test_cancel_a_watch_pushed_back_by_retry_after(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """A watch whose next poll a Retry-After pushed back ends at once when cancelled."""
    session_id = fake.create_session("hubspot")
    fake.faults.add(f"{API}/connect/status", *[Fault.status(429, "30")] * 4)
    client = client.with_options(max_retries=0)

    async def watch() -> None:
        async for _ in client.integrations.watch_connection(session_id, interval=0.05):
            pass

    met = await _cancel_midway(fake, client, watch, "a watch after a Retry-After")

    assert met == 1


async def test_cancel_a_monitor_of_many_watches(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """Cancelling a monitor mid-poll ends all its watches and requests at once."""
    sessions = [fake.create_session("hubspot") for _ in range(50)]
    fake.faults.random(1.0, seed=1, kinds=[Fault.slow(5.0), Fault.status(503, "30")])
    seen: list[object] = []

    async def watch_all() -> None:
        async with client.monitor() as monitor:
            for session_id in sessions:
                monitor.watch_connection(session_id, interval=0.05)
            async for change in monitor:
                seen.append(change)

    met = await _cancel_midway(fake, client, watch_all, "a monitor of 50 watches")

    assert seen == []
    assert met >= 1
