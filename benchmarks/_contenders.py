"""
The contenders: the SDK's monitor, and the loops a user would write instead.

Each contender is a coroutine function taking a :class:`Job` and a
:class:`Meter`. It sets up its client and sends one warm-up request, starts
the meter, runs the workload to the end, stops the meter, and only then
closes its client. Every contender counts the same things in a
:class:`Tally`: each change of state it delivers, and how each watch ended.

The hand-written loops poll start to start, ``interval`` apart, with one task
per watch and a semaphore of the SDK's ``max_concurrency`` on one pool of the
same size; they decode each answer into dicts and compare it with the last
one, and nothing more: no retries, no validation, no timeouts of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Final

import aiohttp

from outlit_async import AsyncOutlit, SyncStatus, Transition
from outlit_async._polling import SPREAD

CONNECTION_STATUS: Final = "/api/integrations/connect/status"
SYNC_STATUS: Final = "/api/integrations/sync-status"
WATCH_TIMEOUT: Final = 3600.0
"""The SDK watches' timeout: far beyond any run, so none times out."""


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_kib() -> int:
    """
    The process's peak resident memory so far, in KiB.
    """
    peak = _status_kib("VmHWM")
    if peak is not None:
        return peak
    import resource
    import sys

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss // 1024 if sys.platform == "darwin" else maxrss


class Meter:
    """
    CPU, wall time and memory between :meth:`start` and :meth:`stop`.

    With ``trace`` it also follows Python allocations with tracemalloc from
    :meth:`start` on, and :meth:`snapshot` reads what is held at that moment.
    """

    def __init__(self, *, trace: bool = False) -> None:
        self.trace = trace
        self.figures: dict[str, Any] = {}
        self._cpu = 0.0
        self._wall = 0.0
        self._times = os.times()
        self._gc_started = 0.0
        self._gc_cpu = 0.0
        self._gc_runs = 0
        self._gc_full_cpu = 0.0
        self._gc_full_runs = 0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.process_time()
        else:
            spent = time.process_time() - self._gc_started
            self._gc_cpu += spent
            self._gc_runs += 1
            if info["generation"] == 2:
                self._gc_full_cpu += spent
                self._gc_full_runs += 1

    def start(self) -> None:
        gc.collect()
        self.figures["rss_start_kib"] = _status_kib("VmRSS")
        if self.trace:
            tracemalloc.start()
        gc.callbacks.append(self._on_gc)
        self._times = os.times()
        self._cpu = time.process_time()
        self._wall = time.perf_counter()

    def snapshot(self) -> None:
        gc.collect()
        if self.trace:
            self.figures["traced_bytes"] = tracemalloc.get_traced_memory()[0]
        rss = _status_kib("VmRSS")
        start = self.figures["rss_start_kib"]
        if rss is not None and start is not None:
            self.figures["rss_growth_kib"] = rss - start

    def stop(self) -> None:
        self.figures["cpu_s"] = time.process_time() - self._cpu
        self.figures["wall_s"] = time.perf_counter() - self._wall
        times = os.times()
        self.figures["cpu_user_s"] = times.user - self._times.user
        self.figures["cpu_system_s"] = times.system - self._times.system
        self.figures["peak_rss_kib"] = peak_rss_kib()
        gc.callbacks.remove(self._on_gc)
        self.figures["gc_cpu_s"] = self._gc_cpu
        self.figures["gc_runs"] = self._gc_runs
        self.figures["gc_full_cpu_s"] = self._gc_full_cpu
        self.figures["gc_full_runs"] = self._gc_full_runs
        if self.trace:
            tracemalloc.stop()


class Tally:
    """
    What a contender delivered: transitions, and how each watch ended.

    :param expected: each watch's id and the outcome it should end with.
    :param until: a count of transitions that sets :attr:`reached`.
    """

    def __init__(self, expected: dict[str, str], *, until: int | None = None) -> None:
        self.expected = expected
        self.transitions = 0
        self.ended: Counter[str] = Counter()
        self.mismatches = 0
        self.until = until
        self.reached = asyncio.Event()

    def change(self, watch: str, state: str, terminal: bool) -> None:
        self.transitions += 1
        if self.transitions == self.until:
            self.reached.set()
        if terminal:
            self.ended[state] += 1
            if self.expected.get(watch) != state:
                self.mismatches += 1

    def figures(self) -> dict[str, Any]:
        return {
            "transitions": self.transitions,
            "ended": dict(self.ended),
            "mismatches": self.mismatches,
        }


class Job:
    """
    One worker's instructions, as the orchestrator wrote them.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.url: str = spec["url"]
        self.key: str = spec["key"]
        self.concurrency: int = spec["concurrency"]
        self.interval: float = spec["interval"]
        self.warmup: str = spec["warmup"]
        self.sessions: list[tuple[str, str]] = [tuple(s) for s in spec["sessions"]]
        self.organizations: list[str] = spec.get("organizations", [])
        self.providers: list[str] = spec.get("providers", [])

    def sync_watches(self) -> list[tuple[int, str]]:
        return [
            (index, provider)
            for index in range(len(self.organizations))
            for provider in self.providers
        ]


def first_delay(job: Job) -> float:
    """
    How long a hand-written watch waits before its first poll.

    It follows the SDK's schedule: up to a tenth of the interval, so that
    watches started together do not poll together.
    """
    return random.uniform(0, SPREAD) * job.interval


def gap(job: Job) -> float:
    """
    Seconds from the start of one poll to the start of the next.

    It follows the SDK's schedule: the interval, moved by up to a tenth
    either way.
    """
    return job.interval * random.uniform(1 - SPREAD, 1 + SPREAD)


def _synced(body: dict[str, Any]) -> bool:
    syncs = body["syncs"]
    return (
        body["status"] == "connected"
        and bool(syncs)
        and all(sync["status"] == "SUCCESS" for sync in syncs)
    )


def _sdk_client(job: Job) -> AsyncOutlit:
    return AsyncOutlit(job.key, base_url=job.url, max_concurrency=job.concurrency)


def _aiohttp_session(job: Job) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=job.concurrency, limit_per_host=0)
    return aiohttp.ClientSession(connector=connector)


def _httpx_client(job: Job) -> Any:
    import httpx

    limits = httpx.Limits(
        max_connections=job.concurrency, max_keepalive_connections=job.concurrency
    )
    return httpx.AsyncClient(limits=limits, timeout=30.0)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


Contender = Callable[[Job, Meter], Coroutine[Any, Any, Tally]]


# The SDK.


async def sdk_sessions(job: Job, meter: Meter) -> Tally:
    """
    One monitor, one ``watch_connection`` per session.
    """
    tally = Tally(dict(job.sessions))
    async with _sdk_client(job) as client:
        await client.integrations.connection_status(job.warmup)
        meter.start()
        async with client.monitor() as monitor:
            for session_id, _ in job.sessions:
                monitor.watch_connection(
                    session_id, interval=job.interval, timeout=WATCH_TIMEOUT
                )
            async for change in monitor:
                state = "none" if change.current is None else change.current.status
                tally.change(change.key.target, str(state), change.terminal)
        meter.stop()
    return tally


async def sdk_sync(job: Job, meter: Meter) -> Tally:
    """
    One monitor; one ``with_options`` client per organisation on one pool.
    """
    watches = job.sync_watches()
    tally = Tally({f"{index}/{provider}": "synced" for index, provider in watches})

    def until(status: SyncStatus) -> bool:
        return status.all_synced

    async with _sdk_client(job) as client:
        await client.integrations.connection_status(job.warmup)
        meter.start()
        orgs = [client.with_options(api_key=key) for key in job.organizations]
        async with client.monitor() as monitor:
            for index, provider in watches:
                monitor.watch_sync(
                    provider,
                    interval=job.interval,
                    until=until,
                    client=orgs[index],
                    tag=index,
                )
            async for change in monitor:
                tally.change(
                    f"{change.key.tag}/{change.key.target}",
                    _sync_state(change),
                    change.terminal,
                )
        meter.stop()
    return tally


def _sync_state(change: Transition[Any]) -> str:
    current = change.current
    if current is None:
        return "none"
    return "synced" if current.all_synced else "pending"


async def sdk_idle(job: Job, meter: Meter) -> Tally:
    """
    One monitor of sessions that never end; measured once each has polled once.
    """
    tally = Tally(dict(job.sessions))
    async with _sdk_client(job) as client:
        await client.integrations.connection_status(job.warmup)
        meter.start()
        async with client.monitor() as monitor:
            for session_id, _ in job.sessions:
                monitor.watch_connection(
                    session_id, interval=job.interval, timeout=WATCH_TIMEOUT
                )
            async for change in monitor:
                tally.change(change.key.target, "pending", change.terminal)
                if tally.transitions == len(job.sessions):
                    meter.snapshot()
                    break
        meter.stop()
    return tally


# The loops a user writes by hand: the floor on aiohttp, and the same on httpx.

Fetch = Callable[[str, dict[str, str], dict[str, str]], Awaitable[dict[str, Any]]]
"""Sends one GET of a path with its query and headers; answers the decoded JSON."""


@contextlib.asynccontextmanager
async def aiohttp_fetch(job: Job) -> AsyncIterator[Fetch]:
    """
    GETs on one shared ``aiohttp.ClientSession``, at most ``job.concurrency`` at once.
    """
    limiter = asyncio.Semaphore(job.concurrency)
    async with _aiohttp_session(job) as http:

        async def fetch(
            path: str, params: dict[str, str], headers: dict[str, str]
        ) -> dict[str, Any]:
            async with (
                limiter,
                http.get(job.url + path, params=params, headers=headers) as r,
            ):
                if r.status != 200:
                    raise RuntimeError(f"status {r.status}")
                body: dict[str, Any] = json.loads(await r.read())
                return body

        yield fetch


@contextlib.asynccontextmanager
async def httpx_fetch(job: Job) -> AsyncIterator[Fetch]:
    """
    GETs on one shared ``httpx.AsyncClient``, at most ``job.concurrency`` at once.
    """
    limiter = asyncio.Semaphore(job.concurrency)
    async with _httpx_client(job) as http:

        async def fetch(
            path: str, params: dict[str, str], headers: dict[str, str]
        ) -> dict[str, Any]:
            async with limiter:
                r = await http.get(job.url + path, params=params, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"status {r.status_code}")
            body: dict[str, Any] = r.json()
            return body

        yield fetch


def _session_state(body: dict[str, Any]) -> tuple[str, bool]:
    state: str = body["status"]
    return state, state != "pending"


def _sync_state_of(body: dict[str, Any]) -> tuple[str, bool]:
    done = _synced(body)
    return ("synced" if done else "pending"), done


def _idle_state(body: dict[str, Any]) -> tuple[str, bool]:
    state: str = body["status"]
    return state, False


async def _watch(
    job: Job,
    fetch: Fetch,
    path: str,
    query: tuple[str, str],
    headers: dict[str, str],
    tally: Tally,
    watch_id: str,
    state_of: Callable[[dict[str, Any]], tuple[str, bool]],
) -> None:
    """
    Poll on the SDK's schedule, start to start; count each change in ``tally``
    until ``state_of`` calls one terminal.
    """
    loop = asyncio.get_running_loop()
    name, value = query
    await asyncio.sleep(first_delay(job))
    previous = None
    while True:
        next_at = loop.time() + gap(job)
        body = await fetch(path, {name: value}, headers)
        if body != previous:
            previous = body
            state, terminal = state_of(body)
            tally.change(watch_id, state, terminal)
            if terminal:
                return
        delay = next_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)


def _session_watches(
    job: Job,
    fetch: Fetch,
    headers: dict[str, str],
    tally: Tally,
    state_of: Callable[[dict[str, Any]], tuple[str, bool]],
) -> list[Coroutine[Any, Any, None]]:
    """
    One hand-written watch of each of the job's sessions.
    """
    return [
        _watch(
            job,
            fetch,
            CONNECTION_STATUS,
            ("sessionId", session_id),
            headers,
            tally,
            session_id,
            state_of,
        )
        for session_id, _ in job.sessions
    ]


async def hand_sessions(job: Job, meter: Meter, fetch: Fetch) -> Tally:
    """
    One task per session, until its terminal state.
    """
    tally = Tally(dict(job.sessions))
    headers = _bearer(job.key)
    await fetch(CONNECTION_STATUS, {"sessionId": job.warmup}, headers)
    meter.start()
    await asyncio.gather(*_session_watches(job, fetch, headers, tally, _session_state))
    meter.stop()
    return tally


async def hand_sync(job: Job, meter: Meter, fetch: Fetch) -> Tally:
    """
    One task per organisation and provider, until every model has succeeded.
    """
    watches = job.sync_watches()
    tally = Tally({f"{index}/{provider}": "synced" for index, provider in watches})
    await fetch(CONNECTION_STATUS, {"sessionId": job.warmup}, _bearer(job.key))
    meter.start()
    headers = [_bearer(key) for key in job.organizations]
    await asyncio.gather(
        *(
            _watch(
                job,
                fetch,
                SYNC_STATUS,
                ("provider", provider),
                headers[index],
                tally,
                f"{index}/{provider}",
                _sync_state_of,
            )
            for index, provider in watches
        )
    )
    meter.stop()
    return tally


async def hand_idle(job: Job, meter: Meter, fetch: Fetch) -> Tally:
    """
    One task per never-ending session; measured once each has polled once.
    """
    tally = Tally(dict(job.sessions), until=len(job.sessions))
    headers = _bearer(job.key)
    await fetch(CONNECTION_STATUS, {"sessionId": job.warmup}, headers)
    meter.start()
    tasks = [
        asyncio.ensure_future(watch)
        for watch in _session_watches(job, fetch, headers, tally, _idle_state)
    ]
    await tally.reached.wait()
    meter.snapshot()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    meter.stop()
    return tally


def _by_hand(
    client: Callable[[Job], contextlib.AbstractAsyncContextManager[Fetch]],
    workload: Callable[[Job, Meter, Fetch], Awaitable[Tally]],
) -> Contender:
    async def contender(job: Job, meter: Meter) -> Tally:
        async with client(job) as fetch:
            return await workload(job, meter, fetch)

    return contender


# The official command line's way: one session after another.


async def sequential_sessions(job: Job, meter: Meter) -> Tally:
    """
    One session at a time: poll, sleep ``interval``, until it ends; then the next.
    """
    tally = Tally(dict(job.sessions))
    url = job.url + CONNECTION_STATUS
    headers = _bearer(job.key)

    async with _aiohttp_session(job) as http:

        async def fetch(session_id: str) -> dict[str, Any]:
            async with http.get(
                url, params={"sessionId": session_id}, headers=headers
            ) as r:
                if r.status != 200:
                    raise RuntimeError(f"status {r.status}")
                body: dict[str, Any] = json.loads(await r.read())
                return body

        await fetch(job.warmup)
        meter.start()
        for session_id, _ in job.sessions:
            previous = None
            while True:
                body = await fetch(session_id)
                state = body["status"]
                if body != previous:
                    tally.change(session_id, state, state != "pending")
                    previous = body
                if state != "pending":
                    break
                await asyncio.sleep(job.interval)
        meter.stop()
    return tally


CONTENDERS: Final[dict[tuple[str, str], Contender]] = {
    ("sessions", "sdk"): sdk_sessions,
    ("sessions", "aiohttp"): _by_hand(aiohttp_fetch, hand_sessions),
    ("sessions", "httpx"): _by_hand(httpx_fetch, hand_sessions),
    ("sessions", "sequential"): sequential_sessions,
    ("sync", "sdk"): sdk_sync,
    ("sync", "aiohttp"): _by_hand(aiohttp_fetch, hand_sync),
    ("sync", "httpx"): _by_hand(httpx_fetch, hand_sync),
    ("idle", "sdk"): sdk_idle,
    ("idle", "aiohttp"): _by_hand(aiohttp_fetch, hand_idle),
    ("idle", "httpx"): _by_hand(httpx_fetch, hand_idle),
}
