"""
Faults FakeOutlit can inject, and the plan that decides which request gets one.

A fault either replaces the answer, and then the request is not acted on
(``status``, ``drop``, ``html``), or disguises the normal answer of a request
that was acted on (``truncated``, ``extra_fields``, ``unknown_status``,
``missing_field``). ``slow`` delays a normal answer. The functions at the end of
this module rewrite answers; the server applies them.
"""

from __future__ import annotations

import copy
import random
from collections import defaultdict, deque
from collections.abc import Collection, Sequence
from datetime import datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any, Final, Literal, final

import attrs

from ._shapes import INVALID_REQUEST, NOT_CONNECTED, error, limit_exceeded

FaultKind = Literal[
    "status",
    "drop",
    "slow",
    "truncated",
    "html",
    "extra_fields",
    "unknown_status",
    "missing_field",
]

NOT_ACTED_ON: Final = frozenset({"status", "drop", "html"})
CAPABILITIES: Final = "/api/integrations/capabilities"
DISCONNECT: Final = "/api/integrations/disconnect"
EXTRA_FIELD: Final = "futureField"
EXTRA_VALUE: Final = "added in a later API version"


def _retry_after(value: str | float | datetime | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return format_datetime(value, usegmt=True)
    if float(value).is_integer():
        return str(int(value))
    return f"{value:g}"


@final
@attrs.frozen(repr=False)
class Fault:
    """
    One injected fault. Build it with the class methods, such as ``Fault.drop()``.

    :param kind: what the fault does
    :param code: the status of a ``status`` or ``html`` fault
    :param retry_after: the ``Retry-After`` header of a ``status`` fault
    :param body: the JSON body of a ``status`` fault, instead of the usual one
    :param seconds: the delay of a ``slow`` fault
    :param name: the field a ``missing_field`` fault removes
    :param value: the status an ``unknown_status`` fault answers
    """

    kind: FaultKind
    code: int | None = None
    retry_after: str | None = None
    body: dict[str, Any] | None = attrs.field(default=None, hash=False)
    seconds: float | None = None
    name: str | None = None
    value: str | None = None

    @classmethod
    def status(
        cls,
        code: int,
        retry_after: str | float | datetime | None = None,
        body: dict[str, Any] | None = None,
    ) -> Fault:
        """
        Answer ``code`` with a JSON error body; the request is not acted on.

        The body is shaped as the API shapes that status: ``{"error": ...}``,
        the plan-limit shape for 403 and the not-connected shape for a 404 of
        the disconnect route.

        :param code: the HTTP status
        :param retry_after: the ``Retry-After`` header: seconds, an HTTP date as
            a string, or an aware datetime
        :param body: the JSON body to send instead
        """
        if not 100 <= code <= 599:
            raise ValueError(f"HTTP status must be within 100-599, not {code}")
        return cls(
            "status", code=code, retry_after=_retry_after(retry_after), body=body
        )

    @classmethod
    def drop(cls) -> Fault:
        """
        Close the connection without an answer; the request is not acted on.
        """
        return cls("drop")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """
        Wait, then act on the request and answer normally.

        The state changes after the wait, whether or not the client is still
        there: a client that timed out cannot tell whether its request was
        acted on, as with a real server.

        :param seconds: how long to wait before acting
        """
        if seconds < 0:
            raise ValueError("a slow fault needs a delay of zero or more seconds")
        return cls("slow", seconds=seconds)

    @classmethod
    def truncated(cls) -> Fault:
        """
        Act on the request, then send the first half of its JSON body.
        """
        return cls("truncated")

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """
        Answer an HTML error page, as a proxy would; the request is not acted on.

        :param status: the HTTP status of the page
        """
        return cls("html", code=status)

    @classmethod
    def extra_fields(cls) -> Fault:
        """
        Act on the request and answer with unknown fields added at every level.
        """
        return cls("extra_fields")

    @classmethod
    def unknown_status(cls, value: str = "paused") -> Fault:
        """
        Act on the request and answer with every ``status`` value replaced.

        The replaced values are the top-level ``status`` and those of nested
        objects (the items of the list route, the models of sync-status). On the
        connection-status route the poll is not counted and the session's script
        does not advance: the fault disguises the answer the session would give
        without the poll.

        :param value: the status sent instead
        """
        return cls("unknown_status", value=value)

    @classmethod
    def missing_field(cls, name: str | None = None) -> Fault:
        """
        Act on the request and answer without a required field.

        :param name: the field to remove, from the top-level object, or from
            every nested object when the top level has no such field; by default
            the route's first required field (``cliName`` of every entry for
            the capabilities of all providers)
        """
        return cls("missing_field", name=name)

    @property
    def acted_on(self) -> bool:
        """
        Whether the request that meets this fault changes the state.
        """
        return self.kind not in NOT_ACTED_ON

    def __repr__(self) -> str:
        args: list[str] = []
        if self.kind == "status":
            args.append(str(self.code))
            if self.retry_after is not None:
                args.append(f"retry_after={self.retry_after!r}")
            if self.body is not None:
                args.append(f"body={self.body!r}")
        elif self.kind == "html":
            args.append(f"status={self.code}")
        elif self.kind == "slow":
            args.append(f"{self.seconds!r}")
        elif self.kind == "unknown_status":
            args.append(repr(self.value))
        elif self.kind == "missing_field" and self.name is not None:
            args.append(repr(self.name))
        return f"Fault.{self.kind}({', '.join(args)})"


TRANSIENT_FAULTS: Final[tuple[Fault, ...]] = (
    Fault.status(429, retry_after="0"),
    Fault.status(500),
    Fault.status(502),
    Fault.status(503),
    Fault.drop(),
    Fault.html(502),
    Fault.extra_fields(),
)


@final
class FaultPlan:
    """
    The faults waiting for requests, and a record of those applied.

    Each queued fault is consumed by one request. A fault queued for a session
    goes first, then one queued for the route, then, in random mode, the random
    draw. The random generator is drawn for every request in random mode, so the
    n-th request meets the same random fault whatever was queued.

    :param routes: the paths faults may be queued for
    """

    __slots__ = (
        "_by_route",
        "_by_session",
        "_kinds",
        "_random",
        "_rate",
        "_routes",
        "injected",
    )

    def __init__(self, routes: Collection[str]) -> None:
        self._routes = frozenset(routes)
        self._by_route: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._by_session: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._random: random.Random | None = None
        self._rate = 0.0
        self._kinds: tuple[Fault, ...] = TRANSIENT_FAULTS
        self.injected: list[tuple[str, Fault]] = []

    def __repr__(self) -> str:
        queued = sum(map(len, self._by_route.values()))
        queued += sum(map(len, self._by_session.values()))
        return (
            f"FaultPlan(queued={queued}, random_rate={self._rate}, "
            f"injected={len(self.injected)})"
        )

    def add(self, path: str, *faults: Fault) -> None:
        """
        Queue faults for a route, each consumed by one request, in order.

        :param path: the route, such as ``"/api/integrations/connect/status"``
        :param faults: the faults
        :raises ValueError: if the path is not one of the seven routes
        """
        if path not in self._routes:
            known = ", ".join(sorted(self._routes))
            raise ValueError(f"faults apply to the API routes ({known}), not {path!r}")
        self._by_route[path].extend(_checked(faults))

    def add_for_session(self, session_id: str, *faults: Fault) -> None:
        """
        Queue faults consumed only by status polls of one session.

        :param session_id: the session whose polls meet them
        :param faults: the faults
        """
        self._by_session[session_id].extend(_checked(faults))

    def random(
        self,
        rate: float,
        seed: int | None = None,
        kinds: Sequence[Fault] | None = None,
    ) -> None:
        """
        Give every request a chance of a random fault; a rate of 0 turns it off.

        :param rate: the probability that a request meets a fault
        :param seed: the seed of the generator, for a repeatable run
        :param kinds: the faults to choose from; by default those a correct
            client survives without losing state: 429 with ``Retry-After: 0``,
            500, 502, 503, a dropped connection, an HTML 502 and unknown fields
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"the fault rate must be within 0-1, not {rate}")
        chosen = TRANSIENT_FAULTS if kinds is None else tuple(_checked(kinds))
        if not chosen:
            raise ValueError("random faults need at least one kind")

        self._rate = rate
        self._kinds = chosen
        self._random = random.Random(seed) if rate > 0 else None

    def clear(self) -> None:
        """
        Forget queued faults, random mode and the record of injected faults.
        """
        self._by_route.clear()
        self._by_session.clear()
        self._random = None
        self._rate = 0.0
        self.injected.clear()

    def take(self, path: str, session_id: str | None = None) -> Fault | None:
        """
        Choose the fault for one request, if any, and record it as injected.

        :param path: the route of the request
        :param session_id: the polled session, for the connection-status route
        """
        drawn = self._draw()
        fault = _pop(self._by_session, session_id) or _pop(self._by_route, path)
        fault = fault or drawn
        if fault is not None:
            self.injected.append((path, fault))
        return fault

    def _draw(self) -> Fault | None:
        generator = self._random
        if generator is None:
            return None
        hit = generator.random() < self._rate
        kind = generator.choice(self._kinds)
        return kind if hit else None


def _checked(faults: Sequence[Fault]) -> list[Fault]:
    for fault in faults:
        if not isinstance(fault, Fault):
            raise TypeError(f"expected a Fault, got {type(fault).__name__}")
    return list(faults)


def _pop(queues: defaultdict[str, deque[Fault]], key: str | None) -> Fault | None:
    if key is None:
        return None
    queue = queues.get(key)
    if not queue:
        return None
    fault = queue.popleft()
    if not queue:
        del queues[key]
    return fault


def error_body(
    fault: Fault, path: str, *, plan: str, connections: int, limit: int
) -> dict[str, Any]:
    """
    Answer the JSON body of a ``status`` fault, shaped as the API shapes it.

    :param fault: the fault
    :param path: the route
    :param plan: the plan of the organisation, for a 403
    :param connections: its connection count, for a 403
    :param limit: its connection limit, for a 403
    """
    if fault.body is not None:
        return fault.body
    code = fault.code or 500
    if code == 403:
        return limit_exceeded(plan, connections, limit)
    if code == 404 and path == DISCONNECT:
        return dict(NOT_CONNECTED)
    return error(_ERRORS.get(code) or _phrase(code))


_ERRORS: Final = {
    400: INVALID_REQUEST,
    401: "Invalid credentials",
    404: "Not found",
    429: "Too many requests",
    500: "Internal server error",
}


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return f"HTTP {code}"


def html_page(code: int) -> str:
    """
    Answer the HTML error page a proxy in front of the API would send.

    :param code: the HTTP status
    """
    title = f"{code} {_phrase(code)}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


def disguise(fault: Fault, path: str, body: Any, query_provider: bool) -> Any:
    """
    Rewrite a normal answer for a fault that acts on the request.

    :param fault: an ``extra_fields``, ``unknown_status`` or ``missing_field`` fault
    :param path: the route
    :param body: the normal JSON body, left unchanged
    :param query_provider: whether a capabilities request named one provider
    :return: a rewritten copy
    """
    body = copy.deepcopy(body)
    provider_map = path == CAPABILITIES and not query_provider
    if fault.kind == "extra_fields":
        _add_extra_fields(body, top_level=not provider_map)
    elif fault.kind == "unknown_status":
        _replace_status(body, fault.value or "paused")
    elif fault.kind == "missing_field":
        name = fault.name or ("cliName" if provider_map else _first_key(body))
        if name is not None:
            _remove_field(body, name)
    return body


def _first_key(body: Any) -> str | None:
    if isinstance(body, dict):
        return next(iter(body), None)
    return None


def _add_extra_fields(value: Any, *, top_level: bool = True) -> None:
    if isinstance(value, dict):
        for child in value.values():
            _add_extra_fields(child)
        if top_level:
            value[EXTRA_FIELD] = EXTRA_VALUE
    elif isinstance(value, list):
        for child in value:
            _add_extra_fields(child)


def _replace_status(value: Any, status: str) -> None:
    if isinstance(value, dict):
        if isinstance(value.get("status"), str):
            value["status"] = status
        for child in value.values():
            _replace_status(child, status)
    elif isinstance(value, list):
        for child in value:
            _replace_status(child, status)


def _remove_field(body: Any, name: str) -> None:
    if isinstance(body, dict) and name in body:
        del body[name]
    else:
        _remove_nested(body, name)


def _remove_nested(value: Any, name: str) -> None:
    if isinstance(value, dict):
        value.pop(name, None)
        children: Any = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return
    for child in children:
        _remove_nested(child, name)
