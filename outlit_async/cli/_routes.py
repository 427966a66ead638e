"""
One subcommand per route: list, capabilities, connect, status, disconnect,
sync-status and setup-step.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from .._models import BrowserSession, Capability, SyncStatus
from . import _tables
from ._exit import Exit
from ._inputs import make_client, read_config
from ._render import Output, to_json

__all__ = (
    "capabilities",
    "connect",
    "disconnect",
    "list_integrations",
    "setup_step",
    "status",
    "sync_status",
)


async def list_integrations(args: argparse.Namespace, out: Output) -> Exit:
    """
    ``list``: every provider and whether it is connected.
    """
    async with make_client(args) as client:
        items = await client.integrations.list(connected_only=args.connected_only)
    records = [to_json(item) for item in items]
    out.result(
        {"items": records},
        records,
        lambda: _tables.table(
            "Integrations",
            ["provider", "name", "category", "status", "sync", "last data", "error"],
            [
                [
                    item.id,
                    item.name,
                    item.category,
                    item.status,
                    item.sync_status,
                    _tables.when(item.last_data_received_at),
                    item.error_message,
                ]
                for item in items
            ],
        ),
    )
    return Exit.OK


async def capabilities(args: argparse.Namespace, out: Output) -> Exit:
    """
    ``capabilities [PROVIDER]``: how one provider, or every provider, is set up.
    """
    async with make_client(args) as client:
        if args.provider is None:
            found: Mapping[str, Capability] = await client.integrations.capabilities()
        else:
            one = await client.integrations.capabilities(args.provider)
            found = {str(one.provider_id): one}
    document = {name: to_json(cap) for name, cap in found.items()}
    out.result(
        document if args.provider is None else next(iter(document.values())),
        document.values(),
        lambda: _tables.table(
            "Capabilities",
            ["provider", "connects", "credentials", "setup steps"],
            [
                [
                    name,
                    "in browser" if cap.connects_in_browser else "with credentials",
                    ", ".join(field.key for field in cap.required_fields) or "-",
                    ", ".join(
                        step.id + ("" if step.required else " (optional)")
                        for step in cap.post_connect_steps
                    )
                    or "-",
                ]
                for name, cap in found.items()
            ],
        ),
    )
    return Exit.OK


async def connect(args: argparse.Namespace, out: Output) -> Exit:
    """
    ``connect PROVIDER``: connect with credentials, or open a browser session.

    The output names the connection or the session, never the config.
    """
    config = read_config(args)
    async with make_client(args) as client:
        answer = await client.integrations.connect(args.provider, config)
    document: dict[str, Any] = {"provider": args.provider, **to_json(answer)}
    title = f"Connect {args.provider}"
    if isinstance(answer, BrowserSession):
        title += f": open the link, then run 'outlit-async wait {answer.session_id}'"
    out.result(document, [document], lambda: _tables.key_values(title, document))
    return Exit.OK


async def status(args: argparse.Namespace, out: Output) -> Exit:
    """
    ``status SESSION_ID``: the state of a browser connection session.
    """
    async with make_client(args) as client:
        answer = await client.integrations.connection_status(args.session_id)
    document = {"session_id": args.session_id, **to_json(answer)}
    out.result(
        document, [document], lambda: _tables.key_values("Connect session", document)
    )
    return Exit.OK


async def disconnect(args: argparse.Namespace, out: Output) -> Exit:
    """
    ``disconnect PROVIDER``; a provider that is not connected fails (status 1).
    """
    async with make_client(args) as client:
        answer = await client.integrations.disconnect(args.provider)
    document = {"provider": args.provider, **to_json(answer)}
    out.result(document, [document], lambda: _tables.key_values(None, document))
    return Exit.OK


async def sync_status(args: argparse.Namespace, out: Output) -> Exit:
    """
    ``sync-status PROVIDER``: the connection and each model's last sync.
    """
    async with make_client(args) as client:
        answer = await client.integrations.sync_status(args.provider)
    document = to_json(answer)
    out.result(document, [document], lambda: _sync_table(answer))
    return Exit.OK


def _sync_table(answer: SyncStatus) -> Any:
    return _tables.table(
        f"{answer.name} ({answer.provider}): {answer.status}",
        ["model", "status", "last synced", "error"],
        [
            [s.model, s.status, _tables.when(s.last_synced_at), s.error_message]
            for s in answer.syncs
        ],
    )


async def setup_step(args: argparse.Namespace, out: Output) -> Exit:
    """
    ``setup-step PROVIDER STEP``: run a follow-up step; its answer is shown whole.
    """
    config = read_config(args)
    async with make_client(args) as client:
        answer = await client.integrations.setup_step(args.provider, args.step, config)
    document = to_json(answer)
    out.result(
        document,
        [document],
        lambda: _tables.key_values(f"{args.provider} {args.step}", document),
    )
    return Exit.OK
