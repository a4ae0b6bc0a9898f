"""An HTTPS CONNECT proxy that terminates TLS for Google's hostnames and forwards to the emulator.

Some clients (rclone) have no base-URL option: they always talk to https://www.googleapis.com.
They do honour `HTTPS_PROXY` and accept an extra CA (`--ca-cert`), so we give them a proxy that

* answers `CONNECT <google host>:443` with `200 Connection established`,
* terminates TLS on that connection with a leaf certificate from our own CA (`tls.py`),
* pipes the decrypted HTTP/1.1 byte stream, unchanged, to the emulator's plain HTTP port.

No header is rewritten: the emulator builds absolute URLs from the Host header (which stays
`www.googleapis.com`) and uses `https` for `*.googleapis.com`, so session URIs and links keep
pointing at Google's hostnames and keep coming back through the proxy.

`CONNECT` to any other host or port answers `403` and closes: the proxy never reaches the internet.
Plain forward proxying (`GET http://...`) is not offered (`405`).

The pipe is built from raw asyncio protocols (no StreamReader copies): each side writes straight
into the other side's transport and flow control is the transports' own: when one side's write
buffer passes its high-water mark, reading from the other side pauses until it drains.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile
from typing import Any, Iterable

from .tls import GOOGLE_HOSTS, ensure_ca, leaf_context

__all__ = ["start_proxy", "ProxyServer", "INTERCEPTED_HOSTS"]

log = logging.getLogger(__name__)

INTERCEPTED_HOSTS: frozenset[str] = frozenset(GOOGLE_HOSTS)

_MAX_HEAD = 64 * 1024
_HEAD_TIMEOUT = 30.0
_WRITE_HIGH = 4 * 1024 * 1024
_WRITE_LOW = 1 * 1024 * 1024


def _simple_response(status: int, reason: str, body: str, extra: str = "") -> bytes:
    data = body.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\n"
        f"Connection: close\r\n{extra}\r\n"
    ).encode() + data


def _split_hostport(target: str) -> tuple[str, int] | None:
    target = target.strip()
    if target.startswith("["):  # [v6]:port
        host, sep, rest = target[1:].partition("]")
        if not sep or not rest.startswith(":"):
            return None
        port_s = rest[1:]
    else:
        host, sep, port_s = target.rpartition(":")
        if not sep:
            return None
    try:
        port = int(port_s)
    except ValueError:
        return None
    return host.lower().rstrip("."), port


class ProxyServer(asyncio.AbstractServer):
    """The listening server plus its live tunnels; `close()` also drops the tunnels.

    Counters (`connections`, `bytes_up` = client->emulator, `bytes_down` = emulator->client) are
    cheap and meant for benchmarks.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        upstream: tuple[str, int],
        ssl_ctx: ssl.SSLContext,
        hosts: frozenset[str],
        ca_cert_path: str,
    ) -> None:
        self._loop = loop
        self.upstream = upstream
        self.ssl_ctx = ssl_ctx
        self.hosts = hosts
        self.ca_cert_path = ca_cert_path
        self._server: asyncio.AbstractServer | None = None
        self._live: set[asyncio.BaseTransport] = set()
        self.connections = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.rejected = 0

    # -- AbstractServer -------------------------------------------------------------------------
    @property
    def sockets(self) -> Any:
        return self._server.sockets if self._server is not None else ()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._live):
            t.abort()
        self._live.clear()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def start_serving(self) -> None:
        assert self._server is not None
        await self._server.start_serving()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> "ProxyServer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    # -- internals ------------------------------------------------------------------------------
    def _track(self, t: asyncio.BaseTransport) -> None:
        self._live.add(t)

    def _untrack(self, t: asyncio.BaseTransport | None) -> None:
        if t is not None:
            self._live.discard(t)


class _Half(asyncio.Protocol):
    """One side of a tunnel: what it receives goes to `peer.transport`."""

    def __init__(self, proxy: ProxyServer) -> None:
        self.proxy = proxy
        self.transport: Any = None
        self.peer: _Half | None = None
        self._closed = False
        # Bytes for our transport that arrived before it was ready (during the TLS upgrade the
        # decrypted request can reach the client side before `start_tls` returns).
        self.ready = True
        self._pending: list[bytes] = []

    # Flow control: our transport's write buffer is full -> stop reading from the peer.
    def pause_writing(self) -> None:
        p = self.peer
        if p is not None and p.transport is not None and not p.transport.is_closing():
            p.transport.pause_reading()

    def resume_writing(self) -> None:
        p = self.peer
        if p is not None and p.transport is not None and not p.transport.is_closing():
            p.transport.resume_reading()

    def _forward(self, data: bytes) -> None:
        p = self.peer
        if p is not None and not p.ready:
            p._pending.append(data)
            return
        if p is None or p.transport is None or p.transport.is_closing():
            self.close()
            return
        p.transport.write(data)

    def _set_ready(self) -> None:
        self.ready = True
        pending, self._pending = self._pending, []
        for data in pending:
            self.transport.write(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.transport is not None:
            self.transport.close()  # flushes what is buffered first
        p = self.peer
        if p is not None:
            p.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.proxy._untrack(self.transport)
        self.close()


class _Upstream(_Half):
    """The plain TCP connection to the emulator."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=_WRITE_HIGH, low=_WRITE_LOW)  # type: ignore[attr-defined]
        self.proxy._track(transport)

    def data_received(self, data: bytes) -> None:
        self.proxy.bytes_down += len(data)
        self._forward(data)

    def eof_received(self) -> bool:
        # The emulator closed (or half-closed): flush to the client and close both sides.
        self.close()
        return False


class _Client(_Half):
    """The accepted client connection: reads one CONNECT head, then becomes a TLS pipe."""

    def __init__(self, proxy: ProxyServer) -> None:
        super().__init__(proxy)
        self._head = bytearray()
        self._tunnel = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.proxy._track(transport)
        self._timer = self.proxy.get_loop().call_later(_HEAD_TIMEOUT, self._head_timeout)

    def _head_timeout(self) -> None:
        if not self._tunnel:
            self._reply_and_close(408, "Request Timeout", "no request head\n")

    def _reply_and_close(self, status: int, reason: str, body: str, extra: str = "") -> None:
        if self._timer is not None:
            self._timer.cancel()
        if status >= 400:
            self.proxy.rejected += 1
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_simple_response(status, reason, body, extra))
        self.close()

    def data_received(self, data: bytes) -> None:
        if self._tunnel:
            self.proxy.bytes_up += len(data)
            self._forward(data)
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > _MAX_HEAD:
                self._reply_and_close(431, "Request Header Fields Too Large", "head too large\n")
            return
        head = bytes(self._head[:end]).decode("latin-1")
        rest = bytes(self._head[end + 4 :])
        self._head.clear()
        self._handle_head(head, rest)

    def eof_received(self) -> bool:
        if self._tunnel:
            p = self.peer
            if p is not None and p.transport is not None and not p.transport.is_closing():
                if p.transport.can_write_eof():
                    p.transport.write_eof()
                    return False
            self.close()
        return False

    def _handle_head(self, head: str, rest: bytes) -> None:
        line = head.split("\r\n", 1)[0]
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self._reply_and_close(400, "Bad Request", "malformed request line\n")
            return
        method, target = parts[0].upper(), parts[1]
        if method != "CONNECT":
            self._reply_and_close(
                405,
                "Method Not Allowed",
                "this proxy only tunnels CONNECT to Google API hosts\n",
                "Allow: CONNECT\r\n",
            )
            return
        hp = _split_hostport(target)
        if hp is None:
            self._reply_and_close(400, "Bad Request", "CONNECT target must be host:port\n")
            return
        host, port = hp
        if port != 443 or host not in self.proxy.hosts:
            log.info("proxy: refusing CONNECT %s", target)
            self._reply_and_close(
                403, "Forbidden", f"CONNECT {target} refused: only Google API hosts on 443 are emulated\n"
            )
            return
        if rest:
            # A client that pipelines its ClientHello behind CONNECT; we cannot hand those bytes to
            # the TLS layer, so refuse instead of corrupting the handshake.
            self._reply_and_close(400, "Bad Request", "data sent before 200 Connection established\n")
            return
        if self._timer is not None:
            self._timer.cancel()
        self.transport.pause_reading()
        self.proxy.get_loop().create_task(self._open_tunnel(host))

    async def _open_tunnel(self, host: str) -> None:
        loop = self.proxy.get_loop()
        up_host, up_port = self.proxy.upstream
        try:
            _, upstream = await loop.create_connection(
                lambda: _Upstream(self.proxy), up_host, up_port
            )
        except OSError as e:
            self._reply_and_close(502, "Bad Gateway", f"emulator unreachable: {e}\n")
            return
        if self.transport.is_closing():
            upstream.close()
            return
        upstream.peer = self
        self.peer = upstream
        raw = self.transport
        raw.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        # From here on, what the client sends (decrypted) goes straight to the emulator, even if
        # it arrives before start_tls() returns; answers wait in _pending until the TLS transport
        # is ours.
        self._tunnel = True
        self.ready = False
        try:
            tls = await loop.start_tls(raw, self, self.proxy.ssl_ctx, server_side=True)
        except (OSError, ssl.SSLError, ConnectionError, asyncio.TimeoutError) as e:
            log.info("proxy: TLS handshake for %s failed: %s", host, e)
            self.proxy._untrack(raw)
            raw.abort()
            upstream.close()
            return
        if tls is None:  # the connection went away during the handshake
            self.proxy._untrack(raw)
            upstream.close()
            return
        self.proxy._untrack(raw)
        self.transport = tls
        self.proxy._track(tls)
        tls.set_write_buffer_limits(high=_WRITE_HIGH, low=_WRITE_LOW)
        self.proxy.connections += 1
        self._set_ready()


async def start_proxy(
    upstream_host: str,
    upstream_port: int,
    host: str = "127.0.0.1",
    port: int = 0,
    ca_dir: str | None = None,
    *,
    extra_hosts: Iterable[str] = (),
) -> tuple[ProxyServer, int, str]:
    """Start the intercepting proxy on `host:port` (0 = a free port) in the running loop.

    Returns `(server, bound_port, ca_cert_path)`. `server.close()` stops listening and drops live
    tunnels. `extra_hosts` adds hostnames to intercept (and to the leaf certificate). `ca_dir`
    holds the CA (created once, reused); default: a per-user directory under the temp dir.
    """
    loop = asyncio.get_running_loop()
    if ca_dir is None:
        ca_dir = os.path.join(tempfile.gettempdir(), f"drivesync-emulator-ca-{os.getuid()}")
    ca_cert, _ = ensure_ca(ca_dir)
    extra = tuple(h.lower().rstrip(".") for h in extra_hosts)
    ctx = leaf_context(ca_dir, extra)
    proxy = ProxyServer(loop, (upstream_host, upstream_port), ctx, INTERCEPTED_HOSTS | set(extra), ca_cert)
    server = await loop.create_server(lambda: _Client(proxy), host, port)
    proxy._server = server
    bound = server.sockets[0].getsockname()[1]
    return proxy, bound, ca_cert


def main(argv: list[str] | None = None) -> int:
    """`python -m drivesync.emulator.proxy --upstream HOST:PORT [--port N] [--ca-dir DIR] [--ca-out FILE]`.

    The proxy in its own process, so its TLS work is not done on the emulator's event loop (the
    benchmark harness runs it this way). Prints one ready line, as the emulator's own --proxy-port does,
    and runs until SIGTERM/SIGINT."""
    import argparse
    import shutil
    import signal

    p = argparse.ArgumentParser(prog="python -m drivesync.emulator.proxy",
                                description="The emulator's TLS-terminating CONNECT proxy, standalone.")
    p.add_argument("--upstream", required=True, metavar="HOST:PORT", help="the emulator's plain HTTP address")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0 picks a free one)")
    p.add_argument("--ca-dir", help="where the CA is kept (created once, reused)")
    p.add_argument("--ca-out", help="where to copy the CA certificate")
    args = p.parse_args(argv)
    hp = _split_hostport(args.upstream)
    if hp is None:
        p.error("--upstream must be HOST:PORT")

    async def run() -> int:
        proxy, port, ca = await start_proxy(hp[0], hp[1], args.host, args.port, args.ca_dir)
        if args.ca_out and os.path.abspath(args.ca_out) != os.path.abspath(ca):
            shutil.copyfile(ca, args.ca_out)
            ca = args.ca_out
        print(f"drivesync emulator proxy on http://{args.host}:{port} (CA: {ca})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        await stop.wait()
        proxy.close()
        return 0

    return asyncio.run(run())


if __name__ == "__main__":
    import sys

    sys.exit(main())
