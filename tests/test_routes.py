from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import pytest

from outlit_async import (
    AsyncOutlit,
    BadRequestError,
    BrowserSession,
    Capability,
    ConnectionState,
    ConnectionStatus,
    CredentialField,
    DirectConnection,
    DisconnectResult,
    Integration,
    IntegrationStatus,
    ModelSync,
    NotConnectedError,
    Provider,
    SetupStepResult,
    SyncState,
    SyncStatus,
)
from outlit_async.testing import FakeOutlit

pytestmark = pytest.mark.anyio

LIST = "/api/integrations"
CAPABILITIES = "/api/integrations/capabilities"
SETUP_STEP = "/api/integrations/setup-step"
CONNECT = "/api/integrations/connect"
CONNECTION_STATUS = "/api/integrations/connect/status"
DISCONNECT = "/api/integrations/disconnect"
SYNC_STATUS = "/api/integrations/sync-status"

ALL_IDS = {
    "hubspot",
    "attio",
    "slack",
    "fireflies",
    "granola",
    "google-calendar",
    "google-mail",
    "posthog",
    "stripe",
    "supabase",
    "clerk",
    "pylon",
}
BROWSER_IDS = {"hubspot", "attio", "slack", "google-calendar", "google-mail"}


# Provider


def test_provider_lists_the_twelve_ids() -> None:
    """Provider has one member per documented provider id."""
    assert {member.value for member in Provider} == ALL_IDS
    assert len(Provider) == 12


def test_provider_gmail_is_an_alias_of_google_mail() -> None:
    """gmail names the same member as google-mail, by attribute and by value."""
    assert Provider["GMAIL"] is Provider.GOOGLE_MAIL
    assert Provider("gmail") is Provider.GOOGLE_MAIL
    assert Provider("google-mail") is Provider.GOOGLE_MAIL


def test_provider_is_a_string() -> None:
    """A member is its id as a string, and lookup ignores case."""
    assert Provider("stripe") == "stripe"
    assert str(Provider.GOOGLE_CALENDAR) == "google-calendar"
    assert f"{Provider.PYLON}" == "pylon"
    assert Provider("STRIPE") is Provider.STRIPE


def test_provider_knows_its_setup_mode() -> None:
    """connects_in_browser is true exactly for the five browser providers."""
    browser = {member.value for member in Provider if member.connects_in_browser}
    assert browser == BROWSER_IDS


def test_unknown_provider_value_is_not_a_member() -> None:
    """Provider() refuses an id it does not know; the routes take it as a string."""
    with pytest.raises(ValueError):
        Provider("notion")


# list


async def test_list_answers_every_provider(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """list() answers one Integration per provider, with no connectedOnly sent."""
    items = await client.integrations.list()

    assert {item.id for item in items} == ALL_IDS
    assert all(isinstance(item, Integration) for item in items)
    assert all(item.status is IntegrationStatus.NOT_CONNECTED for item in items)
    assert all(not item.connected and item.connection_id is None for item in items)
    (request,) = fake.requests
    assert (request.method, request.path, request.query) == ("GET", LIST, {})


async def test_list_connected_only(fake: FakeOutlit, client: AsyncOutlit) -> None:
    """list(connected_only=True) sends connectedOnly=true and answers those only."""
    connection_id = fake.connect_provider("stripe")
    synced = datetime(2025, 3, 4, 5, 6, 7, 123000, tzinfo=timezone.utc)
    fake.set_sync("stripe", "StripeCustomer", "SUCCESS", last_synced_at=synced)

    (item,) = await client.integrations.list(connected_only=True)

    assert item.id is Provider.STRIPE
    assert item.connected
    assert item.status is IntegrationStatus.CONNECTED
    assert item.connection_id == connection_id
    assert item.last_data_received_at == synced
    assert item.name == "Stripe"
    assert item.category == "billing"
    assert fake.requests[-1].query == {"connectedOnly": "true"}


async def test_list_connected_only_false_sends_nothing(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """list(connected_only=False) sends no query and answers every provider."""
    fake.connect_provider("pylon")

    items = await client.integrations.list(connected_only=False)

    assert len(items) == 12
    assert [item.id for item in items if item.connected] == [Provider.PYLON]
    assert fake.requests[-1].query == {}


# capabilities


async def test_capabilities_of_all_providers(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """capabilities() answers a mapping of all twelve provider ids to Capability."""
    capabilities = await client.integrations.capabilities()

    assert set(capabilities) == ALL_IDS
    assert all(isinstance(c, Capability) for c in capabilities.values())
    for provider_id, capability in capabilities.items():
        assert capability.provider_id == provider_id
        assert capability.connects_in_browser is (provider_id in BROWSER_IDS)
    assert fake.requests[-1].query == {}


async def test_capabilities_of_one_provider(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """capabilities("pylon") answers that provider's Capability, fields and steps."""
    capability = await client.integrations.capabilities("pylon")

    assert isinstance(capability, Capability)
    assert capability.provider_id is Provider.PYLON
    assert capability.cli_name == "pylon"
    assert capability.setup_mode == "direct_api_key"
    assert capability.credential_type == "api_token"
    assert not capability.connects_in_browser
    assert capability.required_fields == (
        CredentialField(key="apiToken", label="API Token", secret=True),
    )
    assert [step.id for step in capability.post_connect_steps] == ["webhooks"]
    assert capability.post_connect_steps[0].required
    assert fake.requests[-1].query == {"provider": "pylon"}


@pytest.mark.parametrize("name", ["gmail", Provider.GMAIL, "google-mail"])
async def test_capabilities_accepts_the_gmail_alias(
    fake: FakeOutlit, client: AsyncOutlit, name: str
) -> None:
    """The gmail alias asks for google-mail, and answers its browser capability."""
    capability = await client.integrations.capabilities(name)

    assert capability.provider_id is Provider.GOOGLE_MAIL
    assert capability.cli_name == "gmail"
    assert capability.connects_in_browser
    assert fake.requests[-1].query == {"provider": "google-mail"}


# connect


async def test_connect_direct(fake: FakeOutlit, client: AsyncOutlit) -> None:
    """A direct provider with config answers a DirectConnection; the body is exact."""
    config = {"apiKey": "phx_1", "region": "eu", "projectId": "12345"}

    result = await client.integrations.connect(Provider.POSTHOG, config=config)

    assert isinstance(result, DirectConnection)
    assert result.connected
    assert not result.already_connected
    assert (
        result.connection_id == fake.organization().connections["posthog"].connection_id
    )
    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", CONNECT)
    assert request.body == {"provider": "posthog", "config": config}


async def test_connect_direct_twice_is_already_connected(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """Connecting a connected provider answers already_connected and the same id."""
    first = await client.integrations.connect("stripe", {"apiKey": "rk_1"})
    second = await client.integrations.connect("stripe", {"apiKey": "rk_1"})

    assert isinstance(first, DirectConnection)
    assert isinstance(second, DirectConnection)
    assert second.already_connected
    assert second.connection_id == first.connection_id


async def test_connect_browser(fake: FakeOutlit, client: AsyncOutlit) -> None:
    """A browser provider answers a BrowserSession with a link on the API's host."""
    session = await client.integrations.connect("hubspot")

    assert isinstance(session, BrowserSession)
    assert not session.already_connected
    assert session.session_id in session.connect_url
    link, base = urlsplit(session.connect_url), urlsplit(fake.url)
    assert (link.scheme, link.netloc) == (base.scheme, base.netloc)
    assert fake.session(session.session_id).provider == "hubspot"
    assert fake.requests[-1].body == {"provider": "hubspot"}


async def test_connect_sends_config_only_when_given(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """The body has config only when it is given, as the schema says."""
    await client.integrations.connect("slack")
    await client.integrations.connect("granola", config={"apiKey": "grn_1"})

    bodies = [r.body for r in fake.requests_to(CONNECT)]
    assert bodies == [
        {"provider": "slack"},
        {"provider": "granola", "config": {"apiKey": "grn_1"}},
    ]


async def test_connect_gmail_alias_sends_google_mail(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """connect("gmail") sends the canonical id google-mail."""
    session = await client.integrations.connect("gmail")

    assert isinstance(session, BrowserSession)
    assert fake.requests[-1].body == {"provider": "google-mail"}


# connection_status


@pytest.mark.parametrize(
    ("settle", "state", "terminal"),
    [
        (None, ConnectionState.PENDING, False),
        ("complete", ConnectionState.CONNECTED, True),
        ("fail", ConnectionState.FAILED, True),
        ("expire", ConnectionState.EXPIRED, True),
    ],
)
async def test_connection_status(
    fake: FakeOutlit,
    client: AsyncOutlit,
    settle: str | None,
    state: ConnectionState,
    terminal: bool,
) -> None:
    """connection_status answers the session's state, provider and error."""
    session_id = fake.create_session("attio")
    if settle is not None:
        getattr(fake, f"{settle}_session")(session_id)

    status = await client.integrations.connection_status(session_id)

    assert isinstance(status, ConnectionStatus)
    assert status.status is state
    assert status.provider is Provider.ATTIO
    assert status.terminal is terminal
    assert status.connected is (state is ConnectionState.CONNECTED)
    expected_error = "User denied access" if settle == "fail" else None
    assert status.error == expected_error
    assert fake.requests[-1].query == {"sessionId": session_id}


async def test_connection_status_of_an_unknown_session(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """A session id the server does not know is a BadRequestError."""
    with pytest.raises(BadRequestError) as caught:
        await client.integrations.connection_status("sess_missing")

    assert caught.value.details[0].path == ("sessionId",)


# disconnect


async def test_disconnect(fake: FakeOutlit, client: AsyncOutlit) -> None:
    """disconnect answers success and the provider is no longer connected."""
    fake.connect_provider("clerk")

    result = await client.integrations.disconnect(Provider.CLERK)

    assert result == DisconnectResult(success=True)
    assert "clerk" not in fake.organization().connections
    assert fake.requests[-1].body == {"provider": "clerk"}


async def test_disconnect_when_not_connected(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """Disconnecting a provider that is not connected is a NotConnectedError (404)."""
    with pytest.raises(NotConnectedError) as caught:
        await client.integrations.disconnect("stripe")

    assert caught.value.status == 404
    assert caught.value.message == "Integration is not connected"
    assert len(fake.requests) == 1


# sync_status


async def test_sync_status(fake: FakeOutlit, client: AsyncOutlit) -> None:
    """sync_status answers each model, with last_synced_at as an aware UTC time."""
    synced = datetime(
        2025, 6, 1, 14, 30, 0, 250000, tzinfo=timezone(timedelta(hours=2))
    )
    fake.set_sync("stripe", "StripeCustomer", "SUCCESS", last_synced_at=synced)
    fake.set_sync("stripe", "StripeInvoice", "FAILED", error_message="401 from Stripe")

    status = await client.integrations.sync_status("stripe")

    assert isinstance(status, SyncStatus)
    assert status.provider is Provider.STRIPE
    assert (status.name, status.category) == ("Stripe", "billing")
    assert status.status is IntegrationStatus.CONNECTED and status.connected
    customer = status.model("StripeCustomer")
    assert customer == ModelSync(
        "StripeCustomer", SyncState.SUCCESS, synced, error_message=None
    )
    assert customer.last_synced_at is not None
    assert customer.last_synced_at.tzinfo is timezone.utc
    assert customer.last_synced_at.hour == 12
    invoice = status.model("StripeInvoice")
    assert invoice is not None and invoice.failed
    assert invoice.error_message == "401 from Stripe"
    subscription = status.model("StripeSubscription")
    assert subscription is not None and subscription.status is SyncState.PENDING
    assert subscription.last_synced_at is None
    assert status.any_failed and not status.all_synced and not status.settled
    assert fake.requests[-1].query == {"provider": "stripe"}


async def test_sync_status_keeps_an_unknown_model_status(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """A model status the SDK does not know is kept as its string."""
    fake.set_sync("granola", "GranolaNote", "PAUSED")

    status = await client.integrations.sync_status("granola")

    (sync,) = status.syncs
    assert sync.status == "PAUSED"
    assert not isinstance(sync.status, SyncState)
    assert not sync.succeeded and not sync.failed


async def test_sync_status_of_a_provider_not_connected(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """A provider that is not connected answers not_connected and no models."""
    status = await client.integrations.sync_status("slack")

    assert status.status is IntegrationStatus.NOT_CONNECTED
    assert status.syncs == ()
    assert not status.connected and not status.all_synced


# setup_step


async def test_setup_step_config_required(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """A step that needs config says so, and the whole answer is kept as a mapping."""
    connection_id = fake.connect_provider("hubspot")

    result = await client.integrations.setup_step("hubspot", "mappings")

    assert isinstance(result, SetupStepResult)
    assert result.config_required
    assert result.status == "config_required"
    assert result.step == "mappings"
    assert result["connectionId"] == connection_id
    assert result["fields"][0]["key"] == "mappings"
    assert set(result) >= {"status", "provider", "step", "connectionId", "fields"}
    assert dict(result)["provider"] == "hubspot"
    assert fake.requests[-1].body == {"provider": "hubspot", "step": "mappings"}
    # A mapping, and like one it cannot be hashed.
    with pytest.raises(TypeError, match="unhashable type: 'SetupStepResult'"):
        hash(result)


async def test_setup_step_with_config(fake: FakeOutlit, client: AsyncOutlit) -> None:
    """A step given config sends it and answers configured."""
    fake.connect_provider("attio")
    config = {"mappings": [{"source": "qualified", "target": "trial"}]}

    result = await client.integrations.setup_step("attio", "mappings", config)

    assert not result.config_required
    assert result.status == "configured"
    assert result["mappings"] == config["mappings"]
    assert fake.requests[-1].body == {
        "provider": "attio",
        "step": "mappings",
        "config": config,
    }


async def test_setup_step_webhooks(fake: FakeOutlit, client: AsyncOutlit) -> None:
    """A webhook step answers its URL; the repr names keys but not the secret."""
    fake.connect_provider("stripe")

    result = await client.integrations.setup_step(Provider.STRIPE, "webhooks")

    assert result.webhook_url is not None
    assert result.webhook_url.startswith(fake.url + "/api/webhooks/stripe/")
    secret = result["webhookSecret"]
    assert secret.startswith("whsec_")
    assert secret not in repr(result)
    assert "webhookSecret" in repr(result)


# Providers the SDK does not know


async def test_new_provider_id_is_sent_as_is() -> None:
    """An id Outlit added after this release works through every route."""
    async with (
        FakeOutlit(extra_providers={"notion": "direct", "zoom": "browser"}) as fake,
        AsyncOutlit(fake.api_key, base_url=fake.url) as client,
    ):
        capability = await client.integrations.capabilities("notion")
        direct = await client.integrations.connect("notion", {"apiKey": "ntn_1"})
        session = await client.integrations.connect("zoom")
        status = await client.integrations.sync_status("notion")
        items = await client.integrations.list(connected_only=True)
        result = await client.integrations.disconnect("notion")

    assert capability.provider_id == "notion"
    assert isinstance(direct, DirectConnection) and direct.connected
    assert isinstance(session, BrowserSession)
    assert status.provider == "notion" and status.connected
    assert [item.id for item in items] == ["notion"]
    assert result.success
    sent = [r.body or r.query for r in fake.requests]
    assert sent == [
        {"provider": "notion"},
        {"provider": "notion", "config": {"apiKey": "ntn_1"}},
        {"provider": "zoom"},
        {"provider": "notion"},
        {"connectedOnly": "true"},
        {"provider": "notion"},
    ]


async def test_unknown_provider_id_reaches_the_server(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """An id nobody knows is sent unchanged; the server's 400 is a BadRequestError."""
    with pytest.raises(BadRequestError) as caught:
        await client.integrations.sync_status("Zendesk")

    assert fake.requests[-1].query == {"provider": "Zendesk"}
    assert caught.value.details[0].path == ("provider",)
    assert "Zendesk" in caught.value.details[0].message


# Bad local input: refused before anything is sent


Call = Callable[[AsyncOutlit], Awaitable[Any]]

BAD_CALLS: list[tuple[str, Call, type[Exception], str]] = [
    (
        "empty session id",
        lambda c: c.integrations.connection_status(""),
        ValueError,
        "session_id",
    ),
    (
        "non-string session id",
        lambda c: c.integrations.connection_status(None),  # type: ignore[arg-type]
        ValueError,
        "session_id",
    ),
    (
        "config a list",
        lambda c: c.integrations.connect("stripe", ["rk_1"]),  # type: ignore[call-overload]
        TypeError,
        "config",
    ),
    (
        "config a string",
        lambda c: c.integrations.connect("stripe", "rk_1"),  # type: ignore[call-overload]
        TypeError,
        "config",
    ),
    (
        "setup config a list",
        lambda c: c.integrations.setup_step("hubspot", "mappings", []),  # type: ignore[arg-type]
        TypeError,
        "config",
    ),
    (
        "empty step",
        lambda c: c.integrations.setup_step("hubspot", ""),
        ValueError,
        "step",
    ),
    (
        "empty provider",
        lambda c: c.integrations.sync_status(""),
        ValueError,
        "provider",
    ),
    (
        "non-string provider",
        lambda c: c.integrations.disconnect(7),  # type: ignore[arg-type]
        ValueError,
        "provider",
    ),
    (
        "empty provider in capabilities",
        lambda c: c.integrations.capabilities(""),
        ValueError,
        "provider",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "argument"),
    [case[1:] for case in BAD_CALLS],
    ids=[case[0] for case in BAD_CALLS],
)
async def test_bad_local_input_sends_nothing(
    fake: FakeOutlit,
    client: AsyncOutlit,
    call: Call,
    error: type[Exception],
    argument: str,
) -> None:
    """Bad arguments raise a clear error naming the argument; no request is sent."""
    with pytest.raises(error, match=argument):
        await call(client)

    assert fake.requests == []


async def test_empty_config_is_not_refused_locally(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """An empty mapping is a valid config: it is sent, and the server judges it."""
    with pytest.raises(BadRequestError) as caught:
        await client.integrations.connect("clerk", {})

    assert [issue.path for issue in caught.value.details] == [("config", "secretKey")]
    assert len(fake.requests) == 1
