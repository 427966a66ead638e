"""
``client.integrations``: the seven routes, and the watches built on them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, final, overload
from urllib.parse import urlsplit

from ._convert import structure, structure_capabilities, structure_connect
from ._errors import ResponseValidationError
from ._models import (
    BrowserSession,
    Capability,
    ConnectionStatus,
    DirectConnection,
    DisconnectResult,
    Integration,
    Provider,
    SetupStepResult,
    SyncStatus,
    WatchKey,
    provider_id,
)
from ._polling import Outcome, PollLoop, Watch, connection_outcome
from ._transport import is_loopback, secret_texts

if TYPE_CHECKING:
    from ._transport import Transport

__all__ = ("ArgumentRefused", "Integrations")


class ArgumentRefused(ValueError):
    """
    An argument refused before any request was sent: empty, or out of range.
    """


class ArgumentTypeRefused(ArgumentRefused, TypeError):
    """
    An argument of a type the call does not take.
    """


LIST: Final = "/api/integrations"
CAPABILITIES: Final = "/api/integrations/capabilities"
SETUP_STEP: Final = "/api/integrations/setup-step"
CONNECT: Final = "/api/integrations/connect"
CONNECTION_STATUS: Final = "/api/integrations/connect/status"
DISCONNECT: Final = "/api/integrations/disconnect"
SYNC_STATUS: Final = "/api/integrations/sync-status"
_CONNECTION_STATUS_ROUTE: Final = f"GET {CONNECTION_STATUS}"
_SYNC_STATUS_ROUTE: Final = f"GET {SYNC_STATUS}"

BrowserProviderId = Literal[
    "hubspot",
    "attio",
    "slack",
    "google-calendar",
    "google-mail",
    "gmail",
    Provider.HUBSPOT,
    Provider.ATTIO,
    Provider.SLACK,
    Provider.GOOGLE_CALENDAR,
    Provider.GOOGLE_MAIL,
]
"""The providers whose connect answers a :class:`BrowserSession`."""

DirectProviderId = Literal[
    "fireflies",
    "granola",
    "posthog",
    "stripe",
    "supabase",
    "clerk",
    "pylon",
    Provider.FIREFLIES,
    Provider.GRANOLA,
    Provider.POSTHOG,
    Provider.STRIPE,
    Provider.SUPABASE,
    Provider.CLERK,
    Provider.PYLON,
]
"""The providers whose connect takes credentials: a :class:`DirectConnection`."""


@final
class Integrations:
    """
    The integrations API of one client: one method per route, and watches.
    """

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def __repr__(self) -> str:
        return f"Integrations(base_url={self._transport.settings.base_url!r})"

    async def list(self, *, connected_only: bool = False) -> list[Integration]:
        """
        Every provider and whether it is connected, or only the connected ones.
        """
        params = {"connectedOnly": "true"} if connected_only else None
        body = await self._transport.request("GET", LIST, params=params)
        route = f"GET {LIST}"
        if type(body) is not dict or type(body.get("items")) is not list:
            raise ResponseValidationError(
                route=route, status=200, errors=["$.items: expected an array"]
            )
        return [_item(item, index, route) for index, item in enumerate(body["items"])]

    @overload
    async def capabilities(self, provider: None = None) -> Mapping[str, Capability]: ...

    @overload
    async def capabilities(self, provider: Provider | str) -> Capability: ...

    async def capabilities(
        self, provider: Provider | str | None = None
    ) -> Capability | Mapping[str, Capability]:
        """
        How ``provider`` is set up, or a mapping of every provider id to that.
        """
        params = None if provider is None else {"provider": check_provider(provider)}
        body = await self._transport.request("GET", CAPABILITIES, params=params)
        return structure_capabilities(
            body, route=f"GET {CAPABILITIES}", single=provider is not None
        )

    @overload
    async def connect(
        self, provider: BrowserProviderId, config: None = None
    ) -> BrowserSession: ...

    @overload
    async def connect(
        self, provider: DirectProviderId, config: Mapping[str, Any]
    ) -> DirectConnection: ...

    @overload
    async def connect(
        self, provider: Provider | str, config: Mapping[str, Any] | None = None
    ) -> DirectConnection | BrowserSession: ...

    async def connect(
        self, provider: Provider | str, config: Mapping[str, Any] | None = None
    ) -> DirectConnection | BrowserSession:
        """
        Connect ``provider``.

        For a provider id this package knows, the type checker already knows
        which of the two answers comes back; for another id it is the union.

        A direct provider takes its credentials in ``config`` and is connected
        when this returns. A browser provider answers a :class:`BrowserSession`:
        send the user to its ``connect_url``, then watch its ``session_id``.
        The values of ``config`` are secrets: they are sent, and never logged.

        :raises ConnectionLimitError: if the plan allows no more connections.
        :raises BadRequestError: if the provider or a credential is refused.
        """
        body: dict[str, Any] = {"provider": check_provider(provider)}
        if config is not None:
            body["config"] = _config(config)
        answer = await self._transport.request(
            "POST", CONNECT, body=body, secrets=secret_texts(config)
        )
        result = structure_connect(answer, route=f"POST {CONNECT}")
        if isinstance(result, BrowserSession):
            self._check_connect_url(result.connect_url)
        return result

    async def connection_status(self, session_id: str) -> ConnectionStatus:
        """
        The current state of a browser connection session.
        """
        body = await self._transport.request(
            "GET", CONNECTION_STATUS, params={"sessionId": check_session_id(session_id)}
        )
        return structure(body, ConnectionStatus, route=f"GET {CONNECTION_STATUS}")

    async def disconnect(self, provider: Provider | str) -> DisconnectResult:
        """
        Disconnect ``provider``.

        :raises NotConnectedError: if it was not connected.
        """
        body = await self._transport.request(
            "POST", DISCONNECT, body={"provider": check_provider(provider)}
        )
        return structure(body, DisconnectResult, route=f"POST {DISCONNECT}")

    async def sync_status(self, provider: Provider | str) -> SyncStatus:
        """
        Whether ``provider`` is connected, and the sync state of each of its models.
        """
        body = await self._transport.request(
            "GET", SYNC_STATUS, params={"provider": check_provider(provider)}
        )
        return structure(body, SyncStatus, route=f"GET {SYNC_STATUS}")

    async def setup_step(
        self,
        provider: Provider | str,
        step: str,
        config: Mapping[str, Any] | None = None,
    ) -> SetupStepResult:
        """
        Run a follow-up setup step, such as ``"mappings"`` or ``"webhooks"``.

        The answer is kept whole; ``result.config_required`` tells whether the
        step needs ``config`` first.
        """
        if not isinstance(step, str) or not step:
            raise ArgumentRefused("step must be a non-empty string, such as 'mappings'")
        body: dict[str, Any] = {"provider": check_provider(provider), "step": step}
        if config is not None:
            body["config"] = _config(config)
        answer = await self._transport.request(
            "POST", SETUP_STEP, body=body, secrets=secret_texts(config)
        )
        if type(answer) is not dict:
            raise ResponseValidationError(
                route=f"POST {SETUP_STEP}", status=200, errors=["$: expected an object"]
            )
        return SetupStepResult(answer)

    def watch_connection(
        self,
        session_id: str,
        *,
        interval: float = 2.0,
        timeout: float = 300.0,
        max_failures: int | None = None,
    ) -> Watch[ConnectionStatus]:
        """
        The transitions of a connection session, ending with its terminal one.

        The first item is the first state seen (``previous`` is None), then one
        per change. A failed or expired session, or ``timeout`` passing, ends
        the watch with a transition whose ``error`` says which. No poll is sent
        after a terminal state.

        :param interval: seconds between polls.
        :param timeout: seconds to wait for a terminal state.
        :param max_failures: failed polls in a row, each after the transport's
            own retries, before the watch ends with the last error. By default
            it never gives up: a transient failure only waits for the next poll.
        """
        key = WatchKey("connection", check_session_id(session_id))
        loop = self.connection_loop(
            key.target, interval=interval, max_failures=max_failures
        )
        return Watch(
            loop,
            key=key,
            timeout=check_positive("timeout", timeout),
            finish=connection_outcome,
        )

    async def wait_for_connection(
        self,
        session_id: str,
        *,
        interval: float = 2.0,
        timeout: float = 300.0,
        max_failures: int | None = None,
    ) -> ConnectionStatus:
        """
        Wait until a connection session ends, and return its connected status.

        :raises ConnectionFailedError: if the session failed.
        :raises ConnectionExpiredError: if the session expired.
        :raises PollTimeoutError: if ``timeout`` passed first.
        """
        watch = self.watch_connection(
            session_id, interval=interval, timeout=timeout, max_failures=max_failures
        )
        async for change in watch:
            if change.terminal:
                if change.error is not None:
                    raise change.error
                assert change.current is not None
                return change.current
        raise AssertionError("a connection watch ends with a terminal transition")

    def watch_sync(
        self,
        provider: Provider | str,
        *,
        interval: float = 30.0,
        until: Callable[[SyncStatus], bool] | None = None,
        timeout: float | None = None,
        max_failures: int | None = None,
    ) -> Watch[SyncStatus]:
        """
        The transitions of a provider's sync: connection status and every model.

        A transition comes whenever the connection status, or any model's
        status, ``last_synced_at`` or error changes. The watch runs until the
        caller stops iterating, ``until(status)`` is true (that transition is
        terminal), or ``timeout`` passes.

        :param until: ends the watch when it returns true, e.g.
            ``lambda s: s.all_synced or s.any_failed``.
        :param max_failures: as for :meth:`watch_connection`.
        """
        key = WatchKey("sync", check_provider(provider))
        loop = self.sync_loop(key.target, interval=interval, max_failures=max_failures)
        return Watch(
            loop,
            key=key,
            timeout=None if timeout is None else check_positive("timeout", timeout),
            finish=sync_finish(until),
        )

    def connection_loop(
        self, session_id: str, *, interval: float, max_failures: int | None
    ) -> PollLoop[ConnectionStatus]:
        """
        A poll loop over the status of ``session_id``.
        """
        return PollLoop(
            self._transport,
            CONNECTION_STATUS,
            {"sessionId": check_session_id(session_id)},
            _connection_status,
            interval=check_positive("interval", interval),
            target=session_id,
            max_failures=check_max_failures(max_failures),
        )

    def sync_loop(
        self, provider: str, *, interval: float, max_failures: int | None
    ) -> PollLoop[SyncStatus]:
        """
        A poll loop over the sync status of ``provider``.
        """
        return PollLoop(
            self._transport,
            SYNC_STATUS,
            {"provider": check_provider(provider)},
            _sync_status,
            interval=check_positive("interval", interval),
            target=provider,
            max_failures=check_max_failures(max_failures),
        )

    def _check_connect_url(self, connect_url: str) -> None:
        base = urlsplit(self._transport.settings.base_url)
        scheme, host = _link_origin(connect_url) or ("", "")
        secure = scheme == "https" or (scheme == "http" and is_loopback(host))
        if not secure or host != base.hostname:
            got = f"one on {scheme}://{host}" if host else "no plain host in it"
            raise ResponseValidationError(
                route=f"POST {CONNECT}",
                status=200,
                errors=[
                    f"$.connectUrl: expected an https link on {base.hostname}, "
                    f"got {got}"
                ],
            )


def sync_finish(
    until: Callable[[SyncStatus], bool] | None,
) -> Callable[[SyncStatus, str], Outcome]:
    """
    The outcome rule of a sync watch: it ends when ``until`` says so.
    """
    if until is None:
        return _never
    return lambda status, _: (bool(until(status)), None)


def _never(status: SyncStatus, provider: str) -> Outcome:
    return False, None


def _connection_status(body: object) -> ConnectionStatus:
    return structure(body, ConnectionStatus, route=_CONNECTION_STATUS_ROUTE)


def _sync_status(body: object) -> SyncStatus:
    return structure(body, SyncStatus, route=_SYNC_STATUS_ROUTE)


def _link_origin(url: str) -> tuple[str, str] | None:
    """
    The scheme and host of ``url``, or None unless it is readable and its
    authority is a plain ``host[:port]``.

    User info is refused, and so is a backslash, which browsers read as the
    end of the host where ``urlsplit`` does not: in
    ``https://evil.example\\@app.outlit.ai`` a browser goes to evil.example.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if port == 0 or "@" in parts.netloc or "\\" in parts.netloc:
        return None
    return parts.scheme, parts.hostname or ""


def _item(item: object, index: int, route: str) -> Integration:
    try:
        return structure(item, Integration, route=route)
    except ResponseValidationError as exc:
        errors = [e.replace("$", f"$.items[{index}]", 1) for e in exc.errors]
        raise ResponseValidationError(route=route, status=200, errors=errors) from None


def check_provider(provider: Provider | str) -> str:
    if not isinstance(provider, str) or not provider:
        raise ArgumentRefused(
            f"provider must be a non-empty provider id, got {provider!r}"
        )
    return provider_id(provider)


def check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not session_id:
        raise ArgumentRefused(
            f"session_id must be a non-empty string, got {session_id!r}"
        )
    return session_id


def _config(config: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        kind = type(config).__name__
        raise ArgumentTypeRefused(
            f"config must be a mapping of field names to values, not {kind}"
        )
    return dict(config)


def check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ArgumentRefused(
            f"{name} must be a positive number of seconds, got {value!r}"
        )
    return float(value)


def check_max_failures(value: int | None) -> int | None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < 1
    ):
        raise ArgumentRefused(
            f"max_failures must be a positive integer or None, got {value!r}"
        )
    return value
