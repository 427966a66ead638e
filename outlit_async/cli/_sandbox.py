"""
``sandbox``: FakeOutlit on localhost, for trying an app against a local Outlit.

Its connect links open a page naming the provider with Approve and Deny
buttons, so a developer can click through the browser step of their own app.
New connections' models sync after two sync-status polls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Final

from .._transport import is_loopback
from ..testing import FakeOutlit, SyncScript
from ._exit import CommandError, Exit

__all__ = ("DEFAULT_KEY", "DEFAULT_PORT", "sandbox")

DEFAULT_PORT: Final = 8777
DEFAULT_KEY: Final = "ok_sandbox_key"
_LOG_EVERY: Final = 0.2


async def sandbox(args: argparse.Namespace) -> Exit:
    """
    Serve until Ctrl-C or SIGTERM, then exit 0.
    """
    if not is_loopback(args.host):
        raise CommandError(
            f"the sandbox listens only on a loopback address, not {args.host!r}"
        )
    if not args.key or args.key.split() != [args.key] or not args.key.isprintable():
        raise CommandError("--key must be a non-empty string with no spaces")

    fake = FakeOutlit(
        args.key,
        host=args.host,
        port=args.port,
        sync_script=SyncScript(succeed_after_polls=2),
        record=not args.quiet,
    )
    try:
        await fake.start()
    except OSError as exc:
        hint = "; pass --port 0 for any free port" if args.port else ""
        reason = exc.strerror or type(exc).__name__
        raise CommandError(
            f"cannot listen on {args.host}:{args.port}: {reason}{hint}"
        ) from None

    try:
        print(f"export OUTLIT_BASE_URL={fake.url}", flush=True)
        print(f"export OUTLIT_API_KEY={fake.api_key}", flush=True)
        print(
            f"Outlit sandbox on {fake.url}: paste the two lines above into your "
            "shell, run your app, and open its connect links to Approve or Deny. "
            "Ctrl-C stops it.",
            file=sys.stderr,
            flush=True,
        )
        await _serve(fake, log=not args.quiet)
    finally:
        await fake.close()
    print("Outlit sandbox stopped.", file=sys.stderr, flush=True)
    return Exit.OK


async def _serve(fake: FakeOutlit, *, log: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), _LOG_EVERY)
            if log:
                _log_requests(fake)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def _log_requests(fake: FakeOutlit) -> None:
    for request in fake.requests:
        query = "&".join(f"{k}={v}" for k, v in request.query.items())
        target = request.path + (f"?{query}" if query else "")
        status = "dropped" if request.status is None else request.status
        print(f"{request.method} {target} {status}", file=sys.stderr, flush=True)
    fake.clear_requests()
