"""
``AsyncOutlit``: settings, the connection pool's lifecycle, and copies.
"""

from __future__ import annotations

import math
import os
from types import TracebackType
from typing import Final, final

import aiohttp

from ._errors import ConfigurationError
from ._integrations import Integrations
from ._monitor import DEFAULT_BUFFER, Monitor
from ._transport import Pool, Settings, Transport, check_base_url

__all__ = ("DEFAULT_BASE_URL", "AsyncOutlit")

DEFAULT_BASE_URL: Final = "https://app.outlit.ai"


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset()


@final
class AsyncOutlit:
    """
    A client of the Outlit integrations API.

    Use it as an async context manager, or call :meth:`aclose` when done::

        async with AsyncOutlit() as client:
            items = await client.integrations.list()

    Nothing touches the network, or the event loop, until the first request.

    :param api_key: the organisation's key (``ok_...``); ``OUTLIT_API_KEY``
        by default. It is sent only over https, or over plain http to a
        loopback host.
    :param base_url: ``OUTLIT_BASE_URL``, or ``https://app.outlit.ai``.
    :param timeout: seconds one attempt of a request may take.
    :param max_retries: retries after the first attempt, for the failures
        the retry policy allows (see the README).
    :param max_concurrency: requests in flight at once, across every watch
        and every copy made by :meth:`with_options`.
    :param session: an ``aiohttp.ClientSession`` to send with; the client
        never closes it.
    :param retry_delay: the first retry's longest wait in seconds; each
        later one may wait twice as long, up to 30 s, with full jitter.
    :raises ConfigurationError: if there is no key, or a setting cannot work.
    """

    __slots__ = ("_owns_pool", "_transport", "integrations")

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        max_concurrency: int = 64,
        session: aiohttp.ClientSession | None = None,
        retry_delay: float = 0.5,
    ) -> None:
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
            raise ConfigurationError(
                f"max_concurrency must be an integer, got {max_concurrency!r}"
            )
        if max_concurrency < 1:
            raise ConfigurationError(
                f"max_concurrency must be at least 1, got {max_concurrency}"
            )
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise ConfigurationError("session must be an aiohttp.ClientSession")
        settings = _settings(
            api_key if api_key is not None else os.environ.get("OUTLIT_API_KEY"),
            base_url or os.environ.get("OUTLIT_BASE_URL") or DEFAULT_BASE_URL,
            timeout,
            max_retries,
            retry_delay,
        )
        self._init(
            Transport(settings, Pool(max_concurrency=max_concurrency, session=session))
        )
        self._owns_pool = True

    def _init(self, transport: Transport) -> None:
        self._transport = transport
        self._owns_pool = False
        self.integrations = Integrations(transport)

    def __repr__(self) -> str:
        return f"AsyncOutlit(base_url={self.base_url!r}, api_key=<hidden>)"

    @property
    def base_url(self) -> str:
        """
        The API's base URL, without a trailing slash.
        """
        return self._transport.settings.base_url

    @property
    def timeout(self) -> float:
        """
        Seconds one attempt of a request may take.
        """
        return self._transport.settings.timeout

    @property
    def max_retries(self) -> int:
        """
        Retries after a request's first attempt.
        """
        return self._transport.settings.max_retries

    @property
    def max_concurrency(self) -> int:
        """
        Requests in flight at once, shared with every copy of this client.
        """
        return self._transport.pool.max_concurrency

    @property
    def _account(self) -> tuple[str, str]:
        settings = self._transport.settings
        return settings.base_url, settings.api_key

    def with_options(
        self,
        *,
        api_key: str | _Unset = _UNSET,
        base_url: str | _Unset = _UNSET,
        timeout: float | _Unset = _UNSET,
        max_retries: int | _Unset = _UNSET,
        retry_delay: float | _Unset = _UNSET,
    ) -> AsyncOutlit:
        """
        A client with other settings, such as another organisation's key.

        The copy shares this client's connections and concurrency limit, so a
        bulk job over many organisations stays within one ``max_concurrency``.
        Closing the copy leaves them open; closing this client closes them.
        """
        current = self._transport.settings
        settings = _settings(
            current.api_key if isinstance(api_key, _Unset) else api_key,
            current.base_url if isinstance(base_url, _Unset) else base_url,
            current.timeout if isinstance(timeout, _Unset) else timeout,
            current.max_retries if isinstance(max_retries, _Unset) else max_retries,
            current.retry_delay if isinstance(retry_delay, _Unset) else retry_delay,
        )
        copy = object.__new__(AsyncOutlit)
        copy._init(Transport(settings, self._transport.pool))
        return copy

    def monitor(self, *, buffer_size: int = DEFAULT_BUFFER) -> Monitor:
        """
        A monitor for many watches at once; use it with ``async with``.

        :param buffer_size: transitions held for a slow consumer before the
            pollers wait for it.
        """
        return Monitor(self, buffer_size=buffer_size)

    async def aclose(self) -> None:
        """
        Release the connections; a session passed in by the caller stays open.

        A copy made by :meth:`with_options` releases nothing: the pool is its
        original's.
        """
        if self._owns_pool:
            await self._transport.pool.aclose()

    async def __aenter__(self) -> AsyncOutlit:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _settings(
    api_key: str | None,
    base_url: str,
    timeout: float,
    max_retries: int,
    retry_delay: float,
) -> Settings:
    if not api_key:
        raise ConfigurationError(
            "no API key: pass api_key= or set the OUTLIT_API_KEY environment variable"
        )
    if (
        not isinstance(api_key, str)
        or api_key.split() != [api_key]
        or not api_key.isprintable()
    ):
        raise ConfigurationError(
            "the API key must be a string with no spaces or control characters"
        )
    if not _is_number(timeout) or not timeout > 0:
        raise ConfigurationError(
            f"timeout must be a positive number of seconds, got {timeout!r}"
        )
    if (
        isinstance(max_retries, bool)
        or not isinstance(max_retries, int)
        or max_retries < 0
    ):
        raise ConfigurationError(
            f"max_retries must be a whole number >= 0, got {max_retries!r}"
        )
    if not _is_number(retry_delay) or retry_delay < 0:
        raise ConfigurationError(
            f"retry_delay must be a number >= 0, got {retry_delay!r}"
        )
    return Settings(
        api_key=api_key,
        base_url=check_base_url(base_url),
        timeout=float(timeout),
        max_retries=max_retries,
        retry_delay=float(retry_delay),
    )


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
