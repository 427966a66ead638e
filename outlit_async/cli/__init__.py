"""
The ``outlit-async`` command: every route, many watches at once, bulk
onboarding, a local sandbox and a demo.

Install it with ``pip install 'outlit-async[cli]'``; run ``outlit-async demo``
to see the whole thing work with no key and no network.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from .._errors import OutlitError
from .._integrations import ArgumentRefused
from ._exit import CommandError, Exit, report, say
from ._parser import build_parser, check_given
from ._render import Output, choose_mode

__all__ = ("Exit", "main")

Command = Callable[[argparse.Namespace, Output], Coroutine[Any, Any, Exit]]


def _command(name: str) -> Command:
    if name == "sandbox":
        from ._sandbox import sandbox

        return lambda args, out: sandbox(args)
    if name == "demo":
        from ._demo import demo

        return demo
    if name == "onboard":
        from ._onboard import onboard

        return onboard
    if name in ("wait", "watch-sync"):
        from ._watch import wait, watch_sync

        return wait if name == "wait" else watch_sync

    from . import _routes

    return {
        "list": _routes.list_integrations,
        "capabilities": _routes.capabilities,
        "connect": _routes.connect,
        "status": _routes.status,
        "disconnect": _routes.disconnect,
        "sync-status": _routes.sync_status,
        "setup-step": _routes.setup_step,
    }[name]


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run ``outlit-async`` with ``argv`` (``sys.argv[1:]`` by default).

    :return: the exit status; see :class:`Exit`.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else Exit.USAGE

    try:
        check_given(args)
        out = Output(choose_mode(json_lines=args.json_lines, table=args.table))
        return int(asyncio.run(_command(args.command)(args, out)))
    except BaseException as exc:
        error = _alone(exc)
        if isinstance(error, KeyboardInterrupt):
            say("interrupted")
            return Exit.INTERRUPTED
        if isinstance(error, (OutlitError, CommandError, ArgumentRefused)):
            return report(error)
        raise
    finally:
        sys.stdout.flush()


def _alone(exc: BaseException) -> BaseException:
    """
    The error a task group wrapped on its own, or ``exc`` itself.
    """
    while True:
        inner = getattr(exc, "exceptions", None)
        if not isinstance(inner, tuple) or len(inner) != 1:
            return exc
        exc = inner[0]
