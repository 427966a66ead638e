"""
FakeOutlit: a stateful, in-process aiohttp server of the Outlit integrations API.

One aiohttp handler receives every request. API requests go through one
responder: it authenticates, asks the fault plan for a fault, runs the route's
handler (which returns a status and a JSON body), lets the fault disguise the
answer, sends it and logs it. The connect page and the control routes
(``/_fake/...``) sit beside the API and never meet a fault.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Final, final

import attrs
from aiohttp import web

from ._catalog import Catalog, SetupMode
from ._faults import Fault, FaultPlan, disguise, error_body, html_page
from ._page import connect_page, result_page
from ._records import RecordedRequest
from ._routes import (
    CAPABILITIES,
    CONNECTION_STATUS,
    Call,
    Handler,
    Reply,
    Routes,
    invalid,
    js_type,
    parse_body,
)
from ._shapes import INVALID_CREDENTIALS, error, issue
from ._state import (
    DENIED,
    OUTCOMES,
    FakeSession,
    Organization,
    Outcome,
    SessionScript,
    SessionScripter,
    State,
    SyncModel,
    SyncScript,
)

DEFAULT_KEY: Final = "ok_test_key"
MAX_CONTROL_SESSIONS: Final = 1_000_000
_JSON: Final = "application/json"
_HTML: Final = "text/html"
_SHUTDOWN_TIMEOUT: Final = 0.5
_BACKLOG: Final = 2048


def _encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _json(reply: Reply) -> web.Response:
    data = reply.encoded if reply.encoded is not None else _encode(reply.body)
    return web.Response(
        body=data, status=reply.status, content_type=_JSON, headers=reply.headers
    )


def _html(status: int, text: str) -> web.Response:
    return web.Response(text=text, status=status, content_type=_HTML)


def _query_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@final
class FakeOutlit:
    """
    A stateful, in-process server of the seven routes of the Outlit integrations API.

    Use it as an async context manager, or call :meth:`start` and :meth:`close`::

        async with FakeOutlit() as fake:
            client = AsyncOutlit(fake.api_key, base_url=fake.url)

    :param api_key: the key of the default organisation
    :param host: the address to listen on
    :param port: the port to listen on; 0 picks a free one, read back from :attr:`url`
    :param connection_limit: how many providers an organisation may connect;
        None for no limit
    :param plan: the plan an organisation reports in a connection-limit answer
    :param session_script: what becomes of the sessions the connect route
        opens: None (they stay pending until changed by hand), one
        :class:`SessionScript` for all, or a callable of the provider id and the
        session's index (0 for the first session the route opens) answering a
        script or None
    :param sync_script: how the sync models of new connections progress; None
        leaves them ``PENDING`` until :meth:`set_sync` moves them
    :param record: whether to keep a :class:`RecordedRequest` of each request
    :param extra_providers: providers beyond the public twelve, id to
        ``"browser"`` or ``"direct"`` (which takes an ``apiKey``)
    """

    __slots__ = (
        "_catalog",
        "_counts",
        "_default",
        "_host",
        "_port",
        "_record",
        "_records",
        "_routes",
        "_runner",
        "_state",
        "_table",
        "_url",
        "faults",
    )

    def __init__(
        self,
        api_key: str = DEFAULT_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        connection_limit: int | None = None,
        plan: str = "free",
        session_script: SessionScript | SessionScripter | None = None,
        sync_script: SyncScript | None = None,
        record: bool = True,
        extra_providers: Mapping[str, SetupMode] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._catalog = Catalog(extra_providers)
        self._state = State(
            self._catalog,
            plan=plan,
            connection_limit=connection_limit,
            session_script=session_script,
            sync_script=sync_script,
        )
        self._default = self._state.add_organization(api_key)
        self._routes = Routes(self._state, lambda: self.url)
        self._table: dict[str, tuple[str, Handler]] = self._routes.table()
        self._record = record
        self._records: list[RecordedRequest] = []
        self._counts: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self.faults = FaultPlan(self._table)

    def __repr__(self) -> str:
        where = self._url or "not running"
        orgs = len(self._state.organizations)
        return f"<FakeOutlit {where} organizations={orgs}>"

    async def __aenter__(self) -> FakeOutlit:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """
        The base URL clients use, such as ``http://127.0.0.1:41234``.

        :raises RuntimeError: if the server is not running
        """
        if self._url is None:
            raise RuntimeError("FakeOutlit is not running: use 'async with' or start()")
        return self._url

    @property
    def api_key(self) -> str:
        """
        The key of the default organisation.
        """
        return self._default.api_key

    async def start(self) -> None:
        """
        Start serving.

        :raises RuntimeError: if it is already running
        """
        if self._runner is not None:
            raise RuntimeError("FakeOutlit is already running")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port, backlog=_BACKLOG)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise

        self._runner = runner
        self._url = _base_url(runner.addresses[0])

    async def close(self) -> None:
        """
        Stop serving and release the port; closing twice is harmless.

        Requests still in flight (a slow fault, say) get half a second to finish.
        """
        runner, self._runner = self._runner, None
        self._url = None
        if runner is not None:
            await runner.cleanup()

    def add_organization(
        self,
        api_key: str,
        *,
        plan: str | None = None,
        connection_limit: int | None = None,
    ) -> Organization:
        """
        Add an organisation with its own state, reached with its own key.

        :param api_key: the organisation's key
        :param plan: its plan; the server's when None
        :param connection_limit: its limit; the server's when None (set the
            returned organisation's ``connection_limit`` to lift a server-wide one)
        :raises ValueError: if another organisation has that key
        """
        return self._state.add_organization(
            api_key, plan=plan, connection_limit=connection_limit
        )

    def organization(self, key: str | None = None) -> Organization:
        """
        Find an organisation by key; the default organisation when key is None.

        :param key: the organisation's key
        :raises LookupError: if no organisation has that key
        """
        if key is None:
            return self._default
        org = self._state.organizations.get(key)
        if org is None:
            raise LookupError("no organisation has that API key")
        return org

    def create_session(
        self,
        provider: str,
        *,
        outcome: Outcome | None = None,
        after_polls: int = 3,
        error: str | None = None,
        key: str | None = None,
    ) -> str:
        """
        Open a connect session without an HTTP request, and answer its id.

        :param provider: the provider id
        :param outcome: ``"connected"``, ``"failed"`` or ``"expired"`` to script
            the session; None to leave it pending until changed by hand
        :param after_polls: the status poll that first answers the outcome
            (0: the session starts in it)
        :param error: the error of a failed session
        :param key: the organisation's key; the default organisation when None
        :raises ValueError: if the provider or the outcome is unknown
        """
        self._catalog.require(provider)
        script = None
        if outcome is not None:
            script = SessionScript(outcome, after_polls, error)
        org = self.organization(key)
        return self._state.open_session(org, provider, script).id

    def session(self, session_id: str) -> FakeSession:
        """
        Find a session of any organisation.

        :param session_id: the session id
        :raises KeyError: if no session has that id
        """
        return self._state.sessions[session_id]

    def complete_session(self, session_id: str) -> None:
        """
        Connect a session now; its provider becomes connected for its organisation.

        :param session_id: the session id
        """
        self._state.settle(self.session(session_id), "connected")

    def fail_session(self, session_id: str, error: str = DENIED) -> None:
        """
        Fail a session now.

        :param session_id: the session id
        :param error: the error its status answers
        """
        self._state.settle(self.session(session_id), "failed", error)

    def expire_session(self, session_id: str) -> None:
        """
        Expire a session now.

        :param session_id: the session id
        """
        self._state.settle(self.session(session_id), "expired")

    def connect_provider(self, provider: str, *, key: str | None = None) -> str:
        """
        Connect a provider directly, with its default sync models ``PENDING``.

        The plan's connection limit does not apply. Connecting a connected
        provider changes nothing.

        :param provider: the provider id
        :param key: the organisation's key; the default organisation when None
        :return: the connection id
        """
        self._catalog.require(provider)
        connection, _ = self._state.connect(self.organization(key), provider)
        return connection.connection_id

    def disconnect_provider(self, provider: str, *, key: str | None = None) -> bool:
        """
        Disconnect a provider; answer whether it was connected.

        :param provider: the provider id
        :param key: the organisation's key; the default organisation when None
        """
        return self._state.disconnect(self.organization(key), provider)

    def default_models(self, provider: str) -> tuple[str, ...]:
        """
        Answer the sync models a new connection of a provider starts with.

        :param provider: the provider id
        """
        return self._catalog.require(provider).models

    def set_sync(
        self,
        provider: str,
        model: str,
        status: str = "SUCCESS",
        *,
        last_synced_at: datetime | None = None,
        error_message: str | None = None,
        key: str | None = None,
    ) -> None:
        """
        Set the sync state of one model, connecting the provider first if needed.

        :param provider: the provider id
        :param model: the model name; a model the provider lacks is added
        :param status: the model status, any string
        :param last_synced_at: when it last synced; must be aware
        :param error_message: why it failed
        :param key: the organisation's key; the default organisation when None
        :raises ValueError: if ``last_synced_at`` is naive or the provider unknown
        """
        if last_synced_at is not None and last_synced_at.utcoffset() is None:
            raise ValueError("last_synced_at must be an aware datetime")
        self._catalog.require(provider)

        connection, _ = self._state.connect(self.organization(key), provider)
        connection.syncs[model] = SyncModel(
            model, status, last_synced_at, error_message
        )

    @property
    def requests(self) -> list[RecordedRequest]:
        """
        The requests received, in order of arrival (empty when ``record=False``).
        """
        return sorted(self._records, key=lambda record: record.at)

    def requests_to(self, path: str, **query: object) -> list[RecordedRequest]:
        """
        Answer the recorded requests to one path whose query has the given values.

        :param path: the path, such as ``"/api/integrations/connect/status"``
        :param query: query values to match; ``True`` matches ``"true"``
        """
        wanted = {name: _query_text(value) for name, value in query.items()}
        return [
            record
            for record in self.requests
            if record.path == path
            and all(record.query.get(name) == value for name, value in wanted.items())
        ]

    def clear_requests(self) -> None:
        """
        Forget the recorded requests; :attr:`request_counts` keeps counting.
        """
        self._records.clear()

    @property
    def request_counts(self) -> dict[str, int]:
        """
        How many requests each path received since the start, recorded or not.
        """
        return dict(self._counts)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in self._table:
            return await self._api(request, path)
        if path.startswith("/connect/"):
            return await self._page(request, path)
        if path.startswith("/_fake/"):
            return await self._control(request, path)

        response = _json(Reply(404, error("Not found")))
        self._log(request, path, None, time.monotonic(), response.status, False)
        return response

    async def _api(self, request: web.Request, path: str) -> web.StreamResponse:
        arrived = time.monotonic()
        method, handler = self._table[path]
        org = self._state.authenticate(request.headers.get("Authorization"))
        if request.method != method:
            reply = Reply(405, error("Method not allowed"), headers={"Allow": method})
            return self._finish(request, path, None, arrived, _json(reply), org)

        body: Any = None
        body_error: Reply | None = None
        if method == "POST":
            body, body_error = parse_body(await request.read())
        query = request.query
        session_id = query.get("sessionId") if path == CONNECTION_STATUS else None
        fault = self.faults.take(path, session_id)

        if fault is not None and not fault.acted_on:
            response = self._refuse(request, path, fault, org)
            return self._finish(request, path, body, arrived, response, org)
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.seconds or 0.0)

        if org is None:
            reply = Reply(401, dict(INVALID_CREDENTIALS))
        elif body_error is not None:
            reply = body_error
        else:
            reply = handler(Call(org, query, body, _acts(path, fault)))
        response = self._disguised(path, query, reply, fault)
        return self._finish(request, path, body, arrived, response, org)

    def _refuse(
        self,
        request: web.Request,
        path: str,
        fault: Fault,
        org: Organization | None,
    ) -> web.StreamResponse:
        code = fault.code or 500
        if fault.kind == "html":
            return _html(code, html_page(code))
        if fault.kind == "drop":
            transport = request.transport
            if transport is not None:
                transport.close()
            return web.Response()

        org = org or self._default
        count = len(org.connections)
        limit = count if org.connection_limit is None else org.connection_limit
        body = error_body(fault, path, plan=org.plan, connections=count, limit=limit)
        headers = None
        if fault.retry_after is not None:
            headers = {"Retry-After": fault.retry_after}
        return _json(Reply(code, body, headers=headers))

    def _disguised(
        self,
        path: str,
        query: Mapping[str, str],
        reply: Reply,
        fault: Fault | None,
    ) -> web.Response:
        if fault is None or fault.kind == "slow":
            return _json(reply)
        if fault.kind == "truncated":
            data = reply.encoded if reply.encoded is not None else _encode(reply.body)
            return _json(attrs.evolve(reply, encoded=data[: len(data) // 2]))

        named = path == CAPABILITIES and "provider" in query
        body = disguise(fault, path, reply.body, named)
        return _json(Reply(reply.status, body, headers=reply.headers))

    def _finish(
        self,
        request: web.Request,
        path: str,
        body: Any,
        arrived: float,
        response: web.StreamResponse,
        org: Organization | None,
    ) -> web.StreamResponse:
        transport = request.transport
        dropped = transport is None or transport.is_closing()
        status = None if dropped else response.status
        self._log(request, path, body, arrived, status, org is not None)
        return response

    def _log(
        self,
        request: web.Request,
        path: str,
        body: Any,
        arrived: float,
        status: int | None,
        authorized: bool,
    ) -> None:
        self._counts[path] += 1
        if self._record:
            self._records.append(
                RecordedRequest(
                    request.method,
                    path,
                    dict(request.query),
                    body,
                    arrived,
                    status,
                    authorized,
                )
            )

    async def _page(self, request: web.Request, path: str) -> web.StreamResponse:
        arrived = time.monotonic()
        parts = path.split("/")[2:]
        session = self._state.sessions.get(parts[0]) if parts else None
        action = parts[1] if len(parts) == 2 else None

        if len(parts) > 2 or (len(parts) == 2 and action not in ("approve", "deny")):
            response = _html(404, result_page("Not found", "There is no such page."))
        elif session is None:
            message = "This connection request does not exist."
            response = _html(404, result_page("Unknown connection request", message))
        elif session.status == "expired":
            message = "This connection request has expired. Start a new one."
            response = _html(410, result_page("Connection request expired", message))
        elif action is None:
            response = self._show(request, session)
        elif request.method != "POST":
            message = "Use the buttons on the connection page."
            response = _html(405, result_page("Method not allowed", message))
            response.headers["Allow"] = "POST"
        else:
            response = self._decide(session, approve=action == "approve")
        self._log(request, path, None, arrived, response.status, False)
        return response

    def _show(self, request: web.Request, session: FakeSession) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            message = "Use the buttons on the connection page."
            response = _html(405, result_page("Method not allowed", message))
            response.headers["Allow"] = "GET, HEAD"
            return response
        if session.status != "pending":
            return _html(409, self._settled_page(session))
        name = self._catalog.require(session.provider).name
        return _html(200, connect_page(session.id, name))

    def _decide(self, session: FakeSession, *, approve: bool) -> web.Response:
        if session.status != "pending":
            return _html(409, self._settled_page(session))

        name = self._catalog.require(session.provider).name
        if approve:
            self._state.settle(session, "connected")
            page = result_page(f"{name} connected", "You can return to the app.")
        else:
            self._state.settle(session, "failed", DENIED)
            page = result_page("Access denied", f"{name} was not connected.")
        return _html(200, page)

    def _settled_page(self, session: FakeSession) -> str:
        name = self._catalog.require(session.provider).name
        if session.status == "connected":
            return result_page(f"{name} connected", "This request is already done.")
        message = session.error or "This connection request was not completed."
        return result_page("Connection request closed", message)

    async def _control(self, request: web.Request, path: str) -> web.StreamResponse:
        org = self._state.authenticate(request.headers.get("Authorization"))
        if org is None:
            return _json(Reply(401, dict(INVALID_CREDENTIALS)))
        if path == "/_fake/stats" and request.method == "GET":
            return _json(Reply(200, self._stats()))
        if path == "/_fake/sessions" and request.method == "POST":
            body, body_error = parse_body(await request.read())
            return _json(body_error or self._bulk_sessions(org, body))
        if path == "/_fake/organizations" and request.method == "POST":
            body, body_error = parse_body(await request.read())
            return _json(body_error or self._bulk_organizations(body))
        return _json(Reply(404, error("Not found")))

    def _stats(self) -> dict[str, Any]:
        sessions = Counter(s.status for s in self._state.sessions.values())
        return {
            "requests": dict(self._counts),
            "faultsInjected": len(self.faults.injected),
            "sessions": dict(sessions),
        }

    def _bulk_sessions(self, org: Organization, body: Any) -> Reply:
        problems = _bulk_issues(body)
        if problems:
            return invalid(*problems)
        provider = body["provider"]
        if self._catalog.get(provider) is None:
            message = self._catalog.enum_message + repr(provider)
            return invalid(issue(["provider"], message), message="Invalid provider")

        outcome = body.get("outcome")
        script = None
        if outcome is not None:
            script = SessionScript(
                outcome, body.get("afterPolls", 3), body.get("error")
            )
        ids = [
            self._state.open_session(org, provider, script).id
            for _ in range(body["count"])
        ]
        return Reply(200, {"sessionIds": ids})

    def _bulk_organizations(self, body: Any) -> Reply:
        keys = body.get("apiKeys") if isinstance(body, dict) else None
        providers = body.get("providers", []) if isinstance(body, dict) else None
        if not isinstance(keys, list) or not all(
            isinstance(key, str) and key for key in keys
        ):
            return invalid(issue(["apiKeys"], "Expected an array of keys"))
        taken = self._state.organizations
        if len(set(keys)) != len(keys) or any(key in taken for key in keys):
            return invalid(issue(["apiKeys"], "Each key must be new and unique"))
        if not isinstance(providers, list) or not all(
            isinstance(name, str) and self._catalog.get(name) for name in providers
        ):
            return invalid(issue(["providers"], "Expected an array of provider ids"))

        for key in keys:
            org = self._state.add_organization(key)
            for name in providers:
                self._state.connect(org, self._catalog.require(name).id)
        return Reply(200, {"organizations": len(keys)})


def _acts(path: str, fault: Fault | None) -> bool:
    # An unknown status on a status poll disguises the answer the session would
    # give without the poll: the poll is neither counted nor scripted.
    return not (
        fault is not None
        and fault.kind == "unknown_status"
        and path == CONNECTION_STATUS
    )


def _bulk_issues(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return [issue([], f"Expected object, received {js_type(body)}")]

    problems = []
    if not isinstance(body.get("provider"), str):
        problems.append(issue(["provider"], "Required: a provider id"))
    count = body.get("count")
    if (
        not isinstance(count, int)
        or isinstance(count, bool)
        or not 1 <= count <= MAX_CONTROL_SESSIONS
    ):
        problems.append(issue(["count"], f"Expected 1 to {MAX_CONTROL_SESSIONS}"))
    if body.get("outcome") not in (None, *OUTCOMES):
        problems.append(issue(["outcome"], "Expected connected, failed or expired"))
    after = body.get("afterPolls", 3)
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        problems.append(issue(["afterPolls"], "Expected an integer of 0 or more"))
    if not isinstance(body.get("error", ""), (str, type(None))):
        problems.append(issue(["error"], "Expected string"))
    return problems


def _base_url(address: Any) -> str:
    host, port = address[0], address[1]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
