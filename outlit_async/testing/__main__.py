"""
Serve FakeOutlit as a process: ``python -m outlit_async.testing --port 8765``.

The process prints ``OUTLIT_BASE_URL=...`` and ``OUTLIT_API_KEY=...`` on
stdout once it listens, then serves until SIGINT or SIGTERM. Benchmarks use it
to keep the server out of the measured process. Its control routes, guarded by
the API key like the API, set a run up in one request each:

- ``POST /_fake/sessions`` ``{"provider", "count", "outcome"?, "afterPolls"?,
  "error"?}`` opens ``count`` sessions and answers ``{"sessionIds": [...]}``;
- ``POST /_fake/organizations`` ``{"apiKeys": [...], "providers"?: [...]}`` adds
  organisations with those providers connected;
- ``GET /_fake/stats`` answers the request counts by path, the faults injected
  and the sessions by status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from ._server import DEFAULT_KEY, FakeOutlit
from ._state import OUTCOMES, SessionScript, SyncScript


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m outlit_async.testing",
        description="Serve a fake Outlit integrations API on localhost.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks one")
    parser.add_argument("--key", default=DEFAULT_KEY, help="the API key to accept")
    parser.add_argument("--plan", default="free", help="plan named in 403 answers")
    parser.add_argument(
        "--connection-limit", type=int, default=None, help="providers per organisation"
    )
    parser.add_argument(
        "--session-outcome",
        choices=OUTCOMES,
        default=None,
        help="what every new connect session becomes (default: stays pending)",
    )
    parser.add_argument(
        "--after-polls",
        type=int,
        default=3,
        help="the status poll that first answers the session outcome",
    )
    parser.add_argument(
        "--sync-after-polls",
        type=int,
        default=None,
        help="sync-status polls after which new connections' models succeed",
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="probability of a random transient fault per request",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of random faults")
    parser.add_argument(
        "--record", action="store_true", help="keep a log of every request in memory"
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    script = None
    if args.session_outcome is not None:
        script = SessionScript(args.session_outcome, args.after_polls)
    sync = None
    if args.sync_after_polls is not None:
        sync = SyncScript(args.sync_after_polls)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Windows has no loop signal handlers; Ctrl+C still ends asyncio.run.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)

    fake = FakeOutlit(
        args.key,
        host=args.host,
        port=args.port,
        connection_limit=args.connection_limit,
        plan=args.plan,
        session_script=script,
        sync_script=sync,
        record=args.record,
    )
    if args.fault_rate:
        fake.faults.random(args.fault_rate, args.seed)

    async with fake:
        print(f"OUTLIT_BASE_URL={fake.url}", flush=True)
        print(f"OUTLIT_API_KEY={fake.api_key}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the server until SIGINT or SIGTERM; answer the exit status.

    :param argv: the arguments, without the program name
    """
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
