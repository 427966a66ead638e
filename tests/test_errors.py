from __future__ import annotations

import socket
import traceback
from collections.abc import AsyncIterator

import pytest

from outlit_async import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AsyncOutlit,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectionExpiredError,
    ConnectionFailedError,
    ConnectionLimitError,
    NotConnectedError,
    OutlitError,
    PollError,
    PollTimeoutError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    ValidationIssue,
)
from outlit_async.testing import FakeOutlit, Fault

pytestmark = pytest.mark.anyio

LIST = "/api/integrations"
CONNECT = "/api/integrations/connect"
CONNECTION_STATUS = "/api/integrations/connect/status"
SYNC_STATUS = "/api/integrations/sync-status"
CAPABILITIES = "/api/integrations/capabilities"

CANARY = "rk_live_CANARY_7f3a9c"


@pytest.fixture
async def once(fake: FakeOutlit) -> AsyncIterator[AsyncOutlit]:
    """A client on the fake that makes each request once: no retries."""
    async with AsyncOutlit(
        fake.api_key, base_url=fake.url, timeout=2.0, max_retries=0
    ) as outlit:
        yield outlit


def _text_of(error: BaseException) -> str:
    return "".join(
        [
            str(error),
            repr(error),
            repr(error.args),
            repr(getattr(error, "body", None)),
            *traceback.format_exception(type(error), error, error.__traceback__),
        ]
    )


# The hierarchy


@pytest.mark.parametrize(
    ("child", "parents"),
    [
        (ConfigurationError, (OutlitError, ValueError)),
        (APIError, (OutlitError,)),
        (APIStatusError, (APIError,)),
        (BadRequestError, (APIStatusError,)),
        (AuthenticationError, (APIStatusError,)),
        (ConnectionLimitError, (APIStatusError,)),
        (NotConnectedError, (APIStatusError,)),
        (RateLimitError, (APIStatusError,)),
        (ServerError, (APIStatusError,)),
        (APIConnectionError, (APIError, ConnectionError)),
        (APITimeoutError, (APIConnectionError, TimeoutError)),
        (ResponseValidationError, (APIError,)),
        (PollError, (OutlitError,)),
        (ConnectionFailedError, (PollError,)),
        (ConnectionExpiredError, (PollError,)),
        (PollTimeoutError, (PollError, TimeoutError)),
    ],
)
def test_hierarchy(
    child: type[Exception], parents: tuple[type[Exception], ...]
) -> None:
    """Every error hangs under OutlitError, with the parents the tree documents."""
    assert issubclass(child, OutlitError)
    for parent in parents:
        assert issubclass(child, parent)


def test_response_validation_is_not_a_status_or_connection_error() -> None:
    """A malformed answer is neither a status error nor a connection error."""
    assert not issubclass(ResponseValidationError, APIStatusError)
    assert not issubclass(ResponseValidationError, APIConnectionError)


# One exception per status


async def test_400_is_bad_request_with_details(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """
    400 is BadRequestError; details are ValidationIssue(path, message), in
    order, with the config value the server repeated redacted.
    """
    config = {"apiKey": "phx_1", "region": "mars"}

    with pytest.raises(BadRequestError) as caught:
        await once.integrations.connect("posthog", config)

    error = caught.value
    assert error.status == 400
    assert error.route == f"POST {CONNECT}"
    assert error.message == "Invalid request"
    assert error.details == (
        ValidationIssue(
            ("config", "region"),
            "Invalid enum value. Expected 'us' | 'eu', received '[redacted]'",
        ),
        ValidationIssue(("config", "projectId"), "Required"),
    )
    assert isinstance(error.body, dict) and error.body["error"] == "Invalid request"


async def test_400_with_array_index_in_path(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """A detail path keeps its integer indexes as integers."""
    fake.connect_provider("hubspot")
    config = {"mappings": [{"source": "lead", "target": "lead"}, {"source": "x"}]}

    with pytest.raises(BadRequestError) as caught:
        await once.integrations.setup_step("hubspot", "mappings", config)

    paths = [issue.path for issue in caught.value.details]
    assert paths == [
        ("config", "mappings", 1, "source"),
        ("config", "mappings", 1, "target"),
    ]


async def test_400_detail_paths_keep_every_step(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """A path step of any JSON number is kept: whole numbers as int indexes."""
    body = {
        "error": "Invalid request",
        "details": [{"path": ["config", 2.0, 1.5, True, "x"], "message": "Bad"}],
    }
    fake.faults.add(LIST, Fault.status(400, body=body))

    with pytest.raises(BadRequestError) as caught:
        await once.integrations.list()

    assert caught.value.details == (
        ValidationIssue(("config", 2, "1.5", "True", "x"), "Bad"),
    )


async def test_400_without_details(fake: FakeOutlit, once: AsyncOutlit) -> None:
    """A 400 with no details has an empty details tuple."""
    fake.faults.add(LIST, Fault.status(400, body={"error": "Nope"}))

    with pytest.raises(BadRequestError) as caught:
        await once.integrations.list()

    assert caught.value.details == ()
    assert caught.value.message == "Nope"
    assert "Nope" in str(caught.value)


async def test_401_is_authentication_error(fake: FakeOutlit) -> None:
    """A wrong key is AuthenticationError with the server's message."""
    async with AsyncOutlit("ok_wrong_key", base_url=fake.url) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.integrations.list()

    error = caught.value
    assert (error.status, error.route) == (401, f"GET {LIST}")
    assert error.body == {"error": "Invalid credentials"}
    assert "ok_wrong_key" not in _text_of(error)
    assert len(fake.requests) == 1


async def test_403_is_connection_limit_error() -> None:
    """The plan's limit is ConnectionLimitError with plan, limit and current count."""
    async with (
        FakeOutlit(connection_limit=2, plan="starter") as fake,
        AsyncOutlit(fake.api_key, base_url=fake.url) as client,
    ):
        await client.integrations.connect("stripe", {"apiKey": "rk_1"})
        await client.integrations.connect("clerk", {"secretKey": "sk_1"})
        with pytest.raises(ConnectionLimitError) as caught:
            await client.integrations.connect("pylon", {"apiToken": "pt_1"})

    error = caught.value
    assert error.status == 403
    assert error.route == f"POST {CONNECT}"
    assert (error.plan, error.limit, error.current_connections) == ("starter", 2, 2)
    assert error.code == "plan_connection_limit_exceeded"
    assert error.feature == "integration_connections"
    assert len(fake.requests) == 3


async def test_403_or_404_off_their_documented_route_is_a_plain_status_error(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """Only connect's 403 is the plan limit; only disconnect's 404 'not connected'."""
    fake.faults.add(LIST, Fault.status(403, body={"error": "Forbidden"}))
    fake.faults.add(LIST, Fault.status(404, body={"error": "Not found"}))

    with pytest.raises(APIStatusError) as forbidden:
        await once.integrations.list()
    with pytest.raises(APIStatusError) as missing:
        await once.integrations.list()

    assert type(forbidden.value) is APIStatusError
    assert type(missing.value) is APIStatusError
    assert (forbidden.value.status, forbidden.value.message) == (403, "Forbidden")
    assert (missing.value.status, missing.value.message) == (404, "Not found")


async def test_404_from_disconnect_is_not_connected(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """404 from disconnect is NotConnectedError, with the body kept."""
    with pytest.raises(NotConnectedError) as caught:
        await once.integrations.disconnect("granola")

    error = caught.value
    assert (error.status, error.route) == (404, "POST /api/integrations/disconnect")
    assert error.body == {"success": False, "message": "Integration is not connected"}
    assert error.message == "Integration is not connected"


async def test_404_elsewhere_is_a_plain_status_error(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """404 from any other route is an APIStatusError, not NotConnectedError."""
    fake.faults.add(SYNC_STATUS, Fault.status(404))

    with pytest.raises(APIStatusError) as caught:
        await once.integrations.sync_status("stripe")

    assert type(caught.value) is APIStatusError
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("header", "seconds"), [("7", 7.0), ("0.5", 0.5), (None, None), ("soon", None)]
)
async def test_429_is_rate_limit_error_with_retry_after(
    fake: FakeOutlit, once: AsyncOutlit, header: str | None, seconds: float | None
) -> None:
    """429 is RateLimitError; retry_after is the Retry-After seconds, or None."""
    fake.faults.add(LIST, Fault.status(429, retry_after=header))

    with pytest.raises(RateLimitError) as caught:
        await once.integrations.list()

    assert caught.value.status == 429
    assert caught.value.retry_after == seconds
    assert caught.value.message == "Too many requests"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_server_error(
    fake: FakeOutlit, once: AsyncOutlit, status: int
) -> None:
    """Every 5xx is a ServerError with its status and body."""
    fake.faults.add(CAPABILITIES, Fault.status(status, retry_after="3"))

    with pytest.raises(ServerError) as caught:
        await once.integrations.capabilities()

    error = caught.value
    assert error.status == status
    assert error.route == f"GET {CAPABILITIES}"
    assert isinstance(error.body, dict) and "error" in error.body
    assert error.retry_after == 3.0


async def test_html_error_page_is_kept_as_text(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """A proxy's HTML 502 is a ServerError whose body is the page's text."""
    fake.faults.add(LIST, Fault.html(502))

    with pytest.raises(ServerError) as caught:
        await once.integrations.list()

    assert caught.value.status == 502
    assert isinstance(caught.value.body, str)
    assert "502 Bad Gateway" in caught.value.body
    assert caught.value.message is None


@pytest.mark.parametrize("status", [402, 409, 418, 422])
async def test_unknown_4xx_is_api_status_error(
    fake: FakeOutlit, once: AsyncOutlit, status: int
) -> None:
    """A 4xx with no class of its own is an APIStatusError with its status."""
    fake.faults.add(CONNECT, Fault.status(status, body={"error": "odd"}))

    with pytest.raises(APIStatusError) as caught:
        await once.integrations.connect("slack")

    assert type(caught.value) is APIStatusError
    assert (caught.value.status, caught.value.body) == (status, {"error": "odd"})
    assert caught.value.route == f"POST {CONNECT}"


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(400),
        Fault.status(403),
        Fault.status(409),
        Fault.status(429),
        Fault.status(500),
        Fault.html(502),
        Fault.drop(),
    ],
    ids=repr,
)
async def test_errors_never_carry_the_request_body(
    fake: FakeOutlit, once: AsyncOutlit, fault: Fault
) -> None:
    """No error's str, repr, args, body or traceback shows a config value."""
    fake.faults.add(CONNECT, fault)

    with pytest.raises(APIError) as caught:
        await once.integrations.connect("stripe", {"apiKey": CANARY})

    assert fake.requests[-1].body == {
        "provider": "stripe",
        "config": {"apiKey": CANARY},
    }
    assert CANARY not in _text_of(caught.value)
    assert caught.value.route == f"POST {CONNECT}"


async def test_server_echo_of_a_secret_does_not_come_from_the_request(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """The error's body is the server's answer, not what was sent."""
    fake.faults.add(CONNECT, Fault.status(400, body={"error": "bad key"}))

    with pytest.raises(BadRequestError) as caught:
        await once.integrations.connect("stripe", {"apiKey": CANARY})

    assert caught.value.body == {"error": "bad key"}


# No answer


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connection_refused_is_api_connection_error() -> None:
    """A closed port is an APIConnectionError naming the route, not a timeout."""
    url = f"http://127.0.0.1:{_closed_port()}"
    async with AsyncOutlit("ok_key", base_url=url, max_retries=0) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.integrations.list()

    assert not isinstance(caught.value, APITimeoutError)
    assert isinstance(caught.value, ConnectionError)
    assert caught.value.route == f"GET {LIST}"
    assert "ok_key" not in _text_of(caught.value)


async def test_dropped_connection_is_api_connection_error(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """A connection closed without an answer is an APIConnectionError."""
    fake.faults.add(CONNECT, Fault.drop())

    with pytest.raises(APIConnectionError) as caught:
        await once.integrations.connect("slack")

    assert not isinstance(caught.value, APITimeoutError)
    assert caught.value.route == f"POST {CONNECT}"
    assert [r.status for r in fake.requests] == [None]


async def test_dropped_get_is_resent_once_by_aiohttp(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """aiohttp resends an idempotent request once when the connection drops."""
    fake.faults.add(SYNC_STATUS, Fault.drop(), Fault.drop())

    with pytest.raises(APIConnectionError) as caught:
        await once.integrations.sync_status("stripe")

    assert caught.value.route == f"GET {SYNC_STATUS}"
    assert [r.status for r in fake.requests] == [None, None]


async def test_slow_answer_is_api_timeout_error(fake: FakeOutlit) -> None:
    """An answer later than timeout is APITimeoutError, also a TimeoutError."""
    fake.faults.add(LIST, Fault.slow(0.3))

    async with AsyncOutlit(
        fake.api_key, base_url=fake.url, timeout=0.05, max_retries=0
    ) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.integrations.list()

    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, APIConnectionError)
    assert caught.value.route == f"GET {LIST}"
    assert "0.05 s" in str(caught.value)


# Answers that do not fit


async def test_missing_field_names_route_and_path(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """A required field missing is ResponseValidationError naming route and field."""
    session_id = fake.create_session("slack")
    fake.faults.add(CONNECTION_STATUS, Fault.missing_field("status"))

    with pytest.raises(ResponseValidationError) as caught:
        await once.integrations.connection_status(session_id)

    error = caught.value
    assert error.route == f"GET {CONNECTION_STATUS}"
    assert error.status == 200
    assert error.errors == ("$.status: required field missing",)
    assert "$.status" in str(error) and CONNECTION_STATUS in str(error)


async def test_nested_missing_field_names_its_path(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """A field missing in an array item names the item's index, in camelCase."""
    fake.connect_provider("stripe")
    fake.faults.add(SYNC_STATUS, Fault.missing_field("model"))

    with pytest.raises(ResponseValidationError) as caught:
        await once.integrations.sync_status("stripe")

    assert caught.value.errors == tuple(
        f"$.syncs[{index}].model: required field missing" for index in range(3)
    )


async def test_list_item_missing_field_names_its_path(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """A list item without a name points at $.items[0].name."""
    fake.faults.add(LIST, Fault.missing_field("name"))

    with pytest.raises(ResponseValidationError) as caught:
        await once.integrations.list()

    assert caught.value.errors[0] == "$.items[0].name: required field missing"
    assert caught.value.route == f"GET {LIST}"


async def test_wrong_type_names_the_camel_case_field(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """A value of the wrong JSON type is refused with its camelCase path."""
    body = {"connected": True, "connectionId": 42, "alreadyConnected": False}
    fake.faults.add(CONNECT, Fault.status(200, body=body))

    with pytest.raises(ResponseValidationError) as caught:
        await once.integrations.connect("stripe", {"apiKey": CANARY})

    assert caught.value.errors == ("$.connectionId: expected a string, got a number",)
    assert CANARY not in _text_of(caught.value)


async def test_truncated_body_is_response_validation_error(
    fake: FakeOutlit, once: AsyncOutlit
) -> None:
    """A body cut short is ResponseValidationError: the body is not valid JSON."""
    fake.faults.add(CAPABILITIES, Fault.truncated())

    with pytest.raises(ResponseValidationError) as caught:
        await once.integrations.capabilities("stripe")

    assert caught.value.errors == ("$: the body is not valid JSON",)


async def test_unknown_fields_are_ignored(fake: FakeOutlit, once: AsyncOutlit) -> None:
    """Fields the SDK does not know, at any level, do not break decoding."""
    fake.connect_provider("stripe")
    fake.faults.add(SYNC_STATUS, Fault.extra_fields())

    status = await once.integrations.sync_status("stripe")

    assert len(status.syncs) == 3
