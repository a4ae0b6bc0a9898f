"""What Google's front end does that Drive's backend does not: an aiohttp middleware around every call.

Owns the oddities a kind emulator would hide (shared/drive-api.md, "What Google's front end does"), each
switched on by its own `Profile` field and all of them on in the `google-like` profile:
gzip-encoded JSON (`gzip_json`), HTML 502/503 pages instead of Drive's JSON (`html_error_rate`,
`html_5xx_share`), OR'd-parents listings answered empty (`ord_parents_empty_rate`), JSON 200 answers cut
short or replaced by an HTML page (`json_cut_rate`, `json_cut_modes`), Range ignored on media
(`range_ignored_rate`), files without md5Checksum (`md5_missing_rate`), and the `X-Goog-Hash` header of
media answers (every profile). Every random decision is the seeded `Limits`' (reproducible per seed).
The admin endpoints (/_emulator/) and the OAuth endpoints are never touched; media and export bodies are
never gzip-encoded. Must not know Drive's semantics beyond what the front end can see: the path, the
query, the headers and the answer's bytes.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json

from aiohttp import web
from multidict import CIMultiDict

from . import crc32c as crc32c_mod, query as qlang

OAUTH_PATHS = frozenset(
    ("/token", "/o/oauth2/token", "/oauth2/v4/token", "/oauth2/v3/token", "/o/oauth2/auth", "/o/oauth2/v2/auth",
     "/revoke", "/o/oauth2/revoke")
)
GZIP_TYPES = ("application/json", "multipart/mixed")
# Drive 5xx answers html_5xx_share may turn into the front end's page (not 501: that is the emulator's own).
HTML_5XX = frozenset((500, 502, 503, 504))
_REASON = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 500: "Internal Server Error"}
_TITLE = {502: "Server Error", 503: "Service Unavailable", 504: "Gateway Timeout", 500: "Server Error"}


def html_error_page(status: int) -> bytes:
    """A short HTML error page shaped like the ones Google's front end sends (our own words)."""
    title = _TITLE.get(status, "Server Error")
    return (
        "<!DOCTYPE html>\n<html lang=en>\n<meta charset=utf-8>\n"
        f"<title>Error {status} ({title})!!1</title>\n"
        f"<p><b>{status}.</b> <ins>That's an error.</ins>\n"
        "<p>The front end could not get an answer from the service for this request. Try again later."
        " <ins>That's all it knows.</ins>\n"
    ).encode()


CAPTIVE_PORTAL_PAGE = (
    b"<!DOCTYPE html>\n<html><head><meta charset=utf-8><title>Network login</title></head>\n"
    b"<body><h1>Sign in to continue</h1><p>This network needs you to accept its terms before you can"
    b" reach the internet.</p><form method=post action=/login><button>Accept</button></form></body></html>\n"
)


def is_media(request: web.Request) -> bool:
    """alt=media downloads and exports: byte-exact bodies the front end never re-encodes."""
    path = request.path
    if not path.startswith("/drive/v3/files/"):
        return False
    return request.query.get("alt") == "media" or path.endswith("/export")


def kind_of(request: web.Request) -> str:
    """The Stats kind a call would be counted under (for answers the front end gives itself)."""
    path = request.path
    if path.startswith(("/upload/", "/resumable/")):
        return "upload"
    if path in ("/batch/drive/v3", "/batch"):
        return "batch"
    if path.startswith("/drive/v3/files/"):
        if request.query.get("alt") == "media":
            return "media"
        if path.endswith("/export"):
            return "export"
    return "metadata"


def wants_gzip(headers) -> bool:
    """Drive's rule (performance guide): Accept-Encoding allows gzip AND the User-Agent contains "gzip"."""
    if "gzip" not in headers.get("User-Agent", "").lower():
        return False
    for item in headers.get("Accept-Encoding", "").split(","):
        bits = [b.strip() for b in item.split(";")]
        if bits[0].lower() in ("gzip", "x-gzip"):
            for b in bits[1:]:
                if b.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
                    return False
            return True
    return False


def ors_parents(q: str | None) -> bool:
    """Whether `q` ORs two or more `'X' in parents` terms (the batched listing rclone sends)."""
    try:
        node = qlang.parse(q)
    except qlang.QueryError:
        return False
    return _ors_parents(node)


def _ors_parents(node) -> bool:
    if isinstance(node, qlang.Or):
        leaves, todo = [], [node]
        while todo:
            n = todo.pop()
            if isinstance(n, qlang.Or):
                todo += [n.left, n.right]
            else:
                leaves.append(n)
        if sum(1 for n in leaves if isinstance(n, qlang.In) and n.collection == "parents") >= 2:
            return True
        return any(_ors_parents(n) for n in leaves)
    if isinstance(node, qlang.And):
        return _ors_parents(node.left) or _ors_parents(node.right)
    if isinstance(node, qlang.Not):
        return _ors_parents(node.inner)
    return False


async def goog_hash(store, row: dict) -> str | None:
    """`X-Goog-Hash` of a binary file's media answer: `crc32c=<b64>,md5=<b64>` of the WHOLE object (also
    on a 206: that is what GCS and Drive send). crc32c is recorded at upload, or computed once (off the
    event loop) and kept; without the fast crc32c package a big file gets md5 only."""
    rev = row.get("revision")
    parts = []
    if rev:
        crc = store.crc32c(rev, compute=False)
        if crc is None:
            crc = await asyncio.get_running_loop().run_in_executor(None, store.crc32c, rev)
        if crc is not None:
            parts.append("crc32c=" + crc32c_mod.to_base64(crc))
    if row.get("md5"):
        parts.append("md5=" + base64.b64encode(bytes.fromhex(row["md5"])).decode())
    return ",".join(parts) or None


class FrontEnd:
    """The middleware of one EmulatorServer (its limits decide, its stats count)."""

    def __init__(self, server):
        self.server = server
        server.store.hide_checksums = self.hide_checksums

    def hide_checksums(self, file_id: str) -> bool:
        return self.server.limits.md5_missing(file_id)

    def _count(self, what: str) -> None:
        self.server.stats.frontend[what] += 1

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        path = request.path
        if path.startswith("/_emulator/") or path in OAUTH_PATHS:
            return await handler(request)
        limits = self.server.limits
        code = limits.frontend_error()
        if code is not None:
            return self._own_error(request, code)
        media = is_media(request)
        if media and "Range" in request.headers and limits.range_ignored():
            self._count("range_ignored")
            headers = CIMultiDict(request.headers)
            del headers["Range"]
            request = request.clone(headers=headers)
        resp = await handler(request)
        if not isinstance(resp, web.Response) or resp.prepared:
            return resp
        body = resp.body
        if not isinstance(body, (bytes, bytearray)):
            return resp
        return await self._after(request, resp, bytes(body), media)

    def _own_error(self, request: web.Request, code: int) -> web.Response:
        """An HTML 502/503 from the front end: Drive never saw the call (no auth, quota or handler)."""
        stats = self.server.stats
        page = html_error_page(code)
        stats.requests += 1
        stats.by_kind[kind_of(request)] += 1
        stats.by_status[code] += 1
        stats.bytes_sent += len(page)
        self._count(f"html_{code}")
        return web.Response(body=page, status=code, reason=_REASON.get(code),
                            headers={"Content-Type": "text/html; charset=UTF-8"})

    def _replace(self, resp: web.Response, old: bytes, new: bytes) -> None:
        resp.body = new
        self.server.stats.bytes_sent += len(new) - len(old)

    async def _after(self, request: web.Request, resp: web.Response, body: bytes, media: bool):
        limits, p = self.server.limits, self.server.limits.profile
        ctype = resp.content_type
        if resp.status in HTML_5XX and ctype == "application/json" and limits.html_5xx():
            self._count("html_5xx")
            page = html_error_page(resp.status)
            self._replace(resp, body, page)
            resp.content_type, resp.charset = "text/html", "UTF-8"
            return resp
        counted = body  # what stats.bytes_sent holds for this answer so far
        if resp.status == 200 and ctype == "application/json" and not media:
            if (
                request.method == "GET"
                and request.path == "/drive/v3/files"
                and (p.ord_parents_empty_rate > 0 or limits.remaining.get("ord_parents_empty_next", 0) > 0)
                and ors_parents(request.query.get("q"))
                and limits.ord_parents_empty()
            ):
                self._count("ord_parents_empty")
                body = _emptied(body)
            mode = limits.json_cut() if body else None
            if mode == "html":
                self._count("json_cut_html")
                self._replace(resp, counted, CAPTIVE_PORTAL_PAGE)
                resp.content_type, resp.charset = "text/html", "UTF-8"
                return resp
            if mode == "truncated":
                self._count("json_cut_truncated")
                body = body[: len(body) // 2]
            if mode == "drop":
                self._count("json_cut_drop")
                return await self._drop(request, resp, counted, self._maybe_gzip(request, resp, body))
        if body is not counted:
            self._replace(resp, counted, body)
            counted = body
        if not media and ctype in GZIP_TYPES:
            wire = self._maybe_gzip(request, resp, body)
            if wire is not body:
                self._replace(resp, counted, wire)
        return resp

    def _maybe_gzip(self, request: web.Request, resp: web.Response, body: bytes) -> bytes:
        if not self.server.limits.profile.gzip_json:
            return body
        resp.headers["Vary"] = "Accept-Encoding"
        if not body or not wants_gzip(request.headers):
            return body
        resp.headers["Content-Encoding"] = "gzip"
        self._count("gzip")
        return gzip.compress(body, compresslevel=6, mtime=0)

    async def _drop(self, request: web.Request, resp: web.Response, counted: bytes, wire: bytes):
        """Promise the whole body (Content-Length), send half of it, close the connection."""
        headers = CIMultiDict((k, v) for k, v in resp.headers.items() if k.lower() != "content-length")
        out = web.StreamResponse(status=resp.status, headers=headers)
        out.content_length = len(wire)
        await out.prepare(request)
        half = wire[: len(wire) // 2]
        if half:
            await out.write(half)
        self.server.stats.bytes_sent += len(half) - len(counted)
        self.server.stats.cut_connections += 1
        if request.transport is not None:
            request.transport.close()
        return out


def _emptied(body: bytes) -> bytes:
    """A files.list answer as if the folders were empty: files [] and no nextPageToken."""
    try:
        obj = json.loads(body)
    except ValueError:
        return body
    if not isinstance(obj, dict):
        return body
    obj.pop("nextPageToken", None)
    obj["files"] = []
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
