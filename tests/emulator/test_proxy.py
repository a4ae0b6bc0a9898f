"""The TLS-terminating CONNECT proxy (drivesync/emulator/proxy.py) and its CA (tls.py).

These run against a tiny aiohttp upstream of their own, so they do not depend on the emulator.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import socket
import ssl
import stat

import httpx
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from drivesync.emulator.proxy import start_proxy
from drivesync.emulator.tls import GOOGLE_HOSTS, ensure_ca, leaf_context


# ---------------------------------------------------------------------------------------------
# CA


def test_ensure_ca_is_cached_and_key_private(tmp_path):
    cert, key = ensure_ca(tmp_path / "ca")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    before = open(cert, "rb").read()
    assert ensure_ca(tmp_path / "ca") == (cert, key)
    assert open(cert, "rb").read() == before  # reused, not regenerated
    ca = x509.load_pem_x509_certificate(before)
    assert ca.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca
    now = dt.datetime.now(dt.timezone.utc)
    assert ca.not_valid_before_utc <= now - dt.timedelta(hours=23)
    assert ca.not_valid_after_utc >= now + dt.timedelta(days=364)


def test_ensure_ca_replaces_a_broken_pair(tmp_path):
    cert, key = ensure_ca(tmp_path)
    open(key, "w").write("garbage")
    cert2, key2 = ensure_ca(tmp_path)
    x509.load_pem_x509_certificate(open(cert2, "rb").read())
    assert "garbage" not in open(key2).read()


def test_leaf_context_verifies_for_google_hosts_and_extras(tmp_path):
    ctx = leaf_context(tmp_path, ["example.test", "127.0.0.1"])
    cert_path, _ = ensure_ca(tmp_path)
    client = ssl.create_default_context(cafile=cert_path)
    for name in (*GOOGLE_HOSTS, "example.test"):
        assert _handshake(ctx, client, name) == name
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(ctx, client, "evil.example.com")


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, name: str) -> str:
    """Memory-BIO handshake; return the name the client verified."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    srv = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    cli = client_ctx.wrap_bio(c_in, c_out, server_hostname=name)
    for _ in range(10):
        for side in (cli, srv):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if cli.version() and srv.version():
            try:
                cli.do_handshake()
                return name
            except ssl.SSLWantReadError:
                continue
    raise AssertionError("handshake did not finish")


# ---------------------------------------------------------------------------------------------
# proxy against a tiny upstream


async def _upstream() -> tuple[web.AppRunner, int]:
    async def echo(req: web.Request) -> web.Response:
        body = await req.read()
        return web.json_response(
            {
                "method": req.method,
                "host": req.host,
                "path": req.path_qs,
                "n": len(body),
                "md5": hashlib.md5(body).hexdigest(),
            }
        )

    async def big(req: web.Request) -> web.StreamResponse:
        n = int(req.query["n"])
        resp = web.StreamResponse()
        resp.content_length = n
        await resp.prepare(req)
        block = bytes(range(256)) * 4096  # 1 MiB
        while n > 0:
            await resp.write(block[: min(n, len(block))])
            n -= len(block)
        return resp

    async def close(req: web.Request) -> web.Response:
        return web.Response(text="bye", headers={"Connection": "close"})

    app = web.Application(client_max_size=1 << 30)
    app.router.add_get("/big", big)
    app.router.add_get("/close", close)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def _raw(port: int, data: bytes) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(data)
    await w.drain()
    out = await asyncio.wait_for(r.read(), 10)  # the proxy closes after an error answer
    w.close()
    return out


def test_connect_tunnels_https_to_upstream_with_host_header_intact(tmp_path):
    async def main():
        runner, up = await _upstream()
        srv, port, ca = await start_proxy("127.0.0.1", up, "127.0.0.1", 0, str(tmp_path))
        try:
            assert os.path.isfile(ca)
            verify = ssl.create_default_context(cafile=ca)
            async with httpx.AsyncClient(proxy=f"http://127.0.0.1:{port}", verify=verify) as c:
                r = await c.get("https://www.googleapis.com/drive/v3/files?q=trashed%3Dfalse")
                assert r.status_code == 200
                assert r.json() == {
                    "method": "GET",
                    "host": "www.googleapis.com",
                    "path": "/drive/v3/files?q=trashed%3Dfalse",
                    "n": 0,
                    "md5": hashlib.md5(b"").hexdigest(),
                }
                # keep-alive: more requests, other hosts, one tunnel per host
                for _ in range(3):
                    r = await c.post("https://oauth2.googleapis.com/token", data={"a": "b"})
                    assert r.json()["host"] == "oauth2.googleapis.com"
                r = await c.get("https://content.googleapis.com/x")
                assert r.json()["host"] == "content.googleapis.com"
            assert srv.connections == 3  # one kept-alive tunnel per host
        finally:
            srv.close()
            await srv.wait_closed()
            await runner.cleanup()

    _run(main())


def test_large_bodies_both_ways(tmp_path):
    size = 48 << 20

    async def main():
        runner, up = await _upstream()
        srv, port, ca = await start_proxy("127.0.0.1", up, "127.0.0.1", 0, str(tmp_path))
        try:
            verify = ssl.create_default_context(cafile=ca)
            async with httpx.AsyncClient(
                proxy=f"http://127.0.0.1:{port}", verify=verify, timeout=60
            ) as c:
                data = os.urandom(1 << 20) * (size >> 20)
                r = await c.post("https://www.googleapis.com/upload/drive/v3/files", content=data)
                assert r.json()["n"] == size
                assert r.json()["md5"] == hashlib.md5(data).hexdigest()

                h = hashlib.md5()
                n = 0
                async with c.stream("GET", f"https://www.googleapis.com/big?n={size + 7}") as r:
                    async for chunk in r.aiter_bytes():
                        h.update(chunk)
                        n += len(chunk)
                block = bytes(range(256)) * 4096
                want = hashlib.md5(block * (size >> 20) + block[:7]).hexdigest()
                assert (n, h.hexdigest()) == (size + 7, want)
            assert srv.bytes_up >= size and srv.bytes_down >= size
        finally:
            srv.close()
            await srv.wait_closed()
            await runner.cleanup()

    _run(main())


def test_upstream_close_ends_the_tunnel_cleanly(tmp_path):
    async def main():
        runner, up = await _upstream()
        srv, port, ca = await start_proxy("127.0.0.1", up, "127.0.0.1", 0, str(tmp_path))
        try:
            verify = ssl.create_default_context(cafile=ca)
            async with httpx.AsyncClient(proxy=f"http://127.0.0.1:{port}", verify=verify) as c:
                assert (await c.get("https://www.googleapis.com/close")).text == "bye"
                # the client notices the closed tunnel and opens a new one
                assert (await c.get("https://www.googleapis.com/again")).json()["path"] == "/again"
        finally:
            srv.close()
            await srv.wait_closed()
            await runner.cleanup()

    _run(main())


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 403),
        (b"CONNECT www.googleapis.com:80 HTTP/1.1\r\nHost: www.googleapis.com:80\r\n\r\n", 403),
        (b"CONNECT 142.250.1.1:443 HTTP/1.1\r\n\r\n", 403),
        (b"GET http://www.googleapis.com/ HTTP/1.1\r\nHost: www.googleapis.com\r\n\r\n", 405),
        (b"CONNECT nonsense HTTP/1.1\r\n\r\n", 400),
        (b"garbage\r\n\r\n", 400),
    ],
)
def test_refusals(tmp_path, request_bytes, status):
    async def main():
        runner, up = await _upstream()
        srv, port, _ = await start_proxy("127.0.0.1", up, "127.0.0.1", 0, str(tmp_path))
        try:
            out = await _raw(port, request_bytes)
            assert out.startswith(f"HTTP/1.1 {status} ".encode()), out
            assert srv.connections == 0
        finally:
            srv.close()
            await srv.wait_closed()
            await runner.cleanup()

    _run(main())


def test_httpx_sees_403_for_other_hosts(tmp_path):
    async def main():
        runner, up = await _upstream()
        srv, port, ca = await start_proxy("127.0.0.1", up, "127.0.0.1", 0, str(tmp_path))
        try:
            async with httpx.AsyncClient(proxy=f"http://127.0.0.1:{port}", verify=False) as c:
                with pytest.raises(httpx.ProxyError, match="403"):
                    await c.get("https://example.com/")
        finally:
            srv.close()
            await srv.wait_closed()
            await runner.cleanup()

    _run(main())


def test_emulator_down_answers_502(tmp_path):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]

    async def main():
        srv, port, _ = await start_proxy("127.0.0.1", dead, "127.0.0.1", 0, str(tmp_path))
        try:
            out = await _raw(port, b"CONNECT www.googleapis.com:443 HTTP/1.1\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 502 "), out
        finally:
            srv.close()
            await srv.wait_closed()

    _run(main())


def test_close_drops_live_tunnels(tmp_path):
    async def main():
        runner, up = await _upstream()
        srv, port, ca = await start_proxy("127.0.0.1", up, "127.0.0.1", 0, str(tmp_path))
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"CONNECT www.googleapis.com:443 HTTP/1.1\r\n\r\n")
            assert (await r.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
            await w.start_tls(
                ssl.create_default_context(cafile=ca), server_hostname="www.googleapis.com"
            )
            w.write(b"GET /x HTTP/1.1\r\nHost: www.googleapis.com\r\n\r\n")
            assert (await r.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            srv.close()
            await srv.wait_closed()
            # the tunnel is gone: reading ends (EOF or reset), it does not hang
            try:
                while await asyncio.wait_for(r.read(65536), 5):
                    pass
            except (ConnectionError, ssl.SSLError):
                pass
            w.close()
            assert not srv.is_serving()
        finally:
            srv.close()
            await runner.cleanup()

    _run(main())
