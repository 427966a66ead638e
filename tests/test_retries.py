from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from itertools import islice, pairwise
from typing import Any

import anyio
import pytest

from outlit_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncOutlit,
    DirectConnection,
    RateLimitError,
    ServerError,
)
from outlit_async._transport import MAX_RETRY_AFTER, parse_retry_after, retry_delays
from outlit_async.testing import FakeOutlit, Fault

pytestmark = pytest.mark.anyio

LIST = "/api/integrations"
CONNECT = "/api/integrations/connect"
DISCONNECT = "/api/integrations/disconnect"
SETUP_STEP = "/api/integrations/setup-step"
SYNC_STATUS = "/api/integrations/sync-status"

SLACK = 0.02
"""Scheduling slack, in seconds, allowed below an asked wait."""

Call = Callable[[AsyncOutlit], Awaitable[Any]]


def _client(fake: FakeOutlit, **options: Any) -> AsyncOutlit:
    settings: dict[str, Any] = {"timeout": 2.0, "max_retries": 2, "retry_delay": 0.01}
    settings.update(options)
    return AsyncOutlit(fake.api_key, base_url=fake.url, **settings)


def _gaps(fake: FakeOutlit, path: str) -> list[float]:
    arrivals = [r.at for r in fake.requests_to(path)]
    return [later - earlier for earlier, later in pairwise(arrivals)]


# GET: retried on 408, 429, 5xx, dropped connections and timeouts


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
async def test_get_is_retried_on_transient_status(
    fake: FakeOutlit, status: int
) -> None:
    """A GET answered a transient status is retried, and then succeeds."""
    fake.faults.add(LIST, Fault.status(status), Fault.status(status))

    async with _client(fake) as client:
        items = await client.integrations.list()

    assert len(items) == 12
    assert [r.status for r in fake.requests_to(LIST)] == [status, status, 200]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (408, APIStatusError),
        (429, RateLimitError),
    ],
)
async def test_get_retries_stop_at_max_retries(
    fake: FakeOutlit, status: int, error: type[APIStatusError]
) -> None:
    """A GET is sent max_retries + 1 times at most, then the last error is raised."""
    fake.faults.add(SYNC_STATUS, *[Fault.status(status)] * 4)

    async with _client(fake, max_retries=2) as client:
        with pytest.raises(error) as caught:
            await client.integrations.sync_status("stripe")

    assert caught.value.status == status
    assert len(fake.requests_to(SYNC_STATUS)) == 3


async def test_no_retries_when_max_retries_is_zero(fake: FakeOutlit) -> None:
    """max_retries=0 sends a GET once, whatever the answer."""
    fake.faults.add(LIST, Fault.status(503))

    async with _client(fake, max_retries=0) as client:
        with pytest.raises(ServerError):
            await client.integrations.list()

    assert len(fake.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_get_is_not_retried_on_client_errors(
    fake: FakeOutlit, status: int
) -> None:
    """A GET answered a 4xx other than 408 and 429 is not retried."""
    fake.faults.add(LIST, Fault.status(status))

    async with _client(fake) as client:
        with pytest.raises(APIStatusError):
            await client.integrations.list()

    assert len(fake.requests) == 1


async def test_get_is_retried_on_a_dropped_connection(fake: FakeOutlit) -> None:
    """A GET whose connection drops is sent again until it is answered."""
    fake.faults.add(LIST, *[Fault.drop()] * 3)

    async with _client(fake, max_retries=2) as client:
        items = await client.integrations.list()

    assert len(items) == 12
    assert [r.status for r in fake.requests] == [None, None, None, 200]


async def test_get_retries_on_dropped_connections_stop(fake: FakeOutlit) -> None:
    """Dropped connections on every attempt end in APIConnectionError."""
    fake.faults.add(LIST, *[Fault.drop()] * 10)

    async with _client(fake, max_retries=2) as client:
        with pytest.raises(APIConnectionError):
            await client.integrations.list()

    # Each of the three attempts is two requests: aiohttp itself resends an
    # idempotent request once when its connection closes without an answer.
    assert [r.status for r in fake.requests] == [None] * 6


async def test_get_is_retried_on_a_timeout(fake: FakeOutlit) -> None:
    """A GET with no answer within timeout is retried, at most max_retries times."""
    fake.faults.add(LIST, *[Fault.slow(0.2)] * 4)

    async with _client(fake, timeout=0.05, max_retries=2) as client:
        with pytest.raises(APITimeoutError):
            await client.integrations.list()

    assert len(fake.faults.injected) == 3


async def test_get_recovers_after_a_timeout(fake: FakeOutlit) -> None:
    """A GET that timed out once succeeds on its retry."""
    fake.faults.add(LIST, Fault.slow(0.2))

    async with _client(fake, timeout=0.1) as client:
        items = await client.integrations.list()

    assert len(items) == 12
    assert len(fake.faults.injected) == 1


# POST: retried on 429 and 503 only


POSTS: list[tuple[str, str, Call]] = [
    (
        "connect",
        CONNECT,
        lambda c: c.integrations.connect("stripe", {"apiKey": "rk_1"}),
    ),
    ("disconnect", DISCONNECT, lambda c: c.integrations.disconnect("stripe")),
    (
        "setup-step",
        SETUP_STEP,
        lambda c: c.integrations.setup_step("stripe", "webhooks"),
    ),
]


@pytest.mark.parametrize(
    ("path", "call"), [p[1:] for p in POSTS], ids=[p[0] for p in POSTS]
)
@pytest.mark.parametrize("status", [429, 503])
async def test_post_is_retried_when_the_server_did_not_act(
    fake: FakeOutlit, path: str, call: Call, status: int
) -> None:
    """connect, disconnect and setup-step are retried on 429 and 503."""
    if path != CONNECT:
        fake.connect_provider("stripe")
    fake.faults.add(path, Fault.status(status), Fault.status(status))

    async with _client(fake) as client:
        await call(client)

    assert [r.status for r in fake.requests_to(path)] == [status, status, 200]


@pytest.mark.parametrize(
    ("path", "call"), [p[1:] for p in POSTS], ids=[p[0] for p in POSTS]
)
@pytest.mark.parametrize("status", [500, 502, 504, 408])
async def test_post_is_not_retried_when_the_server_may_have_acted(
    fake: FakeOutlit, path: str, call: Call, status: int
) -> None:
    """A POST answered 500, 502, 504 or 408 is sent exactly once."""
    fake.connect_provider("stripe")
    fake.faults.add(path, Fault.status(status))

    async with _client(fake) as client:
        with pytest.raises(APIStatusError) as caught:
            await call(client)

    assert caught.value.status == status
    assert len(fake.requests_to(path)) == 1


@pytest.mark.parametrize(
    ("path", "call"), [p[1:] for p in POSTS], ids=[p[0] for p in POSTS]
)
async def test_post_is_not_retried_on_a_dropped_connection(
    fake: FakeOutlit, path: str, call: Call
) -> None:
    """A POST whose connection drops is sent exactly once."""
    fake.connect_provider("stripe")
    fake.faults.add(path, Fault.drop())

    async with _client(fake) as client:
        with pytest.raises(APIConnectionError):
            await call(client)

    assert [r.status for r in fake.requests_to(path)] == [None]


async def test_post_is_not_retried_on_a_timeout(fake: FakeOutlit) -> None:
    """A POST with no answer in time is sent exactly once: it may have acted."""
    fake.faults.add(CONNECT, Fault.slow(0.2), Fault.slow(0.2))

    async with _client(fake, timeout=0.05) as client:
        with pytest.raises(APITimeoutError):
            await client.integrations.connect("slack")

    assert len(fake.faults.injected) == 1


async def test_post_retries_stop_at_max_retries(fake: FakeOutlit) -> None:
    """A POST answered 503 every time is sent max_retries + 1 times."""
    fake.faults.add(CONNECT, *[Fault.status(503)] * 5)

    async with _client(fake, max_retries=3) as client:
        with pytest.raises(ServerError):
            await client.integrations.connect("hubspot")

    assert len(fake.requests_to(CONNECT)) == 4


# Retry-After


async def test_retry_after_seconds_is_obeyed(fake: FakeOutlit) -> None:
    """The retry waits at least the Retry-After seconds, not the short backoff."""
    fake.faults.add(LIST, Fault.status(503, retry_after="0.15"))

    async with _client(fake, retry_delay=0.001) as client:
        await client.integrations.list()

    (gap,) = _gaps(fake, LIST)
    assert gap >= 0.15 - SLACK


async def test_retry_after_on_a_post_429_is_obeyed(fake: FakeOutlit) -> None:
    """A 429 with Retry-After on connect waits as asked, then connects."""
    fake.faults.add(CONNECT, Fault.status(429, retry_after="0.1"))

    async with _client(fake, retry_delay=0.001) as client:
        result = await client.integrations.connect("granola", {"apiKey": "grn_1"})

    assert isinstance(result, DirectConnection) and result.connected
    (gap,) = _gaps(fake, CONNECT)
    assert gap >= 0.1 - SLACK


async def test_retry_after_http_date_is_obeyed(fake: FakeOutlit) -> None:
    """A Retry-After date holds the retry back until that moment."""
    now = time.time()
    target = math.floor(now) + 1
    if target - now < 0.2:
        target += 1
    moment = datetime.fromtimestamp(target, timezone.utc)
    fake.faults.add(SYNC_STATUS, Fault.status(503, retry_after=moment))
    wall_offset = time.time() - time.monotonic()

    async with _client(fake, retry_delay=0.001) as client:
        await client.integrations.sync_status("stripe")

    first, second = fake.requests_to(SYNC_STATUS)
    assert first.status == 503
    assert second.at + wall_offset >= target - SLACK


async def test_retry_after_replaces_the_backoff(fake: FakeOutlit) -> None:
    """Retry-After: 0 retries at once, even with a long backoff configured."""
    fake.faults.add(LIST, Fault.status(429, retry_after="0"))

    async with _client(fake, retry_delay=30.0) as client:
        with anyio.fail_after(1.0):
            await client.integrations.list()

    assert len(fake.requests) == 2


# parse_retry_after


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("5", 5.0),
        (" 12 ", 12.0),
        ("1.5", 1.5),
        ("60", 60.0),
        ("61", MAX_RETRY_AFTER),
        ("120", 60.0),
        ("86400", 60.0),
        ("-3", 0.0),
        ("inf", 60.0),
    ],
)
def test_parse_retry_after_seconds(value: str, seconds: float) -> None:
    """Seconds are read as given, below zero as zero, and capped at 60."""
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_dates() -> None:
    """An HTTP date gives the seconds until it: capped at 60, zero once past."""
    now = datetime(2025, 10, 21, 7, 28, 0, tzinfo=timezone.utc).timestamp()

    assert parse_retry_after("Tue, 21 Oct 2025 07:28:30 GMT", now=now) == 30.0
    assert parse_retry_after("Tue, 21 Oct 2025 07:28:00 GMT", now=now) == 0.0
    assert parse_retry_after("Tue, 21 Oct 2025 09:00:00 GMT", now=now) == 60.0
    assert parse_retry_after("Mon, 20 Oct 2025 07:28:00 GMT", now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0
    assert parse_retry_after("Tue, 21 Oct 2025 09:28:10 +0200", now=now) == 10.0


def test_parse_retry_after_date_against_the_clock() -> None:
    """Without now=, a date is measured from the current time."""
    soon = format_datetime(
        datetime.fromtimestamp(time.time() + 30, timezone.utc), usegmt=True
    )

    seconds = parse_retry_after(soon)

    assert seconds is not None and 28.0 <= seconds <= 30.0


@pytest.mark.parametrize(
    "value",
    [None, "", "soon", "nan", "5 seconds", "Tue, 99 Foo 2025", "21 Oct 2015 07:28:00"],
)
def test_parse_retry_after_garbage(value: str | None) -> None:
    """A missing or unreadable Retry-After gives None: the backoff decides."""
    assert parse_retry_after(value) is None


# Backoff with full jitter


def test_retry_delays_are_exponential_with_full_jitter() -> None:
    """The n-th delay lies in [0, first * 2**n], capped at 30 s, and is spread."""
    samples = [list(islice(retry_delays(1.0), 8)) for _ in range(300)]

    for delays in samples:
        for index, delay in enumerate(delays):
            assert 0.0 <= delay <= min(2.0**index, 30.0)
    firsts = [delays[0] for delays in samples]
    assert min(firsts) < 0.2
    assert max(firsts) > 0.8
    assert len(set(firsts)) > 250


async def test_backoff_waits_stay_below_the_exponential_cap(
    fake: FakeOutlit,
) -> None:
    """Without Retry-After, each wait is at most retry_delay * 2**n (plus slack)."""
    fake.faults.add(LIST, *[Fault.status(500)] * 3)

    async with _client(fake, retry_delay=0.05, max_retries=3) as client:
        await client.integrations.list()

    gaps = _gaps(fake, LIST)
    assert len(gaps) == 3
    for index, gap in enumerate(gaps):
        assert gap <= 0.05 * 2**index + 0.05


# Logging


async def test_each_retry_logs_a_warning_and_each_answer_a_debug_line(
    fake: FakeOutlit, caplog: pytest.LogCaptureFixture
) -> None:
    """A WARNING per retry names route and attempt; a DEBUG line per request."""
    caplog.set_level(logging.DEBUG, logger="outlit_async")
    session_id = fake.create_session("hubspot")
    fake.faults.add(
        "/api/integrations/connect/status", Fault.status(502), Fault.status(429)
    )

    async with _client(fake) as client:
        await client.integrations.connection_status(session_id)

    records = [r for r in caplog.records if r.name == "outlit_async"]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    debugs = [r for r in records if r.levelno == logging.DEBUG]
    assert [r.levelno for r in records if r.levelno == logging.INFO] == []
    assert len(warnings) == 2
    route = "GET /api/integrations/connect/status"
    for attempt, record in enumerate(warnings, start=1):
        message = record.getMessage()
        assert route in message
        assert f"attempt {attempt} of 3" in message
        assert record.__dict__["route"] == route
        assert record.__dict__["attempt"] == attempt
    assert "status 502" in warnings[0].getMessage()
    assert "status 429" in warnings[1].getMessage()
    assert len(debugs) == 3
    for attempt, (record, status) in enumerate(
        zip(debugs, (502, 429, 200), strict=True), start=1
    ):
        message = record.getMessage()
        assert message.startswith(f"{route} -> {status} in ")
        assert message.endswith(f" ms (attempt {attempt})")
    for record in records:
        assert session_id not in record.getMessage()
        assert fake.api_key not in record.getMessage()


async def test_a_request_with_no_answer_still_logs_its_debug_line(
    fake: FakeOutlit, caplog: pytest.LogCaptureFixture
) -> None:
    """A dropped POST gets a DEBUG line naming the failure instead of a status."""
    caplog.set_level(logging.DEBUG, logger="outlit_async")
    fake.faults.add(DISCONNECT, Fault.drop())

    async with _client(fake) as client:
        with pytest.raises(APIConnectionError):
            await client.integrations.disconnect("stripe")

    debugs = [
        r.getMessage()
        for r in caplog.records
        if r.name == "outlit_async" and r.levelno == logging.DEBUG
    ]
    assert len(debugs) == 1
    assert debugs[0].startswith(f"POST {DISCONNECT} -> ServerDisconnectedError in ")
    assert debugs[0].endswith(" ms (attempt 1)")


async def test_nothing_is_logged_at_info(
    fake: FakeOutlit, caplog: pytest.LogCaptureFixture
) -> None:
    """Successful requests and retries log nothing at INFO or above but WARNING."""
    caplog.set_level(logging.INFO, logger="outlit_async")

    async with _client(fake) as client:
        await client.integrations.list()
        await client.integrations.capabilities("pylon")

    assert [r for r in caplog.records if r.name == "outlit_async"] == []


async def test_a_dropped_connection_retry_is_logged(
    fake: FakeOutlit, caplog: pytest.LogCaptureFixture
) -> None:
    """A retry after a lost connection logs the kind of failure, not its details."""
    caplog.set_level(logging.WARNING, logger="outlit_async")
    fake.faults.add(LIST, Fault.drop(), Fault.drop())

    async with _client(fake) as client:
        await client.integrations.list()

    (record,) = caplog.records
    assert "after APIConnectionError" in record.getMessage()
    assert "GET /api/integrations" in record.getMessage()
