"""
The poll loop behind every watch, through watch_connection, wait_for_connection
and watch_sync, against FakeOutlit over HTTP.

Timings are read from FakeOutlit's request log (``time.monotonic()`` at each
request's arrival) and checked with margins wide enough for a busy machine.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from statistics import median

import anyio
import pytest

from outlit_async import (
    AsyncOutlit,
    AuthenticationError,
    BadRequestError,
    ConnectionExpiredError,
    ConnectionFailedError,
    ConnectionState,
    ConnectionStatus,
    IntegrationStatus,
    PollTimeoutError,
    ServerError,
    SyncState,
    SyncStatus,
    Transition,
)
from outlit_async._polling import SPREAD
from outlit_async.testing import FakeOutlit, Fault

pytestmark = pytest.mark.anyio

STATUS = "/api/integrations/connect/status"
SYNC = "/api/integrations/sync-status"
NOISE = 0.05
"""Seconds a busy machine may add to any one wait."""


def states(changes: list[Transition[ConnectionStatus]]) -> list[tuple[str | None, str]]:
    return [
        (
            None if change.previous is None else str(change.previous.status),
            str(change.current.status) if change.current is not None else "?",
        )
        for change in changes
    ]


def polls_of(fake: FakeOutlit, session_id: str) -> list[float]:
    return [r.at for r in fake.requests_to(STATUS, sessionId=session_id)]


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in pairwise(times)]


async def collect(
    watch: AsyncIterator[Transition[ConnectionStatus]],
) -> list[Transition[ConnectionStatus]]:
    with anyio.fail_after(5):
        return [change async for change in watch]


# Schedule


async def test_first_poll_goes_out_within_the_spread(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """The first poll is sent at once, at most SPREAD * interval late."""
    sid = fake.create_session("hubspot")
    watch = client.integrations.watch_connection(sid, interval=1.0)
    started = time.monotonic()
    with anyio.fail_after(2):
        first = await anext(watch)
    await watch.aclose()

    assert first.previous is None
    assert first.current is not None
    assert first.current.status == ConnectionState.PENDING
    [poll] = polls_of(fake, sid)
    assert 0 <= poll - started <= SPREAD * 1.0 + 2 * NOISE


async def test_watches_started_together_do_not_poll_together(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """The first polls of watches started at once are spread over the spread."""
    sids = [fake.create_session("hubspot") for _ in range(20)]
    started = time.monotonic()

    async def first_poll(sid: str) -> None:
        watch = client.integrations.watch_connection(sid, interval=2.0)
        await anext(watch)
        await watch.aclose()

    with anyio.fail_after(3):
        async with anyio.create_task_group() as group:
            for sid in sids:
                group.start_soon(first_poll, sid)

    firsts = [polls_of(fake, sid)[0] for sid in sids]
    assert max(firsts) - started <= SPREAD * 2.0 + 2 * NOISE
    assert max(firsts) - min(firsts) >= SPREAD * 2.0 / 4


async def test_polls_start_interval_apart_even_when_answers_are_slow(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """Polls start interval apart, start to start: a slow answer does not add."""
    interval, slow = 0.15, 0.1
    sid = fake.create_session("hubspot")
    fake.faults.add_for_session(sid, *[Fault.slow(slow)] * 10)

    changes = await collect(
        client.integrations.watch_connection(sid, interval=interval, timeout=0.7)
    )

    assert isinstance(changes[-1].error, PollTimeoutError)
    spaced = gaps(polls_of(fake, sid))
    assert len(spaced) >= 3
    assert min(spaced) >= interval * (1 - SPREAD) - 0.01
    assert median(spaced) <= interval * (1 + SPREAD) + NOISE
    assert median(spaced) < interval + slow


async def test_no_poll_after_a_terminal_state(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """The watch ends at the terminal state, and no poll follows it."""
    sid = fake.create_session("hubspot", outcome="connected", after_polls=2)

    changes = await collect(client.integrations.watch_connection(sid, interval=0.05))
    await anyio.sleep(0.25)

    assert changes[-1].terminal
    assert len(polls_of(fake, sid)) == 2
    assert fake.session(sid).polls == 2


# watch_connection and wait_for_connection


async def test_watch_connection_yields_first_state_then_each_change(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """None -> pending, then pending -> connected, which is terminal."""
    sid = fake.create_session("hubspot", outcome="connected", after_polls=3)

    changes = await collect(client.integrations.watch_connection(sid, interval=0.02))

    assert states(changes) == [(None, "pending"), ("pending", "connected")]
    assert [c.terminal for c in changes] == [False, True]
    assert [c.error for c in changes] == [None, None]
    assert {c.key.target for c in changes} == {sid}
    assert {c.key.kind for c in changes} == {"connection"}
    assert all(c.at.tzinfo is timezone.utc for c in changes)
    assert changes[1].previous == changes[0].current


async def test_wait_for_connection_returns_the_connected_status(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """wait_for_connection returns the connected status."""
    sid = fake.create_session("slack", outcome="connected", after_polls=2)

    with anyio.fail_after(5):
        status = await client.integrations.wait_for_connection(sid, interval=0.02)

    assert status.connected
    assert status.status == ConnectionState.CONNECTED
    assert status.provider == "slack"


async def test_wait_for_connection_raises_failed_with_the_server_error(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A failed session raises ConnectionFailedError with the server's error."""
    reason = "Workspace admin refused the app"
    sid = fake.create_session("hubspot", outcome="failed", after_polls=2, error=reason)

    with anyio.fail_after(5), pytest.raises(ConnectionFailedError) as caught:
        await client.integrations.wait_for_connection(sid, interval=0.02)

    assert caught.value.error == reason
    assert reason in str(caught.value)
    assert caught.value.session_id == sid


async def test_wait_for_connection_raises_expired(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """An expired session raises ConnectionExpiredError, not a timeout."""
    sid = fake.create_session("hubspot", outcome="expired", after_polls=2)

    with anyio.fail_after(5), pytest.raises(ConnectionExpiredError) as caught:
        await client.integrations.wait_for_connection(sid, interval=0.02)

    assert not isinstance(caught.value, (PollTimeoutError, TimeoutError))
    assert caught.value.session_id == sid


async def test_wait_for_connection_raises_timeout_when_still_pending(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A session still pending at the timeout raises PollTimeoutError, on time."""
    sid = fake.create_session("hubspot")
    started = time.monotonic()

    with anyio.fail_after(5), pytest.raises(PollTimeoutError) as caught:
        await client.integrations.wait_for_connection(sid, interval=0.05, timeout=0.3)

    assert 0.3 <= time.monotonic() - started <= 0.3 + 4 * NOISE
    assert not isinstance(caught.value, ConnectionExpiredError)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.timeout == 0.3
    assert caught.value.target == sid
    assert fake.session(sid).status == "pending"


async def test_timeout_is_the_last_transition_with_the_last_state(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A watch that times out ends with pending -> pending, error PollTimeoutError."""
    sid = fake.create_session("hubspot")

    changes = await collect(
        client.integrations.watch_connection(sid, interval=0.05, timeout=0.2)
    )

    assert states(changes) == [(None, "pending"), ("pending", "pending")]
    assert changes[-1].terminal
    assert isinstance(changes[-1].error, PollTimeoutError)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(503),
        Fault.status(500),
        Fault.status(429),
        Fault.drop(),
        Fault.html(502),
        Fault.slow(0.3),
    ],
    ids=repr,
)
async def test_transient_failures_are_not_transitions(
    client: AsyncOutlit, fake: FakeOutlit, fault: Fault
) -> None:
    """A poll that fails transiently yields nothing, and polling goes on."""
    hasty = client.with_options(max_retries=0, timeout=0.1)
    sid = fake.create_session("hubspot", outcome="connected", after_polls=4)
    fake.faults.add_for_session(sid, fault, fault)

    changes = await collect(hasty.integrations.watch_connection(sid, interval=0.05))

    assert states(changes) == [(None, "pending"), ("pending", "connected")]
    assert all(c.error is None for c in changes)
    assert len(fake.faults.injected) == 2
    assert len(polls_of(fake, sid)) >= 2 + 2


async def test_transient_failures_spent_by_the_transport_retries(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """More 503s than the transport retries still only delay the watch."""
    sid = fake.create_session("hubspot", outcome="connected", after_polls=2)
    fake.faults.add_for_session(sid, *[Fault.status(503)] * (client.max_retries + 2))

    changes = await collect(client.integrations.watch_connection(sid, interval=0.05))

    assert states(changes) == [(None, "pending"), ("pending", "connected")]
    assert len(fake.faults.injected) == client.max_retries + 2


async def test_unknown_session_ends_the_watch_at_once_with_400(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A 400 (unknown session) is raised from the first poll; nothing follows."""
    watch = client.integrations.watch_connection("sess_nobody_made", interval=0.02)

    with anyio.fail_after(2), pytest.raises(BadRequestError):
        await anext(watch)
    with pytest.raises(StopAsyncIteration):
        await anext(watch)
    await anyio.sleep(0.1)

    assert len(fake.requests_to(STATUS)) == 1


async def test_wrong_key_ends_the_watch_at_once_with_401(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A 401 is raised from the first poll; nothing follows."""
    sid = fake.create_session("hubspot")
    stranger = client.with_options(api_key="ok_wrong_key")

    with anyio.fail_after(2), pytest.raises(AuthenticationError):
        await stranger.integrations.wait_for_connection(sid, interval=0.02)
    await anyio.sleep(0.1)

    assert len(polls_of(fake, sid)) == 1
    assert not fake.requests[0].authorized


async def test_max_failures_ends_the_watch_with_the_last_error(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """max_failures failed polls in a row raise the last failure."""
    hasty = client.with_options(max_retries=0)
    sid = fake.create_session("hubspot")
    fake.faults.add_for_session(sid, *[Fault.status(503)] * 10)
    watch = hasty.integrations.watch_connection(sid, interval=0.02, max_failures=3)

    with anyio.fail_after(3), pytest.raises(ServerError) as caught:
        await anext(watch)
    await anyio.sleep(0.1)

    assert caught.value.status == 503
    assert len(polls_of(fake, sid)) == 3


async def test_max_failures_counts_failures_in_a_row_only(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A good answer between failures starts the count again."""
    hasty = client.with_options(max_retries=0)
    sid = fake.create_session("hubspot", outcome="connected", after_polls=4)
    failure, fine = Fault.status(503), Fault.extra_fields()
    fake.faults.add_for_session(sid, failure, fine, failure, fine, failure)

    changes = await collect(
        hasty.integrations.watch_connection(sid, interval=0.02, max_failures=2)
    )

    assert states(changes) == [(None, "pending"), ("pending", "connected")]
    assert len(fake.faults.injected) == 5


async def test_unknown_connection_state_is_a_transition_and_polling_goes_on(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A state the SDK does not know ("paused") is delivered, not terminal."""
    sid = fake.create_session("hubspot", outcome="connected", after_polls=2)
    fake.faults.add_for_session(sid, Fault.unknown_status("paused"))

    changes = await collect(client.integrations.watch_connection(sid, interval=0.02))

    assert states(changes) == [
        (None, "paused"),
        ("paused", "pending"),
        ("pending", "connected"),
    ]
    paused = changes[0].current
    assert paused is not None
    assert paused.status == "paused"
    assert not isinstance(paused.status, ConnectionState)
    assert not changes[0].terminal


async def test_retry_after_pushes_the_next_poll_back_once(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A Retry-After delays the next poll, then the interval applies again."""
    hasty = client.with_options(max_retries=0)
    sid = fake.create_session("hubspot", outcome="connected", after_polls=4)
    fake.faults.add_for_session(sid, Fault.status(429, retry_after="0.4"))

    changes = await collect(hasty.integrations.watch_connection(sid, interval=0.05))

    assert states(changes) == [(None, "pending"), ("pending", "connected")]
    first, *rest = gaps(polls_of(fake, sid))
    assert first >= 0.4 - 0.01
    assert max(rest) <= 0.05 * (1 + SPREAD) + 2 * NOISE


# watch_sync


def set_models(fake: FakeOutlit, provider: str, *statuses: str) -> None:
    synced = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    for model, status in zip(fake.default_models(provider), statuses, strict=True):
        failed = status == "FAILED"
        fake.set_sync(
            provider,
            model,
            status,
            last_synced_at=None if failed else synced,
            error_message="Provider answered 401" if failed else None,
        )


CUSTOMER = "StripeCustomer"
T1 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
Change = Callable[[FakeOutlit], None]


def _connect(fake: FakeOutlit) -> None:
    fake.connect_provider("stripe")


def _pending(fake: FakeOutlit) -> None:
    fake.set_sync("stripe", CUSTOMER, "PENDING")


def _succeed(fake: FakeOutlit) -> None:
    fake.set_sync("stripe", CUSTOMER, "SUCCESS", last_synced_at=T1)


def _sync_again(fake: FakeOutlit) -> None:
    later = T1 + timedelta(minutes=5)
    fake.set_sync("stripe", CUSTOMER, "SUCCESS", last_synced_at=later)


def _fail(fake: FakeOutlit) -> None:
    fake.set_sync("stripe", CUSTOMER, "FAILED", error_message="token revoked")


def _fail_otherwise(fake: FakeOutlit) -> None:
    fake.set_sync("stripe", CUSTOMER, "FAILED", error_message="rate limited")


def _nothing(fake: FakeOutlit) -> None:
    pass


@pytest.mark.parametrize(
    ("before", "change"),
    [
        (_nothing, _connect),
        (_pending, _succeed),
        (_succeed, _sync_again),
        (_fail, _fail_otherwise),
    ],
    ids=["connection-status", "model-status", "last-synced-at", "error"],
)
async def test_watch_sync_yields_a_transition_per_change(
    client: AsyncOutlit, fake: FakeOutlit, before: Change, change: Change
) -> None:
    """Connection status, a model's status, last sync and error each make one."""
    before(fake)
    watch = client.integrations.watch_sync("stripe", interval=0.02)

    with anyio.fail_after(3):
        first = await anext(watch)
        change(fake)
        second = await anext(watch)
    await watch.aclose()

    assert first.previous is None
    assert second.previous == first.current
    assert second.current is not None
    assert second.current != first.current
    assert not second.terminal
    expected = client.integrations.sync_status("stripe")
    assert second.current == await expected


async def test_watch_sync_transition_fields(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A model's new status, time and error are in the transition's current."""
    _fail(fake)
    watch = client.integrations.watch_sync("stripe", interval=0.02)

    with anyio.fail_after(3):
        first = await anext(watch)
        _sync_again(fake)
        second = await anext(watch)
    await watch.aclose()

    assert first.current is not None and second.current is not None
    before = first.current.model(CUSTOMER)
    after = second.current.model(CUSTOMER)
    assert before is not None and after is not None
    assert (before.status, before.error_message) == (SyncState.FAILED, "token revoked")
    assert after.status == SyncState.SUCCESS
    assert after.last_synced_at == T1 + timedelta(minutes=5)
    assert after.error_message is None
    assert second.current.status == IntegrationStatus.CONNECTED


async def test_watch_sync_is_quiet_while_nothing_changes(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """Same state, no transition; a cancelled scope stops the polls."""
    fake.connect_provider("stripe")
    watch = client.integrations.watch_sync("stripe", interval=0.02)
    more: list[Transition[SyncStatus]] = []

    with anyio.fail_after(2):
        await anext(watch)
    with anyio.move_on_after(0.3):
        more.append(await anext(watch))
    await anyio.sleep(NOISE)
    polls = len(fake.requests_to(SYNC))
    await anyio.sleep(0.1)

    assert more == []
    assert polls >= 5
    assert len(fake.requests_to(SYNC)) == polls


@pytest.mark.parametrize(
    ("until", "models", "synced", "failed", "settled"),
    [
        (lambda s: s.all_synced, ("SUCCESS", "SUCCESS", "SUCCESS"), True, (), True),
        (lambda s: s.any_failed, ("PENDING", "FAILED", "PENDING"), False, (1,), False),
        (lambda s: s.settled, ("SUCCESS", "FAILED", "FAILED"), False, (1, 2), True),
    ],
    ids=["all_synced", "any_failed", "settled"],
)
async def test_until_ends_the_watch_with_a_terminal_transition(
    client: AsyncOutlit,
    fake: FakeOutlit,
    until: Callable[[SyncStatus], bool],
    models: tuple[str, ...],
    synced: bool,
    failed: tuple[int, ...],
    settled: bool,
) -> None:
    """until(status) true ends the watch there; the helpers read the models."""
    fake.connect_provider("stripe")
    names = fake.default_models("stripe")
    watch = client.integrations.watch_sync("stripe", interval=0.02, until=until)

    with anyio.fail_after(3):
        first = await anext(watch)
        set_models(fake, "stripe", *models)
        last = await anext(watch)
        with pytest.raises(StopAsyncIteration):
            await anext(watch)
    polls = len(fake.requests_to(SYNC))
    await anyio.sleep(0.1)

    assert not first.terminal
    assert last.terminal and last.error is None
    status = last.current
    assert status is not None
    assert (status.all_synced, status.settled) == (synced, settled)
    assert status.any_failed == bool(failed)
    assert [m.model for m in status.failed_models] == [names[i] for i in failed]
    assert all(m.error_message for m in status.failed_models)
    assert len(fake.requests_to(SYNC)) == polls


async def test_sync_helpers_are_false_with_no_models(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A provider not connected is neither synced, failed nor settled."""
    status = await client.integrations.sync_status("stripe")

    assert not status.connected
    assert (status.all_synced, status.any_failed, status.settled) == (
        False,
        False,
        False,
    )
    assert status.failed_models == ()


@pytest.mark.parametrize("how", ["break", "aclose"])
async def test_leaving_a_sync_watch_stops_its_polls_at_once(
    client: AsyncOutlit, fake: FakeOutlit, how: str
) -> None:
    """After break or aclose() no poll is sent."""
    fake.connect_provider("stripe")
    watch = client.integrations.watch_sync("stripe", interval=0.02)

    with anyio.fail_after(2):
        if how == "break":
            async for _ in watch:
                break
        else:
            await anext(watch)
            await watch.aclose()
    polls = len(fake.requests_to(SYNC))
    await anyio.sleep(0.2)

    assert polls == 1
    assert len(fake.requests_to(SYNC)) == polls


async def test_a_cancelled_wait_for_one_change_leaves_the_watch_usable(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A move_on_after around one step of a watch does not end the watch."""
    sid = fake.create_session("hubspot", outcome="connected", after_polls=4)
    watch = client.integrations.watch_connection(sid, interval=0.05)

    first = await anext(watch)
    with anyio.move_on_after(0.01):
        await anext(watch)
    rest = [change async for change in watch]

    assert first.current is not None and first.current.status == "pending"
    assert [c.current.status for c in rest if c.current] == ["connected"]
    assert rest[-1].terminal
