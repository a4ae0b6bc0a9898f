"""Drive v3 calls, turned into plain models.

This module owns Drive's URLs, parameters and JSON shapes (files.get/list/create/update, media
ranges, export, upload sessions, drives.list/get) and pagination. It goes through transport.Transport for
every byte and never decides about retries, concurrency or local files.

Sharing, as Drive requires it: every files.* call says ``supportsAllDrives=true``; a listing whose folders
live in one shared drive is that drive's (``corpora=drive&driveId=...&includeItemsFromAllDrives=true``);
a link-shared item's resource key (from a link, or from ``resourceKey`` in an answer) goes with every
request for it and for what lies below it (``X-Goog-Drive-Resource-Keys: ID/KEY``). ``Drive.learn`` keeps
what a session has seen of each item (its shared drive, parent and key) for that.
"""
from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import AsyncIterator, Iterable

from . import integrity
from .config import Settings
from .errors import BAD_ANSWER, DriveError
from .transport import Reply, Transport

FOLDER = "application/vnd.google-apps.folder"
SHORTCUT = "application/vnd.google-apps.shortcut"
GOOGLE_APPS_PREFIX = "application/vnd.google-apps."

#: What says where an item lives and what this account may do with it (shared drives, links, sharing).
ACCESS_FIELDS = "driveId,resourceKey,copyRequiresWriterPermission,capabilities(canDownload,canAddChildren)"
FILE_FIELDS = ("id,name,mimeType,size,md5Checksum,parents,modifiedTime,trashed,"
               f"shortcutDetails(targetId,targetMimeType),exportLinks,{ACCESS_FIELDS}")
DRIVE_FIELDS = "id,name,capabilities(canAddChildren)"
#: How many resource keys one request carries at most (the item's and its ancestors').
MAX_RESOURCE_KEYS = 20
LIST_FIELDS = f"nextPageToken,files({FILE_FIELDS})"


@dataclass(frozen=True)
class RemoteFile:
    id: str
    name: str
    mime_type: str
    size: int | None = None
    md5: str | None = None
    parents: tuple[str, ...] = ()
    modified_time: str | None = None
    trashed: bool = False
    shortcut_target: str | None = None
    shortcut_target_mime: str | None = None
    export_links: dict = field(default_factory=dict, compare=False, hash=False)
    #: Hashes from the answer's X-Goog-Hash header, when it had one (integrity.parse_goog_hash).
    hashes: dict = field(default_factory=dict, compare=False, hash=False)
    drive_id: str | None = None          # the shared drive it lives in (None: someone's My Drive)
    resource_key: str | None = None      # needed with a link to it (X-Goog-Drive-Resource-Keys)
    can_download: bool | None = None     # capabilities.canDownload for this account (None: not asked)
    can_add_children: bool | None = None
    copy_requires_writer: bool = False   # the owner disabled downloading for readers

    @property
    def downloadable(self) -> bool:
        """May this account download (or export) it? Drive says so in capabilities.canDownload."""
        if self.can_download is not None:
            return self.can_download
        return not self.copy_requires_writer

    @property
    def is_folder(self) -> bool:
        return self.mime_type == FOLDER

    @property
    def is_shortcut(self) -> bool:
        return self.mime_type == SHORTCUT

    @property
    def is_google_doc(self) -> bool:
        """A Docs editor file: exported, never downloaded as is."""
        return self.mime_type.startswith(GOOGLE_APPS_PREFIX) and not (self.is_folder or self.is_shortcut)

    @classmethod
    def from_json(cls, d: dict, headers=None) -> "RemoteFile":
        if not isinstance(d, dict) or not isinstance(d.get("id"), str) or not d["id"]:
            raise DriveError(200, BAD_ANSWER, "Drive answered a file without an id")
        sc = d.get("shortcutDetails") or {}
        caps = d.get("capabilities") if isinstance(d.get("capabilities"), dict) else {}
        size = d.get("size")
        try:
            size = int(size) if size is not None else None
        except (TypeError, ValueError):
            raise DriveError(200, BAD_ANSWER, f"Drive answered a size that is not a number: {str(size)[:40]!r}") from None
        return cls(
            id=d["id"], name=d.get("name", ""), mime_type=d.get("mimeType", ""),
            size=size, md5=d.get("md5Checksum") or None,
            parents=tuple(d.get("parents") or ()), modified_time=d.get("modifiedTime"),
            trashed=bool(d.get("trashed", False)), shortcut_target=sc.get("targetId"),
            shortcut_target_mime=sc.get("targetMimeType"), export_links=dict(d.get("exportLinks") or {}),
            hashes=integrity.parse_goog_hash(headers) if headers is not None else {},
            drive_id=d.get("driveId") or None, resource_key=d.get("resourceKey") or None,
            can_download=_flag(caps.get("canDownload")), can_add_children=_flag(caps.get("canAddChildren")),
            copy_requires_writer=bool(d.get("copyRequiresWriterPermission", False)),
        )


def _flag(value) -> bool | None:
    return value if isinstance(value, bool) else None


@dataclass(frozen=True)
class SharedDrive:
    id: str
    name: str
    can_add_children: bool | None = None     # capabilities.canAddChildren for this account (a member's role)

    @classmethod
    def from_json(cls, d: dict) -> "SharedDrive":
        if not isinstance(d, dict) or not isinstance(d.get("id"), str) or not d["id"]:
            raise DriveError(200, BAD_ANSWER, "Drive answered a shared drive without an id")
        caps = d.get("capabilities") if isinstance(d.get("capabilities"), dict) else {}
        return cls(id=d["id"], name=str(d.get("name", "")), can_add_children=_flag(caps.get("canAddChildren")))

    def as_folder(self) -> RemoteFile:
        """A shared drive's root is a folder whose id is the drive's id."""
        return RemoteFile(id=self.id, name=self.name, mime_type=FOLDER, drive_id=self.id,
                          can_add_children=self.can_add_children)


def quote(value: str) -> str:
    """A string literal for Drive's q language."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parents_query(folder_ids: Iterable[str]) -> str:
    ids = " or ".join(f"{quote(i)} in parents" for i in folder_ids)
    return f"trashed=false and ({ids})"


class Drive:
    """Drive v3 for one account. Methods are coroutines returning models or raw bytes counts."""

    def __init__(self, transport: Transport, settings: Settings):
        self.t = transport
        self.settings = settings
        self.api = settings.metadata_url
        self.upload_api = settings.upload_url
        self._ids: list[str] = []
        self._ids_lock: asyncio.Lock | None = None
        # What this session learned about items: their shared drive, their parent, their resource key.
        # Listings inside a shared drive need its id; link-shared items need their (and ancestors') keys.
        self._drive_of: dict[str, str] = {}
        self._parent_of: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self._account: str | None = None

    # -- what the session knows about items -----------------------------------------------------

    def learn(self, item: RemoteFile) -> RemoteFile:
        """Remember where ``item`` lives (its shared drive, parent and resource key); returns it."""
        if item.parents:
            self._parent_of[item.id] = item.parents[0]
        drive_id = item.drive_id or (self._drive_of.get(item.parents[0]) if item.parents else None)
        if drive_id:
            self._drive_of[item.id] = drive_id
        if item.resource_key:
            self._keys[item.id] = item.resource_key
        return item

    def add_resource_key(self, file_id: str, key: str) -> None:
        self._keys[file_id] = key

    def add_shared_drive(self, drive_id: str) -> None:
        self._drive_of[drive_id] = drive_id

    def drive_of(self, file_id: str) -> str | None:
        """The shared drive an item lives in, as far as this session has seen (None: not a shared drive's)."""
        return self._drive_of.get(file_id)

    def _key_headers(self, ids: Iterable[str]) -> dict:
        """X-Goog-Drive-Resource-Keys for these items and their ancestors, where a key is known."""
        if not self._keys:      # the common case: no link with a resource key in this session
            return {}
        pairs: dict[str, str] = {}
        for start in ids:
            current, seen = start, 0
            while current and seen < 64 and len(pairs) < MAX_RESOURCE_KEYS:
                key = self._keys.get(current)
                if key:
                    pairs[current] = key
                current, seen = self._parent_of.get(current), seen + 1
        if not pairs:
            return {}
        return {"X-Goog-Drive-Resource-Keys": ",".join(f"{i}/{k}" for i, k in pairs.items())}

    async def account(self) -> str:
        """The account's email address (about.get), else the credentials' own, else 'this account'."""
        if self._account is None:
            try:
                email = ((await self.about("user(emailAddress)")).get("user") or {}).get("emailAddress")
            except DriveError:
                email = None
            if not email:
                authorizer = getattr(self.t, "authorizer", None)
                creds = getattr(authorizer, "credentials", None)
                email = getattr(creds, "service_account_email", None) or getattr(creds, "account", None)
            self._account = email if isinstance(email, str) and email else "this account"
        return self._account

    # -- metadata -------------------------------------------------------------------------------

    async def get(self, file_id: str, fields: str = FILE_FIELDS) -> RemoteFile:
        reply = await self.t.request("GET", f"{self.api}/files/{file_id}",
                                     params={"fields": fields, "supportsAllDrives": True},
                                     headers=self._key_headers([file_id]), what=f"id:{file_id}")
        return self.learn(RemoteFile.from_json(reply.json()))

    async def list_pages(self, q: str, *, fields: str = LIST_FIELDS, page_size: int = 1000,
                         order_by: str | None = None, within: Iterable[str] = (),
                         drive_id: str | None = None) -> AsyncIterator[list[RemoteFile]]:
        """Pages of files.list. ``within``: the folders the query lists (their resource keys are sent,
        and when they all live in one shared drive the listing is that drive's: corpora=drive with its
        driveId, as Drive requires). ``drive_id`` names that drive outright."""
        within = list(within)
        if drive_id is None and within:
            drives = {self._drive_of.get(i) for i in within}
            if len(drives) == 1:
                drive_id = drives.pop()
        params = {"q": q, "fields": fields, "pageSize": page_size, "orderBy": order_by,
                  "supportsAllDrives": True, "includeItemsFromAllDrives": True, "spaces": "drive"}
        if drive_id:
            params.update(corpora="drive", driveId=drive_id)
        headers = self._key_headers(within)
        token = None
        while True:
            reply = await self.t.request("GET", f"{self.api}/files", params={**params, "pageToken": token},
                                         headers=headers, what="files.list")
            data = reply.json()
            files = data.get("files", [])
            if not isinstance(files, list):
                raise DriveError(200, BAD_ANSWER, "files.list answered 'files' that is not a list", what="files.list")
            yield [self.learn(RemoteFile.from_json(f)) for f in files]
            token = data.get("nextPageToken")
            if not token:
                return

    async def list(self, q: str, **kwargs) -> list[RemoteFile]:
        out: list[RemoteFile] = []
        async for page in self.list_pages(q, **kwargs):
            out.extend(page)
        return out

    async def about(self, fields: str = "user(displayName,emailAddress),storageQuota") -> dict:
        return (await self.t.request("GET", f"{self.api}/about", params={"fields": fields})).json()

    # -- shared drives --------------------------------------------------------------------------

    async def shared_drives(self) -> list[SharedDrive]:
        """Every shared drive this account is a member of (drives.list, all pages)."""
        out: list[SharedDrive] = []
        token = None
        while True:
            reply = await self.t.request("GET", f"{self.api}/drives", params={
                "pageSize": 100, "pageToken": token, "fields": f"nextPageToken,drives({DRIVE_FIELDS})"},
                what="drives.list")
            data = reply.json()
            drives = data.get("drives", [])
            if not isinstance(drives, list):
                raise DriveError(200, BAD_ANSWER, "drives.list answered 'drives' that is not a list", what="drives.list")
            out.extend(SharedDrive.from_json(d) for d in drives)
            token = data.get("nextPageToken")
            if not token:
                break
        for d in out:
            self.add_shared_drive(d.id)
        return out

    async def shared_drive(self, drive_id: str) -> SharedDrive:
        reply = await self.t.request("GET", f"{self.api}/drives/{drive_id}", params={"fields": DRIVE_FIELDS},
                                     what=f"shared drive {drive_id}")
        found = SharedDrive.from_json(reply.json())
        self.add_shared_drive(found.id)
        return found

    async def new_id(self) -> str:
        """A file id from files.generateIds (fetched 100 at a time, one request for a hundred creates)."""
        if self._ids_lock is None:
            self._ids_lock = asyncio.Lock()
        async with self._ids_lock:
            if not self._ids:
                reply = await self.t.request("GET", f"{self.api}/files/generateIds", params={
                    "count": 100, "space": "drive", "type": "files", "supportsAllDrives": True},
                    what="files.generateIds")
                ids = reply.json().get("ids")
                if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
                    raise DriveError(200, BAD_ANSWER, "files.generateIds answered no ids", what="files.generateIds")
                self._ids = list(reversed(ids))
            return self._ids.pop()

    async def _create(self, metadata: dict, send) -> RemoteFile:
        """Create a file under an id of our own, so that a retried create is idempotent: when the
        server carried out a try whose answer was lost, the retry answers 409 and the file that try
        made is ours (same id, name and parent) and is returned instead of a duplicate."""
        meta = dict(metadata)
        meta.setdefault("id", await self.new_id())
        try:
            return await send(meta)
        except DriveError as exc:
            if exc.status != 409:
                raise
            try:
                existing = await self.get(meta["id"])
            except DriveError:
                raise exc from None
            if existing.name != meta.get("name") or (meta.get("parents") and
                                                    tuple(meta["parents"]) != existing.parents):
                raise
            return existing

    async def create_folder(self, name: str, parent_id: str) -> RemoteFile:
        async def send(meta: dict) -> RemoteFile:
            reply = await self.t.request("POST", f"{self.api}/files",
                                         params={"fields": FILE_FIELDS, "supportsAllDrives": True},
                                         headers=self._key_headers([parent_id]),
                                         json=meta, write=True, what=f"create folder {name}")
            return self.learn(RemoteFile.from_json(reply.json()))

        return await self._create({"name": name, "mimeType": FOLDER, "parents": [parent_id]}, send)

    async def update(self, file_id: str, metadata: dict | None = None, *, add_parents: str | None = None,
                     remove_parents: str | None = None) -> RemoteFile:
        reply = await self.t.request("PATCH", f"{self.api}/files/{file_id}", params={
            "fields": FILE_FIELDS, "addParents": add_parents, "removeParents": remove_parents,
            "supportsAllDrives": True}, headers=self._key_headers([file_id]), json=metadata or {}, write=True,
            what=f"update id:{file_id}")
        return self.learn(RemoteFile.from_json(reply.json()))

    async def trash(self, file_id: str) -> RemoteFile:
        return await self.update(file_id, {"trashed": True})

    async def delete(self, file_id: str) -> None:
        await self.t.request("DELETE", f"{self.api}/files/{file_id}", params={"supportsAllDrives": True},
                             ok=(204, 200), write=True, what=f"delete id:{file_id}")

    # -- media ----------------------------------------------------------------------------------

    def media(self, file_id: str, start: int | None = None, end: int | None = None):
        """A streaming GET of a file's content (bytes start..end inclusive), as a context manager
        yielding the response: 200 (whole body), 206 (the range) or 416 (empty file). Media is asked
        for uncompressed, so offsets, sizes and hashes stay exact."""
        headers = {"Accept-Encoding": "identity", **self._key_headers([file_id])}
        if start is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        return self.t.stream("GET", f"{self.api}/files/{file_id}", params={"alt": "media", "supportsAllDrives": True},
                             headers=headers, ok=(200, 206, 416), what=f"download id:{file_id}")

    def export(self, file_id: str, mime_type: str):
        # files.export has no supportsAllDrives parameter in the discovery document; Drive ignores unknown
        # parameters, and sending it keeps every files.* call alike (a shared drive's Docs export either way).
        return self.t.stream("GET", f"{self.api}/files/{file_id}/export",
                             params={"mimeType": mime_type, "supportsAllDrives": True},
                             headers={"Accept-Encoding": "identity", **self._key_headers([file_id])},
                             what=f"export id:{file_id}")

    # -- uploads --------------------------------------------------------------------------------

    async def upload_multipart(self, metadata: dict, content: bytes, *, file_id: str | None = None,
                               mime_type: str = "application/octet-stream") -> RemoteFile:
        """Metadata and content in one request: a new file (idempotent, see ``_create``) or, with
        ``file_id``, a new revision of it (a PATCH, idempotent by nature)."""
        if file_id is None:
            return await self._create(metadata, lambda meta: self._multipart(meta, content, None, mime_type))
        return await self._multipart(metadata, content, file_id, mime_type)

    async def _multipart(self, metadata: dict, content: bytes, file_id: str | None, mime_type: str) -> RemoteFile:
        boundary = "drivesync-" + uuid.uuid4().hex
        body = b"".join([
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
            json.dumps(metadata).encode(),
            f"\r\n--{boundary}\r\nContent-Type: {mime_type}\r\n\r\n".encode(),
            content,
            f"\r\n--{boundary}--\r\n".encode(),
        ])
        url = f"{self.upload_api}/files" + (f"/{file_id}" if file_id else "")
        reply = await self.t.request("PATCH" if file_id else "POST", url, params={
            "uploadType": "multipart", "fields": FILE_FIELDS, "supportsAllDrives": True},
            headers={"Content-Type": f"multipart/related; boundary={boundary}", **self._upload_keys(metadata, file_id)},
            data=body, write=True,
            what=f"upload {metadata.get('name', file_id)}")
        return RemoteFile.from_json(reply.json(), reply.headers)

    async def start_resumable(self, metadata: dict, size: int, *, file_id: str | None = None,
                              mime_type: str = "application/octet-stream") -> str:
        """Open a resumable upload session; returns the session URI (treat it as a secret-ish capability)."""
        url = f"{self.upload_api}/files" + (f"/{file_id}" if file_id else "")
        reply = await self.t.request("PATCH" if file_id else "POST", url, params={
            "uploadType": "resumable", "fields": FILE_FIELDS, "supportsAllDrives": True},
            headers={"X-Upload-Content-Type": mime_type, "X-Upload-Content-Length": str(size),
                     **self._upload_keys(metadata, file_id)},
            json=metadata, write=True, what=f"start upload {metadata.get('name', file_id)}")
        location = reply.headers.get("Location")
        if not location:
            raise DriveError(reply.status, "noSessionUri", "Drive did not return an upload session URI")
        return location

    def _upload_keys(self, metadata: dict, file_id: str | None) -> dict:
        return self._key_headers([file_id] if file_id else list(metadata.get("parents") or ()))

    async def send_chunk(self, session_uri: str, start: int, data: bytes, total: int | None) -> Reply:
        """PUT one chunk; returns the raw reply (308 with Range, or 200/201 with the File)."""
        end = start + len(data) - 1
        total_s = "*" if total is None else str(total)
        content_range = f"bytes {start}-{end}/{total_s}" if data else f"bytes */{total_s}"
        return await self.t.request("PUT", session_uri, headers={"Content-Range": content_range}, data=data,
                                    ok=(200, 201, 308), what="upload chunk")

    async def query_session(self, session_uri: str, total: int) -> Reply:
        """Ask Drive how much of a session it has committed (308 + Range), or get the finished File."""
        return await self.t.request("PUT", session_uri, headers={"Content-Range": f"bytes */{total}"}, data=b"",
                                    ok=(200, 201, 308), what="upload status")


_RANGE_RE = re.compile(r"bytes=(\d+)-(\d+)")


def committed_offset(reply: Reply) -> int:
    """The number of bytes Drive has committed, from a 308's Range header (none = 0)."""
    value = reply.headers.get("Range")
    if not value:
        return 0
    m = _RANGE_RE.match(value.strip())
    return int(m.group(2)) + 1 if m else 0
