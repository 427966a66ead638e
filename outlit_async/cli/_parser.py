"""
The arguments of ``outlit-async``.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from typing import Any, Final, NoReturn

from .._version import __version__
from ._exit import PROG, CommandError, redact

__all__ = ("build_parser", "check_given")

_EPILOG: Final = textwrap.dedent(
    """\
    The API key is read from the environment (OUTLIT_API_KEY, or the variable
    named by --api-key-env), never from an argument; provider credentials are
    read from --config-file or --config-stdin, and neither is ever printed.

    Output: a readable table on a terminal; one indented JSON object when stdout
    is not a terminal; one compact JSON object per line with --json. wait,
    watch-sync, onboard and demo show live progress on a terminal and one JSON
    line per event otherwise.

    Exit status: 0 ok; 1 the API refused or failed, or not every session
    connected / every sync succeeded / every line onboarded; 2 usage; 3 no key
    or key refused; 130 interrupted.

    Start with:  outlit-async demo
    """
)


_REPEATS: Final = (
    (re.compile(r"(invalid choice): .*(?= \(choose from )", re.DOTALL), r"\1"),
    (re.compile(r"(unknown parser) .*(?= \(choices: )", re.DOTALL), r"\1"),
    (re.compile(r"(invalid \S+ value): .*", re.DOTALL), r"\1"),
    (re.compile(r"ignored explicit argument .*", re.DOTALL), "takes no value"),
)
"""argparse's messages that repeat a value, and what each says instead."""

_POSITIONALS: Final = {
    "provider": "PROVIDER",
    "providers": "PROVIDER",
    "session_id": "SESSION_ID",
    "session_ids": "SESSION_ID",
    "step": "STEP",
    "file": "FILE",
}
"""The free positional arguments, by destination, with their names in the help."""


class _Parser(argparse.ArgumentParser):
    """
    A parser whose usage errors never repeat the value of an argument.

    A key or a config passed as an argument by mistake is already in the
    shell's history; it should not also land in a CI log. An error names the
    argument, option or choices at fault, never what was typed for it.

    :ivar commands: the parser of each subcommand, by name.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        """
        Parse ``args``; arguments no subcommand expects are counted, not shown.
        """
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self.commands.get(getattr(parsed, "command", ""), self)
            command.error(_unexpected(len(extras)))
        return parsed

    def error(self, message: str) -> NoReturn:
        for pattern, replacement in _REPEATS:
            message = pattern.sub(replacement, message)
        super().error(redact(message))


def _unexpected(count: int) -> str:
    if count == 1:
        shown = "1 unexpected argument, not shown in case it is a secret"
    else:
        shown = f"{count} unexpected arguments, not shown in case one is a secret"
    return (
        f"{shown}: provider credentials go in --config-file FILE or "
        "--config-stdin, the API key in an environment variable (--api-key-env)"
    )


def check_given(args: argparse.Namespace) -> None:
    """
    Refuse an empty or blank positional argument before any key is read.

    :raises CommandError: naming the argument (exit status 2).
    """
    for dest, name in _POSITIONALS.items():
        value = getattr(args, dest, None)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and not item.strip():
                raise CommandError(
                    f"{name} must not be empty; see '{PROG} {args.command} --help'"
                )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None


def _positive_int(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number from 0 to 65535")
    return value


def _output_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = False if top else argparse.SUPPRESS
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--json",
        dest="json_lines",
        action="store_true",
        default=default,
        help="one compact JSON object per line",
    )
    group.add_argument(
        "--table",
        action="store_true",
        default=default,
        help="readable tables even when stdout is not a terminal",
    )


def _config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--config-file",
        metavar="FILE",
        help="a JSON object of the provider's credentials or step settings",
    )
    group.add_argument(
        "--config-stdin",
        action="store_true",
        help="read that JSON object from stdin",
    )


def _watch_options(
    parser: argparse.ArgumentParser, *, interval: float, timeout: float
) -> None:
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=interval,
        metavar="SECONDS",
        help="seconds between two polls of one watch (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        dest="watch_timeout",
        type=_seconds,
        default=timeout,
        metavar="SECONDS",
        help="seconds each watch may take before it ends as timed out "
        "(default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """
    The parser: global options, then one subcommand.
    """
    parser = _Parser(
        prog=PROG,
        description="The Outlit integrations API from the command line.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--api-key-env",
        default="OUTLIT_API_KEY",
        metavar="NAME",
        help="the environment variable that holds the API key (default: %(default)s)",
    )
    parser.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="the API's base URL (default: $OUTLIT_BASE_URL or https://app.outlit.ai)",
    )
    parser.add_argument(
        "--timeout",
        dest="request_timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="seconds one HTTP request may take (wait, watch-sync and onboard "
        "take their own --timeout after the subcommand) (default: %(default)s)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=_positive_int,
        default=64,
        metavar="N",
        help="HTTP requests in flight at once (default: %(default)s)",
    )
    _output_options(parser, top=True)

    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        _output_options(sub, top=False)
        parser.commands[name] = sub
        return sub

    sub = command("list", "List every provider and whether it is connected.")
    sub.add_argument(
        "--connected-only", action="store_true", help="only the connected providers"
    )

    sub = command("capabilities", "Show how providers are set up.")
    sub.add_argument("provider", nargs="?", metavar="PROVIDER", help="one provider")

    sub = command(
        "connect",
        "Connect a provider: credentials for a direct one, a link for a browser one.",
    )
    sub.add_argument("provider", metavar="PROVIDER")
    _config_options(sub)

    sub = command("status", "Show the state of a browser connect session.")
    sub.add_argument("session_id", metavar="SESSION_ID")

    sub = command("disconnect", "Disconnect a provider.")
    sub.add_argument("provider", metavar="PROVIDER")

    sub = command("sync-status", "Show a provider's connection and model syncs.")
    sub.add_argument("provider", metavar="PROVIDER")

    sub = command("setup-step", "Run a follow-up setup step (mappings, webhooks).")
    sub.add_argument("provider", metavar="PROVIDER")
    sub.add_argument("step", metavar="STEP")
    _config_options(sub)

    sub = command(
        "wait",
        "Wait for connect sessions to end; exit 0 only if every one connected.",
    )
    sub.add_argument("session_ids", nargs="+", metavar="SESSION_ID")
    _watch_options(sub, interval=2.0, timeout=300.0)

    sub = command(
        "watch-sync",
        "Watch providers' syncs; exit 0 only if every one synced.",
    )
    sub.add_argument("providers", nargs="+", metavar="PROVIDER")
    sub.add_argument(
        "--until",
        choices=("all-synced", "settled"),
        default="settled",
        help="settled: every model succeeded or failed; all-synced: every "
        "model succeeded (a failed model is waited on until --timeout) "
        "(default: %(default)s)",
    )
    _watch_options(sub, interval=10.0, timeout=900.0)

    sub = command(
        "onboard",
        "Onboard organisations from a JSON-lines file ('-' for stdin): "
        '{"org": ..., "provider": ..., "config": {...}, "key_env": "VAR"} per line.',
    )
    sub.add_argument("file", metavar="FILE")
    _watch_options(sub, interval=2.0, timeout=600.0)

    sub = command(
        "sandbox",
        "Serve a fake Outlit on localhost, with a real connect page, until Ctrl-C.",
    )
    sub.add_argument(
        "--host", default="127.0.0.1", help="a loopback address (default: %(default)s)"
    )
    sub.add_argument(
        "--port",
        type=_port,
        default=8777,
        help="the port; 0 picks a free one (default: %(default)s)",
    )
    sub.add_argument(
        "--key",
        default="ok_sandbox_key",
        help="the API key the sandbox accepts (default: %(default)s)",
    )
    sub.add_argument(
        "--quiet", action="store_true", help="do not log each request on stderr"
    )

    sub = command(
        "demo",
        "Watch a bulk onboarding run against an embedded sandbox: no key, no network.",
    )
    sub.add_argument(
        "--orgs",
        type=_positive_int,
        default=6,
        help="organisations to onboard (default: %(default)s)",
    )
    sub.add_argument(
        "--seed",
        type=_whole_number,
        default=None,
        help="replay a run (default: random)",
    )
    sub.add_argument(
        "--speed",
        type=_seconds,
        default=1.0,
        help="how much faster than real time (default: %(default)s)",
    )
    return parser
