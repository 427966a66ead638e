from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from outlit_async import AsyncOutlit
from outlit_async.testing import FakeOutlit


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOutlit]:
    async with FakeOutlit() as server:
        yield server


@pytest.fixture
async def client(fake: FakeOutlit) -> AsyncIterator[AsyncOutlit]:
    async with AsyncOutlit(
        fake.api_key, base_url=fake.url, timeout=2.0, retry_delay=0.01
    ) as outlit:
        yield outlit
