"""``push --watch``: complete checkpoints -> upload queue -> Drive, on the watcher's own threads.

Three modules, imported one way (watcher -> observer -> completion; pusher -> completion):

* completion.py: the rules (pure): temporary names, ``CompletionTracker`` (observations -> "this file /
  checkpoint folder is complete"), settle and marker rules, which checkpoints ``--keep-last`` drops.
* observer.py: watchdog's InotifyObserver, or polling where inotify is missing, the folder is on a
  network file system, or ``poll=True``; OS events -> observations handed to a callback.
* here, ``Watcher``: the observer thread feeds the tracker on an asyncio loop in a background thread;
  complete items go to an upload queue run by pusher.Pusher. A newer complete version of an item
  supersedes (cancels) its upload in flight; upload.py guarantees a cancelled or overtaken upload never
  becomes a Drive revision. Failed uploads are tried again (``max_attempts``), ``--keep-last`` trashes
  old checkpoints, ``--delete`` mirrors removals, and the status file says where things stand.
  ``flush()`` blocks until everything complete so far is on Drive; ``watch()`` is the context manager.

What it must never do: upload a temporary name or a file still being written, block the training
thread (all work happens in the watcher's own threads), or retry requests itself (transport.py does).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field

from .completion import DEFAULT_SETTLE_S, CompletionTracker, Ready
from .restore import to_prune
from .observer import FileSystemObserver
from .transfer import run_loop

log = logging.getLogger("drivesync.watch")

#: The queue item whose upload the running task is doing (so pusher.push_file's bytes count for it).
_current_item: contextvars.ContextVar = contextvars.ContextVar("drivesync_watch_item", default=None)


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
    # What the item was on disk when it became complete (see Watcher._signature).
    signature: tuple | None = None
    # Progress of the attempt running now (what `drivesync status` and the bars show).
    total: int = 0
    sent: int = 0
    files_sent: int = 0                # files uploaded (not skipped as already on Drive) by this attempt
    started: float | None = None       # monotonic, when this attempt started moving bytes
    samples: collections.deque = field(default_factory=lambda: collections.deque(maxlen=64))

    def rate(self, now: float, window: float = 10.0) -> float | None:
        """Bytes per second over the last ``window`` seconds (since the start while younger than that)."""
        if self.started is None:
            return None
        while len(self.samples) > 1 and now - self.samples[0][0] > window:
            self.samples.popleft()
        t0, b0 = self.samples[0] if self.samples else (self.started, 0)
        if now - t0 < 0.5:
            t0, b0 = self.started, 0
        elapsed = now - t0
        return (self.sent - b0) / elapsed if elapsed > 0.2 else None


class Watcher:
    """Watches ``local`` and keeps ``remote`` up to date. ``start()``, ``flush()``, ``stop()``."""

    def __init__(self, local: str, remote: str | None = None, *, options: WatchOptions | None = None,
                 settings=None, credentials: str | None = None, impersonate: str | None = None,
                 api_url: str | None = None, transfers: int | None = None, chunk_size: int | None = None,
                 status_path: str | None = None, journal=None, subscribers=()):
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
        self._on_drive: dict[str, tuple] = {}  # key -> signature of the version last made durable
        self.started_at = time.time()
        self.flushed_token = ""
        self.pruned: set[str] = set()
        #: transfer.Event callbacks, called on the watcher's thread: 'start' (an item's upload, total bytes),
        #: 'bytes', 'done' / 'skip' (already on Drive) / 'fail' (one attempt; it may be tried again).
        self.subscribers = list(subscribers)
        self.token = ""                       # written into the status file: proves which process wrote it

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
            run_loop(self._main())
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
                self.pusher.push_file = self._counting(self.pusher.push_file)
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
                self.tracker.settle_later(key, item_rel, kind, now, self.options.settle - age)
            else:
                self._enqueue(Ready(key, item_rel, kind, now, "initial push"))

    def _start_observer(self) -> None:
        self._observer = FileSystemObserver(self.local, self._from_observer, poll=self.options.poll,
                                            poll_interval=self.options.poll_interval).start()
        self.observer_kind = self._observer.kind

    def _stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer = None

    # -- observations (observer thread) -> tracker (loop thread) -----------------------------------

    def _from_observer(self, kind: str, rel: str, is_dir: bool) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._observe, kind, rel, is_dir)

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
        item = _Item(ready, signature=self._signature(ready))
        before = self.items.get(key)
        if item.signature is not None and (
                self._on_drive.get(key) == item.signature
                or (before is not None and before.signature == item.signature and not before.superseded
                    and before.task is not None and not before.task.done())):
            # The same version reported complete again (watchdog can report a renamed folder twice): the
            # work queued, in flight or done is for exactly these bytes.
            log.debug("%s: unchanged since it was queued (%s)", ready.rel, ready.reason)
            return
        self._on_drive.pop(key.lstrip("-"), None)
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

    def _signature(self, ready: Ready) -> tuple | None:
        """(name, size, mtime, inode) of the file, or of every file of the folder, that ``ready`` stands
        for; None for a removal or when it cannot be read (then it is never taken for unchanged)."""
        if ready.kind == "delete":
            return None
        try:
            rels = ([ready.rel] if ready.kind == "file"
                    else [rel for rel, _ in self.pusher.local_files(ready.rel) if self.pusher.wanted(rel)])
            stats = [(rel, os.stat(self.pusher.local_path(rel))) for rel in rels]
        except OSError:
            return None
        return tuple((rel, st.st_size, st.st_mtime_ns, st.st_ino) for rel, st in stats)

    async def _run_item(self, item: _Item) -> None:
        from .upload import Superseded

        ready = item.ready
        if item.previous:
            await asyncio.gather(*item.previous, return_exceptions=True)
        while True:
            item.attempts += 1
            try:
                # A checkpoint folder takes one upload slot per file it sends (push_checkpoint), a file one.
                async with (self._uploads if ready.kind != "dir" else contextlib.nullcontext()):
                    if self.items.get(ready.key) is not item or item.superseded:
                        self._forget(item)
                        return
                    item.running = True
                    self._begin(item)
                    current = _current_item.set(item)
                    try:
                        nbytes = await self._upload(ready, lambda: item.superseded)
                    except BaseException as exc:
                        self._emit("fail", ready.rel, total=item.total, message=str(exc) or type(exc).__name__)
                        raise
                    finally:
                        _current_item.reset(current)
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
                    self.tracker.settle_later(ready.key, ready.rel, ready.kind, time.monotonic())
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
                if item.signature is not None and self._signature(ready) == item.signature:
                    self._on_drive[ready.key] = item.signature
                self.done += 1
                self.done_bytes += nbytes
                self._durable(item, nbytes, lag)
            else:
                self._emit("done", self._shown(ready), total=item.total)
            self._forget(item)
            return

    # -- progress: per-item bytes, events for bars, the durable line --------------------------------

    def _emit(self, kind: str, rel: str, nbytes: int = 0, total: int | None = None, message: str = "") -> None:
        if not self.subscribers:
            return
        from .transfer import Event

        event = Event(kind, rel, nbytes=nbytes, total=total, message=message)
        for subscriber in self.subscribers:
            try:
                subscriber(event)
            except Exception as exc:  # a display problem never stops uploads
                log.debug("progress subscriber failed: %s", exc)

    def _begin(self, item: _Item) -> None:
        """An attempt starts: how many bytes it has to move (a folder: its files), progress from zero."""
        ready = item.ready
        total = 0
        with contextlib.suppress(OSError):
            if ready.kind == "file":
                total = os.path.getsize(self.pusher.local_path(ready.rel))
            elif ready.kind == "dir":
                total = sum(size for rel, size in self.pusher.local_files(ready.rel) if self.pusher.wanted(rel))
        item.total, item.sent, item.files_sent = total, 0, 0
        item.started = time.monotonic()
        item.samples.clear()
        if ready.kind != "delete":
            self._emit("start", self._shown(ready), total=total)

    @staticmethod
    def _shown(ready: Ready) -> str:
        return ready.rel + ("/" if ready.kind == "dir" else "")

    def _counting(self, push_file):
        """pusher.push_file, counting the bytes it moves (and the files it skips) for the item running it."""
        watcher = self

        async def counted(rel: str, **kw):
            item = _current_item.get()
            if item is None:
                return await push_file(rel, **kw)
            file_sent = 0
            given = kw.get("progress")

            def progress(nbytes: int) -> None:
                nonlocal file_sent
                file_sent += nbytes
                watcher._count(item, nbytes)
                if given is not None:
                    given(nbytes)

            kw["progress"] = progress
            outcome, remote = await push_file(rel, **kw)
            # Top up to the file's size: a skipped file (already on Drive) or a resumed one counts whole.
            rest = max(0, (remote.size or 0) - file_sent) if remote is not None else 0
            if rest:
                watcher._count(item, rest)
            if outcome == "done":
                item.files_sent += 1
            return outcome, remote

        return counted

    def _count(self, item: _Item, nbytes: int) -> None:
        item.sent += nbytes
        item.samples.append((time.monotonic(), item.sent))
        self._emit("bytes", self._shown(item.ready), nbytes=nbytes)

    def _durable(self, item: _Item, nbytes: int, lag: float) -> None:
        ready = item.ready
        took = time.monotonic() - (item.started or ready.since)
        name = self._shown(ready)
        if item.files_sent == 0 and nbytes == 0 and ready.kind != "delete":
            self._emit("skip", name, total=item.total)
            log.debug("already on Drive: %s", name)
            return
        self._emit("done", name, total=item.total)
        if ready.kind == "delete":
            return
        from .progress import human_bytes

        log.info("durable: %s %s in %.1f s, %.1f s after it was complete", name,
                 human_bytes(max(item.total, nbytes)), took, lag)

    def _progress_of(self, item: _Item, now: float) -> dict:
        rate = item.rate(now)
        left = max(0, item.total - item.sent)
        return {"bytes": item.sent, "total": item.total, "rate_bps": round(rate, 1) if rate is not None else None,
                "eta_s": round(left / rate, 1) if rate else None,
                "elapsed_s": round(now - item.started, 1) if item.started is not None else None}

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
            sent = 0
            if pusher.wanted(ready.rel):
                outcome, remote = await pusher.push_file(ready.rel, abandon=abandon)
                sent = (remote.size or 0) if outcome == "done" else 0
        else:
            if not os.path.isdir(pusher.local_path(ready.rel)):
                return None
            # All or nothing on Drive, its files in parallel: see Pusher.push_checkpoint.
            files = [rel for rel, _ in pusher.local_files(ready.rel) if pusher.wanted(rel)]
            sent = await pusher.push_checkpoint(ready.rel, files, abandon=abandon, slot=self._uploads)
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
        progress = {}
        for key, item in list(self.items.items()):
            (in_flight if item.running else queued).append(item.ready.rel)
            behind = max(behind, now - item.ready.since)
            if item.running and item.ready.kind != "delete":
                progress[item.ready.rel] = self._progress_of(item, now)
        lags = sorted(d["lag_s"] for d in self.durable)
        return {
            "local": self.local, "remote": self.remote, "pid": os.getpid(), "observer": self.observer_kind,
            "queued": sorted(queued), "in_flight": sorted(in_flight),
            "settling": self.tracker.pending if self.tracker else [],
            "done": self.done, "done_bytes": self.done_bytes, "failed": dict(self.failed),
            "behind_s": round(behind, 1),
            "lag_median_s": lags[len(lags) // 2] if lags else None, "lag_max_s": lags[-1] if lags else None,
            "recent": self.durable[-10:], "flushed_token": self.flushed_token, "updated_at": time.time(),
            "progress": progress, "token": self.token,
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
def watch(local: str, remote: str | None = None, *, progress: bool | None = None, **options):
    """``with drivesync.watch("checkpoints/", "run42/checkpoints"): train()`` uploads checkpoints as they
    complete and flushes on exit. Options: settle, complete_marker, exclude, delete, keep_last, poll,
    plus the connection options of ``push`` (credentials, api_url, settings, transfers, chunk_size).
    ``progress`` (None: in a notebook or on a terminal, like pull and push): a bar per upload in flight
    and the 'durable:' line of each checkpoint verified on Drive."""
    from . import progress as progress_mod

    watch_fields = {f for f in WatchOptions.__dataclass_fields__}
    wopts = WatchOptions(**{k: (tuple(v) if k == "exclude" else v) for k, v in options.items() if k in watch_fields})
    rest = {k: v for k, v in options.items() if k not in watch_fields}
    bars = handler = None
    logger = logging.getLogger("drivesync.watch")
    before = logger.level
    if progress_mod.wanted(progress):
        bars = progress_mod.WatchProgress(disable=False)
        rest["subscribers"] = list(rest.get("subscribers", ())) + [bars]
        handler = progress_mod.line_handler(write=bars.write)
        handler.setLevel(logging.INFO)
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        watcher = Watcher(local, remote, options=wopts, **rest)
        watcher.start()
        try:
            yield watcher
        finally:
            watcher.stop(flush=True)
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(before)
            bars.close()
