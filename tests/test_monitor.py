"""
``client.monitor()``: many watches in one task group, merged, against FakeOutlit.
"""

from __future__ import annotations

import asyncio
import gc
import time
import traceback
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator
from itertools import pairwise
from typing import Any, Literal

import anyio
import anyio.lowlevel
import pytest

from outlit_async import (
    AsyncOutlit,
    AuthenticationError,
    BadRequestError,
    ConnectionExpiredError,
    ConnectionFailedError,
    IntegrationStatus,
    PollTimeoutError,
    ServerError,
    Transition,
    WatchKey,
)
from outlit_async._polling import SPREAD
from outlit_async.testing import FakeOutlit, Fault

pytestmark = pytest.mark.anyio

STATUS = "/api/integrations/connect/status"
SYNC = "/api/integrations/sync-status"
NOISE = 0.05
"""Seconds a busy machine may add to any one wait."""

Seen = tuple[str | None, str | None, bool, type[BaseException] | None]


def seen(change: Transition[Any]) -> Seen:
    previous, current = change.previous, change.current
    return (
        None if previous is None else str(previous.status),
        None if current is None else str(current.status),
        change.terminal,
        None if change.error is None else type(change.error),
    )


def polls_of(fake: FakeOutlit, session_id: str) -> list[float]:
    return [r.at for r in fake.requests_to(STATUS, sessionId=session_id)]


async def settled_count(fake: FakeOutlit, path: str = STATUS) -> int:
    """
    Requests to ``path`` once those already sent at a cancellation have landed.
    """
    await anyio.sleep(NOISE)
    return len(fake.requests_to(path))


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in pairwise(times)]


def by_tag(changes: list[Transition[Any]]) -> dict[object, list[Seen]]:
    grouped: defaultdict[object, list[Seen]] = defaultdict(list)
    for change in changes:
        grouped[change.key.tag].append(seen(change))
    return dict(grouped)


@pytest.fixture
async def roomy(fake: FakeOutlit) -> AsyncIterator[AsyncOutlit]:
    async with AsyncOutlit(
        fake.api_key,
        base_url=fake.url,
        timeout=5.0,
        retry_delay=0.01,
        max_concurrency=200,
    ) as outlit:
        yield outlit


PENDING = ("pending", "pending")
Outcome = Literal["connected", "failed", "expired"]


def expected(outcome: str | None, after_polls: int) -> list[Seen]:
    if outcome is None:
        return [(None, "pending", False, None), (*PENDING, True, PollTimeoutError)]
    error = {
        "connected": None,
        "failed": ConnectionFailedError,
        "expired": ConnectionExpiredError,
    }[outcome]
    if after_polls == 1:
        return [(None, outcome, True, error)]
    return [(None, "pending", False, None), ("pending", outcome, True, error)]


async def test_a_thousand_sessions_end_as_scripted(
    roomy: AsyncOutlit, fake: FakeOutlit
) -> None:
    """1,000 watches: each session's transitions, in order, with its error."""
    outcomes: tuple[Outcome | None, ...] = ("connected", "failed", "expired", None)
    plan: dict[str, tuple[Outcome | None, int]] = {}
    for index in range(1000):
        outcome, after_polls = outcomes[index % 4], 1 + index % 3
        sid = fake.create_session(
            "hubspot",
            outcome=outcome,
            after_polls=after_polls,
            error=f"refused #{index}",
        )
        plan[sid] = (outcome, after_polls)
    changes: defaultdict[str, list[Transition[Any]]] = defaultdict(list)
    started = time.monotonic()

    with anyio.fail_after(30):
        async with roomy.monitor() as monitor:
            for sid, (outcome, _) in plan.items():
                if outcome is None:
                    monitor.watch_connection(sid, interval=0.5, timeout=4.0)
                else:
                    monitor.watch_connection(sid, interval=0.05, timeout=60.0)
            async for change in monitor:
                changes[change.key.target].append(change)
    elapsed = time.monotonic() - started

    assert elapsed < 15
    assert {sid: [seen(c) for c in changes[sid]] for sid in plan} == {
        sid: expected(outcome, after) for sid, (outcome, after) in plan.items()
    }
    for sid, (outcome, after_polls) in plan.items():
        last = changes[sid][-1]
        if outcome == "failed":
            assert isinstance(last.error, ConnectionFailedError)
            assert last.error.error == fake.session(sid).error
            assert last.error.error is not None
            assert last.error.error.startswith("refused #")
        if outcome is not None:
            assert fake.session(sid).polls == after_polls


async def test_retry_after_delays_only_that_sessions_loop(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A Retry-After on one session's poll leaves the others at their pace."""
    hasty = client.with_options(max_retries=0)
    slowed, *others = [fake.create_session("hubspot") for _ in range(4)]
    fake.faults.add_for_session(slowed, Fault.status(429, retry_after="0.3"))

    with anyio.fail_after(5):
        async with hasty.monitor() as monitor:
            for sid in (slowed, *others):
                monitor.watch_connection(sid, interval=0.05, timeout=0.6)
            changes = [change async for change in monitor]

    assert len(changes) == 8
    told, *after = gaps(polls_of(fake, slowed))
    assert told >= 0.3 - 0.01
    assert max(after) <= 0.05 * (1 + SPREAD) + 2 * NOISE
    for sid in others:
        polls = polls_of(fake, sid)
        assert max(gaps(polls)) <= 0.05 * (1 + SPREAD) + 2 * NOISE
        assert polls[1] < polls_of(fake, slowed)[1]
        assert len(polls) >= 6


async def test_retry_after_past_the_transport_retries_delays_that_loop(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """429s past max_retries: the loop waits the Retry-After; others do not."""
    slowed, other = fake.create_session("hubspot"), fake.create_session("hubspot")
    rounds = client.max_retries + 1
    fake.faults.add_for_session(
        slowed, *[Fault.status(429, retry_after="0.1")] * rounds
    )

    with anyio.fail_after(5):
        async with client.monitor() as monitor:
            monitor.watch_connection(slowed, interval=0.05, timeout=0.6)
            monitor.watch_connection(other, interval=0.05, timeout=0.6)
            changes = [change async for change in monitor]

    assert len(changes) == 4
    polls = polls_of(fake, slowed)
    assert all(gap >= 0.1 - 0.01 for gap in gaps(polls[: rounds + 1]))
    assert max(gaps(polls_of(fake, other))) <= 0.05 * (1 + SPREAD) + 2 * NOISE


async def test_authentication_error_stops_every_watch(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A 401 mid-run is raised from the async with, and no poll follows."""
    sids = [fake.create_session("hubspot") for _ in range(20)]
    firsts = 0

    with anyio.fail_after(5), pytest.raises(AuthenticationError) as caught:
        async with client.monitor() as monitor:
            for sid in sids:
                monitor.watch_connection(sid, interval=0.02)
            async for change in monitor:
                assert change.error is None
                firsts += 1
                if firsts == len(sids):
                    fake.faults.add_for_session(sids[7], Fault.status(401))
    polls = await settled_count(fake)
    await anyio.sleep(0.2)

    assert type(caught.value) is AuthenticationError
    assert caught.value.status == 401
    assert caught.value.__suppress_context__
    assert len(fake.requests_to(STATUS)) == polls
    assert len(polls_of(fake, sids[7])) >= 2


def is_server_task(task: asyncio.Task[Any]) -> bool:
    module = task.get_coro().cr_frame.f_globals.get("__name__", "")  # type: ignore[union-attr]
    return str(module).startswith("aiohttp.web")


async def test_cancelling_the_monitor_leaves_nothing_behind(
    fake: FakeOutlit,
) -> None:
    """Cancelled mid-request: no task, no held connection or slot, no warning."""
    sids = [fake.create_session("hubspot") for _ in range(12)]
    for sid in sids:
        fake.faults.add_for_session(sid, Fault.slow(0.4))
    before = asyncio.all_tasks()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with AsyncOutlit(
            fake.api_key, base_url=fake.url, max_concurrency=4
        ) as outlit:
            with anyio.move_on_after(0.2) as scope:
                async with outlit.monitor() as monitor:
                    for sid in sids:
                        monitor.watch_connection(sid, interval=0.02)
                    async for _ in monitor:
                        pass
            await anyio.lowlevel.checkpoint()
            left = {t for t in asyncio.all_tasks() - before if not is_server_task(t)}

            with anyio.fail_after(1):
                async with anyio.create_task_group() as group:
                    for sid in sids[:4]:
                        group.start_soon(outlit.integrations.connection_status, sid)
        gc.collect()

    assert scope.cancelled_caught
    assert left == set()
    assert [str(w.message) for w in caught] == []


async def test_breaking_out_of_the_monitor_cancels_every_poll(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """Leaving the async with by break: no poll is sent afterwards."""
    sids = [fake.create_session("hubspot") for _ in range(10)]

    with anyio.fail_after(5):
        async with client.monitor() as monitor:
            for sid in sids:
                monitor.watch_connection(sid, interval=0.02)
            async for _ in monitor:
                await anyio.sleep(0.05)
                break
    polls = await settled_count(fake)
    await anyio.sleep(0.2)

    assert polls >= len(sids)
    assert len(fake.requests_to(STATUS)) == polls
    assert monitor.active == len(sids)


async def test_slow_consumer_holds_pollers_back_and_loses_nothing(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A sleeping consumer gets every transition; pollers wait for the buffer."""
    buffer_size, count = 4, 20
    sids = [
        fake.create_session("hubspot", outcome="connected", after_polls=2)
        for _ in range(count)
    ]
    changes: list[Transition[Any]] = []

    with anyio.fail_after(10):
        async with client.monitor(buffer_size=buffer_size) as monitor:
            for sid in sids:
                monitor.watch_connection(sid, interval=0.01)
            changes.append(await anext(monitor))
            await anyio.sleep(0.3)
            polls_while_asleep = sum(fake.session(sid).polls for sid in sids)
            async for change in monitor:
                changes.append(change)
                await anyio.sleep(0.005)

    # Each session polls once, then again only after its first transition was
    # taken in: by the consumer (one) or by the buffer (buffer_size at most).
    assert count <= polls_while_asleep <= count + 1 + buffer_size
    assert len(changes) == 2 * count
    grouped: defaultdict[str, list[Seen]] = defaultdict(list)
    for change in changes:
        grouped[change.key.target].append(seen(change))
    assert all(
        grouped[sid]
        == [(None, "pending", False, None), ("pending", "connected", True, None)]
        for sid in sids
    )


async def test_timeouts_passing_while_the_buffer_is_full_lose_nothing(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """Watches whose timeout passes while they wait for buffer room still end once."""
    pending = [fake.create_session("hubspot") for _ in range(10)]
    done = [
        fake.create_session("hubspot", outcome="connected", after_polls=2)
        for _ in range(10)
    ]
    changes: list[Transition[Any]] = []

    with anyio.fail_after(10):
        async with client.monitor(buffer_size=1) as monitor:
            for sid in pending:
                monitor.watch_connection(sid, interval=0.02, timeout=0.15)
            for sid in done:
                monitor.watch_connection(sid, interval=0.02, timeout=5.0)
            changes.append(await anext(monitor))
            # Every poller is now held on the full buffer, past the timeouts.
            await anyio.sleep(0.4)
            async for change in monitor:
                changes.append(change)

    grouped: defaultdict[str, list[Seen]] = defaultdict(list)
    for change in changes:
        grouped[change.key.target].append(seen(change))
    assert {sid: grouped[sid] for sid in pending} == {
        sid: [(None, "pending", False, None), (*PENDING, True, PollTimeoutError)]
        for sid in pending
    }
    assert {sid: grouped[sid] for sid in done} == {
        sid: [(None, "pending", False, None), ("pending", "connected", True, None)]
        for sid in done
    }


async def test_leaving_while_pollers_wait_on_a_full_buffer_ends_them(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """Pollers blocked on the buffer end with the monitor; nothing stays behind."""
    sids = [fake.create_session("hubspot") for _ in range(20)]
    before = asyncio.all_tasks()

    with anyio.fail_after(5):
        async with client.monitor(buffer_size=1) as monitor:
            for sid in sids:
                monitor.watch_connection(sid, interval=0.01, timeout=0.05)
            await anext(monitor)
            await anyio.sleep(0.2)
    await anyio.lowlevel.checkpoint()
    left = {t for t in asyncio.all_tasks() - before if not is_server_task(t)}
    polls = await settled_count(fake)

    assert left == set()
    assert await settled_count(fake) == polls


async def test_watches_added_while_iterating(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A watch added mid-iteration is followed; the end waits for every watch."""
    first = fake.create_session("hubspot", outcome="connected", after_polls=2)
    later = [
        fake.create_session("attio", outcome="expired", after_polls=3) for _ in range(3)
    ]
    changes: list[Transition[Any]] = []

    with anyio.fail_after(5):
        async with client.monitor() as monitor:
            monitor.watch_connection(first, interval=0.02, tag="first")
            async for change in monitor:
                changes.append(change)
                if change.key.tag == "first" and change.terminal:
                    for index, sid in enumerate(later):
                        monitor.watch_connection(sid, interval=0.02, tag=index)
            assert monitor.active == 0

    grouped = by_tag(changes)
    assert grouped.pop("first")[-1] == ("pending", "connected", True, None)
    assert set(grouped) == {0, 1, 2}
    for each in grouped.values():
        assert each[-1] == ("pending", "expired", True, ConnectionExpiredError)


async def test_a_monitor_with_no_watches_ends_at_once(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """Iterating a monitor that has no watch ends at once, without a request."""
    with anyio.fail_after(0.5):
        async with client.monitor() as monitor:
            changes = [change async for change in monitor]

    assert changes == []
    assert fake.requests == []


async def test_tags_are_carried_in_every_key(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """watch_* returns the key, tag included, that each of its transitions has."""
    sid = fake.create_session("hubspot", outcome="connected", after_polls=2)
    fake.connect_provider("stripe")

    with anyio.fail_after(5):
        async with client.monitor() as monitor:
            connection = monitor.watch_connection(sid, interval=0.02, tag=("org", 7))
            sync = monitor.watch_sync(
                "stripe", interval=0.02, until=lambda s: True, tag="billing"
            )
            changes = [change async for change in monitor]

    assert connection == WatchKey("connection", sid, ("org", 7))
    assert sync == WatchKey("sync", "stripe", "billing")
    assert {change.key for change in changes} == {connection, sync}
    assert len(changes) == 3


async def test_two_watches_of_one_session_share_one_loop(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """Both watches see every transition, each under its tag, for one loop's polls."""
    sid = fake.create_session("hubspot", outcome="connected", after_polls=3)

    with anyio.fail_after(5):
        async with client.monitor() as monitor:
            monitor.watch_connection(sid, interval=0.02, tag="a")
            monitor.watch_connection(sid, interval=0.02, tag="b")
            changes = [change async for change in monitor]

    journey = [(None, "pending", False, None), ("pending", "connected", True, None)]
    assert by_tag(changes) == {"a": journey, "b": journey}
    assert len(polls_of(fake, sid)) == 3
    assert fake.session(sid).polls == 3


async def test_many_deadlines_each_end_their_own_watch_on_time(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """
    Deadlines added in any order, moved, or forgotten by watches that end first:
    each timed-out watch ends at its own timeout, no earlier and not much later.
    """
    quick = [
        fake.create_session("slack", outcome="connected", after_polls=1)
        for _ in range(100)
    ]
    pending = [fake.create_session("hubspot") for _ in range(40)]
    timeouts = {sid: 0.15 + 0.3 * (index % 7) / 6 for index, sid in enumerate(pending)}
    ended: dict[object, float] = {}
    errors: dict[object, object] = {}

    with anyio.fail_after(5):
        async with client.monitor() as monitor:
            started = time.monotonic()
            # Latest deadlines first, so that each new one comes before the rest.
            for sid in sorted(pending, key=timeouts.__getitem__, reverse=True):
                monitor.watch_connection(sid, interval=0.05, timeout=timeouts[sid])
            # Long deadlines that are forgotten once these sessions connect.
            for sid in quick:
                monitor.watch_connection(sid, interval=0.05, timeout=30.0)
            # A second watch of a pending session moves its loop's deadline earlier.
            monitor.watch_connection(
                pending[0], interval=0.05, timeout=0.1, tag="early"
            )
            async for change in monitor:
                if change.terminal:
                    key = (change.key.target, change.key.tag)
                    ended[key] = time.monotonic() - started
                    errors[key] = type(change.error)

    assert all(errors[sid, None] is type(None) for sid in quick)
    assert errors[pending[0], "early"] is PollTimeoutError
    assert 0.1 <= ended[pending[0], "early"] <= 0.1 + 2 * NOISE
    for sid in pending:
        assert errors[sid, None] is PollTimeoutError
        assert timeouts[sid] <= ended[sid, None] <= timeouts[sid] + 2 * NOISE, sid


async def test_a_deadline_moved_earlier_and_back_fires_once(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A loop's deadline moved earlier, then back, ends each watch once, in time."""
    sid = fake.create_session("hubspot", outcome="connected", after_polls=14)
    other = fake.create_session("slack")
    ended: dict[object, tuple[float, object]] = {}

    with anyio.fail_after(5):
        async with client.monitor() as monitor:
            started = time.monotonic()
            monitor.watch_connection(sid, interval=0.05, timeout=0.4, tag="later")
            monitor.watch_connection(sid, interval=0.05, timeout=0.15, tag="sooner")
            monitor.watch_connection(sid, interval=0.05, timeout=3.0, tag="last")
            # Another loop's deadline between the two keeps the old one queued.
            monitor.watch_connection(other, interval=0.05, timeout=0.3, tag="other")
            async for change in monitor:
                if change.terminal:
                    assert change.key.tag not in ended
                    elapsed = time.monotonic() - started
                    ended[change.key.tag] = (elapsed, type(change.error))

    assert ended["sooner"][1] is PollTimeoutError
    assert ended["later"][1] is PollTimeoutError
    assert ended["last"][1] is type(None)
    assert ended["other"][1] is PollTimeoutError
    assert 0.15 <= ended["sooner"][0] <= 0.15 + 2 * NOISE
    assert 0.4 <= ended["later"][0] <= 0.4 + 2 * NOISE


async def test_a_timeout_mid_request_ends_that_watch_and_the_loop_polls_on(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A deadline passing during a slow poll ends its watch then, not at the answer."""
    sid = fake.create_session("hubspot", outcome="connected", after_polls=3)
    fake.faults.add_for_session(sid, Fault.slow(3.0))
    ended: dict[object, float] = {}
    changes: list[Transition[Any]] = []

    with anyio.fail_after(5):
        async with client.monitor() as monitor:
            started = time.monotonic()
            monitor.watch_connection(sid, interval=0.02, timeout=0.2, tag="short")
            monitor.watch_connection(sid, interval=0.02, timeout=4.0, tag="long")
            async for change in monitor:
                changes.append(change)
                if change.terminal:
                    ended[change.key.tag] = time.monotonic() - started

    grouped = by_tag(changes)
    assert grouped["short"] == [(None, None, True, PollTimeoutError)]
    assert grouped["long"][-1][1:] == ("connected", True, None)
    assert 0.2 - NOISE <= ended["short"] <= 0.2 + 2 * NOISE
    assert ended["long"] < 1.0


async def test_a_late_joiner_sees_the_shared_loops_next_poll_at_its_pace(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A watch joining a running loop starts at its next poll, at its interval."""
    sid = fake.create_session("hubspot", outcome="connected", after_polls=6)
    changes: list[Transition[Any]] = []

    with anyio.fail_after(5):
        async with client.monitor() as monitor:
            monitor.watch_connection(sid, interval=0.05, tag="first")
            async for change in monitor:
                changes.append(change)
                if change.key.tag == "first" and not change.terminal:
                    monitor.watch_connection(sid, interval=5.0, tag="late")

    grouped = by_tag(changes)
    assert grouped["late"] == [
        (None, "pending", False, None),
        ("pending", "connected", True, None),
    ]
    assert grouped["first"] == grouped["late"]
    polls = polls_of(fake, sid)
    assert len(polls) == 6
    assert max(gaps(polls)) <= 0.05 * (1 + SPREAD) + 2 * NOISE


async def test_other_accounts_do_not_share_a_loop(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """Watches of one provider through two organisations poll separately."""
    fake.add_organization("ok_other_org")
    fake.connect_provider("stripe", key="ok_other_org")
    other = client.with_options(api_key="ok_other_org")

    with anyio.fail_after(5):
        async with client.monitor() as monitor:
            monitor.watch_sync("stripe", interval=0.02, until=lambda s: True, tag=1)
            monitor.watch_sync(
                "stripe", interval=0.02, until=lambda s: True, client=other, tag=2
            )
            changes = [change async for change in monitor]

    statuses = {c.key.tag: c.current.status for c in changes if c.current}
    assert statuses == {1: IntegrationStatus.NOT_CONNECTED, 2: "connected"}
    assert len(fake.requests_to(SYNC, provider="stripe")) == 2


async def test_one_watchs_end_leaves_the_others_running(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A 400, spent retries or a timeout end that watch only, with its error."""
    hasty = client.with_options(max_retries=0)
    good = fake.create_session("hubspot", outcome="connected", after_polls=8)
    broken = fake.create_session("hubspot")
    fake.faults.add_for_session(broken, *[Fault.status(503)] * 5)
    idle = fake.create_session("hubspot")

    with anyio.fail_after(5):
        async with hasty.monitor() as monitor:
            monitor.watch_connection(good, interval=0.02, tag="good")
            monitor.watch_connection("sess_unknown", interval=0.02, tag="unknown")
            monitor.watch_connection(
                broken, interval=0.02, max_failures=2, tag="broken"
            )
            monitor.watch_connection(idle, interval=0.02, timeout=0.1, tag="idle")
            changes = [change async for change in monitor]

    assert by_tag(changes) == {
        "unknown": [(None, None, True, BadRequestError)],
        "broken": [(None, None, True, ServerError)],
        "idle": [(None, "pending", False, None), (*PENDING, True, PollTimeoutError)],
        "good": [(None, "pending", False, None), ("pending", "connected", True, None)],
    }
    assert len(polls_of(fake, broken)) == 2
    assert fake.session(good).polls == 8


async def test_a_watch_added_as_its_loop_fails_starts_afresh(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """Re-watching on a failure gets a new loop, and the monitor still ends."""
    changes: list[Transition[Any]] = []

    with anyio.fail_after(3):
        async with client.monitor() as monitor:
            monitor.watch_connection("sess_unknown", interval=0.02, tag="a")
            monitor.watch_connection("sess_unknown", interval=0.02, tag="b")
            async for change in monitor:
                changes.append(change)
                if change.key.tag == "a":
                    monitor.watch_connection("sess_unknown", interval=0.02, tag="c")

    assert {c.key.tag: type(c.error) for c in changes} == {
        "a": BadRequestError,
        "b": BadRequestError,
        "c": BadRequestError,
    }
    assert len(fake.requests_to(STATUS)) == 2


async def test_the_callers_own_error_leaves_the_monitor_unwrapped(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """An error raised in the async with body comes out as itself."""
    sid = fake.create_session("hubspot", outcome="failed", after_polls=1)
    other = fake.create_session("hubspot")

    with anyio.fail_after(3), pytest.raises(ConnectionFailedError):
        async with client.monitor() as monitor:
            monitor.watch_connection(sid, interval=0.02)
            monitor.watch_connection(other, interval=0.02)
            async for change in monitor:
                if change.error is not None:
                    raise change.error
    polls = await settled_count(fake)
    await anyio.sleep(0.2)

    assert len(fake.requests_to(STATUS)) == polls


async def test_a_401_met_while_the_caller_raises_keeps_the_callers_error(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """The AuthenticationError comes out, with the caller's error as its cause."""
    sid = fake.create_session("hubspot")
    fake.faults.add(STATUS, Fault.status(401))

    with anyio.fail_after(3), pytest.raises(AuthenticationError) as caught:
        async with client.monitor() as monitor:
            monitor.watch_connection(sid, interval=0.02)
            # Shielded, the body goes on past the 401's cancellation.
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.2)
            assert len(fake.requests_to(STATUS)) == 1
            raise LookupError("the caller's own")

    assert isinstance(caught.value.__cause__, LookupError)
    assert "the caller's own" in "".join(traceback.format_exception(caught.value))


async def test_watches_need_an_entered_monitor(client: AsyncOutlit) -> None:
    """Adding a watch outside the async with is refused, before or after it."""
    monitor = client.monitor()

    with pytest.raises(RuntimeError):
        monitor.watch_connection("sess_1")
    async with monitor:
        pass
    with pytest.raises(RuntimeError):
        monitor.watch_sync("stripe")


async def test_an_until_that_raises_ends_only_its_own_watch(
    client: AsyncOutlit, fake: FakeOutlit
) -> None:
    """A broken until callback is that watch's error; the others run on."""
    fake.connect_provider("stripe")
    good = fake.create_session("hubspot", outcome="connected", after_polls=2)

    def broken(status: object) -> bool:
        raise LookupError("no such model")

    with anyio.fail_after(3):
        async with client.monitor() as monitor:
            monitor.watch_sync("stripe", interval=0.02, until=broken, tag="sync")
            monitor.watch_connection(good, interval=0.02, tag="good")
            changes = [change async for change in monitor]

    last = {c.key.tag: c for c in changes if c.terminal}
    assert isinstance(last["sync"].error, LookupError)
    assert last["sync"].current is not None
    assert last["good"].error is None
    assert last["good"].current is not None and last["good"].current.connected


@pytest.mark.parametrize(
    ("option", "value"), [("interval", -1.0), ("interval", 0), ("max_failures", 0)]
)
async def test_a_watch_joining_a_running_loop_still_has_its_options_checked(
    client: AsyncOutlit, fake: FakeOutlit, option: str, value: float
) -> None:
    """Bad options are refused even when the loop they would join ignores them."""
    sid = fake.create_session("hubspot")
    options: dict[str, Any] = {option: value}

    async with client.monitor() as monitor:
        monitor.watch_connection(sid, interval=0.02, timeout=0.2)
        with pytest.raises(ValueError, match=option):
            monitor.watch_connection(sid, **options)
        assert monitor.active == 1
