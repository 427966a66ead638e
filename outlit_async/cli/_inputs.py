"""
The two secrets the command reads: the API key and provider credentials.

The key comes only from an environment variable, credentials only from a file
or stdin; neither is ever an argument, so neither lands in shell history or
in the process list, and neither is ever written back out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Final

from .._client import AsyncOutlit
from ._exit import CommandError, Exit

__all__ = (
    "api_key",
    "is_variable_name",
    "make_client",
    "parse_config",
    "read_config",
)

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_variable_name(name: str) -> bool:
    """
    Whether ``name`` can name an environment variable and does not look like a key.

    A key passed where a variable's name belongs is refused without being
    repeated in the message.
    """
    return bool(_NAME.fullmatch(name)) and not name.lower().startswith("ok_")


def api_key(variable: str) -> str:
    """
    The key held by the environment variable ``variable``.

    :raises CommandError: if ``variable`` is not a variable's name (exit
        status 2), or if it is unset or empty (exit status 3).
    """
    if not is_variable_name(variable):
        raise CommandError(
            "--api-key-env takes the name of an environment variable, "
            "such as OUTLIT_API_KEY, not a key"
        )
    key = os.environ.get(variable)
    if not key:
        raise CommandError(
            f"no API key: set the environment variable {variable}", Exit.AUTH
        )
    return key


def make_client(args: argparse.Namespace, key: str | None = None) -> AsyncOutlit:
    """
    A client from the global options, with ``key`` or the key their variable holds.
    """
    return AsyncOutlit(
        key if key is not None else api_key(args.api_key_env),
        base_url=args.base_url,
        timeout=args.request_timeout,
        max_concurrency=args.max_concurrency,
    )


def read_config(args: argparse.Namespace) -> dict[str, Any] | None:
    """
    The provider config named by ``--config-file`` or ``--config-stdin``, if any.

    :raises CommandError: if it cannot be read or is not a JSON object; the
        message gives the position of a syntax error, never the content, and
        does not repeat the file's name, which may be a secret typed there by
        mistake.
    """
    if args.config_file is not None:
        source = "config file"
        try:
            text = Path(args.config_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise CommandError(f"cannot read the {source}: {reason}") from None
    elif args.config_stdin:
        source = "config on stdin"
        text = sys.stdin.read()
    else:
        return None
    return parse_config(text, source)


def parse_config(text: str, source: str) -> dict[str, Any]:
    """
    ``text`` as a JSON object of credential fields.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"the {source} is not valid JSON "
            f"(line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(value, dict):
        raise CommandError(
            f"the {source} must be a JSON object of field names to values"
        )
    return value
