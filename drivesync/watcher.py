"""``push --watch``: file-system events -> "this checkpoint is complete" -> upload queue.

Two layers:

* The rules (pure, fake-clock tested): ``is_temporary`` names, and ``CompletionTracker``, which turns
  observations (created / modified / closed / moved / deleted, with a timestamp) into items that are
  complete. A file directly in the watched folder is complete when it is closed after writing
  (inotify IN_CLOSE_WRITE), renamed into place, or unchanged for ``settle`` seconds. A file inside a
  sub-folder belongs to that folder (a Hugging Face ``checkpoint-500/`` written file by file): the
  folder is complete when it is renamed into place (``tmp-checkpoint-500`` -> ``checkpoint-500``),
  when its ``complete_marker`` file is closed, or when nothing in it changed for ``settle`` seconds.
  Temporary names (``*.tmp``, ``tmp-*``, ``*.part``, editor swap files, ``--exclude``) never count.
* ``Watcher``: an observer thread (watchdog's InotifyObserver, or polling where inotify is missing or
  ``poll=True``) feeds the tracker on an asyncio loop in a background thread; complete items go to an
  upload queue run by push.Pusher. A newer complete version of an item supersedes (cancels) its upload
  in flight; upload.py guarantees a cancelled or overtaken upload never becomes a Drive revision.
  ``flush()`` blocks until everything complete so far is on Drive; ``watch()`` is the context manager.

What it must never do: upload a temporary name or a file still being written, block the training
thread (all work happens in the watcher's own threads), or retry requests itself (transport.py does).
"""
from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable

log = logging.getLogger("drivesync.watch")

#: Names that are never a finished file: writers' temporaries, partial downloads, editor swap files.
TEMPORARY_PATTERNS = (
    "*.tmp", "*.tmp.*", "*.temp", "tmp-*", "*.part", "*.partial", "*.crdownload", "*.drivesync-partial",
    "*.swp", "*.swo", "*.swx", ".*.sw?", "*~", ".#*", "#*#", "4913", ".~lock.*", ".nfs*",
)
_TEMPORARY_RE = re.compile("|".join(fnmatch.translate(p) for p in TEMPORARY_PATTERNS))

DEFAULT_SETTLE_S = 15.0


def is_temporary(name: str) -> bool:
    """Is this one path element a temporary name (never uploaded)?"""
    return bool(_TEMPORARY_RE.match(name.rstrip("/")))


# ------------------------------------------------------------------------------------------------
# Rules: pure, driven by observations and a clock passed in.
# ------------------------------------------------------------------------------------------------

CREATED, MODIFIED, CLOSED, MOVED_TO, MOVED_FROM, DELETED = "created", "modified", "closed", "moved_to", "moved_from", "deleted"


@dataclass(frozen=True)
class Ready:
    """An item that became complete: a file ('file'), a checkpoint folder ('dir'), or a removal ('delete')."""

    key: str            # 'last.ckpt' or 'checkpoint-500/' (folders end with '/')
    rel: str            # path relative to the watched folder, '/'-separated, without trailing '/'
    kind: str
    since: float        # when it became complete (clock of the caller)
    reason: str = ""


@dataclass
class _Pending:
    rel: str
    kind: str
    deadline: float
    first_seen: float


class CompletionTracker:
    """Observations in, complete items out. Not thread-safe: one owner (the watcher's loop)."""

    def __init__(self, *, settle: float = DEFAULT_SETTLE_S, complete_marker: str | None = None,
                 wanted=None, mirror_deletes: bool = False):
        self.settle = settle
        self.complete_marker = complete_marker
        self.marker_settle = min(settle, 2.0)
        self._wanted = wanted or (lambda rel: not any(is_temporary(p) for p in rel.split("/")))
        self.mirror_deletes = mirror_deletes
        self._pending: dict[str, _Pending] = {}
        self._ready: dict[str, Ready] = {}
        self._renamed: dict[str, float] = {}     # folder key -> when it was renamed into place

    # -- what belongs to what ----------------------------------------------------------------------

    @staticmethod
    def item_of(rel: str, is_dir: bool = False) -> tuple[str, str, str]:
        """(key, rel, kind) of the item a path belongs to: its own file at the top level, else its folder."""
        rel = rel.strip("/")
        if is_dir:
            return rel + "/", rel, "dir"
        parent, _, _ = rel.rpartition("/")
        if parent:
            return parent + "/", parent, "dir"
        return rel, rel, "file"

    def wanted(self, rel: str, is_dir: bool = False) -> bool:
        rel = rel.strip("/")
        return bool(rel) and self._wanted(rel + ("/" if is_dir else ""))

    # -- observations ------------------------------------------------------------------------------

    def observe(self, kind: str, rel: str, now: float, *, is_dir: bool = False) -> None:
        rel = rel.strip("/")
        if not rel or not self.wanted(rel, is_dir):
            return
        if kind in (DELETED, MOVED_FROM):
            self._gone(rel, now, is_dir)
            return
        if is_dir:
            if kind == MOVED_TO:
                # A whole folder renamed into place: complete now (and any folder containing it changed).
                self._complete(rel + "/", rel, "dir", now, "renamed into place")
                self._renamed[rel + "/"] = now
                self._touch_parent(rel, now)
            elif kind == CREATED and "/" in rel:
                self._touch_parent(rel, now)
            return
        key, item_rel, item_kind = self.item_of(rel)
        name = rel.rpartition("/")[2]
        if item_kind == "file":
            if kind in (CLOSED, MOVED_TO):
                self._complete(key, item_rel, "file", now, "closed" if kind == CLOSED else "renamed into place")
            else:
                self._settle(key, item_rel, "file", now)
            return
        # A file inside a checkpoint folder.
        renamed_at = self._renamed.get(key)
        if renamed_at is not None and kind == MOVED_TO and now - renamed_at <= 2.0:
            return   # the per-file echoes of the folder's own rename
        if self.complete_marker and name == self.complete_marker:
            if kind in (CLOSED, MOVED_TO):
                self._complete(key, item_rel, "dir", now, f"{name} appeared")
                return
            self._settle(key, item_rel, "dir", now, self.marker_settle)
            return
        if key in self._ready and self._ready[key].kind == "dir":
            # More writes after it was declared complete: wait for them to settle too.
            del self._ready[key]
        self._settle(key, item_rel, "dir", now)

    def _touch_parent(self, rel: str, now: float) -> None:
        parent = rel.rpartition("/")[0]
        if parent:
            key, item_rel, _ = self.item_of(parent, is_dir=True)
            self._settle(key, item_rel, "dir", now)

    def _settle(self, key: str, rel: str, kind: str, now: float, wait: float | None = None) -> None:
        wait = self.settle if wait is None else wait
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = _Pending(rel, kind, now + wait, now)
        else:
            pending.deadline = now + wait

    def _complete(self, key: str, rel: str, kind: str, now: float, reason: str) -> None:
        self._pending.pop(key, None)
        self._ready[key] = Ready(key, rel, kind, now, reason)

    def _gone(self, rel: str, now: float, is_dir: bool) -> None:
        key, item_rel, item_kind = self.item_of(rel, is_dir)
        if is_dir or item_kind == "file":
            self._pending.pop(key, None)
            self._ready.pop(key, None)
            for k in [k for k in self._pending if k.startswith(key)] if is_dir else []:
                del self._pending[k]
            if self.mirror_deletes:
                self._ready["-" + key] = Ready("-" + key, item_rel, "delete", now, "deleted locally")
            if "/" in item_rel and is_dir:
                self._touch_parent(item_rel, now)
            return
        # One file of a checkpoint folder removed: the folder changed.
        self._settle(key, item_rel, "dir", now)
        if self.mirror_deletes:
            self._ready["-" + rel] = Ready("-" + rel, rel, "delete", now, "deleted locally")

    # -- questions ---------------------------------------------------------------------------------

    def due(self, now: float) -> list[Ready]:
        """Items complete at ``now`` (each handed out once), oldest first."""
        for key, pending in list(self._pending.items()):
            if pending.deadline <= now:
                del self._pending[key]
                self._ready[key] = Ready(key, pending.rel, pending.kind, pending.deadline, "settled")
        out = sorted(self._ready.values(), key=lambda r: r.since)
        self._ready.clear()
        return out

    def next_deadline(self) -> float | None:
        if self._ready:
            return 0.0
        return min((p.deadline for p in self._pending.values()), default=None)

    def complete_all(self, now: float) -> None:
        """flush: whatever is settling is declared complete now (the caller says writing is over)."""
        for key, pending in list(self._pending.items()):
            del self._pending[key]
            self._ready[key] = Ready(key, pending.rel, pending.kind, now, "flush")

    @property
    def pending(self) -> list[str]:
        return sorted(self._pending)


#: File systems where inotify misses writes made elsewhere (or sees nothing at all): poll instead.
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse", "fuse.", "ceph", "glusterfs", "lustre",
              "gcsfuse", "afs", "davfs")


def network_filesystem(path: str, mounts_file: str = "/proc/mounts") -> str | None:
    """The type of the file system holding ``path`` if it is a network/FUSE one (e.g. a Drive mount)."""
    try:
        with open(mounts_file, encoding="utf-8") as fh:
            mounts = [line.split()[1:3] for line in fh if len(line.split()) >= 3]
    except OSError:
        return None
    path = os.path.realpath(path)
    best, best_type = "", None
    for mount_point, fs_type in mounts:
        mount_point = mount_point.replace("\\040", " ")
        if (path == mount_point or path.startswith(mount_point.rstrip("/") + "/")) and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    if best_type and any(best_type == t or (t.endswith(".") and best_type.startswith(t)) for t in NETWORK_FS):
        return best_type
    return None


_NUMBER_RE = re.compile(r"(\d+)")


def checkpoint_step(name: str) -> int | None:
    """The step a checkpoint's name carries: the last number in it ('checkpoint-500' -> 500,
    'epoch=3-step=1200.ckpt' -> 1200); None for names without numbers ('last.ckpt': never pruned)."""
    stem = name.rstrip("/")
    for suffix in (".ckpt", ".pt", ".pth", ".safetensors", ".bin"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    numbers = _NUMBER_RE.findall(stem)
    return int(numbers[-1]) if numbers else None


def to_prune(names: Iterable[str], keep_last: int) -> list[str]:
    """Which of these top-level names --keep-last N removes: all numbered checkpoints but the N highest."""
    numbered = sorted(((checkpoint_step(n), n) for n in names if checkpoint_step(n) is not None), reverse=True)
    return [n for _, n in numbered[keep_last:]]


# ------------------------------------------------------------------------------------------------
# The watcher: observer thread -> tracker -> upload queue, on its own asyncio loop.
# ------------------------------------------------------------------------------------------------


@dataclass
class WatchOptions:
    settle: float = DEFAULT_SETTLE_S
    complete_marker: str | None = None
    exclude: tuple[str, ...] = ()
    delete: bool = False
    keep_last: int | None = None
    poll: bool = False
    poll_interval: float = 1.0
    retry_delay: float = 10.0
    max_attempts: int = 5


@dataclass
class _Item:
    ready: Ready
    task: asyncio.Task | None = None
    attempts: int = 0
    running: bool = False
    superseded: bool = False
    previous: list = field(default_factory=list)


class Watcher:
    """Watches ``local`` and keeps ``remote`` up to date. ``start()``, ``flush()``, ``stop()``."""

    def __init__(self, local: str, remote: str | None = None, *, options: WatchOptions | None = None,
                 settings=None, credentials: str | None = None, impersonate: str | None = None,
                 api_url: str | None = None, transfers: int | None = None, chunk_size: int | None = None,
                 status_path: str | None = None, journal=None):
        from .pusher import _check_local, default_remote, make_settings

        self.local = _check_local(local)
        if not os.path.isdir(self.local):
            from .errors import NotAFolder

            raise NotAFolder(f"push --watch needs a folder, {local} is a file")
        self.remote = default_remote(self.local) if remote is None else remote
        self.options = options or WatchOptions()
        self.settings = make_settings(settings, api_url=api_url, transfers=transfers, chunk_size=chunk_size)
        self.credentials = credentials
        self.impersonate = impersonate
        self.status_path = status_path
        self._journal = journal
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._observer = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stop_requested: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self.tracker: CompletionTracker | None = None
        self.pusher = None
        self.observer_kind = ""
        # What `drivesync status` shows.
        self.items: dict[str, _Item] = {}
        self.done = 0
        self.done_bytes = 0
        self.failed: dict[str, str] = {}
        self.durable: list[dict] = []          # recent: {rel, since, durable_at, lag_s, bytes}
        self.started_at = time.time()
        self.flushed_token = ""
        self.pruned: set[str] = set()

    # -- lifecycle (called from the user's thread) -------------------------------------------------

    def start(self) -> "Watcher":
        self._thread = threading.Thread(target=self._thread_main, name="drivesync-watch", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error
        return self

    def flush(self, timeout: float | None = None) -> dict:
        """Block until everything complete so far (and whatever is still settling) is on Drive."""
        if self._loop is None:
            raise RuntimeError("watcher not started")
        future = asyncio.run_coroutine_threadsafe(self._flush(), self._loop)
        return future.result(timeout)

    def stop(self, *, flush: bool = True, timeout: float | None = None) -> dict | None:
        summary = None
        if self._loop is None or self._thread is None:
            return None
        try:
            if flush and self._thread.is_alive():
                summary = self.flush(timeout)
        finally:
            if self._thread.is_alive():
                self._loop.call_soon_threadsafe(self._stop_requested.set)
            self._thread.join(timeout)
        return summary

    def __enter__(self) -> "Watcher":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        # Flush even when training raised: what was saved is worth keeping.
        self.stop(flush=True)

    # -- the watcher thread ------------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start() or logged
            if not self._started.is_set():
                self._start_error = exc
                self._started.set()
            else:
                log.error("watcher stopped: %s", exc)

    async def _main(self) -> None:
        from .pusher import Pusher, resolve_root
        from .session import open_drive
        from .state import Journal

        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._wake = asyncio.Event()
        journal = self._journal or Journal()
        try:
            async with open_drive(self.settings, credentials=self.credentials, subject=self.impersonate) as drive:
                root_id = await resolve_root(drive, self.remote)
                self.pusher = Pusher(drive, journal, self.local, root_id, exclude=self.options.exclude,
                                     chunk_size=self.settings.upload_chunk_size)
                self.tracker = CompletionTracker(settle=self.options.settle,
                                                 complete_marker=self.options.complete_marker,
                                                 wanted=self.pusher.wanted,
                                                 mirror_deletes=self.options.delete)
                self._uploads = asyncio.Semaphore(self.settings.upload_transfers)
                self._start_observer()
                self._started.set()
                # First an ordinary push of what is already there (through the same queue).
                self._initial_scan()
                status_task = asyncio.ensure_future(self._status_loop())
                try:
                    await self._schedule()
                finally:
                    status_task.cancel()
                    for item in self.items.values():
                        if item.task:
                            item.task.cancel()
                    await asyncio.gather(*(i.task for i in self.items.values() if i.task), return_exceptions=True)
                    self._write_status(final=True)
        finally:
            self._stop_observer()
            if self._journal is None:
                journal.close()

    def _initial_scan(self) -> None:
        now, wall = time.monotonic(), time.time()
        files = self.pusher.local_files()
        if self.options.keep_last:
            self.pruned.update(to_prune({rel.split("/")[0] for rel, _ in files}, self.options.keep_last))
        newest: dict[str, float] = {}
        for rel, _size in files:
            key, item_rel, kind = CompletionTracker.item_of(rel)
            with contextlib.suppress(OSError):
                newest[key] = max(newest.get(key, 0.0), os.stat(self.pusher.local_path(rel)).st_mtime)
        for key, mtime in newest.items():
            item_rel, kind = (key[:-1], "dir") if key.endswith("/") else (key, "file")
            age = wall - mtime
            if age < self.options.settle:
                # Written moments ago: it may still be being written. Let it settle like any change.
                self.tracker._settle(key, item_rel, kind, now, self.options.settle - age)
            else:
                self._enqueue(Ready(key, item_rel, kind, now, "initial push"))

    def _start_observer(self) -> None:
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                watcher._on_fs_event(event)

        observer = None
        network = network_filesystem(self.local)
        if network:
            log.info("%s is on a %s file system: inotify does not see remote writes there; polling", self.local, network)
        if not self.options.poll and not network:
            try:
                from watchdog.observers.inotify import InotifyObserver

                observer = InotifyObserver()
                observer.schedule(Handler(), self.local, recursive=True)
                observer.start()
                self.observer_kind = "inotify"
            except Exception as exc:  # not Linux, or inotify limits/network file systems
                log.info("inotify unavailable (%s); polling instead", exc)
                observer = None
        if observer is None:
            from watchdog.observers.polling import PollingObserver

            observer = PollingObserver(timeout=self.options.poll_interval)
            observer.schedule(Handler(), self.local, recursive=True)
            observer.start()
            self.observer_kind = "polling"
        self._observer = observer

    def _stop_observer(self) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.stop()
                self._observer.join(5)
            self._observer = None

    # -- events (observer thread) -> tracker (loop thread) -----------------------------------------

    def _rel(self, path) -> str | None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not path:
            return None
        rel = os.path.relpath(path, self.local)
        if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
            return None
        return rel.replace(os.sep, "/")

    def _on_fs_event(self, event) -> None:
        kind = event.event_type
        observations = []
        src = self._rel(event.src_path)
        if kind == "moved":
            dest = self._rel(getattr(event, "dest_path", ""))
            if src:
                observations.append((MOVED_FROM, src))
            if dest:
                observations.append((MOVED_TO, dest))
        elif kind == "closed":
            observations.append((CLOSED, src))
        elif kind in ("created", "modified", "deleted"):
            if kind == "modified" and event.is_directory:
                return  # a folder's own mtime: its files report themselves
            observations.append(({"created": CREATED, "modified": MODIFIED, "deleted": DELETED}[kind], src))
        else:
            return      # opened, closed_no_write, attrib
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for obs_kind, rel in observations:
            if rel:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._observe, obs_kind, rel, event.is_directory)

    def _observe(self, kind: str, rel: str, is_dir: bool) -> None:
        self.tracker.observe(kind, rel, time.monotonic(), is_dir=is_dir)
        self._wake.set()

    # -- the queue ---------------------------------------------------------------------------------

    async def _schedule(self) -> None:
        while not self._stop_requested.is_set():
            for ready in self.tracker.due(time.monotonic()):
                self._enqueue(ready)
            deadline = self.tracker.next_deadline()
            timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                stop = asyncio.ensure_future(self._stop_requested.wait())
                wake = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({stop, wake}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for t in (stop, wake):
                    t.cancel()

    def _enqueue(self, ready: Ready) -> None:
        top = ready.rel.split("/")[0]
        if ready.kind != "delete" and top in self.pruned:
            return
        key = ready.key
        other = key[1:] if ready.kind == "delete" else "-" + key
        item = _Item(ready)
        for key_before in (key, other):
            before = self.items.get(key_before)
            if before is not None and before.task is not None and not before.task.done():
                # A newer version (or a removal) supersedes the work in flight: it stops at its next
                # request boundary, never mid-commit, and the new work waits for it.
                before.superseded = True
                item.previous.append(before.task)
                if key_before == key and before.running:
                    log.info("%s: a newer version is complete; superseding the upload in flight", ready.rel)
        self.items[key] = item
        item.task = asyncio.ensure_future(self._run_item(item))

    async def _run_item(self, item: _Item) -> None:
        from .upload import Superseded

        ready = item.ready
        if item.previous:
            await asyncio.gather(*item.previous, return_exceptions=True)
        while True:
            item.attempts += 1
            try:
                async with self._uploads:
                    if self.items.get(ready.key) is not item or item.superseded:
                        self._forget(item)
                        return
                    item.running = True
                    try:
                        nbytes = await self._upload(ready, lambda: item.superseded)
                    finally:
                        item.running = False
            except Superseded:
                self._forget(item)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                from .upload import FileChanged

                if isinstance(exc, FileChanged):
                    # It is being written again: the events of that write will bring it back.
                    log.info("%s", exc)
                    self.tracker._settle(ready.key, ready.rel, ready.kind, time.monotonic())
                    self._forget(item)
                    return
                if isinstance(exc, FileNotFoundError):
                    self._forget(item)   # deleted meanwhile (checkpoint rotation)
                    return
                if item.attempts >= self.options.max_attempts:
                    self.failed[ready.rel] = str(exc)
                    log.error("%s: giving up: %s", ready.rel, exc)
                    self._forget(item)
                    return
                log.warning("%s: %s; trying again in %.0fs", ready.rel, exc, self.options.retry_delay)
                await asyncio.sleep(self.options.retry_delay)
                continue
            self.failed.pop(ready.rel, None)
            if nbytes is not None:
                now_wall = time.time()
                lag = time.monotonic() - ready.since
                self.durable.append({"rel": ready.rel, "kind": ready.kind, "bytes": nbytes, "lag_s": round(lag, 3),
                                     "durable_at": now_wall, "reason": ready.reason})
                del self.durable[:-200]
                self.done += 1
                self.done_bytes += nbytes
            self._forget(item)
            return

    def _forget(self, item: _Item) -> None:
        if self.items.get(item.ready.key) is item:
            del self.items[item.ready.key]
        self._wake.set()

    async def _upload(self, ready: Ready, abandon) -> int | None:
        pusher = self.pusher
        if ready.kind == "delete":
            path = pusher.local_path(ready.rel)
            if os.path.exists(path):
                return None     # it came back (rename over it): nothing to remove
            await pusher.trash(ready.rel)
            return None
        if ready.kind == "file":
            files = [ready.rel]
        else:
            if not os.path.isdir(pusher.local_path(ready.rel)):
                return None
            files = [rel for rel, _ in pusher.local_files(ready.rel)]
        sent = 0
        for rel in files:
            if not pusher.wanted(rel):
                continue
            try:
                outcome, remote = await pusher.push_file(rel, abandon=abandon)
            except FileNotFoundError:
                if ready.kind == "file":
                    raise
                continue
            if outcome == "done":
                sent += remote.size or 0
        if self.options.keep_last and "/" not in ready.rel:
            await self._prune()
        return sent

    async def _prune(self) -> None:
        listing = await self.pusher.listing(self.pusher.remote_root_id, refresh=True)
        for name in to_prune(listing, self.options.keep_last):
            self.pruned.add(name)
            log.info("--keep-last %d: trashing %s on Drive", self.options.keep_last, name)
            await self.pusher.trash(name)

    async def _flush(self) -> dict:
        # Catch anything the events missed: files whose stat differs from what was last pushed.
        now = time.monotonic()
        self.tracker.complete_all(now)
        for ready in self.tracker.due(now):
            self._enqueue(ready)
        journal = self.pusher.journal
        seen_dirs = set()
        for rel, _size in self.pusher.local_files():
            key, item_rel, kind = CompletionTracker.item_of(rel)
            if key in self.items or key in seen_dirs:
                continue
            path = self.pusher.local_path(rel)
            record = journal.synced(path)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if record is None or record.size != st.st_size or record.mtime_ns != st.st_mtime_ns:
                if kind == "dir":
                    seen_dirs.add(key)
                self._enqueue(Ready(key, item_rel, kind, now, "flush"))
        while True:
            tasks = [i.task for i in self.items.values() if i.task and not i.task.done()]
            if not tasks:
                break
            await asyncio.gather(*tasks, return_exceptions=True)
        self._write_status()
        return self.status()

    # -- status ------------------------------------------------------------------------------------

    def status(self) -> dict:
        now = time.monotonic()
        in_flight, queued = [], []
        behind = 0.0
        for key, item in list(self.items.items()):
            (in_flight if item.running else queued).append(item.ready.rel)
            behind = max(behind, now - item.ready.since)
        lags = sorted(d["lag_s"] for d in self.durable)
        return {
            "local": self.local, "remote": self.remote, "pid": os.getpid(), "observer": self.observer_kind,
            "queued": sorted(queued), "in_flight": sorted(in_flight),
            "settling": self.tracker.pending if self.tracker else [],
            "done": self.done, "done_bytes": self.done_bytes, "failed": dict(self.failed),
            "behind_s": round(behind, 1),
            "lag_median_s": lags[len(lags) // 2] if lags else None, "lag_max_s": lags[-1] if lags else None,
            "recent": self.durable[-10:], "flushed_token": self.flushed_token, "updated_at": time.time(),
        }

    async def _status_loop(self) -> None:
        while True:
            self._write_status()
            await asyncio.sleep(1.0)

    def _write_status(self, final: bool = False) -> None:
        if not self.status_path:
            return
        data = self.status()
        data["running"] = not final
        tmp = self.status_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.status_path)


@contextlib.contextmanager
def watch(local: str, remote: str | None = None, **options):
    """``with drivesync.watch("checkpoints/", "run42/checkpoints"): train()`` uploads checkpoints as they
    complete and flushes on exit. Options: settle, complete_marker, exclude, delete, keep_last, poll,
    plus the connection options of ``push`` (credentials, api_url, settings, transfers, chunk_size)."""
    watch_fields = {f for f in WatchOptions.__dataclass_fields__}
    wopts = WatchOptions(**{k: (tuple(v) if k == "exclude" else v) for k, v in options.items() if k in watch_fields})
    rest = {k: v for k, v in options.items() if k not in watch_fields}
    watcher = Watcher(local, remote, options=wopts, **rest)
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop(flush=True)
