"""
The exceptions of ``outlit_async``, all under one root::

    OutlitError
    ├── ConfigurationError           bad settings, found before any request
    ├── APIError                     something went wrong with a request
    │   ├── APIStatusError           the server answered an error status
    │   │   ├── BadRequestError          400, with the validation ``details``
    │   │   ├── AuthenticationError      401
    │   │   ├── ConnectionLimitError     403, the plan's connection limit
    │   │   ├── NotConnectedError        404 from disconnect
    │   │   ├── RateLimitError           429
    │   │   └── ServerError              5xx
    │   ├── APIConnectionError       no answer: refused, reset, dropped
    │   │   └── APITimeoutError          no answer in time
    │   └── ResponseValidationError  an answer that does not fit the schema
    └── PollError                    the outcome of a watched connection
        ├── ConnectionFailedError        the session ended ``failed``
        ├── ConnectionExpiredError       the session ended ``expired``
        └── PollTimeoutError             the watch ran out of time

An error carries the route, the status and the parsed answer, never the request
body: a request body can hold provider credentials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = (
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConnectionExpiredError",
    "ConnectionFailedError",
    "ConnectionLimitError",
    "NotConnectedError",
    "OutlitError",
    "PollError",
    "PollTimeoutError",
    "RateLimitError",
    "ResponseValidationError",
    "ServerError",
    "ValidationIssue",
)


class OutlitError(Exception):
    """
    The root of every exception this package raises on purpose.
    """


class ConfigurationError(OutlitError, ValueError):
    """
    A setting that cannot work: no API key, a malformed or insecure base URL.
    """


class APIError(OutlitError):
    """
    A request to the Outlit API did not give a usable answer.

    :ivar route: the method and path, such as ``GET /api/integrations``.
    """

    route: str

    def __init__(self, message: str, *, route: str) -> None:
        super().__init__(message)
        self.route = route


class APIStatusError(APIError):
    """
    The server answered with an error status.

    :ivar status: the HTTP status code.
    :ivar body: the decoded JSON answer, or the raw text when it was not JSON.
    :ivar message: the server's own error text, when it gave one.
    :ivar retry_after: the seconds a ``Retry-After`` header asked to wait
        (capped at 60), when the answer had one.
    """

    status: int
    body: object
    message: str | None
    retry_after: float | None

    def __init__(
        self,
        message: str,
        *,
        route: str,
        status: int,
        body: object = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, route=route)
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.message = _text_field(body, "error") or _text_field(body, "message")


class ValidationIssue:
    """
    One problem the server found in a request: where, and what.
    """

    __slots__ = ("message", "path")

    path: tuple[str | int, ...]
    message: str

    def __init__(self, path: Sequence[str | int], message: str) -> None:
        self.path = tuple(path)
        self.message = message

    def __repr__(self) -> str:
        return f"ValidationIssue(path={self.path!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidationIssue):
            return NotImplemented
        return (self.path, self.message) == (other.path, other.message)

    def __hash__(self) -> int:
        return hash((self.path, self.message))


class BadRequestError(APIStatusError):
    """
    400: the server refused the request as invalid.

    :ivar details: each problem the server named, in its order.
    """

    details: tuple[ValidationIssue, ...]

    def __init__(
        self,
        message: str,
        *,
        route: str,
        status: int,
        body: object = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, route=route, status=status, body=body, retry_after=retry_after
        )
        self.details = _validation_issues(body)


class AuthenticationError(APIStatusError):
    """
    401: the API key was missing, malformed or revoked.
    """


class ConnectionLimitError(APIStatusError):
    """
    403: connecting one more provider would pass the plan's limit.

    :ivar code: the server's error code, ``plan_connection_limit_exceeded``.
    :ivar plan: the organisation's plan.
    :ivar limit: how many connections the plan allows.
    :ivar current_connections: how many the organisation has.
    """

    code: str | None
    feature: str | None
    plan: str | None
    limit: int | None
    current_connections: int | None

    def __init__(
        self,
        message: str,
        *,
        route: str,
        status: int,
        body: object = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, route=route, status=status, body=body, retry_after=retry_after
        )
        self.code = _text_field(body, "code")
        self.feature = _text_field(body, "feature")
        self.plan = _text_field(body, "plan")
        self.limit = _int_field(body, "limit")
        self.current_connections = _int_field(body, "currentConnections")


class NotConnectedError(APIStatusError):
    """
    404 from disconnect: the provider has no active connection.
    """


class RateLimitError(APIStatusError):
    """
    429: too many requests. ``retry_after`` says how long to wait, when the server said.
    """


class ServerError(APIStatusError):
    """
    5xx: the server failed. ``retry_after`` says how long to wait, when the server said.
    """


class APIConnectionError(APIError, ConnectionError):
    """
    No answer came: the connection was refused, reset or dropped.
    """


class APITimeoutError(APIConnectionError, TimeoutError):
    """
    No answer came within the client's ``timeout``.
    """


class ResponseValidationError(APIError):
    """
    The server answered, but not in the documented shape.

    :ivar status: the HTTP status of the answer.
    :ivar errors: one line per field that did not fit, each naming its path.
    """

    status: int
    errors: tuple[str, ...]

    def __init__(self, *, route: str, status: int, errors: Sequence[str]) -> None:
        self.status = status
        self.errors = tuple(errors)
        listed = "; ".join(self.errors)
        super().__init__(
            f"{route} answered a body that does not fit: {listed}", route=route
        )


class PollError(OutlitError):
    """
    A watch ended without reaching what it waited for.

    :ivar target: what was watched: a session id, or a provider for a sync watch.
    """

    target: str

    def __init__(self, message: str, *, target: str) -> None:
        super().__init__(message)
        self.target = target

    @property
    def session_id(self) -> str:
        """
        The watched session, for a connection watch.
        """
        return self.target


class ConnectionFailedError(PollError):
    """
    The session ended ``failed``: the user denied access or the provider refused.

    :ivar error: the server's explanation, when it gave one.
    """

    error: str | None

    def __init__(self, *, session_id: str, error: str | None) -> None:
        reason = f": {error}" if error else ""
        super().__init__(f"session {session_id} failed{reason}", target=session_id)
        self.error = error


class ConnectionExpiredError(PollError):
    """
    The session ended ``expired``: nobody finished the browser step in time.
    """

    def __init__(self, *, session_id: str) -> None:
        super().__init__(f"session {session_id} expired", target=session_id)


class PollTimeoutError(PollError, TimeoutError):
    """
    The watch's own ``timeout`` passed before a terminal state was seen.

    The session itself may still complete later; an ``expired`` session is
    reported as :class:`ConnectionExpiredError` instead.

    :ivar timeout: the seconds the watch was given.
    """

    timeout: float

    def __init__(self, *, target: str, timeout: float) -> None:
        super().__init__(
            f"{target}: no terminal state within {timeout:g} s", target=target
        )
        self.timeout = timeout


def _text_field(body: object, name: str) -> str | None:
    if isinstance(body, Mapping):
        value = body.get(name)
        if isinstance(value, str):
            return value
    return None


def _int_field(body: object, name: str) -> int | None:
    if isinstance(body, Mapping):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _validation_issues(body: object) -> tuple[ValidationIssue, ...]:
    if not isinstance(body, Mapping):
        return ()
    details: Any = body.get("details")
    if not isinstance(details, list):
        return ()
    issues = []
    for item in details:
        if not isinstance(item, Mapping):
            continue
        path = item.get("path")
        message = item.get("message")
        parts = [_path_part(p) for p in path] if isinstance(path, list) else []
        issues.append(
            ValidationIssue(parts, message if isinstance(message, str) else "")
        )
    return tuple(issues)


def _path_part(part: object) -> str | int:
    """
    One step of a detail's path: a name, or an index (a JSON number).
    """
    if isinstance(part, str):
        return part
    if isinstance(part, int) and not isinstance(part, bool):
        return part
    if isinstance(part, float) and part.is_integer():
        return int(part)
    return str(part)
