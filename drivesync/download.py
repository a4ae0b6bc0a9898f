"""Downloading one file: parallel byte ranges written in place into a preallocated hidden partial file,
hashed as it grows, verified, then renamed to its final name.

Rules this module keeps:
- A final path only ever holds a complete, verified file: bytes go to ``.<name>.<id8>.drivesync-partial``
  beside it (same filesystem), size and md5 are checked, then ``os.replace`` makes it final.
- Memory is bounded: a stream holds at most ``settings.io_buffer`` bytes (and the chunk that crosses
  it) before writing them at their offset (``os.pwritev``), whatever the file size.
- Mid-stream retries live here (request-level ones live in transport.py): a range whose body is cut
  resumes from the last byte written, at most ``settings.max_retries`` times per range.
- Resume: the byte ranges already written are kept in the journal (partial_download), so a new run
  after Ctrl-C / kill -9 fetches only what is missing.
- A size or md5 mismatch throws the partial away and downloads once more; a second mismatch fails.
  A file that changed on Drive meanwhile (an answer's size or X-Goog-Hash, or Drive's metadata after a
  mismatch, differ from the listing) is planned once more from Drive's new metadata instead.
- Durable (``settings.fsync``, on by default): the partial is fsynced before its rename (its writeback
  started as bytes land, so that fsync finds little left), and the folders renamed into are fsynced before
  the last download in flight returns (FolderSync); ``FSYNC`` counts the seconds spent in them.
- A partial that received nothing is not left behind: space is reserved when the first bytes land.
It never decides which files to fetch (plan.py) or how many at once (transfer.py).
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterable

from . import integrity, names
from .errors import DriveError, RemoteChanged, TransferInterrupted, VerificationFailed
from .transfer import gather_or_cancel

EMPTY_MD5 = hashlib.md5(b"").hexdigest()


class FsyncStats:
    """Seconds spent inside fsync calls of this process's downloads (files before their rename, folders
    after it), for measuring what durability costs (benchmarks, tests). Thread-safe; ``reset()`` to start over."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls = 0
            self.seconds = 0.0
            self.folder_calls = 0
            self.writeback_calls = 0
            self.writeback_seconds = 0.0

    def add(self, seconds: float, *, folder: bool = False) -> None:
        with self._lock:
            self.calls += 1
            self.seconds += seconds
            self.folder_calls += folder

    def add_writeback(self, seconds: float) -> None:
        with self._lock:
            self.writeback_calls += 1
            self.writeback_seconds += seconds


FSYNC = FsyncStats()


def _sync_file_range():
    """libc's sync_file_range (Linux): starts writing a byte range back to disk without waiting for it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
        fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
        return fn
    except (OSError, AttributeError):
        return None


_SYNC_FILE_RANGE = _sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, nbytes: int) -> None:
    """Ask the kernel to start writing these bytes to disk now, so the fsync before the rename finds little
    left to do (a 1 GiB file would otherwise be written out only then). Never waits; timed into FSYNC."""
    if _SYNC_FILE_RANGE is None:
        return
    started = time.perf_counter()
    _SYNC_FILE_RANGE(fd, offset, nbytes, _SYNC_FILE_RANGE_WRITE)
    FSYNC.add_writeback(time.perf_counter() - started)


def fsync_fd(fd: int, *, folder: bool = False) -> None:
    """os.fsync, timed into FSYNC. Called from worker threads only (it blocks)."""
    started = time.perf_counter()
    try:
        os.fsync(fd)
    finally:
        FSYNC.add(time.perf_counter() - started, folder=folder)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_dir(path: str) -> None:
    """Make a rename in the folder ``path`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return
    try:
        fsync_fd(fd, folder=True)
    except OSError:
        pass  # some file systems refuse fsync on a folder (EINVAL): the data itself was synced
    finally:
        os.close(fd)


class FsyncBatch:
    """fsync the files of many small downloads in one worker-thread call, not one thread hop each.

    A small file is written on the event loop (a page-cache write of at most ``io_buffer`` bytes); only
    its fsync blocks, so ``sync(fd)`` queues the descriptor and, while one batch is being synced, the
    next gathers behind it. The worker fsyncs and closes every descriptor of its batch (the caller
    never closes one it handed over, so no fsync can meet a reused descriptor). On 2 cores a hop per
    file cost a GIL hand-off per syscall between the loop and six workers: 110 futex calls per file."""

    def __init__(self) -> None:
        self._queue: list[tuple[int, asyncio.Future]] = []
        self._draining = False

    async def sync(self, fd: int) -> None:
        """Make ``fd``'s bytes durable and close it; raises the fsync's OSError (the fd is closed either way)."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((fd, future))
        if not self._draining:
            self._draining = True
            asyncio.ensure_future(self._drain())
        await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                errors = await asyncio.to_thread(_fsync_and_close, [fd for fd, _ in batch])
                for (_, future), error in zip(batch, errors):
                    if future.done():
                        continue
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)
        finally:
            self._draining = False


def _fsync_and_close(fds: list[int]) -> list[OSError | None]:
    """fsync then close each of ``fds``. Every file's writeback is started first, so the first fsync's
    journal commit carries the blocks of the whole batch and the others find little left to wait for
    (measured: 500 files of 64 KiB in batches of 50, ext4, half the wall and the CPU of plain fsyncs)."""
    if len(fds) > 1:
        for fd in fds:
            start_writeback(fd, 0, 0)   # never raises: the fsync below reports what is wrong
    errors: list[OSError | None] = []
    for fd in fds:
        try:
            fsync_fd(fd)
            errors.append(None)
        except OSError as exc:
            errors.append(exc)
        finally:
            os.close(fd)
    return errors


class FolderSync:
    """Makes the renames of a run durable without an fsync per file: ``renamed(folder)`` marks a folder, and
    whoever ends the last download in flight (``enter()`` / ``leave()`` around each) fsyncs every marked
    folder, in a worker thread, before it returns. A rename made while those fsyncs run belongs to a download
    still in flight, which syncs again when it leaves. So the pull returns only once every file it renamed
    into place is there for good, at the cost of one fsync per folder per quiet moment (once at the end of a
    busy run), not one per file."""

    def __init__(self, durable: bool = True):
        self.durable = durable
        self._dirty: set[str] = set()
        self._active = 0

    def enter(self) -> None:
        self._active += 1

    def renamed(self, folder: str) -> None:
        if self.durable:
            self._dirty.add(folder)

    async def leave(self) -> None:
        self._active -= 1
        while self._active == 0 and self._dirty:
            folders, self._dirty = sorted(self._dirty), set()
            await asyncio.to_thread(_fsync_dirs, folders)


def _fsync_dirs(folders: list[str]) -> None:
    for folder in folders:
        fsync_dir(folder)


#: Bytes hashed per pread when the hasher catches up from disk.
_HASH_READ = 4 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_TOTAL = re.compile(r"bytes (?:\d+-\d+|\*)/(\d+)")
#: A partial's dirty bytes are handed to the disk (start_writeback) each time this many more have landed.
_WRITEBACK_EVERY = 16 * 1024 * 1024


# -- range arithmetic (pure) ------------------------------------------------------------------------


def normalize(ranges: Iterable[Iterable[int]]) -> list[tuple[int, int]]:
    """Sorted, merged, non-empty [start, end) ranges."""
    out: list[list[int]] = []
    for start, end in sorted((int(a), int(b)) for a, b in ranges):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def missing(size: int, done: Iterable[Iterable[int]]) -> list[tuple[int, int]]:
    """The [start, end) ranges of [0, size) not covered by ``done``."""
    gaps, pos = [], 0
    for start, end in normalize(done):
        start, end = max(0, min(start, size)), max(0, min(end, size))
        if start > pos:
            gaps.append((pos, start))
        pos = max(pos, end)
    if pos < size:
        gaps.append((pos, size))
    return gaps


def plan_ranges(size: int, done: Iterable[Iterable[int]], range_size: int, *, streams: int = 1) -> list[tuple[int, int]]:
    """The missing bytes cut into requests of at most ``range_size`` bytes, in file order.

    With ``streams`` workers taking them in order, the first ``streams - 1`` requests are staggered: the k-th is
    ``streams - 1 - k`` steps (``range_size // 16``) shorter than the others, so that the streams that start
    together finish one after another, in file order, and keep doing so (each takes the next request as it is
    done). That order is what lets the md5 keep up: it advances over the contiguous prefix only, so with equal
    requests every round ended together in some order, and all the bytes written past the earliest unfinished
    request were read back and hashed after it. In the last round nothing is left to overlap that with: a 2 GB
    ``restore`` read back about 550 MB after its last byte arrived, and finished 0.6-0.9 s after it; staggered
    by 2 MiB, about 30 MB and 0.2-0.5 s, most of it fsync (issue 13). One MiB steps did not hold the order
    against the streams' jitter.

    The last ``streams - 1`` requests mirror that stagger (each one step shorter than the one before it)
    and the middle ones share the remaining bytes evenly, so that the streams run out of work close
    together, still one after another, instead of up to a whole request apart: with full last requests
    the last one or two streams of 2 x 1 GiB ran alone for the final 0.5 s, the link a third used
    (benchmarks/request_timeline.py, six runs each: the last byte 14.98 s after start, median, 14.70 s
    with the ramp; `restore` and `project` unchanged, two more requests per file). A file too
    small for both ramps keeps the first one only."""
    if range_size < 1 or streams < 1:
        raise ValueError("range_size and streams must be positive")
    spans = missing(size, done)
    step = range_size // 16 if streams > 1 else 0
    if not step:
        return [(pos, min(end, pos + range_size)) for start, end in spans for pos in range(start, end, range_size)]
    total = sum(end - start for start, end in spans)
    # Every request is the common size m, but for the ramps: m - (streams - 1 - k) * step at the start,
    # m - (k + 1) * step at the end. m is the largest size up to range_size that adds up to ``total``.
    ramps = streams - 1
    padded = total + step * streams * ramps           # total plus what the two ramps take off
    middle = max(0, -(-padded // range_size) - 2 * ramps)
    m, extra = divmod(padded, middle + 2 * ramps)
    if m - ramps * step >= step:
        sizes = [m - (ramps - k) * step for k in range(ramps)]
        sizes += [m + (i < extra) for i in range(middle)]
        sizes += [m - (k + 1) * step for k in range(ramps)]
        if not middle:
            sizes[ramps] += extra                     # no middle to carry the remainder: the tail's first
    else:                                             # too small for both ramps: the first one only
        sizes = [max(step, range_size - (ramps - k) * step) for k in range(ramps)]
    # The sizes laid over the missing bytes in order; a request that would straddle a gap is cut at it.
    pieces: list[tuple[int, int]] = []
    spans_left = list(spans)
    for n in sizes:
        while n > 0 and spans_left:
            start, end = spans_left[0]
            take = min(n, end - start)
            pieces.append((start, start + take))
            n -= take
            if start + take == end:
                spans_left.pop(0)
            else:
                spans_left[0] = (start + take, end)
    for start, end in spans_left:            # past the first ramp of a small file: equal requests
        pieces.extend((pos, min(end, pos + range_size)) for pos in range(start, end, range_size))
    return pieces


def missing_within(done: Iterable[Iterable[int]], start: int, end: int) -> list[tuple[int, int]]:
    """The [a, b) pieces of [start, end) not covered by ``done``."""
    return [(start + a, start + b) for a, b in missing(end - start, [(x - start, y - start) for x, y in done])]


def prefix_end(done: Iterable[Iterable[int]]) -> int:
    """How many bytes from offset 0 are contiguous in ``done``."""
    merged = normalize(done)
    return merged[0][1] if merged and merged[0][0] == 0 else 0


def _stamp(target: str | int, item) -> os.stat_result:
    """Give a partial (its path, or its open descriptor) Drive's modifiedTime, and return its stat."""
    mtime_ns = parse_time_ns(item.modified_time)
    if mtime_ns is not None:
        os.utime(target, ns=(mtime_ns, mtime_ns))
    return os.stat(target)


def parse_time_ns(rfc3339: str | None) -> int | None:
    if not rfc3339:
        return None
    try:
        t = _dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def _answer_differs(item, first_hashes: dict, response, seen: dict) -> str | None:
    """What in a media answer says the file is no longer the revision the listing described, or None:
    its total size (Content-Range, or the whole body's Content-Length), its X-Goog-Hash md5 (``seen``,
    as integrity.parse_goog_hash read it) against the listing's md5Checksum, or any X-Goog-Hash against
    the one the first answer for this file carried."""
    headers = response.headers
    total = None
    m = _CONTENT_RANGE_TOTAL.match(headers.get("Content-Range", ""))
    if m:
        total = int(m.group(1))
    elif response.status == 200 and (headers.get("Content-Length") or "").isdigit():
        total = int(headers["Content-Length"])
    if total is not None and item.size is not None and total != item.size:
        return f"Drive now serves {total} bytes, the listing said {item.size}"
    if item.md5 and seen.get(integrity.MD5) and seen[integrity.MD5] != item.md5:
        return f"Drive now serves md5 {seen[integrity.MD5]}, the listing said {item.md5}"
    for name, value in seen.items():
        if first_hashes.get(name) and first_hashes[name] != value:
            return f"Drive's {name} changed between two answers for the same file"
    return None


def _differs(old, new) -> bool:
    """Does Drive's current metadata describe other content than the listing did?"""
    return (new.size, new.md5, new.modified_time) != (old.size, old.md5, old.modified_time) or new.trashed


def _describe(item) -> str:
    return f"{item.size} bytes, md5 {item.md5 or '-'}, modified {item.modified_time or '-'}"


def range_total(response, pos: int, end: int, file_id: str) -> int | None:
    """A ranged answer other than 200 checked: 416 -> DriveError; a Content-Range not starting at ``pos``
    -> TransferInterrupted (resumable). Returns the total size it names, or None (``*``)."""
    if response.status == 416:
        raise DriveError(416, "rangeNotSatisfiable", f"Drive refused bytes {pos}-{end - 1}",
                         what=f"download id:{file_id}")
    m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if not m or int(m.group(1)) != pos:
        raise TransferInterrupted(f"unexpected Content-Range {response.headers.get('Content-Range')!r} "
                                  f"for bytes {pos}-")
    return None if m.group(3) == "*" else int(m.group(3))


async def read_chunk(content) -> bytes:
    """The next piece of a body as aiohttp received it, b"" at its end. ``readchunk`` hands over the bytes
    object it holds; ``readany`` would join whatever is buffered into one more copy first."""
    while True:
        chunk, chunk_end = await content.readchunk()
        if chunk or not chunk_end:
            return chunk
        # the end of one chunk of a chunked body (no bytes): read on


def size_of(pieces) -> int:
    return sum(map(len, pieces))


#: The most buffers one pwritev/writev takes (Linux's IOV_MAX); read_ranged hands on no more at once.
IOV_MAX = 1024


def write_all(fd: int, pieces, offset: int | None = None) -> int:
    """Write every byte of ``pieces`` (a list of bytes-like) in one writev/pwritev where the system takes
    it (at ``offset``, or at the file's position when None), looping over short writes; returns the count."""
    total = size_of(pieces)
    done = 0
    while done < total:
        batch = pieces[:IOV_MAX]
        n = os.writev(fd, batch) if offset is None else os.pwritev(fd, batch, offset + done)
        if n <= 0:
            raise OSError(f"wrote nothing ({n}) of {total - done} bytes")
        done += n
        if done >= total:
            break
        # Short (or the first IOV_MAX pieces only): go on from the first byte not written.
        rest: list = []
        for piece in pieces:
            if n >= len(piece):
                n -= len(piece)
                continue
            rest.append(memoryview(piece)[n:] if n else piece)
            n = 0
        pieces = rest
    return done


def _covering(pieces, offset: int, at: int, target: int):
    """The bytes of ``pieces`` (contiguous from ``offset``) from ``at`` up to ``target``, out of the
    one piece that holds byte ``at``; None when no piece does."""
    pos = offset
    for piece in pieces:
        if pos <= at < pos + len(piece):
            return piece[at - pos:min(len(piece), target - pos)]
        pos += len(piece)
    return None


async def read_ranged(ctx, drive, file_id: str, start: int, end: int, sink, judge, *, settings, counters,
                      admit=None) -> None:
    """Bytes [start, end) of a Drive file by ranged GETs, each in a stream slot of ``ctx``, handed on as
    ``pos = await sink(pos, pieces, end)``: ``pieces`` is a list of memoryviews of the body's chunks as
    aiohttp received them (not copied), contiguous from ``pos``, about ``io_buffer`` bytes in all (the
    last call's may be fewer, one call's at most one chunk more; none goes past ``end``). Each chunk is
    counted against --bwlimit and in ``counters.received``. The views are of bytes objects nothing
    changes: a sink may keep them.
    ``judge(response, pos, end)`` looks at each answer before its body is read (``range_total`` checks
    any but a 200, a 416 included) and returns ``(pos, end, skip)``:
    where the body's bytes go and how many of them come before ``pos`` (a server that ignored Range),
    or None to ask again. A body cut short (or a 401 after the transport's one refresh: tokens can
    expire every few seconds) resumes at the byte reached, at most ``max_retries`` times, each counted
    in ``counters.retries``; other errors pass. ``admit()`` runs once a stream slot is held, before a
    request. download.py's files and extract.py's archives both read through this."""
    pos = start
    cuts = 0
    batch = settings.io_buffer
    while pos < end:
        try:
            async with ctx.stream_slot():
                if admit is not None:
                    admit()
                async with drive.media(file_id, pos, end - 1) as response:
                    got = judge(response, pos, end)
                    if got is None:
                        continue
                    pos, end, skip = got
                    # The chunks are handed on as they came: copying them into a buffer of our own was
                    # one more pass over every byte on the event loop (measured: a fifth of its memcpy).
                    pieces: list = []
                    held = 0
                    content = response.content
                    while pos + held < end:
                        chunk = await read_chunk(content)
                        if not chunk:
                            break
                        await drive.t.throttle(len(chunk))
                        counters.received += len(chunk)
                        view = memoryview(chunk)
                        if skip:
                            if len(view) <= skip:
                                skip -= len(view)
                                continue
                            view, skip = view[skip:], 0
                        if len(view) > end - pos - held:
                            view = view[:end - pos - held]
                        pieces.append(view)
                        held += len(view)
                        if held >= batch or len(pieces) >= IOV_MAX or pos + held >= end:
                            pos = await sink(pos, pieces, end)
                            pieces, held = [], 0
                    if pieces:
                        pos = await sink(pos, pieces, end)
                    if pos < end:
                        raise TransferInterrupted(f"body ended at byte {pos} of {end}")
        except (TransferInterrupted, DriveError) as exc:
            if isinstance(exc, DriveError) and exc.status != 401:
                raise
            cuts += 1
            counters.retries += 1
            if cuts > settings.max_retries:
                raise TransferInterrupted(f"gave up after {cuts - 1} resumes: {exc}") from None
            ctx.emit("retry", f"resuming at byte {pos}: {exc}")
            await asyncio.sleep(min(settings.backoff_cap, settings.backoff_base * 0.25 * cuts))


# -- the partial file ---------------------------------------------------------------------------------


class PartialFile:
    """A preallocated file written at offsets from several threads, hashing its contiguous prefix.

    ``write(offset, data)`` runs in a worker thread: ``os.pwrite``, then the md5 advances over the
    contiguous prefix (from ``data`` itself when it continues the prefix, else re-reading the bytes other
    streams wrote earlier, from the page cache). One thread hashes at a time; the others never wait.
    """

    def __init__(self, path: str, size: int, done: Iterable[Iterable[int]] = (), *, fresh: bool,
                 durable: bool = True):
        self.path = path
        self.size = size
        #: fsync in finish(), and writeback started as bytes land so that fsync has little left to write.
        self.durable = durable
        self.writeback = durable and _SYNC_FILE_RANGE is not None
        self._unsynced = 0
        self.done = list(normalize(done))
        flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if fresh else 0) | getattr(os, "O_CLOEXEC", 0)
        self.fd = os.open(path, flags, 0o644)
        #: Space is reserved when the first bytes land, not before: a download that receives nothing
        #: (Drive unreachable, a 403, kill -9 before the first byte) leaves no preallocated file behind.
        self._reserve = fresh and size > 0
        self.md5 = hashlib.md5()
        self.hashed = 0
        self._hash_buf: memoryview | None = None
        self._state = threading.Lock()
        self._hashing = threading.Lock()

    def _preallocate(self) -> None:
        with self._state:
            if not self._reserve:
                return
            self._reserve = False
            try:
                os.posix_fallocate(self.fd, 0, self.size)  # fails at the first bytes (ENOSPC), not half-way
            except (AttributeError, OSError) as exc:
                if isinstance(exc, OSError) and exc.errno == 28:
                    raise
                os.ftruncate(self.fd, self.size)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def prefix(self) -> int:
        with self._state:
            return prefix_end(self.done)

    def write(self, offset: int, pieces) -> None:
        """Bytes at ``offset``: one bytes-like, or a list of them that follow each other (one pwritev)."""
        if isinstance(pieces, (bytes, bytearray, memoryview)):
            pieces = [pieces]
        if self._reserve:
            self._preallocate()
        n = write_all(self.fd, pieces, offset)
        with self._state:
            self.done = normalize(self.done + [(offset, offset + n)])
            self._unsynced += n
            kick = self.writeback and self._unsynced >= _WRITEBACK_EVERY
            if kick:
                self._unsynced = 0
        if kick:
            start_writeback(self.fd, 0, 0)   # the whole file's dirty pages: one call per _WRITEBACK_EVERY bytes
        self._advance(offset, pieces)

    def _advance(self, offset: int | None = None, pieces=None, *, block: bool = False) -> None:
        while True:
            if not self._hashing.acquire(blocking=block):
                return  # whoever holds it re-checks the prefix before leaving
            try:
                target = self.prefix()
                while self.hashed < target:
                    span = None if pieces is None else _covering(pieces, offset, self.hashed, target)
                    if span:    # the bytes just written continue the prefix: hashed from memory
                        self.md5.update(span)
                        n = len(span)
                    else:       # other streams' bytes: read back up to where ours begin
                        if self._hash_buf is None:
                            # One buffer for every catch-up read: a fresh 4 MiB bytes per pread would
                            # fault in each of its pages (most of a multi-stream file is hashed this way).
                            self._hash_buf = memoryview(bytearray(_HASH_READ))
                        limit = target if pieces is None or self.hashed >= offset else min(target, offset)
                        into = self._hash_buf[:min(_HASH_READ, limit - self.hashed)]
                        n = os.preadv(self.fd, [into], self.hashed)
                        if not n:
                            raise VerificationFailed(f"{self.path}: short read while hashing")
                        self.md5.update(into[:n])
                    self.hashed += n
            finally:
                self._hashing.release()
            if self.prefix() <= self.hashed:
                return

    def finish(self) -> str:
        """Hash whatever is left (blocking), put the bytes on disk (fsync) and return the md5 of the whole file."""
        self._advance(block=True)
        if self.durable:
            fsync_fd(self.fd)
        return self.md5.hexdigest()


# -- one file -------------------------------------------------------------------------------------------


@dataclass
class Counters:
    """Totals a pull reports, shared by all downloads of one run."""

    bytes: int = 0
    retries: int = 0
    #: Media bytes read from the network: ``bytes`` plus whatever was fetched and not kept (a server
    #: that ignored Range, streams abandoned, bodies fetched again after a failed check).
    received: int = 0
    #: Files Drive gave no md5Checksum for, verified by X-Goog-Hash (md5 or crc32c) instead.
    by_goog_hash: int = 0
    #: Files with no hash at all, verified by their size only.
    size_only: int = 0
    #: Files whose ranged GET was answered with the whole body (200): fetched as one stream instead.
    range_ignored: int = 0
    #: Files that changed on Drive while they downloaded, planned again from Drive's new metadata.
    replanned: int = 0


class _FileState:
    """What the streams of one file share: the first X-Goog-Hash seen, and whether one stream took
    over the whole file because the server ignored Range."""

    def __init__(self):
        self.goog_hash: dict[str, str] = {}
        self.whole_body_owner: object | None = None
        #: Bytes this attempt reported as progress (a resumed partial's included) and added to Counters.bytes.
        self.progressed = 0
        self.counted = 0
        self.resumed = 0


class _Abandoned(Exception):
    """This stream's bytes are coming through another stream that got the whole body."""


class Downloader:
    """Downloads for one run: ``await downloader.fetch(ctx, item, final_path)``."""

    def __init__(self, drive, journal, settings, counters: Counters | None = None):
        self.drive = drive
        self.journal = journal
        self.settings = settings
        self.counters = counters or Counters()
        #: settings.fsync: a file's bytes are on disk before its rename, the rename is before fetch() returns.
        self.durable = settings.fsync
        self.folders = FolderSync(self.durable)
        self.fsyncs = FsyncBatch()

    # A file below this size is fetched in one go and not checkpointed in the journal (cheap to redo).
    @property
    def checkpoint_cutoff(self) -> int:
        return 8 * self.settings.io_buffer

    async def fetch(self, ctx, item, final_path: str) -> str:
        """Download ``item`` (a binary RemoteFile) to ``final_path``; returns 'done'.

        A file that changes on Drive while it downloads (an answer's size or hash is not the listing's, or
        the bytes fail the check and Drive now lists other metadata) is planned once more from Drive's
        current metadata and fetched against that; a second change fails the file with one line."""
        self.journal.check()   # a journal that failed stops the run before the next file
        self.folders.enter()
        try:
            return await self._fetch_changing(ctx, item, final_path)
        finally:
            await self.folders.leave()       # the last one out makes the renames durable

    async def _fetch_changing(self, ctx, item, final_path: str) -> str:
        try:
            return await self._fetch_item(ctx, item, final_path)
        except RemoteChanged as changed:
            fresh = changed.fresh or await self.drive.get(item.id)
            self.counters.retries += 1
            self.counters.replanned += 1
            ctx.emit("retry", f"changed on Drive while downloading ({changed}); fetching its new revision")
        try:
            return await self._fetch_item(ctx, fresh, final_path)
        except RemoteChanged as again:
            raise RemoteChanged(f"changed on Drive again while downloading ({again}); "
                                "pull again once it stops changing") from None

    async def _fetch_item(self, ctx, item, final_path: str) -> str:
        size = item.size or 0
        part = os.path.join(os.path.dirname(final_path), names.partial_name(os.path.basename(final_path), item.id))
        small = 0 < size <= self.settings.io_buffer
        for attempt in (1, 2):
            state = _FileState()
            if small:
                # Fast path for small files: body in memory (bounded by io_buffer), then written, hashed,
                # verified, renamed and recorded on the loop; only the fsync goes to a worker, batched.
                data: list = []     # the body's chunks as aiohttp handed them over (immutable bytes)

                async def keep(pos, pieces, end):
                    n = size_of(pieces)
                    data.extend(pieces)
                    self.counters.bytes += n
                    ctx.progress(n)
                    return pos + n

                try:
                    await self._fetch_range(ctx, item, None, 0, size, False, state, sink=keep)
                except RemoteChanged:
                    got = size_of(data)
                    self._take_back(ctx, got, got)
                    raise
                got = size_of(data)
                want = integrity.expected(size, item.md5, state.goog_hash)
                problem = await self._write_small(ctx, part, final_path, item, data, want)
                if problem is None:
                    self.folders.renamed(os.path.dirname(final_path) or ".")
                    self._count_check(want, item)
                    return "done"
                await self._changed_since(item, problem, lambda: self._take_back(ctx, got, got))
                self._mismatch(ctx, size, problem, attempt)
                continue
            try:
                md5 = await self._fetch_once(ctx, item, size, part, state)
                want = integrity.expected(size, item.md5, state.goog_hash)
                crc = await asyncio.to_thread(integrity.file_crc32c, part) if want.method == integrity.CRC32C else None
            except BaseException as exc:
                if isinstance(exc, RemoteChanged):
                    # Bytes of a revision Drive no longer serves: useless to anyone.
                    self._take_back(ctx, state.progressed, state.counted)
                    await asyncio.to_thread(self._discard, part)
                elif size < self.checkpoint_cutoff:
                    # Not checkpointed, so useless to a later run: leave nothing behind.
                    try:
                        os.unlink(part)
                    except OSError:
                        pass
                raise
            problem = integrity.mismatch(want, size, md5, crc)
            if problem is not None:
                await asyncio.to_thread(self._discard, part)
                await self._changed_since(item, problem, lambda: self._take_back(ctx, size, size - state.resumed))
                self._mismatch(ctx, size, problem, attempt)
                continue
            await asyncio.to_thread(self._finalize, part, final_path, item, md5)
            self.folders.renamed(os.path.dirname(final_path) or ".")
            self._count_check(want, item)
            return "done"
        raise AssertionError("unreachable")

    def _take_back(self, ctx, progressed: int, counted: int) -> None:
        """Take back what an abandoned attempt reported: progress (a resumed part included) and counted bytes."""
        if progressed:
            ctx.progress(-progressed)
        self.counters.bytes -= counted

    async def _changed_since(self, item, problem: str, take_back) -> None:
        """Bytes that failed the check: if Drive now lists other content for the file, it changed while it
        was downloading: raise RemoteChanged (with the new metadata) instead of fetching it again against
        the old md5."""
        fresh = await self.drive.get(item.id)
        if _differs(item, fresh):
            take_back()
            raise RemoteChanged(f"{problem}; Drive now lists {_describe(fresh)}", fresh=fresh)

    # -- internals ------------------------------------------------------------------------------

    def _count_check(self, want: integrity.Expected, item) -> None:
        if item.md5 or not want.size:
            return
        if want.method == integrity.SIZE:
            self.counters.size_only += 1
        else:
            self.counters.by_goog_hash += 1

    def _mismatch(self, ctx, size: int, problem: str, attempt: int) -> None:
        """A download whose bytes fail the check: take them back and allow one more try, then fail."""
        ctx.progress(-size)
        self.counters.bytes -= size
        if attempt > 1:
            raise VerificationFailed(f"{problem}, twice")
        self.counters.retries += 1
        ctx.emit("retry", f"{problem}; downloading again")

    def _open(self, item, size: int, part: str) -> PartialFile:
        """Open the partial file, keeping what an earlier run wrote if the journal vouches for it."""
        done: list = []
        fresh = True
        checkpointed = size >= self.checkpoint_cutoff
        if checkpointed:
            saved = self.journal.partial(part)
            if saved is not None:
                file_id, md5, saved_size, modified, saved_done = saved
                try:
                    on_disk = os.stat(part).st_size
                except FileNotFoundError:
                    on_disk = -1
                if file_id == item.id and md5 == item.md5 and saved_size == size and on_disk == size \
                        and modified == item.modified_time:
                    done, fresh = saved_done, False
            if fresh:
                self.journal.start_partial(part, file_id=item.id, md5=item.md5, size=size,
                                           remote_modified=item.modified_time)
        return PartialFile(part, size, done, fresh=fresh, durable=self.durable)

    async def _write_small(self, ctx, part: str, final_path: str, item, data: list,
                           want: integrity.Expected) -> str | None:
        """Verify a small file's bytes (``data``: its pieces, in order), write them to its partial, fsync
        (batched with other small files'), finalize. On the event loop but for the fsync: no thread hop
        per file. Once written, the bytes are let go and the file slot goes to the next download
        (``ctx.ending``) while the fsync waits for the disk. None when it verified, else what differs."""
        digest = hashlib.md5()
        for piece in data:
            digest.update(piece)
        md5 = digest.hexdigest()
        crc = integrity.crc32c(b"".join(data)) if want.method == integrity.CRC32C else None
        problem = integrity.mismatch(want, size_of(data), md5, crc)
        if problem is not None:
            return problem
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            write_all(fd, data)
            data.clear()                        # in the page cache now: an ending file holds no buffer
            st = _stamp(fd if os.utime in os.supports_fd else part, item)   # before the fsync: durable too
            await ctx.ending()
        except BaseException:
            os.close(fd)
            _unlink_quietly(part)
            raise
        if self.durable:
            try:
                await self.fsyncs.sync(fd)      # closes fd
            except BaseException:
                _unlink_quietly(part)           # cancelled or failed: no partial is left behind
                raise
        else:
            os.close(fd)
        self._place(part, final_path, item, md5, st, discard=True)
        return None

    def _discard(self, part: str) -> None:
        self.journal.forget_partial(part)
        try:
            os.unlink(part)
        except FileNotFoundError:
            pass

    def _finalize(self, part: str, final_path: str, item, md5: str) -> None:
        """A large file's partial, every byte in, verified and synced: stamped, put in place, recorded.
        A folder in the way fails the file and keeps the partial, which the journal still vouches for."""
        self._place(part, final_path, item, md5, _stamp(part, item), discard=False)

    def _place(self, part: str, final_path: str, item, md5: str, st: os.stat_result, *, discard: bool) -> None:
        """Rename the verified partial (``st``: its stat, after _stamp) to ``final_path`` and record it.
        The rename changes neither size nor mtime, so ``st`` is what the journal records, and rename(2)
        itself refuses a folder at the final path (a symlink there is replaced, never written through):
        no stat before or after. ``discard``: a file refused that way leaves no partial behind."""
        if st.st_size != (item.size or 0):
            _unlink_quietly(part)
            self.journal.forget_partial(part)
            raise VerificationFailed(f"size mismatch: {st.st_size} bytes on disk, Drive says {item.size}")
        try:
            os.replace(part, final_path)    # its bytes were synced before (durable); fetch() syncs the folder after
        except OSError:
            if not (os.path.isdir(final_path) and not os.path.islink(final_path)):
                raise
            if discard:
                _unlink_quietly(part)
            raise VerificationFailed(f"a local folder is in the way: {final_path}") from None
        self.journal.record_synced(os.path.abspath(final_path), file_id=item.id, md5=md5, size=st.st_size,
                                   mtime_ns=st.st_mtime_ns, remote_modified=item.modified_time, direction="pull")
        self.journal.forget_partial(part)

    async def _fetch_once(self, ctx, item, size: int, part: str, state: _FileState) -> str:
        pf = await asyncio.to_thread(self._open, item, size, part)
        try:
            already = sum(b - a for a, b in pf.done)
            state.resumed = state.progressed = already
            if already:
                ctx.progress(already)
                ctx.emit("resume", f"{already} bytes already on disk")
            s = self.settings
            multi = size >= s.multistream_cutoff
            ranges = plan_ranges(size, pf.done, s.range_size if multi else max(size, 1),
                                 streams=s.streams_per_file if multi else 1)
            queue: asyncio.Queue = asyncio.Queue()
            for r in ranges:
                queue.put_nowait(r)
            checkpoint = size >= self.checkpoint_cutoff

            async def worker():
                while state.whole_body_owner is None:
                    try:
                        start, end = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    try:
                        await self._fetch_range(ctx, item, pf, start, end, checkpoint, state, queue=queue)
                    except _Abandoned:
                        return

            n = min(s.streams_per_file if multi else 1, len(ranges))
            if n:
                await gather_or_cancel([asyncio.ensure_future(worker()) for _ in range(n)])
            return await asyncio.to_thread(pf.finish)
        except BaseException as exc:
            if not isinstance(exc, RemoteChanged) and not pf.done:
                # Nothing landed, in this run or an earlier one: no empty (or reserved) partial stays behind.
                pf.close()
                self._discard(part)
            raise
        finally:
            pf.close()

    async def _fetch_range(self, ctx, item, pf: PartialFile | None, start: int, end: int, checkpoint: bool,
                           state: _FileState, *, sink=None, queue: asyncio.Queue | None = None) -> None:
        """Bytes [start, end) into the partial file (or ``sink(pos, buf, end) -> new pos``); a cut body
        resumes from the last byte kept.

        A 200 to a ranged GET of a multi-range file means the server ignored Range: this stream takes
        over the whole file (the other streams stop at their next read, the queued ranges are dropped)
        and writes every byte not yet on disk, so the file costs its size once, not once per range."""
        me = object()

        def admit():
            if state.whole_body_owner is not None and state.whole_body_owner is not me:
                raise _Abandoned()

        if sink is None:
            async def sink(pos, pieces, end):
                admit()
                if state.whole_body_owner is me:    # rare (Range ignored): only the bytes not on disk yet
                    buf = memoryview(b"".join(pieces))
                    for a, b in missing_within(pf.done, pos, pos + len(buf)):
                        await self._write(ctx, pf, a, [buf[a - pos:b - pos]], checkpoint, state)
                    return pos + len(buf)
                return await self._write(ctx, pf, pos, pieces, checkpoint, state)

        def judge(response, pos, end):
            seen = integrity.parse_goog_hash(response.headers)
            changed = _answer_differs(item, state.goog_hash, response, seen)
            if changed:
                raise RemoteChanged(changed)
            if response.status != 200:
                range_total(response, pos, end, item.id)
            if not state.goog_hash:
                state.goog_hash = seen
            if response.status != 200:
                return pos, end, 0
            if queue is not None and state.whole_body_owner is None and (pos, end) != (0, item.size):
                # Range ignored: this stream carries the whole file from byte 0.
                state.whole_body_owner = me
                self.counters.range_ignored += 1
                ctx.emit("retry", "the server ignored Range: fetching the file as one stream")
                while not queue.empty():
                    queue.get_nowait()
                return 0, item.size, 0
            admit()
            return pos, end, pos  # drop what comes before our offset

        await read_ranged(ctx, self.drive, item.id, start, end, sink, judge, settings=self.settings,
                          counters=self.counters, admit=admit)

    async def _write(self, ctx, pf: PartialFile, pos: int, pieces: list, checkpoint: bool,
                     state: _FileState) -> int:
        n = size_of(pieces)

        def work():
            pf.write(pos, pieces)
            if checkpoint:
                self.journal.add_done_range(pf.path, pos, pos + n)

        await asyncio.to_thread(work)
        self.counters.bytes += n
        state.progressed += n
        state.counted += n
        ctx.progress(n)
        return pos + n


# -- Docs editor files ------------------------------------------------------------------------------------


class Exporter:
    """Exports a Docs editor file (no ranges, no md5 from Drive: size checked when known, local md5 recorded)."""

    def __init__(self, drive, journal, settings, counters: Counters):
        self.drive = drive
        self.journal = journal
        self.settings = settings
        self.counters = counters
        self.durable = settings.fsync
        self.folders = FolderSync(self.durable)

    async def fetch(self, ctx, item, export_mime: str, final_path: str) -> str:
        self.journal.check()
        part = os.path.join(os.path.dirname(final_path), names.partial_name(os.path.basename(final_path), item.id))
        self.folders.enter()
        try:
            return await self._fetch(ctx, item, export_mime, final_path, part)
        except BaseException:
            try:  # exports are small and never resumed: leave nothing behind
                os.unlink(part)
            except OSError:
                pass
            raise
        finally:
            await self.folders.leave()

    async def _fetch(self, ctx, item, export_mime: str, final_path: str, part: str) -> str:
        for attempt in range(self.settings.max_retries + 1):
            pf = await asyncio.to_thread(PartialFile, part, 0, fresh=True, durable=self.durable)
            pos = 0
            try:
                async with ctx.stream_slot():
                    async with self.drive.export(item.id, export_mime) as response:
                        expected = response.headers.get("Content-Length")
                        buf = bytearray()
                        while True:
                            chunk = await response.content.readany()
                            if not chunk:
                                break
                            await self.drive.t.throttle(len(chunk))
                            buf += chunk
                            if len(buf) >= self.settings.io_buffer:
                                await asyncio.to_thread(pf.write, pos, buf)
                                pos += len(buf)
                                ctx.progress(len(buf))
                                buf = bytearray()
                        if buf:
                            await asyncio.to_thread(pf.write, pos, buf)
                            pos += len(buf)
                            ctx.progress(len(buf))
                md5 = await asyncio.to_thread(pf.finish)
            except TransferInterrupted as exc:
                ctx.progress(-pos)
                self.counters.retries += 1
                if attempt >= self.settings.max_retries:
                    raise
                ctx.emit("retry", f"export cut ({exc}); starting over")
                continue
            finally:
                pf.close()
            if expected is not None and expected.isdigit() and int(expected) != pos:
                await asyncio.to_thread(os.unlink, part)
                raise VerificationFailed(f"export size mismatch: got {pos} bytes, Drive announced {expected}")
            self.counters.bytes += pos
            await asyncio.to_thread(self._finalize, part, final_path, item, md5)
            self.folders.renamed(os.path.dirname(final_path) or ".")
            return "exported"
        raise AssertionError("unreachable")

    def _finalize(self, part: str, final_path: str, item, md5: str) -> None:
        mtime_ns = parse_time_ns(item.modified_time)
        if mtime_ns is not None:
            os.utime(part, ns=(mtime_ns, mtime_ns))
        if os.path.isdir(final_path) and not os.path.islink(final_path):
            os.unlink(part)
            raise VerificationFailed(f"a local folder is in the way: {final_path}")
        os.replace(part, final_path)
        st = os.stat(final_path)
        self.journal.record_synced(os.path.abspath(final_path), file_id=item.id, md5=md5, size=st.st_size,
                                   mtime_ns=st.st_mtime_ns, remote_modified=item.modified_time, direction="pull")
