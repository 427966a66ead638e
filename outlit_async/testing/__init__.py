"""
A fake Outlit integrations API for tests, benchmarks and the sandbox.

:class:`FakeOutlit` serves the seven integration routes from memory, exactly as
the API shapes them, on a local port. Sessions and syncs move by script or by
hand, faults can be injected per route or at random, and every request is
logged for assertions. It speaks only HTTP and JSON and imports nothing from
the client, so it can test any client.
"""

from __future__ import annotations

from ._faults import TRANSIENT_FAULTS as TRANSIENT_FAULTS
from ._faults import Fault as Fault
from ._faults import FaultPlan as FaultPlan
from ._records import RecordedRequest as RecordedRequest
from ._server import FakeOutlit as FakeOutlit
from ._state import Connection as Connection
from ._state import FakeSession as FakeSession
from ._state import Organization as Organization
from ._state import SessionScript as SessionScript
from ._state import SyncModel as SyncModel
from ._state import SyncScript as SyncScript

__all__ = (
    "TRANSIENT_FAULTS",
    "Connection",
    "FakeOutlit",
    "FakeSession",
    "Fault",
    "FaultPlan",
    "Organization",
    "RecordedRequest",
    "SessionScript",
    "SyncModel",
    "SyncScript",
)

for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type):
        _value.__module__ = __name__
del _name, _value
