"""
One request to the Outlit API: auth, the concurrency limit, retries, errors.

Every call of the SDK goes through :meth:`Transport.request`. Retry delays come
from :func:`retry_delays`, the one place that knows about ``backoff``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import platform
import re
import time
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import anyio
import attrs
import backoff

from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectionLimitError,
    NotConnectedError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from ._version import __version__

__all__ = (
    "Pool",
    "Settings",
    "Transport",
    "is_loopback",
    "parse_json",
    "parse_retry_after",
    "retry_delays",
    "secret_texts",
)

logger: Final = logging.getLogger("outlit_async")

REDACTED: Final = "[redacted]"
"""What stands in an error's text for a secret the server repeated."""

MAX_RETRY_AFTER: Final = 60.0
"""The longest wait a ``Retry-After`` answer can impose, in seconds."""

_USER_AGENT: Final = (
    f"outlit-async/{__version__} "
    f"python/{platform.python_version()} aiohttp/{aiohttp.__version__}"
)
_RETRIED_POST_STATUSES: Final = frozenset({429, 503})


def is_retried(method: str, status: int) -> bool:
    """
    Whether an answer of ``status`` to ``method`` is worth another attempt.

    A GET changes nothing, so 408, 429 and every 5xx are retried. A POST
    changes state, so only the answers that say the server did not act are:
    429 and 503.
    """
    if method == "GET":
        return status >= 500 or status in (408, 429)
    return status in _RETRIED_POST_STATUSES


def is_loopback(host: str) -> bool:
    """
    Whether ``host`` names this machine: ``localhost`` or a loopback address.

    Other names under ``.localhost`` are not taken on trust: a resolver is
    free to look them up elsewhere.
    """
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """
    ``base_url`` without a trailing slash, once it is safe to send a key to.

    :raises ConfigurationError: if it is not an absolute http(s) URL, or is
        plain http to a host other than this machine.
    """
    try:
        parts = urlsplit(base_url)
        credentials = parts.username or parts.password
    except ValueError:
        raise ConfigurationError("base_url is not a readable URL") from None
    if credentials:
        raise ConfigurationError("base_url must not carry a user name or password")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(
            f"base_url must be an absolute https:// URL, got {base_url!r}"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing to send the API key over plain http to {parts.hostname!r}: "
            "use https, or http only to a loopback host such as 127.0.0.1"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError("base_url must not carry a query or a fragment")
    return base_url.rstrip("/")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """
    The seconds a ``Retry-After`` header asks for, capped at one minute.

    It may be a number of seconds or an HTTP date. An unreadable value gives
    None; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
            if moment.tzinfo is None:
                return None
            seconds = moment.timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def retry_delays(first: float) -> Iterator[float]:
    """
    Waits between retries: exponential from ``first``, full jitter, at most 30 s.
    """
    jittered = backoff.full_jitter
    for value in backoff.expo(base=2, factor=first, max_value=30.0):
        if value is not None:
            yield jittered(value)


@attrs.frozen(repr=False)
class Settings:
    """
    What a client sends with every request. Never printed: it holds the key.
    """

    api_key: str
    base_url: str
    timeout: float
    max_retries: int
    retry_delay: float
    headers: Mapping[str, str] = attrs.field(init=False)
    client_timeout: aiohttp.ClientTimeout = attrs.field(init=False)

    @headers.default
    def _headers(self) -> Mapping[str, str]:
        return {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
        }

    @client_timeout.default
    def _client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.timeout)

    def __repr__(self) -> str:
        return f"Settings(base_url={self.base_url!r}, api_key=<hidden>)"


class Pool:
    """
    The connections and the concurrency limit, shared by a client's copies.

    Both are bound to an event loop, so they are made on first use, in the
    loop that uses them.
    """

    __slots__ = (
        "_limiter",
        "_loop",
        "_session",
        "_turns",
        "closed",
        "max_concurrency",
        "owns_session",
    )

    def __init__(
        self, *, max_concurrency: int, session: aiohttp.ClientSession | None
    ) -> None:
        self.max_concurrency = max_concurrency
        self.owns_session = session is None
        self.closed = False
        self._session = session
        self._limiter: anyio.CapacityLimiter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turns: deque[tuple[asyncio.Future[None], object]] = deque()

    def get(self) -> tuple[aiohttp.ClientSession, anyio.CapacityLimiter]:
        """
        The session and limiter for the running loop, made on first use.
        """
        session, limiter = self._session, self._limiter
        if limiter is not None and session is not None and not session.closed:
            if asyncio.get_running_loop() is not self._loop:
                raise RuntimeError(
                    "this client was first used in another event loop; "
                    "make one client per event loop"
                )
            return session, limiter
        if self.closed:
            raise RuntimeError("the client is closed")
        self._loop = asyncio.get_running_loop()
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_concurrency, limit_per_host=0
            )
            session = self._session = aiohttp.ClientSession(connector=connector)
        elif session.closed:
            raise RuntimeError("the aiohttp session passed to the client is closed")
        limiter = self._limiter = anyio.CapacityLimiter(self.max_concurrency)
        self._turns.clear()
        return session, limiter

    def queue(self, borrower: object) -> asyncio.Future[None]:
        """
        A place in line for one of the limiter's tokens, for ``borrower``.

        Take it when the limiter has no token free, and await it: it is done
        once the token is ``borrower``'s. Each waiter holds one future in a
        first-in, first-out line, and :meth:`release` hands the token it frees
        straight to the first of them: the limiter still counts every token in
        use, and a waiter costs one future rather than the limiter's own event
        and checkpoints, which matters when thousands of polls queue behind
        ``max_concurrency``. A waiter that stops waiting calls :meth:`leave`.
        """
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns.append((turn, borrower))
        return turn

    def leave(
        self,
        limiter: anyio.CapacityLimiter,
        turn: asyncio.Future[None],
        borrower: object,
    ) -> None:
        """
        Give up a place in line; a token that came all the same is passed on.
        """
        if turn.done() and not turn.cancelled():
            self.release(limiter, borrower)
        else:
            turn.cancel()

    def release(self, limiter: anyio.CapacityLimiter, borrower: object) -> None:
        """
        Give back ``borrower``'s token, to the first live waiter if there is one.
        """
        limiter.release_on_behalf_of(borrower)
        turns = self._turns
        while turns:
            turn, waiting = turns.popleft()
            if not turn.done():
                limiter.acquire_on_behalf_of_nowait(waiting)
                turn.set_result(None)
                return

    async def aclose(self) -> None:
        """
        Close the connections, unless they belong to a session the caller passed.
        """
        self.closed = True
        session, self._session = self._session, None
        if session is not None and self.owns_session:
            await session.close()


class Transport:
    """
    Sends requests for one set of settings over a pool.
    """

    __slots__ = ("pool", "settings")

    def __init__(self, settings: Settings, pool: Pool) -> None:
        self.settings = settings
        self.pool = pool

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        secrets: Collection[str] = (),
        raw: bool = False,
    ) -> Any:
        """
        Send one request, retrying as the policy allows, and decode its JSON.

        ``secrets`` are the texts of ``body`` that must not show: where an
        error answer repeats one of them (or the key), the exception carries
        ``[redacted]`` in its place.

        With ``raw`` it returns the successful answer's bytes as they came,
        for :func:`parse_json` to decode: a poll that gets the same bytes as
        the last time has nothing new to decode.

        :raises APIStatusError: (a subclass, by status) for an error answer.
        :raises APIConnectionError: if no answer came after the retries.
        :raises ResponseValidationError: if a successful answer is not JSON.
        """
        settings = self.settings
        pool = self.pool
        url = settings.base_url + path
        delays: Iterator[float] | None = None
        attempt = 0
        # Every poll takes this path: the attempt is written out here, not in
        # a helper coroutine, since each level of await costs on every resume.
        while True:
            attempt += 1
            session, limiter = pool.get()
            debug = logger.isEnabledFor(logging.DEBUG)
            started = time.perf_counter() if debug else 0.0
            failure: str
            wait: float | None = None
            try:
                # A free token is taken without the scheduling round trip
                # that ``async with limiter`` costs; only a full limiter waits,
                # in the pool's line.
                borrower = object()
                if limiter.available_tokens >= 1:
                    limiter.acquire_on_behalf_of_nowait(borrower)
                else:
                    turn = pool.queue(borrower)
                    try:
                        await turn
                    except BaseException:
                        pool.leave(limiter, turn, borrower)
                        raise
                try:
                    async with session.request(
                        method,
                        url,
                        params=params,
                        json=body,
                        headers=settings.headers,
                        timeout=settings.client_timeout,
                        allow_redirects=False,
                    ) as response:
                        content = await response.read()
                        status = response.status
                finally:
                    pool.release(limiter, borrower)
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                timed_out = isinstance(exc, asyncio.TimeoutError)
                outcome = "timed out" if timed_out else type(exc).__name__
                if debug:
                    _log_request(method, path, outcome, started, attempt)
                if method != "GET" or attempt > settings.max_retries:
                    raise _connection_error(method, path, exc, settings) from exc
                failure = "APITimeoutError" if timed_out else "APIConnectionError"
            else:
                if debug:
                    _log_request(method, path, status, started, attempt)
                if status < 400:
                    if raw:
                        return content
                    return parse_json(content, method, path, status)
                retry_header = response.headers.get("Retry-After")
                retry_after = (
                    None if retry_header is None else parse_retry_after(retry_header)
                )
                error = _status_error(
                    method,
                    path,
                    status,
                    content,
                    retry_after,
                    (settings.api_key, *secrets),
                )
                if not is_retried(method, status) or attempt > settings.max_retries:
                    raise error
                failure = f"status {status}"
                wait = retry_after
            if wait is None:
                if delays is None:
                    delays = retry_delays(settings.retry_delay)
                wait = next(delays)
            route = f"{method} {path}"
            logger.warning(
                "retrying %s in %.2f s after %s (attempt %d of %d)",
                route,
                wait,
                failure,
                attempt,
                settings.max_retries + 1,
                extra={"route": route, "attempt": attempt, "wait": wait},
            )
            await anyio.sleep(wait)


def _connection_error(
    method: str, path: str, exc: BaseException, settings: Settings
) -> APIConnectionError:
    route = f"{method} {path}"
    if isinstance(exc, asyncio.TimeoutError):
        return APITimeoutError(
            f"{route}: no answer within {settings.timeout:g} s", route=route
        )
    return APIConnectionError(
        f"{route}: connection failed ({type(exc).__name__})", route=route
    )


def _log_request(
    method: str, path: str, outcome: int | str, started: float, attempt: int
) -> None:
    logger.debug(
        "%s %s -> %s in %.1f ms (attempt %d)",
        method,
        path,
        outcome,
        (time.perf_counter() - started) * 1000,
        attempt,
        extra={"route": f"{method} {path}", "attempt": attempt},
    )


def parse_json(content: bytes, method: str, path: str, status: int = 200) -> Any:
    """
    The JSON of a successful answer (of ``status``) to ``method path``.

    :raises ResponseValidationError: if it is not JSON.
    """
    try:
        return json.loads(content)
    except ValueError:
        raise ResponseValidationError(
            route=f"{method} {path}",
            status=status,
            errors=["$: the body is not valid JSON"],
        ) from None


_ERROR_BY_STATUS: Final[dict[int, type[APIStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    429: RateLimitError,
}


def secret_texts(value: object) -> list[str]:
    """
    Every string and number inside ``value`` (a ``config``), as text.
    """
    if isinstance(value, str):
        return [value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in secret_texts(item)]
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in secret_texts(item)]
    return []


def _secret_pattern(secrets: Collection[str]) -> re.Pattern[str] | None:
    """
    A pattern of ``secrets``: anywhere when long, as a whole word when short.

    A short value (a region such as ``eu``) is matched only where it stands
    alone, so that redacting it does not mangle the words around it.
    """
    parts = []
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        escaped = re.escape(secret)
        if len(secret) < 8:
            escaped = rf"(?<![0-9A-Za-z]){escaped}(?![0-9A-Za-z])"
        parts.append(escaped)
    return re.compile("|".join(parts)) if parts else None


def _redact(value: object, pattern: re.Pattern[str]) -> object:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, dict):
        return {
            _redact(key, pattern): _redact(item, pattern) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item, pattern) for item in value]
    return value


def _status_error(
    method: str,
    path: str,
    status: int,
    raw: bytes,
    retry_after: float | None,
    secrets: Collection[str],
) -> APIStatusError:
    route = f"{method} {path}"
    try:
        body: object = json.loads(raw)
    except ValueError:
        body = raw[:500].decode("utf-8", "replace")
    pattern = _secret_pattern(secrets)
    if pattern is not None:
        body = _redact(body, pattern)
    said = body.get("error") or body.get("message") if isinstance(body, dict) else None
    message = f"{route} answered {status}" + (
        f": {said}" if isinstance(said, str) else ""
    )
    kind = _ERROR_BY_STATUS.get(status, APIStatusError)
    # 403 and 404 have a documented meaning on one route each.
    if status == 403 and path.endswith("/connect"):
        kind = ConnectionLimitError
    elif status == 404 and path.endswith("/disconnect"):
        kind = NotConnectedError
    elif status >= 500:
        kind = ServerError
    return kind(message, route=route, status=status, body=body, retry_after=retry_after)
