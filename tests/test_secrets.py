"""
The API key and the values of ``config`` never show: not in a log line, an
exception, a traceback or a repr, on success or on any failure.

A canary key and canary config values go through every route, while FakeOutlit
answers with errors, drops the connection, answers too late, or fails once and
then answers. Everything a caller could print is collected and searched: log
records at DEBUG (root and ``outlit_async``), every exception with its chained
causes, every model, the client and its parts, the monitor and its watches,
and FakeOutlit's own request log.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Final

import anyio
import pytest

from outlit_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncOutlit,
    AuthenticationError,
    BadRequestError,
    BrowserSession,
    ConfigurationError,
    ConnectionFailedError,
    ConnectionLimitError,
    NotConnectedError,
    OutlitError,
    PollTimeoutError,
    ServerError,
)
from outlit_async.testing import FakeOutlit, Fault, SyncScript

pytestmark = pytest.mark.anyio

KEY_MARK: Final = uuid.uuid4().hex
SECRET_MARK: Final = uuid.uuid4().hex
KEY: Final = f"ok_CANARYKEY_{KEY_MARK}"
SECRET: Final = f"CANARYSECRET_{SECRET_MARK}"
CANARIES: Final = (KEY, SECRET, KEY_MARK, SECRET_MARK, "CANARYKEY", "CANARYSECRET")
"""The canaries, and the parts of them a truncated or masked print would keep."""

API: Final = "/api/integrations"


def _exception_texts(exc: BaseException) -> list[str]:
    """
    What printing ``exc`` can show: its formatted traceback, and the text,
    repr, arguments and attributes (``body``, ``details``, ...) of it and of
    every exception chained to it.
    """
    texts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        texts += [repr(vars(current))]
        pending += [e for e in (current.__cause__, current.__context__) if e]
    return texts


def _log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    """
    The captured log as printed, and every record's fields, ``extra`` included.
    """
    return [caplog.text, *(repr(vars(record)) for record in caplog.records)]


def _assert_clean(texts: Iterable[str], where: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in text, f"{where} shows a canary: {text!r}"


def _assert_logs_and_fake_clean(
    caplog: pytest.LogCaptureFixture, fake: FakeOutlit
) -> None:
    assert any(r.name == "outlit_async" for r in caplog.records), "nothing logged"
    _assert_clean(_log_texts(caplog), "the log")
    _assert_clean(
        [repr(fake), repr(fake.faults), repr(fake.requests)], "FakeOutlit's log"
    )


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="outlit_async")
    return caplog


@pytest.fixture
async def fake() -> AsyncIterator[FakeOutlit]:
    async with FakeOutlit(KEY, sync_script=SyncScript(succeed_after_polls=1)) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOutlit) -> AsyncIterator[AsyncOutlit]:
    async with AsyncOutlit(
        KEY, base_url=fake.url, timeout=0.2, max_retries=1, retry_delay=0.01
    ) as outlit:
        yield outlit


Call = Callable[[AsyncOutlit, str], Awaitable[object]]
"""Calls a route with a client and the id of a pending session."""


async def _list(client: AsyncOutlit, session_id: str) -> object:
    return await client.integrations.list()


async def _capabilities(client: AsyncOutlit, session_id: str) -> object:
    return await client.integrations.capabilities()


async def _setup_step(client: AsyncOutlit, session_id: str) -> object:
    config = {"webhookSecret": SECRET}
    return await client.integrations.setup_step("stripe", "webhooks", config)


async def _connect(client: AsyncOutlit, session_id: str) -> object:
    return await client.integrations.connect("pylon", {"apiToken": SECRET})


async def _connection_status(client: AsyncOutlit, session_id: str) -> object:
    return await client.integrations.connection_status(session_id)


async def _disconnect(client: AsyncOutlit, session_id: str) -> object:
    return await client.integrations.disconnect("stripe")


async def _sync_status(client: AsyncOutlit, session_id: str) -> object:
    return await client.integrations.sync_status("stripe")


# route                 path                      call
ROUTES: Final[dict[str, tuple[str, Call]]] = {
    "list":              (API,                     _list),
    "capabilities":      (f"{API}/capabilities",   _capabilities),
    "setup step":        (f"{API}/setup-step",     _setup_step),
    "connect":           (f"{API}/connect",        _connect),
    "connection status": (f"{API}/connect/status", _connection_status),
    "disconnect":        (f"{API}/disconnect",     _disconnect),
    "sync status":       (f"{API}/sync-status",    _sync_status),
}  # fmt: skip
"""Every route, with the canary key, and canary config where the route takes it."""

# failure       faults queued               what the caller sees
FAILURES: Final[dict[str, tuple[tuple[Fault, ...], type[OutlitError] | None]]] = {
    "400":       ((Fault.status(400),),       BadRequestError),
    "401":       ((Fault.status(401),),       AuthenticationError),
    "403":       ((Fault.status(403),),       APIStatusError),
    "500":       ((Fault.status(500),) * 2,   ServerError),
    "dropped":   ((Fault.drop(),) * 4,        APIConnectionError),
    "timed out": ((Fault.slow(0.3),) * 2,     APITimeoutError),
    "retried":   ((Fault.status(503),),       None),
}  # fmt: skip
"""
Each failure, and what the caller sees (None: an answer, after a retry). A GET
is retried once in this module, so it meets two faults where two are queued,
and four drops (aiohttp resends a dropped GET once itself); a POST is not
retried after a 500, a drop or a timeout, and meets one.
"""


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("route", list(ROUTES))
async def test_no_canary_when_a_route_fails(
    route: str,
    failure: str,
    fake: FakeOutlit,
    client: AsyncOutlit,
    logs: pytest.LogCaptureFixture,
) -> None:
    """A failed or retried call shows no secret in its error, result or logs."""
    path, call = ROUTES[route]
    faults, expected = FAILURES[failure]
    if (route, failure) == ("connect", "403"):
        expected = ConnectionLimitError
    fake.connect_provider("stripe")
    session_id = fake.create_session("hubspot")
    fake.faults.add(path, *faults)

    try:
        result = await call(client, session_id)
    except OutlitError as exc:
        assert type(exc) is expected, exc
        _assert_clean(_exception_texts(exc), f"the {type(exc).__name__}")
    else:
        assert expected is None, result
        _assert_clean([repr(result), str(result)], "the result")

    assert fake.faults.injected
    _assert_logs_and_fake_clean(logs, fake)


async def test_no_canary_in_results_or_in_the_client(
    fake: FakeOutlit, client: AsyncOutlit, logs: pytest.LogCaptureFixture
) -> None:
    """Every model answered, and the client and its parts, print no secret."""
    integrations = client.integrations
    fake.connect_provider("hubspot")
    results: list[object] = [
        await integrations.list(),
        await integrations.list(connected_only=True),
        await integrations.capabilities(),
        await integrations.capabilities("stripe"),
        await integrations.connect("stripe", {"apiKey": SECRET}),
        await integrations.setup_step("stripe", "webhooks", {"webhookSecret": SECRET}),
        await integrations.setup_step("hubspot", "mappings"),
        await integrations.sync_status("stripe"),
        await integrations.disconnect("stripe"),
    ]
    session = await integrations.connect("slack")
    assert isinstance(session, BrowserSession)
    results += [session, await integrations.connection_status(session.session_id)]
    copy = client.with_options(timeout=1.0)
    parts = [client, copy, integrations, client._transport.settings, client._transport]

    _assert_clean(map(repr, results), "a result")
    _assert_clean(map(str, results), "a result")
    _assert_clean(map(repr, parts), "the client")
    _assert_logs_and_fake_clean(logs, fake)


async def test_no_canary_in_watches_or_the_monitor(
    fake: FakeOutlit, client: AsyncOutlit, logs: pytest.LogCaptureFixture
) -> None:
    """Watches, their transitions and errors, and the monitor print no secret."""
    integrations = client.integrations
    connected = fake.create_session("hubspot", outcome="connected", after_polls=2)
    failed = fake.create_session("attio", outcome="failed", error="denied")
    fake.connect_provider("stripe")
    fake.faults.random(0.3, seed=7)
    texts: list[str] = []
    errors: list[BaseException] = []

    with anyio.fail_after(10):
        watch = integrations.watch_connection(connected, interval=0.02)
        texts.append(repr(watch))
        texts += [repr(change) async for change in watch]
        async with client.monitor() as monitor:
            monitor.watch_connection(connected, interval=0.02, tag="org-1")
            monitor.watch_connection(failed, interval=0.02)
            monitor.watch_connection("no-such-session", interval=0.02)
            monitor.watch_connection(
                fake.create_session("slack"), interval=0.02, timeout=0.1
            )
            monitor.watch_sync("stripe", interval=0.02, until=lambda s: s.all_synced)
            texts.append(repr(monitor))
            async for change in monitor:
                texts += [repr(change), str(change)]
                if change.error is not None:
                    errors.append(change.error)
            texts.append(repr(monitor))

    kinds = {type(e) for e in errors}
    assert {ConnectionFailedError, PollTimeoutError, BadRequestError} <= kinds
    _assert_clean(texts, "a watch")
    for error in errors:
        _assert_clean(_exception_texts(error), f"the {type(error).__name__}")
    _assert_logs_and_fake_clean(logs, fake)


async def test_no_canary_in_the_servers_own_errors(
    fake: FakeOutlit, client: AsyncOutlit, logs: pytest.LogCaptureFixture
) -> None:
    """Errors the server itself answers (400, 401, 403, 404) show no secret."""
    integrations = client.integrations
    fake.connect_provider("hubspot")
    failing: list[tuple[type[OutlitError], Callable[[], Awaitable[Any]]]] = [
        (
            BadRequestError,
            lambda: integrations.setup_step(
                "hubspot", "mappings", {"mappings": [{"source": SECRET}]}
            ),
        ),
        (BadRequestError, lambda: integrations.connect("posthog", {"region": SECRET})),
        (NotConnectedError, lambda: integrations.disconnect("slack")),
        (
            ConnectionFailedError,
            lambda: integrations.wait_for_connection(
                fake.create_session("attio", outcome="failed", after_polls=1),
                interval=0.02,
            ),
        ),
        (
            PollTimeoutError,
            lambda: integrations.wait_for_connection(
                fake.create_session("attio"), interval=0.02, timeout=0.1
            ),
        ),
    ]
    async with AsyncOutlit(f"{KEY}_revoked", base_url=fake.url) as stranger:
        failing.append((AuthenticationError, stranger.integrations.list))
        fake.organization().connection_limit = 1
        failing.append(
            (
                ConnectionLimitError,
                lambda: integrations.connect("stripe", {"apiKey": SECRET}),
            )
        )
        for expected, call in failing:
            with pytest.raises(expected) as caught:
                await call()
            _assert_clean(_exception_texts(caught.value), f"the {expected.__name__}")

    _assert_logs_and_fake_clean(logs, fake)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://app.outlit.ai",
        "http://api.example.com:8080/",
        "http://10.0.0.7",
        "http://[2001:db8::1]",
        "http://localhost.evil.example",
        "http://evil.localhost",
        "ftp://app.outlit.ai",
        f"ftp://user:{SECRET}@app.outlit.ai",
        f"https://{SECRET}@app.outlit.ai",
        f"https://user:{SECRET}@app.outlit.ai",
    ],
)
async def test_the_key_is_refused_over_plain_http_without_showing_it(
    base_url: str, client: AsyncOutlit
) -> None:
    """Plain http to a remote host is refused at once; the error hides the key."""
    with pytest.raises(ConfigurationError) as made:
        AsyncOutlit(KEY, base_url=base_url)
    with pytest.raises(ConfigurationError) as copied:
        client.with_options(base_url=base_url)

    for caught in (made, copied):
        _assert_clean(_exception_texts(caught.value), "the ConfigurationError")
    assert AsyncOutlit(KEY, base_url="https://app.outlit.ai").base_url.startswith(
        "https://"
    )


async def test_a_value_the_server_repeats_in_its_error_is_redacted(
    client: AsyncOutlit,
) -> None:
    """A 400 that quotes a config value carries ``[redacted]`` in its place."""
    integrations = client.integrations
    with pytest.raises(BadRequestError) as long_value:
        await integrations.connect(
            "posthog", {"region": SECRET, "apiKey": "phc_1", "projectId": "1"}
        )
    with pytest.raises(BadRequestError) as short_value:
        await integrations.connect(
            "posthog", {"region": "zz", "apiKey": "phc_1", "projectId": "1"}
        )

    _assert_clean(_exception_texts(long_value.value), "the BadRequestError")
    (issue,) = long_value.value.details
    assert issue.path == ("config", "region")
    assert issue.message.endswith("received '[redacted]'")
    assert "[redacted]" in repr(long_value.value.body)
    # A short value is redacted where it stands alone, and only there.
    (issue,) = short_value.value.details
    assert issue.message == (
        "Invalid enum value. Expected 'us' | 'eu', received '[redacted]'"
    )
