"""
The README's snippets and the scripts in examples/ run as they are written.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web

from outlit_async import AsyncOutlit
from outlit_async.testing import FakeOutlit, Fault, SessionScript, SyncScript

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def _run(script: str, *args: str, fake: FakeOutlit, **keys: str) -> str:
    env = {
        **os.environ,
        "OUTLIT_API_KEY": fake.api_key,
        "OUTLIT_BASE_URL": fake.url,
        **keys,
    }
    result = await anyio.run_process(
        [sys.executable, str(EXAMPLES / script), *args], env=env, check=False
    )
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    return output


async def test_the_readme_fake_outlit_snippet_holds() -> None:
    """A 503 on one poll costs one request more, and the session still connects."""
    async with FakeOutlit(
        session_script=SessionScript("connected", after_polls=3)
    ) as fake:
        fake.faults.add(
            "/api/integrations/connect/status", Fault.status(503, retry_after="0.1")
        )
        async with AsyncOutlit(fake.api_key, base_url=fake.url) as client:
            session = await client.integrations.connect("hubspot")
            await client.integrations.wait_for_connection(
                session.session_id, interval=0.05
            )
        assert len(fake.requests_to("/api/integrations/connect/status")) == 4


async def test_the_sync_script_follows_a_sync_to_the_end() -> None:
    """examples/watch_sync.py prints each change and exits 0 once all synced."""
    async with FakeOutlit(sync_script=SyncScript(succeed_after_polls=2)) as fake:
        fake.connect_provider("stripe")
        output = await _run("watch_sync.py", "stripe", "0.05", fake=fake)

    lines = output.splitlines()
    assert "PENDING" in lines[0]
    assert "PENDING" not in lines[-1]
    assert "SUCCESS" in lines[-1]


async def test_the_bulk_job_waits_on_every_session_of_every_organisation() -> None:
    """examples/bulk_onboarding.py connects five providers per key and sees each end."""
    script = SessionScript("connected", after_polls=1)
    async with FakeOutlit(session_script=script) as fake:
        fake.add_organization("ok_second_org")
        output = await _run(
            "bulk_onboarding.py",
            "OUTLIT_API_KEY",
            "SECOND_KEY",
            fake=fake,
            SECOND_KEY="ok_second_org",
        )

    assert output.count("open http://127.0.0.1") == 10
    assert output.splitlines()[-1] == "{'connected': 10}"


async def test_the_web_handler_answers_the_connect_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """examples/web_handler.py answers a session id and a link, then its status."""
    spec = importlib.util.spec_from_file_location(
        "web_handler", EXAMPLES / "web_handler.py"
    )
    assert spec is not None and spec.loader is not None
    web_handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(web_handler)

    async with FakeOutlit() as fake:
        monkeypatch.setenv("OUTLIT_API_KEY", fake.api_key)
        monkeypatch.setenv("OUTLIT_BASE_URL", fake.url)
        runner = web.AppRunner(web_handler.make_app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                async with http.post("/connect/hubspot") as answer:
                    started = await answer.json()
                fake.complete_session(started["session_id"])
                async with http.get(f"/connections/{started['session_id']}") as answer:
                    status = await answer.json()
        finally:
            await runner.cleanup()
        assert started["connect_url"].startswith(fake.url)

    assert status == {"status": "connected", "error": None}
