"""
The state behind FakeOutlit: organisations, connections, sync models and sessions.

Nothing here speaks HTTP. The route handlers and the Python API of FakeOutlit
both change the state through :class:`State`, so a session completed by hand and
one completed by its script end the same way.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any, Final, Literal, final

import attrs

from ._catalog import Catalog

SessionStatus = Literal["pending", "connected", "failed", "expired"]
Outcome = Literal["connected", "failed", "expired"]

DENIED: Final = "User denied access"
SYNC_FAILED: Final = "Sync failed: the provider API answered 401 Unauthorized"
OUTCOMES: Final[tuple[Outcome, ...]] = ("connected", "failed", "expired")


def utc_now() -> datetime:
    """
    Answer the current time in UTC, to the millisecond the API reports.
    """
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_time(value: datetime) -> str:
    """
    Format an aware time the way the API does: ISO 8601 in UTC with a ``Z``.

    Milliseconds are shown, as the API shows them; a time with a finer fraction
    keeps all six digits, so what a test sets is what the client reads back.

    :param value: an aware datetime
    """
    utc = value.astimezone(timezone.utc)
    timespec = "milliseconds" if utc.microsecond % 1000 == 0 else "microseconds"
    return utc.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        return (values,)
    return tuple(values)


def _masked(_: str) -> str:
    return "'***'"


@final
@attrs.frozen
class SessionScript:
    """
    What becomes of a connect session, and when.

    The session answers ``outcome`` from its ``after_polls``-th status poll on:
    ``after_polls=1`` means the first poll already sees it, and ``after_polls=0``
    means the session is created in that state.

    :param outcome: ``"connected"``, ``"failed"`` or ``"expired"``
    :param after_polls: the poll that first answers the outcome
    :param error: the error a failed session reports; ``"User denied access"``
        when not given
    """

    outcome: Outcome = attrs.field(
        default="connected", validator=attrs.validators.in_(OUTCOMES)
    )
    after_polls: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    error: str | None = None


SessionScripter = Callable[[str, int], "SessionScript | None"]


@final
@attrs.frozen
class SyncScript:
    """
    How the sync models of a new connection progress.

    Once a provider is connected, each of its ``PENDING`` models moves on at the
    ``succeed_after_polls``-th sync-status poll of that provider (0: as soon as
    it connects): to ``SUCCESS`` with ``lastSyncedAt`` set to now, or, for the
    models named in ``fail_models``, to ``FAILED`` with an ``errorMessage``.

    :param succeed_after_polls: the sync-status poll that first sees the result
    :param fail_models: the models that fail instead
    """

    succeed_after_polls: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    fail_models: tuple[str, ...] = attrs.field(default=(), converter=_strings)


@final
@attrs.define
class SyncModel:
    """
    The sync state of one model of a connection.

    :param model: the model name, such as ``"StripeCustomer"``
    :param status: an open string: ``PENDING``, ``SUCCESS``, ``FAILED``, ...
    :param last_synced_at: when the model last synced, aware
    :param error_message: why the last sync failed
    """

    model: str
    status: str = "PENDING"
    last_synced_at: datetime | None = None
    error_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        """
        Answer the model as the sync-status route shows it.
        """
        synced = self.last_synced_at
        return {
            "model": self.model,
            "status": self.status,
            "lastSyncedAt": None if synced is None else format_time(synced),
            "errorMessage": self.error_message,
        }


@final
@attrs.define(eq=False)
class Connection:
    """
    A connected provider of one organisation.

    :param provider: the provider id
    :param connection_id: the id the connect route answers
    :param syncs: the sync models, by name
    :param polls: the sync-status polls seen since the provider connected
    :param setup: the follow-up steps configured, by step token
    """

    provider: str
    connection_id: str
    syncs: dict[str, SyncModel]
    polls: int = 0
    setup: dict[str, dict[str, Any]] = attrs.field(factory=dict, repr=False)

    def sync_status(self) -> str:
        """
        Summarise the models in one status, as the list route does.
        """
        statuses = [sync.status for sync in self.syncs.values()]
        if statuses and all(status == "SUCCESS" for status in statuses):
            return "SUCCESS"
        if "FAILED" in statuses:
            return "FAILED"
        return next((s for s in statuses if s != "SUCCESS"), "PENDING")

    def error_message(self) -> str | None:
        """
        Answer the first model error, if any model has one.
        """
        errors = (sync.error_message for sync in self.syncs.values())
        return next((error for error in errors if error), None)

    def last_data_received_at(self) -> datetime | None:
        """
        Answer the latest sync time of any model.
        """
        times = [s.last_synced_at for s in self.syncs.values() if s.last_synced_at]
        return max(times, default=None)


@final
@attrs.define(eq=False)
class Organization:
    """
    One organisation: an API key and its own connections and sessions.

    The attributes are mutable, so a test can change the plan or the limit of
    an organisation while it runs. The key never appears in the repr.

    :param api_key: the key its requests carry
    :param plan: the plan named in a connection-limit answer
    :param connection_limit: how many providers it may connect; None for no limit
    :param id: an opaque organisation id
    :param connections: the connected providers, by provider id
    """

    api_key: str = attrs.field(repr=_masked)
    plan: str
    connection_limit: int | None
    id: str = attrs.field(factory=lambda: "org_" + secrets.token_hex(6))
    connections: dict[str, Connection] = attrs.field(factory=dict)

    def at_limit(self, provider: str) -> bool:
        """
        Tell whether connecting ``provider`` would exceed the connection limit.

        :param provider: the provider about to connect
        """
        limit = self.connection_limit
        if limit is None or provider in self.connections:
            return False
        return len(self.connections) >= limit


@final
@attrs.define(eq=False)
class FakeSession:
    """
    A browser connect session.

    The attributes are mutable: a test may set ``status`` by hand, though
    :meth:`FakeOutlit.complete_session` and its siblings also update the
    organisation's connections.

    :param id: the session id
    :param provider: the provider being connected
    :param status: ``pending``, ``connected``, ``failed`` or ``expired``
    :param error: why the session failed
    :param polls: the status polls seen (a faulted poll that was not acted on
        is not counted)
    :param script: what the session becomes, and after how many polls
    :param organization: the organisation that opened it
    """

    id: str
    provider: str
    status: SessionStatus = "pending"
    error: str | None = None
    polls: int = 0
    script: SessionScript | None = None
    organization: Organization = attrs.field(kw_only=True, repr=False)

    def to_json(self) -> dict[str, Any]:
        """
        Answer the session as the connection-status route shows it.
        """
        if self.status == "failed":
            error = self.error or DENIED
            return {"status": "failed", "provider": self.provider, "error": error}
        return {"status": self.status, "provider": self.provider}


@final
class State:
    """
    Every organisation and session of one FakeOutlit, and the rules that move them.

    :param catalog: the providers
    :param plan: the plan of organisations added without one
    :param connection_limit: the limit of organisations added without one
    :param session_script: the script of sessions opened by the connect route
    :param sync_script: how the models of new connections progress
    """

    __slots__ = (
        "_opened",
        "catalog",
        "connection_limit",
        "organizations",
        "plan",
        "session_script",
        "sessions",
        "sync_script",
    )

    def __init__(
        self,
        catalog: Catalog,
        *,
        plan: str,
        connection_limit: int | None,
        session_script: SessionScript | SessionScripter | None,
        sync_script: SyncScript | None,
    ) -> None:
        self.catalog = catalog
        self.plan = plan
        self.connection_limit = connection_limit
        self.session_script = session_script
        self.sync_script = sync_script
        self.organizations: dict[str, Organization] = {}
        self.sessions: dict[str, FakeSession] = {}
        self._opened = 0

    def add_organization(
        self,
        api_key: str,
        *,
        plan: str | None = None,
        connection_limit: int | None = None,
    ) -> Organization:
        """
        Add an organisation with its own, empty state.

        :param api_key: its key
        :param plan: its plan; the state's default when None
        :param connection_limit: its limit; the state's default when None
        :raises ValueError: if the key is empty or already taken
        """
        if not api_key:
            raise ValueError("an organisation needs a non-empty API key")
        if api_key in self.organizations:
            raise ValueError("an organisation with that API key already exists")

        limit = self.connection_limit if connection_limit is None else connection_limit
        org = Organization(api_key, plan or self.plan, limit)
        self.organizations[api_key] = org
        return org

    def authenticate(self, authorization: str | None) -> Organization | None:
        """
        Find the organisation of an ``Authorization`` header.

        :param authorization: the header value, ``Bearer <key>``
        """
        if authorization is None or not authorization.startswith("Bearer "):
            return None
        return self.organizations.get(authorization[7:])

    def connect(self, org: Organization, provider: str) -> tuple[Connection, bool]:
        """
        Connect a provider, with its default models ``PENDING``.

        :param org: the organisation
        :param provider: a known provider id
        :return: the connection, and whether it already existed
        """
        existing = org.connections.get(provider)
        if existing is not None:
            return existing, True

        models = self.catalog.require(provider).models
        connection = Connection(
            provider,
            "conn_" + secrets.token_hex(8),
            {model: SyncModel(model) for model in models},
        )
        org.connections[provider] = connection
        if self.sync_script is not None and self.sync_script.succeed_after_polls == 0:
            _run_sync(connection, self.sync_script)
        return connection, False

    def disconnect(self, org: Organization, provider: str) -> bool:
        """
        Disconnect a provider; answer whether it was connected.

        :param org: the organisation
        :param provider: the provider id
        """
        return org.connections.pop(provider, None) is not None

    def open_session(
        self,
        org: Organization,
        provider: str,
        script: SessionScript | None,
    ) -> FakeSession:
        """
        Open a pending session, settled at once when its script says ``after_polls=0``.

        :param org: the organisation opening it
        :param provider: the provider to connect
        :param script: what the session becomes
        """
        session = FakeSession(
            str(uuid.uuid4()), provider, script=script, organization=org
        )
        self.sessions[session.id] = session
        if script is not None and script.after_polls == 0:
            self.settle(session, script.outcome, script.error)
        return session

    def open_scripted_session(self, org: Organization, provider: str) -> FakeSession:
        """
        Open a session for the connect route, with the state's session script.

        :param org: the organisation opening it
        :param provider: the provider to connect
        """
        script = self.session_script
        if callable(script):
            script = script(provider, self._opened)
        self._opened += 1
        return self.open_session(org, provider, script)

    def open_connected_session(self, org: Organization, provider: str) -> FakeSession:
        """
        Open a session that is connected already, for a provider that is.

        :param org: the organisation
        :param provider: the connected provider
        """
        session = FakeSession(
            str(uuid.uuid4()), provider, status="connected", organization=org
        )
        self.sessions[session.id] = session
        return session

    def find_session(self, org: Organization, session_id: str) -> FakeSession | None:
        """
        Find a session of one organisation; other organisations' sessions are unknown.

        :param org: the organisation asking
        :param session_id: the session id
        """
        session = self.sessions.get(session_id)
        if session is None or session.organization is not org:
            return None
        return session

    def poll_session(self, session: FakeSession) -> None:
        """
        Count one status poll and apply the session's script.

        :param session: the polled session
        """
        session.polls += 1
        script = session.script
        if (
            script is not None
            and session.status == "pending"
            and session.polls >= script.after_polls
        ):
            self.settle(session, script.outcome, script.error)

    def settle(
        self, session: FakeSession, outcome: Outcome, error: str | None = None
    ) -> None:
        """
        Move a session to an outcome; a connected one connects its provider.

        :param session: the session
        :param outcome: ``connected``, ``failed`` or ``expired``
        :param error: the error of a failed session
        """
        if outcome == "connected":
            self.connect(session.organization, session.provider)
            session.error = None
        elif outcome == "failed":
            session.error = error or DENIED
        else:
            session.error = None
        session.status = outcome

    def poll_sync(self, org: Organization, provider: str) -> Connection | None:
        """
        Count one sync-status poll of a provider and apply the sync script.

        :param org: the organisation
        :param provider: the provider polled
        :return: the connection, or None when the provider is not connected
        """
        connection = org.connections.get(provider)
        if connection is None:
            return None

        connection.polls += 1
        script = self.sync_script
        if script is not None and connection.polls >= script.succeed_after_polls:
            _run_sync(connection, script)
        return connection


def _run_sync(connection: Connection, script: SyncScript) -> None:
    now = utc_now()
    for sync in connection.syncs.values():
        if sync.status != "PENDING":
            continue
        if sync.model in script.fail_models:
            sync.status = "FAILED"
            sync.error_message = SYNC_FAILED
        else:
            sync.status = "SUCCESS"
            sync.last_synced_at = now
            sync.error_message = None
