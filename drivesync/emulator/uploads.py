"""Uploads at /upload/drive/v3/files[/{id}]: uploadType=media, multipart and resumable.

Owns the resumable protocol (session creation, Content-Range parsing, the 256 KiB rule for non-final
chunks, 308 + Range progress, status queries, overlap skipping, offsets beyond the committed size,
session expiry), the multipart/related parser, and the streaming of request bodies to disk with
hashing and upload throttling. Sessions live in SQLite and their committed bytes in uploads/<upload_id>,
so they survive a restart. Bytes only reach the store by rename when complete. What an upload shares
with the metadata routes (write admission, storage quota, files.update's metadata step, the File answer)
comes from service.py; this module never imports server.py. Must never build JSON answers by hand
(service.json_response / file_response do), and never parse `q` or `fields` itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
from urllib.parse import urlencode

from aiohttp import web

from . import errors
from .service import Service, base_url, check_writable, meta_time, parse_json_body
from .sharing import View
from .store import GOOGLE_APPS, FOLDER, SHORTCUT, Hasher, hash_file, now_ms

CHUNK_GRANULARITY = 256 * 1024
READ_BLOCK = 1024 * 1024

_CR_DATA = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_CR_QUERY = re.compile(r"^bytes \*/(\d+|\*)$")

class BodyReader:
    """Reads a request body in blocks, paced by the upload buckets, counting bytes for stats."""

    def __init__(self, service: Service, request: web.Request):
        self.service = service
        self.request = request
        self.buckets = service.upload_buckets(request)

    async def blocks(self):
        content = self.request.content
        while True:
            data = await content.read(READ_BLOCK) if not self.buckets else await content.read(64 * 1024)
            if not data:
                return
            self.service.stats.bytes_received += len(data)
            if self.buckets:
                delay = max(b.reserve(len(data)) for b in self.buckets)
                if delay > 0:
                    await asyncio.sleep(delay)
            yield data


def _pick_mime(meta: dict, media_mime: str | None) -> str:
    mime = meta.get("mimeType") or media_mime or "application/octet-stream"
    return mime.split(";")[0].strip() or "application/octet-stream"


class Uploads:
    def __init__(self, service: Service):
        self.service = service
        self.store = service.store
        # upload_id -> (Hasher, hashed offset): the hash state of a session served by this process.
        self._hashers: dict[str, tuple[Hasher, int]] = {}

    # ------------------------------------------------------------------ entry point

    async def handle(self, request: web.Request, file_id: str | None, view: View) -> web.StreamResponse:
        """One upload request, served as `view`'s account (new files are its own, or its shared drive's)."""
        q = request.query
        if "upload_id" in q:
            return await self.chunk(request, q["upload_id"], view)
        kind = q.get("uploadType")
        if kind not in ("media", "multipart", "resumable"):
            raise errors.DriveError(
                400,
                "invalid",
                "Upload requests must include an uploadType URL parameter and a URL path beginning with /upload/",
                location="uploadType",
            )
        if request.method not in ("POST", "PATCH", "PUT"):
            raise errors.DriveError(405, "methodNotAllowed", "Method not allowed")
        if (request.method == "POST") == bool(file_id):  # create is POST .../files, update PATCH .../files/{id}
            raise errors.no_such_method(request.method, request.path)
        self.service.admit_write()
        if file_id:
            file_id = self._require_updatable(file_id, view)["id"]
        if kind == "resumable":
            return await self.start_session(request, file_id, view)
        if kind == "media":
            tmp, size, dig = await self._receive_to_tmp(BodyReader(self.service, request).blocks())
            meta: dict = {}
            media_mime = request.headers.get("Content-Type")
        else:
            meta, media_mime, tmp, size, dig = await self._receive_multipart(request)
        try:
            self.service.admit_upload_bytes(size)
        except errors.DriveError:
            _unlink(tmp)
            raise
        row = self.finish(file_id, meta, media_mime, tmp, size, dig, request.query, view)
        return self.service.file_response(request, row, request.query.get("fields"), view)

    def _require_updatable(self, file_id: str, view: View) -> dict:
        r = view.writable(file_id, "canModifyContent")     # 404 if invisible, 403 for readers
        if r["mime_type"] in (FOLDER, SHORTCUT):
            raise errors.DriveError(400, "invalid", "Media content cannot be uploaded to a folder or shortcut.")
        return r

    def _admit_storage(self, file_id: str | None, size: int, view: View, parent: str | None = None) -> None:
        """The storage quota for `size` new bytes; a new revision replaces the old bytes (the store drops them).
        The bytes count against the item's owner (a new file: the uploader); shared-drive items against nobody."""
        old = self.store.row(file_id) if file_id else None
        replaced = (old["size"] or 0) if old is not None and not old["mime_type"].startswith(GOOGLE_APPS) else 0
        if old is not None:
            in_drive, owner = old["drive_id"] is not None, old["owner"]
        else:
            prow = self.store.row(parent) if parent else None
            in_drive, owner = prow is not None and prow["drive_id"] is not None, None
        self.service.admit_storage(size, replaced, view=view, owner=owner, shared_drive=in_drive)

    # ------------------------------------------------------------------ simple and multipart

    async def _receive_to_tmp(self, blocks, decode_base64: bool = False):
        tmp = self.store.temp_path()
        h = Hasher()
        try:
            with open(tmp, "wb") as f:
                if decode_base64:
                    raw = b"".join([b async for b in blocks])
                    data = base64.b64decode(raw)
                    h.update(data)
                    f.write(data)
                else:
                    async for b in blocks:
                        h.update(b)
                        f.write(b)
        except BaseException:
            _unlink(tmp)
            raise
        return tmp, h.size, h.digests()

    async def _receive_multipart(self, request: web.Request):
        """multipart/related: a JSON metadata part, then the media part, streamed to tmp/.

        The line ending of the first delimiter line ("--boundary" CRLF, or bare LF as the email generator
        of google-api-python-client writes) is the framing of the whole body, as Go's mime/multipart
        reader decides it. The line break before a delimiter belongs to the delimiter (RFC 2046 5.1.1), so
        the media part ends right before "<framing line break>--boundary", and nothing else is stripped:
        with LF framing, a body that ends in CR keeps it."""
        ctype = request.headers.get("Content-Type", "")
        boundary = _boundary(ctype)
        if not ctype.startswith("multipart/") or not boundary:
            raise errors.bad_request("Multipart upload requires a multipart/related body with a boundary.")
        delim = b"--" + boundary.encode()
        blocks = BodyReader(self.service, request).blocks()
        buf = bytearray()
        eof = False

        def malformed() -> errors.DriveError:
            return errors.bad_request("Malformed multipart body.")

        async def fill() -> None:
            nonlocal eof
            try:
                buf.extend(await blocks.__anext__())
            except StopAsyncIteration:
                eof = True

        async def find(token: bytes) -> int:
            while True:
                i = buf.find(token)
                if i >= 0:
                    return i
                if eof:
                    raise malformed()
                await fill()

        async def line() -> bytes:
            """The next line without its line ending (CRLF or LF)."""
            j = await find(b"\n")
            out = bytes(buf[:j])
            del buf[: j + 1]
            return out[:-1] if out.endswith(b"\r") else out

        async def headers() -> dict:
            out = {}
            while True:
                text = await line()
                if not text:
                    return out
                if b":" in text:
                    k, v = text.split(b":", 1)
                    out[k.decode("latin-1").strip().lower()] = v.decode("latin-1").strip()

        del buf[: await find(delim)]  # the preamble
        j = await find(b"\n")
        nl = b"\r\n" if j > 0 and buf[j - 1] == 13 else b"\n"
        del buf[: j + 1]
        marker = nl + delim
        await headers()
        k = await find(marker)
        meta = parse_json_body(bytes(buf[:k]))
        del buf[: k + len(nl)]
        await line()  # the rest of the delimiter line
        h2 = await headers()
        media_mime = h2.get("content-type")
        b64 = h2.get("content-transfer-encoding", "").lower() == "base64"

        def delimiter_at() -> int:
            """Index of the next real delimiter in buf (-1: need more bytes). A delimiter is followed by
            "--", CR, LF, space or tab; a mere "--boundary" prefix inside content is not one."""
            i = 0
            while True:
                k = buf.find(marker, i)
                if k < 0:
                    return -1
                after = k + len(marker)
                if len(buf) < after + 2:
                    return k if eof else -1
                if bytes(buf[after:after + 2]) == b"--" or buf[after] in (13, 10, 32, 9):
                    return k
                i = k + 1

        async def media():
            while True:
                k = delimiter_at()
                if k >= 0:
                    yield bytes(buf[:k])
                    del buf[:]
                    return
                if eof:
                    raise malformed()
                keep = len(marker) + 2  # a delimiter may start in the tail: keep it for the next round
                if len(buf) > keep:
                    out = bytes(buf[: len(buf) - keep])
                    del buf[: len(buf) - keep]
                    yield out
                await fill()

        tmp, size, dig = await self._receive_to_tmp(media(), decode_base64=b64)
        async for _ in blocks:  # drain the epilogue
            pass
        return meta, media_mime, tmp, size, dig

    # ------------------------------------------------------------------ creating the file

    def finish(self, file_id, meta, media_mime, tmp, size, digests, query, view: View) -> dict:
        """Turn complete bytes into a new file or a new revision of `file_id`; returns the row."""
        try:
            check_writable(meta, update=bool(file_id))
            parent = None
            if file_id:
                file_id = self._require_updatable(file_id, view)["id"]
            else:
                parents = meta.get("parents") or []
                if len(parents) > 1:
                    raise errors.DriveError(403, "cannotAddParent", "Increasing the number of parents is not allowed.")
                parent = view.container(parents[0] if parents else None)   # 404 if invisible, 403 unless writable
            self._admit_storage(file_id, size, view, parent)
            mime = _pick_mime(meta, media_mime)
            mtime = meta_time(meta, "modifiedTime")
            if file_id:
                existing = self.store.require(file_id)
                if existing["mime_type"].startswith(GOOGLE_APPS):
                    text = _read_text(tmp)
                    _unlink(tmp)
                    return self.service.apply_update(file_id, meta, query, view, doc_text=text)
                size, digests = self._maybe_corrupt(tmp, size, digests)
                content = self.store.adopt_content(tmp, size, digests)
                return self.service.apply_update(
                    file_id, meta, query, view, content=content, original_filename=meta.get("originalFilename")
                )
            if mime.startswith(GOOGLE_APPS):
                if mime in (FOLDER, SHORTCUT):
                    raise errors.DriveError(400, "invalid", "Media content cannot be uploaded to a folder or shortcut.")
                # An upload with a Docs target type is an import: the text becomes the Doc's body.
                text = _read_text(tmp)
                _unlink(tmp)
                fid = self.store.insert(
                    name=meta.get("name") or "Untitled",
                    mime_type=mime,
                    parent_id=parent,
                    owner=view.account.email,
                    copy_requires_writer=bool(meta.get("copyRequiresWriterPermission")),
                    modified_ms=mtime,
                    created_ms=meta_time(meta, "createdTime"),
                    doc_text=text,
                    description=meta.get("description"),
                    properties=meta.get("properties"),
                    app_properties=meta.get("appProperties"),
                )
                return self.store.row(fid)
            size, digests = self._maybe_corrupt(tmp, size, digests)
            content = self.store.adopt_content(tmp, size, digests)
            fid = self.store.insert(
                name=meta.get("name") or "Untitled",
                mime_type=mime,
                parent_id=parent,
                owner=view.account.email,
                copy_requires_writer=bool(meta.get("copyRequiresWriterPermission")),
                file_id=meta.get("id"),
                modified_ms=mtime,
                created_ms=meta_time(meta, "createdTime"),
                content=content,
                description=meta.get("description"),
                starred=bool(meta.get("starred")),
                properties=meta.get("properties"),
                app_properties=meta.get("appProperties"),
                original_filename=meta.get("originalFilename") or meta.get("name"),
            )
            return self.store.row(fid)
        finally:
            _unlink(tmp)

    def _maybe_corrupt(self, tmp, size: int, digests: dict) -> tuple[int, dict]:
        """The corrupt_upload_next fault: flip the middle byte of the stored content, re-hash it."""
        if size == 0 or not self.service.limits.corrupt_upload():
            return size, digests
        with open(tmp, "r+b") as f:
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0xFF]))
        self.service.stats.corrupted_uploads += 1
        return hash_file(tmp)

    # ------------------------------------------------------------------ resumable

    async def start_session(self, request: web.Request, file_id: str | None, view: View) -> web.StreamResponse:
        meta = parse_json_body(await request.read())
        check_writable(meta, update=bool(file_id))
        parents = meta.get("parents") or []
        first = None
        for p in parents:
            first = first or view.container(p)   # 404 if invisible, 403 unless the account may add there
        total = request.headers.get("X-Upload-Content-Length")
        if total is not None:
            try:
                total = int(total)
                if total < 0:
                    raise ValueError
            except ValueError:
                raise errors.bad_request("Invalid X-Upload-Content-Length.") from None
            self._admit_storage(file_id, total, view, first)  # a declared size past the quota is refused up front
        upload_id = "AHxI1n" + secrets.token_urlsafe(60)
        t = now_ms()
        life = self.service.limits.profile.upload_session_lifetime_s
        self.store.execute(
            """INSERT INTO upload_sessions (id, file_id, metadata, content_type, total, committed, created_ms, expires_ms,
               account) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)""",
            (
                upload_id,
                file_id or None,
                json.dumps(meta),
                request.headers.get("X-Upload-Content-Type"),
                total,
                t,
                t + int(life * 1000),
                view.account.email,
            ),
        )
        open(self.store.uploads_dir / upload_id, "wb").close()
        params = [(k, v) for k, v in request.query.items() if k != "upload_id"]
        params.append(("upload_id", upload_id))
        location = f"{base_url(request)}{request.path}?{urlencode(params)}"
        return web.Response(
            status=200,
            headers={"Location": location, "X-GUploader-UploadID": upload_id, "Content-Length": "0"},
        )

    def _session(self, upload_id: str) -> dict:
        rows = self.store.execute("SELECT * FROM upload_sessions WHERE id = ?", (upload_id,))
        if not rows:
            raise errors.upload_session_not_found()
        s = rows[0]
        if s["done_file_id"] is None and s["expires_ms"] <= now_ms():
            raise errors.upload_session_not_found()
        return s

    def expire_sessions(self) -> None:
        self.store.execute("UPDATE upload_sessions SET expires_ms = 0 WHERE done_file_id IS NULL")

    def _progress(self, committed: int) -> web.Response:
        headers = {"Content-Length": "0"}
        if committed > 0:
            headers["Range"] = f"bytes=0-{committed - 1}"
        return web.Response(status=308, headers=headers)

    async def chunk(self, request: web.Request, upload_id: str, view: View) -> web.StreamResponse:
        if request.method not in ("PUT", "POST"):
            raise errors.DriveError(405, "methodNotAllowed", "Method not allowed")
        s = self._session(upload_id)
        owner = self.service.sharing.account(s["account"]) if s["account"] else None
        if owner is not None and owner != view.account:
            keys = view.keys
            view = self.service.sharing.view(owner, supports_all_drives=view.all_drives)  # the session's account
            view.keys = keys
        if s["done_file_id"] is not None:
            await request.read()
            row = self.store.row(s["done_file_id"])
            if row is None:
                raise errors.upload_session_not_found()
            return self.service.file_response(request, row, request.query.get("fields"), view)
        committed = s["committed"]
        total = s["total"]
        cr = request.headers.get("Content-Range")
        length = request.content_length
        if cr is None:
            # No Content-Range: the body is the whole file (google-api-python-client sends an empty
            # file this way: an empty PUT with no Content-Range).
            cr = f"bytes 0-{length - 1}/{length}" if length else "bytes */0"
        cr = cr.strip()
        m = _CR_QUERY.match(cr)
        if m:
            await request.read()
            new_total = None if m.group(1) == "*" else int(m.group(1))
            if new_total is not None:
                if total is not None and new_total != total or new_total < committed:
                    raise errors.bad_request("Invalid request. The Content-Range total does not match the upload.")
                total = new_total
                self.store.execute("UPDATE upload_sessions SET total = ? WHERE id = ?", (total, upload_id))
                if committed == total:
                    return self._finalize(request, s, total, view)
            return self._progress(committed)
        m = _CR_DATA.match(cr)
        if not m:
            raise errors.bad_request("Failed to parse Content-Range header.")
        a, b = int(m.group(1)), int(m.group(2))
        new_total = None if m.group(3) == "*" else int(m.group(3))
        n = b - a + 1
        if b < a or (new_total is not None and b >= new_total):
            raise errors.bad_request("Failed to parse Content-Range header.")
        if length is not None and length != n:
            raise errors.bad_request(
                f"Invalid request. The Content-Range header declares {n} byte(s) but the body has {length}."
            )
        if new_total is not None and total is not None and new_total != total:
            raise errors.bad_request("Invalid request. The Content-Range total does not match the upload.")
        final = new_total is not None and b + 1 == new_total
        if not final and n % CHUNK_GRANULARITY != 0:
            raise errors.bad_request(
                "Invalid request. The number of bytes uploaded is required to be equal or greater than 262144, "
                "except for the final request (it's recommended to be the exact multiple of 262144). "
                f"The received request contained {n} bytes, which does not meet this requirement."
            )
        if a > committed:
            raise errors.bad_request(
                f"Invalid request. According to Content-Range header, the upload offset is {a} byte(s), "
                f"which exceeds already uploaded size of {committed} byte(s)."
            )
        if new_total is not None and total is None:
            total = new_total
            self.store.execute("UPDATE upload_sessions SET total = ? WHERE id = ?", (total, upload_id))
        self.service.admit_upload_bytes(max(0, b + 1 - committed))
        skip = committed - a  # bytes of this chunk already committed: accept and drop them
        path = self.store.uploads_dir / upload_id
        entry = self._hashers.get(upload_id)
        if entry is None and committed == 0:
            entry = (Hasher(), 0)
        hasher = entry[0] if entry is not None and entry[1] == committed else None
        written = 0
        complete = False
        try:
            with open(path, "r+b") as f:
                f.seek(committed)
                f.truncate()
                async for block in BodyReader(self.service, request).blocks():
                    if skip > 0:
                        if len(block) <= skip:
                            skip -= len(block)
                            continue
                        block = block[skip:]
                        skip = 0
                    room = b + 1 - (committed + written)
                    if room <= 0:
                        continue
                    block = block[:room]
                    f.write(block)
                    if hasher is not None:
                        hasher.update(block)
                    written += len(block)
                complete = committed + written == b + 1
                if not complete:
                    # A short body (the client gave up mid-chunk): keep whole 256 KiB units only.
                    keep = (written // CHUNK_GRANULARITY) * CHUNK_GRANULARITY
                    f.truncate(committed + keep)
                    written = keep
                    hasher = None
        except BaseException:
            # The connection broke mid-chunk: keep what arrived, in whole 256 KiB units.
            keep = (written // CHUNK_GRANULARITY) * CHUNK_GRANULARITY
            try:
                with open(path, "r+b") as f:
                    f.truncate(committed + keep)
                self.store.execute(
                    "UPDATE upload_sessions SET committed = ? WHERE id = ?", (committed + keep, upload_id)
                )
            finally:
                self._hashers.pop(upload_id, None)
            raise
        new_committed = max(committed, committed + written)
        self.store.execute("UPDATE upload_sessions SET committed = ? WHERE id = ?", (new_committed, upload_id))
        if hasher is not None:
            self._hashers[upload_id] = (hasher, new_committed)
        else:
            self._hashers.pop(upload_id, None)
        if total is not None and new_committed == total:
            return self._finalize(request, s, total, view)
        if not complete:
            raise errors.bad_request("Invalid request. The body is shorter than the Content-Range header declares.")
        return self._progress(new_committed)

    def _finalize(self, request: web.Request, s: dict, total: int, view: View) -> web.StreamResponse:
        upload_id = s["id"]
        path = self.store.uploads_dir / upload_id
        hasher, hashed = self._hashers.pop(upload_id, (None, -1))
        if hasher is not None and hashed == total:
            size, dig = total, hasher.digests()
        else:
            size, dig = hash_file(path)
        meta = json.loads(s["metadata"])
        row = self.finish(s["file_id"], meta, s["content_type"], path, size, dig, request.query, view)
        self.store.execute("UPDATE upload_sessions SET done_file_id = ? WHERE id = ?", (row["id"], upload_id))
        return self.service.file_response(request, row, request.query.get("fields"), view)


def _boundary(ctype: str) -> str | None:
    for part in ctype.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k.strip().lower() == "boundary":
            return v.strip().strip('"')
    return None


def _read_text(path) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except (FileNotFoundError, TypeError):
        pass
