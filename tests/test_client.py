from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

import outlit_async
from outlit_async import (
    DEFAULT_BASE_URL,
    AsyncOutlit,
    AuthenticationError,
    ConfigurationError,
)
from outlit_async.testing import FakeOutlit, Fault

pytestmark = pytest.mark.anyio

KEY = "ok_test_key"
LIST = "/api/integrations"


class HeaderServer:
    """
    A loopback server that answers an empty integration list and keeps headers.
    """

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        return web.json_response({"items": []})


@pytest.fixture
async def header_server() -> AsyncIterator[HeaderServer]:
    server = HeaderServer()
    app = web.Application()
    app.router.add_get(LIST, server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OUTLIT_API_KEY", raising=False)
    monkeypatch.delenv("OUTLIT_BASE_URL", raising=False)
    yield


# Construction: the key and the base URL


@pytest.mark.usefixtures("no_env")
def test_missing_key_fails_at_construction() -> None:
    """No api_key and no OUTLIT_API_KEY is a ConfigurationError naming the variable."""
    with pytest.raises(ConfigurationError, match="OUTLIT_API_KEY"):
        AsyncOutlit()


@pytest.mark.usefixtures("no_env")
def test_empty_key_is_missing() -> None:
    """An empty key counts as no key."""
    with pytest.raises(ConfigurationError, match="OUTLIT_API_KEY"):
        AsyncOutlit("")


@pytest.mark.usefixtures("no_env")
@pytest.mark.parametrize("key", ["ok key", "ok_\nkey", " ok_key"])
def test_key_with_spaces_or_controls_is_refused(key: str) -> None:
    """A key with whitespace or control characters is refused before use."""
    with pytest.raises(ConfigurationError, match="API key"):
        AsyncOutlit(key)


@pytest.mark.usefixtures("no_env")
async def test_key_from_argument_is_sent(fake: FakeOutlit) -> None:
    """The api_key argument authenticates the requests."""
    async with AsyncOutlit(fake.api_key, base_url=fake.url) as client:
        items = await client.integrations.list()

    assert len(items) == 12
    assert fake.requests[-1].authorized


async def test_key_from_environment_is_sent(
    fake: FakeOutlit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OUTLIT_API_KEY is used when no api_key is given."""
    monkeypatch.setenv("OUTLIT_API_KEY", fake.api_key)

    async with AsyncOutlit(base_url=fake.url) as client:
        await client.integrations.list()

    assert fake.requests[-1].authorized


async def test_key_argument_wins_over_environment(
    fake: FakeOutlit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit api_key is used even when OUTLIT_API_KEY is set."""
    monkeypatch.setenv("OUTLIT_API_KEY", "ok_someone_else")

    async with AsyncOutlit(fake.api_key, base_url=fake.url) as client:
        await client.integrations.list()

    assert fake.requests[-1].authorized


@pytest.mark.usefixtures("no_env")
def test_base_url_defaults_to_outlit() -> None:
    """With no base_url and no OUTLIT_BASE_URL the client talks to app.outlit.ai."""
    client = AsyncOutlit(KEY)

    assert client.base_url == DEFAULT_BASE_URL == "https://app.outlit.ai"


@pytest.mark.usefixtures("no_env")
async def test_base_url_from_environment(
    fake: FakeOutlit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OUTLIT_BASE_URL sets the base URL, and requests go there."""
    monkeypatch.setenv("OUTLIT_BASE_URL", fake.url + "/")

    async with AsyncOutlit(fake.api_key) as client:
        assert client.base_url == fake.url
        await client.integrations.list()

    assert [r.path for r in fake.requests] == [LIST]


@pytest.mark.usefixtures("no_env")
def test_base_url_argument_wins_over_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An explicit base_url is used even when OUTLIT_BASE_URL is set."""
    monkeypatch.setenv("OUTLIT_BASE_URL", "https://sandbox.outlit.ai")

    client = AsyncOutlit(KEY, base_url="https://eu.outlit.ai/")

    assert client.base_url == "https://eu.outlit.ai"


# The https rule


@pytest.mark.parametrize(
    "url",
    [
        "https://app.outlit.ai",
        "https://example.com:8443/prefix",
        "http://127.0.0.1:8080",
        "http://127.0.0.2",
        "http://localhost:9000",
        "http://[::1]:9000",
    ],
)
def test_https_or_loopback_http_is_accepted(url: str) -> None:
    """https anywhere, and plain http to a loopback host, are allowed."""
    assert AsyncOutlit(KEY, base_url=url).base_url == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "http://app.outlit.ai",
        "http://10.0.0.1:8080",
        "http://192.168.1.20",
        "http://[2001:db8::1]",
        "http://localhost.example.com",
    ],
)
def test_plain_http_to_another_host_is_refused(url: str) -> None:
    """The key is never sent over plain http off this machine: construction fails."""
    with pytest.raises(ConfigurationError, match="plain http") as caught:
        AsyncOutlit(KEY, base_url=url)

    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://app.outlit.ai",
        "app.outlit.ai",
        "https://",
        "https://user:pass@app.outlit.ai",
        "https://app.outlit.ai/?x=1",
    ],
)
def test_malformed_base_url_is_refused(url: str) -> None:
    """A base URL that is not a plain absolute http(s) URL is refused."""
    with pytest.raises(ConfigurationError, match="base_url"):
        AsyncOutlit(KEY, base_url=url)


async def test_with_options_applies_the_https_rule(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """A copy pointed at plain http off this machine is refused, and nothing is sent."""
    with pytest.raises(ConfigurationError, match="plain http"):
        client.with_options(base_url="http://example.com")

    assert fake.requests == []


# Other settings


@pytest.mark.parametrize("timeout", [0, -1.0, math.nan, math.inf, True, "5"])
def test_invalid_timeout_is_refused(timeout: Any) -> None:
    """timeout must be a positive, finite number of seconds."""
    with pytest.raises(ConfigurationError, match="timeout"):
        AsyncOutlit(KEY, timeout=timeout)


@pytest.mark.parametrize("max_retries", [-1, 1.5, True, "3", None])
def test_invalid_max_retries_is_refused(max_retries: Any) -> None:
    """max_retries must be a whole number of zero or more."""
    with pytest.raises(ConfigurationError, match="max_retries"):
        AsyncOutlit(KEY, max_retries=max_retries)


@pytest.mark.parametrize("max_concurrency", [0, -4, 2.5, True, "8", None])
def test_invalid_max_concurrency_is_refused(max_concurrency: Any) -> None:
    """max_concurrency must be an integer of at least one."""
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        AsyncOutlit(KEY, max_concurrency=max_concurrency)


@pytest.mark.parametrize("retry_delay", [-0.1, math.nan, "1"])
def test_invalid_retry_delay_is_refused(retry_delay: Any) -> None:
    """retry_delay must be a finite number of zero or more."""
    with pytest.raises(ConfigurationError, match="retry_delay"):
        AsyncOutlit(KEY, retry_delay=retry_delay)


def test_invalid_session_is_refused() -> None:
    """session must be an aiohttp.ClientSession."""
    with pytest.raises(ConfigurationError, match="session"):
        AsyncOutlit(KEY, session=object())  # type: ignore[arg-type]


def test_with_options_validates_its_settings() -> None:
    """A copy's settings are checked as the original's are."""
    client = AsyncOutlit(KEY)

    with pytest.raises(ConfigurationError, match="timeout"):
        client.with_options(timeout=-1)
    with pytest.raises(ConfigurationError, match="OUTLIT_API_KEY"):
        client.with_options(api_key="")


def test_settings_are_readable() -> None:
    """The client's settings read back as given."""
    client = AsyncOutlit(KEY, timeout=7.5, max_retries=0, max_concurrency=3)

    assert (client.timeout, client.max_retries, client.max_concurrency) == (7.5, 0, 3)


def test_repr_hides_the_key() -> None:
    """Neither repr nor str of the client shows the key."""
    client = AsyncOutlit("ok_very_secret_key")

    for text in (repr(client), str(client), repr(client.integrations)):
        assert "ok_very_secret_key" not in text
    assert "app.outlit.ai" in repr(client)


# What goes on the wire


async def test_user_agent_and_authorization_are_sent(
    header_server: HeaderServer,
) -> None:
    """Each request names the package and version, and carries the bearer key."""
    async with AsyncOutlit(KEY, base_url=header_server.url) as client:
        await client.integrations.list()

    (headers,) = header_server.headers
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["User-Agent"].startswith(f"outlit-async/{outlit_async.__version__} ")
    assert headers["Accept"] == "application/json"


async def test_wrong_key_is_an_authentication_error(fake: FakeOutlit) -> None:
    """A key the server does not know is answered 401, and the request logged so."""
    async with AsyncOutlit("ok_wrong", base_url=fake.url) as client:
        with pytest.raises(AuthenticationError):
            await client.integrations.list()

    assert not fake.requests[-1].authorized


# The pool: ownership, lifetime, sharing


async def test_callers_session_is_used_and_left_open(fake: FakeOutlit) -> None:
    """A session passed in carries the requests, and aclose() does not close it."""
    started: list[str] = []

    async def on_start(
        session: aiohttp.ClientSession,
        context: Any,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        started.append(params.url.path)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        client = AsyncOutlit(fake.api_key, base_url=fake.url, session=session)
        await client.integrations.list()
        await client.aclose()

        assert started == [LIST]
        assert not session.closed
        async with session.get(fake.url + LIST) as response:
            assert response.status == 401


async def test_callers_session_survives_the_context_manager(
    fake: FakeOutlit,
) -> None:
    """Leaving `async with` does not close a session the caller passed."""
    async with aiohttp.ClientSession() as session:
        async with AsyncOutlit(
            fake.api_key, base_url=fake.url, session=session
        ) as client:
            await client.integrations.list()

        assert not session.closed


async def test_context_manager_closes_its_own_pool(fake: FakeOutlit) -> None:
    """Leaving `async with` closes the client's own aiohttp session."""
    async with AsyncOutlit(fake.api_key, base_url=fake.url) as client:
        await client.integrations.list()
        session, _ = client._transport.pool.get()

    assert session.closed


async def test_aclose_closes_its_own_pool(fake: FakeOutlit) -> None:
    """aclose() closes the client's own session; a later request is a RuntimeError."""
    client = AsyncOutlit(fake.api_key, base_url=fake.url)
    await client.integrations.list()
    session, _ = client._transport.pool.get()

    await client.aclose()

    assert session.closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.integrations.list()
    assert len(fake.requests) == 1


async def test_aclose_before_any_request_is_harmless() -> None:
    """A client that never sent anything closes without error, twice."""
    client = AsyncOutlit(KEY)

    await client.aclose()
    await client.aclose()


async def test_with_options_shares_the_pool(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """A copy uses the same aiohttp session and the same concurrency limiter."""
    copy = client.with_options(timeout=1.0)
    await client.integrations.list()
    await copy.integrations.list()

    assert copy._transport.pool is client._transport.pool
    assert copy.max_concurrency == client.max_concurrency
    session, limiter = client._transport.pool.get()
    assert copy._transport.pool.get() == (session, limiter)


async def test_closing_a_copy_leaves_the_original_working(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """aclose() on a copy releases nothing: the original goes on sending."""
    copy = client.with_options(max_retries=0)
    await copy.integrations.list()
    session, _ = client._transport.pool.get()

    await copy.aclose()
    async with copy:
        pass

    assert not session.closed
    assert len(await client.integrations.list()) == 12
    assert len(await copy.integrations.list()) == 12


async def test_with_options_talks_as_another_organisation(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """A copy with another key acts for that organisation, not the original's."""
    fake.add_organization("ok_other")
    other = client.with_options(api_key="ok_other")

    await other.integrations.connect("stripe", config={"apiKey": "rk_test_1"})

    mine = await client.integrations.list(connected_only=True)
    theirs = await other.integrations.list(connected_only=True)
    assert mine == []
    assert [item.id for item in theirs] == ["stripe"]
    assert "ok_other" not in repr(other)


async def test_max_concurrency_caps_requests_in_flight(fake: FakeOutlit) -> None:
    """With max_concurrency=2 the server never has more than two requests at once."""
    slow = 0.05
    count = 8
    fake.faults.add(LIST, *[Fault.slow(slow) for _ in range(count)])

    client = AsyncOutlit(fake.api_key, base_url=fake.url, max_concurrency=2)
    async with client, anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(client.integrations.list)

    arrivals = sorted(r.at for r in fake.requests)
    assert len(arrivals) == count
    # Two slots: the third request can only arrive once one of the first two
    # has been answered, after its slow delay.
    gaps = [
        later - earlier for earlier, later in zip(arrivals, arrivals[2:], strict=False)
    ]
    assert min(gaps) >= slow * 0.9
    assert arrivals[1] - arrivals[0] < slow


# Event loops


def test_second_event_loop_is_a_clear_error() -> None:
    """A client used in one asyncio.run refuses, clearly, to work in a second."""
    client = AsyncOutlit(KEY, base_url="http://127.0.0.1:9")

    async def use() -> int:
        async with FakeOutlit(KEY) as fake:
            copy = client.with_options(base_url=fake.url)
            return len(await copy.integrations.list())

    async def use_again() -> None:
        await client.integrations.list()

    async def close() -> None:
        await client.aclose()

    try:
        assert asyncio.run(use()) == 12
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(use_again())
    finally:
        asyncio.run(close())


def test_client_made_outside_a_loop_works_inside_one() -> None:
    """Nothing is bound to a loop at construction: a client made outside works."""
    client = AsyncOutlit(KEY, base_url="http://127.0.0.1:9")

    async def use() -> int:
        async with (
            FakeOutlit(KEY) as fake,
            client.with_options(base_url=fake.url) as copy,
        ):
            items = await copy.integrations.list()
        await client.aclose()
        return len(items)

    assert asyncio.run(use()) == 12


def test_closed_client_in_a_new_loop_is_a_clear_error() -> None:
    """A client closed at the end of one asyncio.run says so in the next."""
    client = AsyncOutlit(KEY, base_url="http://127.0.0.1:9")

    async def use() -> None:
        async with FakeOutlit(KEY) as fake, client:
            await client.with_options(base_url=fake.url).integrations.list()

    asyncio.run(use())
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(use())
