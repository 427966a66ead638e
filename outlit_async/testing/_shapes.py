"""
The error bodies of the Outlit integrations API, shared by routes and faults.
"""

from __future__ import annotations

from typing import Any, Final

INVALID_REQUEST: Final = "Invalid request"
INVALID_CREDENTIALS: Final = {"error": "Invalid credentials"}
NOT_CONNECTED: Final = {"success": False, "message": "Integration is not connected"}
LIMIT_MESSAGE: Final = "Your plan has reached its integration connection limit."

Issue = dict[str, Any]


def issue(path: list[str | int], message: str) -> Issue:
    """
    Describe one validation problem, as a ``ValidationIssue``.

    :param path: where the problem is, key by key
    :param message: what is wrong
    """
    return {"path": path, "message": message}


def error(message: str, details: list[Issue] | None = None) -> dict[str, Any]:
    """
    Build an ``ErrorResponse`` body.

    :param message: the ``error`` text
    :param details: the validation issues, if any
    """
    if details is None:
        return {"error": message}
    return {"error": message, "details": details}


def limit_exceeded(plan: str, connections: int, limit: int) -> dict[str, Any]:
    """
    Build the 403 body of an organisation at its plan's connection limit.

    :param plan: the plan
    :param connections: how many providers it has connected
    :param limit: how many its plan allows
    """
    return {
        "error": LIMIT_MESSAGE,
        "code": "plan_connection_limit_exceeded",
        "feature": "integration_connections",
        "plan": plan,
        "currentConnections": connections,
        "limit": limit,
    }
