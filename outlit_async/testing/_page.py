"""
The connect page a developer clicks through in the sandbox.

Every value inserted into the HTML is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Final

_STYLE: Final = """
body { font: 16px/1.5 system-ui, sans-serif; background: #f5f5f4; color: #1c1917;
       display: flex; justify-content: center; margin: 0; padding: 4rem 1rem; }
main { background: #fff; border-radius: 12px; box-shadow: 0 1px 4px #0002;
       max-width: 28rem; padding: 2rem; width: 100%; }
h1 { font-size: 1.25rem; margin: 0 0 .5rem; }
p { color: #57534e; margin: 0 0 1.5rem; }
.actions { display: flex; gap: .75rem; }
form { margin: 0; }
button { border: 0; border-radius: 8px; cursor: pointer; font: inherit;
         padding: .6rem 1.4rem; }
#approve { background: #1c1917; color: #fff; }
#deny { background: #e7e5e4; color: #1c1917; }
small { color: #a8a29e; display: block; margin-top: 1.5rem; }
"""


def _document(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def connect_page(session_id: str, provider_name: str) -> str:
    """
    Render the page that asks the user to approve a connection.

    :param session_id: the pending session
    :param provider_name: the provider's display name
    """
    name = escape(provider_name)
    base = f"/connect/{escape(session_id)}"
    body = (
        f"<h1>Connect {name} to Outlit</h1>\n"
        f"<p>Outlit asks for read access to your {name} account.</p>\n"
        '<div class="actions">\n'
        f'<form method="post" action="{base}/approve">'
        '<button id="approve" type="submit">Approve</button></form>\n'
        f'<form method="post" action="{base}/deny">'
        '<button id="deny" type="submit">Deny</button></form>\n'
        "</div>\n"
        "<small>FakeOutlit sandbox: no data leaves this machine.</small>"
    )
    return _document(f"Connect {provider_name}", body)


def result_page(title: str, message: str) -> str:
    """
    Render the page that tells the user what became of a connection request.

    :param title: the headline
    :param message: one sentence of detail
    """
    body = (
        f'<h1 id="result">{escape(title)}</h1>\n'
        f"<p>{escape(message)}</p>\n"
        "<small>You can close this window.</small>"
    )
    return _document(title, body)
