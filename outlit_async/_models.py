"""
The answers of the Outlit integrations API as frozen attrs classes.

Fields are snake_case; the converter in ``_convert`` maps the API's camelCase.
Statuses the API documents are enum members; a value it adds later is kept as
the plain string it sent.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, final

import attrs

__all__ = (
    "BrowserSession",
    "Capability",
    "ConnectionState",
    "ConnectionStatus",
    "CredentialField",
    "DirectConnection",
    "DisconnectResult",
    "Integration",
    "IntegrationStatus",
    "ModelSync",
    "PostConnectStep",
    "Provider",
    "SetupStepResult",
    "SyncState",
    "SyncStatus",
    "Transition",
    "WatchKey",
)


class Provider(str, enum.Enum):
    """
    The providers Outlit connects.

    Every method that takes a provider also takes a plain string, so an id
    Outlit adds later works without a new release of this package.
    """

    HUBSPOT = "hubspot"
    ATTIO = "attio"
    SLACK = "slack"
    FIREFLIES = "fireflies"
    GRANOLA = "granola"
    GOOGLE_CALENDAR = "google-calendar"
    GOOGLE_MAIL = "google-mail"
    POSTHOG = "posthog"
    STRIPE = "stripe"
    SUPABASE = "supabase"
    CLERK = "clerk"
    PYLON = "pylon"

    GMAIL = "google-mail"

    def __str__(self) -> str:
        return self.value

    @property
    def connects_in_browser(self) -> bool:
        """
        Whether connecting starts a browser session rather than taking credentials.
        """
        return self in _BROWSER_PROVIDERS

    @classmethod
    def _missing_(cls, value: object) -> Provider | None:
        if isinstance(value, str):
            canonical = _ALIASES.get(value.lower(), value.lower())
            for member in cls:
                if member.value == canonical:
                    return member
        return None


_ALIASES: dict[str, str] = {"gmail": "google-mail"}

_BROWSER_PROVIDERS = frozenset(
    {
        Provider.HUBSPOT,
        Provider.ATTIO,
        Provider.SLACK,
        Provider.GOOGLE_CALENDAR,
        Provider.GOOGLE_MAIL,
    }
)

_PROVIDERS_BY_ID: dict[str, Provider] = {
    **{member.value: member for member in Provider},
    **{alias: Provider(canonical) for alias, canonical in _ALIASES.items()},
}


def provider_id(provider: Provider | str) -> str:
    """
    The id to send for ``provider``: aliases resolved, unknown ids as given.
    """
    if isinstance(provider, Provider):
        return provider.value
    known = _PROVIDERS_BY_ID.get(provider)
    return known.value if known is not None else provider


def as_provider(value: str) -> Provider | str:
    """
    The :class:`Provider` member for ``value``, or ``value`` itself if unknown.
    """
    return _PROVIDERS_BY_ID.get(value, value)


class ConnectionState(str, enum.Enum):
    """
    The state of a browser connection session. Only ``PENDING`` is not terminal.
    """

    PENDING = "pending"
    CONNECTED = "connected"
    FAILED = "failed"
    EXPIRED = "expired"

    def __str__(self) -> str:
        return self.value


class IntegrationStatus(str, enum.Enum):
    """
    Whether a provider is connected for the organisation.
    """

    CONNECTED = "connected"
    NOT_CONNECTED = "not_connected"

    def __str__(self) -> str:
        return self.value


class SyncState(str, enum.Enum):
    """
    The sync states Outlit documents for a data model; others arrive as strings.
    """

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    PENDING = "PENDING"

    def __str__(self) -> str:
        return self.value


@final
@attrs.frozen
class Integration:
    """
    One provider as the organisation sees it.
    """

    id: Provider | str
    name: str
    category: str
    status: IntegrationStatus | str
    connection_id: str | None = None
    last_data_received_at: datetime | None = None
    sync_status: str | None = None
    error_message: str | None = None

    @property
    def connected(self) -> bool:
        """
        Whether the provider is connected.
        """
        return self.status == IntegrationStatus.CONNECTED


@final
@attrs.frozen
class CredentialField:
    """
    One credential a direct provider needs in ``config``.
    """

    key: str
    label: str
    secret: bool = False


@final
@attrs.frozen
class PostConnectStep:
    """
    A follow-up step after connecting, run with ``setup_step``.
    """

    id: str
    required: bool
    supported: bool
    command: str | None = None


@final
@attrs.frozen
class Capability:
    """
    How a provider is set up: its mode, the credentials it needs, its next steps.
    """

    cli_name: str
    provider_id: Provider | str
    setup_mode: str
    credential_type: str | None = None
    required_fields: tuple[CredentialField, ...] = ()
    commands: tuple[str, ...] = ()
    post_connect_steps: tuple[PostConnectStep, ...] = ()

    @property
    def connects_in_browser(self) -> bool:
        """
        Whether connecting starts a browser session.
        """
        return self.setup_mode == "browser_session"


@final
@attrs.frozen
class DirectConnection:
    """
    The answer to connecting a provider with credentials: it is connected now.
    """

    connected: bool
    connection_id: str
    already_connected: bool


@final
@attrs.frozen
class BrowserSession:
    """
    The answer to connecting a browser provider: a link for the user to open.

    Watch ``session_id`` with ``watch_connection`` or ``wait_for_connection``.
    """

    session_id: str
    connect_url: str
    already_connected: bool


@final
@attrs.frozen
class ConnectionStatus:
    """
    The state of a browser connection session.
    """

    status: ConnectionState | str
    provider: Provider | str
    error: str | None = None

    @property
    def terminal(self) -> bool:
        """
        Whether the session has ended: connected, failed or expired.

        A state this package does not know is not terminal: polling goes on
        until the watch's timeout.
        """
        return self.status in _TERMINAL_CONNECTION_STATES

    @property
    def connected(self) -> bool:
        """
        Whether the session ended connected.
        """
        return self.status == ConnectionState.CONNECTED


_TERMINAL_CONNECTION_STATES = frozenset(
    {ConnectionState.CONNECTED, ConnectionState.FAILED, ConnectionState.EXPIRED}
)


@final
@attrs.frozen
class ModelSync:
    """
    The sync of one data model of a provider (contacts, invoices, ...).
    """

    model: str
    status: SyncState | str
    last_synced_at: datetime | None = None
    error_message: str | None = None

    @property
    def succeeded(self) -> bool:
        """
        Whether the last sync of this model succeeded.
        """
        return self.status == SyncState.SUCCESS

    @property
    def failed(self) -> bool:
        """
        Whether the last sync of this model failed.
        """
        return self.status == SyncState.FAILED


@final
@attrs.frozen
class SyncStatus:
    """
    The connection and per-model sync state of one provider.
    """

    provider: Provider | str
    name: str
    category: str
    status: IntegrationStatus | str
    syncs: tuple[ModelSync, ...]

    @property
    def connected(self) -> bool:
        """
        Whether the provider is connected.
        """
        return self.status == IntegrationStatus.CONNECTED

    @property
    def all_synced(self) -> bool:
        """
        Whether the provider is connected and every model's sync succeeded.

        False while there are no models yet.
        """
        return (
            self.connected and bool(self.syncs) and all(s.succeeded for s in self.syncs)
        )

    @property
    def any_failed(self) -> bool:
        """
        Whether any model's last sync failed.
        """
        return any(s.failed for s in self.syncs)

    @property
    def settled(self) -> bool:
        """
        Whether every model has finished, succeeded or failed: nothing pending.
        """
        return (
            self.connected
            and bool(self.syncs)
            and all(s.succeeded or s.failed for s in self.syncs)
        )

    @property
    def failed_models(self) -> tuple[ModelSync, ...]:
        """
        The models whose last sync failed.
        """
        return tuple(s for s in self.syncs if s.failed)

    def model(self, name: str) -> ModelSync | None:
        """
        The sync of model ``name``, or None when the provider has no such model.
        """
        for sync in self.syncs:
            if sync.model == name:
                return sync
        return None


@final
@attrs.frozen
class DisconnectResult:
    """
    The answer to disconnecting a provider.
    """

    success: bool


@final
@attrs.frozen(repr=False, unsafe_hash=False)
class SetupStepResult(Mapping[str, Any]):
    """
    The answer to a setup step, kept whole.

    Each step answers its own shape, so the result is a read-only mapping of
    the JSON it sent, with the documented fields also readable as attributes.
    Its repr names the keys only: a step can answer secrets, such as a
    webhook signing secret.
    """

    data: Mapping[str, Any]

    @property
    def status(self) -> str | None:
        """
        The step's status, such as ``"config_required"`` or ``"configured"``.
        """
        value = self.data.get("status")
        return value if isinstance(value, str) else None

    @property
    def config_required(self) -> bool:
        """
        Whether the step needs ``config`` before it can finish.
        """
        return self.status == "config_required"

    @property
    def step(self) -> str | None:
        """
        The step this answer is for, when the server names it.
        """
        value = self.data.get("step")
        return value if isinstance(value, str) else None

    @property
    def webhook_url(self) -> str | None:
        """
        The webhook URL a webhook step registered, when it answers one.
        """
        value = self.data.get("webhookUrl")
        return value if isinstance(value, str) else None

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"SetupStepResult(status={self.status!r}, keys={sorted(self.data)!r})"


WatchKind = Literal["connection", "sync"]


@final
@attrs.frozen
class WatchKey:
    """
    What a watch follows: a connection session or a provider's sync.

    :ivar kind: ``"connection"`` or ``"sync"``.
    :ivar target: the session id, or the provider id.
    :ivar tag: the caller's own label for the watch, such as an organisation id.
    """

    kind: WatchKind
    target: str
    tag: object = None


T = TypeVar("T", ConnectionStatus, SyncStatus)


@final
@attrs.frozen
class Transition(Generic[T]):
    """
    One change seen by a watch.

    :ivar key: what is watched.
    :ivar previous: the state before, or None on the first observation.
    :ivar current: the state now; None only when a watch ended before any
        answer came.
    :ivar at: when the change was seen (aware UTC).
    :ivar terminal: whether this is the watch's last transition.
    :ivar error: why the watch ended, when it did not end as hoped: a failed
        or expired session, a timeout, or the error that stopped its polls.
    """

    key: WatchKey
    previous: T | None
    current: T | None
    at: datetime
    terminal: bool = False
    error: BaseException | None = None
