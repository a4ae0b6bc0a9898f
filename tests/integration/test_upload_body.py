"""A large request body (an upload chunk) goes out in slices with its exact Content-Length, over a
real socket, and is sent whole again when the first try is answered with a 503 (issue 13: a chunk
is held once, not a second time in the socket's write buffer)."""
from __future__ import annotations

import asyncio

from aiohttp import web

from drivesync import transport as transport_mod
from drivesync.config import Settings
from drivesync.transport import Transport


def test_a_big_body_is_sliced_sent_with_content_length_and_resent_whole_on_a_retry():
    body = bytes(range(256)) * (3 * transport_mod.SLICE // 256) + b"tail"    # three slices and a bit
    seen: list[tuple[str | None, str | None, bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        got = await request.read()
        seen.append((request.headers.get("Content-Length"), request.headers.get("Transfer-Encoding"), got))
        if len(seen) == 1:
            return web.Response(status=503, text="try again")
        return web.json_response({"ok": True})

    async def main() -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_put("/upload", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            settings = Settings(backoff_base=0.01, backoff_cap=0.02)
            async with Transport(settings, None) as t:
                reply = await t.request("PUT", f"http://127.0.0.1:{port}/upload", data=body, ok=(200,),
                                        what="upload chunk")
            assert reply.status == 200 and reply.data == {"ok": True}
        finally:
            await runner.cleanup()

    asyncio.run(main())
    assert len(seen) == 2, "the 503 is retried once"
    for length, encoding, got in seen:
        assert length == str(len(body))           # Drive's resumable upload wants the exact length
        assert encoding is None                    # never chunked transfer-encoding
        assert got == body                         # every try carries the whole chunk, in order
