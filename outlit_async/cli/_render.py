"""
How results are shown: one pretty JSON object, JSON lines, or rich tables.

rich is imported only when a table or the live view is drawn, so the JSON
output works without the ``cli`` extra.
"""

from __future__ import annotations

import enum
import importlib.util
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

import attrs

from ._exit import say

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ("Mode", "Output", "to_json")

INSTALL_HINT: Final = "pip install 'outlit-async[cli]'"


class Mode(enum.Enum):
    """
    How a command shows its result.
    """

    PRETTY = "pretty"
    """One indented JSON object: the default when stdout is not a terminal."""
    LINES = "lines"
    """One compact JSON object per line (``--json``)."""
    TABLE = "table"
    """Readable tables and a live view: the default on a terminal."""


def has_rich() -> bool:
    """
    Whether rich can be imported.
    """
    try:
        return importlib.util.find_spec("rich") is not None
    except ValueError:
        return True


def choose_mode(*, json_lines: bool, table: bool) -> Mode:
    """
    The mode the options and stdout ask for.

    On a terminal without rich, JSON is shown instead and stderr says how to
    get the tables.
    """
    if json_lines:
        return Mode.LINES
    if table or sys.stdout.isatty():
        if has_rich():
            return Mode.TABLE
        say(f"tables and live progress need rich: {INSTALL_HINT}; showing JSON")
        return Mode.LINES if table else Mode.PRETTY
    return Mode.PRETTY


def to_json(value: object) -> Any:
    """
    ``value`` as plain JSON data: models by their snake_case fields.
    """
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    model: Any = type(value)
    if attrs.has(model):
        return {
            field.name: to_json(getattr(value, field.name))
            for field in attrs.fields(model)
        }
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    return value


def iso(moment: datetime) -> str:
    """
    An aware time as ISO 8601 UTC with a ``Z``.
    """
    text = moment.astimezone(timezone.utc).isoformat()
    return text.removesuffix("+00:00") + "Z"


def line(record: Mapping[str, Any]) -> str:
    """
    One compact JSON line.
    """
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


class Output:
    """
    Where a command writes its result, in the chosen mode.
    """

    __slots__ = ("_console", "mode")

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """
        A rich console on the current stdout.
        """
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=sys.stdout, highlight=False)
        return self._console

    def result(
        self,
        document: Any,
        records: Iterable[Mapping[str, Any]],
        table: Callable[[], RenderableType],
    ) -> None:
        """
        Show one result: ``document`` as pretty JSON, ``records`` as JSON
        lines, or the renderable ``table`` builds.
        """
        if self.mode is Mode.TABLE:
            self.console.print(table())
        elif self.mode is Mode.LINES:
            for record in records:
                self.record(record)
        else:
            print(json.dumps(document, indent=2, ensure_ascii=False), flush=True)

    def record(self, record: Mapping[str, Any]) -> None:
        """
        Write one JSON line.
        """
        print(line(record), flush=True)
