"""
``client.monitor()``: many watches in one task group, merged into one iterator.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, final

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import AuthenticationError, PollTimeoutError
from ._integrations import (
    check_max_failures,
    check_positive,
    check_provider,
    check_session_id,
    sync_finish,
)
from ._models import ConnectionStatus, Provider, SyncStatus, Transition, WatchKey
from ._polling import Outcome, PollLoop, connection_outcome, now_utc

if TYPE_CHECKING:
    from ._client import AsyncOutlit

__all__ = ("Monitor",)

T = TypeVar("T", ConnectionStatus, SyncStatus)

DEFAULT_BUFFER: Final = 256
"""Transitions the monitor holds for a slow consumer before pollers wait."""


class _Subscriber(Generic[T]):
    """
    One watch on a shared loop: its key, its deadline, what it saw last.
    """

    __slots__ = ("deadline", "finish", "key", "last", "timeout")

    finish: Callable[[T, str], Outcome]

    def __init__(
        self,
        key: WatchKey,
        *,
        timeout: float | None,
        finish: Callable[[T, str], Outcome],
    ) -> None:
        self.key = key
        self.timeout = timeout
        self.deadline = (
            math.inf if timeout is None else asyncio.get_running_loop().time() + timeout
        )
        self.finish = finish
        self.last: T | None = None


class _Shared(Generic[T]):
    """
    One poll loop, every watch that reads it, and the earliest of their deadlines.

    The monitor's :class:`_Deadlines` calls :meth:`time_up` when that deadline
    passes. During a poll it cancels the loop's task, which ends that poll (its
    wait, its request, its retries) at once; the loop then ends the watches
    whose time is up and polls on for the others. Outside a poll (while a
    transition waits for room in the buffer) it only marks the deadline as
    passed, so that nothing delivered is ever cut short.
    """

    __slots__ = (
        "deadline",
        "deadlines",
        "entry",
        "expired",
        "loop",
        "polling",
        "subscribers",
        "task",
    )

    loop: PollLoop[T]

    def __init__(self, loop: PollLoop[T], deadlines: _Deadlines) -> None:
        self.loop = loop
        self.deadlines = deadlines
        self.subscribers: list[_Subscriber[T]] = []
        self.task: asyncio.Task[None] | None = None
        self.deadline = math.inf
        # The number of the heap entry that holds the deadline; 0 for none.
        self.entry = 0
        self.expired = False
        self.polling = False

    def update_deadline(self) -> None:
        """
        Follow the watches' earliest deadline, if that changed.
        """
        deadline = min((s.deadline for s in self.subscribers), default=math.inf)
        if deadline != self.deadline:
            self.deadlines.move(self, deadline)

    def forget_deadline(self) -> None:
        """
        Forget the deadline: the loop has ended.
        """
        self.deadlines.move(self, math.inf)

    def time_up(self) -> None:
        self.expired = True
        if self.polling and self.task is not None:
            self.task.cancel()


class _Deadlines:
    """
    The deadlines of a monitor's poll loops, behind one timer of the event loop.

    Ten thousand watches with a timeout would otherwise hold ten thousand timers
    in the event loop's heap, which every poll's sleep then sifts through with a
    comparison written in Python. Here each deadline is a tuple in a heap of our
    own, compared in C, and one timer stands for the earliest. A moved or
    forgotten deadline stays in the heap until it comes up, or until the heap
    holds twice the loops that have a deadline, when it is rebuilt without them.
    """

    __slots__ = ("_at", "_count", "_heap", "_live", "_timer")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Shared[Any]]] = []
        self._count = 0
        self._live = 0
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf

    def move(self, shared: _Shared[Any], deadline: float) -> None:
        """
        Set ``shared``'s deadline (``math.inf``: none).
        """
        self._live += (deadline != math.inf) - (shared.deadline != math.inf)
        shared.deadline = deadline
        shared.entry = 0
        if deadline != math.inf:
            self._count += 1
            shared.entry = self._count
            heapq.heappush(self._heap, (deadline, self._count, shared))
            if deadline < self._at:
                self._schedule(deadline)
        if len(self._heap) > 2 * self._live + 64:
            self._heap = [entry for entry in self._heap if _current(entry)]
            heapq.heapify(self._heap)

    def close(self) -> None:
        """
        Stop the timer and forget every deadline.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
        self._at = math.inf

    def _schedule(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._at = deadline
        self._timer = asyncio.get_running_loop().call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._at = math.inf
        heap = self._heap
        now = asyncio.get_running_loop().time()
        due = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if _current(entry):
                due.append(entry[2])
        # Stale entries at the head would only wake the timer for nothing.
        while heap and not _current(heap[0]):
            heapq.heappop(heap)
        if heap:
            self._schedule(heap[0][0])
        for shared in due:
            shared.time_up()


def _current(entry: tuple[float, int, _Shared[Any]]) -> bool:
    _, number, shared = entry
    return number == shared.entry


def _uncancel() -> bool:
    """
    Take back the one cancellation this task handled; whether none is left.

    Python 3.10 does not count cancellations: there, one handled is gone.
    """
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)
    return uncancel is None or uncancel() == 0


@final
class Monitor:
    """
    Many watches at once, their transitions merged into one async iterator.

    Use it as ``async with client.monitor() as monitor``, add watches with
    :meth:`watch_connection` and :meth:`watch_sync` (also while iterating),
    and read every transition with ``async for``. The iteration ends when
    every watch has ended.

    Watches of the same session, or the same provider of the same account,
    share one poll loop; each still receives every transition under its own
    key. The loop keeps the interval of the watch that started it. A watch's
    outcome (failed, expired, timed out, the error that stopped its polls)
    is its last transition, with ``error`` set, and leaves the others running.
    An :class:`AuthenticationError` stops every watch and is raised from the
    ``async with``.

    A consumer slower than the pollers makes them wait: at most
    ``buffer_size`` transitions are held, and none is dropped. Leaving the
    ``async with`` cancels every poll and request.
    """

    __slots__ = (
        "_active",
        "_buffer_size",
        "_client",
        "_closed",
        "_deadlines",
        "_fatal",
        "_loops",
        "_receive",
        "_send",
        "_task_group",
        "_tasks",
        "_waiters",
    )

    def __init__(
        self, client: AsyncOutlit, *, buffer_size: int = DEFAULT_BUFFER
    ) -> None:
        if (
            isinstance(buffer_size, bool)
            or not isinstance(buffer_size, int)
            or buffer_size < 1
        ):
            raise ValueError(
                f"buffer_size must be a positive integer, got {buffer_size!r}"
            )
        self._client = client
        self._buffer_size = buffer_size
        self._active = 0
        self._closed = False
        self._fatal: Exception | None = None
        self._loops: dict[tuple[object, ...], _Shared[Any]] = {}
        self._task_group: TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._send: MemoryObjectSendStream[object] | None = None
        self._receive: MemoryObjectReceiveStream[object] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._deadlines = _Deadlines()

    def __repr__(self) -> str:
        return f"Monitor(watches={self._active}, loops={len(self._loops)})"

    @property
    def active(self) -> int:
        """
        How many watches have not ended yet.
        """
        return self._active

    async def __aenter__(self) -> Monitor:
        if self._task_group is not None:
            raise RuntimeError("a monitor can be entered only once")
        self._send, self._receive = anyio.create_memory_object_stream[object](
            self._buffer_size
        )
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._supervise, name="outlit_async monitor")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._task_group is not None and self._send is not None
        self._closed = True
        self._task_group.cancel_scope.cancel()
        # No one reads any more: pollers waiting for room in the buffer stop,
        # and a consumer waiting in another task sees the end.
        if self._receive is not None:
            self._receive.close()
        self._wake()
        # The caller's own error leaves as it is, not wrapped in an ExceptionGroup:
        # the watch tasks raise nothing, so the task group has nothing to add.
        own_error = exc is not None and not isinstance(
            exc, anyio.get_cancelled_exc_class()
        )
        try:
            if own_error:
                await self._task_group.__aexit__(None, None, None)
                suppressed = False
            else:
                suppressed = await self._task_group.__aexit__(exc_type, exc, tb)
        finally:
            self._send.close()
            if self._receive is not None:
                self._receive.close()
            self._loops.clear()
            self._deadlines.close()
            self._wake()
        if self._fatal is not None:
            # The caller's own error, if any, stays readable as the cause.
            raise self._fatal from (exc if own_error else None)
        return bool(suppressed)

    def watch_connection(
        self,
        session_id: str,
        *,
        interval: float = 2.0,
        timeout: float = 300.0,
        max_failures: int | None = None,
        client: AsyncOutlit | None = None,
        tag: object = None,
    ) -> WatchKey:
        """
        Watch a connection session until its terminal state or ``timeout``.

        :param client: the client (the account) to poll with; this monitor's
            own by default. Another organisation's ``with_options`` copy fits.
        :param tag: any hashable label, carried in every transition's key.
        :return: the key its transitions carry.
        """
        key = WatchKey("connection", check_session_id(session_id), tag)
        account = client or self._client
        self._subscribe(
            key,
            account,
            account.integrations.connection_loop,
            connection_outcome,
            interval=interval,
            timeout=timeout,
            max_failures=max_failures,
        )
        return key

    def watch_sync(
        self,
        provider: Provider | str,
        *,
        interval: float = 30.0,
        until: Callable[[SyncStatus], bool] | None = None,
        timeout: float | None = None,
        max_failures: int | None = None,
        client: AsyncOutlit | None = None,
        tag: object = None,
    ) -> WatchKey:
        """
        Watch a provider's sync until ``until(status)`` is true or ``timeout``.

        Without ``until`` or ``timeout`` it runs until the monitor is left.

        :param client: the client (the account) to poll with; this monitor's
            own by default.
        :param tag: any hashable label, carried in every transition's key.
        :return: the key its transitions carry.
        """
        key = WatchKey("sync", check_provider(provider), tag)
        account = client or self._client
        self._subscribe(
            key,
            account,
            account.integrations.sync_loop,
            sync_finish(until),
            interval=interval,
            timeout=timeout,
            max_failures=max_failures,
        )
        return key

    def _subscribe(
        self,
        key: WatchKey,
        account: AsyncOutlit,
        make_loop: Callable[..., PollLoop[T]],
        finish: Callable[[T, str], Outcome],
        *,
        interval: float,
        timeout: float | None,
        max_failures: int | None,
    ) -> None:
        if self._task_group is None or self._closed:
            raise RuntimeError("add watches inside 'async with client.monitor()'")
        check_positive("interval", interval)
        check_max_failures(max_failures)
        if timeout is not None:
            check_positive("timeout", timeout)
        loop_key = (key.kind, key.target, *account._account)
        shared = self._loops.get(loop_key)
        if shared is None:
            loop = make_loop(key.target, interval=interval, max_failures=max_failures)
            shared = self._loops[loop_key] = _Shared(loop, self._deadlines)
            task = asyncio.get_running_loop().create_task(self._run(loop_key, shared))
            shared.task = task
            self._tasks.add(task)
        shared.subscribers.append(_Subscriber(key, timeout=timeout, finish=finish))
        shared.update_deadline()
        self._active += 1

    async def _supervise(self) -> None:
        """
        Own the poll loops: when the task group ends, end every loop first.

        Each poll loop is a plain asyncio task rather than a task of the
        group: an anyio task costs a cancel scope, an event and a handle of
        its own, several times what a watch otherwise holds. This task keeps
        them inside the group's lifetime all the same.
        """
        try:
            await anyio.sleep_forever()
        finally:
            self._closed = True
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, loop_key: tuple[object, ...], shared: _Shared[T]) -> None:
        # The steps of PollLoop.poll, written out: a coroutine less per poll,
        # held by each of thousands of loops.
        subscribers = shared.subscribers
        loop = shared.loop
        try:
            while subscribers and not self._closed:
                if shared.expired:
                    await self._expire(shared)
                    continue
                shared.polling = True
                try:
                    now = asyncio.get_running_loop().time()
                    delay = loop.next_poll_at(now) - now
                    if delay > 0:
                        await asyncio.sleep(delay)
                        now = asyncio.get_running_loop().time()
                    loop.begin(now)
                    try:
                        value = loop.observe(await loop.send())
                    except Exception as exc:
                        # Raised again unless polling again may mend it.
                        loop.note_failure(exc)
                        continue
                except asyncio.CancelledError:
                    # The deadline's own cancellation, and no one else's,
                    # ends only this poll.
                    if self._closed or not shared.expired or not _uncancel():
                        raise
                    continue
                except AuthenticationError:
                    raise
                except Exception as exc:
                    await self._fail(loop_key, shared, exc)
                    return
                finally:
                    shared.polling = False
                for subscriber in list(subscribers):
                    last = subscriber.last
                    if value is not last and value != last:
                        await self._deliver(shared, subscriber, value)
        except Exception as exc:
            # An AuthenticationError (or a defect) stops every watch, and is
            # raised from the 'async with'.
            if self._fatal is None:
                self._fatal = exc
            assert self._task_group is not None
            self._task_group.cancel_scope.cancel()
        finally:
            shared.forget_deadline()
            self._tasks.discard(shared.task)
            if self._loops.get(loop_key) is shared:
                del self._loops[loop_key]

    async def _fail(
        self, loop_key: tuple[object, ...], shared: _Shared[T], exc: Exception
    ) -> None:
        # A watch added while these end must start a loop of its own.
        del self._loops[loop_key]
        for subscriber in list(shared.subscribers):
            await self._end(shared, subscriber, subscriber.last, subscriber.last, exc)

    async def _deliver(
        self, shared: _Shared[T], subscriber: _Subscriber[T], value: T
    ) -> None:
        try:
            terminal, error = subscriber.finish(value, subscriber.key.target)
        except Exception as exc:
            terminal, error = True, exc
        previous, subscriber.last = subscriber.last, value
        if terminal:
            await self._end(shared, subscriber, previous, value, error)
        else:
            await self._emit(Transition(subscriber.key, previous, value, now_utc()))

    async def _expire(self, shared: _Shared[T]) -> None:
        # The timer may fire a hair before its time: the deadline it stood
        # for has passed all the same.
        passed = max(shared.deadline, anyio.current_time())
        shared.expired = False
        for subscriber in list(shared.subscribers):
            if subscriber.deadline <= passed:
                assert subscriber.timeout is not None
                error = PollTimeoutError(
                    target=subscriber.key.target, timeout=subscriber.timeout
                )
                await self._end(
                    shared, subscriber, subscriber.last, subscriber.last, error
                )

    async def _end(
        self,
        shared: _Shared[T],
        subscriber: _Subscriber[T],
        previous: T | None,
        current: T | None,
        error: BaseException | None,
    ) -> None:
        shared.subscribers.remove(subscriber)
        await self._emit(
            Transition(subscriber.key, previous, current, now_utc(), True, error)
        )
        shared.update_deadline()
        self._active -= 1
        if self._active == 0:
            self._wake()

    async def _emit(self, change: Transition[Any]) -> None:
        send = self._send
        assert send is not None
        try:
            send.send_nowait(change)
        except anyio.WouldBlock:
            # The buffer is full: wait for the consumer. A deadline passing
            # meanwhile does not interrupt this wait (see _Shared), and a
            # consumer that leaves the monitor closes the buffer, which ends it.
            with contextlib.suppress(anyio.BrokenResourceError):
                await send.send(change)
        except anyio.BrokenResourceError:
            return
        self._wake()

    def _wake(self) -> None:
        """
        Wake every consumer waiting for a transition, or for the end.
        """
        waiters = self._waiters
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            waiters.clear()

    def __aiter__(self) -> Monitor:
        return self

    async def __anext__(self) -> Transition[Any]:
        receive = self._receive
        if receive is None:
            raise RuntimeError("iterate a monitor inside 'async with client.monitor()'")
        while True:
            try:
                return receive.receive_nowait()  # type: ignore[return-value]
            except anyio.WouldBlock:
                if self._active == 0:
                    raise StopAsyncIteration from None
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                raise StopAsyncIteration from None
            # Wait on a future of our own, woken by the next transition or
            # the end: the stream's own receive() costs a checkpoint, an event
            # and a task lookup for every transition that arrives.
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done() or waiter.cancelled():
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
