"""The emulator's state: file metadata, changes, upload sessions and tokens in SQLite; contents as files.

Owns the on-disk layout under the data directory:
    drive.sqlite3        metadata (files, changes, revisions, upload_sessions, tokens, service-account keys)
    content/<revision>   the bytes of one content revision, immutable once renamed into place
    tmp/                 contents being written (renamed into content/ when complete)
    uploads/<upload_id>  the committed bytes of an open resumable upload session
Contents are kept by revision id, never by name: a name can be any Unicode, contain '/', '..', be very long.
The store never holds partial content: bytes are written to tmp/ and renamed. Only the head revision's
bytes are kept: a new revision drops the old bytes, its metadata (id, md5, size, time) stays in `revisions`.

Must never know about HTTP: it takes and returns plain values (dicts, bytes, paths). Thread-safe
(one connection behind a lock), so tests can seed it while the server thread serves from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from . import crc32c as crc32c_mod, errors
from .query import name_contains

FOLDER = "application/vnd.google-apps.folder"
SHORTCUT = "application/vnd.google-apps.shortcut"
GOOGLE_APPS = "application/vnd.google-apps."
DOC_KINDS = {
    "document": "application/vnd.google-apps.document",
    "spreadsheet": "application/vnd.google-apps.spreadsheet",
    "presentation": "application/vnd.google-apps.presentation",
}

USER_EMAIL = "emulated.user@example.com"
USER_NAME = "Emulated User"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    parent TEXT,
    trashed INTEGER NOT NULL DEFAULT 0,
    explicitly_trashed INTEGER NOT NULL DEFAULT 0,
    trashed_ms INTEGER,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    size INTEGER,
    md5 TEXT, sha1 TEXT, sha256 TEXT,
    revision TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    doc_text TEXT,
    target_id TEXT, target_mime TEXT,
    description TEXT,
    starred INTEGER NOT NULL DEFAULT 0,
    properties TEXT, app_properties TEXT,
    original_filename TEXT,
    abusive INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS files_parent ON files(parent, trashed);
CREATE INDEX IF NOT EXISTS files_name ON files(name);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id TEXT NOT NULL,
    removed INTEGER NOT NULL,
    time_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_file ON changes(file_id);
CREATE TABLE IF NOT EXISTS upload_sessions (
    id TEXT PRIMARY KEY,
    file_id TEXT,
    metadata TEXT NOT NULL,
    content_type TEXT,
    total INTEGER,
    committed INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    done_file_id TEXT
);
CREATE TABLE IF NOT EXISTS revisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT,
    modified_ms INTEGER NOT NULL,
    original_filename TEXT
);
CREATE INDEX IF NOT EXISTS revisions_file ON revisions(file_id, seq);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token TEXT PRIMARY KEY, client_id TEXT, subject TEXT, scope TEXT, created_ms INTEGER, revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS access_tokens (
    token TEXT PRIMARY KEY, refresh_token TEXT, subject TEXT, scope TEXT, expires REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS auth_codes (
    code TEXT PRIMARY KEY, client_id TEXT, redirect_uri TEXT, scope TEXT, challenge TEXT, method TEXT, expires REAL, used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sa_keys (key_id TEXT PRIMARY KEY, email TEXT NOT NULL, public_pem TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS content_crc32c (revision TEXT PRIMARY KEY, crc32c INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    email TEXT PRIMARY KEY, display_name TEXT NOT NULL, permission_id TEXT NOT NULL, root_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS permissions (
    file_id TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, role TEXT NOT NULL, email TEXT,
    allow_discovery INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, PRIMARY KEY (file_id, id)
);
CREATE INDEX IF NOT EXISTS permissions_email ON permissions(email, type);
CREATE TABLE IF NOT EXISTS drives (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, request_id TEXT UNIQUE, created_ms INTEGER NOT NULL,
    hidden INTEGER NOT NULL DEFAULT 0
);
"""

# Columns added after the first schema: (table, column, SQL type). Old data directories get them on open.
MIGRATIONS = [
    ("files", "owner", "TEXT"),                                   # email of the owning account; NULL in shared drives
    ("files", "drive_id", "TEXT"),                                # the shared drive an item lives in
    ("files", "copy_requires_writer", "INTEGER NOT NULL DEFAULT 0"),
    ("files", "resource_key", "TEXT"),
    ("changes", "owner", "TEXT"),
    ("changes", "drive_id", "TEXT"),
    ("upload_sessions", "account", "TEXT"),
    ("auth_codes", "subject", "TEXT"),                            # the account a code signs in (login_hint)
]

COPY_CHUNK = 4 * 1024 * 1024


def now_ms() -> int:
    return int(time.time() * 1000)


def rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def to_ms(value) -> int:
    """datetime, RFC 3339 string, epoch seconds (int/float) -> epoch milliseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(round(value.timestamp() * 1000))
    if isinstance(value, (int, float)):
        return int(round(value * 1000))
    if isinstance(value, str):
        v = value.strip()
        if v.endswith(("Z", "z")):
            v = v[:-1] + "+00:00"
        dt = datetime.fromisoformat(v)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return int(round(dt.timestamp() * 1000))
    raise TypeError(f"not a time: {value!r}")


def new_file_id() -> str:
    # Drive ids: 33 characters of [A-Za-z0-9_-], starting with 1 for items in My Drive.
    return "1" + secrets.token_urlsafe(24)


def new_revision_id() -> str:
    return "0B" + secrets.token_urlsafe(30)


def pseudo_random_chunks(size: int, seed: int, chunk: int = COPY_CHUNK):
    """Deterministic pseudo-random bytes (AES-CTR keystream of the seed): fast enough for multi-GB seeds."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = hashlib.sha256(f"drivesync-emulator-seed:{seed}".encode()).digest()[:16]
    enc = Cipher(algorithms.AES(key), modes.CTR(b"\0" * 16)).encryptor()
    zeros = bytes(chunk)
    left = size
    while left > 0:
        n = min(chunk, left)
        yield enc.update(zeros if n == chunk else bytes(n))
        left -= n


class Hasher:
    """md5, sha1 and sha256 of a stream. Large updates run the three digests in parallel threads
    (hashlib releases the GIL), so seeding a multi-GB file costs about one md5 pass. Also the crc32c
    (for X-Goog-Hash) when the fast implementation is installed; else the store computes it lazily."""

    _pool: ThreadPoolExecutor | None = None
    _pool_lock = threading.Lock()

    def __init__(self):
        self.md5 = hashlib.md5()
        self.sha1 = hashlib.sha1()
        self.sha256 = hashlib.sha256()
        self.crc32c = crc32c_mod.Crc32c()
        self.size = 0

    @classmethod
    def pool(cls) -> ThreadPoolExecutor:
        with cls._pool_lock:
            if cls._pool is None:
                cls._pool = ThreadPoolExecutor(4, thread_name_prefix="emulator-hash")
            return cls._pool

    def update(self, data) -> None:
        self.size += len(data)
        if len(data) >= 1024 * 1024:
            pool = self.pool()
            futs = [pool.submit(h.update, data) for h in (self.md5, self.sha1)]
            self.sha256.update(data)
            self.crc32c.update(data)
            for f in futs:
                f.result()
        else:
            self.md5.update(data)
            self.sha1.update(data)
            self.sha256.update(data)
            self.crc32c.update(data)

    def digests(self) -> dict:
        return {"md5": self.md5.hexdigest(), "sha1": self.sha1.hexdigest(), "sha256": self.sha256.hexdigest(),
                "crc32c": self.crc32c.value}


def file_chunks(path: str | os.PathLike):
    """A file's bytes, COPY_CHUNK at a time."""
    with open(path, "rb") as f:
        while b := f.read(COPY_CHUNK):
            yield b


def hash_file(path: str | os.PathLike) -> tuple[int, dict]:
    h = Hasher()
    for b in file_chunks(path):
        h.update(b)
    return h.size, h.digests()


def _dict_factory(cursor, row):
    return {d[0]: v for d, v in zip(cursor.description, row)}


class Store:
    """Metadata in SQLite plus content files, under one data directory. See the module docstring."""

    def __init__(self, data_dir: str | os.PathLike):
        self.data_dir = Path(data_dir)
        self.content_dir = self.data_dir / "content"
        self.tmp_dir = self.data_dir / "tmp"
        self.uploads_dir = self.data_dir / "uploads"
        for d in (self.data_dir, self.content_dir, self.tmp_dir, self.uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(
            str(self.data_dir / "drive.sqlite3"), check_same_thread=False, isolation_level=None, timeout=30
        )
        self.db.row_factory = _dict_factory
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.create_function("drive_contains", 2, name_contains, deterministic=True)
        with self.lock:
            self.db.executescript(SCHEMA)
            self._migrate()
            self.root_id = self._meta("root_id") or self._init_root()
            self.permission_id = self._meta("permission_id") or self._set_meta(
                "permission_id", str(secrets.randbelow(10**20))
            )
            self.db.execute(
                "INSERT OR IGNORE INTO accounts (email, display_name, permission_id, root_id, created_ms) "
                "VALUES (?, ?, ?, ?, ?)", (USER_EMAIL, USER_NAME, self.permission_id, self.root_id, now_ms()))
            # Rows from before accounts existed belong to the default account.
            self.db.execute("UPDATE files SET owner = ? WHERE owner IS NULL AND drive_id IS NULL", (USER_EMAIL,))
            self.db.execute("CREATE INDEX IF NOT EXISTS files_owner ON files(owner)")
        # Base of absolute URLs (links in file()); the server passes the request's own base instead.
        self.public_url = "http://127.0.0.1"
        # Set by the server (frontend.py): file id -> True when its answers carry no md5/sha1/sha256.
        self.hide_checksums = None

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def _migrate(self) -> None:
        for table, column, sqltype in MIGRATIONS:
            cols = {r["name"] for r in self.db.execute(f"PRAGMA table_info({table})").fetchall()}
            if column not in cols:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sqltype}")

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def _set_meta(self, key: str, value: str) -> str:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value

    def meta(self, key: str) -> str | None:
        with self.lock:
            return self._meta(key)

    def set_meta(self, key: str, value: str) -> str:
        with self.lock:
            return self._set_meta(key, value)

    def _init_root(self) -> str:
        root = "0A" + secrets.token_urlsafe(12) + "Uk9PVA"
        t = now_ms()
        self.db.execute(
            "INSERT INTO files (id, name, mime_type, parent, created_ms, modified_ms, owner) VALUES (?, ?, ?, NULL, ?, ?, ?)",
            (root, "My Drive", FOLDER, t, t, USER_EMAIL),
        )
        self._set_meta("root_id", root)
        return root

    def new_root(self, owner: str, name: str = "My Drive", drive_id: str | None = None) -> str:
        """A parentless folder: the My Drive root of another account, or (with `drive_id`) a shared drive's
        root, whose id is the drive id."""
        fid = drive_id or ("0A" + secrets.token_urlsafe(12) + "Uk9PVA")
        t = now_ms()
        with self.lock:
            self.db.execute(
                "INSERT INTO files (id, name, mime_type, parent, created_ms, modified_ms, owner, drive_id) "
                "VALUES (?, ?, ?, NULL, ?, ?, ?, ?)",
                (fid, name, FOLDER, t, t, None if drive_id else owner, drive_id),
            )
        return fid

    def execute(self, sql: str, params=()) -> list[dict]:
        with self.lock:
            return self.db.execute(sql, params).fetchall()

    def content_path(self, revision: str) -> Path:
        return self.content_dir / revision

    def _change(self, file_id: str, removed: bool, t: int) -> None:
        # Who owned it (or which shared drive held it) is kept so a removal is told only to those who could see it.
        r = self.db.execute("SELECT owner, drive_id FROM files WHERE id = ?", (file_id,)).fetchone() or {}
        self.db.execute("INSERT INTO changes (file_id, removed, time_ms, owner, drive_id) VALUES (?, ?, ?, ?, ?)",
                        (file_id, int(removed), t, r.get("owner"), r.get("drive_id")))

    # ------------------------------------------------------------------ reading rows

    def row(self, file_id: str) -> dict | None:
        if file_id == "root":
            file_id = self.root_id
        with self.lock:
            return self.db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()

    def require(self, file_id: str) -> dict:
        r = self.row(file_id)
        if r is None:
            raise errors.not_found(file_id)
        return r

    def resolve(self, file_id: str) -> str:
        return self.root_id if file_id == "root" else file_id

    def query_rows(self, where: str, params: list, order: str, limit: int, offset: int) -> list[dict]:
        # Roots (the My Drive of each account, each shared drive's root) have no parent and are never listed.
        sql = f"SELECT * FROM files WHERE id != ? AND parent IS NOT NULL AND ({where}) ORDER BY {order} LIMIT ? OFFSET ?"
        with self.lock:
            return self.db.execute(sql, [self.root_id, *params, limit, offset]).fetchall()

    # ------------------------------------------------------------------ the File resource

    def resource(self, r: dict, base_url: str | None = None) -> dict:
        """The full Drive v3 File resource of a row (the server filters it with `fields`)."""
        base = base_url or self.public_url
        fid = r["id"]
        mime = r["mime_type"]
        is_folder = mime == FOLDER
        is_shortcut = mime == SHORTCUT
        is_doc = mime.startswith(GOOGLE_APPS) and not is_folder and not is_shortcut
        binary = not mime.startswith(GOOGLE_APPS)
        user = self.user()
        f = {
            "kind": "drive#file",
            "id": fid,
            "name": r["name"],
            "mimeType": mime,
            "starred": bool(r["starred"]),
            "trashed": bool(r["trashed"]),
            "explicitlyTrashed": bool(r["explicitly_trashed"]),
            "spaces": ["drive"],
            "version": str(r["version"]),
            "webViewLink": f"{base}/file/d/{fid}/view",
            "iconLink": f"{base}/icons/{mime}",
            "hasThumbnail": False,
            "thumbnailVersion": "0",
            "viewedByMe": True,
            "viewedByMeTime": rfc3339(r["modified_ms"]),
            "createdTime": rfc3339(r["created_ms"]),
            "modifiedTime": rfc3339(r["modified_ms"]),
            "modifiedByMeTime": rfc3339(r["modified_ms"]),
            "modifiedByMe": True,
            "owners": [user],
            "lastModifyingUser": user,
            "shared": False,
            "ownedByMe": True,
            "capabilities": {
                "canAddChildren": is_folder and not r["trashed"],
                "canCopy": not is_folder,
                "canDelete": True,
                "canDownload": True,
                "canEdit": True,
                "canListChildren": is_folder,
                "canModifyContent": True,
                "canReadRevisions": not is_folder,
                "canRemoveChildren": is_folder,
                "canRename": True,
                "canShare": True,
                "canTrash": True,
                "canUntrash": True,
            },
            "viewersCanCopyContent": True,
            "copyRequiresWriterPermission": False,
            "writersCanShare": True,
            "permissionIds": [self.permission_id],
            "isAppAuthorized": False,
            "quotaBytesUsed": str(r["size"] or 0) if binary else "0",
        }
        if r["parent"] is not None:
            f["parents"] = [r["parent"]]
        if r["description"] is not None:
            f["description"] = r["description"]
        if r["properties"]:
            f["properties"] = json.loads(r["properties"])
        if r["app_properties"]:
            f["appProperties"] = json.loads(r["app_properties"])
        if r["trashed"] and r["trashed_ms"] is not None:
            f["trashedTime"] = rfc3339(r["trashed_ms"])
            f["trashingUser"] = user
        if binary:
            f["size"] = str(r["size"] or 0)
            if self.hide_checksums is None or not self.hide_checksums(fid):
                f["md5Checksum"] = r["md5"]
                f["sha1Checksum"] = r["sha1"]
                f["sha256Checksum"] = r["sha256"]
            f["headRevisionId"] = r["revision"]
            f["webContentLink"] = f"{base}/drive/v3/files/{fid}?alt=media"
            f["originalFilename"] = r["original_filename"] or r["name"]
            f["fullFileExtension"] = _full_extension(r["name"])
            f["fileExtension"] = _extension(r["name"])
        elif is_doc:
            f["size"] = str(len((r["doc_text"] or "").encode()))
            from .exports import export_formats  # local: exports imports nothing from here at import time

            f["exportLinks"] = {
                m: f"{base}/drive/v3/files/{fid}/export?mimeType={_quote(m)}" for m in export_formats(mime)
            }
        elif is_shortcut:
            f["shortcutDetails"] = {"targetId": r["target_id"], "targetMimeType": r["target_mime"]}
        return f

    def user(self) -> dict:
        return {
            "kind": "drive#user",
            "displayName": USER_NAME,
            "me": True,
            "permissionId": self.permission_id,
            "emailAddress": USER_EMAIL,
        }

    # ------------------------------------------------------------------ writes

    def _check_parent(self, parent_id: str | None, owner: str | None = None) -> str:
        return self._parent_row(parent_id, owner)["id"]

    def _parent_row(self, parent_id: str | None, owner: str | None = None) -> dict:
        """The parent folder's row; no parent = the My Drive root of `owner` (default: the default account)."""
        if parent_id:
            parent = self.resolve(parent_id)
        elif owner and owner != USER_EMAIL:
            r = self.db.execute("SELECT root_id FROM accounts WHERE email = ?", (owner,)).fetchone()
            if r is None:
                raise KeyError(f"no such account: {owner}")
            parent = r["root_id"]
        else:
            parent = self.root_id
        prow = self.db.execute("SELECT id, mime_type, drive_id FROM files WHERE id = ?", (parent,)).fetchone()
        if prow is None:
            raise errors.not_found(parent)
        if prow["mime_type"] != FOLDER:
            raise errors.DriveError(400, "invalid", "The specified parent is not a folder.", location="parents")
        return prow

    def insert(
        self,
        *,
        name: str,
        mime_type: str,
        parent_id: str | None = None,
        file_id: str | None = None,
        created_ms: int | None = None,
        modified_ms: int | None = None,
        content: tuple[str, int, dict] | None = None,
        doc_text: str | None = None,
        target: tuple[str, str] | None = None,
        description: str | None = None,
        starred: bool = False,
        properties: dict | None = None,
        app_properties: dict | None = None,
        original_filename: str | None = None,
        owner: str | None = None,
        copy_requires_writer: bool = False,
    ) -> str:
        """Create a file row. `content` = (revision, size, digests) of bytes already renamed into content/.
        `owner` (an account's email; default: the default account) owns it, unless the parent is in a shared
        drive: then the drive holds it and it has no owner. No parent = the owner's My Drive root."""
        if "\0" in name:
            raise errors.DriveError(400, "invalid", "Invalid Value", location="name")
        t = now_ms()
        with self.lock:
            prow = self._parent_row(parent_id, owner)
            parent = prow["id"]
            drive_id = prow["drive_id"]
            owner = None if drive_id else (owner or USER_EMAIL)
            fid = file_id or new_file_id()
            if file_id and self.db.execute("SELECT 1 FROM files WHERE id = ?", (fid,)).fetchone():
                raise errors.DriveError(409, "duplicate", "A file already exists with the provided ID.")
            binary = not mime_type.startswith(GOOGLE_APPS)
            rev, size, dig = content if content else (None, None, {})
            if binary and content is None:
                rev = new_revision_id()
                self.content_path(rev).touch()
                size, dig = 0, Hasher().digests()
            self.db.execute("BEGIN")
            try:
                self.db.execute(
                    """INSERT INTO files (id, name, mime_type, parent, created_ms, modified_ms, size, md5, sha1, sha256,
                       revision, version, doc_text, target_id, target_mime, description, starred, properties,
                       app_properties, original_filename, owner, drive_id, copy_requires_writer)
                       VALUES (?,?,?,?,?,?,?,?,?,?,?,1,?,?,?,?,?,?,?,?,?,?,?)""",
                    (
                        fid,
                        name,
                        mime_type,
                        parent,
                        created_ms if created_ms is not None else t,
                        modified_ms if modified_ms is not None else t,
                        size if binary else None,
                        dig.get("md5"),
                        dig.get("sha1"),
                        dig.get("sha256"),
                        rev,
                        doc_text,
                        target[0] if target else None,
                        target[1] if target else None,
                        description,
                        int(starred),
                        json.dumps(properties) if properties else None,
                        json.dumps(app_properties) if app_properties else None,
                        original_filename,
                        owner,
                        drive_id,
                        int(bool(copy_requires_writer)),
                    ),
                )
                if binary:
                    self._add_revision(
                        fid, rev, mime_type, size, dig.get("md5"),
                        modified_ms if modified_ms is not None else t, original_filename or name,
                    )
                self._change(fid, False, t)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            return fid

    def update(self, file_id: str, **changes) -> dict:
        """Apply metadata changes (name, mime_type, parent, modified_ms, description, starred, properties,
        app_properties, trashed) and optionally new content (`content=(revision, size, digests)`).
        Bumps version, records a change. Returns the new row."""
        t = now_ms()
        with self.lock:
            fid = self.resolve(file_id)
            r = self.require(fid)
            sets: dict = {}
            old_rev = None
            if "name" in changes and changes["name"] is not None:
                if "\0" in changes["name"]:
                    raise errors.DriveError(400, "invalid", "Invalid Value", location="name")
                sets["name"] = changes["name"]
            if changes.get("mime_type") and changes["mime_type"] != r["mime_type"]:
                if r["mime_type"] == FOLDER or changes["mime_type"] == FOLDER:
                    raise errors.DriveError(403, "fileWriterTeamDriveMoveInDisallowed", "Cannot change a folder's type.")
                sets["mime_type"] = changes["mime_type"]
            if "parent" in changes and changes["parent"] is not None:
                parent = self._check_parent(changes["parent"])
                self._check_no_cycle(fid, parent)
                sets["parent"] = parent
            if "description" in changes:
                sets["description"] = changes["description"]
            if changes.get("copy_requires_writer") is not None:
                sets["copy_requires_writer"] = int(bool(changes["copy_requires_writer"]))
            if "starred" in changes and changes["starred"] is not None:
                sets["starred"] = int(bool(changes["starred"]))
            for key, col in (("properties", "properties"), ("app_properties", "app_properties")):
                if key in changes and changes[key] is not None:
                    merged = json.loads(r[col]) if r[col] else {}
                    for k, v in changes[key].items():
                        if v is None:
                            merged.pop(k, None)
                        else:
                            merged[k] = str(v)
                    sets[col] = json.dumps(merged) if merged else None
            content = changes.get("content")
            if content is not None:
                rev, size, dig = content
                old_rev = r["revision"]
                sets.update(revision=rev, size=size, md5=dig["md5"], sha1=dig["sha1"], sha256=dig["sha256"])
                if changes.get("original_filename"):
                    sets["original_filename"] = changes["original_filename"]
            if "doc_text" in changes and changes["doc_text"] is not None:
                sets["doc_text"] = changes["doc_text"]
            touched_content = content is not None or "doc_text" in sets
            if changes.get("modified_ms") is not None:
                sets["modified_ms"] = changes["modified_ms"]
            elif touched_content or sets:
                sets["modified_ms"] = t
            trashed = changes.get("trashed")
            self.db.execute("BEGIN")
            try:
                sets["version"] = r["version"] + 1
                cols = ", ".join(f"{k} = ?" for k in sets)
                self.db.execute(f"UPDATE files SET {cols} WHERE id = ?", (*sets.values(), fid))
                if content is not None:
                    if r["revision"] and not self.db.execute(
                        "SELECT 1 FROM revisions WHERE file_id = ? LIMIT 1", (fid,)
                    ).fetchone():
                        # A file stored before revisions were recorded: keep its old head listed too.
                        self._add_revision(fid, r["revision"], r["mime_type"], r["size"], r["md5"], r["modified_ms"],
                                           r["original_filename"] or r["name"])
                    self._add_revision(
                        fid, sets["revision"], sets.get("mime_type", r["mime_type"]), sets["size"], sets["md5"],
                        sets["modified_ms"], sets.get("original_filename") or r["original_filename"] or r["name"],
                    )
                self._change(fid, False, t)
                if trashed is not None and bool(trashed) != bool(r["trashed"] and r["explicitly_trashed"]):
                    self._set_trashed(fid, bool(trashed), t)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        if old_rev and old_rev != sets.get("revision"):
            self._drop_content(old_rev)
        return self.row(fid)

    def _check_no_cycle(self, fid: str, new_parent: str) -> None:
        p = new_parent
        while p is not None:
            if p == fid:
                raise errors.DriveError(400, "invalid", "A folder cannot be moved into itself or its descendants.")
            row = self.db.execute("SELECT parent FROM files WHERE id = ?", (p,)).fetchone()
            p = row["parent"] if row else None

    def _descendants(self, fid: str) -> list[str]:
        out, todo = [], [fid]
        while todo:
            cur = todo.pop()
            kids = self.db.execute("SELECT id FROM files WHERE parent = ?", (cur,)).fetchall()
            for k in kids:
                out.append(k["id"])
                todo.append(k["id"])
        return out

    def _set_trashed(self, fid: str, trashed: bool, t: int) -> None:
        if trashed:
            self.db.execute(
                "UPDATE files SET trashed = 1, explicitly_trashed = 1, trashed_ms = ? WHERE id = ?", (t, fid)
            )
            for d in self._descendants(fid):
                self.db.execute(
                    "UPDATE files SET trashed = 1, trashed_ms = coalesce(trashed_ms, ?) WHERE id = ?", (t, d)
                )
                self._change(d, False, t)
        else:
            self.db.execute(
                "UPDATE files SET trashed = 0, explicitly_trashed = 0, trashed_ms = NULL WHERE id = ?", (fid,)
            )
            # Children trashed along with the folder come back; those trashed on their own stay.
            todo = [fid]
            while todo:
                cur = todo.pop()
                for k in self.db.execute(
                    "SELECT id FROM files WHERE parent = ? AND explicitly_trashed = 0", (cur,)
                ).fetchall():
                    self.db.execute("UPDATE files SET trashed = 0, trashed_ms = NULL WHERE id = ?", (k["id"],))
                    self._change(k["id"], False, t)
                    todo.append(k["id"])

    def trash(self, file_id: str, trashed: bool = True) -> None:
        self.update(file_id, trashed=trashed)

    def delete(self, file_id: str) -> None:
        """Delete a file for good (a folder with everything below it)."""
        t = now_ms()
        revs = []
        with self.lock:
            fid = self.resolve(file_id)
            self.require(fid)
            if fid == self.root_id:
                raise errors.DriveError(403, "cannotDeleteRoot", "The root folder cannot be deleted.")
            ids = [fid, *self._descendants(fid)]
            self.db.execute("BEGIN")
            try:
                for i in ids:
                    r = self.db.execute("SELECT revision FROM files WHERE id = ?", (i,)).fetchone()
                    if r and r["revision"]:
                        revs.append(r["revision"])
                    self._change(i, True, t)
                    self.db.execute("DELETE FROM files WHERE id = ?", (i,))
                    self.db.execute("DELETE FROM revisions WHERE file_id = ?", (i,))
                    self.db.execute("DELETE FROM permissions WHERE file_id = ?", (i,))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        for rev in revs:
            self._drop_content(rev)

    def empty_trash(self, owner: str | None = None) -> int:
        """Delete for good what was trashed explicitly (only what `owner` owns, when given)."""
        sql = "SELECT id FROM files WHERE trashed = 1 AND explicitly_trashed = 1"
        with self.lock:
            tops = self.db.execute(sql + (" AND owner = ?" if owner else ""), (owner,) if owner else ()).fetchall()
        for r in tops:
            if self.row(r["id"]) is not None:
                self.delete(r["id"])
        return len(tops)

    def _drop_content(self, rev: str) -> None:
        with self.lock:
            still = self.db.execute("SELECT 1 FROM files WHERE revision = ? LIMIT 1", (rev,)).fetchone()
        if not still:
            with self.lock:
                self.db.execute("DELETE FROM content_crc32c WHERE revision = ?", (rev,))
            try:
                os.unlink(self.content_path(rev))
            except FileNotFoundError:
                pass

    # ------------------------------------------------------------------ content

    def temp_path(self) -> Path:
        return self.tmp_dir / ("t-" + secrets.token_hex(12))

    def adopt_content(self, tmp_path: str | os.PathLike, size: int, digests: dict) -> tuple[str, int, dict]:
        """Rename complete bytes from tmp/ (or uploads/) into content/; returns the `content` tuple."""
        rev = new_revision_id()
        os.replace(tmp_path, self.content_path(rev))
        if digests.get("crc32c") is not None:
            with self.lock:
                self.db.execute(
                    "INSERT OR REPLACE INTO content_crc32c (revision, crc32c) VALUES (?, ?)", (rev, digests["crc32c"])
                )
        return rev, size, digests

    def crc32c(self, rev: str, compute: bool = True) -> int | None:
        """The CRC-32C of a revision's content: recorded when the bytes came in, else computed once and kept
        (None when it is not recorded and `compute` is False)."""
        with self.lock:
            r = self.db.execute("SELECT crc32c FROM content_crc32c WHERE revision = ?", (rev,)).fetchone()
        if r is not None:
            return r["crc32c"]
        if not compute:
            return None
        path = self.content_path(rev)
        try:
            c = crc32c_mod.Crc32c()
            for b in file_chunks(path):
                c.update(b)
        except FileNotFoundError:
            return None
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO content_crc32c (revision, crc32c) VALUES (?, ?)", (rev, c.value))
        return c.value

    def write_content(self, chunks) -> tuple[str, int, dict]:
        """Write an iterable of byte chunks to tmp/, hash it, and adopt it."""
        tmp = self.temp_path()
        h = Hasher()
        try:
            pool = Hasher.pool()
            with open(tmp, "wb") as f:
                for c in chunks:
                    if len(c) >= 1024 * 1024:
                        # Overlap the disk write with hashing (both release the GIL).
                        w = pool.submit(f.write, c)
                        h.update(c)
                        w.result()
                    else:
                        h.update(c)
                        f.write(c)
            return self.adopt_content(tmp, h.size, h.digests())
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def copy_file(self, file_id: str, *, name: str | None = None, parent_id: str | None = None,
                  owner: str | None = None) -> str:
        r = self.require(file_id)
        content = None
        if r["revision"]:
            rev = new_revision_id()
            try:
                os.link(self.content_path(r["revision"]), self.content_path(rev))
            except OSError:
                shutil.copyfile(self.content_path(r["revision"]), self.content_path(rev))
            content = (rev, r["size"], {"md5": r["md5"], "sha1": r["sha1"], "sha256": r["sha256"]})
        return self.insert(
            name=name if name is not None else r["name"],
            mime_type=r["mime_type"],
            parent_id=parent_id or r["parent"],
            content=content,
            doc_text=r["doc_text"],
            target=(r["target_id"], r["target_mime"]) if r["target_id"] else None,
            description=r["description"],
            properties=json.loads(r["properties"]) if r["properties"] else None,
            app_properties=json.loads(r["app_properties"]) if r["app_properties"] else None,
            owner=owner,
            copy_requires_writer=bool(r["copy_requires_writer"]),
        )

    # ------------------------------------------------------------------ seeding (the contract)

    def add_folder(self, name: str, parent_id: str | None = None, *, owner: str | None = None) -> str:
        return self.insert(name=name, mime_type=FOLDER, parent_id=parent_id, owner=owner)

    def add_file(
        self,
        name: str,
        data: bytes | None = None,
        *,
        parent_id: str | None = None,
        path: str | os.PathLike | None = None,
        size: int | None = None,
        seed: int = 0,
        mime_type: str | None = None,
        modified_time=None,
        owner: str | None = None,
    ) -> str:
        """A binary file from `data`, from a local `path`, or `size` pseudo-random bytes from `seed`."""
        if data is not None:
            content = self.write_content([data[i : i + COPY_CHUNK] for i in range(0, len(data), COPY_CHUNK)])
        elif path is not None:
            content = self.write_content(file_chunks(path))
        elif size is not None:
            content = self.write_content(pseudo_random_chunks(size, seed))
        else:
            content = self.write_content([])
        return self.insert(
            name=name,
            mime_type=mime_type or "application/octet-stream",
            parent_id=parent_id,
            content=content,
            modified_ms=to_ms(modified_time) if modified_time is not None else None,
            original_filename=name,
            owner=owner,
        )

    def add_doc(self, name: str, parent_id: str | None = None, kind: str = "document", text: str = "", *,
                owner: str | None = None) -> str:
        if kind not in DOC_KINDS:
            raise ValueError(f"kind must be one of {sorted(DOC_KINDS)}")
        return self.insert(name=name, mime_type=DOC_KINDS[kind], parent_id=parent_id, doc_text=text, owner=owner)

    def add_shortcut(self, name: str, target_id: str, parent_id: str | None = None, *,
                     owner: str | None = None) -> str:
        t = self.require(target_id)
        return self.insert(name=name, mime_type=SHORTCUT, parent_id=parent_id, target=(t["id"], t["mime_type"]),
                           owner=owner)

    def set_abusive(self, file_id: str, abusive: bool = True) -> None:
        """Flag a file as malware/spam: alt=media then needs acknowledgeAbuse=true."""
        with self.lock:
            self.db.execute("UPDATE files SET abusive = ? WHERE id = ?", (int(abusive), self.resolve(file_id)))

    # ------------------------------------------------------------------ reading (the contract)

    def file(self, file_id: str) -> dict:
        return self.resource(self.require(file_id))

    def content(self, file_id: str) -> bytes:
        r = self.require(file_id)
        if r["revision"] is None:
            return (r["doc_text"] or "").encode()
        return self.content_path(r["revision"]).read_bytes()

    def children(self, parent_id: str, trashed: bool | None = None) -> list[dict]:
        pid = self.resolve(parent_id)
        sql = "SELECT * FROM files WHERE parent = ?"
        params: list = [pid]
        if trashed is not None:
            sql += " AND trashed = ?"
            params.append(int(trashed))
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY rowid", params).fetchall()
        return [self.resource(r) for r in rows]

    def path_id(self, path: str) -> str:
        cur = self.root_id
        for part in [p for p in path.strip("/").split("/") if p]:
            with self.lock:
                r = self.db.execute(
                    "SELECT id FROM files WHERE parent = ? AND name = ? AND trashed = 0 ORDER BY rowid LIMIT 1",
                    (cur, part),
                ).fetchone()
            if r is None:
                raise KeyError(path)
            cur = r["id"]
        return cur

    # ------------------------------------------------------------------ changes

    def start_page_token(self) -> str:
        with self.lock:
            r = self.db.execute("SELECT coalesce(max(seq), 0) AS m FROM changes").fetchone()
        return str(r["m"] + 1)

    def changes_since(self, token: int, limit: int) -> tuple[list[dict], int | None]:
        """Latest change per file with seq >= token, oldest first; returns (rows, next token or None)."""
        with self.lock:
            rows = self.db.execute(
                """SELECT c.seq, c.file_id, c.removed, c.time_ms, c.owner, c.drive_id FROM changes c
                   JOIN (SELECT file_id, max(seq) AS m FROM changes WHERE seq >= ? GROUP BY file_id) l
                   ON c.seq = l.m ORDER BY c.seq LIMIT ?""",
                (token, limit + 1),
            ).fetchall()
        if len(rows) > limit:
            return rows[:limit], rows[limit - 1]["seq"] + 1
        return rows, None

    # ------------------------------------------------------------------ revisions

    def _add_revision(self, fid, rev, mime_type, size, md5, modified_ms, original_filename) -> None:
        """Record one content revision (caller holds the lock, inside its transaction). Only metadata is
        kept: the store drops the bytes of a revision once a newer one replaces it."""
        self.db.execute(
            """INSERT INTO revisions (id, file_id, mime_type, size, md5, modified_ms, original_filename)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (rev, fid, mime_type, size or 0, md5, modified_ms, original_filename),
        )

    def revisions(self, file_id: str) -> list[dict]:
        """The content revisions of a binary file, oldest first; the last one is the head. A file written
        before revisions were recorded gets its head revision only."""
        fid = self.resolve(file_id)
        with self.lock:
            rows = self.db.execute(
                "SELECT id, file_id, mime_type, size, md5, modified_ms, original_filename FROM revisions "
                "WHERE file_id = ? ORDER BY seq",
                (fid,),
            ).fetchall()
            if rows:
                return rows
            r = self.db.execute("SELECT * FROM files WHERE id = ?", (fid,)).fetchone()
        if r is None or r["revision"] is None:
            return []
        return [{
            "id": r["revision"], "file_id": fid, "mime_type": r["mime_type"], "size": r["size"] or 0,
            "md5": r["md5"], "modified_ms": r["modified_ms"], "original_filename": r["original_filename"] or r["name"],
        }]

    def revision(self, file_id: str, revision_id: str) -> dict | None:
        for r in self.revisions(file_id):
            if r["id"] == revision_id:
                return r
        return None

    def revision_resource(self, rev: dict) -> dict:
        """The Drive v3 Revision resource of a revision row (binary files: md5, size, originalFilename)."""
        out = {
            "kind": "drive#revision",
            "id": rev["id"],
            "mimeType": rev["mime_type"],
            "modifiedTime": rfc3339(rev["modified_ms"]),
            "keepForever": False,
            "size": str(rev["size"]),
            "originalFilename": rev["original_filename"],
            "lastModifyingUser": self.user(),
        }
        hide = getattr(self, "hide_checksums", None)
        if rev["md5"] and (hide is None or not hide(rev["file_id"])):
            out["md5Checksum"] = rev["md5"]
        return out

    # ------------------------------------------------------------------ storage

    def usage(self, owner: str | None = None) -> tuple[int, int]:
        """(bytes, bytes in trash) of the binary files `owner` owns (None: every file, as with one account)."""
        sql = "SELECT coalesce(sum(size), 0) AS total, coalesce(sum(CASE WHEN trashed THEN size END), 0) AS trash FROM files"
        with self.lock:
            r = self.db.execute(sql + (" WHERE owner = ?" if owner else ""), (owner,) if owner else ()).fetchone()
        return r["total"], r["trash"]


def _extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[1] if "." in base.strip(".") else ""


def _full_extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1].lstrip(".")
    return base.split(".", 1)[1] if "." in base else ""


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")
