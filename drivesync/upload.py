"""Resumable uploads: a sans-I/O state machine, and the one thin async driver that feeds it.

The rules this module keeps:

1. ``ResumableUpload`` never touches a socket or a file. Each step is a pair: ``prepare_*`` says what
   to send (which bytes, which Content-Range), ``process_*`` takes Drive's answer and moves the state.
   States are explicit: ``initial`` -> ``active`` -> ``finished``; any answer that does not fit the
   protocol (or a request that failed for good) moves it to ``invalid``.
2. ``recover()`` (the ``bytes */total`` status query) is the only way out of ``invalid``: Drive says
   how much it has committed and we continue from there, never from our own count. A session Drive no
   longer knows (404/410) cannot be recovered: the upload starts over with a new session.
3. Request-level retries (5xx, 429/403 rate limits, dropped connections, 401 refresh) live in
   transport.py. This module only reacts to what is left when the transport gives up.
4. Nothing half-written becomes a Drive revision. Drive creates the revision only when the last
   chunk arrives, so before the last chunk is sent the driver checks that the bytes it sent hash to
   the md5 it measured before starting (and that the file's stat did not move). If the file changed
   underneath, the session is abandoned (``FileChanged``) and no revision appears. After the last
   chunk, Drive's md5 must equal ours, or the upload is an error (``VerificationFailed``).
5. The session (URI, size, mtime, md5) is written to the journal as soon as it is opened, so a new
   process resumes it; it is forgotten once the file is verified or when it cannot be resumed.

What it must never do: decide concurrency (transfer.py does), know HTTP library types (transport.py
does), or build Drive URLs (drive.py does).
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Callable

from . import integrity
from .config import UPLOAD_CHUNK_GRANULARITY
from .drive import Drive, RemoteFile
from .errors import BodyAborted, DriveError, DrivesyncError, TransferInterrupted, VerificationFailed
from .state import Journal, UploadSession

log = logging.getLogger("drivesync.upload")

INITIAL, ACTIVE, FINISHED, INVALID = "initial", "active", "finished", "invalid"

_RANGE_RE = re.compile(r"^\s*bytes=(\d+)-(\d+)\s*$")


class ProtocolError(DrivesyncError):
    """Drive's answer does not fit the resumable protocol (the state machine went invalid)."""


class SessionExpired(DrivesyncError):
    """Drive no longer knows the upload session (404/410): the upload must start over."""


class FileChanged(DrivesyncError):
    """The local file changed while it was being uploaded; the partial session was abandoned."""


class Superseded(DrivesyncError):
    """The caller asked to stop (a newer version is complete) before the upload was committed."""


@dataclass(frozen=True)
class ChunkPlan:
    """What to send next: bytes [start, end) of the file, and whether this chunk finishes the upload."""

    start: int
    end: int
    total: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def final(self) -> bool:
        return self.end == self.total

    @property
    def content_range(self) -> str:
        if self.length == 0:
            return f"bytes */{self.total}"
        return f"bytes {self.start}-{self.end - 1}/{self.total}"


def parse_range(value: str | None) -> int:
    """Drive's 308 ``Range: bytes=0-N`` -> bytes committed (N + 1); no header means nothing stored."""
    if not value:
        return 0
    m = _RANGE_RE.match(value)
    if not m or int(m.group(1)) != 0:
        raise ProtocolError(f"unexpected Range header in an upload status: {value!r}")
    return int(m.group(2)) + 1


class ResumableUpload:
    """The resumable-upload protocol for one session, as data. No I/O.

    ``total`` is the file size (known up front: every chunk carries it), ``chunk_size`` a multiple of
    256 KiB. ``offset`` is what Drive has committed, as far as Drive last told us.
    """

    def __init__(self, total: int, chunk_size: int, session_uri: str | None = None):
        if total < 0:
            raise ValueError("total must be >= 0")
        if chunk_size <= 0 or chunk_size % UPLOAD_CHUNK_GRANULARITY:
            raise ValueError("chunk size must be a positive multiple of 256 KiB")
        self.total = total
        self.chunk_size = chunk_size
        self.session_uri = session_uri
        self.offset = 0
        self.result: dict | None = None
        self.invalid_reason = ""
        self._in_flight: ChunkPlan | None = None
        # A session restored from the journal must be asked where it stands before sending anything.
        self.state = INVALID if session_uri else INITIAL
        if session_uri:
            self.invalid_reason = "restored session: committed offset unknown"

    # -- opening the session ---------------------------------------------------------------------

    def process_initiate(self, status: int, headers) -> None:
        self._expect(INITIAL)
        location = headers.get("Location") if headers is not None else None
        if status != 200 or not location:
            self._invalidate(f"session start answered {status} without a Location")
            raise ProtocolError(self.invalid_reason)
        self.session_uri = location
        self.offset = 0
        self.state = ACTIVE

    # -- chunks ----------------------------------------------------------------------------------

    def prepare_chunk(self) -> ChunkPlan:
        self._expect(ACTIVE)
        if self._in_flight is not None:
            raise ProtocolError("a chunk is already in flight")
        end = min(self.offset + self.chunk_size, self.total)
        plan = ChunkPlan(self.offset, end, self.total)
        self._in_flight = plan
        return plan

    def process_chunk(self, status: int, headers, body: dict | None = None) -> None:
        plan = self._in_flight
        self._expect(ACTIVE)
        if plan is None:
            raise ProtocolError("no chunk in flight")
        self._in_flight = None
        if status in (200, 201):
            if not plan.final:
                self._invalidate(f"Drive finished the upload after byte {plan.end} of {self.total}")
                return
            self.offset = self.total
            self.result = body or {}
            self.state = FINISHED
            return
        if status == 308:
            try:
                committed = parse_range(headers.get("Range") if headers is not None else None)
            except ProtocolError as exc:
                self._invalidate(str(exc))
                return
            if committed > plan.end:
                self._invalidate(f"Drive committed {committed} bytes but only {plan.end} were sent")
                return
            # Never trust our own count: resume from what Drive says it has (it may be less).
            self.offset = committed
            if plan.final and committed == self.total:
                # All bytes are stored but the file was not returned: ask for it.
                self._invalidate("all bytes committed but no file returned")
            return
        self._invalidate(f"chunk answered {status}")

    def fail(self, reason: str) -> None:
        """The driver's request failed for good (transport gave up, or the body was cut)."""
        self._in_flight = None
        if self.state in (ACTIVE, INVALID):
            self._invalidate(reason)

    # -- recovery: the only way out of invalid -----------------------------------------------------

    def prepare_recover(self) -> ChunkPlan:
        """The status query: an empty PUT with ``Content-Range: bytes */total``."""
        if self.state != INVALID or not self.session_uri:
            raise ProtocolError(f"recover() needs an invalid upload with a session, state is {self.state}")
        return ChunkPlan(self.total, self.total, self.total)

    def process_recover(self, status: int, headers, body: dict | None = None) -> None:
        if self.state != INVALID:
            raise ProtocolError(f"recover answer in state {self.state}")
        if status in (404, 410):
            self.session_uri = None
            raise SessionExpired("the upload session expired; starting over")
        if status in (200, 201):
            self.offset = self.total
            self.result = body or {}
            self.state = FINISHED
            return
        if status == 308:
            committed = parse_range(headers.get("Range") if headers is not None else None)
            if committed > self.total:
                raise ProtocolError(f"Drive reports {committed} bytes committed of {self.total}")
            self.offset = committed
            self.invalid_reason = ""
            self.state = ACTIVE
            return
        raise ProtocolError(f"upload status query answered {status}")

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state == FINISHED

    @property
    def invalid(self) -> bool:
        return self.state == INVALID

    def _invalidate(self, reason: str) -> None:
        self.state = INVALID
        self.invalid_reason = reason

    def _expect(self, state: str) -> None:
        if self.state != state:
            raise ProtocolError(f"upload is {self.state}"
                                + (f" ({self.invalid_reason})" if self.invalid_reason else "")
                                + f", expected {state}")


# ------------------------------------------------------------------------------------------------
# The driver: file reads, the journal and drive.py calls around the state machine.
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalStat:
    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int

    @classmethod
    def of(cls, path: str) -> "LocalStat":
        st = os.stat(path)
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def file_md5(path: str, *, block: int = 4 * 1024 * 1024, fd: int | None = None) -> str:
    """md5 of a whole file (blocking: call through asyncio.to_thread)."""
    h = hashlib.md5()
    own = fd is None
    if own:
        fd = os.open(path, os.O_RDONLY)
    try:
        offset = 0
        while True:
            data = os.pread(fd, block, offset)
            if not data:
                break
            h.update(data)
            offset += len(data)
    finally:
        if own:
            os.close(fd)
    return h.hexdigest()


def _read_at(fd: int, length: int, offset: int) -> bytes:
    parts = []
    while length > 0:
        data = os.pread(fd, length, offset)
        if not data:
            break
        parts.append(data)
        length -= len(data)
        offset += len(data)
    return b"".join(parts)


#: A resumable chunk is read from its file (and hashed) this many bytes at a time while it is sent, the
#: next piece while the one before goes out: an upload holds two pieces, never its chunk, so the chunk
#: size costs no memory and no pause to read it between chunks.
READ_PIECE = 1024 * 1024


def _read_hashed(fd: int, length: int, offset: int, hasher) -> bytes:
    data = _read_at(fd, length, offset)
    hasher.update(data)
    return data


class _FileChunk:
    """Bytes [start, start + length) of an open file as a request body (transport.StreamedBody), read and
    hashed piece by piece as they go out. Every try starts from a copy of ``base``, the md5 of the bytes
    before ``start``; ``hasher`` is that running md5 once a try has read to the end (None before).

    ``before_last`` (the final chunk only) is called with the md5 of the whole file once every byte has
    been read, before the last piece is sent, and returns why the upload must not be committed, or None.
    A file that ends early stops the body the same way. Drive commits a revision only when the last byte
    arrives, so a body stopped there leaves nothing on Drive."""

    def __init__(self, fd: int, start: int, length: int, base, before_last: Callable[[str], str | None] | None):
        self._fd, self._start, self._length, self._base = fd, start, length, base
        self._before_last = before_last
        self.hasher = None
        self.aborted: str | None = None

    def __len__(self) -> int:
        return self._length

    def _stop(self, why: str):
        self.aborted = why
        return BodyAborted(why)

    async def pieces(self):
        self.aborted = None
        hasher = self._base.copy()
        offset, end = self._start, self._start + self._length

        def read_next():
            return asyncio.ensure_future(asyncio.to_thread(_read_hashed, self._fd, min(READ_PIECE, end - offset),
                                                           offset, hasher))

        pending = read_next() if self._length else None
        try:
            while pending is not None:
                piece = await pending
                pending = None
                if not piece:
                    raise self._stop("shrank while it was uploaded")
                offset += len(piece)
                if offset < end:
                    pending = read_next()
                elif self._before_last is not None:
                    why = self._before_last(hasher.hexdigest())
                    if why:
                        raise self._stop(why)
                yield piece
            self.hasher = hasher
        finally:
            if pending is not None:
                pending.cancel()    # a try that ended early: its reads feed only its own hasher


def _hash_prefix(fd: int, length: int, block: int = 4 * 1024 * 1024):
    h = hashlib.md5()
    offset = 0
    while offset < length:
        data = os.pread(fd, min(block, length - offset), offset)
        if not data:
            break
        h.update(data)
        offset += len(data)
    return h, offset


@dataclass
class UploadStats:
    """What one upload sent, for tests and benchmarks."""

    bytes_sent: int = 0
    resumed_from: int = 0
    sessions_started: int = 0
    recoveries: int = 0
    #: Uploads sent a second time because Drive's copy did not match.
    resent: int = 0
    #: How Drive's copy was checked: 'md5Checksum', 'X-Goog-Hash' or 'size' (no checksum at all).
    verified_by: str = ""
    #: The md5 of the bytes that went up (the local file's), known once the upload verified.
    md5: str = ""


@dataclass
class UploadTarget:
    """Where the content goes: a new file (name + parent) or a new revision of ``file_id``."""

    name: str
    parent_id: str | None = None
    file_id: str | None = None
    mime_type: str = "application/octet-stream"
    modified_time: str | None = None

    def metadata(self) -> dict:
        meta: dict = {}
        if self.file_id is None:
            meta["name"] = self.name
            if self.parent_id:
                meta["parents"] = [self.parent_id]
        if self.modified_time:
            meta["modifiedTime"] = self.modified_time
        return meta


def rfc3339(mtime_ns: int) -> str:
    t = time.gmtime(mtime_ns // 1_000_000_000)
    ms = (mtime_ns // 1_000_000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms:03d}Z"


async def upload_file(drive: Drive, local_path: str, target: UploadTarget, *, journal: Journal | None = None,
                      chunk_size: int | None = None, cutoff: int | None = None, md5: str | None = None,
                      progress: Callable[[int], None] | None = None,
                      stats: UploadStats | None = None, abandon: Callable[[], bool] | None = None) -> RemoteFile:
    """Upload one local file to Drive and verify it; returns the Drive file.

    Small files go up in one multipart request, larger ones as a resumable session that survives
    process death (through ``journal``). ``md5`` may be passed when the caller already hashed the file
    at its current stat. ``abandon()`` is asked before each request that sends content: True stops
    the upload at that boundary with Superseded (never in the middle of a commit, so the caller's view
    of Drive stays exact; cancelling the task instead could leave a created file it does not know of).
    Raises FileChanged if the file changed while it was read, VerificationFailed
    if Drive's md5 differs from ours, DriveError/TransferInterrupted when Drive cannot be reached.
    """
    settings = drive.settings
    chunk_size = chunk_size or settings.upload_chunk_size
    cutoff = settings.upload_cutoff if cutoff is None else cutoff
    stats = stats if stats is not None else UploadStats()
    local_path = os.path.abspath(local_path)
    before = LocalStat.of(local_path)
    if target.modified_time is None:
        target.modified_time = rfc3339(before.mtime_ns)
    abandon = abandon or (lambda: False)
    created = target.file_id is None
    for attempt in (1, 2):
        try:
            if before.size <= cutoff:
                return await _upload_small(drive, local_path, target, before, progress, stats, abandon)
            return await _upload_resumable(drive, local_path, target, before, journal=journal,
                                           chunk_size=chunk_size, md5=md5, progress=progress, stats=stats,
                                           abandon=abandon)
        except DriveHoldsOtherBytes as exc:
            if attempt == 1:
                # Send the bytes once more, as a new revision of the same file (never a second file).
                log.warning("%s; sending it once more", exc)
                stats.resent += 1
                target = dataclasses.replace(target, file_id=exc.remote.id)
                continue
            if created:
                # Nothing wrong stays on Drive: the file we made holds bytes that are not ours.
                await drive.delete(exc.remote.id)
                raise VerificationFailed(f"{exc}, twice; the new Drive file was removed again") from None
            raise VerificationFailed(
                f"{exc}, twice: Drive's current version of {target.name or local_path} (id:{exc.remote.id}) is BAD; "
                "push the file again, or restore its previous version in Drive's web UI (Manage versions)") from None
    raise AssertionError("unreachable")


class DriveHoldsOtherBytes(VerificationFailed):
    """Drive's copy (``remote``) of an upload does not match the local file."""

    def __init__(self, message: str, remote: RemoteFile):
        super().__init__(message)
        self.remote = remote


async def _upload_small(drive: Drive, path: str, target: UploadTarget, before: LocalStat, progress, stats,
                        abandon) -> RemoteFile:
    def read() -> bytes:
        with open(path, "rb") as fh:
            return fh.read()

    content = await asyncio.to_thread(read)
    after = LocalStat.of(path)
    if after != before or len(content) != before.size:
        raise FileChanged(f"{path} changed while it was read; it will be uploaded once it settles")
    local_md5 = hashlib.md5(content).hexdigest()
    if abandon():
        raise Superseded(f"{path}: superseded before upload")
    remote = await drive.upload_multipart(target.metadata(), content, file_id=target.file_id,
                                          mime_type=target.mime_type)
    stats.bytes_sent += len(content)
    if progress:
        progress(len(content))
    return await _check(drive, path, remote, before.size, local_md5, stats)


async def _upload_resumable(drive: Drive, path: str, target: UploadTarget, before: LocalStat, *,
                            journal: Journal | None, chunk_size: int, md5: str | None, progress,
                            stats: UploadStats, abandon) -> RemoteFile:
    fd = os.open(path, os.O_RDONLY)
    try:
        # A new session needs no hash up front: the running md5 of the bytes sent is the file's md5, as
        # the file's stat (size, mtime, inode, ctime: any write moves ctime) is checked to be the same
        # before the last chunk as before the first. One read and one hash of the file, not two. A session
        # resumed from the journal hashes the file first, to know it is the one the session began with.
        known_md5 = md5
        if known_md5 is None and journal is not None and journal.upload_session(path) is not None:
            known_md5 = await asyncio.to_thread(file_md5, path, fd=fd)
            if LocalStat.of(path) != before:
                raise FileChanged(f"{path} changed while it was hashed; it will be uploaded once it settles")
        restarts = 0
        while True:
            try:
                return await _run_session(drive, path, fd, target, before, known_md5, journal=journal,
                                          chunk_size=chunk_size, progress=progress, stats=stats, abandon=abandon)
            except SessionExpired:
                restarts += 1
                if journal:
                    journal.forget_upload_session(path)
                if restarts > 3:
                    raise
                log.info("%s: upload session expired, starting over", path)
    finally:
        os.close(fd)


async def _run_session(drive: Drive, path: str, fd: int, target: UploadTarget, before: LocalStat,
                       known_md5: str | None, *, journal: Journal | None, chunk_size: int, progress,
                       stats: UploadStats, abandon=lambda: False) -> RemoteFile:
    size = before.size
    md5 = known_md5 or ""      # "": the md5 of what is sent, known at the last chunk
    saved = journal.upload_session(path) if journal else None
    if saved is not None and not (saved.size == size and saved.mtime_ns == before.mtime_ns
                                  and (saved.md5 == md5 or not saved.md5)
                                  and saved.file_id == target.file_id
                                  and (target.file_id or (saved.parent_id == target.parent_id
                                                          and saved.name == target.name))):
        log.info("%s: changed since its upload session was opened; starting over", path)
        journal.forget_upload_session(path)
        saved = None
    if saved is not None:
        upload = ResumableUpload(size, chunk_size, session_uri=saved.session_uri)
        session = saved
    else:
        upload = ResumableUpload(size, chunk_size)
        uri = await drive.start_resumable(target.metadata(), size, file_id=target.file_id,
                                          mime_type=target.mime_type)
        upload.process_initiate(200, {"Location": uri})
        stats.sessions_started += 1
        session = UploadSession(path, uri, target.file_id, target.parent_id, target.name, size, before.mtime_ns,
                                md5, time.time())
        if journal:
            journal.save_upload_session(session)
    sent_md5 = None     # md5 of bytes [0, hashed_to) as they were sent
    hashed_to = 0
    recoveries = 0
    first = True
    last_headers = None
    while not upload.finished:
        if upload.invalid:
            recoveries += 1
            stats.recoveries += 1
            if recoveries > max(3, drive.settings.max_retries):
                raise TransferInterrupted(f"{path}: upload kept failing ({upload.invalid_reason})")
            upload.prepare_recover()
            try:
                reply = await drive.query_session(upload.session_uri, size)
                last_headers = reply.headers
                upload.process_recover(reply.status, reply.headers, _json_or_none(reply))
            except DriveError as exc:
                if exc.status in (404, 410):
                    upload.process_recover(exc.status, {})
                raise
            if first:
                stats.resumed_from = upload.offset
                if progress and upload.offset:
                    progress(upload.offset)
                first = False
            continue
        first = False
        if abandon():
            if journal:
                journal.forget_upload_session(path)
            raise Superseded(f"{path}: a newer version is complete; this upload was abandoned")
        plan = upload.prepare_chunk()
        if sent_md5 is None or plan.start != hashed_to:
            # (Re)build the running hash of what Drive holds: bytes [0, start) of the local file.
            sent_md5, hashed_to = await asyncio.to_thread(_hash_prefix, fd, plan.start)
            if hashed_to != plan.start:
                raise FileChanged(f"{path} shrank while it was uploaded")

        def before_commit(whole_md5: str) -> str | None:
            # Last line of defence against a revision that mixes two versions: what is about to be
            # committed must be exactly the file we hashed, and the file must not have moved since.
            if (md5 and whole_md5 != md5) or LocalStat.of(path) != before:
                return "changed while it was uploaded"
            return None

        chunk = _FileChunk(fd, plan.start, plan.length, sent_md5, before_commit if plan.final else None)
        try:
            reply = await drive.send_chunk(upload.session_uri, plan.start, chunk, size)
            last_headers = reply.headers
        except BodyAborted as exc:
            upload.fail(str(exc))
            if journal:
                journal.forget_upload_session(path)
            raise FileChanged(f"{path} {exc}; the partial upload was abandoned") from None
        except (DriveError, TransferInterrupted) as exc:
            upload.fail(str(exc))
            if isinstance(exc, DriveError) and exc.status in (404, 410):
                upload.process_recover(exc.status, {})   # raises SessionExpired
            continue
        if chunk.hasher is None:        # answered before the body was read to its end
            upload.fail("the chunk was answered before it was sent whole")
            continue
        stats.bytes_sent += plan.length
        upload.process_chunk(reply.status, reply.headers, _json_or_none(reply) if reply.status != 308 else None)
        if upload.offset == plan.end:
            sent_md5, hashed_to = chunk.hasher, plan.end
        if plan.final:
            md5 = md5 or chunk.hasher.hexdigest()
        if progress:
            progress(max(0, upload.offset - plan.start))
    if journal:
        journal.forget_upload_session(path)
    remote = RemoteFile.from_json(upload.result or {}, last_headers)
    return await _check(drive, path, remote, size, md5, stats)


def _json_or_none(reply):
    try:
        return reply.json()
    except ValueError:
        return None


async def _check(drive: Drive, path: str, remote: RemoteFile, size: int, md5: str, stats) -> RemoteFile:
    """Drive's copy against the local file, by integrity's one rule (md5Checksum, else X-Goog-Hash,
    else the size alone, counted in ``stats.verified_by``). An answer without md5 or size is asked
    once more with files.get before the rule is applied."""
    if (remote.md5 is None or remote.size is None) and remote.id:
        again = await drive.get(remote.id)
        remote = dataclasses.replace(again, hashes=again.hashes or remote.hashes)
    if remote.size is not None and remote.size != size:
        raise DriveHoldsOtherBytes(f"{path}: Drive holds {remote.size} bytes, the local file has {size}", remote)
    want = integrity.expected(size, remote.md5, remote.hashes)
    if want.method == integrity.SIZE and remote.size is None:
        raise VerificationFailed(f"{path}: Drive reported neither a size nor a checksum for the upload")
    crc = await asyncio.to_thread(integrity.file_crc32c, path) if want.method == integrity.CRC32C else None
    problem = integrity.mismatch(want, size, md5, crc)
    if problem is not None:
        raise DriveHoldsOtherBytes(f"{path}: Drive's copy differs from the local file: {problem}", remote)
    if stats is not None:
        stats.md5 = md5
        stats.verified_by = ("md5Checksum" if remote.md5 else "size" if want.method == integrity.SIZE
                             else "X-Goog-Hash")
    return remote

