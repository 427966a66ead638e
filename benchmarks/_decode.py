"""
The "decode" workload: the SDK's cattrs decoding of each answer, against json.loads.

Each body is an answer the fake server gave, as bytes. For each one it times
``json.loads`` alone, then ``json.loads`` followed by the SDK's decoding into
its models, and reports CPU microseconds per body (the median of a few rounds).
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from collections.abc import Callable
from typing import Any, Final

from outlit_async import ConnectionStatus, Integration, SyncStatus
from outlit_async._convert import (
    structure,
    structure_capabilities,
    structure_connect,
)

ROUTE: Final = "GET /bench"
ROUND_SECONDS: Final = 0.05


def _integrations(body: Any) -> list[Integration]:
    return [structure(item, Integration, route=ROUTE) for item in body["items"]]


DECODERS: Final[dict[str, Callable[[Any], object]]] = {
    "connection_status": lambda body: structure(body, ConnectionStatus, route=ROUTE),
    "sync_status": lambda body: structure(body, SyncStatus, route=ROUTE),
    "list": _integrations,
    "capability": lambda body: structure_capabilities(body, route=ROUTE, single=True),
    "capabilities": lambda body: structure_capabilities(
        body, route=ROUTE, single=False
    ),
    "connect": lambda body: structure_connect(body, route=ROUTE),
}
"""The SDK's decoding of each kind of answer, as its routes call it."""


def _loads_and(decode: Callable[[Any], object], raw: bytes) -> object:
    return decode(json.loads(raw))


def _per_call(work: Callable[[], object], rounds: int) -> float:
    loops = 1
    while True:
        started = time.process_time()
        for _ in range(loops):
            work()
        spent = time.process_time() - started
        if spent >= ROUND_SECONDS / 4:
            break
        loops *= 4
    loops = max(1, int(loops * ROUND_SECONDS / max(spent, 1e-9)))
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(loops):
            work()
        samples.append((time.process_time() - started) / loops)
    return statistics.median(samples) * 1e6


def decode_figures(bodies: dict[str, dict[str, str]], *, rounds: int) -> dict[str, Any]:
    """
    Microseconds per body for each named body: json.loads, and with decoding.

    :param bodies: name to ``{"kind": a key of DECODERS, "raw": the JSON text}``.
    """
    figures: dict[str, Any] = {}
    for name, body in bodies.items():
        raw = body["raw"].encode()
        decode = DECODERS[body["kind"]]
        decode(json.loads(raw))
        json_us = _per_call(functools.partial(json.loads, raw), rounds)
        sdk_us = _per_call(functools.partial(_loads_and, decode, raw), rounds)
        figures[name] = {
            "kind": body["kind"],
            "bytes": len(raw),
            "json_us": json_us,
            "sdk_us": sdk_us,
            "ratio": sdk_us / json_us,
        }
    return figures
