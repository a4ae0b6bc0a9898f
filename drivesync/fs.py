"""``drivesync://``: Drive as an fsspec file system, for engines that read and write through fsspec (pandas,
pyarrow, Dask, Hugging Face datasets, Lightning) without staging anything on local disk.

``fsspec.open("drivesync://deeplearning/data.csv")``, ``pd.read_parquet("drivesync://id:ID")``,
``fsspec.open("zip://a/b.png::drivesync://data.zip")``. Paths are REMOTE as the CLI reads it (locator.py): a
My Drive path, ``id:ID`` (and ``id:ID/below``), a Drive link, ``shared-with-me:NAME/...``,
``shared-drive:NAME/...``; ``shared-with-me:`` and ``shared-drive:`` list what can be named there. Storage
options: ``credentials=FILE`` (else the usual order of auth.py), ``api_url=``, ``impersonate=``, ``drive_id=``
(paths inside that shared drive), ``trash=`` (rm moves to Drive's trash, the default, or deletes for good),
``block_size=`` and ``cache_type=`` (how files opened 'rb' read ahead), and any ``Settings`` field (``tps=``,
``range_size=``...).

What it reuses, so there is one HTTP stack and one set of rules: ``session.open_drive`` (Transport, pacer,
retries, credentials), ``remote.resolve``/``resolve_folder``/``fetch_listing`` (REMOTE's anchors, batched
listings with their empty-answer rechecks, shortcuts), ``download.Downloader`` for ``get`` (parallel ranges,
verified, atomic rename, resumable through the journal), ``upload.upload_file`` for every write (multipart or
resumable, verified by md5), ``download.read_ranged`` for reads: ``cat_file`` and ``open('rb')`` are ranged
GETs (more than 8 MiB: parallel 4 MiB ranges) that resume a cut body and notice a file that changed on Drive
between two reads (its size in Content-Range); files opened 'rb' read ahead adaptively (AdaptiveReadAhead) and
the last 64 KiB of recently read revisions (Parquet footers) are kept for the next open.

Writes become visible only on commit: ``open('wb')`` and ``pipe_file`` spool to a local temporary file and
upload on close, or, inside ``with fs.transaction:``, when the transaction commits (nothing is sent if it
fails). A path that names an existing file gets a new revision of it (same id); missing parent folders are
created, one at a time per process (no duplicate folders from parallel writes).

Per process and per event loop state: the Transport (its aiohttp session), the journal and the locks are
made on first use inside the loop that uses them and made again after a fork (the file system object a
PyTorch DataLoader worker inherits keeps working) or after unpickling (Dask ships file systems to workers
as their storage options). The listing cache, the path -> item cache (the id cache) and the credentials
found are plain data and survive a fork; an unpickled file system starts with empty caches.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import errno
import logging
import mimetypes
import os
import shutil
import tempfile
import threading
import weakref

from fsspec import caching
from fsspec.asyn import AsyncFileSystem, get_loop, sync, sync_wrapper
from fsspec.spec import AbstractBufferedFile

from . import config, download, locator, remote
from .auth import Authorizer, find_credentials
from .drive import FOLDER, RemoteFile
from .errors import (DriveError, DrivesyncError, NoWriteAccess, NotAFolder, RemoteNotFound,
                     TransferInterrupted, UsageError)
from .session import open_drive
from .state import Journal
from .transfer import JobContext, Transfers
from .upload import UploadTarget, upload_file

log = logging.getLogger("drivesync")

MiB = 1024 * 1024
PROTOCOL = "drivesync"
#: A read that ends at a file's end and is at most this long is kept for the next open (a Parquet footer).
TAIL_BYTES = 64 * 1024
TAILS_KEPT = 128
#: A read longer than two of these goes as parallel ranged GETs of this size (cat_file, a sequential reader's
#: read-ahead once it has grown): one connection carries ~25 MB/s from Drive, and 4 MiB takes ~0.17 s of it
#: after ~0.1 s to the first byte.
PIECE = 4 * MiB
#: Listing roots that are not items: what others shared with this account, and its shared drives.
SHARED_WITH_ME_ROOT = locator.SHARED_WITH_ME_PREFIX
SHARED_DRIVE_ROOT = locator.SHARED_DRIVE_PREFIX
_SETTING_FIELDS = {f.name for f in dataclasses.fields(config.Settings)}


class DriveFsError(DrivesyncError):
    """What a Drive path cannot do as a file (a Google Docs file has no bytes; a file changed while it was read)."""


def _looks_special(text: str) -> bool:
    return text.startswith((locator.ID_PREFIX, SHARED_WITH_ME_ROOT, SHARED_DRIVE_ROOT)) or locator.is_url(text)


def _join(parent: str, name: str) -> str:
    """The path of ``name`` inside the folder at ``parent`` (a resource key stays at the end)."""
    base, sep, key = parent.partition("?resourcekey=")
    if base in ("", "/"):
        out = ("/" + name) if _looks_special(name) else name
    else:
        out = f"{base}/{name}"
    return out + (sep + key if sep else "")


def _split(path: str) -> tuple[str, str]:
    """(parent path, last name) of a path below an anchor."""
    base, sep, key = path.partition("?resourcekey=")
    parent, _, name = base.rpartition("/")
    if parent == "" and base.startswith("/"):
        parent = ""
    return parent + (sep + key if sep and parent else ""), name


@contextlib.contextmanager
def _as_os_errors(path: str):
    """Drivesync's one-line errors as the OS errors fsspec and the engines expect."""
    try:
        yield
    except RemoteNotFound as exc:
        raise FileNotFoundError(errno.ENOENT, str(exc), path) from None
    except NotAFolder as exc:
        raise NotADirectoryError(errno.ENOTDIR, str(exc), path) from None
    except NoWriteAccess as exc:
        raise PermissionError(errno.EACCES, str(exc), path) from None
    except DriveError as exc:
        if exc.status == 404:
            raise FileNotFoundError(errno.ENOENT, str(exc), path) from None
        if exc.status == 403 and exc.reason in ("insufficientFilePermissions", "insufficientPermissions",
                                                "cannotDownloadFile", "forbidden"):
            raise PermissionError(errno.EACCES, str(exc), path) from None
        raise


class AdaptiveReadAhead(caching.BaseCache):
    """fsspec's read-ahead, grown for sequential reads and kept small for random ones.

    A read the cache cannot answer fetches what was asked, and at least ``ahead`` bytes from there. ``ahead``
    starts at the block size; each miss that continues where the last fetch ended (a sequential reader: a CSV
    parser, a zip member, ``get`` through a file object) quadruples it, up to ``max_ahead`` (fetched as parallel
    ranges, see PIECE); a seek elsewhere (a
    Parquet column chunk, a footer) brings it back. So a column read column by column costs its own bytes,
    not a block more per chunk, while a file read front to back soon moves in ranges of ``max_ahead``."""

    name = "drivesync"

    def __init__(self, blocksize: int, fetcher, size: int, max_ahead: int = 32 * MiB) -> None:
        super().__init__(blocksize, fetcher, size)
        self.cache = b""
        self.start = self.end = 0
        self.ahead = blocksize
        self.max_ahead = max(blocksize, max_ahead)

    def _fetch(self, start, end):
        start = 0 if start is None else start
        end = self.size if end is None or end > self.size else end
        if start >= self.size or start >= end:
            return b""
        if self.start <= start and end <= self.end:
            self.hit_count += 1
            return self.cache[start - self.start:end - self.start]
        self.miss_count += 1
        part = b""
        if self.start <= start < self.end:
            part = self.cache[start - self.start:]
            start = self.end
        if start == self.end and self.end:
            self.ahead = min(self.max_ahead, self.ahead * 4)
        else:
            self.ahead = self.blocksize
        stop = min(self.size, max(end, start + self.ahead))
        self.total_requested_bytes += stop - start
        self.cache = self.fetcher(start, stop)
        self.start, self.end = start, start + len(self.cache)
        return part + self.cache[:end - start]


caching.register_cache(AdaptiveReadAhead, clobber=True)


class _Session:
    """What one process uses on one event loop: Drive (Transport, pacer, authorizer), the stream slots
    shared by every read and download, the journal, the folder-creation lock."""

    def __init__(self, loop, stack: contextlib.AsyncExitStack, drive, settings: config.Settings):
        self.loop = loop
        self.pid = os.getpid()
        self.stack = stack
        self.drive = drive
        self.transfers = Transfers(transfers=settings.transfers, max_streams=settings.max_streams)
        self.folders = asyncio.Lock()
        self._journal: Journal | None = None
        self._downloader: download.Downloader | None = None

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal()
        return self._journal

    @property
    def downloader(self) -> download.Downloader:
        if self._downloader is None:
            self._downloader = download.Downloader(self.drive, self.journal, self.drive.settings)
        return self._downloader

    async def close(self) -> None:
        try:
            await self.stack.aclose()
        finally:
            if self._journal is not None:
                self._journal.close()
                self._journal = None


def _close_session(session: _Session) -> None:
    """Close a session from any thread (a finalizer): on its loop, if that loop still runs. A forked child
    never touches its parent's session (the loop looks alive in the child's copy of memory, but its thread
    is the parent's)."""
    loop = session.loop
    if session.pid != os.getpid():
        return
    try:
        if loop.is_closed() or not loop.is_running():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(session.close())
        else:
            done = asyncio.run_coroutine_threadsafe(session.close(), loop)
            if running is None:          # never block a running loop on another one
                done.result(5)
    except Exception:   # interpreter shutdown, a loop that stopped meanwhile: nothing left to close
        pass


class DriveFileSystem(AsyncFileSystem):
    """fsspec's view of one Drive account; see the module docstring."""

    protocol = (PROTOCOL,)
    root_marker = ""
    #: The first read-ahead of a file opened 'rb' (AdaptiveReadAhead grows it for sequential reads).
    default_block_size = 256 * 1024

    def __init__(self, credentials: str | None = None, api_url: str | None = None, *, impersonate: str | None = None,
                 drive_id: str | None = None, trash: bool = True, block_size: int | None = None,
                 cache_type: str = AdaptiveReadAhead.name, asynchronous: bool = False, loop=None, batch_size=None,
                 **kwargs):
        overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in _SETTING_FIELDS}
        super().__init__(asynchronous=asynchronous, loop=loop, batch_size=batch_size, **kwargs)
        if credentials is not None and not isinstance(credentials, (str, os.PathLike)):
            raise UsageError("drivesync:// credentials= takes the path of a credentials file "
                             "(a service-account key, authorized-user JSON or drivesync's token)")
        self.credentials = os.fspath(credentials) if credentials is not None else None
        self.impersonate = impersonate
        self.drive_id = drive_id
        self.trash = trash
        if block_size is not None:
            self.blocksize = block_size
        else:
            self.blocksize = self.default_block_size
        self.settings = config.from_environment(api_url=api_url, **overrides)   # bad values: one line, now
        self.cache_type = cache_type
        #: The id cache: path -> the item it names (shortcuts followed); ``_links``: path -> the shortcut itself.
        self._items: dict[str, RemoteFile] = {}
        self._links: dict[str, RemoteFile] = {}
        #: The last bytes of recently read files (Parquet footers), by revision: a file opened again (pyarrow
        #: opens it once per read_table) does not fetch its footer again.
        self._tails: collections.OrderedDict = collections.OrderedDict()
        self._tails_lock = threading.Lock()
        self._chosen = None
        self._session_: _Session | None = None
        self._session_lock: asyncio.Lock | None = None
        self._session_lock_loop = None

    # -- per process, per loop ------------------------------------------------------------------

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's loop, connections, journal and locks (they belong to the
        parent); the caches are plain data and stay."""
        pid = os.getpid()
        if self._pid != pid:
            self._pid = pid
            self._session_ = None
            self._session_lock = self._session_lock_loop = None
            if not self.asynchronous:
                self._loop = get_loop()      # fsspec made a fresh IO thread's loop for this process

    @property
    def loop(self):
        """fsspec's IO loop of this process. Reached from the caller's thread before every synchronous call,
        so credentials are found there on first use (Colab's sign-in prompt needs the notebook's thread)."""
        self._after_fork()
        if self._chosen is None and not self.asynchronous:
            self._credentials()
        return self._loop

    def _credentials(self):
        """The credentials, in auth.py's order (``credentials=`` first); found once per instance (a fork keeps
        them: they are data, and a DataLoader worker must not prompt for a sign-in again)."""
        if self._chosen is None:
            chosen = find_credentials(self.credentials, subject=self.impersonate)
            log.info("credentials: %s", chosen.source)
            self._chosen = chosen
        return self._chosen

    async def _session(self) -> _Session:
        self._after_fork()
        loop = asyncio.get_running_loop()
        current = self._session_
        if current is not None and current.loop is loop:
            return current
        if self._session_lock is None or self._session_lock_loop is not loop:
            self._session_lock, self._session_lock_loop = asyncio.Lock(), loop
        async with self._session_lock:
            current = self._session_
            if current is not None and current.loop is loop:
                return current
            chosen = self._chosen or await asyncio.to_thread(self._credentials)
            authorizer = Authorizer(chosen, give_up_after=self.settings.give_up_after)
            stack = contextlib.AsyncExitStack()
            drive = await stack.enter_async_context(open_drive(self.settings, authorizer=authorizer))
            session = _Session(loop, stack, drive, self.settings)
            weakref.finalize(self, _close_session, session)
            if current is not None:
                _close_session(current)      # another loop's; closed there
            self._session_ = session
            return session

    async def _close(self) -> None:
        session, self._session_ = self._session_, None
        if session is not None:
            await session.close()

    def close(self) -> None:
        """Close this process's connections (a later call opens new ones)."""
        session, self._session_ = self._session_, None
        if session is not None:
            _close_session(session)

    # -- paths ----------------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, (list, tuple)):
            return [cls._strip_protocol(p) for p in path]
        path = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
        for prefix in (PROTOCOL + "://", PROTOCOL + "::"):
            if path.startswith(prefix):
                path = path[len(prefix):]
        if locator.is_url(path):
            loc = locator.parse(path)
            path = loc.canonical()
        if path in (SHARED_WITH_ME_ROOT, SHARED_DRIVE_ROOT):
            return path
        base, sep, key = path.partition("?resourcekey=")
        path = base.rstrip("/") + sep + key
        if path.startswith("/") and not _looks_special(path.lstrip("/")):
            path = path.lstrip("/")
        return path

    @classmethod
    def _parent(cls, path):
        """The folder a path's listing lives in. An anchor (``id:ID``) is its own parent: no listing of
        another folder says whether it exists."""
        path = cls._strip_protocol(path)
        if path in (SHARED_WITH_ME_ROOT, SHARED_DRIVE_ROOT):
            return ""
        base = path.partition("?resourcekey=")[0]
        if "/" not in base.lstrip("/") and not base.startswith("/"):
            if base.startswith(locator.ID_PREFIX):
                return path
            if base.startswith(SHARED_WITH_ME_ROOT):
                return SHARED_WITH_ME_ROOT
            if base.startswith(SHARED_DRIVE_ROOT):
                return SHARED_DRIVE_ROOT
        return _split(path)[0]

    def _listed_parent(self, path: str):
        """The cached listing that says whether ``path`` exists, or None (none cached, or the listing
        cannot tell: an anchor, a bare id that may be an id rather than a name)."""
        parent = self._parent(path)
        if parent == path or (parent == "" and locator.is_bare_id(path)):
            return None
        try:
            return self.dircache[parent]
        except KeyError:
            return None

    def _ls_from_cache(self, path):
        try:
            return self.dircache[path]
        except KeyError:
            pass
        listing = self._listed_parent(path)
        if listing is None:
            return None
        files = [f for f in listing if f["name"] == path]
        if not files:
            raise FileNotFoundError(errno.ENOENT, f"not found on Drive: {path or 'My Drive'}", path)
        return files if files[0]["type"] == "file" else None

    def unstrip_protocol(self, name: str) -> str:
        return f"{PROTOCOL}://{self._strip_protocol(name)}"

    def _locator(self, path: str) -> locator.Locator:
        return locator.parse(path or "/", drive_id=self.drive_id)

    # -- what a path names ------------------------------------------------------------------------

    def _info_of(self, path: str, item: RemoteFile) -> dict:
        folder = item.is_folder
        info = {"name": path, "size": 0 if folder else (item.size or 0),
                "type": "directory" if folder else "file", "id": item.id, "mimeType": item.mime_type}
        if item.md5:
            info["md5Checksum"] = item.md5
        if item.modified_time:
            info["modifiedTime"] = item.modified_time
            ns = download.parse_time_ns(item.modified_time)
            if ns is not None:
                info["mtime"] = ns / 1e9
        if item.is_google_doc:
            info["google_doc"] = True
        return info

    def _pseudo_root(self, path: str) -> dict:
        return {"name": path, "size": 0, "type": "directory", "id": None, "mimeType": FOLDER}

    async def _item(self, path: str, *, fresh: bool = False) -> RemoteFile:
        """The item ``path`` names: from the id cache, from its folder's cached listing (a name missing there
        is FileNotFoundError without a request), else resolved the way the CLI resolves REMOTE."""
        path = self._strip_protocol(path)
        if not fresh:
            hit = self._items.get(path)
            if hit is not None:
                return hit
            listing = self._listed_parent(path)
            if listing is not None and not any(e["name"] == path for e in listing):
                raise FileNotFoundError(errno.ENOENT, f"not found on Drive: {path or 'My Drive'}", path)
        session = await self._session()
        with _as_os_errors(path):
            item = await remote.resolve(session.drive, self._locator(path))
        self._items[path] = item
        return item

    async def _info(self, path, **kwargs):
        path = self._strip_protocol(path)
        if path in (SHARED_WITH_ME_ROOT, SHARED_DRIVE_ROOT):
            return self._pseudo_root(path)
        return self._info_of(path, await self._item(path))

    def _entries(self, folder_path: str, children, targets) -> list[dict]:
        """Info dicts for one folder's children, filling the id cache. A name with '/' or one that several
        children share is listed as ``id:ID`` (a path that names that child alone)."""
        counts: dict[str, int] = {}
        for child in children:
            counts[child.name] = counts.get(child.name, 0) + 1
        out = []
        for child in sorted(children, key=lambda c: (c.name, c.id)):
            item = child
            if child.is_shortcut:
                item = targets.get(child.shortcut_target or "")
                if item is None:
                    continue
            if item.trashed:
                continue
            unique = counts[child.name] == 1 and "/" not in child.name and child.name not in ("", ".", "..")
            path = _join(folder_path, child.name) if unique else f"{locator.ID_PREFIX}{item.id}"
            self._items[path] = item
            if child.is_shortcut:
                self._links[path] = child
            out.append(self._info_of(path, item))
        return out

    async def _ls(self, path, detail=True, refresh=False, **kwargs):
        path = self._strip_protocol(path)
        entries = None if refresh else self._ls_from_cache(path)
        if entries is None:
            entries = await self._list(path)
        return entries if detail else [e["name"] for e in entries]

    async def _list(self, path: str) -> list[dict]:
        session = await self._session()
        drive = session.drive
        with _as_os_errors(path):
            if path == SHARED_WITH_ME_ROOT:
                items = await remote.shared_with_me(drive)
                entries = self._entries(SHARED_WITH_ME_ROOT, [], {})
                counts: dict[str, int] = {}
                for i in items:
                    counts[i.name] = counts.get(i.name, 0) + 1
                for i in sorted(items, key=lambda i: (i.name, i.id)):
                    p = (SHARED_WITH_ME_ROOT + i.name) if counts[i.name] == 1 and "/" not in i.name \
                        else f"{locator.ID_PREFIX}{i.id}"
                    self._items[p] = i
                    entries.append(self._info_of(p, i))
            elif path == SHARED_DRIVE_ROOT:
                entries = []
                for d in sorted(await drive.shared_drives(), key=lambda d: (d.name, d.id)):
                    p = SHARED_DRIVE_ROOT + d.name if "/" not in d.name else f"{locator.ID_PREFIX}{d.id}"
                    self._items[p] = d.as_folder()
                    entries.append(self._info_of(p, d.as_folder()))
            else:
                item = await self._item(path)
                if not item.is_folder:
                    return [self._info_of(path, item)]
                listing = await remote.fetch_listing(drive, item.id, self.settings, recursive=False)
                entries = self._entries(path, listing.children.get(item.id, []), listing.targets)
        self.dircache[path] = entries
        return entries

    async def _find(self, path, maxdepth=None, withdirs=False, **kwargs):
        """Everything below ``path`` from one batched listing of the whole tree (remote.fetch_listing:
        many folders per query), every folder's listing cached on the way; with ``maxdepth`` (a glob without
        ``**``) only that deep, a level's folders listed concurrently."""
        path = self._strip_protocol(path)
        detail = kwargs.pop("detail", False)
        if path in (SHARED_WITH_ME_ROOT, SHARED_DRIVE_ROOT):
            return await super()._find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs)
        item = await self._item(path)
        out: dict[str, dict] = {}
        if not item.is_folder:
            out[path] = self._info_of(path, item)
        elif maxdepth is not None:
            # A glob's depth: level by level, each level's folders listed at once (cached listings are free).
            if withdirs and path != "":
                out[path] = self._info_of(path, item)
            level, seen = [path], {item.id}
            for _ in range(max(0, maxdepth)):
                listings = await asyncio.gather(*(self._ls(p, detail=True) for p in level))
                level = []
                for entries in listings:
                    for e in entries:
                        if e["type"] != "directory":
                            out[e["name"]] = e
                            continue
                        if withdirs:
                            out[e["name"]] = e
                        if e["id"] not in seen:
                            seen.add(e["id"])
                            level.append(e["name"])
                if not level:
                    break
        else:
            if withdirs and path != "":
                out[path] = self._info_of(path, item)
            session = await self._session()
            with _as_os_errors(path):
                listing = await remote.fetch_listing(session.drive, item.id, self.settings, recursive=True)
            todo, seen = [(item.id, path)], {item.id}
            while todo:
                folder_id, folder_path = todo.pop()
                entries = self._entries(folder_path, listing.children.get(folder_id, []), listing.targets)
                self.dircache[folder_path] = entries
                for e in entries:
                    if e["type"] == "directory":
                        if e["id"] not in seen:       # a shortcut back up the tree is listed once, not walked
                            seen.add(e["id"])
                            todo.append((e["id"], e["name"]))
                        if withdirs:
                            out[e["name"]] = e
                    else:
                        out[e["name"]] = e
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    # -- reading ----------------------------------------------------------------------------------

    def _readable(self, path: str, item: RemoteFile) -> None:
        if item.is_folder:
            raise IsADirectoryError(errno.EISDIR, f"{path or 'My Drive'} is a folder on Drive", path)
        if item.is_google_doc:
            raise DriveFsError(f"{path} is a Google Docs file ({item.mime_type}): it has no bytes to read; "
                               "'drivesync pull' exports it")

    async def _read_range(self, item: RemoteFile, start: int, end: int, path: str = "") -> bytes:
        """Bytes [start, end) of ``item``. More than two PIECEs go as PIECE-sized ranged GETs,
        ``streams_per_file`` at a time; see ``_read_piece``."""
        if end - start <= 2 * PIECE or self.settings.streams_per_file < 2:
            return await self._read_piece(item, start, end, path)
        pieces = [(a, min(end, a + PIECE)) for a in range(start, end, PIECE)]
        slots = asyncio.Semaphore(self.settings.streams_per_file)

        async def one(a: int, b: int) -> bytes:
            async with slots:
                return await self._read_piece(item, a, b, path)

        return b"".join(await asyncio.gather(*(one(a, b) for a, b in pieces)))

    async def _read_piece(self, item: RemoteFile, start: int, end: int, path: str = "") -> bytes:
        """Bytes [start, end) of ``item``: one ranged GET through download.read_ranged, pull's reader (a cut
        body resumes from the last byte kept, --bwlimit holds; a server that ignores Range is read from byte
        0 and the rest dropped). Content-Range's total must be the size the item was listed with, else the
        file changed on Drive since: DriveFsError. The read ends where the file does (416, or its size)."""
        if start >= end:
            return b""
        session = await self._session()
        out = bytearray()

        def judge(response, pos, end):
            if response.status == 416:
                return pos, pos, 0                       # nothing from pos on: the read ends here
            skip = 0
            if response.status == 206:
                total = self._range_total(response.headers.get("Content-Range", ""), pos)
            else:
                length = response.headers.get("Content-Length") or ""
                total = int(length) if length.isdigit() else None
                skip = pos
            if total is not None and item.size is not None and total != item.size:
                self._forget_item(item.id)
                raise DriveFsError(f"{path or 'id:' + item.id} changed on Drive while it was read "
                                   f"(now {total} bytes, was {item.size}); open it again")
            return pos, end if item.size is None else min(end, item.size), skip

        async def keep(pos, pieces, end):
            for piece in pieces:
                out.extend(piece)
            return pos + download.size_of(pieces)

        try:
            with _as_os_errors(path):
                await download.read_ranged(JobContext(session.transfers, path), session.drive, item.id, start,
                                           end, keep, judge, settings=self.settings, counters=download.Counters())
        except TransferInterrupted as exc:
            raise TransferInterrupted(f"{path or item.id}: {exc}") from None
        return bytes(out)

    @staticmethod
    def _range_total(value: str, pos: int) -> int | None:
        first, _, total = value.partition("/")
        if not first.startswith("bytes ") or not first[6:].split("-")[0].isdigit() \
                or int(first[6:].split("-")[0]) != pos:
            raise TransferInterrupted(f"unexpected Content-Range {value!r} for bytes {pos}-")
        return int(total) if total.isdigit() else None

    @staticmethod
    def _revision(item: RemoteFile) -> tuple:
        return item.id, item.size, item.md5, item.modified_time

    def _tail(self, item: RemoteFile) -> bytes | None:
        with self._tails_lock:
            tail = self._tails.get(self._revision(item))
            if tail is not None:
                self._tails.move_to_end(self._revision(item))
            return tail

    def _keep_tail(self, item: RemoteFile, data: bytes) -> None:
        with self._tails_lock:
            self._tails[self._revision(item)] = data
            self._tails.move_to_end(self._revision(item))
            while len(self._tails) > TAILS_KEPT:
                self._tails.popitem(last=False)

    def _forget_item(self, file_id: str) -> None:
        for p in [p for p, i in list(self._items.items()) if i.id == file_id]:
            self._items.pop(p, None)

    async def _cat_file(self, path, start=None, end=None, **kwargs):
        path = self._strip_protocol(path)
        item = await self._item(path)
        self._readable(path, item)
        size = item.size or 0
        start = 0 if start is None else (max(0, size + start) if start < 0 else min(start, size))
        end = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
        try:
            return await self._read_range(item, start, end, path)
        except FileNotFoundError:
            self._forget_item(item.id)
            raise

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_type=None,
              cache_options=None, **kwargs):
        if mode not in ("rb", "wb"):
            raise ValueError(f"drivesync:// opens files as 'rb' or 'wb', not {mode!r}")
        if cache_type is None:
            cache_type = self.cache_type
            if cache_type == AdaptiveReadAhead.name and cache_options is None:
                cache_options = {"max_ahead": self.settings.range_size}
        return DriveFile(self, path, mode, block_size=block_size or self.blocksize, autocommit=autocommit,
                         cache_type=cache_type, cache_options=cache_options, **kwargs)

    async def _get_file(self, rpath, lpath, callback=None, **kwargs):
        """Through download.Downloader: parallel ranges into a partial file, verified, renamed into place."""
        rpath = self._strip_protocol(rpath)
        item = await self._item(rpath)
        if os.path.isdir(lpath) and not item.is_folder:
            lpath = os.path.join(lpath, os.path.basename(rpath) or item.name)
        if item.is_folder:
            os.makedirs(lpath, exist_ok=True)
            return
        self._readable(rpath, item)
        lpath = os.path.abspath(lpath)
        os.makedirs(os.path.dirname(lpath), exist_ok=True)
        session = await self._session()
        if callback is not None:
            callback.set_size(item.size or 0)
        with _as_os_errors(rpath):
            await session.downloader.fetch(JobContext(session.transfers, lpath), item, lpath)
        if callback is not None:
            callback.relative_update(item.size or 0)

    # -- writing ----------------------------------------------------------------------------------

    async def _folder(self, path: str) -> RemoteFile:
        """The folder at ``path``, created with its missing parents (one creator at a time per process)."""
        path = self._strip_protocol(path)
        try:
            item = await self._item(path)
        except FileNotFoundError:
            item = None
        if item is not None:
            if not item.is_folder:
                raise NotADirectoryError(errno.ENOTDIR, f"{path} is a file on Drive, not a folder", path)
            return item
        session = await self._session()
        async with session.folders:
            with _as_os_errors(path):
                item = await remote.resolve_folder(session.drive, self._locator(path), create=True)
        self._items[path] = item
        self.invalidate_cache(self._parent(path))
        return item

    async def _target(self, rpath: str) -> UploadTarget:
        """Where an upload to ``rpath`` goes: a new revision of the file there, else a new file (parents made)."""
        try:
            existing = await self._item(rpath, fresh=True)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if existing.is_folder:
                raise IsADirectoryError(errno.EISDIR, f"{rpath} is a folder on Drive", rpath)
            return UploadTarget(name=existing.name, file_id=existing.id,
                                mime_type=existing.mime_type or "application/octet-stream")
        parent_path, name = _split(rpath)
        if not name or name in (".", ".."):
            raise UsageError(f"drivesync://{rpath} names no file to write")
        parent = await self._folder(parent_path)
        guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return UploadTarget(name=name, parent_id=parent.id, mime_type=guessed)

    async def _upload(self, lpath: str, rpath: str, *, journal: bool = False) -> RemoteFile:
        rpath = self._strip_protocol(rpath)
        target = await self._target(rpath)
        session = await self._session()
        with _as_os_errors(rpath):
            item = await upload_file(session.drive, lpath, target, journal=session.journal if journal else None)
        self.invalidate_cache(rpath)
        self._items[rpath] = item
        return item

    async def _refuse_existing(self, path, mode: str) -> None:
        """fsspec's mode='create': the write fails when something is there already."""
        if mode == "create" and await self._exists(path):
            raise FileExistsError(errno.EEXIST, f"{self._strip_protocol(path)} exists on Drive", path)

    async def _pipe_file(self, path, value, mode="overwrite", **kwargs):
        await self._refuse_existing(path, mode)
        if self._intrans:
            f = self._open(path, "wb", autocommit=False)
            f.write(value)
            f.close()
            self.transaction.files.append(f)
            return
        fd, tmp = tempfile.mkstemp(prefix=".drivesync-fs-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(value)
            await self._upload(tmp, path)
        finally:
            os.unlink(tmp)

    async def _put_file(self, lpath, rpath, callback=None, mode="overwrite", **kwargs):
        if os.path.isdir(lpath):
            await self._makedirs(rpath, exist_ok=True)
            return
        await self._refuse_existing(rpath, mode)
        if self._intrans:
            self.transaction.files.append(_DeferredPut(self, lpath, rpath))
            return
        await self._upload(lpath, rpath, journal=True)
        if callback is not None:
            size = os.path.getsize(lpath)
            callback.set_size(size)
            callback.relative_update(size)

    async def _cp_file(self, path1, path2, **kwargs):
        """A copy through this machine (read in parallel ranges to a local temporary file, then uploaded):
        Drive's files.copy is not one of drive.py's calls."""
        src_path = self._strip_protocol(path1)
        item = await self._item(src_path)
        if item.is_folder:
            await self._makedirs(path2, exist_ok=True)
            return
        self._readable(src_path, item)
        fd, tmp = tempfile.mkstemp(prefix=".drivesync-fs-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                size, step = item.size or 0, self.settings.range_size
                for start in range(0, size, step):
                    fh.write(await self._read_range(item, start, min(size, start + step), src_path))
            await self._upload(tmp, path2)
        finally:
            os.unlink(tmp)

    async def _mkdir(self, path, create_parents=True, **kwargs):
        path = self._strip_protocol(path)
        if await self._exists(path):
            raise FileExistsError(errno.EEXIST, f"{path} exists on Drive", path)
        if not create_parents:
            await self._item(self._parent(path))     # FileNotFoundError when the parent is missing
        await self._folder(path)

    async def _makedirs(self, path, exist_ok=False):
        path = self._strip_protocol(path)
        if not exist_ok and await self._exists(path):
            raise FileExistsError(errno.EEXIST, f"{path} exists on Drive", path)
        await self._folder(path)

    async def _raw(self, path: str) -> RemoteFile:
        """The item at ``path`` itself (a shortcut, not its target), for rm and mv."""
        path = self._strip_protocol(path)
        parent = self._parent(path)
        if parent != path and path not in self._items:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                await self._ls(parent)
        return self._links.get(path) or await self._item(path)

    async def _remove(self, path: str, item: RemoteFile) -> None:
        session = await self._session()
        with _as_os_errors(path):
            if self.trash:
                await session.drive.trash(item.id)
            else:
                await session.drive.delete(item.id)
        self.invalidate_cache(path)

    async def _rm_file(self, path, **kwargs):
        path = self._strip_protocol(path)
        item = await self._raw(path)
        if item.is_folder:
            raise IsADirectoryError(errno.EISDIR, f"{path} is a folder on Drive (rm(path, recursive=True))", path)
        await self._remove(path, item)

    async def _rmdir(self, path):
        path = self._strip_protocol(path)
        item = await self._raw(path)
        if not item.is_folder:
            raise NotADirectoryError(errno.ENOTDIR, f"{path} is a file on Drive, not a folder", path)
        if await self._ls(path, refresh=True):
            raise OSError(errno.ENOTEMPTY, f"{path} is not empty on Drive (rm(path, recursive=True))", path)
        await self._remove(path, item)

    rmdir = sync_wrapper(_rmdir)

    async def _rm(self, path, recursive=False, batch_size=None, maxdepth=None, **kwargs):
        """One trash (or delete) per top-most item: Drive removes a folder with everything in it."""
        paths = path if isinstance(path, list) else [path]
        targets: list[str] = []
        for p in paths:
            p = self._strip_protocol(p)
            if any(c in p for c in "*?["):
                targets.extend(await self._expand_path(p, recursive=False))
            else:
                targets.append(p)
        chosen = [p for p in sorted(set(targets)) if not any(p.startswith(t + "/") for t in targets if t != p)]

        async def one(p: str) -> None:
            item = await self._raw(p)
            if item.is_folder and not item.is_shortcut and not recursive:
                await self._rmdir(p)
            else:
                await self._remove(p, item)

        await asyncio.gather(*(one(p) for p in chosen))

    async def _mv(self, path1, path2, **kwargs):
        """A move (and rename) on Drive is one metadata update, for a folder and everything in it too. An
        existing folder at ``path2`` receives the item; an existing file there is replaced (trashed)."""
        src_path, dst_path = self._strip_protocol(path1), self._strip_protocol(path2)
        if src_path == dst_path:
            return
        src = await self._raw(src_path)
        try:
            dst = await self._item(dst_path, fresh=True)
        except FileNotFoundError:
            dst = None
        replaced = None
        if dst is not None and dst.is_folder:
            parent, name = dst, src.name
            dst_path = _join(dst_path, name)
            with contextlib.suppress(FileNotFoundError):
                replaced = await self._item(dst_path, fresh=True)
        else:
            replaced = dst
            parent_path, name = _split(dst_path)
            parent = await self._folder(parent_path)
        if replaced is not None and replaced.id == src.id:
            return
        if replaced is not None and replaced.is_folder:
            raise IsADirectoryError(errno.EISDIR, f"{dst_path} is a folder on Drive", dst_path)
        old_parent = src.parents[0] if src.parents else None
        session = await self._session()
        with _as_os_errors(src_path):
            await session.drive.update(src.id, {"name": name} if name != src.name else None,
                                       add_parents=parent.id if parent.id != old_parent else None,
                                       remove_parents=old_parent if old_parent and parent.id != old_parent else None)
        if replaced is not None:
            await self._remove(dst_path, replaced)
        self.invalidate_cache(src_path)
        self.invalidate_cache(dst_path)

    def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
        return sync(self.loop, self._mv, path1, path2, **kwargs)

    def invalidate_cache(self, path=None):
        if path is None:
            self.dircache.clear()
            self._items.clear()
            self._links.clear()
            return
        path = self._strip_protocol(path)
        for cache in (self._items, self._links):        # list(): another thread may be adding entries
            for p in [p for p in list(cache) if p == path or p.startswith(path + "/")]:
                cache.pop(p, None)
        for p in [p for p in list(self.dircache) if p == path or p.startswith(path + "/")]:
            self.dircache.pop(p, None)
        while True:
            self.dircache.pop(path, None)
            parent = self._parent(path)
            if parent == path:
                break
            path = parent
            if path == "":
                self.dircache.pop("", None)
                break


class _DeferredPut:
    """put_file inside a transaction: uploaded when the transaction commits."""

    def __init__(self, fs: DriveFileSystem, lpath: str, rpath: str):
        self.fs, self.lpath, self.rpath = fs, lpath, rpath

    def commit(self) -> None:
        sync(self.fs.loop, self.fs._upload, self.lpath, self.rpath, journal=True)

    def discard(self) -> None:
        pass


class DriveFile(AbstractBufferedFile):
    """A Drive file opened through fsspec. 'rb': ranged GETs through a read-ahead cache (AdaptiveReadAhead
    unless ``cache_type=`` names one of fsspec's; seek anywhere); a file's last bytes (up to TAIL_BYTES, a
    Parquet footer) are kept by the file system for the next open of the same revision. 'wb': bytes spooled to
    a local temporary file, uploaded (resumable, verified) on close, or on the transaction's commit; nothing
    appears on Drive before."""

    def __init__(self, fs: DriveFileSystem, path, mode="rb", block_size=None, autocommit=True,
                 cache_type=AdaptiveReadAhead.name, cache_options=None, **kwargs):
        path = fs._strip_protocol(path)
        self._item: RemoteFile | None = None
        self._spool = None
        self._spool_path: str | None = None
        if mode == "rb":
            self._item = sync(fs.loop, fs._item, path)
            fs._readable(path, self._item)
            kwargs.setdefault("size", self._item.size or 0)
        super().__init__(fs, path, mode, block_size=block_size, autocommit=autocommit, cache_type=cache_type,
                         cache_options=cache_options, **kwargs)

    def _fetch_range(self, start, end):
        end = min(end, self.size)
        tail = self.fs._tail(self._item)
        if tail is not None and start >= self.size - len(tail):
            offset = self.size - len(tail)
            return tail[start - offset:end - offset]
        data = sync(self.fs.loop, self.fs._read_range, self._item, start, end, self.path)
        if end == self.size and 0 < len(data) <= TAIL_BYTES:
            self.fs._keep_tail(self._item, data)
        return data

    def _initiate_upload(self):
        fd, self._spool_path = tempfile.mkstemp(prefix=".drivesync-fs-", suffix=".part")
        self._spool = os.fdopen(fd, "wb")

    def _upload_chunk(self, final=False):
        self.buffer.seek(0)
        shutil.copyfileobj(self.buffer, self._spool)
        if final:
            self._spool.close()
            if self.autocommit:
                self.commit()
        return True

    def commit(self):
        if self._spool_path is None:
            return
        try:
            sync(self.fs.loop, self.fs._upload, self._spool_path, self.path)
        finally:
            self.discard()

    def discard(self):
        if self._spool is not None and not self._spool.closed:
            self._spool.close()
        if self._spool_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._spool_path)
            self._spool_path = None


__all__ = ["DriveFileSystem", "DriveFile", "DriveFsError", "PROTOCOL"]
