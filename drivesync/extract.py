"""``pull ARCHIVE DIR --extract``: a zip or tar on Drive extracted into DIR as it downloads, the archive
itself never on disk (unless ``keep_archive``).

zip: the end-of-central-directory record and the central directory come by ranged GETs (archive.py reads
them); the members still to extract are cut into runs of adjacent members (``archive.groups``) and each run
is one ranged GET, run as a job of transfer.Transfers (its file and stream slots, so the memory bound of a
pull holds: a stream holds at most ``io_buffer`` bytes, a member's decoded bytes are written in pieces of at
most ``io_buffer``). A body cut mid-run resumes at the byte it reached (the decoder keeps its state).
A span of at least ``multistream_cutoff`` (one large member, or a whole tar) comes as pieces of 2 * io_buffer
fetched by ``streams_per_file`` streams at once and decoded in order (``read_in_order``); the pieces held wait
for one of ``max_streams`` tokens, so they add at most (max_streams + transfers) * 2 * io_buffer to memory
(both capped at EXTRACT_CONCURRENCY here).
tar, tar.gz, tar.bz2, tar.xz, tar.zst (with the ``zstandard`` extra): one stream, decompressed and extracted
by tarfile on a worker thread as the bytes arrive (a bounded queue between them).

Every member goes to a hidden partial beside its final path and takes its final name only once complete and
verified (zip: its CRC-32 and size; tar: its size), like a pull's files; it is then recorded in the journal,
so a later run skips it (a zip's members are not fetched again; a tar is streamed again, its members skipped).
A hostile member (archive.py's rules) is refused with one line and nothing of it is written. A server that
ignores Range (200 with the whole body) is asked again a few times, then read through to the offset wanted.
Symbolic and hard links that stay inside DIR are made after the files. It never decides what a pull is
(puller.py) and never does HTTP itself (drive.py / transport.py).
"""
from __future__ import annotations

import asyncio
import os
import queue
import shutil
import tarfile
import threading
import time
from dataclasses import dataclass, field

from . import archive, names, shard as shard_
from .archive import BadArchive, Member, MemberDecoder, Refused
from .download import FolderSync, fsync_fd, range_total, read_ranged, size_of, start_writeback
from .errors import UsageError
from .transfer import Event, Job, Transfers, gather_or_cancel

#: A ranged GET answered 200 (Range ignored) is asked again this many times before it is read through.
RANGE_IGNORED_RETRIES = 3
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar.zst", ".tzst")
_ZIP_MIMES = ("application/zip", "application/x-zip-compressed", "application/x-zip")
_TAR_MIMES = ("application/x-tar", "application/gzip", "application/x-gzip", "application/x-gtar",
              "application/x-bzip2", "application/x-xz", "application/zstd")
_GROUP = "\x00group:"

#: --extract runs at most this many transfers and streams, whatever a pull's defaults: the pieces it holds
#: for in-order decoding (2 * io_buffer each) grow with both, and this keeps them within (32 + 32) *
#: 2 * io_buffer = 128 MiB, as before the pull defaults went from 32 to 64 (config.Settings).
EXTRACT_CONCURRENCY = 32


def _transfers(settings) -> int:
    return min(settings.transfers, EXTRACT_CONCURRENCY)


def _streams(settings) -> int:
    return min(settings.max_streams, EXTRACT_CONCURRENCY)


def kind_of(name: str, mime_type: str = "") -> str:
    """'zip' or 'tar' from the archive's name (or, failing that, its MIME type); UsageError otherwise."""
    low = name.lower()
    if low.endswith(".zip"):
        return "zip"
    if low.endswith(_TAR_SUFFIXES):
        return "tar"
    if mime_type in _ZIP_MIMES:
        return "zip"
    if mime_type in _TAR_MIMES:
        return "tar"
    raise UsageError(f"--extract reads zip and tar archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz, "
                     f".tar.zst); {name!r} is none of them")


def default_dir(name: str) -> str:
    """``./data`` for ``data.zip`` or ``data.tar.gz``: where members land without DIR."""
    low = name.lower()
    for suffix in (".zip",) + _TAR_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            return os.path.join(".", names.safe_name(name[:-len(suffix)]))
    return os.path.join(".", names.safe_name(name + ".d"))


@dataclass
class Extracted:
    """What one extraction did (puller.py turns it into a PullResult)."""

    done: int = 0                     # members written and verified this run
    skipped: int = 0                  # already extracted and verified by an earlier run
    refused: list[tuple[str, str]] = field(default_factory=list)   # (member name, one line)
    members: int = 0                  # members in the archive (folders included)
    filtered: int = 0                 # left out by --include/--exclude/--files-from/--min-size...
    extracted_bytes: int = 0          # bytes written to members this run
    archive_bytes: int = 0            # archive bytes fetched (the ones kept to extract from)
    received: int = 0                 # archive bytes read from the network (more when Range was ignored)
    range_ignored: int = 0
    retries: int = 0
    warnings: list[str] = field(default_factory=list)


class _Members:
    """Progress for an extraction: bytes of the archive from the transfer jobs, files counted per member
    (the jobs' own start/done events are not members, so they are not passed on)."""

    def __init__(self, subscribers):
        self.subscribers = list(subscribers)

    def __call__(self, event: Event) -> None:
        if event.path.startswith(_GROUP) and event.kind not in ("bytes", "retry"):
            return
        for s in self.subscribers:
            s(event)


class _Stop(Exception):
    """The tar reader finished before the stream did (end-of-archive marker): stop fetching."""


class Source:
    """Bytes [start, end) of the archive, handed to ``sink`` in pieces of at most ``io_buffer``."""

    async def read(self, ctx, start: int, end: int, sink) -> None:
        raise NotImplementedError

    async def fetch(self, ctx, start: int, end: int) -> bytes:
        """A small range held in memory (the zip's tail and directory)."""
        out = bytearray()

        async def keep(chunk):
            out.extend(chunk)

        await self.read(ctx, start, end, keep)
        return bytes(out)


class RemoteSource(Source):
    def __init__(self, drive, item, settings, stats: Extracted):
        self.drive, self.item, self.settings, self.stats = drive, item, settings, stats

    async def read(self, ctx, start: int, end: int, sink) -> None:
        size = self.item.size or 0
        ignored = 0

        def judge(response, pos, end):
            nonlocal ignored
            if response.status != 200:
                total = range_total(response, pos, end, self.item.id)
                if total is not None and total != size:
                    raise BadArchive(f"the archive changed on Drive while extracting (now {total} "
                                     f"bytes, listed {size}); run again")
                return pos, end, 0
            if pos or end < size:
                ignored += 1
                self.stats.range_ignored += 1
                if ignored <= RANGE_IGNORED_RETRIES:
                    ctx.emit("retry", "the server ignored Range: asking again")
                    return None
                return pos, end, pos     # read through to our offset
            return pos, end, 0

        async def hand_on(pos, pieces, end):
            for piece in pieces:
                await sink(piece)     # a sink uses the bytes before it returns (no copy kept)
            return pos + size_of(pieces)

        await read_ranged(ctx, self.drive, self.item.id, start, end, hand_on, judge, settings=self.settings,
                          counters=self.stats)


class LocalSource(Source):
    """The archive kept on disk (``keep_archive``): the same reads from the file."""

    def __init__(self, path: str, settings):
        self.path, self.settings = path, settings

    async def read(self, ctx, start: int, end: int, sink) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            pos = start
            while pos < end:
                data = await asyncio.to_thread(os.pread, fd, min(self.settings.io_buffer, end - pos), pos)
                if not data:
                    raise BadArchive(f"{self.path} is shorter than Drive says")
                await sink(data)
                pos += len(data)
        finally:
            os.close(fd)


async def read_in_order(source: Source, ctx, start: int, end: int, sink, *, piece: int, streams: int,
                        tokens: asyncio.Semaphore) -> None:
    """Bytes [start, end) fetched as pieces by up to ``streams`` streams at once, handed to ``sink`` in order:
    one large member (or a tar) at the speed of several streams, although it is decoded front to back. A piece
    waits for a token of ``tokens`` (shared by the run) unless it is the next one due, so the bytes held are
    bounded by (tokens + jobs) * piece, and the piece due always goes ahead (no deadlock)."""
    ranges = [(a, min(end, a + piece)) for a in range(start, end, piece)]
    ready: dict[int, tuple[list, bool]] = {}
    state = {"next": 0, "due": 0}
    cond = asyncio.Condition()

    async def worker():
        while True:
            i = state["next"]
            if i >= len(ranges):
                return
            state["next"] += 1
            async with cond:
                await cond.wait_for(lambda: i < state["due"] + streams)
            held = False
            if i != state["due"]:
                await tokens.acquire()
                held = True
            try:
                pieces: list = []   # held as the reader handed them over: views of bytes nothing changes

                async def keep(chunk):
                    pieces.append(chunk)

                await source.read(ctx, *ranges[i], keep)
                async with cond:
                    ready[i] = (pieces, held)
                    held = False
                    cond.notify_all()
            finally:
                if held:
                    tokens.release()

    async def emitter():
        while state["due"] < len(ranges):
            async with cond:
                await cond.wait_for(lambda: state["due"] in ready)
                pieces, held = ready.pop(state["due"])
            try:
                for chunk in pieces:
                    await sink(chunk)
            finally:
                if held:
                    tokens.release()
            async with cond:
                state["due"] += 1
                cond.notify_all()

    tasks = [asyncio.ensure_future(worker()) for _ in range(min(streams, len(ranges)))]
    tasks.append(asyncio.ensure_future(emitter()))
    try:
        await gather_or_cancel(tasks)
    except BaseException:
        for data, held in ready.values():
            if held:
                tokens.release()
        raise


class MemorySource(Source):
    """An archive small enough to have come whole with its tail: its members are read from those bytes."""

    def __init__(self, data: bytes):
        self.data = data

    async def read(self, ctx, start: int, end: int, sink) -> None:
        await sink(self.data[start:end])


class _Ctx:
    """A job context for the reads made before the transfer jobs start (the zip's tail and directory)."""

    def __init__(self, transfers: Transfers):
        self._t = transfers
        self.path = _GROUP + "directory"

    def stream_slot(self):
        return self._t.stream_slot()

    def progress(self, nbytes: int) -> None:
        pass

    def emit(self, kind: str, message: str = "", **kw) -> None:
        self._t.emit(Event(kind, self.path, message=message, **kw))


class Extractor:
    """One archive into one folder: ``await Extractor(...).run()`` -> Extracted."""

    def __init__(self, drive, item, dest: str, journal, settings, *, source: Source | None = None,
                 subscribers=(), progress_factory=None, shard: tuple[int, int] | None = None, filter=None):
        self.drive, self.item, self.dest = drive, item, os.path.abspath(dest)
        self.filter = filter    # filters.Filter: which members (by their path in the archive, size, mtime)
        self.shard = shard      # (rank, world): only this node's share of a zip's members (shard.split)
        self.journal, self.settings = journal, settings
        self.stats = Extracted()
        self.source = source or RemoteSource(drive, item, settings, self.stats)
        self.subscribers = list(subscribers)
        self.progress_factory = progress_factory   # (total_bytes, total_members) -> subscriber with close()
        self.folders = FolderSync(settings.fsync)
        self.durable = settings.fsync
        self._loop: asyncio.AbstractEventLoop | None = None
        self._emit = _Members(self.subscribers)
        self._links: list[tuple[str, list[str], list[str], bool]] = []   # (name, parts, target parts, hard)
        self._tokens: asyncio.Semaphore | None = None
        self._inside: dict[str, bool] = {}       # folder -> inside DIR (names.inside), checked once per run
        self._made: set[str] = set()
        self._records: dict | None = None

    async def _read(self, ctx, start: int, end: int, sink) -> None:
        """A large span (one big member, a tar) through several streams in order; a small one as one stream."""
        s = self.settings
        if end - start >= s.multistream_cutoff and s.streams_per_file > 1:
            if self._tokens is None:
                self._tokens = asyncio.Semaphore(_streams(s))
            await read_in_order(self.source, ctx, start, end, sink, piece=2 * s.io_buffer,
                                streams=s.streams_per_file, tokens=self._tokens)
        else:
            await self.source.read(ctx, start, end, sink)

    async def run(self) -> Extracted:
        self._loop = asyncio.get_running_loop()
        kind = kind_of(self.item.name, self.item.mime_type)
        if kind == "tar" and self.shard is not None:
            raise UsageError("--shard with --extract needs a zip: a tar is one stream, every node would read all of it")
        made = [d for d in _missing_folders(self.dest)]
        os.makedirs(self.dest, exist_ok=True)
        try:
            if kind == "zip":
                await self._zip()
            else:
                await self._tar()
        except BaseException:
            for folder in made:         # an archive refused as a whole leaves no empty DIR behind
                try:
                    os.rmdir(folder)
                except OSError:
                    break
            raise
        return self.stats

    # -- shared --------------------------------------------------------------------------------------

    def _member_event(self, kind: str, name: str, message: str = "", total: int = 0) -> None:
        event = Event(kind, name, total=total, message=message)
        if self._loop is not None and not _in_loop(self._loop):
            self._loop.call_soon_threadsafe(self._emit, event)
        else:
            self._emit(event)

    def _refuse(self, name: str, reason: str) -> None:
        name = _printable(name)       # a name with a newline or a control character stays one line
        self.stats.refused.append((name, reason))
        self._member_event("fail", name, reason)

    def _final(self, parts: list[str]) -> str:
        """The member's path under DIR, refused when its folder leads out of DIR through a symbolic link (the
        member itself is renamed over whatever is at its name, never written through it)."""
        path = os.path.join(self.dest, *parts)
        folder = os.path.dirname(path)
        ok = self._inside.get(folder)
        if ok is None:
            ok = self._inside[folder] = names.inside(self.dest, folder)
        if not ok:
            raise Refused("its path leads out of DIR through a symbolic link")
        return path

    def _folder(self, folder: str) -> None:
        """os.makedirs once per folder of the run."""
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)

    def _wanted(self, name: str, size: int, mtime: float | None) -> bool:
        """The filters let this member through; one they leave out is counted, never fetched or written."""
        if self.filter.wants_file(name.replace("\\", "/").strip("/"), size, mtime):
            return True
        self.stats.filtered += 1
        return False

    def _key(self, tag: str) -> str:
        return f"{tag}:{self.item.id}"

    def _already(self, path: str, key: str, size: int) -> bool:
        """The journal vouches for this member at this path (same archive revision, size and mtime)."""
        if self._records is None:
            self._records = self.journal.synced_under(self.dest)     # one query, not one per member
        record = self._records.get(path)
        if record is None or record.file_id != key or record.remote_modified != self.item.modified_time \
                or record.size != size or record.direction != "extract":
            return False
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return st.st_size == size and st.st_mtime_ns == record.mtime_ns and not os.path.islink(path)

    def _check_space(self, need: int) -> None:
        probe = self.dest
        try:
            free = shutil.disk_usage(probe).free
        except OSError:
            return
        if need > free:
            raise BadArchive(f"extracting needs {need} bytes in {self.dest}, only {free} are free")

    def _place(self, part: str, final: str, key: str, mtime: float | None, mode: int) -> None:
        """A verified partial becomes its final file, recorded in the journal."""
        if mtime is not None:
            try:
                os.utime(part, (mtime, mtime))
            except (OSError, OverflowError, ValueError):
                pass
        if mode & 0o777:
            os.chmod(part, mode & 0o777 & ~0o022 | 0o600)
        if os.path.isdir(final) and not os.path.islink(final):
            raise Refused("a local folder is in the way")
        os.replace(part, final)
        st = os.lstat(final)
        self.journal.record_synced(final, file_id=key, md5=None, size=st.st_size, mtime_ns=st.st_mtime_ns,
                                   remote_modified=self.item.modified_time, direction="extract")

    def _make_links(self, known: dict[tuple, str]) -> None:
        """Links made after the files, each checked again against what is now on disk."""
        self._inside.clear()
        for name, parts, target, hard in self._links:
            try:
                final = self._final(parts)
                self._folder(os.path.dirname(final))
                if hard:
                    source = known.get(tuple(target)) or os.path.join(self.dest, *target)
                    if not os.path.isfile(source) or os.path.islink(source) or not names.inside(self.dest, source):
                        raise Refused("hard link to a file that is not in the archive")
                    if os.path.lexists(final) and os.path.samefile(source, final):
                        self.stats.skipped += 1
                        self._member_event("skip", name)
                        continue
                    part = os.path.join(os.path.dirname(final), names.partial_name(parts[-1], "hardlink"))
                    _unlink(part)
                    os.link(source, part)
                    os.replace(part, final)
                    _unlink(part)       # renaming a link onto another link of the same file leaves both
                else:
                    rel = os.path.relpath(os.path.join(self.dest, *target), os.path.dirname(final))
                    if os.path.islink(final) and os.readlink(final) == rel:
                        self.stats.skipped += 1
                        self._member_event("skip", name)
                        continue
                    if os.path.lexists(final):
                        if os.path.isdir(final) and not os.path.islink(final):
                            raise Refused("a local folder is in the way")
                        os.unlink(final)
                    os.symlink(rel, final)
                self.stats.done += 1
                self._member_event("done", name)
            except Refused as r:
                self._refuse(name, str(r))
            except OSError as exc:
                self._refuse(name, f"could not make the link: {exc.strerror or exc}")

    # -- zip -----------------------------------------------------------------------------------------

    async def _zip(self) -> None:
        size = self.item.size or 0
        s = self.settings
        transfers = Transfers(transfers=_transfers(s), max_streams=_streams(s), subscribers=[self._emit])
        ctx = _Ctx(transfers)
        if size < archive.EOCD.size:
            raise BadArchive(f"{self.item.name} is not a zip archive ({size} bytes)")
        start, end = archive.tail_range(size)
        tail = await self.source.fetch(ctx, start, end)
        if start == 0:
            self.source = MemorySource(tail)       # the whole archive came with its tail: no second fetch
        where = archive.find_directory(tail, start, size)
        if isinstance(where, tuple):
            where = archive.zip64_directory(await self.source.fetch(ctx, *where), where[0], archive_size=size)
        if where.start >= start:
            directory = tail[where.start - start:where.end - start]
        else:
            directory = await self.source.fetch(ctx, where.start, where.end)
        self.stats.archive_bytes += len(tail) + (0 if where.start >= start else len(directory))
        members = archive.parse_directory(directory, where)
        self.stats.members = len(members)

        pending: list[Member] = []
        taken: set[tuple] = set()
        need = accepted = 0
        mine = None
        if self.shard is not None:
            rank, world = self.shard
            keys = [(f"{m.name}\x00{m.index}", m.size) for m in members if not m.is_dir]
            mine = set(shard_.split(keys, world)[rank])
        for m in sorted(members, key=lambda m: m.index):
            if mine is not None and not m.is_dir and f"{m.name}\x00{m.index}" not in mine:
                continue                 # another node's member
            if self.filter is not None and not m.is_dir and not self._wanted(m.name, m.size, m.mtime):
                continue
            try:
                archive.check_member(m)
                parts = archive.safe_parts(m.name)
                if tuple(parts) in taken:
                    raise Refused("another member of the archive has the same path")
                taken.add(tuple(parts))
                final = self._final(parts)
                if m.is_dir:
                    self._folder(final)
                    continue
                if m.is_symlink:
                    m.local, m.parts = final, parts
                    pending.append(m)
                    continue
                accepted += m.size
                if self._already(final, self._key(f"zip{m.crc:08x}"), m.size):
                    self.stats.skipped += 1
                    self._member_event("skip", m.name)
                    continue
                m.local, m.parts = final, parts
                need += m.size
                pending.append(m)
            except Refused as r:
                self._refuse(m.name, str(r))
            except OSError as exc:
                self._refuse(m.name, f"could not create it: {exc.strerror or exc}")
        archive.check_total(accepted, size)     # the members not refused one by one: bounded as a whole
        self._check_space(need)
        total = sum(m.span for m in pending)
        target = min(s.range_size, max(4 * s.io_buffer, -(-total // max(1, _streams(s)))))
        runs = archive.groups(pending, target)
        bars = self.progress_factory(total, len(pending)) if self.progress_factory and runs else None
        if bars is not None:
            self._emit.subscribers.append(bars)
        try:
            jobs = [Job(path=f"{_GROUP}{i}", size=g.size, run=self._group_job(g)) for i, g in enumerate(runs)]
            outcomes = await transfers.run(jobs)
            for g, outcome in zip(runs, outcomes):
                if outcome.result == "fail":
                    reason = str(outcome.error) if outcome.error else "unknown error"
                    for m in g.members:
                        if not m.settled:
                            self._refuse(m.name, f"not extracted: {reason}")
            self._make_links({})
        finally:
            if bars is not None:
                bars.close()

    def _group_job(self, g: archive.Group):
        async def run(ctx) -> str:
            writer = _GroupWriter(self, g)
            self.folders.enter()
            try:
                async def sink(chunk):
                    writer.feed(chunk)
                    if writer.finished:
                        # The endings (fsync above all) overlap the next bytes; one batch at a time per run.
                        if ending[0] is not None:
                            await ending[0]
                        ending[0] = asyncio.ensure_future(asyncio.to_thread(writer.finish, writer.take()))
                    if not isinstance(self.source, MemorySource):   # those bytes were counted with the tail
                        self.stats.archive_bytes += len(chunk)
                    ctx.progress(len(chunk))

                ending: list = [None]
                try:
                    await self._read(ctx, g.start, g.end, sink)
                except BaseException:
                    writer.abort()
                    raise
                finally:
                    # Verified members are whole: they are ended even when the run stops (Ctrl-C included).
                    rest = writer.take()
                    if ending[0] is not None:
                        await asyncio.shield(ending[0])
                    if rest:
                        await asyncio.shield(asyncio.to_thread(writer.finish, rest))
            finally:
                await self.folders.leave()
            return "done"
        return run

    # -- tar -----------------------------------------------------------------------------------------

    async def _tar(self) -> None:
        size = self.item.size or 0
        s = self.settings
        transfers = Transfers(transfers=1, max_streams=_streams(s), subscribers=[self._emit])
        bars = self.progress_factory(size, 0) if self.progress_factory else None
        if bars is not None:
            self._emit.subscribers.append(bars)
        feed = _Feed()
        known: dict[tuple, str] = {}

        async def run(ctx) -> str:
            worker = asyncio.ensure_future(asyncio.to_thread(self._tar_worker, feed, known))

            async def sink(chunk):
                if feed.finished.is_set():
                    raise _Stop()
                try:
                    feed.q.put_nowait(chunk)            # no thread hop while the reader keeps up
                except queue.Full:
                    if not await asyncio.to_thread(feed.put, chunk):
                        raise _Stop()
                self.stats.archive_bytes += len(chunk)
                ctx.progress(len(chunk))

            self.folders.enter()
            try:
                try:
                    await self._read(ctx, 0, size, sink)
                    await asyncio.to_thread(feed.put, None)
                except _Stop:
                    pass
                except BaseException:
                    feed.abort()
                    await asyncio.gather(worker, return_exceptions=True)
                    raise
                await worker
            finally:
                await self.folders.leave()
            return "done"

        try:
            outcome, = await transfers.run([Job(path=f"{_GROUP}tar", size=size, run=run)])
            if outcome.result == "fail":
                error = outcome.error
                if isinstance(error, (BadArchive, UsageError)):
                    raise error
                raise BadArchive(f"could not extract {self.item.name}: {error}")
            self._make_links(known)
        finally:
            if bars is not None:
                bars.close()

    def _tar_worker(self, feed: "_Feed", known: dict) -> None:
        """tarfile over the bytes as they arrive (a worker thread)."""
        size = self.item.size or 0
        head = feed.peek(6)
        try:
            if head.startswith(b"\x28\xb5\x2f\xfd"):
                try:
                    import zstandard
                except ImportError:
                    raise BadArchive("this archive is zstd-compressed: pip install 'drivesync[zst]' "
                                     "(the zstandard package) to extract it") from None
                stream = zstandard.ZstdDecompressor().stream_reader(feed, read_across_frames=True)
                tf = tarfile.open(fileobj=stream, mode="r|", bufsize=self.settings.io_buffer)
            else:
                tf = tarfile.open(fileobj=feed, mode="r|*", bufsize=self.settings.io_buffer)
        except tarfile.TarError as exc:
            feed.abort()
            raise BadArchive(f"{self.item.name} is not a tar archive that can be read ({exc})") from None
        total = 0
        try:
            with tf:
                for ti in _members(tf):
                    self.stats.members += 1
                    try:
                        parts = archive.safe_parts(ti.name)
                        final = self._final(parts)
                        if ti.isdir():
                            self._folder(final)
                        elif ti.isreg():
                            if self.filter is not None and not self._wanted(ti.name, ti.size, ti.mtime):
                                continue
                            archive.check_ratio(ti.size, size)
                            total += ti.size
                            archive.check_total(total, size)
                            self._tar_file(tf, ti, parts, final)
                            known[tuple(parts)] = final
                        elif ti.issym() or ti.islnk():
                            if self.filter is not None and not self._wanted(ti.name, 0, ti.mtime):
                                continue
                            target = archive.link_parts(parts, ti.linkname, hard=ti.islnk())
                            self._links.append((ti.name, parts, target, ti.islnk()))
                        else:
                            raise Refused("not a regular file, folder or link (a device or fifo)")
                    except Refused as r:
                        self._refuse(ti.name, str(r))
                    except OSError as exc:
                        self._refuse(ti.name, f"could not write it: {exc.strerror or exc}")
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            if feed.aborted:
                return
            raise BadArchive(f"{self.item.name}: the tar stream is damaged ({exc})") from None
        finally:
            feed.done()

    def _tar_file(self, tf, ti, parts: list[str], final: str) -> None:
        key = self._key(f"tar{ti.offset}")
        if self._already(final, key, ti.size):
            self.stats.skipped += 1
            self._member_event("skip", ti.name)
            return
        self._folder(os.path.dirname(final))
        part = os.path.join(os.path.dirname(final), names.partial_name(parts[-1], f"t{ti.offset}"))
        src = tf.extractfile(ti)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        written = 0
        try:
            try:
                while True:
                    data = src.read(self.settings.io_buffer)
                    if not data:
                        break
                    _write_all(fd, data)
                    written += len(data)
                if written != ti.size:
                    raise Refused(f"holds {written} bytes but claims {ti.size}")
                if self.durable:
                    fsync_fd(fd)
            finally:
                os.close(fd)
            self._place(part, final, key, ti.mtime, ti.mode or 0o644)
        except BaseException:
            _unlink(part)
            raise
        self.folders.renamed(os.path.dirname(final))
        self.stats.done += 1
        self.stats.extracted_bytes += written
        self._member_event("done", ti.name)


def _members(tf):
    """tarfile's members one by one (stream mode: each one's data is read before the next header)."""
    while True:
        ti = tf.next()
        if ti is None:
            return
        yield ti


def _missing_folders(path: str) -> list[str]:
    """The folders of ``path`` that do not exist yet, deepest first."""
    out = []
    while path and not os.path.lexists(path):
        out.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return out


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _in_loop(loop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _GroupWriter:
    """The members of one run, fed their bytes in order on the event loop: each decoded into its partial and
    verified there (CRC-32, size), then its ending (fsync, rename, journal) done in a worker thread while the
    next member's bytes go on. One thread hop per finished member, not per chunk: hopping per chunk made the
    loop and the workers trade the GIL hundreds of thousands of times (measured: 400k futex calls for 500 MB).
    A refused member's bytes are passed over; the others go on."""

    def __init__(self, ex: Extractor, g: archive.Group):
        self.ex = ex
        self.members = g.members
        self.i = 0
        self.dec: MemberDecoder | None = None
        self.fd: int | None = None
        self.part: str | None = None
        self.link: bytearray | None = None
        self.failed = False
        self.since_writeback = 0
        #: Members decoded and verified, waiting for their ending: (member, fd, partial path).
        self.finished: list[tuple[Member, int, str]] = []

    def feed(self, data) -> None:
        view = memoryview(data)
        while view:
            m = self.members[self.i]
            if self.dec is None:
                self._begin(m)
            n = min(len(view), self.dec.wants)
            piece, view = view[:n], view[n:]
            if self.failed:
                self.dec.taken += n
            else:
                try:
                    for out in self.dec.feed(piece):
                        self._write(out)
                except Refused as r:
                    self._fail(m, str(r))
                except OSError as exc:
                    self._fail(m, f"could not write it: {exc.strerror or exc}")
            if self.dec.wants == 0:
                if not self.failed:
                    self._end(m)
                else:
                    m.settled = True
                self.dec = None
                self.i += 1

    def _begin(self, m: Member) -> None:
        self.dec = MemberDecoder(m, self.ex.settings.io_buffer)
        self.failed = False
        self.link = None
        self.since_writeback = 0
        if m.is_symlink:
            self.link = bytearray()
            return
        try:
            self.ex._folder(os.path.dirname(m.local))
            self.part = os.path.join(os.path.dirname(m.local), names.partial_name(m.parts[-1], f"{m.crc:08x}"))
            self.fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        except Refused as r:
            self._fail(m, str(r))
        except OSError as exc:
            self._fail(m, f"could not create it: {exc.strerror or exc}")

    def _write(self, out: bytes) -> None:
        if self.link is not None:
            self.link += out
            return
        _write_all(self.fd, out)
        self.since_writeback += len(out)
        if self.ex.durable and self.since_writeback >= 4 * 1024 * 1024:
            start_writeback(self.fd, 0, 0)
            self.since_writeback = 0

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _fail(self, m: Member, reason: str) -> None:
        self.failed = True
        self._close()
        if self.part:
            _unlink(self.part)
            self.part = None
        self.ex._refuse(m.name, reason)

    def _end(self, m: Member) -> None:
        try:
            self.dec.finish()
        except Refused as r:
            self._fail(m, str(r))
            m.settled = True
            return
        if self.link is not None:
            try:
                target = archive.link_parts(m.parts, self.link.decode("utf-8", "surrogateescape"))
                self.ex._links.append((m.name, m.parts, target, False))
            except Refused as r:
                self.ex._refuse(m.name, str(r))
            m.settled = True
            return
        self.finished.append((m, self.fd, self.part))   # verified: its ending is finish_all's
        self.fd = self.part = None

    def take(self) -> list:
        batch, self.finished = self.finished, []
        return batch

    def finish(self, batch: list) -> None:
        """The endings of verified members (a worker thread): fsync, close, mtime, rename, journal."""
        for m, fd, part in batch:
            try:
                try:
                    if self.ex.durable:
                        fsync_fd(fd)
                finally:
                    os.close(fd)
                mtime = m.mtime if m.mtime is not None else time.mktime(m.date_time + (0, 0, -1))
                self.ex._place(part, m.local, self.ex._key(f"zip{m.crc:08x}"), mtime, m.mode or 0o644)
            except Refused as r:
                _unlink(part)
                self.ex._refuse(m.name, str(r))
            except (OSError, OverflowError, ValueError) as exc:
                _unlink(part)
                self.ex._refuse(m.name, f"could not write it: {getattr(exc, 'strerror', None) or exc}")
            else:
                self.ex.folders.renamed(os.path.dirname(m.local))
                self.ex.stats.done += 1
                self.ex.stats.extracted_bytes += m.size
                self.ex._member_event("done", m.name, total=m.size)
            finally:
                m.settled = True

    def abort(self) -> None:
        """The run stopped (a failed or cancelled fetch): the member being written leaves nothing behind; the
        verified ones still waiting are ended (they are whole)."""
        self._close()
        if self.part:
            _unlink(self.part)
            self.part = None


class _Feed:
    """Bytes from the event loop to tarfile's thread: a bounded queue (memory stays bounded) read as a file."""

    def __init__(self, depth: int = 8):
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.buf = b""
        self.eof = False
        self.aborted = False
        self.finished = threading.Event()

    def put(self, chunk) -> bool:
        """Blocking (call it in a thread); False once the reader no longer wants bytes."""
        while not self.finished.is_set():
            try:
                self.q.put(chunk, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def abort(self) -> None:
        self.aborted = True
        self.finished.set()
        try:
            self.q.put_nowait(None)
        except queue.Full:
            pass

    def done(self) -> None:
        self.finished.set()

    def _more(self) -> bool:
        if self.eof:
            return False
        while True:
            if self.aborted:
                raise EOFError("the download stopped")
            try:
                chunk = self.q.get(timeout=0.1)
                break
            except queue.Empty:
                continue
        if chunk is None:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def peek(self, n: int) -> bytes:
        while len(self.buf) < n and self._more():
            pass
        return self.buf[:n]

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            while self._more():
                pass
            out, self.buf = self.buf, b""
            return out
        while not self.buf and self._more():
            pass
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def readable(self) -> bool:
        return True


async def extract(drive, item, dest: str, journal, settings, *, keep_archive: str | None = None, counters=None,
                  subscribers=(), progress_factory=None, shard: tuple[int, int] | None = None,
                  filter=None) -> Extracted:
    """Extract the archive ``item`` into ``dest``. ``keep_archive``: a path where the archive is pulled first
    (verified like any pull), then extracted from that file. ``shard``: (rank, world), this node's share of a
    zip's members (split by bytes like a tree's files; WORLD nodes together extract every member once).
    ``filter``: a filters.Filter; only the members it wants (by their path in the archive) are extracted, and
    of a zip only their bytes are fetched."""
    if shard is not None and kind_of(item.name, item.mime_type) == "tar":
        raise UsageError("--shard with --extract needs a zip: a tar is one stream, every node would read all of it")
    source = None
    if keep_archive:
        from .download import Downloader

        downloader = Downloader(drive, journal, settings, counters)
        transfers = Transfers(transfers=1, max_streams=_streams(settings), subscribers=list(subscribers))

        async def pull_it(ctx):
            return await downloader.fetch(ctx, item, keep_archive)

        outcome, = await transfers.run([Job(path=item.name, size=item.size or 0, run=pull_it)])
        if outcome.result == "fail":
            raise outcome.error
        source = LocalSource(keep_archive, settings)
    ex = Extractor(drive, item, dest, journal, settings, source=source, subscribers=subscribers,
                   progress_factory=progress_factory, shard=shard, filter=filter)
    return await ex.run()
