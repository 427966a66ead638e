"""
Every fault on every route, with the outcome the SDK defines for it.

One test runs the whole matrix: each route of the API, and the two poll loops
built on the GET routes, meets each fault FakeOutlit can inject. The outcome
of each pair comes from two tables below: ``FAULTS`` says what a fault does to
a GET, to a POST and to a poll; ``ROUTES`` says how each route is called and
what its answers hold. The request count of every row is asserted too, so a
retry that should not happen, or one that is missing, fails the row.
"""

# ruff: noqa: E501

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, Literal

import anyio
import attrs
import pytest

from outlit_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncOutlit,
    AuthenticationError,
    BadRequestError,
    Capability,
    ConnectionStatus,
    DirectConnection,
    DisconnectResult,
    Integration,
    OutlitError,
    ResponseValidationError,
    ServerError,
    SetupStepResult,
    SyncStatus,
    Transition,
)
from outlit_async.testing import FakeOutlit, Fault, SyncScript

pytestmark = pytest.mark.anyio

TIMEOUT: Final = 0.2
"""The client's timeout in this module: a slow answer must outlast it."""

SLOW: Final = 0.4
INTERVAL: Final = 0.05
POLLS: Final = 2
"""Polls each watch needs with no fault: the session and the syncs settle on the 2nd."""


@attrs.frozen
class Retried:
    """A retried request that succeeds: one attempt more per fault queued."""


@attrs.frozen
class Decoded:
    """The answer decodes as usual."""


@attrs.frozen
class Raises:
    """
    The call raises exactly ``error``, naming the route, after ``requests``
    (by default, one per fault queued).
    """

    error: type[OutlitError]
    requests: int | None = None


@attrs.frozen
class Reaches:
    """The watch still reaches its outcome, after ``extra`` requests more."""

    extra: int


@attrs.frozen
class Ends:
    """The watch ends at once, raising ``error``."""

    error: type[OutlitError]


Outcome = Retried | Decoded | Raises | Reaches | Ends


def _unknown_status_poll(path: str) -> Outcome:
    """
    FakeOutlit does not count a connection poll answered with an unknown
    status (it disguises the answer the session would give without the poll),
    so that watch polls once more; a sync poll counts.
    """
    return Reaches(1 if path.endswith("/connect/status") else 0)


@attrs.frozen
class FaultRow:
    """
    One fault and what it does to a GET, to a POST and to a poll.
    """

    name: str
    faults: tuple[Fault, ...]
    get: Outcome
    post: Outcome
    poll: Outcome | Callable[[str], Outcome]


RETRIED: Final = Retried()
DECODED: Final = Decoded()
INVALID: Final = Raises(ResponseValidationError)
POLLS_AGAIN: Final = Reaches(1)
GOES_ON: Final = Reaches(0)

#            name              faults queued                        GET                          POST                           poll
FAULTS: Final = (
    FaultRow("500",            (Fault.status(500),),                RETRIED,                     Raises(ServerError),           POLLS_AGAIN),
    FaultRow("502",            (Fault.status(502),),                RETRIED,                     Raises(ServerError),           POLLS_AGAIN),
    FaultRow("503",            (Fault.status(503),),                RETRIED,                     RETRIED,                       POLLS_AGAIN),
    FaultRow("504",            (Fault.status(504),),                RETRIED,                     Raises(ServerError),           POLLS_AGAIN),
    FaultRow("503 x4",         (Fault.status(503),) * 4,            Raises(ServerError),         Raises(ServerError),           Reaches(4)),
    FaultRow("408",            (Fault.status(408),),                RETRIED,                     Raises(APIStatusError),        POLLS_AGAIN),
    FaultRow("429",            (Fault.status(429, retry_after=0),), RETRIED,                     RETRIED,                       POLLS_AGAIN),
    FaultRow("400",            (Fault.status(400),),                Raises(BadRequestError),     Raises(BadRequestError),       Ends(BadRequestError)),
    FaultRow("401",            (Fault.status(401),),                Raises(AuthenticationError), Raises(AuthenticationError),   Ends(AuthenticationError)),
    FaultRow("drop",           (Fault.drop(),),                     RETRIED,                     Raises(APIConnectionError),    POLLS_AGAIN),
    FaultRow("drop x2",        (Fault.drop(),) * 2,                 RETRIED,                     Raises(APIConnectionError, 1), Reaches(2)),
    FaultRow("drop x8",        (Fault.drop(),) * 8,                 Raises(APIConnectionError),  Raises(APIConnectionError, 1), Reaches(8)),
    FaultRow("timeout",        (Fault.slow(SLOW),),                 RETRIED,                     Raises(APITimeoutError),       POLLS_AGAIN),
    FaultRow("html 502",       (Fault.html(502),),                  RETRIED,                     Raises(ServerError),           POLLS_AGAIN),
    FaultRow("truncated",      (Fault.truncated(),),                INVALID,                     INVALID,                       GOES_ON),
    FaultRow("missing field",  (),                                  INVALID,                     INVALID,                       GOES_ON),
    FaultRow("extra fields",   (Fault.extra_fields(),),             DECODED,                     DECODED,                       GOES_ON),
    FaultRow("unknown status", (Fault.unknown_status("paused"),),   DECODED,                     DECODED,                       _unknown_status_poll),
)  # fmt: skip
"""
What each fault does. "503 x4" spends the three retries of a request.

aiohttp itself sends a GET again, once, when the server drops the
connection, before the SDK sees any error: one drop costs a GET one request
more and no SDK retry, two drops cost one SDK retry, and it takes eight drops
(four SDK attempts of two requests each) to spend the retries. A POST is not
resent by aiohttp, nor retried by the SDK after a drop. The
missing-field fault is made per route (its field is in ``ROUTES``). In the
poll column, a fault retried by the transport costs the poll one request
more; a fault on an answer the server acted on (truncated, missing field)
costs none, since that poll counted and the next one comes on schedule.
"""

Call = Callable[[FakeOutlit, AsyncOutlit], Awaitable[Any]]


@attrs.frozen
class Route:
    """
    One route, or one poll loop, and what its answers hold.

    :param missing: the field the missing-field fault removes
    :param missing_at: the path the error names; None where the route keeps
        its answer whole, with no required field
    :param statuses: the status values in an answer, which an unknown-status
        fault replaces
    :param reached: for a poll, whether its transitions reached the outcome
    """

    name: str
    method: Literal["GET", "POST", "POLL"]
    path: str
    call: Call
    result: type[Any]
    missing: str
    missing_at: str | None
    statuses: Callable[[Any], list[object]] = lambda result: []
    reached: Callable[[list[Transition[Any]]], bool] | None = None


async def _list(fake: FakeOutlit, client: AsyncOutlit) -> list[Integration]:
    return await client.integrations.list()


async def _capabilities(fake: FakeOutlit, client: AsyncOutlit) -> Capability:
    return await client.integrations.capabilities("pylon")


async def _setup_step(fake: FakeOutlit, client: AsyncOutlit) -> SetupStepResult:
    fake.connect_provider("hubspot")
    return await client.integrations.setup_step("hubspot", "mappings")


async def _connect(fake: FakeOutlit, client: AsyncOutlit) -> object:
    return await client.integrations.connect("stripe", config={"apiKey": "rk_1"})


async def _connection_status(fake: FakeOutlit, client: AsyncOutlit) -> ConnectionStatus:
    session_id = fake.create_session("hubspot")
    return await client.integrations.connection_status(session_id)


async def _disconnect(fake: FakeOutlit, client: AsyncOutlit) -> DisconnectResult:
    fake.connect_provider("stripe")
    return await client.integrations.disconnect("stripe")


async def _sync_status(fake: FakeOutlit, client: AsyncOutlit) -> SyncStatus:
    fake.connect_provider("stripe")
    return await client.integrations.sync_status("stripe")


async def _watch_connection(
    fake: FakeOutlit, client: AsyncOutlit
) -> list[Transition[ConnectionStatus]]:
    session_id = fake.create_session("hubspot", outcome="connected", after_polls=POLLS)
    watch = client.integrations.watch_connection(
        session_id, interval=INTERVAL, timeout=5.0
    )
    return [change async for change in watch]


async def _watch_sync(
    fake: FakeOutlit, client: AsyncOutlit
) -> list[Transition[SyncStatus]]:
    fake.connect_provider("stripe")
    watch = client.integrations.watch_sync(
        "stripe", interval=INTERVAL, timeout=5.0, until=lambda s: s.all_synced
    )
    return [change async for change in watch]


def _ended_connected(changes: list[Transition[Any]]) -> bool:
    last = changes[-1]
    current = last.current
    return last.terminal and last.error is None and bool(current and current.connected)


def _ended_synced(changes: list[Transition[Any]]) -> bool:
    last = changes[-1]
    current = last.current
    return last.terminal and last.error is None and bool(current and current.all_synced)


API: Final = "/api/integrations"

#         name                 method  path                     call                decodes to        missing field   the error names it    statuses in the answer
ROUTES: Final = (
    Route("list",              "GET",  API,                     _list,              list,             "name",         "$.items[0].name",    lambda r: [i.status for i in r]),
    Route("capabilities",      "GET",  f"{API}/capabilities",   _capabilities,      Capability,       "cliName",      "$.provider.cliName"),
    Route("setup step",        "POST", f"{API}/setup-step",     _setup_step,        SetupStepResult,  "status",       None,                 lambda r: [r.status]),
    Route("connect",           "POST", f"{API}/connect",        _connect,           DirectConnection, "connectionId", "$.connectionId"),
    Route("connection status", "GET",  f"{API}/connect/status", _connection_status, ConnectionStatus, "status",       "$.status",           lambda r: [r.status]),
    Route("disconnect",        "POST", f"{API}/disconnect",     _disconnect,        DisconnectResult, "success",      "$.success"),
    Route("sync status",       "GET",  f"{API}/sync-status",    _sync_status,       SyncStatus,       "model",        "$.syncs[0].model",   lambda r: [r.status, *(m.status for m in r.syncs)]),
    Route("watch_connection",  "POLL", f"{API}/connect/status", _watch_connection,  list,             "status",       "$.status",           reached=_ended_connected),
    Route("watch_sync",        "POLL", f"{API}/sync-status",    _watch_sync,        list,             "model",        "$.syncs[0].model",   reached=_ended_synced),
)  # fmt: skip
"""
The routes, and the two poll loops on the GET routes. A setup step's answer
is kept whole (each step answers its own shape), so it has no required field.
"""

MATRIX: Final = list(itertools.product(ROUTES, FAULTS))
ROWS: Final = len(MATRIX)
"""The size of the matrix: routes (and polls) times faults."""


def _expected(route: Route, row: FaultRow) -> Outcome:
    if row.name == "missing field" and route.missing_at is None:
        return DECODED
    if route.method == "GET":
        return row.get
    if route.method == "POST":
        return row.post
    return row.poll(route.path) if callable(row.poll) else row.poll


def _requests(route: Route, row: FaultRow, outcome: Outcome) -> int:
    faults = len(row.faults) or 1
    if isinstance(outcome, Retried):
        return faults + 1
    if isinstance(outcome, Raises):
        return faults if outcome.requests is None else outcome.requests
    if isinstance(outcome, Reaches):
        return POLLS + outcome.extra
    return 1


@pytest.fixture
async def fake() -> AsyncIterator[FakeOutlit]:
    async with FakeOutlit(sync_script=SyncScript(succeed_after_polls=POLLS)) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOutlit) -> AsyncIterator[AsyncOutlit]:
    async with AsyncOutlit(
        fake.api_key, base_url=fake.url, timeout=TIMEOUT, retry_delay=0.01
    ) as outlit:
        yield outlit


async def _logged(fake: FakeOutlit, count: int) -> int:
    """
    The number of requests logged, once ``count`` are (a slow one logs late).
    """
    for _ in range(200):
        if len(fake.requests) >= count:
            break
        await anyio.sleep(0.01)
    return len(fake.requests)


@pytest.mark.parametrize(
    ("route", "row"), MATRIX, ids=[f"{r.name}-{f.name}" for r, f in MATRIX]
)
async def test_fault_matrix(
    route: Route, row: FaultRow, fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """Each route meets each fault with its defined outcome and request count."""
    faults = row.faults or (Fault.missing_field(route.missing),)
    fake.faults.add(route.path, *faults)
    expected = _expected(route, row)
    result: Any = None
    error: BaseException | None = None

    with anyio.fail_after(10):
        try:
            result = await route.call(fake, client)
        except OutlitError as exc:
            error = exc

    if isinstance(expected, (Raises, Ends)):
        assert type(error) is expected.error, error
        assert isinstance(error, OutlitError)
        assert getattr(error, "route", None) == _route_name(route)
    else:
        assert error is None, error
        assert isinstance(result, route.result)
    if isinstance(expected, Raises) and row.name == "missing field":
        assert isinstance(error, ResponseValidationError)
        assert f"{route.missing_at}: required field missing" in error.errors
    if isinstance(expected, Decoded) and row.name == "unknown status":
        statuses = route.statuses(result)
        # Capabilities, connect and disconnect answer no status field at all.
        assert statuses or route.name in {"capabilities", "connect", "disconnect"}
        assert all(s == "paused" and type(s) is str for s in statuses), statuses
    if isinstance(expected, Reaches):
        assert route.reached is not None and route.reached(result), result
    requests = _requests(route, row, expected)
    assert len(fake.faults.injected) == min(len(faults), requests)
    assert await _logged(fake, requests) == requests


def _route_name(route: Route) -> str:
    return f"{'POST' if route.method == 'POST' else 'GET'} {route.path}"


if __name__ == "__main__":
    print(f"{ROWS} rows: {len(ROUTES)} routes and polls x {len(FAULTS)} faults")
