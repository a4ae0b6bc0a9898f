"""The HTTP face of the emulator: an aiohttp application with Drive v3's URLs, parameters and answers.

Owns routing, the order of checks every Drive call goes through (latency, bearer token, request quota,
write rate, injected 5xx), media downloads (Range, 206/416, sendfile when nothing throttles, paced
pread otherwise, cut connections), files/about/changes/batch JSON answers, the OAuth endpoints, the
admin endpoints under /_emulator/, and the request statistics.
What routes share with uploads (write admission, storage quota, metadata rules, files.update's metadata
step, the File answer, JSON encoding) and revisions.list/get live in service.py; a call no route takes gets
service.unmatched (501 for a Drive method not emulated, 400 for no method). Imports run one way:
server -> uploads -> service.
Absolute URLs are built from the request's Host header (https for *.googleapis.com, which is what the
TLS proxy forwards). Must never log tokens or request bodies.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections import Counter
from email.parser import BytesParser
from email.policy import HTTP as HTTP_POLICY
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web
from multidict import CIMultiDict, MultiDict

from . import errors, exports, fields as fieldsel, query as qlang
from .auth import Auth, OAuthError
from .frontend import FrontEnd, goog_hash
from .limits import Limits, Profile, TokenBucket
from .sharing import DRIVE_ROLES, ITEM_ROLES, RANK, Account, Sharing, View
from .store import DOC_KINDS, FOLDER, GOOGLE_APPS, SHORTCUT, Store, rfc3339
from .service import (JSON_TYPE, Service, base_url, check_writable, compile_fields, compile_sharing_fields,
                      meta_time, page_offset, page_token, parse_json_body, parse_page_size, unmatched)
from .uploads import Uploads

SEND_CHUNK = 1024 * 1024
MAX_BATCH = 100


class Stats:
    """Request counters. Kinds: metadata, media, export, upload, batch, token, auth."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_kind: Counter = Counter()
        self.by_status: Counter = Counter()
        self.by_reason: Counter = Counter()
        self.bytes_sent = 0
        self.bytes_received = 0
        self.token_grants = 0
        self.rate_limited = 0
        self.write_limited = 0
        self.injected_errors = 0
        self.clients_gone = 0
        self.corrupted_uploads = 0
        self.cut_connections = 0
        self.frontend: Counter = Counter()  # what frontend.py did: gzip, html_502, json_cut_drop, ...

    def snapshot(self) -> dict:
        return {
            "requests": self.requests,
            "by_kind": dict(self.by_kind),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_reason": dict(self.by_reason),
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "token_grants": self.token_grants,
            "rate_limited": self.rate_limited,
            "write_limited": self.write_limited,
            "injected_errors": self.injected_errors,
            "clients_gone": self.clients_gone,
            "corrupted_uploads": self.corrupted_uploads,
            "cut_connections": self.cut_connections,
            "frontend": dict(self.frontend),
        }


def parse_range(header: str, size: int):
    """None (ignore the header: serve 200), "unsatisfiable", or (start, end) inclusive."""
    h = header.strip()
    if not h.startswith("bytes="):
        return None
    spec = h[6:].strip()
    if "," in spec:
        return None  # multiple ranges: Drive answers the whole body
    if "-" not in spec:
        return None
    a, b = spec.split("-", 1)
    a, b = a.strip(), b.strip()
    try:
        if a == "":
            if not b:
                return None
            n = int(b)
            if n <= 0 or size == 0:
                return "unsatisfiable"
            return max(0, size - n), size - 1
        start = int(a)
        end = int(b) if b else size - 1
    except ValueError:
        return None
    if start >= size:
        return "unsatisfiable"
    if end < start:
        return None
    return start, min(end, size - 1)


def _bool(v: str | None, default: bool = False) -> bool:
    if v is None:
        return default
    return v.lower() in ("true", "1", "yes")


class EmulatorServer:
    """One emulator: a store, live limits, auth, stats, and the aiohttp application serving them."""

    def __init__(self, store: Store, profile: Profile):
        self.store = store
        self.limits = Limits(profile)
        self.auth = Auth(store, lambda: self.limits.profile.token_lifetime_s)
        self.stats = Stats()
        self.sharing = Sharing(store)
        self.service = Service(store, self.limits, self.stats, self.sharing)
        self.uploads = Uploads(self.service)
        self.frontend = FrontEnd(self)
        self.app = web.Application(client_max_size=256 * 1024 * 1024, middlewares=[self.frontend.middleware])
        self.app.router.add_route("*", "/{tail:.*}", self.dispatch)
        self.runner: web.AppRunner | None = None
        self.port: int | None = None
        self.host: str | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, backlog=1024, reuse_address=True)
        await site.start()
        sock = site._server.sockets[0]  # the bound port when port=0
        self.host, self.port = host, sock.getsockname()[1]
        self.store.public_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"
        return self.port

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return self.store.public_url

    # ------------------------------------------------------------------ helpers

    base_url = staticmethod(base_url)

    def token_uris(self, request: web.Request) -> set[str]:
        base = self.base_url(request)
        own = {f"{base}/token", f"{base}/o/oauth2/token", f"{base}/oauth2/v4/token", f"{self.url}/token",
               f"{self.url}/o/oauth2/token"}
        from .auth import GOOGLE_TOKEN_URIS

        return own | GOOGLE_TOKEN_URIS

    def json_response(self, obj, status: int = 200, headers: dict | None = None) -> web.Response:
        return self.service.json_response(obj, status=status, headers=headers)

    def error_response(self, e: errors.DriveError) -> web.Response:
        self.stats.by_reason[e.reason] += 1
        return self.json_response(e.body(), status=e.code, headers=e.headers)


    def download_buckets(self, request: web.Request) -> list[TokenBucket]:
        return self.service.download_buckets(request)

    def upload_buckets(self, request: web.Request) -> list[TokenBucket]:
        return self.service.upload_buckets(request)

    def _rate_limited(self) -> errors.DriveError:
        p = self.limits.profile
        if self.limits.rate_limit_is_429():
            return errors.rate_limit_429(p.retry_after_s)
        return errors.user_rate_limit(p.retry_after_s)

    def admit_write(self) -> None:
        self.service.admit_write()

    def _bearer(self, headers, query) -> str | None:
        h = headers.get("Authorization")
        if h:
            parts = h.split(None, 1)
            if len(parts) == 2 and parts[0].lower() in ("bearer", "oauth"):
                return parts[1].strip()
            return None
        return query.get("access_token") or query.get("oauth_token")

    def admit_call(self, headers, query) -> Account:
        """Checks every Drive call passes, in Drive's order: credentials, quota, then random backend errors.
        Returns the account the call is served as: its token's subject (an unknown subject, such as a service
        account's email, is served as the default account, as before accounts existed)."""
        subject = self.auth.subject(self._bearer(headers, query))
        if subject is None:
            raise errors.auth_error()
        if not self.limits.admit_request():
            self.stats.rate_limited += 1
            raise self._rate_limited()
        code = self.limits.injected_error()
        if code is not None:
            self.stats.injected_errors += 1
            raise errors.backend_error(code)
        return self.sharing.account(subject) or self.sharing.default()

    def view_for(self, account: Account, headers, query, media: bool = False) -> View:
        """How `account` sees the store in this call: its resource keys and whether it supports all drives.
        Media (`alt=media`, export) reaches shared-drive items without supportsAllDrives: rclone downloads
        them with a bare `files/ID?alt=media`, and that works against Drive."""
        return self.sharing.view(
            account, resource_keys=headers.get("X-Goog-Drive-Resource-Keys"),
            supports_all_drives=media or _bool(query.get("supportsAllDrives")) or _bool(query.get("supportsTeamDrives")))

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_emulator/"):
            return await self.admin(request, path[len("/_emulator/"):])
        self.stats.requests += 1
        kind = "metadata"
        try:
            if path in ("/token", "/o/oauth2/token", "/oauth2/v4/token", "/oauth2/v3/token"):
                kind = "token"
                resp = await self.token(request)
            elif path in ("/o/oauth2/auth", "/o/oauth2/v2/auth"):
                kind = "auth"
                resp = await self.authorize(request)
            elif path in ("/revoke", "/o/oauth2/revoke"):
                kind = "auth"
                resp = await self.revoke(request)
            else:
                kind, resp = await self.drive(request, path)
        except errors.DriveError as e:
            resp = self.error_response(e)
        if request.get("client_gone"):
            return resp     # counted in clients_gone only: no answer reached the client
        self.stats.by_kind[kind] += 1
        self.stats.by_status[resp.status] += 1
        return resp

    async def drive(self, request: web.Request, path: str):
        """Drive API calls. Returns (kind, response)."""
        for prefix in ("/upload/drive/v3/files", "/resumable/upload/drive/v3/files"):
            if path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix) + 1:]
                await self._latency(self.limits.profile.metadata_latency_s)
                view = self.view_for(self.admit_call(request.headers, request.query), request.headers, request.query)
                return "upload", await self.uploads.handle(request, rest or None, view)
        if path in ("/batch/drive/v3", "/batch"):
            await self._latency(self.limits.profile.metadata_latency_s)
            return "batch", await self.batch(request)
        if path.startswith("/drive/v3/"):
            rest = path[len("/drive/v3/"):]
            parts = rest.split("/")
            q = request.query
            if (
                request.method in ("GET", "HEAD")
                and len(parts) == 2
                and parts[0] == "files"
                and q.get("alt") == "media"
            ):
                await self._latency(self.limits.profile.media_latency_s)
                view = self.view_for(self.admit_call(request.headers, q), request.headers, q, media=True)
                return "media", await self.download(request, parts[1], view)
            if request.method == "GET" and len(parts) == 3 and parts[0] == "files" and parts[2] == "export":
                await self._latency(self.limits.profile.media_latency_s)
                view = self.view_for(self.admit_call(request.headers, q), request.headers, q, media=True)
                return "export", await self.export(request, parts[1], view)
            if (
                request.method in ("GET", "HEAD")
                and len(parts) == 4
                and parts[0] == "files"
                and parts[2] == "revisions"
                and q.get("alt") == "media"
            ):
                await self._latency(self.limits.profile.media_latency_s)
                view = self.view_for(self.admit_call(request.headers, q), request.headers, q)
                return "media", await self.revision_media(request, parts[1], parts[3], view)
            await self._latency(self.limits.profile.metadata_latency_s)
            body = await request.read() if request.body_exists else b""
            view = self.view_for(self.admit_call(request.headers, q), request.headers, q)
            status, obj = self.call(request.method, parts, q, body, self.base_url(request), view)
            if status == 204:
                return "metadata", web.Response(status=204)
            return "metadata", self.json_response(obj, status=status)
        raise errors.no_such_method(request.method, path)

    @staticmethod
    async def _latency(seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    # ------------------------------------------------------------------ metadata calls (also used by batch)

    def call(self, method: str, parts: list[str], q, body: bytes, base: str, view: View) -> tuple[int, object]:
        n = len(parts)
        head = parts[0] if parts else ""
        if head == "files":
            if n == 1:
                if method == "GET":
                    return 200, self.files_list(q, base, view)
                if method == "POST":
                    self.admit_write()
                    return 200, self.files_create(q, body, base, view)
            elif n == 2:
                fid = parts[1]
                if fid == "generateIds" and method == "GET":
                    return 200, self.generate_ids(q)
                if fid == "trash" and method == "DELETE":
                    self.admit_write()
                    self.store.empty_trash(None if view.simple else view.account.email)
                    return 204, None
                if method == "GET":
                    if q.get("alt") == "media":
                        raise errors.bad_request("alt=media is not allowed here (batch requests cannot download).")
                    return 200, self._file_get(fid, q, base, view)
                if method in ("PATCH", "PUT"):
                    self.admit_write()
                    return 200, self.files_update(fid, q, body, base, view)
                if method == "DELETE":
                    self.admit_write()
                    self.files_delete(fid, view)
                    return 204, None
            elif n == 3 and parts[2] == "copy" and method == "POST":
                self.admit_write()
                return 200, self.files_copy(parts[1], q, body, base, view)
            elif n == 3 and parts[2] == "revisions" and method == "GET":
                return 200, self.service.revisions_list(self._revisions_of(parts[1], view), q)
            elif n == 4 and parts[2] == "revisions" and method == "GET":
                if q.get("alt") == "media":
                    raise errors.bad_request("alt=media is not allowed here (batch requests cannot download).")
                return 200, self.service.revisions_get(self._revisions_of(parts[1], view), parts[3], q)
            elif n == 3 and parts[2] == "permissions":
                if method == "GET":
                    return 200, self.permissions_list(parts[1], q, view)
                if method == "POST":
                    self.admit_write()
                    return 200, self.permissions_create(parts[1], q, body, view)
            elif n == 4 and parts[2] == "permissions":
                if method == "GET":
                    return 200, self.permissions_get(parts[1], parts[3], q, view)
                if method == "PATCH":
                    self.admit_write()
                    return 200, self.permissions_update(parts[1], parts[3], q, body, view)
                if method == "DELETE":
                    self.admit_write()
                    self.permissions_delete(parts[1], parts[3], q, view)
                    return 204, None
        elif head == "drives":
            if n == 1 and method == "GET":
                return 200, self.drives_list(q, view)
            if n == 1 and method == "POST":
                self.admit_write()
                return 200, self.drives_create(q, body, view)
            if n == 2 and method == "GET":
                return 200, self.drives_get(parts[1], q, view)
            if n == 2 and method == "DELETE":
                self.admit_write()
                self.drives_delete(parts[1], q, view)
                return 204, None
        elif head == "about" and n == 1 and method == "GET":
            return 200, self.about(q, view)
        elif head == "changes":
            if n == 1 and method == "GET":
                return 200, self.changes_list(q, base, view)
            if n == 2 and parts[1] == "startPageToken" and method == "GET":
                sel = compile_fields(q.get("fields"), "StartPageToken", "none")
                self._changes_drive(q, view)
                return 200, fieldsel.apply(
                    {"kind": "drive#startPageToken", "startPageToken": self.store.start_page_token()}, sel
                )
        raise unmatched(method, "/".join(parts))  # 501 for a Drive method not emulated, 400 for no method

    def _file_get(self, fid: str, q, base: str, view: View) -> dict:
        sel = compile_fields(q.get("fields"), "File", "file")
        row, acc = view.get(fid)
        return fieldsel.apply(view.resource(row, base, acc), sel)

    def _revisions_of(self, fid: str, view: View) -> str:
        """The item's id once the account may read its revisions (readers and commenters may not)."""
        row, acc = view.get(fid)
        if row["mime_type"] not in (FOLDER, SHORTCUT) and not row["mime_type"].startswith(GOOGLE_APPS):
            view.need(row, acc, "canReadRevisions")
        return row["id"]

    def files_delete(self, fid: str, view: View) -> None:
        row, acc = view.get(fid)
        if row["parent"] is None:
            raise errors.DriveError(403, "cannotDeleteRoot", "The root folder cannot be deleted.")
        view.need(row, acc, "canDelete")
        self.store.delete(row["id"])

    _ORDER_KEYS = {
        "name": "name COLLATE NOCASE",
        "name_natural": "name COLLATE NOCASE",
        "modifiedTime": "modified_ms",
        "modifiedByMeTime": "modified_ms",
        "viewedByMeTime": "modified_ms",
        "createdTime": "created_ms",
        "recency": "modified_ms",
        "sharedWithMeTime": "created_ms",
        "quotaBytesUsed": "coalesce(size, 0)",
        "starred": "starred",
        "folder": f"(mime_type = '{FOLDER}')",
    }

    def _order_sql(self, order_by: str | None) -> str:
        if not order_by:
            return "rowid"
        out = []
        for item in order_by.split(","):
            bits = item.strip().split()
            if not bits or len(bits) > 2 or bits[0] not in self._ORDER_KEYS:
                raise errors.invalid_value("orderBy")
            desc = len(bits) == 2 and bits[1].lower() == "desc"
            if len(bits) == 2 and bits[1].lower() not in ("asc", "desc"):
                raise errors.invalid_value("orderBy")
            # folder sorts folders first by default (as Drive does).
            if bits[0] == "folder":
                desc = not desc
            out.append(self._ORDER_KEYS[bits[0]] + (" DESC" if desc else ""))
        out.append("rowid")
        return ", ".join(out)

    def _corpora(self, q, view: View) -> tuple[str, str | None, bool]:
        """files.list's corpus parameters as Drive checks them: (corpora, driveId, includeItemsFromAllDrives)."""
        corpora = q.get("corpora") or "user"
        drive_id = q.get("driveId") or q.get("teamDriveId") or None
        include = _bool(q.get("includeItemsFromAllDrives")) or _bool(q.get("includeTeamDriveItems"))
        if corpora not in ("user", "drive", "allDrives", "domain"):
            raise errors.invalid_value(
                "corpora", f"Invalid string value: '{corpora}'. Allowed values: [allDrives, domain, drive, user]")
        if corpora == "domain":
            raise errors.not_implemented("corpora=domain (no Workspace domain is emulated)")
        if (corpora == "drive") != (drive_id is not None):
            raise errors.DriveError(400, "teamDriveIdRequiresTeamDriveCorpora",
                                    "The driveId parameter must be specified if and only if corpora is set to drive.",
                                    location="driveId")
        if (drive_id is not None or corpora == "allDrives") and not include:
            # Drive's 403 (the message is Drive's; the reason name is ours).
            raise errors.DriveError(
                403, "includeItemsFromAllDrivesRequired",
                "The includeItemsFromAllDrives parameter must be set to true when driveId is specified or corpora "
                "contains drive or allDrives.", location="includeItemsFromAllDrives")
        if drive_id is not None:
            self._member(drive_id, view)
        return corpora, drive_id, include

    def _member(self, drive_id: str, view: View) -> str:
        """The account's role in a shared drive; 404 "Shared drive not found" when it is none or unknown."""
        role = self.sharing.member_role(view.account, drive_id) if self.sharing.drive_row(drive_id) else None
        if role is None:
            raise errors.shared_drive_not_found(drive_id)
        return role

    def files_list(self, q, base: str, view: View) -> dict:
        sel = compile_fields(q.get("fields"), "FileList", "list")
        corpora, drive_id, include = self._corpora(q, view)
        try:
            node = qlang.parse(q.get("q"))
        except qlang.QueryError:
            raise errors.invalid_query() from None
        where, params = qlang.to_sql(node, root_id=view.account.root_id, user_email=view.account.email)
        vis, vparams = view.cached().list_filter(named_parents=qlang.parents_named(node), corpora=corpora,
                                                 drive_id=drive_id, include_drives=include)
        where, params = f"({where}) AND {vis}", params + vparams
        page_size = parse_page_size(q, 100)
        offset = page_offset(q.get("pageToken"))
        order = self._order_sql(q.get("orderBy"))
        if q.get("spaces") == "appDataFolder":
            rows = []
        else:
            rows = self.store.query_rows(where, params, order, page_size + 1, offset)
        out: dict = {"kind": "drive#fileList", "incompleteSearch": False}
        if len(rows) > page_size:
            rows = rows[:page_size]
            out["nextPageToken"] = page_token(offset + page_size)
        files_sel = sel.get("files") if sel is not None and "*" not in sel else None
        if sel is not None and "files" not in sel and "*" not in sel:
            files = []
        else:
            files = [fieldsel.apply(view.resource(r, base), files_sel) for r in rows]
        out["files"] = files
        return fieldsel.apply(out, {k: (None if k == "files" else v) for k, v in sel.items()})

    def files_create(self, q, body: bytes, base: str, view: View) -> dict:
        meta = parse_json_body(body)
        check_writable(meta, update=False)
        sel = compile_fields(q.get("fields"), "File", "file")
        parents = meta.get("parents") or []
        if len(parents) > 1:
            raise errors.DriveError(403, "cannotAddParent", "Increasing the number of parents is not allowed.")
        parent = view.container(parents[0] if parents else None)   # 404 if invisible, 403 unless writable
        mime = meta.get("mimeType") or "application/octet-stream"
        target = None
        if mime == SHORTCUT:
            tid = (meta.get("shortcutDetails") or {}).get("targetId")
            if not tid:
                raise errors.DriveError(400, "required", "A shortcut must have a target.", location="shortcutDetails.targetId")
            t = view.require(tid)   # the target as this account sees it (a shared item, a shared-drive item)
            target = (t["id"], t["mime_type"])
        fid = self.store.insert(
            name=meta.get("name") or "Untitled",
            mime_type=mime,
            parent_id=parent,
            owner=view.account.email,
            copy_requires_writer=bool(meta.get("copyRequiresWriterPermission")),
            file_id=meta.get("id"),
            created_ms=meta_time(meta, "createdTime"),
            modified_ms=meta_time(meta, "modifiedTime"),
            doc_text="" if mime.startswith(GOOGLE_APPS) and mime not in (FOLDER, SHORTCUT) else None,
            target=target,
            description=meta.get("description"),
            starred=bool(meta.get("starred")),
            properties=meta.get("properties"),
            app_properties=meta.get("appProperties"),
        )
        return fieldsel.apply(view.resource(self.store.row(fid), base), sel)

    def files_update(self, fid: str, q, body: bytes, base: str, view: View) -> dict:
        meta = parse_json_body(body)
        check_writable(meta, update=True)
        sel = compile_fields(q.get("fields"), "File", "file")
        row = self.service.apply_update(fid, meta, q, view)
        return fieldsel.apply(view.resource(row, base), sel)

    def files_copy(self, fid: str, q, body: bytes, base: str, view: View) -> dict:
        meta = parse_json_body(body)
        sel = compile_fields(q.get("fields"), "File", "file")
        src, acc = view.get(fid)
        if src["mime_type"] == FOLDER:
            raise errors.DriveError(403, "fileNotCopyable", "This file cannot be copied by the user.")
        if not view.simple and not view.caps(src, acc)["canCopy"]:
            raise errors.DriveError(403, "cannotCopyFile", "This file cannot be copied by the user.")
        parents = meta.get("parents") or []
        if parents:
            parent = view.container(parents[0])
        elif view.simple:
            parent = None      # next to the original, as before
        else:
            # Next to the original when this account may add there, else in its own My Drive.
            prow = self.store.row(src["parent"]) if src["parent"] else None
            pacc = view.access(prow)
            parent = src["parent"] if pacc is not None and view.caps(prow, pacc)["canAddChildren"] else view.container(None)
        in_drive = parent is not None and self.store.row(parent)["drive_id"] is not None
        self.service.admit_storage(0 if src["mime_type"].startswith(GOOGLE_APPS) else src["size"] or 0, view=view,
                                   shared_drive=in_drive)
        # Without a name Drive names the copy "Copy of NAME".
        name = meta.get("name") or f"Copy of {src['name']}"
        new = self.store.copy_file(src["id"], name=name, parent_id=parent, owner=view.account.email)
        if meta.get("modifiedTime") or meta.get("description") is not None:
            self.store.update(new, modified_ms=meta_time(meta, "modifiedTime"), **(
                {"description": meta["description"]} if "description" in meta else {}))
        return fieldsel.apply(view.resource(self.store.row(new), base), sel)

    def generate_ids(self, q) -> dict:
        from .store import new_file_id

        try:
            count = int(q.get("count", "10"))
        except ValueError:
            raise errors.invalid_value("count") from None
        if not 1 <= count <= 1000:
            raise errors.invalid_value("count")
        return {"kind": "drive#generatedIds", "space": "drive", "ids": [new_file_id() for _ in range(count)]}

    def about(self, q, view: View) -> dict:
        if not q.get("fields"):
            raise errors.DriveError(400, "required", "The 'fields' parameter is required for this method.", location="fields")
        sel = compile_fields(q.get("fields"), "About", "none")
        usage, trash = self.store.usage(None if view.simple else view.account.email)
        quota = {"usage": str(usage), "usageInDrive": str(usage), "usageInDriveTrash": str(trash)}
        limit = self.limits.profile.storage_limit_bytes
        if limit is not None:
            quota["limit"] = str(limit)
        about = {
            "kind": "drive#about",
            "user": self.store.user() if view.simple else self.sharing.user_json(view.account.email, view.account),
            "storageQuota": quota,
            "importFormats": {"text/plain": [DOC_KINDS["document"]], "text/csv": [DOC_KINDS["spreadsheet"]]},
            "exportFormats": {k: list(v) for k, v in exports.FORMATS.items()},
            "maxImportSizes": {DOC_KINDS["document"]: "10485760", DOC_KINDS["spreadsheet"]: "104857600"},
            "maxUploadSize": "5497558138880",
            "appInstalled": False,
            "folderColorPalette": ["#ac725e", "#d06b64", "#f83a22"],
            "teamDriveThemes": [],
            "driveThemes": [],
            "canCreateDrives": True,
            "canCreateTeamDrives": True,
        }
        return fieldsel.apply(about, sel)

    def _changes_drive(self, q, view: View) -> tuple[str | None, bool]:
        """changes.*'s driveId (404 unless the account is a member) and whether shared-drive items are included."""
        drive_id = q.get("driveId") or q.get("teamDriveId") or None
        include = (_bool(q.get("includeItemsFromAllDrives")) or _bool(q.get("includeTeamDriveItems"))) and view.all_drives
        if drive_id is not None:
            self._member(drive_id, view)
        return drive_id, include

    def _change_visible(self, c: dict, row: dict | None, view: View, drive_id: str | None, include: bool) -> bool:
        if view.simple:
            return True
        where = row["drive_id"] if row is not None else c["drive_id"]
        if drive_id is not None:
            if where != drive_id:
                return False
        elif where is not None and not include:
            return False
        if row is not None:
            return view.access(row, check_key=False) is not None
        # Removed: told to its owner, or to the members of the drive that held it.
        if c["drive_id"] is not None:
            return self.sharing.member_role(view.account, c["drive_id"]) is not None
        return c["owner"] == view.account.email

    def changes_list(self, q, base: str, view: View) -> dict:
        sel = compile_fields(q.get("fields"), "ChangeList", "changes")
        drive_id, include = self._changes_drive(q, view)
        view.cached()
        token = q.get("pageToken")
        if not token:
            raise errors.DriveError(400, "required", "Required parameter: pageToken", location="pageToken")
        try:
            start = int(token)
        except ValueError:
            raise errors.invalid_value("pageToken") from None
        try:
            size = min(1000, max(1, int(q.get("pageSize", "100"))))
        except ValueError:
            raise errors.invalid_value("pageSize") from None
        include_removed = _bool(q.get("includeRemoved"), True)
        rows, next_token = self.store.changes_since(start, size)
        changes = []
        for c in rows:
            row = None if c["removed"] else self.store.row(c["file_id"])
            if not self._change_visible(c, row, view, drive_id, include):
                continue
            if row is None and not include_removed:
                continue
            ch = {
                "kind": "drive#change",
                "changeType": "file",
                "time": rfc3339(c["time_ms"]),
                "removed": row is None,
                "fileId": c["file_id"],
            }
            if row is not None:
                ch["file"] = view.resource(row, base)
                if row["drive_id"] is not None:
                    ch["driveId"] = ch["teamDriveId"] = row["drive_id"]
            changes.append(ch)
        out: dict = {"kind": "drive#changeList", "changes": changes}
        if next_token is not None:
            out["nextPageToken"] = str(next_token)
        else:
            out["newStartPageToken"] = self.store.start_page_token()
        return fieldsel.apply(out, sel)

    # ------------------------------------------------------------------ permissions and shared drives

    def _sharer(self, fid: str, view: View) -> tuple[dict, object, bool]:
        """(row, access, is a shared drive's root) of an item whose permissions this account may manage:
        canShare on an item, organizer of a shared drive for its members. 404 / 403 otherwise."""
        row, acc = view.get(fid)
        is_drive = row["drive_id"] is not None and row["id"] == row["drive_id"]
        if is_drive:
            if acc.role != "organizer":
                raise errors.insufficient_permissions()
        else:
            view.need(row, acc, "canShare")
        return row, acc, is_drive

    def permissions_list(self, fid: str, q, view: View) -> dict:
        sel = compile_sharing_fields(q.get("fields"), "PermissionList")
        if _bool(q.get("useDomainAdminAccess")):
            raise errors.not_implemented("useDomainAdminAccess")
        row, acc = view.get(fid)
        view.need(row, acc, "canShare")
        perms = view.cached().permissions_list(row)
        page_size = parse_page_size(q, 100)
        start = page_offset(q.get("pageToken"))
        out: dict = {"kind": "drive#permissionList", "permissions": perms[start:start + page_size]}
        if start + page_size < len(perms):
            out["nextPageToken"] = page_token(start + page_size)
        return fieldsel.apply(out, sel)

    def permissions_get(self, fid: str, pid: str, q, view: View) -> dict:
        sel = compile_sharing_fields(q.get("fields"), "Permission")
        row, acc = view.get(fid)
        if pid != view.account.permission_id:
            view.need(row, acc, "canShare")
        for p in view.permissions_list(row):
            if p["id"] == pid:
                return fieldsel.apply(p, sel)
        raise errors.permission_not_found(pid)

    def _check_grant(self, row: dict, acc, is_drive: bool, type_: str, role: str) -> None:
        allowed = DRIVE_ROLES if is_drive else ITEM_ROLES
        if role == "owner" or type_ in ("group", "domain"):
            raise errors.not_implemented(
                "transferring ownership" if role == "owner" else f"permissions of type {type_} (no groups or domains)")
        if type_ not in ("user", "anyone"):
            raise errors.invalid_value("permission.type")
        if role not in allowed:
            raise errors.DriveError(400, "invalidSharingRequest",
                                    f"Bad Request. The role {role!r} cannot be given on this item.",
                                    location="permission.role")
        if is_drive and type_ == "anyone":
            raise errors.DriveError(400, "invalidSharingRequest",
                                    "Bad Request. A shared drive's members must be users.", location="permission.type")
        if RANK[role] > RANK[acc.role]:
            raise errors.insufficient_permissions()

    def permissions_create(self, fid: str, q, body: bytes, view: View) -> dict:
        sel = compile_sharing_fields(q.get("fields"), "Permission")
        meta = parse_json_body(body)
        for flag in ("useDomainAdminAccess", "transferOwnership", "moveToNewOwnersRoot"):
            if _bool(q.get(flag)):
                raise errors.not_implemented(flag)
        type_, role = meta.get("type"), meta.get("role")
        if not type_:
            raise errors.required("permission.type", "Permission type field required.")
        if not role:
            raise errors.required("permission.role", "Permission role field required.")
        if meta.get("expirationTime") is not None:
            raise errors.not_implemented("permission expiration times")
        row, acc, is_drive = self._sharer(fid, view)
        self._check_grant(row, acc, is_drive, type_, role)
        email = None
        if type_ == "user":
            email = (meta.get("emailAddress") or "").strip()
            if not email:
                raise errors.required("permission.emailAddress", "Permission emailAddress field required.")
            if self.sharing.account(email) is None:
                # What Drive answers for an address with no Google account when no invitation is sent.
                raise errors.DriveError(
                    400, "invalidSharingRequest",
                    f"Bad Request. User message: \"You are trying to invite {email}. Since there is no Google "
                    "account associated with this email address, you must check the 'Notify people' box to invite "
                    "this recipient.\"", location="permission.emailAddress")
            if row["drive_id"] is None and row["owner"] == email:
                raise errors.DriveError(403, "insufficientFilePermissions",
                                        "The user does not have sufficient permissions for this file.")
        p = self.sharing.grant(row["id"], type=type_, role=role, email=email,
                               allow_discovery=bool(meta.get("allowFileDiscovery")))
        return fieldsel.apply(view.permission_json(p, row), sel)

    def _keep_an_organizer(self, row: dict, is_drive: bool, pid: str, new_role: str | None) -> None:
        """A shared drive keeps at least one organizer (our reason name)."""
        if not is_drive or new_role == "organizer":
            return
        organizers = [p["id"] for p in self.sharing.permissions_of(row["id"]) if p["role"] == "organizer"]
        if organizers == [pid]:
            raise errors.DriveError(403, "cannotRemoveLastOrganizer",
                                    "A shared drive must keep at least one organizer.")

    def permissions_update(self, fid: str, pid: str, q, body: bytes, view: View) -> dict:
        sel = compile_sharing_fields(q.get("fields"), "Permission")
        meta = parse_json_body(body)
        row, acc, is_drive = self._sharer(fid, view)
        p = next((x for x in self.sharing.permissions_of(row["id"]) if x["id"] == pid), None)
        if p is None:
            raise errors.permission_not_found(pid)
        role = meta.get("role") or p["role"]
        self._check_grant(row, acc, is_drive, p["type"], role)
        self._keep_an_organizer(row, is_drive, pid, role)
        p = self.sharing.grant(row["id"], type=p["type"], role=role, email=p["email"],
                               allow_discovery=bool(p["allow_discovery"]))
        return fieldsel.apply(view.permission_json(p, row), sel)

    def permissions_delete(self, fid: str, pid: str, q, view: View) -> None:
        row, acc, is_drive = self._sharer(fid, view)
        if row["drive_id"] is None and row["owner"] and pid == self.sharing.account(row["owner"]).permission_id:
            raise errors.DriveError(403, "cannotRemoveOwner", "The owner of an item cannot be removed from it.")
        self._keep_an_organizer(row, is_drive, pid, None)
        if not self.sharing.revoke(row["id"], pid):
            if any(p["id"] == pid for p in view.permissions_list(row)):
                raise errors.DriveError(403, "cannotDeleteInheritedPermission",
                                        "This permission is inherited from a parent folder: remove it there.")
            raise errors.permission_not_found(pid)

    def drives_create(self, q, body: bytes, view: View) -> dict:
        sel = compile_sharing_fields(q.get("fields"), "Drive")
        rid = q.get("requestId")
        if not rid:
            raise errors.required("requestId")
        meta = parse_json_body(body)
        name = meta.get("name")
        if not name:
            raise errors.required("name", "A shared drive needs a name.")
        drive_id = self.sharing.create_drive(str(name), view.account, rid)
        return fieldsel.apply(self.sharing.drive_resource(self.sharing.drive_row(drive_id), "organizer"), sel)

    def drives_get(self, drive_id: str, q, view: View) -> dict:
        sel = compile_sharing_fields(q.get("fields"), "Drive")
        if _bool(q.get("useDomainAdminAccess")):
            raise errors.not_implemented("useDomainAdminAccess")
        role = self._member(drive_id, view)
        return fieldsel.apply(self.sharing.drive_resource(self.sharing.drive_row(drive_id), role), sel)

    def drives_list(self, q, view: View) -> dict:
        sel = compile_sharing_fields(q.get("fields"), "DriveList")
        if _bool(q.get("useDomainAdminAccess")):
            raise errors.not_implemented("useDomainAdminAccess")
        try:
            node = qlang.parse(q.get("q"))
            if not qlang.only_fields(node, {"name"}):
                raise qlang.QueryError("drives.list: only name terms are emulated")
        except qlang.QueryError:
            raise errors.invalid_query() from None
        if q.get("pageSize"):
            try:
                size = int(q["pageSize"])
            except ValueError:
                raise errors.invalid_value("pageSize") from None
            if not 1 <= size <= 100:
                raise errors.invalid_value("pageSize", f"Invalid value '{size}'. Values must be within the range: [1, 100]")
        else:
            size = 10
        drives = [d for d in self.sharing.drives_of(view.account)
                  if qlang.matches(node, {"name": d["name"]}, root_id="", user_email=view.account.email)]
        start = page_offset(q.get("pageToken"))
        out: dict = {"kind": "drive#driveList",
                     "drives": [self.sharing.drive_resource(d, d["role"]) for d in drives[start:start + size]]}
        if start + size < len(drives):
            out["nextPageToken"] = page_token(start + size)
        return fieldsel.apply(out, sel)

    def drives_delete(self, drive_id: str, q, view: View) -> None:
        for flag in ("useDomainAdminAccess", "allowItemDeletion"):
            if _bool(q.get(flag)):
                raise errors.not_implemented(flag)
        if self._member(drive_id, view) != "organizer":
            raise errors.insufficient_permissions()
        if self.store.execute("SELECT 1 FROM files WHERE drive_id = ? AND id != ? AND trashed = 0 LIMIT 1",
                              (drive_id, drive_id)):
            raise errors.DriveError(403, "cannotDeleteNonEmptyDrive",
                                    "The shared drive cannot be deleted because it contains items that are not in "
                                    "the trash.")
        self.sharing.delete_drive(drive_id)

    # ------------------------------------------------------------------ media

    async def download(self, request: web.Request, fid: str, view: View) -> web.StreamResponse:
        row, acc = view.get(fid)
        mime = row["mime_type"]
        if mime.startswith(GOOGLE_APPS):
            raise errors.file_not_downloadable()
        view.downloadable(row, acc)     # copyRequiresWriterPermission: 403 cannotDownloadFile for readers
        if row["abusive"] and not _bool(request.query.get("acknowledgeAbuse")):
            raise errors.abusive_file()
        size = row["size"] or 0
        path = self.store.content_path(row["revision"])
        status, start, end = 200, 0, size - 1
        rng = request.headers.get("Range")
        headers = CIMultiDict({"Content-Type": mime, "Cache-Control": "private, max-age=0"})
        goog = await goog_hash(self.store, row)  # crc32c and md5 of the whole object, also on a 206
        if goog:
            headers["X-Goog-Hash"] = goog
        if rng:
            parsed = parse_range(rng, size)
            if parsed == "unsatisfiable":
                e = errors.DriveError(416, "requestedRangeNotSatisfiable", "Request range not satisfiable")
                r = self.error_response(e)
                r.headers["Content-Range"] = f"bytes */{size}"
                return r
            if parsed is not None:
                status, (start, end) = 206, parsed
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        count = max(0, end - start + 1)
        cut = self.limits.cut_after()
        buckets = self.download_buckets(request)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise errors.backend_error(500) from None
        with f:
            resp = web.StreamResponse(status=status, headers=headers)
            resp.content_length = count
            await resp.prepare(request)
            if count == 0:
                await resp.write_eof()
                return resp
            transport = request.transport
            try:
                if not buckets and cut is None and transport is not None and request.method == "GET":
                    loop = asyncio.get_running_loop()
                    try:
                        await loop.sendfile(transport, f, start, count)
                        self.stats.bytes_sent += count
                        await resp.write_eof()
                        return resp
                    except NotImplementedError:
                        pass
                await self._paced_send(request, resp, f.fileno(), start, count, buckets, cut)
            except ConnectionError:
                # The client hung up mid-body (a stream it no longer needs, or a killed process): normal,
                # not a server error, and not counted as an answer (by_kind/by_status), as before. A sendfile
                # cut short is not counted in bytes_sent either (how much left is unknown).
                self.stats.clients_gone += 1
                request["client_gone"] = True
            return resp

    async def revision_media(self, request: web.Request, fid: str, rev_id: str, view: View) -> web.StreamResponse:
        """revisions.get with alt=media: the head revision's bytes. Older revisions keep only their metadata
        (the store drops replaced bytes), so their content is an honest 501."""
        row, rev = self.service.revision_row(self._revisions_of(fid, view), rev_id)
        if rev["id"] != row["revision"]:
            raise errors.not_implemented("the content of a revision other than the head (old contents are not kept)")
        return await self.download(request, fid, view)

    async def _paced_send(self, request, resp, fd: int, start: int, count: int, buckets, cut) -> None:
        chunk = SEND_CHUNK
        if buckets:
            chunk = max(16 * 1024, min(256 * 1024, *(int(b.burst) for b in buckets)))
        pos, left, sent = start, count, 0
        while left > 0:
            n = min(chunk, left)
            if cut is not None:
                if sent >= cut:
                    self.stats.cut_connections += 1
                    transport = request.transport
                    if transport is not None:
                        transport.close()
                    return
                n = min(n, cut - sent)
            if buckets:
                delay = max(b.reserve(n) for b in buckets)
                if delay > 0:
                    await asyncio.sleep(delay)
            data = os.pread(fd, n, pos)
            if not data:
                break
            await resp.write(data)
            self.stats.bytes_sent += len(data)
            pos += len(data)
            left -= len(data)
            sent += len(data)
        await resp.write_eof()

    async def export(self, request: web.Request, fid: str, view: View) -> web.StreamResponse:
        row, acc = view.get(fid)
        view.downloadable(row, acc)
        target = request.query.get("mimeType")
        if not target:
            raise errors.DriveError(400, "required", "Required parameter: mimeType", location="mimeType")
        if not row["mime_type"].startswith(GOOGLE_APPS) or row["mime_type"] in (FOLDER, SHORTCUT):
            raise errors.DriveError(403, "fileNotExportable", "Export only supports Docs Editors files.")
        try:
            data = exports.export(row["mime_type"], row["doc_text"] or "", target)
        except ValueError:
            raise errors.DriveError(
                400, "badRequest", "The requested conversion is not supported.", location="convertTo"
            ) from None
        if len(data) > self.limits.profile.export_size_limit_bytes:
            raise errors.export_too_large()
        self.stats.bytes_sent += len(data)
        return web.Response(body=data, headers={"Content-Type": target})

    # ------------------------------------------------------------------ batch

    async def batch(self, request: web.Request) -> web.Response:
        ctype = request.headers.get("Content-Type", "")
        body = await request.read()
        if not ctype.startswith("multipart/"):
            raise errors.bad_request("Batch requests need a multipart/mixed body.")
        msg = BytesParser(policy=HTTP_POLICY).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
        )
        parts = list(msg.iter_parts()) if msg.is_multipart() else []
        if len(parts) > MAX_BATCH:
            raise errors.DriveError(400, "batchSizeTooLarge", f"A batch can hold at most {MAX_BATCH} calls.")
        boundary = "batch_" + secrets.token_hex(12)
        out = []
        for part in parts:
            cid = part.get("Content-ID", "")
            inner = part.get_payload(decode=True) or b""
            status, obj = await self._batch_one(request, inner)
            text = f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
            payload = b""
            if obj is not None:
                payload = json.dumps(obj).encode()
                text += f"Content-Type: {JSON_TYPE}\r\nContent-Length: {len(payload)}\r\n"
            text += "\r\n"
            rid = cid.strip("<>")
            out.append(
                f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{rid}>\r\n\r\n".encode()
                + text.encode()
                + payload
                + b"\r\n"
            )
        data = b"".join(out) + f"--{boundary}--\r\n".encode()
        self.stats.bytes_sent += len(data)
        return web.Response(body=data, headers={"Content-Type": f"multipart/mixed; boundary={boundary}"})

    async def _batch_one(self, outer: web.Request, raw: bytes) -> tuple[int, object]:
        head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
        lines = head.decode("utf-8", "replace").split("\n")
        try:
            method, target = lines[0].split()[:2]
        except ValueError:
            return 400, errors.bad_request("Malformed batch part.").body()
        headers = CIMultiDict()
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip()] = v.strip()
        if "Authorization" not in headers and "Authorization" in outer.headers:
            headers["Authorization"] = outer.headers["Authorization"]
        u = urlsplit(target)
        q = MultiDict(parse_qsl(u.query, keep_blank_values=True))
        path = u.path
        for prefix in ("/drive/v3/", "drive/v3/"):
            if path.startswith(prefix):
                path = path[len(prefix):]
                break
        self.stats.requests += 1
        self.stats.by_kind["metadata"] += 1
        if "X-Goog-Drive-Resource-Keys" not in headers and "X-Goog-Drive-Resource-Keys" in outer.headers:
            headers["X-Goog-Drive-Resource-Keys"] = outer.headers["X-Goog-Drive-Resource-Keys"]
        try:
            view = self.view_for(self.admit_call(headers, q), headers, q)
            status, obj = self.call(method.upper(), path.split("/"), q, body.rstrip(b"\n"), self.base_url(outer), view)
        except errors.DriveError as e:
            self.stats.by_reason[e.reason] += 1
            status, obj = e.code, e.body()
        self.stats.by_status[status] += 1
        return status, obj

    # ------------------------------------------------------------------ OAuth endpoints

    async def _form(self, request: web.Request) -> dict:
        if request.content_type == "application/json":
            try:
                data = await request.json()
                return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
            except ValueError:
                return {}
        form = await request.post()
        out = {k: v for k, v in request.query.items()}
        out.update({k: v for k, v in form.items() if isinstance(v, str)})
        return out

    def _oauth_error(self, e: OAuthError) -> web.Response:
        self.stats.by_reason[e.error] += 1
        return self.json_response(e.body(), status=e.status)

    async def token(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return self._oauth_error(OAuthError(405, "invalid_request", "Token requests must be POSTed."))
        form = await self._form(request)
        try:
            out = self.auth.grant(form, self.token_uris(request))
        except OAuthError as e:
            return self._oauth_error(e)
        self.stats.token_grants += 1
        return self.json_response(out, headers={"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
                                                "Pragma": "no-cache"})

    async def authorize(self, request: web.Request) -> web.Response:
        try:
            location = self.auth.authorize(dict(request.query))
        except OAuthError as e:
            return self._oauth_error(e)
        return web.Response(status=302, headers={"Location": location})

    async def revoke(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        tok = form.get("token")
        if not tok:
            return self._oauth_error(OAuthError(400, "invalid_request", "Missing required parameter: token"))
        try:
            self.auth.revoke(tok)
        except OAuthError as e:
            return self._oauth_error(e)
        return self.json_response({})

    # ------------------------------------------------------------------ admin

    async def admin(self, request: web.Request, what: str) -> web.Response:
        def ok(obj):
            return web.json_response(obj)

        if what == "stats" and request.method == "GET":
            return ok(self.stats.snapshot())
        if what == "reset-stats" and request.method == "POST":
            self.stats.reset()
            return ok({})
        if what == "configure" and request.method == "POST":
            try:
                overrides = await request.json() if request.body_exists else {}
                profile = self.limits.configure(**overrides)
            except (TypeError, ValueError) as e:
                return web.json_response({"error": str(e)}, status=400)
            return ok(profile.as_dict())
        if what == "profile" and request.method == "GET":
            return ok(self.limits.profile.as_dict())
        if what == "expire-tokens" and request.method == "POST":
            self.auth.expire_tokens()
            return ok({})
        if what == "revoke-refresh-tokens" and request.method == "POST":
            self.auth.revoke_refresh_tokens()
            return ok({})
        if what == "expire-upload-sessions" and request.method == "POST":
            self.uploads.expire_sessions()
            return ok({})
        if what == "accounts" and request.method == "POST":
            try:
                data = await request.json() if request.body_exists else {}
                email = data.get("email") if isinstance(data, dict) else None
                self.sharing.add_account(email or "", data.get("displayName") if isinstance(data, dict) else None)
            except (TypeError, ValueError) as e:
                return web.json_response({"error": str(e)}, status=400)
            return ok(self.auth.credentials_info(f"{self.base_url(request)}/token", email.strip()))
        if what == "accounts" and request.method == "GET":
            return ok({"accounts": [{"email": a.email, "displayName": a.name, "permissionId": a.permission_id,
                                     "rootId": a.root_id} for a in self.sharing.accounts()]})
        if what == "resource-key" and request.method == "POST":
            try:
                data = await request.json()
                fid = data["fileId"]
                key = self.sharing.set_resource_key(fid)
            except (TypeError, ValueError, KeyError):
                return web.json_response({"error": "POST {\"fileId\": ID}"}, status=400)
            except errors.DriveError as e:
                return web.json_response({"error": e.message}, status=404)
            return ok({"fileId": fid, "resourceKey": key})
        if what == "info" and request.method == "GET":
            return ok({"root_id": self.store.root_id, "url": self.url, "data_dir": str(self.store.data_dir)})
        return web.json_response({"error": "unknown admin endpoint"}, status=404)


_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}
