"""
An aiohttp web app that connects a provider from a request handler.

``POST /connect/{provider}`` starts the connection and answers the link the
user's browser should open; ``GET /connections/{session_id}`` tells the page
how it went. One client serves every request and shares its connections.

Run it against the sandbox (``outlit-async sandbox``) or the real API, with
``OUTLIT_API_KEY`` (and ``OUTLIT_BASE_URL``) set::

    python examples/web_handler.py --port 8080
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

from aiohttp import web

from outlit_async import AsyncOutlit, BrowserSession, OutlitError

CLIENT = web.AppKey("outlit", AsyncOutlit)


async def outlit_client(app: web.Application) -> AsyncIterator[None]:
    async with AsyncOutlit() as client:
        app[CLIENT] = client
        yield


async def start_connect(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    try:
        result = await client.integrations.connect(request.match_info["provider"])
    except OutlitError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    if not isinstance(result, BrowserSession):
        return web.json_response({"connected": result.connected})
    return web.json_response(
        {"session_id": result.session_id, "connect_url": result.connect_url}
    )


async def connection(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    status = await client.integrations.connection_status(
        request.match_info["session_id"]
    )
    return web.json_response({"status": str(status.status), "error": status.error})


def make_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(outlit_client)
    app.router.add_post("/connect/{provider}", start_connect)
    app.router.add_get("/connections/{session_id}", connection)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--port", type=int, default=8080)
    web.run_app(make_app(), host="127.0.0.1", port=parser.parse_args().port)
