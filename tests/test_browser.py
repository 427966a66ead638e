"""
End to end through a real browser: headless Chromium clicks the sandbox's
connect page while the SDK watches the session.

Chromium is driven by chromedriver over the W3C WebDriver protocol, spoken
with aiohttp, so no browser package is needed in Python. Debian's packages
``chromium`` and ``chromium-driver`` provide both; without them these tests
are skipped, with the reason, unless ``OUTLIT_REQUIRE_BROWSER=1`` is set (as
in CI): then a missing browser fails them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import aiohttp
import anyio
import pytest

from outlit_async import (
    AsyncOutlit,
    BrowserSession,
    ConnectionFailedError,
    ConnectionStatus,
    Transition,
)
from outlit_async.testing import FakeOutlit

pytestmark = pytest.mark.anyio

CHROMIUM: Final = "/usr/bin/chromium"
ELEMENT: Final = "element-6066-11e4-a52e-4f735466cecf"
"""The key under which WebDriver answers an element reference."""
ARGS: Final = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-proxy-server",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _call(method: str, url: str, body: object = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())["value"]


def _find_driver() -> str:
    """
    The path of chromedriver, once it and Chromium are both installed.

    A missing one skips the test, or fails it if ``OUTLIT_REQUIRE_BROWSER=1``.
    """
    driver = shutil.which("chromedriver")
    if driver is not None and os.path.exists(CHROMIUM):
        return driver
    missing = [
        name
        for name, absent in (
            (CHROMIUM, not os.path.exists(CHROMIUM)),
            ("chromedriver on PATH", driver is None),
        )
        if absent
    ]
    reason = (
        f"the browser test needs {' and '.join(missing)}: "
        "apt-get install -y chromium chromium-driver"
    )
    if os.environ.get("OUTLIT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (OUTLIT_REQUIRE_BROWSER=1)")
    pytest.skip(f"{reason} (set OUTLIT_REQUIRE_BROWSER=1 to fail instead)")


def _start_driver(port: int) -> subprocess.Popen[bytes]:
    driver = _find_driver()
    process = subprocess.Popen(
        [driver, f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if _call("GET", f"http://127.0.0.1:{port}/status")["ready"]:
                return process
        time.sleep(0.05)
    process.kill()
    process.wait()
    pytest.fail("chromedriver did not become ready within 20 s")


@pytest.fixture(scope="module")
def webdriver() -> Iterator[str]:
    """
    One headless Chromium for the module: the URL of its WebDriver session.
    """
    port = _free_port()
    process = _start_driver(port)
    base = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="outlit-chromium-") as profile:
            options = {
                "binary": CHROMIUM,
                "args": [*ARGS, f"--user-data-dir={profile}"],
            }
            capabilities = {
                "alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}
            }
            try:
                created = _call(
                    "POST", f"{base}/session", {"capabilities": capabilities}
                )
            except urllib.error.HTTPError as exc:
                pytest.fail(f"Chromium did not start: {exc.read().decode()[:500]}")
            session = f"{base}/session/{created['sessionId']}"
            # A click that submits a form returns before the next page loads:
            # finding an element waits up to 10 s for it to appear.
            _call("POST", f"{session}/timeouts", {"implicit": 10_000})
            try:
                yield session
            finally:
                with contextlib.suppress(OSError):
                    _call("DELETE", session)
    finally:
        process.terminate()
        process.wait(timeout=10)


class Browser:
    """
    The few WebDriver commands the tests use, sent with aiohttp.

    They are async so that the page load, which FakeOutlit answers on the
    test's own event loop, can be served while a command waits.
    """

    def __init__(self, http: aiohttp.ClientSession, session: str) -> None:
        self._http = http
        self._session = session

    async def _send(self, method: str, path: str, body: object = None) -> Any:
        async with self._http.request(
            method, self._session + path, json=body
        ) as answer:
            payload = await answer.json()
            assert answer.status == 200, payload
            return payload["value"]

    async def open(self, url: str) -> None:
        await self._send("POST", "/url", {"url": url})

    async def find(self, css: str) -> str:
        found = await self._send(
            "POST", "/element", {"using": "css selector", "value": css}
        )
        element: str = found[ELEMENT]
        return element

    async def click(self, css: str) -> None:
        await self._send("POST", f"/element/{await self.find(css)}/click", {})

    async def text(self, css: str) -> str:
        text: str = await self._send("GET", f"/element/{await self.find(css)}/text")
        return text


async def _click_through(
    webdriver: str, button: str
) -> tuple[list[Transition[ConnectionStatus]], str, str, float]:
    """
    Connect hubspot, watch the session while the browser clicks ``button``.

    :return: the watch's transitions, the page's headline before and after the
        click, and the seconds it all took.
    """
    started = time.monotonic()
    changes: list[Transition[ConnectionStatus]] = []
    first_seen = anyio.Event()
    async with (
        FakeOutlit() as fake,
        AsyncOutlit(fake.api_key, base_url=fake.url) as client,
        aiohttp.ClientSession() as http,
    ):
        session = await client.integrations.connect("hubspot")
        assert isinstance(session, BrowserSession)
        browser = Browser(http, webdriver)

        async def watch() -> None:
            watcher = client.integrations.watch_connection(
                session.session_id, interval=0.05, timeout=30
            )
            async for change in watcher:
                changes.append(change)
                first_seen.set()

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(watch)
                await browser.open(session.connect_url)
                headline = await browser.text("h1")
                await first_seen.wait()
                await browser.click(f"#{button}")
                result = await browser.text("#result")
    return changes, headline, result, time.monotonic() - started


def _states(
    changes: list[Transition[ConnectionStatus]],
) -> list[tuple[str | None, str | None]]:
    return [
        (
            None if c.previous is None else str(c.previous.status),
            None if c.current is None else str(c.current.status),
        )
        for c in changes
    ]


async def test_approve_in_the_browser_connects(webdriver: str) -> None:
    """Approve on the connect page: the SDK's watcher sees pending -> connected."""
    changes, headline, result, _ = await _click_through(webdriver, "approve")

    assert headline == "Connect HubSpot to Outlit"
    assert result == "HubSpot connected"
    assert _states(changes) == [(None, "pending"), ("pending", "connected")]
    assert changes[-1].terminal
    assert changes[-1].error is None


async def test_deny_in_the_browser_fails(webdriver: str) -> None:
    """Clicking Deny: the watcher sees pending -> failed, with ConnectionFailedError."""
    changes, _, result, _ = await _click_through(webdriver, "deny")

    assert result == "Access denied"
    assert _states(changes) == [(None, "pending"), ("pending", "failed")]
    assert isinstance(changes[-1].error, ConnectionFailedError)
    assert changes[-1].error.error == "User denied access"


@pytest.fixture
def no_browser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """
    Neither Chromium nor chromedriver can be found, whatever is installed.
    """
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", str(tmp_path / "none"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("OUTLIT_REQUIRE_BROWSER", raising=False)


def test_a_missing_browser_skips_with_the_reason(no_browser: None) -> None:
    """Without Chromium or chromedriver, the browser tests are skipped, saying why."""
    with pytest.raises(pytest.skip.Exception) as skipped:
        _find_driver()

    reason = str(skipped.value)
    assert "needs" in reason and "chromedriver on PATH" in reason
    assert "apt-get install -y chromium chromium-driver" in reason


def test_a_missing_browser_fails_when_required(
    no_browser: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With OUTLIT_REQUIRE_BROWSER=1, a missing browser fails instead of skipping."""
    monkeypatch.setenv("OUTLIT_REQUIRE_BROWSER", "1")

    with pytest.raises(pytest.fail.Exception) as failed:
        _find_driver()

    assert "OUTLIT_REQUIRE_BROWSER=1" in str(failed.value)
    assert "chromedriver on PATH" in str(failed.value)


def test_the_old_skip_switch_does_not_silence_a_required_browser(
    no_browser: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OUTLIT_SKIP_BROWSER, left over in an environment, no longer skips anything."""
    monkeypatch.setenv("OUTLIT_SKIP_BROWSER", "1")
    monkeypatch.setenv("OUTLIT_REQUIRE_BROWSER", "1")

    with pytest.raises(pytest.fail.Exception):
        _find_driver()
