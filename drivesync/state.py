"""The local journal (SQLite): what was synced, partial downloads, open upload sessions.

It owns the journal's schema and its file (mode 0600, WAL so a watcher and a pull can share it).
It stores no tokens; upload session URIs are kept because resuming needs them, and the file is
private to the user. It never talks to Drive and never touches the synced files themselves.

Where it lives: ``$DRIVESYNC_STATE_DIR`` or the platform's user state dir (``~/.local/state/drivesync``).
"""
from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS synced (
    local_path   TEXT PRIMARY KEY,   -- absolute path of a file that matches a Drive file
    file_id      TEXT NOT NULL,
    md5          TEXT,               -- Drive's md5 (or, for exports, of the local bytes)
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,   -- local stat at the time it was verified: unchanged => no re-hash
    remote_modified TEXT,
    direction    TEXT NOT NULL,      -- 'pull' or 'push'
    synced_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS partial_download (
    part_path    TEXT PRIMARY KEY,   -- the temporary file being filled
    file_id      TEXT NOT NULL,
    md5          TEXT,
    size         INTEGER NOT NULL,
    remote_modified TEXT,
    done         TEXT NOT NULL       -- JSON list of [start, end) byte ranges already written
);
CREATE TABLE IF NOT EXISTS upload_session (
    local_path   TEXT PRIMARY KEY,
    session_uri  TEXT NOT NULL,
    file_id      TEXT,               -- set when the session adds a revision to an existing file
    parent_id    TEXT,
    name         TEXT,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    md5          TEXT NOT NULL,
    created_at   REAL NOT NULL
);
"""


def state_dir() -> Path:
    env = os.environ.get("DRIVESYNC_STATE_DIR")
    if env:
        return Path(env)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "drivesync"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "drivesync"
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "drivesync"


@dataclass(frozen=True)
class SyncedRecord:
    local_path: str
    file_id: str
    md5: str | None
    size: int
    mtime_ns: int
    remote_modified: str | None
    direction: str


@dataclass(frozen=True)
class UploadSession:
    local_path: str
    session_uri: str
    file_id: str | None
    parent_id: str | None
    name: str | None
    size: int
    mtime_ns: int
    md5: str
    created_at: float


def _normalize(ranges) -> list[list[int]]:
    merged: list[list[int]] = []
    for start, end in sorted((int(a), int(b)) for a, b in ranges if b > a):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


class Journal:
    """Thread-safe access to the journal database (one connection, one lock: writes are tiny)."""

    def __init__(self, path: str | os.PathLike | None = None):
        if path is None:
            directory = state_dir()
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = directory / "journal.db"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        os.chmod(self.path, 0o600)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _exec(self, sql: str, args=()):
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- synced files ---------------------------------------------------------------------------

    def synced(self, local_path: str) -> SyncedRecord | None:
        rows = self._exec("SELECT local_path, file_id, md5, size, mtime_ns, remote_modified, direction "
                          "FROM synced WHERE local_path = ?", (local_path,))
        return SyncedRecord(*rows[0]) if rows else None

    def synced_under(self, prefix: str) -> dict[str, SyncedRecord]:
        prefix = prefix.rstrip(os.sep) + os.sep
        rows = self._exec("SELECT local_path, file_id, md5, size, mtime_ns, remote_modified, direction "
                          "FROM synced WHERE substr(local_path, 1, ?) = ?", (len(prefix), prefix))
        return {r[0]: SyncedRecord(*r) for r in rows}

    def record_synced(self, local_path: str, *, file_id: str, md5: str | None, size: int, mtime_ns: int,
                      remote_modified: str | None, direction: str) -> None:
        self._exec("INSERT OR REPLACE INTO synced VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (local_path, file_id, md5, size, mtime_ns, remote_modified, direction, time.time()))

    def forget_synced(self, local_path: str) -> None:
        self._exec("DELETE FROM synced WHERE local_path = ?", (local_path,))

    # -- partial downloads ------------------------------------------------------------------------

    def partial(self, part_path: str) -> tuple[str, str | None, int, str | None, list[list[int]]] | None:
        rows = self._exec("SELECT file_id, md5, size, remote_modified, done FROM partial_download WHERE part_path = ?",
                          (part_path,))
        if not rows:
            return None
        file_id, md5, size, modified, done = rows[0]
        return file_id, md5, size, modified, json.loads(done)

    def start_partial(self, part_path: str, *, file_id: str, md5: str | None, size: int,
                      remote_modified: str | None) -> None:
        self._exec("INSERT OR REPLACE INTO partial_download VALUES (?, ?, ?, ?, ?, '[]')",
                   (part_path, file_id, md5, size, remote_modified))

    def add_done_range(self, part_path: str, start: int, end: int) -> None:
        with self._lock:
            rows = self._db.execute("SELECT done FROM partial_download WHERE part_path = ?", (part_path,)).fetchall()
            if not rows:
                return
            done = _normalize(json.loads(rows[0][0]) + [[start, end]])
            self._db.execute("UPDATE partial_download SET done = ? WHERE part_path = ?", (json.dumps(done), part_path))

    def forget_partial(self, part_path: str) -> None:
        self._exec("DELETE FROM partial_download WHERE part_path = ?", (part_path,))

    # -- upload sessions --------------------------------------------------------------------------

    def upload_session(self, local_path: str) -> UploadSession | None:
        rows = self._exec("SELECT local_path, session_uri, file_id, parent_id, name, size, mtime_ns, md5, created_at "
                          "FROM upload_session WHERE local_path = ?", (local_path,))
        return UploadSession(*rows[0]) if rows else None

    def save_upload_session(self, s: UploadSession) -> None:
        self._exec("INSERT OR REPLACE INTO upload_session VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (s.local_path, s.session_uri, s.file_id, s.parent_id, s.name, s.size, s.mtime_ns, s.md5,
                    s.created_at))

    def forget_upload_session(self, local_path: str) -> None:
        self._exec("DELETE FROM upload_session WHERE local_path = ?", (local_path,))
