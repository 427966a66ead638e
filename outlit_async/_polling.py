"""
The poll loop every watch uses: schedule, request, compare.

:class:`PollLoop` decides when to send the next poll and survives transient
failures. :class:`Watch` turns its observations into :class:`Transition` items
for one caller. The monitor drives the same loop for many callers at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timezone
from typing import Any, Final, Generic, TypeVar, final

import anyio

from ._errors import (
    APIConnectionError,
    APIStatusError,
    ConnectionExpiredError,
    ConnectionFailedError,
    PollTimeoutError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from ._models import ConnectionState, ConnectionStatus, SyncStatus, Transition, WatchKey
from ._transport import Transport, parse_json

__all__ = ("Outcome", "PollLoop", "Watch", "connection_outcome", "is_transient")

logger: Final = logging.getLogger("outlit_async")

T = TypeVar("T", ConnectionStatus, SyncStatus)

SPREAD: Final = 0.1
"""How far a poll may stray from its schedule, as a share of the interval."""

Outcome = tuple[bool, BaseException | None]
"""Whether an observation ends a watch, and the error it ends with."""


def is_transient(exc: BaseException) -> bool:
    """
    Whether a failed poll is worth another: no answer, or an answer that may heal.
    """
    if isinstance(
        exc, (APIConnectionError, ServerError, RateLimitError, ResponseValidationError)
    ):
        return True
    return isinstance(exc, APIStatusError) and exc.status == 408


def connection_outcome(status: ConnectionStatus, session_id: str) -> Outcome:
    """
    Whether ``status`` ends a connection watch, and as what error.
    """
    if not status.terminal:
        return False, None
    if status.status == ConnectionState.FAILED:
        return True, ConnectionFailedError(session_id=session_id, error=status.error)
    if status.status == ConnectionState.EXPIRED:
        return True, ConnectionExpiredError(session_id=session_id)
    return True, None


def now_utc() -> datetime:
    """
    The current time, aware UTC.
    """
    return datetime.now(timezone.utc)


class PollLoop(Generic[T]):
    """
    When to poll, and polling until an answer comes.

    The first poll goes out at once, up to a tenth of the interval late, so
    that watches started together do not fire together. Later polls start
    ``interval`` apart, start to start, each moved by up to a tenth of the
    interval either way. A ``Retry-After`` on a failed poll pushes the next
    poll back by that much, once.

    :param transport: sends each poll, a GET of ``path`` with ``params``.
    :param decode: turns an answer's JSON into the model it describes.
    :param interval: seconds between the starts of two polls.
    :param max_failures: failed polls in a row after which the last failure
        is raised; None never gives up.
    """

    __slots__ = (
        "_decode",
        "_last_content",
        "_last_value",
        "_next_at",
        "_params",
        "_path",
        "_transport",
        "failures",
        "interval",
        "max_failures",
        "target",
    )

    _decode: Callable[[Any], T]

    def __init__(
        self,
        transport: Transport,
        path: str,
        params: Mapping[str, str],
        decode: Callable[[Any], T],
        *,
        interval: float,
        target: str,
        max_failures: int | None,
    ) -> None:
        self._transport = transport
        self._path = path
        self._params = params
        self._decode = decode
        self._next_at: float | None = None
        self._last_content: bytes | None = None
        self._last_value: T | None = None
        self.interval = interval
        self.target = target
        self.max_failures = max_failures
        self.failures = 0

    async def poll(self, deadline: float | None) -> T | None:
        """
        Wait for the next poll's time, send it, and return its answer.

        Transient failures are retried on the schedule. Returns None when
        ``deadline`` (on anyio's clock) passes first. An answer of the same
        bytes as the last one returns the same object, undecoded.

        :raises APIError: a failure that polling again cannot mend, or the
            last of ``max_failures`` transient ones in a row.
        """
        # The event loop's clock is anyio's clock on asyncio, the only
        # backend aiohttp runs on; reading it directly keeps polls cheap.
        clock = asyncio.get_running_loop().time
        while True:
            now = clock()
            due = self.next_poll_at(now)
            if deadline is not None and deadline <= due:
                await asyncio.sleep(deadline - now)
                return None
            delay = due - now
            if delay > 0:
                await asyncio.sleep(delay)
                now = clock()
            self.begin(now)
            try:
                if deadline is None:
                    content = await self.send()
                else:
                    with anyio.CancelScope(deadline=deadline) as scope:
                        content = await self.send()
                    if scope.cancelled_caught:
                        return None
                return self.observe(content)
            except Exception as exc:
                self.note_failure(exc)

    def next_poll_at(self, now: float) -> float:
        """
        When the next poll is due, on the event loop's clock; the first is
        drawn, once, within a tenth of the interval from ``now``.
        """
        if self._next_at is None:
            self._next_at = now + random.uniform(0, SPREAD) * self.interval
        return self._next_at

    def begin(self, now: float) -> None:
        """
        A poll starts at ``now``: the next is due ``interval`` later, spread.
        """
        self._next_at = now + self.interval * random.uniform(1 - SPREAD, 1 + SPREAD)

    def send(self) -> Coroutine[Any, Any, bytes]:
        """
        The poll's request: the answer's bytes, after the transport's retries.
        """
        return self._transport.request("GET", self._path, params=self._params, raw=True)

    def observe(self, content: bytes) -> T:
        """
        The model an answer's bytes describe; the last one again, undecoded,
        when the bytes are the same.

        :raises ResponseValidationError: if the answer does not fit.
        """
        value = self._last_value
        if value is None or content != self._last_content:
            value = self._decode(parse_json(content, "GET", self._path))
            self._last_content, self._last_value = content, value
        self.failures = 0
        return value

    def note_failure(self, exc: Exception) -> None:
        """
        Count a failed poll, and push the next one back by a ``Retry-After``.

        :raises Exception: ``exc`` again, if polling again cannot mend it or
            it is the last of ``max_failures`` in a row.
        """
        if not is_transient(exc):
            raise exc
        self.failures += 1
        if self.max_failures is not None and self.failures >= self.max_failures:
            raise exc
        retry_after = exc.retry_after if isinstance(exc, APIStatusError) else None
        if retry_after and self._next_at is not None:
            self._next_at = max(self._next_at, anyio.current_time() + retry_after)
        logger.warning(
            "poll of %s failed (%s), polling again in %.2f s",
            self.target,
            exc,
            max(0.0, (self._next_at or 0.0) - anyio.current_time()),
            extra={"target": self.target, "failures": self.failures},
        )


@final
class Watch(Generic[T]):
    """
    The transitions of one watched thing, as an async iterator.

    It polls only while it is being iterated: closing it, or stopping the
    iteration, stops its polls. It ends after its terminal transition.
    A poll outcome (a failed or expired session, the watch's own timeout)
    arrives as the terminal transition's ``error``; a failure that ends the
    polls (a 400, a 401, failures in a row) is raised from the iteration.
    """

    __slots__ = ("_deadline", "_done", "_finish", "_last", "_loop", "key", "timeout")

    _loop: PollLoop[T]
    _finish: Callable[[T, str], Outcome]

    def __init__(
        self,
        loop: PollLoop[T],
        *,
        key: WatchKey,
        timeout: float | None,
        finish: Callable[[T, str], Outcome],
    ) -> None:
        self._loop = loop
        self._finish = finish
        self._last: T | None = None
        self._done = False
        self._deadline: float | None = None
        self.key = key
        self.timeout = timeout

    def __aiter__(self) -> Watch[T]:
        return self

    async def __anext__(self) -> Transition[T]:
        if self._done:
            raise StopAsyncIteration
        if self._deadline is None and self.timeout is not None:
            self._deadline = anyio.current_time() + self.timeout
        try:
            return await self._next_change()
        except Exception:
            self._done = True
            raise

    async def _next_change(self) -> Transition[T]:
        while True:
            value = await self._loop.poll(self._deadline)
            if value is None:
                assert self.timeout is not None
                self._done = True
                late = PollTimeoutError(target=self.key.target, timeout=self.timeout)
                return Transition(
                    self.key, self._last, self._last, now_utc(), True, late
                )
            if value is self._last or value == self._last:
                continue
            terminal, error = self._finish(value, self.key.target)
            change = Transition(self.key, self._last, value, now_utc(), terminal, error)
            self._last = value
            self._done = terminal
            return change

    async def aclose(self) -> None:
        """
        Stop watching; no poll is sent after this.
        """
        self._done = True

    async def __aenter__(self) -> Watch[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
