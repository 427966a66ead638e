"""
A script that follows one provider's first sync until every model has
finished, printing each change::

    OUTLIT_API_KEY=ok_... python examples/watch_sync.py stripe
"""

from __future__ import annotations

import asyncio
import sys

from outlit_async import AsyncOutlit


async def follow(provider: str, interval: float) -> bool:
    async with AsyncOutlit() as client:
        watch = client.integrations.watch_sync(
            provider, interval=interval, until=lambda s: s.all_synced or s.any_failed
        )
        async for change in watch:
            status = change.current
            assert status is not None
            models = ", ".join(f"{s.model}={s.status}" for s in status.syncs)
            print(f"{status.provider}: {status.status} [{models}]")
            if change.terminal:
                return status.all_synced
    return False


if __name__ == "__main__":
    provider = sys.argv[1] if len(sys.argv) > 1 else "stripe"
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    sys.exit(0 if asyncio.run(follow(provider, interval)) else 1)
