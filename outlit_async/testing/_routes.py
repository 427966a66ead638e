"""
The seven routes of the Outlit integrations API, as functions of the state.

Each handler takes an authenticated :class:`Call` and returns a :class:`Reply`:
a status and a JSON body, ready for the server to send, or to disguise when a
fault says so. Validation messages follow the wording of the real API.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Final, final

import attrs

from ._catalog import ProviderSpec
from ._shapes import (
    INVALID_REQUEST,
    NOT_CONNECTED,
    Issue,
    error,
    issue,
    limit_exceeded,
)
from ._state import Connection, Organization, State, format_time

LIST: Final = "/api/integrations"
CAPABILITIES: Final = "/api/integrations/capabilities"
SETUP_STEP: Final = "/api/integrations/setup-step"
CONNECT: Final = "/api/integrations/connect"
CONNECTION_STATUS: Final = "/api/integrations/connect/status"
DISCONNECT: Final = "/api/integrations/disconnect"
SYNC_STATUS: Final = "/api/integrations/sync-status"

MIN_LENGTH: Final = "String must contain at least 1 character(s)"

_LIFECYCLE_TARGETS: Final = ("lead", "trial", "customer", "churned")
_LIFECYCLE_SOURCES: Final = {
    "hubspot": (
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
    ),
    "attio": ("lead", "qualified", "customer", "churned"),
}
_WEBHOOK_EVENTS: Final = {
    "stripe": (
        "customer.created",
        "customer.updated",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    ),
    "fireflies": ("Transcription completed",),
    "pylon": ("issue.created", "issue.updated", "issue.resolved"),
}


@final
@attrs.frozen
class Reply:
    """
    An answer to send: a status, a JSON body and, when known, its encoding.

    :param status: the HTTP status
    :param body: the JSON body
    :param encoded: the body already encoded, to spare the encoder
    :param headers: extra response headers
    """

    status: int
    body: Any
    encoded: bytes | None = None
    headers: Mapping[str, str] | None = None


@final
@attrs.frozen
class Call:
    """
    One authenticated API request, as the handlers see it.

    :param org: the organisation of the API key
    :param query: the query parameters
    :param body: the parsed JSON body, for POST routes
    :param acts: False when a fault asks for the answer without its side effects
    """

    org: Organization
    query: Mapping[str, str]
    body: Any = None
    acts: bool = True


Handler = Callable[[Call], Reply]


def invalid(*issues: Issue, message: str = INVALID_REQUEST) -> Reply:
    """
    Answer 400 with validation details.

    :param issues: what is wrong
    :param message: the ``error`` text
    """
    return Reply(400, error(message, list(issues)))


def parse_body(raw: bytes) -> tuple[Any, Reply | None]:
    """
    Parse a JSON request body.

    :param raw: the body as received
    :return: the parsed body, or None and the 400 reply for a malformed one
    """
    try:
        return json.loads(raw), None
    except ValueError as exc:
        return None, invalid(issue([], str(exc)), message="Invalid JSON body")


def js_type(value: object) -> str:
    """
    Name a JSON value's type as the API's validation messages do.

    :param value: a parsed JSON value
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


_Fields = Mapping[str, tuple[type, bool]]
_CONNECT_FIELDS: Final[_Fields] = {"provider": (str, True), "config": (dict, False)}
_SETUP_FIELDS: Final[_Fields] = {
    "provider": (str, True),
    "step": (str, True),
    "config": (dict, False),
}
_DISCONNECT_FIELDS: Final[_Fields] = {"provider": (str, True)}
_TYPE_NAMES: Final = {str: "string", dict: "object", int: "number"}


def body_issues(body: Any, fields: _Fields) -> list[Issue]:
    """
    Check a request body against the fields of its schema.

    :param body: the parsed body
    :param fields: each field's type and whether it is required; no others
        are allowed
    """
    if not isinstance(body, dict):
        return [issue([], f"Expected object, received {js_type(body)}")]

    issues: list[Issue] = []
    for name, (kind, required) in fields.items():
        if name not in body:
            if required:
                issues.append(issue([name], "Required"))
        elif not isinstance(body[name], kind) or isinstance(body[name], bool):
            expected = _TYPE_NAMES[kind]
            issues.append(
                issue([name], f"Expected {expected}, received {js_type(body[name])}")
            )

    unknown = [key for key in body if key not in fields]
    if unknown:
        keys = ", ".join(f"'{key}'" for key in unknown)
        issues.append(issue([], f"Unrecognized key(s) in object: {keys}"))
    return issues


@final
class Routes:
    """
    The handlers of the seven routes, bound to one state.

    :param state: the organisations and sessions
    :param base_url: answers the server's base URL, for connect and webhook URLs
    """

    __slots__ = ("_base_url", "_catalog", "_idle", "_state")

    def __init__(self, state: State, base_url: Callable[[], str]) -> None:
        self._state = state
        self._catalog = state.catalog
        self._base_url = base_url
        self._idle = {spec.id: _idle_integration(spec) for spec in self._catalog}

    def table(self) -> dict[str, tuple[str, Handler]]:
        """
        Answer each route's path, method and handler.
        """
        return {
            LIST: ("GET", self.list_integrations),
            CAPABILITIES: ("GET", self.capabilities),
            SETUP_STEP: ("POST", self.setup_step),
            CONNECT: ("POST", self.connect),
            CONNECTION_STATUS: ("GET", self.connection_status),
            DISCONNECT: ("POST", self.disconnect),
            SYNC_STATUS: ("GET", self.sync_status),
        }

    def list_integrations(self, call: Call) -> Reply:
        """
        ``GET /api/integrations[?connectedOnly=true]``.

        :param call: the request
        """
        flag = call.query.get("connectedOnly", "false")
        if flag not in ("true", "false"):
            return invalid(issue(["connectedOnly"], _expected_boolean(flag)))

        connections = call.org.connections
        items: list[dict[str, Any]] = []
        for spec in self._catalog:
            connection = connections.get(spec.id)
            if connection is not None:
                items.append(_integration(spec, connection))
            elif flag == "false":
                items.append(self._idle[spec.id])
        return Reply(200, {"items": items})

    def capabilities(self, call: Call) -> Reply:
        """
        ``GET /api/integrations/capabilities[?provider=]``; accepts CLI aliases.

        :param call: the request
        """
        name = call.query.get("provider")
        catalog = self._catalog
        if name is None:
            return Reply(200, catalog.capabilities, catalog.capabilities_json)

        spec = catalog.resolve(name)
        if spec is None:
            return self._invalid_provider(name)
        capability = catalog.capabilities[spec.id]
        return Reply(200, {"provider": capability}, catalog.envelope_json(spec.id))

    def connect(self, call: Call) -> Reply:
        """
        ``POST /api/integrations/connect``: a browser session or a direct connection.

        :param call: the request
        """
        body = call.body
        issues = body_issues(body, _CONNECT_FIELDS)
        if issues:
            return invalid(*issues)
        spec = self._catalog.get(body["provider"])
        if spec is None:
            return self._invalid_provider(body["provider"])

        if spec.mode == "browser":
            if "config" in body:
                message = f"{spec.name} connects through a browser session; omit config"
                return invalid(issue(["config"], message))
            return self._open_session(call.org, spec)

        issues = _credential_issues(spec, body.get("config", {}))
        if issues:
            return invalid(*issues)
        if call.org.at_limit(spec.id):
            return _limit_reply(call.org)
        connection, already = self._state.connect(call.org, spec.id)
        return Reply(
            200,
            {
                "connected": True,
                "connectionId": connection.connection_id,
                "alreadyConnected": already,
            },
        )

    def connection_status(self, call: Call) -> Reply:
        """
        ``GET /api/integrations/connect/status?sessionId=``; counts the poll.

        A session id that the organisation never received answers 400
        ``{"error": "Unknown session"}``: the id is a malformed parameter from
        the caller's point of view, and the route documents no 404.

        :param call: the request
        """
        session_id = call.query.get("sessionId")
        if session_id is None:
            return invalid(issue(["sessionId"], "Required"))
        if not session_id:
            return invalid(issue(["sessionId"], MIN_LENGTH))

        session = self._state.find_session(call.org, session_id)
        if session is None:
            message = "No connection session has this id"
            return invalid(issue(["sessionId"], message), message="Unknown session")
        if call.acts:
            self._state.poll_session(session)
        return Reply(200, session.to_json())

    def disconnect(self, call: Call) -> Reply:
        """
        ``POST /api/integrations/disconnect``.

        :param call: the request
        """
        body = call.body
        issues = body_issues(body, _DISCONNECT_FIELDS)
        if issues:
            return invalid(*issues)
        spec = self._catalog.get(body["provider"])
        if spec is None:
            return self._invalid_provider(body["provider"])

        if not self._state.disconnect(call.org, spec.id):
            return Reply(404, dict(NOT_CONNECTED))
        return Reply(200, {"success": True})

    def sync_status(self, call: Call) -> Reply:
        """
        ``GET /api/integrations/sync-status?provider=``; counts the poll.

        :param call: the request
        """
        name = call.query.get("provider")
        if name is None:
            return invalid(issue(["provider"], "Required"))
        spec = self._catalog.get(name)
        if spec is None:
            return self._invalid_provider(name)

        org = call.org
        if call.acts:
            connection = self._state.poll_sync(org, spec.id)
        else:
            connection = org.connections.get(spec.id)
        syncs = [] if connection is None else connection.syncs.values()
        return Reply(
            200,
            {
                "provider": spec.id,
                "name": spec.name,
                "category": spec.category,
                "status": "not_connected" if connection is None else "connected",
                "syncs": [sync.to_json() for sync in syncs],
            },
        )

    def setup_step(self, call: Call) -> Reply:
        """
        ``POST /api/integrations/setup-step``: CRM mappings or webhook setup.

        :param call: the request
        """
        body = call.body
        issues = body_issues(body, _SETUP_FIELDS)
        if not issues and not body["step"]:
            issues = [issue(["step"], MIN_LENGTH)]
        if issues:
            return invalid(*issues)
        spec = self._catalog.get(body["provider"])
        if spec is None:
            return self._invalid_provider(body["provider"])

        step = spec.step(body["step"])
        if step is None:
            return invalid(issue(["step"], _unsupported_step(spec, body["step"])))
        connection = call.org.connections.get(spec.id)
        if connection is None:
            message = f"Connect {spec.id} before running its setup steps"
            return invalid(
                issue(["provider"], message), message="Integration is not connected"
            )

        config = body.get("config")
        if step.id == "mappings":
            return _mappings(spec, connection, config)
        return self._webhooks(spec, connection, config)

    def _open_session(self, org: Organization, spec: ProviderSpec) -> Reply:
        state = self._state
        already = spec.id in org.connections
        if already:
            session = state.open_connected_session(org, spec.id)
        elif org.at_limit(spec.id):
            return _limit_reply(org)
        else:
            session = state.open_scripted_session(org, spec.id)
        return Reply(
            200,
            {
                "sessionId": session.id,
                "connectUrl": f"{self._base_url()}/connect/{session.id}",
                "alreadyConnected": already,
            },
        )

    def _webhooks(
        self, spec: ProviderSpec, connection: Connection, config: dict[str, Any] | None
    ) -> Reply:
        given = (config or {}).get("webhookSecret")
        if given is not None and not isinstance(given, str):
            found = js_type(given)
            path: list[str | int] = ["config", "webhookSecret"]
            return invalid(issue(path, f"Expected string, received {found}"))

        setup = connection.setup.get("webhooks")
        if setup is None or given:
            secret = given or "whsec_" + secrets.token_urlsafe(24)
            setup = connection.setup["webhooks"] = {"webhookSecret": secret}
        url = f"{self._base_url()}/api/webhooks/{spec.id}/{connection.connection_id}"
        return Reply(
            200,
            {
                "status": "configured",
                "provider": spec.id,
                "step": "webhooks",
                "connectionId": connection.connection_id,
                "webhookUrl": url,
                "webhookSecret": setup["webhookSecret"],
                "events": list(_WEBHOOK_EVENTS.get(spec.id, ())),
            },
        )

    def _invalid_provider(self, name: object) -> Reply:
        message = self._catalog.enum_message + repr(name)
        return invalid(issue(["provider"], message), message="Invalid provider")


def _expected_boolean(value: str) -> str:
    return f"Invalid enum value. Expected 'true' | 'false', received '{value}'"


def _idle_integration(spec: ProviderSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "category": spec.category,
        "status": "not_connected",
        "connectionId": None,
        "lastDataReceivedAt": None,
        "syncStatus": None,
        "errorMessage": None,
    }


def _integration(spec: ProviderSpec, connection: Connection) -> dict[str, Any]:
    received = connection.last_data_received_at()
    return {
        "id": spec.id,
        "name": spec.name,
        "category": spec.category,
        "status": "connected",
        "connectionId": connection.connection_id,
        "lastDataReceivedAt": None if received is None else format_time(received),
        "syncStatus": connection.sync_status(),
        "errorMessage": connection.error_message(),
    }


def _limit_reply(org: Organization) -> Reply:
    limit = org.connection_limit or 0
    return Reply(403, limit_exceeded(org.plan, len(org.connections), limit))


def _credential_issues(spec: ProviderSpec, config: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    for field in spec.fields:
        path: list[str | int] = ["config", field.key]
        value = config.get(field.key)
        if value is None:
            issues.append(issue(path, "Required"))
        elif not isinstance(value, str):
            issues.append(issue(path, f"Expected string, received {js_type(value)}"))
        elif not value:
            issues.append(issue(path, MIN_LENGTH))
        elif field.choices and value not in field.choices:
            expected = " | ".join(f"'{choice}'" for choice in field.choices)
            message = f"Invalid enum value. Expected {expected}, received '{value}'"
            issues.append(issue(path, message))
    return issues


def _unsupported_step(spec: ProviderSpec, step: str) -> str:
    if not spec.steps:
        return f"{spec.id} has no setup steps"
    supported = ", ".join(s.id for s in spec.steps)
    return f"Unsupported setup step '{step}' for {spec.id}. Supported: {supported}"


def _mappings(
    spec: ProviderSpec, connection: Connection, config: dict[str, Any] | None
) -> Reply:
    sources = _LIFECYCLE_SOURCES.get(spec.id, _LIFECYCLE_TARGETS)
    common = {
        "provider": spec.id,
        "step": "mappings",
        "connectionId": connection.connection_id,
    }
    if config is None:
        field = {
            "key": "mappings",
            "label": "Lifecycle stage mappings",
            "required": True,
            "sources": list(sources),
            "targets": list(_LIFECYCLE_TARGETS),
        }
        return Reply(200, {"status": "config_required", **common, "fields": [field]})

    issues = _mapping_issues(config.get("mappings"), sources)
    if issues:
        return invalid(*issues)
    connection.setup["mappings"] = config
    return Reply(
        200, {"status": "configured", **common, "mappings": config["mappings"]}
    )


def _mapping_issues(mappings: Any, sources: tuple[str, ...]) -> list[Issue]:
    if mappings is None:
        return [issue(["config", "mappings"], "Required")]
    if not isinstance(mappings, list):
        found = js_type(mappings)
        return [issue(["config", "mappings"], f"Expected array, received {found}")]

    issues: list[Issue] = []
    for index, mapping in enumerate(mappings):
        path: list[str | int] = ["config", "mappings", index]
        if not isinstance(mapping, dict):
            issues.append(issue(path, f"Expected object, received {js_type(mapping)}"))
            continue
        for key, allowed in (("source", sources), ("target", _LIFECYCLE_TARGETS)):
            value = mapping.get(key)
            if value is None:
                issues.append(issue([*path, key], "Required"))
            elif value not in allowed:
                expected = " | ".join(f"'{choice}'" for choice in allowed)
                message = f"Invalid enum value. Expected {expected}, received {value!r}"
                issues.append(issue([*path, key], message))
    return issues
