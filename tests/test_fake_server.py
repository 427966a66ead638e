"""
FakeOutlit, exercised over HTTP with a plain aiohttp client.

Every answer is checked against the OpenAPI document in ``tests/data`` with the
small validator below, which covers the part of JSON Schema the document uses.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import aiohttp
import anyio
import attrs
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

import outlit_async.testing
from outlit_async.testing import (
    TRANSIENT_FAULTS,
    FakeOutlit,
    Fault,
    RecordedRequest,
    SessionScript,
    SyncScript,
)

pytestmark = pytest.mark.anyio

KEY = "ok_test_fake_key"
OTHER_KEY = "ok_test_other_key"
ROOT = Path(__file__).resolve().parents[1]
SPEC = json.loads(
    (Path(__file__).parent / "data/outlit-integrations-openapi.json").read_text()
)
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]

LIST = "/api/integrations"
CAPABILITIES = "/api/integrations/capabilities"
SETUP_STEP = "/api/integrations/setup-step"
CONNECT = "/api/integrations/connect"
STATUS = "/api/integrations/connect/status"
DISCONNECT = "/api/integrations/disconnect"
SYNC_STATUS = "/api/integrations/sync-status"

PUBLIC_IDS = SCHEMAS["ProviderId"]["enum"]
BROWSER = ["hubspot", "attio", "slack", "google-calendar", "google-mail"]
DIRECT = {
    "fireflies": {"apiKey": "ff_secret"},
    "granola": {"apiKey": "gr_secret"},
    "posthog": {"apiKey": "phx_secret", "region": "us", "projectId": "12345"},
    "stripe": {"apiKey": "rk_test_secret"},
    "supabase": {"projectUrl": "https://abc.supabase.co", "serviceRoleKey": "srk"},
    "clerk": {"secretKey": "sk_test_secret"},
    "pylon": {"apiToken": "pylon_secret"},
}


# A validator for the subset of JSON Schema the OpenAPI document uses.


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        *_, kind, name = schema["$ref"].split("/")
        schema = SPEC["components"][kind][name]
        if "content" in schema:
            schema = schema["content"]["application/json"]["schema"]
    return schema


def _is_type(value: Any, kind: str) -> bool:
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "null": lambda v: v is None,
    }
    return bool(checks[kind](value))


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    schema = _resolve(schema)
    if "oneOf" in schema:
        matched = [s for s in schema["oneOf"] if not schema_errors(value, s, path)]
        return [] if len(matched) == 1 else [f"{path}: {len(matched)} oneOf matched"]

    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is_type(value, kind) for kind in kinds):
            return [f"{path}: {value!r} is not {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not in {schema['enum']}"]
    if "const" in schema and value != schema["const"]:
        return [f"{path}: {value!r} is not {schema['const']!r}"]

    errors: list[str] = []
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than minLength")
        if schema.get("format") == "date-time":
            datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{path}: more than maxItems")
        for index, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), f"{path}[{index}]")
    if isinstance(value, dict):
        errors += _object_errors(value, schema, path)
    return errors


def _object_errors(
    value: dict[str, Any], schema: dict[str, Any], path: str
) -> list[str]:
    errors = [
        f"{path}: missing {key}"
        for key in schema.get("required", ())
        if key not in value
    ]
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            errors += schema_errors(item, properties[key], f"{path}.{key}")
        elif extra is False:
            errors.append(f"{path}: unexpected {key}")
        elif isinstance(extra, dict):
            errors += schema_errors(item, extra, f"{path}.{key}")
    return errors


def response_schema(path: str, status: int) -> dict[str, Any]:
    operation = next(iter(SPEC["paths"][path].values()))
    response = _resolve(operation["responses"][str(status)])
    if "content" in response:
        return dict(response["content"]["application/json"]["schema"])
    return response


def success_schema(path: str, query: dict[str, str]) -> dict[str, Any]:
    """
    The schema of a route's 200 answer, with the capabilities branch chosen.

    The capabilities answer is a oneOf whose map branch also accepts the
    single-provider envelope (and an empty object), so the query picks the branch.
    """
    if path == CAPABILITIES:
        branches = SCHEMAS["IntegrationCapabilitiesResponse"]["oneOf"]
        return dict(branches[0] if "provider" in query else branches[1])
    return response_schema(path, 200)


def assert_valid(body: Any, schema: dict[str, Any] | str) -> None:
    resolved = SCHEMAS[schema] if isinstance(schema, str) else schema
    assert schema_errors(body, resolved) == []


# Fixtures and helpers.


@pytest.fixture
async def fake() -> AsyncIterator[FakeOutlit]:
    async with FakeOutlit(KEY) as server:
        yield server


@pytest.fixture
async def http(fake: FakeOutlit) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(fake.url, headers=bearer(KEY)) as session:
        yield session


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def get(
    http: aiohttp.ClientSession,
    path: str,
    headers: dict[str, str] | None = None,
    /,
    **query: str,
) -> tuple[int, Any]:
    async with http.get(path, params=query, headers=headers) as response:
        return response.status, await response.json()


async def post(
    http: aiohttp.ClientSession,
    path: str,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with http.post(path, json=body, headers=headers) as response:
        return response.status, await response.json()


async def checked(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None, **query: str
) -> Any:
    """Send a request, expect 200, and check the answer against the route's schema."""
    if method == "GET":
        status, answer = await get(http, path, **query)
    else:
        status, answer = await post(http, path, body)
    assert status == 200, answer
    assert_valid(answer, response_schema(path, 200))
    return answer


async def open_session(http: aiohttp.ClientSession, provider: str = "hubspot") -> str:
    answer = await checked(http, "POST", CONNECT, {"provider": provider})
    session_id: str = answer["sessionId"]
    return session_id


async def poll(http: aiohttp.ClientSession, session_id: str) -> Any:
    return await checked(http, "GET", STATUS, sessionId=session_id)


# Authentication.


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("ok_wrong"), {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}],
    ids=["missing", "unknown key", "no scheme", "basic"],
)
@pytest.mark.parametrize("path", [LIST, CAPABILITIES, STATUS, SYNC_STATUS])
async def test_a_bad_key_is_401_invalid_credentials(
    fake: FakeOutlit, path: str, headers: dict[str, str]
) -> None:
    """Every route answers 401 {"error": "Invalid credentials"} without a known key."""
    async with aiohttp.ClientSession(fake.url, headers=headers) as http:
        status, body = await get(http, path, sessionId="x", provider="stripe")

    assert (status, body) == (401, {"error": "Invalid credentials"})
    assert_valid(body, response_schema(path, 401))
    assert fake.requests[-1].authorized is False


async def test_a_bad_key_on_a_post_changes_nothing(fake: FakeOutlit) -> None:
    """A POST with an unknown key is refused before it is acted on."""
    async with aiohttp.ClientSession(fake.url, headers=bearer("ok_wrong")) as http:
        status, _ = await post(
            http, CONNECT, {"provider": "stripe", "config": DIRECT["stripe"]}
        )

    assert status == 401
    assert fake.organization().connections == {}


# List.


async def test_list_shows_all_twelve_providers_not_connected(
    http: aiohttp.ClientSession,
) -> None:
    """A new organisation lists the twelve providers, nullable fields null."""
    body = await checked(http, "GET", LIST)

    assert [item["id"] for item in body["items"]] == PUBLIC_IDS
    for item in body["items"]:
        assert item["status"] == "not_connected"
        assert item["connectionId"] is None
        assert item["lastDataReceivedAt"] is None
        assert item["syncStatus"] is None


async def test_list_connected_only(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """connectedOnly=true lists only the connected providers, with a sync summary."""
    connection_id = fake.connect_provider("stripe")
    synced = datetime(2026, 4, 10, 18, 22, 11, tzinfo=timezone.utc)
    for model in fake.default_models("stripe"):
        fake.set_sync("stripe", model, last_synced_at=synced)

    body = await checked(http, "GET", LIST, connectedOnly="true")
    everything = await checked(http, "GET", LIST, connectedOnly="false")

    assert body == {
        "items": [
            {
                "id": "stripe",
                "name": "Stripe",
                "category": "billing",
                "status": "connected",
                "connectionId": connection_id,
                "lastDataReceivedAt": "2026-04-10T18:22:11.000Z",
                "syncStatus": "SUCCESS",
                "errorMessage": None,
            }
        ]
    }
    assert len(everything["items"]) == 12


async def test_list_refuses_a_non_boolean_flag(http: aiohttp.ClientSession) -> None:
    """connectedOnly must be true or false."""
    status, body = await get(http, LIST, connectedOnly="yes")

    assert status == 400
    assert_valid(body, response_schema(LIST, 401))
    assert body["details"][0]["path"] == ["connectedOnly"]


# Capabilities.


async def test_capabilities_of_all_providers(http: aiohttp.ClientSession) -> None:
    """Without a provider, the answer maps each of the twelve ids to its capability."""
    body = await checked(http, "GET", CAPABILITIES)

    assert list(body) == PUBLIC_IDS
    for provider_id, capability in body.items():
        assert_valid(capability, "ProviderCapability")
        assert capability["providerId"] == provider_id


@pytest.mark.parametrize("provider", PUBLIC_IDS)
async def test_capability_of_one_provider(
    http: aiohttp.ClientSession, provider: str
) -> None:
    """One provider's capability comes in a {"provider": ...} envelope."""
    status, body = await get(http, CAPABILITIES, provider=provider)

    assert status == 200
    assert_valid(body, "ProviderCapabilityEnvelope")
    capability = body["provider"]
    mode = "browser_session" if provider in BROWSER else "direct_api_key"
    assert capability["setupMode"] == mode
    fields = [field["key"] for field in capability["requiredFields"]]
    assert fields == list(DIRECT.get(provider, {}))


async def test_capabilities_accept_the_gmail_alias(http: aiohttp.ClientSession) -> None:
    """The CLI alias gmail answers google-mail's capability."""
    _, body = await get(http, CAPABILITIES, provider="gmail")

    assert body["provider"]["providerId"] == "google-mail"
    assert body["provider"]["cliName"] == "gmail"


async def test_capabilities_of_an_unknown_provider(http: aiohttp.ClientSession) -> None:
    """An unknown provider is 400 Invalid provider, with details on the parameter."""
    status, body = await get(http, CAPABILITIES, provider="acme")

    assert status == 400
    assert_valid(body, response_schema(CAPABILITIES, 400))
    assert body["error"] == "Invalid provider"
    assert body["details"][0]["path"] == ["provider"]


# Connect.


@pytest.mark.parametrize("provider", list(DIRECT))
async def test_direct_connect(
    fake: FakeOutlit, http: aiohttp.ClientSession, provider: str
) -> None:
    """A direct provider with its credentials connects; a second call reports it."""
    first = await checked(
        http, "POST", CONNECT, {"provider": provider, "config": DIRECT[provider]}
    )
    again = await checked(
        http, "POST", CONNECT, {"provider": provider, "config": DIRECT[provider]}
    )

    assert_valid(first, "IntegrationDirectConnectionResponse")
    assert first["connected"] is True
    assert first["alreadyConnected"] is False
    assert first["connectionId"].startswith("conn_")
    assert again == {**first, "alreadyConnected": True}
    assert provider in fake.organization().connections


@pytest.mark.parametrize("provider", list(DIRECT))
async def test_direct_connect_without_config_names_each_field(
    http: aiohttp.ClientSession, provider: str
) -> None:
    """Without config, each required credential is reported under config."""
    status, body = await post(http, CONNECT, {"provider": provider})

    assert status == 400
    assert_valid(body, response_schema(CONNECT, 400))
    assert body["error"] == "Invalid request"
    assert body["details"] == [
        {"path": ["config", field], "message": "Required"} for field in DIRECT[provider]
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"apiKey": "k", "projectId": "1"}, "Required"),
        (
            {"apiKey": "k", "projectId": "1", "region": 1},
            "Expected string, received number",
        ),
        ({"apiKey": "k", "projectId": "1", "region": "mars"}, "Invalid enum value"),
    ],
)
async def test_direct_connect_checks_each_credential(
    http: aiohttp.ClientSession, config: dict[str, Any], message: str
) -> None:
    """A missing, mistyped or out-of-range credential is a 400 naming it."""
    status, body = await post(http, CONNECT, {"provider": "posthog", "config": config})

    assert status == 400
    assert body["details"][0]["path"] == ["config", "region"]
    assert body["details"][0]["message"].startswith(message)


@pytest.mark.parametrize("provider", BROWSER)
async def test_browser_connect_opens_a_session(
    fake: FakeOutlit, http: aiohttp.ClientSession, provider: str
) -> None:
    """A browser provider answers a session and a connect URL on the fake."""
    body = await checked(http, "POST", CONNECT, {"provider": provider})

    assert_valid(body, "IntegrationBrowserSessionResponse")
    assert body["alreadyConnected"] is False
    assert body["connectUrl"] == f"{fake.url}/connect/{body['sessionId']}"
    assert fake.session(body["sessionId"]).status == "pending"


async def test_browser_connect_when_connected(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """A connected browser provider answers alreadyConnected and a connected session."""
    fake.connect_provider("slack")

    body = await checked(http, "POST", CONNECT, {"provider": "slack"})

    assert body["alreadyConnected"] is True
    assert (await poll(http, body["sessionId"]))["status"] == "connected"


@pytest.mark.parametrize(
    ("body", "path", "error"),
    [
        ({"provider": "acme"}, ["provider"], "Invalid provider"),
        (
            {"provider": "stripe", "config": {"apiKey": "k"}, "force": True},
            [],
            "Invalid request",
        ),
        ({}, ["provider"], "Invalid request"),
        ({"provider": 7}, ["provider"], "Invalid request"),
        ({"provider": "stripe", "config": "k"}, ["config"], "Invalid request"),
        (["stripe"], [], "Invalid request"),
        ({"provider": "hubspot", "config": {}}, ["config"], "Invalid request"),
    ],
    ids=[
        "unknown",
        "extra key",
        "empty",
        "number",
        "config string",
        "array",
        "browser config",
    ],
)
async def test_connect_refuses_a_bad_body(
    fake: FakeOutlit,
    http: aiohttp.ClientSession,
    body: Any,
    path: list[str],
    error: str,
) -> None:
    """A body that breaks the request schema is 400 with a detail where it breaks."""
    status, answer = await post(http, CONNECT, body)

    assert status == 400
    assert_valid(answer, response_schema(CONNECT, 400))
    assert answer["error"] == error
    assert answer["details"][0]["path"] == path
    assert fake.organization().connections == {}


@pytest.mark.parametrize("path", [CONNECT, DISCONNECT, SETUP_STEP])
async def test_malformed_json_is_400(
    fake: FakeOutlit, http: aiohttp.ClientSession, path: str
) -> None:
    """A body that is not JSON is 400 with a detail, on every POST route."""
    async with http.post(
        path, data=b'{"provider": ', headers={"Content-Type": "application/json"}
    ) as response:
        body = await response.json()

    assert response.status == 400
    assert_valid(body, response_schema(path, 400))
    assert body["details"][0]["path"] == []
    assert fake.requests[-1].body is None


async def test_connection_limit_is_403(http: aiohttp.ClientSession) -> None:
    """Connecting beyond the plan's limit answers the plan-limit shape."""
    async with (
        FakeOutlit(KEY, connection_limit=1, plan="starter") as fake,
        aiohttp.ClientSession(fake.url, headers=bearer(KEY)) as http,
    ):
        await checked(
            http, "POST", CONNECT, {"provider": "stripe", "config": DIRECT["stripe"]}
        )
        direct = await post(
            http, CONNECT, {"provider": "pylon", "config": DIRECT["pylon"]}
        )
        browser = await post(http, CONNECT, {"provider": "hubspot"})
        again = await post(
            http, CONNECT, {"provider": "stripe", "config": DIRECT["stripe"]}
        )

    expected = {
        "error": "Your plan has reached its integration connection limit.",
        "code": "plan_connection_limit_exceeded",
        "feature": "integration_connections",
        "plan": "starter",
        "currentConnections": 1,
        "limit": 1,
    }
    assert direct == (403, expected)
    assert browser == (403, expected)
    assert_valid(expected, response_schema(CONNECT, 403))
    assert again[0] == 200
    assert again[1]["alreadyConnected"] is True


# Connection status and scripts.


async def test_a_session_without_script_stays_pending(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """Without a script a session stays pending, and every poll is counted."""
    session_id = await open_session(http)

    answers = [await poll(http, session_id) for _ in range(3)]

    assert answers == [{"status": "pending", "provider": "hubspot"}] * 3
    assert fake.session(session_id).polls == 3


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            SessionScript("connected", 3),
            ["pending", "pending", "connected", "connected"],
        ),
        (SessionScript("failed", 1), ["failed"] * 4),
        (SessionScript("expired", 2), ["pending", "expired", "expired", "expired"]),
        (SessionScript("connected", 0), ["connected"] * 4),
    ],
)
async def test_a_scripted_session_settles_at_its_poll(
    script: SessionScript, expected: list[str]
) -> None:
    """The after_polls-th poll already answers the outcome; 0 starts in it."""
    async with (
        FakeOutlit(KEY, session_script=script) as fake,
        aiohttp.ClientSession(fake.url, headers=bearer(KEY)) as http,
    ):
        session_id = await open_session(http)
        statuses = [(await poll(http, session_id))["status"] for _ in expected]

    assert statuses == expected


async def test_a_connected_session_connects_its_provider() -> None:
    """Once connected, the provider lists as connected with its models PENDING."""
    async with (
        FakeOutlit(KEY, session_script=SessionScript(after_polls=1)) as fake,
        aiohttp.ClientSession(fake.url, headers=bearer(KEY)) as http,
    ):
        session_id = await open_session(http, "attio")
        await poll(http, session_id)
        listed = await checked(http, "GET", LIST, connectedOnly="true")
        syncs = await checked(http, "GET", SYNC_STATUS, provider="attio")

    assert [item["id"] for item in listed["items"]] == ["attio"]
    assert listed["items"][0]["syncStatus"] == "PENDING"
    assert [sync["status"] for sync in syncs["syncs"]] == ["PENDING"] * 3


async def test_a_failed_session_reports_its_error() -> None:
    """A failed session carries error; the default is "User denied access"."""
    scripts = [
        SessionScript("failed", 1, "Token exchange failed"),
        SessionScript("failed", 1),
    ]
    async with (
        FakeOutlit(KEY, session_script=lambda _, index: scripts[index]) as fake,
        aiohttp.ClientSession(fake.url, headers=bearer(KEY)) as http,
    ):
        first = await poll(http, await open_session(http))
        second = await poll(http, await open_session(http))

    assert first == {
        "status": "failed",
        "provider": "hubspot",
        "error": "Token exchange failed",
    }
    assert second["error"] == "User denied access"


async def test_a_script_callable_sees_provider_and_index() -> None:
    """A callable script is asked for each session the connect route opens."""
    seen: list[tuple[str, int]] = []

    def script(provider: str, index: int) -> SessionScript | None:
        seen.append((provider, index))
        return SessionScript("connected", 1) if index % 2 else None

    async with (
        FakeOutlit(KEY, session_script=script) as fake,
        aiohttp.ClientSession(fake.url, headers=bearer(KEY)) as http,
    ):
        ids = [
            await open_session(http, provider)
            for provider in ("slack", "attio", "hubspot")
        ]
        statuses = [(await poll(http, session_id))["status"] for session_id in ids]

    assert seen == [("slack", 0), ("attio", 1), ("hubspot", 2)]
    assert statuses == ["pending", "connected", "pending"]


async def test_sessions_change_by_hand(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """complete, fail and expire move sessions at once, whatever their script."""
    completed, failed, expired = (fake.create_session("hubspot") for _ in range(3))
    scripted = fake.create_session(
        "slack", outcome="failed", after_polls=2, error="Nope"
    )

    fake.complete_session(completed)
    fake.fail_session(failed)
    fake.expire_session(expired)

    assert (await poll(http, completed))["status"] == "connected"
    assert (await poll(http, failed))["error"] == "User denied access"
    assert await poll(http, expired) == {"status": "expired", "provider": "hubspot"}
    assert (await poll(http, scripted))["status"] == "pending"
    assert await poll(http, scripted) == {
        "status": "failed",
        "provider": "slack",
        "error": "Nope",
    }
    assert "hubspot" in fake.organization().connections


@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        ({}, "Invalid request", "Required"),
        (
            {"sessionId": ""},
            "Invalid request",
            "String must contain at least 1 character(s)",
        ),
        ({"sessionId": "nope"}, "Unknown session", "No connection session has this id"),
    ],
)
async def test_status_of_a_missing_or_unknown_session(
    http: aiohttp.ClientSession, query: dict[str, str], error: str, message: str
) -> None:
    """A missing or unknown session id is 400."""
    status, body = await get(http, STATUS, **query)

    assert status == 400
    assert_valid(body, response_schema(STATUS, 400))
    assert body == {
        "error": error,
        "details": [{"path": ["sessionId"], "message": message}],
    }


async def test_create_session_refuses_unknown_input(fake: FakeOutlit) -> None:
    """An unknown provider or outcome is a ValueError, and no session is made."""
    with pytest.raises(ValueError, match="unknown provider"):
        fake.create_session("acme")
    with pytest.raises(ValueError):
        fake.create_session("hubspot", outcome="paused")  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        fake.session("nope")


# Disconnect.


async def test_disconnect(fake: FakeOutlit, http: aiohttp.ClientSession) -> None:
    """Disconnect answers success, then 404 with the not-connected shape."""
    fake.connect_provider("stripe")

    first = await checked(http, "POST", DISCONNECT, {"provider": "stripe"})
    status, again = await post(http, DISCONNECT, {"provider": "stripe"})

    assert first == {"success": True}
    assert (status, again) == (
        404,
        {"success": False, "message": "Integration is not connected"},
    )
    assert_valid(again, response_schema(DISCONNECT, 404))
    assert fake.organization().connections == {}


@pytest.mark.parametrize(
    "body", [{"provider": "acme"}, {"provider": "stripe", "x": 1}, {}]
)
async def test_disconnect_refuses_a_bad_body(
    http: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    """An unknown provider, an extra key or no provider is 400."""
    status, answer = await post(http, DISCONNECT, body)

    assert status == 400
    assert_valid(answer, response_schema(DISCONNECT, 400))


# Sync status.


async def test_sync_status_of_a_provider_not_connected(
    http: aiohttp.ClientSession,
) -> None:
    """A provider not connected answers not_connected with no syncs."""
    body = await checked(http, "GET", SYNC_STATUS, provider="stripe")

    assert body == {
        "provider": "stripe",
        "name": "Stripe",
        "category": "billing",
        "status": "not_connected",
        "syncs": [],
    }


@pytest.mark.parametrize(
    ("query", "error"),
    [({}, "Invalid request"), ({"provider": "gmail"}, "Invalid provider")],
)
async def test_sync_status_needs_a_public_provider_id(
    http: aiohttp.ClientSession, query: dict[str, str], error: str
) -> None:
    """A missing provider, or anything but a public id, is 400."""
    status, body = await get(http, SYNC_STATUS, **query)

    assert status == 400
    assert body["error"] == error
    assert body["details"][0]["path"] == ["provider"]


async def test_sync_script_moves_models_after_polls() -> None:
    """PENDING models succeed, or fail when named, at the scripted poll."""
    script = SyncScript(succeed_after_polls=2, fail_models=["StripeInvoice"])
    async with (
        FakeOutlit(KEY, sync_script=script) as fake,
        aiohttp.ClientSession(fake.url, headers=bearer(KEY)) as http,
    ):
        await post(http, CONNECT, {"provider": "stripe", "config": DIRECT["stripe"]})
        first = await checked(http, "GET", SYNC_STATUS, provider="stripe")
        second = await checked(http, "GET", SYNC_STATUS, provider="stripe")
        listed = await checked(http, "GET", LIST, connectedOnly="true")

    assert {sync["status"] for sync in first["syncs"]} == {"PENDING"}
    by_model = {sync["model"]: sync for sync in second["syncs"]}
    assert by_model["StripeCustomer"]["status"] == "SUCCESS"
    assert by_model["StripeCustomer"]["lastSyncedAt"].endswith("Z")
    assert by_model["StripeInvoice"]["status"] == "FAILED"
    assert by_model["StripeInvoice"]["errorMessage"]
    assert listed["items"][0]["syncStatus"] == "FAILED"
    assert (
        listed["items"][0]["errorMessage"] == by_model["StripeInvoice"]["errorMessage"]
    )
    assert (
        listed["items"][0]["lastDataReceivedAt"]
        == by_model["StripeCustomer"]["lastSyncedAt"]
    )


async def test_set_sync_by_hand(fake: FakeOutlit, http: aiohttp.ClientSession) -> None:
    """set_sync connects the provider if needed and shows the time as set."""
    at = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))

    fake.set_sync("pylon", "PylonIssue", "RUNNING", last_synced_at=at)
    fake.set_sync("pylon", "PylonCustom", "FAILED", error_message="Rate limited")
    body = await checked(http, "GET", SYNC_STATUS, provider="pylon")

    by_model = {sync["model"]: sync for sync in body["syncs"]}
    assert by_model["PylonIssue"] == {
        "model": "PylonIssue",
        "status": "RUNNING",
        "lastSyncedAt": "2026-05-01T10:00:00.123456Z",
        "errorMessage": None,
    }
    assert by_model["PylonAccount"]["status"] == "PENDING"
    assert by_model["PylonCustom"]["errorMessage"] == "Rate limited"


async def test_set_sync_refuses_a_naive_time(fake: FakeOutlit) -> None:
    """A naive datetime would be ambiguous, so it is refused."""
    with pytest.raises(ValueError, match="aware"):
        fake.set_sync("stripe", "StripeCustomer", last_synced_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="unknown provider"):
        fake.set_sync("acme", "Model")


# Setup steps.


@pytest.mark.parametrize("provider", ["hubspot", "attio"])
async def test_crm_mappings_need_config_then_configure(
    fake: FakeOutlit, http: aiohttp.ClientSession, provider: str
) -> None:
    """Mappings answer config_required with fields, then configured with config."""
    connection_id = fake.connect_provider(provider)

    asked = await checked(
        http, "POST", SETUP_STEP, {"provider": provider, "step": "mappings"}
    )
    field = asked["fields"][0]
    mappings = [{"source": field["sources"][0], "target": "lead"}]
    done = await checked(
        http,
        "POST",
        SETUP_STEP,
        {"provider": provider, "step": "mappings", "config": {"mappings": mappings}},
    )

    assert asked["status"] == "config_required"
    assert asked["step"] == "mappings"
    assert asked["connectionId"] == connection_id
    assert field["key"] == "mappings"
    assert done["status"] == "configured"
    assert done["mappings"] == mappings


async def test_crm_mappings_check_each_mapping(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """A mapping to an unknown target is a 400 whose path has the index."""
    fake.connect_provider("hubspot")
    config = {
        "mappings": [
            {"source": "lead", "target": "lead"},
            {"source": "lead", "target": "vip"},
        ]
    }

    status, body = await post(
        http, SETUP_STEP, {"provider": "hubspot", "step": "mappings", "config": config}
    )

    assert status == 400
    assert_valid(body, response_schema(SETUP_STEP, 400))
    assert body["details"][0]["path"] == ["config", "mappings", 1, "target"]


@pytest.mark.parametrize("provider", ["stripe", "pylon", "fireflies"])
async def test_webhooks_answer_url_and_secret(
    fake: FakeOutlit, http: aiohttp.ClientSession, provider: str
) -> None:
    """Webhook setup answers a URL and a whsec_ secret, the same on a second call."""
    connection_id = fake.connect_provider(provider)

    first = await checked(
        http, "POST", SETUP_STEP, {"provider": provider, "step": "webhooks"}
    )
    again = await checked(
        http, "POST", SETUP_STEP, {"provider": provider, "step": "webhooks"}
    )

    assert first["status"] == "configured"
    assert first["webhookUrl"] == f"{fake.url}/api/webhooks/{provider}/{connection_id}"
    assert first["webhookSecret"].startswith("whsec_")
    assert again == first


async def test_webhooks_keep_a_given_secret(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """A webhookSecret in config is the one configured."""
    fake.connect_provider("stripe")
    body = {
        "provider": "stripe",
        "step": "webhooks",
        "config": {"webhookSecret": "whsec_mine"},
    }

    answer = await checked(http, "POST", SETUP_STEP, body)

    assert answer["webhookSecret"] == "whsec_mine"


@pytest.mark.parametrize(
    ("body", "error", "path"),
    [
        ({"provider": "stripe", "step": "mappings"}, "Invalid request", ["step"]),
        ({"provider": "granola", "step": "webhooks"}, "Invalid request", ["step"]),
        (
            {"provider": "hubspot", "step": "mappings"},
            "Integration is not connected",
            ["provider"],
        ),
        ({"provider": "stripe"}, "Invalid request", ["step"]),
        ({"provider": "stripe", "step": ""}, "Invalid request", ["step"]),
        ({"provider": "stripe", "step": "webhooks", "extra": 1}, "Invalid request", []),
        ({"provider": "acme", "step": "webhooks"}, "Invalid provider", ["provider"]),
    ],
    ids=[
        "unsupported",
        "no steps",
        "not connected",
        "no step",
        "empty step",
        "extra key",
        "unknown",
    ],
)
async def test_setup_step_refusals(
    fake: FakeOutlit,
    http: aiohttp.ClientSession,
    body: dict[str, Any],
    error: str,
    path: list[str],
) -> None:
    """An unknown step, a provider not connected or a bad body is 400 with details."""
    fake.connect_provider("stripe")
    fake.connect_provider("granola")

    status, answer = await post(http, SETUP_STEP, body)

    assert status == 400
    assert_valid(answer, response_schema(SETUP_STEP, 400))
    assert answer["error"] == error
    assert answer["details"][0]["path"] == path


# Faults.


async def test_status_fault_is_not_acted_on(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """A status fault answers its code and Retry-After; the poll is not counted."""
    session_id = fake.create_session("hubspot", outcome="connected", after_polls=1)
    fake.faults.add(STATUS, Fault.status(503, retry_after="2"))

    async with http.get(STATUS, params={"sessionId": session_id}) as response:
        body = await response.json()

    assert response.status == 503
    assert response.headers["Retry-After"] == "2"
    assert_valid(body, "ErrorResponse")
    assert fake.session(session_id).polls == 0
    assert (await poll(http, session_id))["status"] == "connected"


async def test_status_fault_on_a_post_changes_nothing(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """A POST that meets a status fault connects nothing."""
    fake.faults.add(CONNECT, Fault.status(500))

    status, body = await post(
        http, CONNECT, {"provider": "stripe", "config": DIRECT["stripe"]}
    )

    assert (status, body) == (500, {"error": "Internal server error"})
    assert fake.organization().connections == {}


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [
        (2, "2"),
        (1.5, "1.5"),
        ("Wed, 21 Oct 2026 07:28:00 GMT", "Wed, 21 Oct 2026 07:28:00 GMT"),
        (
            datetime(2026, 10, 21, 7, 28, tzinfo=timezone.utc),
            "Wed, 21 Oct 2026 07:28:00 GMT",
        ),
    ],
)
async def test_retry_after_forms(
    fake: FakeOutlit, http: aiohttp.ClientSession, retry_after: Any, header: str
) -> None:
    """Retry-After may be seconds or an HTTP date."""
    fake.faults.add(LIST, Fault.status(429, retry_after=retry_after))

    async with http.get(LIST) as response:
        assert response.headers["Retry-After"] == header
        assert await response.json() == {"error": "Too many requests"}


async def test_status_fault_bodies_follow_the_spec(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """403 has the plan-limit shape, disconnect's 404 the not-connected one."""
    fake.connect_provider("stripe")
    fake.faults.add(CONNECT, Fault.status(403))
    fake.faults.add(
        DISCONNECT,
        Fault.status(404),
        Fault.status(500, body={"error": "boom", "id": 7}),
    )

    limit = await post(http, CONNECT, {"provider": "pylon", "config": DIRECT["pylon"]})
    missing = await post(http, DISCONNECT, {"provider": "stripe"})
    custom = await post(http, DISCONNECT, {"provider": "stripe"})

    assert limit[0] == 403
    assert_valid(limit[1], response_schema(CONNECT, 403))
    assert limit[1]["code"] == "plan_connection_limit_exceeded"
    assert missing == (
        404,
        {"success": False, "message": "Integration is not connected"},
    )
    assert custom == (500, {"error": "boom", "id": 7})
    assert "stripe" in fake.organization().connections


async def test_drop_on_a_post_is_a_disconnect(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """A dropped POST raises ServerDisconnectedError and is not acted on."""
    fake.faults.add(CONNECT, Fault.drop())

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(http, CONNECT, {"provider": "stripe", "config": DIRECT["stripe"]})

    assert fake.organization().connections == {}
    assert fake.requests[-1].status is None


async def test_drop_on_a_get_is_retried_once_by_aiohttp(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """aiohttp resends a GET once after a disconnect; a second drop surfaces."""
    fake.faults.add(LIST, Fault.drop())
    status, _ = await get(http, LIST)
    fake.faults.add(LIST, Fault.drop(), Fault.drop())

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await get(http, LIST)

    assert status == 200
    assert [record.status for record in fake.requests_to(LIST)] == [
        None,
        200,
        None,
        None,
    ]


async def test_slow_answers_late_and_acts(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """A slow fault delays the answer; the request is acted on even after a timeout."""
    fake.faults.add(CONNECT, Fault.slow(0.3), Fault.slow(0.3))
    body = {"provider": "stripe", "config": DIRECT["stripe"]}

    started = time.monotonic()
    answer = await checked(http, "POST", CONNECT, body)
    elapsed = time.monotonic() - started
    fake.disconnect_provider("stripe")
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            CONNECT, json=body, timeout=aiohttp.ClientTimeout(total=0.05)
        ):
            pass
    for _ in range(200):
        if len(fake.requests_to(CONNECT)) == 2:
            break
        await asyncio.sleep(0.05)

    assert answer["alreadyConnected"] is False
    assert elapsed >= 0.3
    assert "stripe" in fake.organization().connections
    assert fake.requests_to(CONNECT)[-1].status is None


async def test_close_does_not_wait_for_a_slow_answer() -> None:
    """Closing the fake cancels a slow request instead of waiting for it."""
    fake = FakeOutlit(KEY)
    await fake.start()
    fake.faults.add(LIST, Fault.slow(60))
    async with aiohttp.ClientSession(fake.url, headers=bearer(KEY)) as http:
        with pytest.raises(asyncio.TimeoutError):
            await http.get(LIST, timeout=aiohttp.ClientTimeout(total=0.05))

    started = time.monotonic()
    await fake.close()

    assert time.monotonic() - started < 2


async def test_truncated_is_acted_on(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """A truncated answer is JSON cut in half, after the request was acted on."""
    fake.faults.add(CONNECT, Fault.truncated())

    async with http.post(
        CONNECT, json={"provider": "stripe", "config": DIRECT["stripe"]}
    ) as response:
        text = await response.text()

    assert response.status == 200
    assert response.content_type == "application/json"
    with pytest.raises(ValueError):
        json.loads(text)
    connection_id = fake.organization().connections["stripe"].connection_id
    full = json.dumps(
        {"connected": True, "connectionId": connection_id, "alreadyConnected": False},
        separators=(",", ":"),
    )
    assert text == full[: len(full) // 2]


async def test_html_is_not_acted_on(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """An HTML fault answers a proxy page; the request is not acted on."""
    fake.connect_provider("stripe")
    fake.faults.add(DISCONNECT, Fault.html(), Fault.html(status=504))

    async with http.post(DISCONNECT, json={"provider": "stripe"}) as first:
        page = await first.text()
    async with http.post(DISCONNECT, json={"provider": "stripe"}) as second:
        pass

    assert (first.status, first.content_type) == (502, "text/html")
    assert "502 Bad Gateway" in page
    assert second.status == 504
    assert "stripe" in fake.organization().connections


async def test_extra_fields_at_every_level(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """extra_fields adds unknown fields to the top and to nested objects; acted on."""
    fake.faults.add(SYNC_STATUS, Fault.extra_fields())
    fake.faults.add(CAPABILITIES, Fault.extra_fields())
    fake.connect_provider("stripe")

    _, body = await get(http, SYNC_STATUS, provider="stripe")
    _, capabilities = await get(http, CAPABILITIES)

    assert body["futureField"]
    assert all(sync["futureField"] for sync in body["syncs"])
    assert schema_errors(body, response_schema(SYNC_STATUS, 200))
    assert "futureField" not in capabilities
    assert all("futureField" in capability for capability in capabilities.values())
    assert fake.organization().connections["stripe"].polls == 1


async def test_unknown_status_on_a_poll_does_not_advance(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """unknown_status disguises a poll without counting it or moving the script."""
    session_id = fake.create_session("hubspot", outcome="connected", after_polls=1)
    fake.faults.add_for_session(session_id, Fault.unknown_status())

    _, disguised = await get(http, STATUS, sessionId=session_id)

    assert disguised == {"status": "paused", "provider": "hubspot"}
    assert fake.session(session_id).polls == 0
    assert (await poll(http, session_id))["status"] == "connected"


async def test_unknown_status_on_sync_status(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """unknown_status replaces the connection status and every model status."""
    fake.connect_provider("stripe")
    fake.faults.add(SYNC_STATUS, Fault.unknown_status("archived"))

    _, body = await get(http, SYNC_STATUS, provider="stripe")

    assert body["status"] == "archived"
    assert {sync["status"] for sync in body["syncs"]} == {"archived"}
    assert fake.organization().connections["stripe"].polls == 1


@pytest.mark.parametrize(
    ("path", "query", "missing"),
    [
        (STATUS, {}, "status"),
        (SYNC_STATUS, {"provider": "stripe"}, "provider"),
        (LIST, {}, "items"),
        (CAPABILITIES, {"provider": "stripe"}, "provider"),
    ],
)
async def test_missing_field_removes_the_first_required_one(
    fake: FakeOutlit,
    http: aiohttp.ClientSession,
    path: str,
    query: dict[str, str],
    missing: str,
) -> None:
    """By default the route's first required field is left out."""
    query = query or {"sessionId": fake.create_session("slack")}
    fake.faults.add(path, Fault.missing_field())

    status, body = await get(http, path, **query)

    assert status == 200
    assert missing not in body
    assert f"$: missing {missing}" in schema_errors(body, success_schema(path, query))


async def test_missing_field_by_name_and_in_the_provider_map(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """A named field goes from nested objects; the provider map loses each cliName."""
    fake.connect_provider("stripe")
    fake.faults.add(SYNC_STATUS, Fault.missing_field("lastSyncedAt"))
    fake.faults.add(CAPABILITIES, Fault.missing_field())

    _, syncs = await get(http, SYNC_STATUS, provider="stripe")
    _, capabilities = await get(http, CAPABILITIES)

    assert all("lastSyncedAt" not in sync for sync in syncs["syncs"])
    assert syncs["status"] == "connected"
    assert all("cliName" not in capability for capability in capabilities.values())


async def test_session_faults_target_one_session(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """Faults added for a session hit only its polls, before any route fault."""
    target, other = fake.create_session("hubspot"), fake.create_session("hubspot")
    fake.faults.add_for_session(target, Fault.status(502))
    fake.faults.add(STATUS, Fault.status(500))

    other_status, _ = await get(http, STATUS, sessionId=other)
    target_status, _ = await get(http, STATUS, sessionId=target)
    again, _ = await get(http, STATUS, sessionId=target)

    assert (other_status, target_status, again) == (500, 502, 200)
    assert fake.faults.injected == [
        (STATUS, Fault.status(500)),
        (STATUS, Fault.status(502)),
    ]


async def test_faults_are_consumed_in_order_and_cleared(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """Queued faults meet one request each, in order; clear() forgets everything."""
    fake.faults.add(LIST, Fault.status(500), Fault.status(503))
    fake.faults.add(CAPABILITIES, Fault.status(502))

    statuses = [(await get(http, LIST))[0] for _ in range(3)]
    fake.faults.clear()

    assert statuses == [500, 503, 200]
    assert fake.faults.injected == []
    assert (await get(http, CAPABILITIES))[0] == 200


async def run_random(seed: int, count: int = 60) -> list[tuple[str, Fault]]:
    async with (
        FakeOutlit(KEY) as fake,
        aiohttp.ClientSession(fake.url, headers=bearer(KEY)) as http,
    ):
        fake.connect_provider("stripe")
        fake.faults.random(0.5, seed=seed)
        for index in range(count):
            path = (LIST, SYNC_STATUS, CAPABILITIES)[index % 3]
            with contextlib.suppress(aiohttp.ClientError, ValueError):
                await get(http, path, provider="stripe")
        return list(fake.faults.injected)


async def test_random_faults_repeat_with_a_seed() -> None:
    """The same seed and requests meet the same faults; another seed differs."""
    first = await run_random(7)
    second = await run_random(7)
    other = await run_random(8)

    assert first == second
    assert first != other
    assert 10 < len(first) < 60
    assert {fault for _, fault in first} <= set(TRANSIENT_FAULTS)


async def test_random_faults_yield_to_queued_ones(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """A queued fault goes before the random draw; kinds choose the random faults."""
    fake.faults.random(1.0, seed=1, kinds=[Fault.status(418)])
    fake.faults.add(LIST, Fault.status(409))

    statuses = [(await get(http, LIST))[0] for _ in range(3)]
    fake.faults.random(0)

    assert statuses == [409, 418, 418]
    assert (await get(http, LIST))[0] == 200


def test_fault_plan_refuses_bad_input() -> None:
    """An unknown route, a rate outside 0-1 or a non-fault is refused."""
    plan = FakeOutlit(KEY).faults

    with pytest.raises(ValueError, match="API routes"):
        plan.add("/api/integration", Fault.drop())
    with pytest.raises(ValueError):
        plan.random(1.5)
    with pytest.raises(TypeError):
        plan.add(LIST, "drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Fault.status(99)


def test_faults_read_well() -> None:
    """Each fault has a kind, and a repr that reads like its constructor."""
    faults = {
        Fault.status(503, retry_after=2): (
            "status",
            "Fault.status(503, retry_after='2')",
        ),
        Fault.drop(): ("drop", "Fault.drop()"),
        Fault.slow(1.5): ("slow", "Fault.slow(1.5)"),
        Fault.truncated(): ("truncated", "Fault.truncated()"),
        Fault.html(): ("html", "Fault.html(status=502)"),
        Fault.extra_fields(): ("extra_fields", "Fault.extra_fields()"),
        Fault.unknown_status(): ("unknown_status", "Fault.unknown_status('paused')"),
        Fault.missing_field("status"): (
            "missing_field",
            "Fault.missing_field('status')",
        ),
    }

    assert {fault: (fault.kind, repr(fault)) for fault in faults} == faults
    assert [fault.acted_on for fault in faults] == [
        False,
        False,
        True,
        True,
        False,
        True,
        True,
        True,
    ]


# The connect page.


async def test_connect_page_approve(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """The page names the provider; Approve connects the session and its provider."""
    answer = await checked(http, "POST", CONNECT, {"provider": "google-mail"})

    async with aiohttp.ClientSession() as browser:
        async with browser.get(answer["connectUrl"]) as page:
            html = await page.text()
        async with browser.post(f"{answer['connectUrl']}/approve") as result:
            done = await result.text()

    assert (page.status, page.content_type) == (200, "text/html")
    assert "Gmail" in html
    assert 'id="approve"' in html
    assert 'id="deny"' in html
    assert f'action="/connect/{answer["sessionId"]}/approve"' in html
    assert result.status == 200
    assert 'id="result"' in done
    assert (await poll(http, answer["sessionId"]))["status"] == "connected"
    assert "google-mail" in fake.organization().connections


async def test_connect_page_deny(fake: FakeOutlit, http: aiohttp.ClientSession) -> None:
    """Deny fails the session with "User denied access"; a second click is 409."""
    session_id = await open_session(http, "slack")

    async with aiohttp.ClientSession(fake.url) as browser:
        async with browser.post(f"/connect/{session_id}/deny") as denied:
            text = await denied.text()
        async with browser.post(f"/connect/{session_id}/approve") as late:
            pass

    assert denied.status == 200
    assert 'id="result"' in text
    assert late.status == 409
    assert await poll(http, session_id) == {
        "status": "failed",
        "provider": "slack",
        "error": "User denied access",
    }


async def test_connect_page_of_unknown_or_expired_sessions(fake: FakeOutlit) -> None:
    """An unknown session is 404, an expired one 410, both HTML."""
    expired = fake.create_session("hubspot", outcome="expired", after_polls=0)

    async with aiohttp.ClientSession(fake.url) as browser:
        async with browser.get("/connect/nope") as unknown:
            pass
        async with browser.get(f"/connect/{expired}") as gone:
            pass
        async with browser.post(f"/connect/{expired}/approve") as late:
            pass

    assert (unknown.status, unknown.content_type) == (404, "text/html")
    assert (gone.status, late.status) == (410, 410)
    assert fake.session(expired).status == "expired"


async def test_connect_page_escapes_what_it_shows() -> None:
    """Names inserted into the page are HTML-escaped."""
    async with FakeOutlit(KEY, extra_providers={"x<script>": "browser"}) as fake:
        session_id = fake.create_session("x<script>")
        async with (
            aiohttp.ClientSession(fake.url) as browser,
            browser.get(f"/connect/{session_id}") as page,
        ):
            html = await page.text()

    assert "X&lt;Script&gt;" in html
    assert "<Script>" not in html


# Organisations.


async def test_organisations_have_their_own_state(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """Each key sees its own connections and sessions."""
    other = fake.add_organization(OTHER_KEY, plan="growth")
    fake.connect_provider("stripe", key=OTHER_KEY)
    theirs = fake.create_session("hubspot", key=OTHER_KEY)

    mine = await checked(http, "GET", LIST, connectedOnly="true")
    status, unknown = await get(http, STATUS, sessionId=theirs)
    async with aiohttp.ClientSession(fake.url, headers=bearer(OTHER_KEY)) as other_http:
        their_list = await checked(other_http, "GET", LIST, connectedOnly="true")
        their_poll = await poll(other_http, theirs)

    assert fake.organization(OTHER_KEY) is other
    assert fake.organization() is fake.organization(KEY)
    assert mine == {"items": []}
    assert [item["id"] for item in their_list["items"]] == ["stripe"]
    assert (status, unknown["error"]) == (400, "Unknown session")
    assert their_poll["status"] == "pending"
    assert other.plan == "growth"


def test_organisation_lookups_fail_clearly() -> None:
    """A duplicate key or an unknown key is an error that never shows the key."""
    fake = FakeOutlit(KEY, connection_limit=2)
    other = fake.add_organization(OTHER_KEY)

    with pytest.raises(ValueError) as duplicate:
        fake.add_organization(OTHER_KEY)
    with pytest.raises(LookupError) as unknown:
        fake.organization("ok_secret_nobody_has")

    assert OTHER_KEY not in str(duplicate.value)
    assert "ok_secret_nobody_has" not in str(unknown.value)
    assert other.connection_limit == 2
    assert OTHER_KEY not in repr(other)


# Extra providers.


async def test_extra_providers_work_like_public_ones() -> None:
    """A provider beyond the twelve lists, connects and syncs."""
    extra: dict[str, Literal["browser", "direct"]] = {
        "acme": "browser",
        "zenith": "direct",
    }
    async with (
        FakeOutlit(KEY, extra_providers=extra) as fake,
        aiohttp.ClientSession(fake.url, headers=bearer(KEY)) as http,
    ):
        _, capability = await get(http, CAPABILITIES, provider="acme")
        session = await post(http, CONNECT, {"provider": "acme"})
        refused = await post(http, CONNECT, {"provider": "zenith", "config": {}})
        direct = await post(
            http, CONNECT, {"provider": "zenith", "config": {"apiKey": "z"}}
        )
        _, syncs = await get(http, SYNC_STATUS, provider="zenith")
        _, listed = await get(http, LIST)

    assert capability["provider"]["setupMode"] == "browser_session"
    assert session[0] == 200
    assert "sessionId" in session[1]
    assert refused[1]["details"] == [
        {"path": ["config", "apiKey"], "message": "Required"}
    ]
    assert direct[1]["connected"] is True
    assert syncs["name"] == "Zenith"
    assert [sync["model"] for sync in syncs["syncs"]] == ["ZenithRecord"]
    assert [item["id"] for item in listed["items"]][-2:] == ["acme", "zenith"]


def test_extra_providers_cannot_shadow_public_ones() -> None:
    """An extra provider with a public id, or an unknown mode, is refused."""
    with pytest.raises(ValueError):
        FakeOutlit(extra_providers={"stripe": "direct"})
    with pytest.raises(ValueError):
        FakeOutlit(extra_providers={"acme": "carrier-pigeon"})  # type: ignore[dict-item]


# Routing.


async def test_unknown_routes_are_json_404(http: aiohttp.ClientSession) -> None:
    """An unknown path is 404 JSON; a known one with the wrong method is 405."""
    missing = await get(http, "/api/integrations/nope")
    async with http.delete(LIST) as response:
        wrong = (response.status, await response.json(), response.headers["Allow"])

    assert missing == (404, {"error": "Not found"})
    assert wrong == (405, {"error": "Method not allowed"}, "GET")


# The request log.


async def test_requests_are_recorded(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """Each request is logged with its query, body, status and authorization."""
    before = time.monotonic()
    session_id = await open_session(http)
    await poll(http, session_id)
    await get(http, LIST, bearer("ok_wrong"))

    records = fake.requests

    assert [(r.method, r.path, r.status, r.authorized) for r in records] == [
        ("POST", CONNECT, 200, True),
        ("GET", STATUS, 200, True),
        ("GET", LIST, 401, False),
    ]
    assert records[0].body == {"provider": "hubspot"}
    assert records[1].query == {"sessionId": session_id}
    assert before <= records[0].at <= records[1].at <= records[2].at <= time.monotonic()
    assert fake.requests_to(STATUS, sessionId=session_id) == [records[1]]
    assert fake.requests_to(STATUS, sessionId="other") == []


async def test_the_log_keeps_no_key_and_masks_config(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """The key is never stored; credential values never show in a repr."""
    await post(http, CONNECT, {"provider": "stripe", "config": DIRECT["stripe"]})

    record = fake.requests[-1]

    assert record.body["config"] == DIRECT["stripe"]
    assert "rk_test_secret" not in repr(record)
    assert "'apiKey': '***'" in repr(record)
    assert KEY not in repr(attrs.asdict(record))
    assert KEY not in repr(fake) + repr(fake.organization())


async def test_requests_to_matches_boolean_query(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """requests_to compares True with "true", as the query was sent."""
    await get(http, LIST, connectedOnly="true")
    await get(http, LIST)

    assert len(fake.requests_to(LIST, connectedOnly=True)) == 1
    assert len(fake.requests_to(LIST)) == 2


async def test_clear_and_disable_the_log(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """clear_requests empties the log; record=False keeps only the counts."""
    await get(http, LIST)
    fake.clear_requests()
    assert fake.requests == []

    async with (
        FakeOutlit(KEY, record=False) as quiet,
        aiohttp.ClientSession(quiet.url, headers=bearer(KEY)) as other,
    ):
        await get(other, LIST)
        await get(other, LIST)

    assert quiet.requests == []
    assert quiet.request_counts == {LIST: 2}


def test_recorded_requests_are_frozen() -> None:
    """A RecordedRequest cannot be changed after the fact."""
    record = RecordedRequest("GET", LIST, {}, None, 0.0, 200, True)

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.status = 500  # type: ignore[misc]


# Lifecycle, control routes and the process.


async def test_lifecycle() -> None:
    """start and close work without a context manager; url exists only while serving."""
    fake = FakeOutlit(KEY)
    with pytest.raises(RuntimeError):
        _ = fake.url

    await fake.start()
    url = fake.url
    with pytest.raises(RuntimeError):
        await fake.start()
    async with aiohttp.ClientSession(url, headers=bearer(KEY)) as http:
        assert (await get(http, LIST))[0] == 200
    await fake.close()
    await fake.close()

    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    with pytest.raises(RuntimeError):
        _ = fake.url


async def test_control_routes(fake: FakeOutlit, http: aiohttp.ClientSession) -> None:
    """/_fake/sessions opens scripted sessions in bulk; /_fake/stats counts requests."""
    body = {
        "provider": "hubspot",
        "count": 500,
        "outcome": "connected",
        "afterPolls": 1,
    }

    created = await post(http, "/_fake/sessions", body)
    session_ids = created[1]["sessionIds"]
    first = await poll(http, session_ids[0])
    stats = await get(http, "/_fake/stats")
    bad = await post(http, "/_fake/sessions", {"provider": "hubspot", "count": 0})
    async with aiohttp.ClientSession(fake.url) as anonymous:
        refused = await get(anonymous, "/_fake/stats")

    assert created[0] == 200
    assert len(set(session_ids)) == 500
    assert first["status"] == "connected"
    assert stats == (
        200,
        {
            "requests": {STATUS: 1},
            "faultsInjected": 0,
            "sessions": {"pending": 499, "connected": 1},
        },
    )
    assert bad[0] == 400
    assert refused[0] == 401


async def test_control_route_adds_organisations(
    fake: FakeOutlit, http: aiohttp.ClientSession
) -> None:
    """/_fake/organizations adds organisations with providers connected."""
    body = {"apiKeys": ["ok_a", "ok_b"], "providers": ["stripe", "hubspot"]}

    added = await post(http, "/_fake/organizations", body)
    again = await post(http, "/_fake/organizations", body)
    unknown = await post(
        http, "/_fake/organizations", {"apiKeys": ["ok_c"], "providers": ["acme"]}
    )

    assert added == (200, {"organizations": 2})
    assert again[0] == 400
    assert unknown[0] == 400
    assert set(fake.organization("ok_b").connections) == {"stripe", "hubspot"}


def test_ten_thousand_sessions_are_cheap() -> None:
    """Opening 10,000 sessions by hand takes a fraction of a second."""
    fake = FakeOutlit(KEY)

    started = time.perf_counter()
    ids = [
        fake.create_session("hubspot", outcome="connected", after_polls=2)
        for _ in range(10_000)
    ]

    assert time.perf_counter() - started < 2.0
    assert len(set(ids)) == 10_000


@pytest.fixture
def process_env() -> Iterator[dict[str, str]]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    yield env


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a hard kill on Windows")
async def test_runs_as_a_process(process_env: dict[str, str]) -> None:
    """The module prints its URL and key, serves, and stops on SIGTERM."""
    command = [
        sys.executable,
        "-m",
        "outlit_async.testing",
        "--port",
        "0",
        "--key",
        KEY,
        "--session-outcome",
        "connected",
        "--after-polls",
        "1",
    ]
    with anyio.fail_after(30):
        async with await anyio.open_process(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=process_env,
            cwd=ROOT,
        ) as process:
            assert process.stdout is not None
            lines = BufferedByteReceiveStream(process.stdout)
            url_line = (await lines.receive_until(b"\n", 1000)).decode()
            key_line = (await lines.receive_until(b"\n", 1000)).decode()
            url = url_line.removeprefix("OUTLIT_BASE_URL=")
            async with aiohttp.ClientSession(url, headers=bearer(KEY)) as http:
                session_id = await open_session(http)
                answer = await poll(http, session_id)
            process.terminate()
            code = await process.wait()

    assert url_line.startswith("OUTLIT_BASE_URL=http://127.0.0.1:")
    assert key_line == f"OUTLIT_API_KEY={KEY}"
    assert answer["status"] == "connected"
    assert code == 0


# The package itself.


def test_the_package_imports_nothing_from_the_client() -> None:
    """The fake is a server: it imports only its own modules and libraries."""
    package = Path(outlit_async.testing.__file__).parent
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level in (0, 1), module.name
                assert not (node.module or "").startswith("outlit_async"), module.name
            elif isinstance(node, ast.Import):
                assert not any(
                    alias.name.startswith("outlit_async") for alias in node.names
                )


def test_public_names() -> None:
    """__all__ is a sorted tuple naming exactly the public classes and constants."""
    names = outlit_async.testing.__all__

    assert isinstance(names, tuple)
    assert {
        "FakeOutlit",
        "Fault",
        "SessionScript",
        "SyncScript",
        "RecordedRequest",
    } <= set(names)
    assert FakeOutlit.__module__ == "outlit_async.testing"
