"""
A connect link can only send the user to the API's own host.

``connect`` answers a :class:`BrowserSession` whose ``connect_url`` the caller
shows to a user. The SDK accepts it only when it is https on the host of
``base_url`` (plain http only when that host is a loopback address, for the
sandbox), so a wrong or tampered answer can never send a user elsewhere. The
port may differ: a port on the same host is served by the same operator, and
over https the certificate still names that host.

FakeOutlit answers the links below in place of its own: a ``status`` fault of
200 with a body replaces the answer, and the request is not acted on.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

import pytest

from outlit_async import AsyncOutlit, BrowserSession, ResponseValidationError
from outlit_async.testing import FakeOutlit, Fault

pytestmark = pytest.mark.anyio

CONNECT: Final = "/api/integrations/connect"
OTHER_PORT: Final = 1

REFUSED: Final = {
    "another host": "https://evil.example/connect/s1",
    "plain http elsewhere": "http://evil.example/connect/s1",
    "javascript": "javascript:alert(document.cookie)",
    "data": "data:text/html,<script>alert(1)</script>",
    "relative path": "/connect/s1",
    "scheme-relative": "//{host}/connect/s1",
    "no slashes": "https:{host}/connect/s1",
    "empty": "",
    "ftp": "ftp://{host}/connect/s1",
    "our host as user info": "https://{host}@evil.example/connect/s1",
    "user info on our host": "https://user:pass@{host}/connect/s1",
    "empty user info": "https://@{host}/connect/s1",
    "backslash before @": "https://evil.example\\@{host}/connect/s1",
    "fullwidth # before @": "https://evil.example\uff03@{host}/connect/s1",
    "tab before @": "https://{host}\t@evil.example/connect/s1",
    "our host as a subdomain": "https://{host}.evil.example/connect/s1",
    "another loopback name": "http://localhost:{port}/connect/s1",
    "bad port": "http://{host}:http/connect/s1",
    "port out of range": "http://{host}:99999/connect/s1",
    "unclosed IPv6": "https://[::1/connect/s1",
}
"""Links that must be refused, for a client whose base_url is FakeOutlit's."""

ACCEPTED: Final = {
    "same host and port": "http://{host}:{port}/connect/s1",
    "same host, another port": "http://{host}:" + str(OTHER_PORT) + "/connect/s1",
    "https on the same host": "https://{host}/connect/s1",
    "upper-case scheme": "HTTP://{host}:{port}/connect/s1",
}
"""Links that fit: https, or plain http since the host is a loopback address."""


def _link(template: str, fake: FakeOutlit) -> str:
    parts = urlsplit(fake.url)
    return template.format(host=parts.hostname, port=parts.port)


def _session(connect_url: str) -> Fault:
    body = {"sessionId": "s1", "connectUrl": connect_url, "alreadyConnected": False}
    return Fault.status(200, body=body)


@pytest.mark.parametrize("template", REFUSED.values(), ids=list(REFUSED))
async def test_a_link_off_the_api_host_is_refused(
    template: str, fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """An answered link that is not https (or loopback http) on our host is refused."""
    fake.faults.add(CONNECT, _session(_link(template, fake)))

    with pytest.raises(ResponseValidationError) as caught:
        await client.integrations.connect("hubspot")

    assert caught.value.route == f"POST {CONNECT}"
    assert [e.split(":")[0] for e in caught.value.errors] == ["$.connectUrl"]
    assert "/connect/s1" not in str(caught.value)


@pytest.mark.parametrize("template", ACCEPTED.values(), ids=list(ACCEPTED))
async def test_a_link_on_the_api_host_is_accepted(
    template: str, fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """A link on the same host, https or loopback http, is handed to the caller."""
    link = _link(template, fake)
    fake.faults.add(CONNECT, _session(link))

    session = await client.integrations.connect("hubspot")

    assert session == BrowserSession("s1", link, already_connected=False)


async def test_fakeoutlits_own_link_is_accepted(
    fake: FakeOutlit, client: AsyncOutlit
) -> None:
    """The sandbox's real connect link passes the check."""
    session = await client.integrations.connect("hubspot")

    assert isinstance(session, BrowserSession)
    assert session.connect_url.startswith(f"{fake.url}/connect/")


@pytest.mark.parametrize(
    ("link", "accepted"),
    [
        ("https://app.outlit.ai/connect/s1", True),
        ("https://app.outlit.ai:8443/connect/s1", True),
        ("https://APP.outlit.ai/connect/s1", True),
        ("http://app.outlit.ai/connect/s1", False),
        ("http://127.0.0.1/connect/s1", False),
        ("https://app.outlit.ai.evil.example/connect/s1", False),
        ("https://app.outlit.ai@evil.example/connect/s1", False),
        ("https://evil.example\\@app.outlit.ai/connect/s1", False),
        ("https://evil.example#@app.outlit.ai/connect/s1", False),
        ("https://evil.example?@app.outlit.ai/connect/s1", False),
        ("https://app.outlit.ai./connect/s1", False),
        ("https://app.outl\u0456t.ai/connect/s1", False),
        ("https://app\uff0eoutlit\uff0eai/connect/s1", False),
    ],
)
def test_the_rule_for_an_https_base_url(link: str, accepted: bool) -> None:
    """Against https://app.outlit.ai only https on that very host passes."""
    integrations = AsyncOutlit("ok_key", base_url="https://app.outlit.ai").integrations

    if accepted:
        integrations._check_connect_url(link)
    else:
        with pytest.raises(ResponseValidationError):
            integrations._check_connect_url(link)
