"""
Exit statuses, and the one line on stderr that explains a failure.
"""

from __future__ import annotations

import enum
import re
import sys
from typing import Final

from .._errors import APIError, AuthenticationError, ConfigurationError
from .._integrations import ArgumentRefused

__all__ = ("PROG", "CommandError", "Exit", "describe", "redact", "report", "say")

PROG: Final = "outlit-async"

_KEY_LIKE: Final = re.compile(r"ok_[^\s',]+", re.IGNORECASE)
_OBJECT_LIKE: Final = re.compile(r"\{.*\}", re.DOTALL)
_GOT: Final = re.compile(r",? got .*", re.DOTALL)


class Exit(enum.IntEnum):
    """
    The exit statuses of ``outlit-async``.
    """

    OK = 0
    """Done; for ``wait``, ``watch-sync`` and ``onboard``: everything ended well."""
    FAILED = 1
    """The API refused or failed, or not every watch ended connected or synced."""
    USAGE = 2
    """Bad arguments, an unreadable config or file, a setting that cannot work."""
    AUTH = 3
    """No API key in the environment, or the API refused the key (401)."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C."""


class CommandError(Exception):
    """
    A failure of the command itself, with the exit status it ends with.
    """

    def __init__(self, message: str, status: Exit = Exit.USAGE) -> None:
        super().__init__(message)
        self.status = status


def say(message: str) -> None:
    """
    Write one line to stderr, prefixed with the program's name.
    """
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def report(exc: BaseException) -> Exit:
    """
    Explain ``exc`` on one line of stderr and answer the exit status it means.

    The line names the error type and, for an API error, the route. Neither
    the SDK's exceptions nor this line carry a request body or the key. An
    argument the client refused before any request is a usage error, named
    without the value refused.
    """
    if isinstance(exc, CommandError):
        say(str(exc))
        return exc.status
    if isinstance(exc, ArgumentRefused):
        say(f"invalid argument: {_refusal(exc)}")
        return Exit.USAGE
    say(describe(exc))
    if isinstance(exc, AuthenticationError):
        return Exit.AUTH
    if isinstance(exc, ConfigurationError):
        return Exit.USAGE
    return Exit.FAILED


def describe(exc: BaseException) -> str:
    """
    ``TypeName: message``, with the route when the message lacks it.
    """
    text = str(exc) or "no message"
    if isinstance(exc, APIError) and exc.route not in text:
        text = f"{exc.route}: {text}"
    details = getattr(exc, "details", ())
    if details:
        text += "; " + "; ".join(
            f"{'.'.join(str(p) for p in issue.path) or '$'}: {issue.message}"
            for issue in details
        )
    return f"{type(exc).__name__}: {text}"


def _refusal(exc: ArgumentRefused) -> str:
    """
    What the client refused, without the ``got ...`` that repeats the value.
    """
    return redact(_GOT.sub("", str(exc))) or type(exc).__name__


def redact(text: str) -> str:
    """
    ``text`` with anything shaped like a key or a JSON object masked.
    """
    return _OBJECT_LIKE.sub("{...}", _KEY_LIKE.sub("ok_***", text))
