"""
A bulk job: connect every browser provider for many organisations at once,
then wait on all their sessions through one monitor.

Each organisation has its own key; every copy of the client made with
``with_options`` shares one connection pool and one concurrency limit.
Keys come from the environment, never from the code::

    OUTLIT_API_KEY=ok_... ACME_KEY=ok_... python examples/bulk_onboarding.py ACME_KEY
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter

from outlit_async import AsyncOutlit, BrowserSession, Provider

BROWSER_PROVIDERS = [p for p in Provider if p.connects_in_browser]


async def onboard(key_variables: list[str]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    async with AsyncOutlit(max_concurrency=32) as client:
        organisations = {
            name: client.with_options(api_key=os.environ[name])
            for name in key_variables
        }
        async with client.monitor() as monitor:
            for name, org in organisations.items():
                for provider in BROWSER_PROVIDERS:
                    session = await org.integrations.connect(provider)
                    assert isinstance(session, BrowserSession)
                    print(f"{name} {provider}: open {session.connect_url}")
                    monitor.watch_connection(
                        session.session_id,
                        client=org,
                        tag=(name, provider.value),
                        timeout=600,
                    )
            async for change in monitor:
                if change.terminal:
                    outcome = (
                        type(change.error).__name__ if change.error else "connected"
                    )
                    outcomes[outcome] += 1
                    print(f"{change.key.tag}: {outcome}")
    return outcomes


if __name__ == "__main__":
    names = sys.argv[1:] or ["OUTLIT_API_KEY"]
    print(dict(asyncio.run(onboard(names))))
