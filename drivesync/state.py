"""The local journal (SQLite): what was synced, partial downloads, open upload sessions.

It owns the journal's schema and its file (mode 0600, WAL so a watcher and a pull can share it).
It stores no tokens; upload session URIs are kept because resuming needs them, and the file is
private to the user. It never talks to Drive and never touches the synced files themselves.

Where it lives: ``$DRIVESYNC_STATE_DIR`` or the platform's user state dir (``~/.local/state/drivesync``).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import JournalDamaged, JournalError, JournalUnwritable, UsageError

log = logging.getLogger("drivesync.journal")

#: Below this much free space in the state dir a run refuses to start: the journal's write-ahead log grows
#: to about 4 MiB (SQLite checkpoints every 1000 pages) before it is reused.
MIN_FREE_BYTES = 4 * 1024 * 1024
#: PRAGMA synchronous for the journal's commits: NORMAL (default) or FULL, from $DRIVESYNC_JOURNAL_SYNC.
#: NORMAL in WAL mode: the journal stays consistent after a power cut and is on disk at each checkpoint and at
#: close; a power cut can only lose its newest rows, which costs a re-hash or a re-download, never a wrong file
#: (a pulled file is on disk before its row is written, and nothing is trusted unless size and mtime match).
#: FULL syncs every commit: measured +12% (10,000 small files) to +49% (2 x 1 GiB, a commit per MiB) of a
#: pull's wall time spent in journal writes (benchmarks/fsync_cost.py), so it is there on request only.
SYNC_MODES = ("NORMAL", "FULL")
#: Inside ``Journal.batched()`` writes share a transaction, committed after this many writes or this many
#: seconds since its first write (checked at each write), and when the batch ends: one commit per a few
#: hundred files of a pull instead of two per file. A crash loses at most that window; every file it held
#: is then checked by md5 on the next run, as a file missing from the journal always is.
BATCH_WRITES = 256
BATCH_SECONDS = 0.5
#: SQLite's primary result codes (``exc.sqlite_errorcode & 0xff``) that mean the file is not a sound journal.
_DAMAGED = {11, 26}   # SQLITE_CORRUPT, SQLITE_NOTADB

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
CREATE TABLE IF NOT EXISTS meta (
    key          TEXT PRIMARY KEY,   -- 'probe': written at open, proves the journal can be written
    value        TEXT
);
"""


def state_dir() -> Path:
    """``$DRIVESYNC_STATE_DIR``, else ``$XDG_STATE_HOME/drivesync``, else the platform's place (config.user_dir)."""
    from .config import user_dir

    return user_dir("state")


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


class _Damaged(Exception):
    """The journal file cannot be opened or read as a journal (garbage, truncated, a folder in its place)."""


def _code(exc: sqlite3.Error) -> int:
    return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


class Journal:
    """Thread-safe access to the journal database (one connection, one lock: writes are tiny).

    A journal that cannot be opened or read is moved aside (``journal.db.corrupt-<time>``, with its
    -wal and -shm) and a new one started, with one warning (``healed`` keeps its text): the files it
    vouched for are then hashed again rather than trusted. A journal that cannot be written raises
    JournalUnwritable, at open when possible (a write probe and a free-space check), else at the first
    failing write; a damaged page found later raises JournalDamaged (the next open heals it). Both stop
    the run with one line (StopsTheRun). Commits sync per SYNC_MODES (NORMAL unless $DRIVESYNC_JOURNAL_SYNC=FULL).
    ``write_seconds`` sums the time spent in writes (commits included), for measuring their cost.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        if path is None:
            directory = state_dir()
            try:
                directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise JournalUnwritable(f"cannot create the state folder {directory}: {exc.strerror or exc} "
                                        "(set DRIVESYNC_STATE_DIR to a writable folder)") from None
            path = directory / "journal.db"
        self.path = Path(path)
        self.synchronous = (os.environ.get("DRIVESYNC_JOURNAL_SYNC") or "NORMAL").strip().upper()
        if self.synchronous not in SYNC_MODES:
            raise UsageError(f"DRIVESYNC_JOURNAL_SYNC must be NORMAL or FULL, not {self.synchronous!r}")
        self.healed: str | None = None
        self.write_seconds = 0.0
        self.writes = 0
        #: The first write that failed; ``check()`` raises it. A failed write that only recorded what already
        #: happened (``_note``) does not raise at once: a file verified on disk or on Drive stays a success.
        self.failure: JournalError | None = None
        self._failure_told = False
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        #: batched(): how many are open, and the open transaction's writes and start time.
        self._batching = 0
        self._pending = 0
        self._pending_since = 0.0
        self._flusher: threading.Thread | None = None
        self._flusher_stop = threading.Event()
        #: Whether partial_download may hold a row: read at open, set by start_partial and by a partial()
        #: that finds one (written by another process since). While it is False, forget_partial has nothing
        #: to delete (a pull of small files: one DELETE per file spared).
        self._partials = True
        try:
            self._open()
        except _Damaged as damaged:
            aside = self._move_aside()
            self.healed = (f"the journal {self.path} could not be read ({damaged}); moved it to {aside.name} "
                           "and started a new one: files already on disk are checked by md5 this time")
            log.warning("%s", self.healed)
            try:
                self._open()
            except _Damaged as again:
                raise JournalUnwritable(f"cannot start a new journal at {self.path}: {again}") from None
        self._probe()

    def _open(self) -> None:
        if self.path.is_dir():
            raise _Damaged("a folder is in its place")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            if self.path.stat().st_mode & 0o077:
                os.chmod(self.path, 0o600)
        except OSError as exc:
            raise self._unwritable(exc.strerror or str(exc)) from None
        db = None
        try:
            db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.executescript(SCHEMA)
            check = db.execute("PRAGMA quick_check(1)").fetchone()
            if not check or check[0] != "ok":
                raise _Damaged(f"integrity check: {check[0] if check else 'no answer'}")
            partials = bool(db.execute("SELECT EXISTS (SELECT 1 FROM partial_download)").fetchone()[0])
        except (sqlite3.Error, _Damaged) as exc:
            if db is not None:
                db.close()
            if isinstance(exc, _Damaged):
                raise
            if _code(exc) in _DAMAGED:
                raise _Damaged(str(exc)) from None
            raise self._unwritable(str(exc)) from None
        self._db = db
        self._partials = partials

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while os.path.lexists(aside):
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        try:
            os.rename(self.path, aside)
            for suffix in ("-wal", "-shm"):  # a write-ahead log belongs to the file it was written for
                if os.path.lexists(str(self.path) + suffix):
                    os.rename(str(self.path) + suffix, str(aside) + suffix)
        except OSError as exc:
            raise self._unwritable(f"cannot move the damaged journal aside: {exc.strerror or exc}") from None
        return aside

    def _probe(self) -> None:
        """Fail now, before anything is transferred, when the journal cannot be written."""
        try:
            self._exec("INSERT OR REPLACE INTO meta VALUES ('probe', ?)", (str(time.time()),))
        except BaseException:
            self.close()
            raise
        try:
            st = os.statvfs(self.path.parent)
        except (OSError, AttributeError):
            return
        free = st.f_bavail * st.f_frsize
        if free < MIN_FREE_BYTES:
            self.close()
            raise self._unwritable(f"only {free // 1024} KiB free in {self.path.parent}, it needs "
                                   f"{MIN_FREE_BYTES // (1024 * 1024)} MiB")

    def _unwritable(self, why: str) -> JournalUnwritable:
        return JournalUnwritable(f"the journal {self.path} cannot be written ({why}); free some space there, "
                                 "or set DRIVESYNC_STATE_DIR to a writable folder")

    def _failed(self, exc: sqlite3.Error):
        if _code(exc) in _DAMAGED:
            return JournalDamaged(f"the journal {self.path} is damaged ({exc}); run again: the next run "
                                  "moves it aside and starts a new one")
        return self._unwritable(str(exc))

    def check(self) -> None:
        """Raise the journal's failure, if a write failed: called before each file's transfer starts."""
        if self.failure is not None:
            self._failure_told = True
            raise self.failure

    def _note(self, sql: str, args=()) -> None:
        """A write recording what already happened (a file verified, a session finished): when it fails the
        success stands, the failure is kept for ``check()`` (the run stops before its next file) and, if no one
        raised it by then, ``close()`` says it in one warning."""
        first = self.failure is None
        try:
            self._exec(sql, args)
        except JournalError:
            if first:
                self._failure_told = False   # swallowed: check() or close() says it

    def close(self) -> None:
        with self._lock:
            self._batching = 0
            self._flusher_stop.set()
            self._commit_quietly()
        if self.failure is not None and not self._failure_told:
            self._failure_told = True
            log.warning("%s: this run's files are not recorded in it, the next run checks them by md5", self.failure)
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextlib.contextmanager
    def batched(self):
        """Within this block (re-entrant, any thread) writes are grouped into transactions of up to
        BATCH_WRITES writes or BATCH_SECONDS; the last one is committed when the block ends. Reads through
        this journal see the uncommitted writes; other processes see them at the next commit. A failed
        commit is a journal failure like a failed write: ``check()`` raises it before the next file."""
        with self._lock:
            self._batching += 1
            if self._batching == 1:
                # A batch idle for BATCH_SECONDS is committed from here, so its write lock never keeps
                # another process's writes (a second pull on this journal) waiting for long.
                self._flusher_stop = threading.Event()
                self._flusher = threading.Thread(target=self._flush_idle, args=(self._flusher_stop,),
                                                 name="drivesync-journal-flush", daemon=True)
                self._flusher.start()
        try:
            yield self
        finally:
            flusher = None
            with self._lock:
                self._batching = max(0, self._batching - 1)   # close() inside the block already ended it
                if self._batching == 0:
                    self._commit_quietly()
                    flusher, self._flusher = self._flusher, None
                    self._flusher_stop.set()
            if flusher is not None:
                flusher.join()

    def _flush_idle(self, stop: threading.Event) -> None:
        while not stop.wait(BATCH_SECONDS):
            with self._lock:
                if self._pending and time.perf_counter() - self._pending_since >= BATCH_SECONDS:
                    self._commit_quietly()

    def _commit(self) -> None:
        """COMMIT the open batch (the lock held); SQLite's errors become the journal's failure."""
        self._pending = 0
        if self._db is None or not self._db.in_transaction:
            return
        started = time.perf_counter()
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            failure = self._failed(exc)
            if self.failure is None:
                self.failure = failure
            raise failure from None
        finally:
            self.write_seconds += time.perf_counter() - started

    def _commit_quietly(self) -> None:
        """Commit at the end of a batch or at close: a failure is kept for check() and close()'s warning."""
        first = self.failure is None
        try:
            self._commit()
        except JournalError:
            if first:
                self._failure_told = False

    def _rollback(self) -> None:
        try:
            if self._db is not None and self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self._pending = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _exec(self, sql: str, args=()):
        with self._lock:
            return self._run(sql, args)

    def _run(self, sql: str, args=()):
        """One statement (its own transaction, or the open batch's), the lock held; SQLite's errors become a
        JournalError."""
        write = not sql.startswith("SELECT")
        started = time.perf_counter() if write else 0.0
        try:
            if write and self._batching:
                if not self._db.in_transaction:
                    self._db.execute("BEGIN")
                    self._pending, self._pending_since = 0, started
                rows = self._db.execute(sql, args).fetchall()
                self._pending += 1
                if self._pending >= BATCH_WRITES or started - self._pending_since >= BATCH_SECONDS:
                    self._commit()
                return rows
            return self._db.execute(sql, args).fetchall()
        except JournalError:
            self._failure_told = True        # a failed commit of the batch, raised to this write's caller
            raise
        except sqlite3.Error as exc:
            if isinstance(exc, sqlite3.ProgrammingError):
                raise
            if self._batching:
                self._rollback()   # the batch is lost with it: those files are checked by md5 next time
            failure = self._failed(exc)
            if self.failure is None:
                self.failure = failure
            self._failure_told = True        # raised: the caller stops the run with it
            raise failure from None
        finally:
            if write:
                self.write_seconds += time.perf_counter() - started
                self.writes += 1

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
        self._note("INSERT OR REPLACE INTO synced VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (local_path, file_id, md5, size, mtime_ns, remote_modified, direction, time.time()))

    def forget_synced(self, local_path: str) -> None:
        self._note("DELETE FROM synced WHERE local_path = ?", (local_path,))

    # -- partial downloads ------------------------------------------------------------------------

    def partial(self, part_path: str) -> tuple[str, str | None, int, str | None, list[list[int]]] | None:
        rows = self._exec("SELECT file_id, md5, size, remote_modified, done FROM partial_download WHERE part_path = ?",
                          (part_path,))
        if not rows:
            return None
        self._partials = True       # another process's (written after this journal opened): forget it too
        file_id, md5, size, modified, done = rows[0]
        return file_id, md5, size, modified, json.loads(done)

    def start_partial(self, part_path: str, *, file_id: str, md5: str | None, size: int,
                      remote_modified: str | None) -> None:
        self._partials = True
        self._exec("INSERT OR REPLACE INTO partial_download VALUES (?, ?, ?, ?, ?, '[]')",
                   (part_path, file_id, md5, size, remote_modified))

    def add_done_range(self, part_path: str, start: int, end: int) -> None:
        with self._lock:
            rows = self._run("SELECT done FROM partial_download WHERE part_path = ?", (part_path,))
            if not rows:
                return
            done = _normalize(json.loads(rows[0][0]) + [[start, end]])
            self._run("UPDATE partial_download SET done = ? WHERE part_path = ?", (json.dumps(done), part_path))

    def forget_partial(self, part_path: str) -> None:
        if self._partials:
            self._note("DELETE FROM partial_download WHERE part_path = ?", (part_path,))

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
        self._note("DELETE FROM upload_session WHERE local_path = ?", (local_path,))
