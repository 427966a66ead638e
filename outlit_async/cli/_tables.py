"""
Readable rich renderables for the results of the routes.

Every function imports rich itself: this module is loaded without rich, and
only a table drawn on a terminal needs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

__all__ = ("STYLES", "key_values", "styled", "table", "when")

STYLES: Final = {
    "connected": "green",
    "already connected": "green",
    "synced": "green",
    "SUCCESS": "green",
    "success": "green",
    "pending": "cyan",
    "syncing": "cyan",
    "PENDING": "cyan",
    "not_connected": "dim",
    "not connected": "dim",
    "failed": "red",
    "FAILED": "red",
    "error": "red",
    "expired": "yellow",
    "timed out": "yellow",
}


def styled(value: object) -> Text:
    """
    ``value`` as text, coloured when it is a known state.
    """
    from rich.text import Text

    text = "-" if value is None else str(value)
    head = text.split(":", 1)[0]
    return Text(text, style=STYLES.get(head, ""))


def when(moment: datetime | None) -> str:
    """
    A time as ``2025-01-31 12:00:05 UTC``, or ``-``.
    """
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]
) -> Table:
    """
    A table of ``rows``; states are coloured.
    """
    from rich.table import Table

    result = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        result.add_column(column, overflow="fold")
    for row in rows:
        result.add_row(*(styled(cell) for cell in row))
    return result


def key_values(title: str | None, pairs: Mapping[str, Any]) -> Table:
    """
    A two-column table of fields; nested values are shown as compact JSON.
    """
    from rich.table import Table

    result = Table(title=title, title_justify="left", show_header=False)
    result.add_column(style="bold")
    result.add_column(overflow="fold")
    for name, value in pairs.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        result.add_row(name, styled(value))
    return result
