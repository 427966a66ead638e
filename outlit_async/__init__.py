"""
An asyncio SDK for the Outlit integrations API.

Connect providers, then watch thousands of connect sessions and syncs at once,
each change delivered as an item of an async iterator.
"""

from __future__ import annotations

from ._client import DEFAULT_BASE_URL as DEFAULT_BASE_URL
from ._client import AsyncOutlit as AsyncOutlit
from ._errors import APIConnectionError as APIConnectionError
from ._errors import APIError as APIError
from ._errors import APIStatusError as APIStatusError
from ._errors import APITimeoutError as APITimeoutError
from ._errors import AuthenticationError as AuthenticationError
from ._errors import BadRequestError as BadRequestError
from ._errors import ConfigurationError as ConfigurationError
from ._errors import ConnectionExpiredError as ConnectionExpiredError
from ._errors import ConnectionFailedError as ConnectionFailedError
from ._errors import ConnectionLimitError as ConnectionLimitError
from ._errors import NotConnectedError as NotConnectedError
from ._errors import OutlitError as OutlitError
from ._errors import PollError as PollError
from ._errors import PollTimeoutError as PollTimeoutError
from ._errors import RateLimitError as RateLimitError
from ._errors import ResponseValidationError as ResponseValidationError
from ._errors import ServerError as ServerError
from ._errors import ValidationIssue as ValidationIssue
from ._integrations import Integrations as Integrations
from ._models import BrowserSession as BrowserSession
from ._models import Capability as Capability
from ._models import ConnectionState as ConnectionState
from ._models import ConnectionStatus as ConnectionStatus
from ._models import CredentialField as CredentialField
from ._models import DirectConnection as DirectConnection
from ._models import DisconnectResult as DisconnectResult
from ._models import Integration as Integration
from ._models import IntegrationStatus as IntegrationStatus
from ._models import ModelSync as ModelSync
from ._models import PostConnectStep as PostConnectStep
from ._models import Provider as Provider
from ._models import SetupStepResult as SetupStepResult
from ._models import SyncState as SyncState
from ._models import SyncStatus as SyncStatus
from ._models import Transition as Transition
from ._models import WatchKey as WatchKey
from ._monitor import Monitor as Monitor
from ._polling import Watch as Watch
from ._version import __version__ as __version__

__all__ = (
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncOutlit",
    "AuthenticationError",
    "BadRequestError",
    "BrowserSession",
    "Capability",
    "ConfigurationError",
    "ConnectionExpiredError",
    "ConnectionFailedError",
    "ConnectionLimitError",
    "ConnectionState",
    "ConnectionStatus",
    "CredentialField",
    "DirectConnection",
    "DisconnectResult",
    "Integration",
    "IntegrationStatus",
    "Integrations",
    "ModelSync",
    "Monitor",
    "NotConnectedError",
    "OutlitError",
    "PollError",
    "PollTimeoutError",
    "PostConnectStep",
    "Provider",
    "RateLimitError",
    "ResponseValidationError",
    "ServerError",
    "SetupStepResult",
    "SyncState",
    "SyncStatus",
    "Transition",
    "ValidationIssue",
    "Watch",
    "WatchKey",
    "__version__",
)

for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type):
        _value.__module__ = __name__
del _name, _value
