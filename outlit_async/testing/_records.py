"""
The request log of FakeOutlit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, final

import attrs


def _masked_body(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("config"), dict):
        body = {**body, "config": dict.fromkeys(body["config"], "***")}
    return repr(body)


@final
@attrs.frozen
class RecordedRequest:
    """
    One request FakeOutlit received.

    The ``Authorization`` header is never kept, only whether it matched an
    organisation. The body is kept as sent, so a test can assert on it, but the
    repr masks every value of its ``config``.

    :param method: the HTTP method
    :param path: the path, without the query
    :param query: the query parameters
    :param body: the parsed JSON body, or None (no body, or not JSON)
    :param at: ``time.monotonic()`` when the request arrived
    :param status: the status answered, or None for a dropped connection
    :param authorized: whether the key matched an organisation
    """

    method: str
    path: str
    query: Mapping[str, str]
    body: Any = attrs.field(repr=_masked_body)
    at: float
    status: int | None
    authorized: bool
