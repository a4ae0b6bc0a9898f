"""What a Drive call needs whichever route brought it in: shared by server.py's routes and uploads.py.

Owns write admission (the write-rate bucket: 403/429), the storage quota
(`admit_storage`: 403 storageQuotaExceeded past `storage_limit_bytes`), the per-connection bandwidth
buckets, the rules for request metadata (writable fields, JSON bodies, time fields), files.update's
metadata step (`apply_update`, used by PATCH and by uploads of new content), the File answer
(`file_json` / `file_response` with `fields`), the encoding of every JSON answer (`json_response`),
revisions.list / revisions.get, and the answer to a call no route took (`unmatched`: 501 or 400).

The import graph is one-way: server.py imports uploads.py and this module; uploads.py imports this module;
this module imports neither of them (only store, sharing, limits, fields, schema, errors). Must never route requests or
parse request bodies beyond JSON metadata.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import weakref

from aiohttp import web

from . import errors, fields as fieldsel
from .limits import Limits, TokenBucket
from .schema import METHODS
from .sharing import Sharing, View
from .store import FOLDER, GOOGLE_APPS, SHORTCUT, Store, to_ms

JSON_TYPE = "application/json; charset=UTF-8"


# ---------------------------------------------------------------------- fields

_DEFAULTS = {
    "file": fieldsel.FILE_DEFAULT,
    "list": fieldsel.FILE_LIST_DEFAULT,
    "changes": fieldsel.CHANGE_LIST_DEFAULT,
    "revision": fieldsel.REVISION_DEFAULT,
    "revisions": fieldsel.REVISION_LIST_DEFAULT,
    "none": None,
}


@functools.lru_cache(maxsize=512)
def _compile_fields(text: str | None, schema: str, default_key: str):
    try:
        return fieldsel.compile(text, schema, _DEFAULTS[default_key])
    except fieldsel.FieldsError as e:
        raise errors.invalid_fields(e.selection) from None


def compile_fields(text: str | None, schema: str, default_key: str):
    """`fields` parsed and validated against `schema` (400 invalidParameter), or the default selection."""
    return _compile_fields(text, schema, default_key)


# The discovery document names no schema for these lists; their shape is Drive's.
PERMISSION_DEFAULT = {"kind": None, "id": None, "type": None, "role": None}
DRIVE_DEFAULT = {"kind": None, "id": None, "name": None}
_LISTS = {
    "PermissionList": ({"kind": None, "nextPageToken": None, "permissions": "Permission"},
                       {"kind": None, "nextPageToken": None, "permissions": PERMISSION_DEFAULT}),
    "DriveList": ({"kind": None, "nextPageToken": None, "drives": "Drive"},
                  {"kind": None, "nextPageToken": None, "drives": DRIVE_DEFAULT}),
    "Permission": ("Permission", PERMISSION_DEFAULT),
    "Drive": ("Drive", DRIVE_DEFAULT),
}


def compile_sharing_fields(text: str | None, what: str):
    """`fields` for permissions.* and drives.* answers (Permission, PermissionList, Drive, DriveList)."""
    schema, default = _LISTS[what]
    if not text:
        return default
    try:
        sel = fieldsel.parse(text)
        fieldsel.validate(sel, schema)
    except fieldsel.FieldsError as e:
        raise errors.invalid_fields(e.selection) from None
    return sel


# ---------------------------------------------------------------------- request metadata

WRITABLE = {
    "name", "mimeType", "parents", "modifiedTime", "createdTime", "description", "starred", "properties",
    "appProperties", "originalFilename", "shortcutDetails", "id", "trashed", "viewedByMeTime", "folderColorRgb",
    "contentHints", "writersCanShare", "copyRequiresWriterPermission", "contentRestrictions", "kind",
    "driveId", "teamDriveId", "labelInfo", "inheritedPermissionsDisabled", "downloadRestrictions",
}


def field_not_writable(name: str) -> errors.DriveError:
    return errors.DriveError(
        403, "fieldNotWritable", f"The resource body includes fields which are not directly writable. ({name})"
    )


def check_writable(meta: dict, *, update: bool) -> None:
    for k in meta:
        if k not in WRITABLE:
            raise field_not_writable(k)
    if update and "parents" in meta:
        raise errors.DriveError(
            403,
            "fieldNotWritable",
            "The parents field is not directly writable in update requests. "
            "Use the addParents and removeParents parameters instead.",
        )


def parse_json_body(raw: bytes) -> dict:
    if not raw or not raw.strip():
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        raise errors.DriveError(400, "parseError", "Parse Error") from None
    if not isinstance(meta, dict):
        raise errors.DriveError(400, "parseError", "Parse Error")
    return meta


def meta_time(meta: dict, key: str) -> int | None:
    """A time field of request metadata (RFC 3339) as ms, or None; a malformed one is Drive's 400."""
    v = meta.get(key)
    if v is None:
        return None
    try:
        return to_ms(v)
    except (TypeError, ValueError):
        raise errors.invalid_value(key) from None


def base_url(request: web.Request) -> str:
    """The scheme and host absolute URLs are built from: the request's Host header (https for *.googleapis.com)."""
    host = request.host or "127.0.0.1"
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    scheme = "https" if name.endswith("googleapis.com") else "http"
    return f"{scheme}://{host}"


def _method_pattern(flat_path: str) -> re.Pattern:
    literals = re.split(r"\{[^}]*\}", flat_path)
    return re.compile("^" + "[^/]+".join(re.escape(x) for x in literals) + "$")


_METHODS = [(verb, _method_pattern(path), method_id) for verb, path, method_id in METHODS]


def unmatched(http_method: str, path: str) -> errors.DriveError:
    """The answer to a call no emulated route took (`path` relative to /drive/v3/): 501 notImplemented when
    it is a Drive v3 method of the discovery document, 400 when it is no Drive method at all. Never 404:
    that answer means a missing file or revision."""
    verb = "GET" if http_method == "HEAD" else http_method
    for v, pattern, method_id in _METHODS:
        if v == verb and pattern.match(path):
            return errors.not_implemented(method_id)
    return errors.no_such_method(http_method, "/drive/v3/" + path)


def parse_page_size(q, default: int) -> int:
    """``pageSize`` as Drive reads it: 1..1000, larger values coerced to 1000, else 400 invalid."""
    if not q.get("pageSize"):
        return default
    try:
        page_size = int(q["pageSize"])
    except ValueError:
        raise errors.invalid_value("pageSize") from None
    if page_size < 1:
        raise errors.invalid_value(
            "pageSize", f"Invalid value '{page_size}'. Values must be within the range: [1, 1000]"
        )
    return min(page_size, 1000)


def page_offset(token: str | None) -> int:
    """The offset a ``pageToken`` carries (``page_token`` made it); 400 invalid for any other text."""
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode() + b"==").decode().split(":", 1)[1])
    except Exception:
        raise errors.invalid_value("pageToken") from None


def page_token(offset: int) -> str:
    """The ``nextPageToken`` of a list answer whose next page starts at ``offset``."""
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


class Service:
    """The store, the live limits and the request counters (server.Stats), with what routes and uploads need."""

    def __init__(self, store: Store, limits: Limits, stats, sharing: Sharing):
        self.store = store
        self.limits = limits
        self.stats = stats
        self.sharing = sharing
        self._conn_buckets: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ answers

    def json_response(self, obj, status: int = 200, headers: dict | None = None) -> web.Response:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        self.stats.bytes_sent += len(body)
        h = {"Content-Type": JSON_TYPE, "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"}
        if headers:
            h.update(headers)
        return web.Response(body=body, status=status, headers=h)

    def file_json(self, request, row: dict, fields_text: str | None, view: View) -> dict:
        sel = compile_fields(fields_text, "File", "file")
        return fieldsel.apply(view.resource(row, base_url(request)), sel)

    def file_response(self, request, row: dict, fields_text: str | None, view: View, status: int = 200) -> web.Response:
        return self.json_response(self.file_json(request, row, fields_text, view), status=status)

    # ------------------------------------------------------------------ admission

    def admit_write(self) -> None:
        """The sustained write rate: 403 rateLimitExceeded (or 429 by the profile's share) when exceeded."""
        if not self.limits.admit_write():
            self.stats.write_limited += 1
            p = self.limits.profile
            if self.limits.rate_limit_is_429():
                raise errors.rate_limit_429(p.retry_after_s)
            raise errors.rate_limit_403(p.retry_after_s)

    def admit_storage(self, new_bytes: int, replaced_bytes: int = 0, *, view: View | None = None,
                      owner: str | None = None, shared_drive: bool = False) -> None:
        """403 storageQuotaExceeded when storing `new_bytes` (in place of `replaced_bytes`, for a new revision
        whose old content the store drops) would take the usage past `storage_limit_bytes`. Trash counts.
        With several accounts the usage is the owner's (`owner`, default: the view's account); items in a
        shared drive count against nobody's quota here (Drive's per-drive limits are not emulated)."""
        limit = self.limits.profile.storage_limit_bytes
        if limit is None or shared_drive:
            return
        who = None if view is None or view.simple else (owner or view.account.email)
        used = self.store.usage(who)[0]
        if used - replaced_bytes + new_bytes > limit:
            raise errors.storage_quota_exceeded()

    def admit_upload_bytes(self, n: int) -> None:
        """The rolling daily upload cap (Drive's 750 GB/day): 403 userRateLimitExceeded past it."""
        if not self.limits.admit_upload_bytes(n):
            raise errors.daily_upload_limit()

    # ------------------------------------------------------------------ bandwidth

    def _connection_bucket(self, request: web.Request, key: str, rate, burst) -> TokenBucket | None:
        if not rate:
            return None
        transport = request.transport
        try:
            per = self._conn_buckets.setdefault(transport, {})
        except TypeError:
            per = {}
        b = per.get(key)
        if b is None or b.rate != rate or b.burst != burst:
            b = per[key] = TokenBucket(rate, burst)
        return b

    def download_buckets(self, request: web.Request) -> list[TokenBucket]:
        p = self.limits.profile
        out = [
            self._connection_bucket(request, "down", p.download_bps_per_connection, p.download_burst_per_connection),
            self.limits.bucket("download_total"),
        ]
        return [b for b in out if b is not None]

    def upload_buckets(self, request: web.Request) -> list[TokenBucket]:
        p = self.limits.profile
        out = [
            self._connection_bucket(request, "up", p.upload_bps_per_connection, p.upload_burst_per_connection),
            self.limits.bucket("upload_total"),
        ]
        return [b for b in out if b is not None]

    # ------------------------------------------------------------------ files.update

    def apply_update(self, fid: str, meta: dict, q, view: View, **extra) -> dict:
        """files.update's metadata part, shared with uploads (PATCH with new content). Returns the row.
        The account needs canEdit (canModifyContent for new content, canTrash to trash or untrash,
        canChangeCopyRequiresWriterPermission for that flag) on the item, and canAddChildren on a new parent."""
        row, acc = view.get(fid)
        fid = row["id"]
        add = [p for p in (q.get("addParents") or "").split(",") if p.strip()]
        remove = [p for p in (q.get("removeParents") or "").split(",") if p.strip()]
        if "trashed" in meta and meta["trashed"] is not None:
            if row["parent"] is None:
                raise errors.DriveError(403, "cannotTrashRoot" if row["drive_id"] is None else "insufficientFilePermissions",
                                        "The root folder cannot be trashed." if row["drive_id"] is None else
                                        "The user does not have sufficient permissions for this file.")
            view.need(row, acc, "canTrash" if meta["trashed"] else "canUntrash")
        if meta.get("copyRequiresWriterPermission") is not None:
            view.need(row, acc, "canChangeCopyRequiresWriterPermission")
            extra.setdefault("copy_requires_writer", bool(meta["copyRequiresWriterPermission"]))
        edits = set(meta) - {"trashed", "copyRequiresWriterPermission"}
        if "content" in extra or "doc_text" in extra:
            view.need(row, acc, "canModifyContent")
        if edits or add or remove or not meta:
            view.need(row, acc, "canEdit")
        new_parent = None
        if add or remove:
            current = {row["parent"]} if row["parent"] else set()
            remove_ids = {view.resolve(p.strip()) for p in remove}
            add_ids = [view.container(p.strip()) for p in add]   # 404 if invisible, 403 unless writable
            for p in add_ids:
                if self.store.row(p)["drive_id"] != row["drive_id"]:
                    raise errors.not_implemented("moving an item between My Drive and a shared drive, or between two shared drives")
            result = (current - remove_ids) | set(add_ids)
            if len(result) > 1:
                raise errors.DriveError(403, "cannotAddParent", "Increasing the number of parents is not allowed.")
            if not result:
                raise errors.DriveError(
                    403, "cannotRemoveParent", "A file must keep one parent: add a new parent when removing the old one."
                )
            (only,) = result
            if only != row["parent"]:
                new_parent = only
        changes = dict(
            name=meta.get("name"),
            mime_type=meta.get("mimeType"),
            parent=new_parent,
            modified_ms=meta_time(meta, "modifiedTime"),
            starred=meta.get("starred"),
            properties=meta.get("properties"),
            app_properties=meta.get("appProperties"),
            trashed=meta.get("trashed"),
        )
        if "description" in meta:
            changes["description"] = meta["description"]
        changes.update(extra)
        return self.store.update(fid, **changes)

    # ------------------------------------------------------------------ revisions

    def _revisable(self, fid: str) -> dict:
        row = self.store.require(fid)   # the caller checked the account may read the item's revisions
        mime = row["mime_type"]
        if mime in (FOLDER, SHORTCUT):
            # What Drive answers for folders (and forms); the message is ours.
            raise errors.DriveError(403, "revisionsNotSupported", "The file does not support revisions.")
        if mime.startswith(GOOGLE_APPS):
            # Drive keeps revisions of Docs editor files; the emulator does not (it keeps the text only).
            raise errors.not_implemented("revisions of Docs editor files are not emulated")
        return row

    def revisions_list(self, fid: str, q) -> dict:
        sel = compile_fields(q.get("fields"), "RevisionList", "revisions")
        row = self._revisable(fid)
        page_size = parse_page_size(q, 200)
        offset = page_offset(q.get("pageToken"))
        revs = self.store.revisions(row["id"])
        page = revs[offset:offset + page_size]
        out: dict = {"kind": "drive#revisionList"}
        if offset + page_size < len(revs):
            out["nextPageToken"] = page_token(offset + page_size)
        out["revisions"] = [self.store.revision_resource(r) for r in page]
        return fieldsel.apply(out, sel)

    def revision_row(self, fid: str, rev_id: str) -> tuple[dict, dict]:
        """(file row, revision row); `head` names the head revision. 404 notFound for an unknown revision."""
        row = self._revisable(fid)
        rid = row["revision"] if rev_id == "head" else rev_id
        rev = self.store.revision(row["id"], rid)
        if rev is None:
            raise errors.revision_not_found(rev_id)
        return row, rev

    def revisions_get(self, fid: str, rev_id: str, q) -> dict:
        sel = compile_fields(q.get("fields"), "Revision", "revision")
        _, rev = self.revision_row(fid, rev_id)
        return fieldsel.apply(self.store.revision_resource(rev), sel)
