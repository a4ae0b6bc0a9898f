"""Archives read without I/O: a zip's end-of-central-directory record (zip64 too), its central directory and
local headers, a member's bytes decoded and checked (stored, deflate, bzip2; CRC-32 and size), and the rules
that refuse a hostile member of any archive (zip or tar) before a byte of it is written.

The rules, one refusal line per member:
- a name that leaves DIR: absolute (``/x``, ``C:x``), or with a ``..`` part; backslashes count as ``/``
  (as ``unzip`` reads them);
- a name unsafe locally: a part that names.safe_name would change (NUL, more than 255 bytes, our partial suffix);
- a symbolic or hard link whose target leaves DIR (absolute, or ``..`` above DIR's top);
- a member that holds more or fewer bytes than it claims, or whose CRC-32 is not the one it claims;
- a zip bomb: a member that expands more than MAX_RATIO times (above RATIO_FLOOR bytes), or an archive whose
  members add up to more than MAX_TOTAL bytes (or more than MAX_RATIO times the archive's size);
- encrypted members, compression methods other than stored/deflate/bzip2, members that overlap another.
It is pure: the driver (extract.py) fetches the bytes this module asks for.
"""
from __future__ import annotations

import bz2
import re
import stat
import struct
import zlib
from dataclasses import dataclass, field
from typing import Iterator

from . import names
from .errors import DrivesyncError

#: A member may expand at most this many times its compressed size (zip) or the archive's size (tar) ...
MAX_RATIO = 200
#: ... unless it is at most this large (a small file of zeros is not a bomb).
RATIO_FLOOR = 1024 * 1024
#: No archive extracts to more than this in all (1 TiB), whatever its ratio.
MAX_TOTAL = 1024 ** 4
#: The central directory is held in memory to plan the fetches: refused above this (about 3 million members).
MAX_DIRECTORY = 256 * 1024 * 1024
#: A symbolic link's target is held in memory: at most this many bytes.
MAX_LINK = 4096

EOCD = struct.Struct("<4s4H2LH")          # signature, disk, cd disk, entries here, entries, cd size, cd offset, comment
ZIP64_LOCATOR = struct.Struct("<4sLQL")   # signature, disk, zip64 eocd offset, disks
ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")  # signature, size, versions, disks, entries here, entries, cd size, offset
CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
LOCAL = struct.Struct("<4s2B4HL2L2H")
EOCD_SIG, LOCATOR_SIG, ZIP64_SIG = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
CENTRAL_SIG, LOCAL_SIG = b"PK\x01\x02", b"PK\x03\x04"
#: The tail fetched first: the EOCD with the longest comment, the zip64 locator and record before it.
TAIL = EOCD.size + 0xFFFF + ZIP64_LOCATOR.size + ZIP64_EOCD.size
STORED, DEFLATED, BZIP2 = 0, 8, 12
METHODS = {STORED: "stored", DEFLATED: "deflate", BZIP2: "bzip2"}


class BadArchive(DrivesyncError):
    """The archive as a whole cannot be read (not a zip, truncated, split, too large a directory)."""


class Refused(Exception):
    """One member is refused; the message is its one line."""


@dataclass
class Directory:
    """Where the central directory is: [start, end) absolute, ``count`` entries, ``base`` added to every
    offset (bytes prepended to the zip, as in a self-extracting archive)."""

    start: int
    end: int
    count: int
    base: int


@dataclass
class Member:
    index: int
    name: str
    method: int
    flags: int
    crc: int
    csize: int
    size: int
    offset: int              # absolute offset of its local header
    mode: int = 0            # unix mode bits when the archive was made on unix, else 0
    date_time: tuple = (1980, 1, 1, 0, 0, 0)
    mtime: int | None = None  # from Info-ZIP's extended timestamp (UT) field: exact, UTC (else date_time, local)
    raw_name_len: int = 0
    span_end: int = 0        # where the next member (or the central directory) starts
    problem: str | None = None
    # Set by the driver: where it goes, its path parts under DIR, and whether its outcome is known.
    local: str = ""
    parts: list = field(default_factory=list)
    settled: bool = False

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/") or (self.mode and stat.S_ISDIR(self.mode))

    @property
    def is_symlink(self) -> bool:
        return bool(self.mode) and stat.S_ISLNK(self.mode)

    @property
    def span(self) -> int:
        return self.span_end - self.offset


# -- the directory --------------------------------------------------------------------------------


def tail_range(archive_size: int) -> tuple[int, int]:
    """The [start, end) bytes to fetch first."""
    return max(0, archive_size - TAIL), archive_size


def find_directory(tail: bytes, tail_start: int, archive_size: int) -> Directory | tuple[int, int]:
    """The central directory's place, from the archive's last bytes; or the [start, end) range of the zip64
    end record when it lies before ``tail`` (fetch it and call ``zip64_directory``)."""
    at = _eocd_at(tail)
    sig, disk, cd_disk, here, count, cd_size, cd_offset, _ = EOCD.unpack_from(tail, at)
    eocd_abs = tail_start + at
    loc_at = at - ZIP64_LOCATOR.size
    if loc_at >= 0 and tail[loc_at:loc_at + 4] == LOCATOR_SIG:
        _, _, z64_offset, _ = ZIP64_LOCATOR.unpack_from(tail, loc_at)
        # Where the record is by the locator, and where it must be (just before the locator), with a prefix.
        record_abs = eocd_abs - ZIP64_LOCATOR.size - ZIP64_EOCD.size
        if record_abs < 0:
            raise BadArchive("not a zip archive: its zip64 end record would start before the file")
        if record_abs >= tail_start:
            return zip64_directory(tail[record_abs - tail_start:record_abs - tail_start + ZIP64_EOCD.size],
                                   record_abs, record_abs - z64_offset)
        return record_abs, record_abs + ZIP64_EOCD.size
    if disk or cd_disk or here != count:
        raise BadArchive("split or spanned zip archives are not supported")
    base = eocd_abs - cd_size - cd_offset
    if base < 0:
        raise BadArchive("not a zip archive: its central directory would start before the file")
    return _checked(Directory(cd_offset + base, cd_offset + base + cd_size, count, base), archive_size)


def zip64_directory(record: bytes, record_abs: int, base: int | None = None, archive_size: int | None = None
                    ) -> Directory:
    if len(record) < ZIP64_EOCD.size or record[:4] != ZIP64_SIG:
        raise BadArchive("not a zip archive: its zip64 end record is missing")
    _, _, _, _, disk, cd_disk, here, count, cd_size, cd_offset = ZIP64_EOCD.unpack_from(record)
    if disk or cd_disk or here != count:
        raise BadArchive("split or spanned zip archives are not supported")
    base = record_abs - cd_size - cd_offset if base is None else base
    if base < 0:
        raise BadArchive("not a zip archive: its central directory would start before the file")
    return _checked(Directory(cd_offset + base, cd_offset + base + cd_size, count, base),
                    archive_size or record_abs + ZIP64_EOCD.size)


def _checked(d: Directory, archive_size: int) -> Directory:
    if d.end > archive_size or d.start > d.end:
        raise BadArchive("not a zip archive: its central directory lies outside the file")
    if d.end - d.start > MAX_DIRECTORY:
        raise BadArchive(f"the zip's central directory is {d.end - d.start} bytes, more than this client holds "
                         f"({MAX_DIRECTORY} bytes)")
    return d


def _eocd_at(tail: bytes) -> int:
    at = len(tail)
    while True:
        at = tail.rfind(EOCD_SIG, 0, at)
        if at < 0 or len(tail) - at < EOCD.size:
            if at < 0:
                raise BadArchive("not a zip archive (no end-of-central-directory record)")
            continue
        comment = struct.unpack_from("<H", tail, at + 20)[0]
        if at + EOCD.size + comment <= len(tail):
            return at


def parse_directory(data: bytes, d: Directory) -> list[Member]:
    """The central directory's entries as members, each with its span (``problem`` set on the bad ones)."""
    members: list[Member] = []
    pos = 0
    for index in range(d.count):
        if pos + CENTRAL.size > len(data) or data[pos:pos + 4] != CENTRAL_SIG:
            raise BadArchive(f"the zip's central directory is damaged at entry {index}")
        (_, _, system, _, _, flags, method, dtime, ddate, crc, csize, size, n_name, n_extra, n_comment, _, _,
         external, offset) = CENTRAL.unpack_from(data, pos)
        pos += CENTRAL.size
        raw = data[pos:pos + n_name]
        extra = data[pos + n_name:pos + n_name + n_extra]
        pos += n_name + n_extra + n_comment
        if pos > len(data):
            raise BadArchive(f"the zip's central directory is damaged at entry {index}")
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        size, csize, offset = _zip64_extra(extra, size, csize, offset)
        mode = (external >> 16) if system == 3 else 0
        m = Member(index, name, method, flags, crc, csize, size, offset + d.base, mode=mode,
                   date_time=_dos_time(ddate, dtime), raw_name_len=n_name, mtime=_unix_mtime(extra))
        members.append(m)
    _spans(members, d.start)
    return members


def _zip64_extra(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, n = struct.unpack_from("<2H", extra, pos)
        body = extra[pos + 4:pos + 4 + n]
        if tag == 1:
            values, at = [], 0
            for current in (size, csize, offset):
                if current == 0xFFFFFFFF and at + 8 <= len(body):
                    values.append(struct.unpack_from("<Q", body, at)[0])
                    at += 8
                else:
                    values.append(current)
            return values[0], values[1], values[2]
        pos += 4 + n
    return size, csize, offset


def _unix_mtime(extra: bytes) -> int | None:
    pos = 0
    while pos + 4 <= len(extra):
        tag, n = struct.unpack_from("<2H", extra, pos)
        if tag == 0x5455 and n >= 5 and extra[pos + 4] & 1:
            return struct.unpack_from("<l", extra, pos + 5)[0]
        pos += 4 + n
    return None


def _dos_time(d: int, t: int) -> tuple:
    return ((d >> 9) + 1980, max(1, (d >> 5) & 0xF), max(1, d & 0x1F), t >> 11, (t >> 5) & 0x3F, min(59, (t & 0x1F) * 2))


def _spans(members: list[Member], directory_start: int) -> None:
    """Each member's bytes run from its local header to the next member's (or the directory). Two entries
    on one local header, or one whose data cannot fit before the next, overlap: refused (a bomb's trick)."""
    order = sorted(members, key=lambda m: (m.offset, m.index))
    for i, m in enumerate(order):
        nxt = next((o.offset for o in order[i + 1:] if o.offset > m.offset), directory_start)
        m.span_end = nxt
        if i and order[i - 1].offset == m.offset:
            m.problem = "overlaps another member (two entries share its bytes)"
        elif m.offset >= directory_start or m.span < LOCAL.size + m.raw_name_len + m.csize:
            m.problem = "overlaps another member or the central directory (its data cannot fit where it lies)"


def check_member(m: Member) -> None:
    """Raise Refused for what no extraction of this member could fix (bombs, encryption, methods)."""
    if m.problem:
        raise Refused(m.problem)
    if m.flags & 0x1:
        raise Refused("encrypted members are not supported")
    if m.method not in METHODS:
        raise Refused(f"compression method {m.method} is not supported (stored, deflate and bzip2 are)")
    if m.method == STORED and m.csize != m.size:
        raise Refused(f"stored member claims {m.size} bytes but holds {m.csize}")
    check_ratio(m.size, m.csize)
    if m.is_symlink and m.size > MAX_LINK:
        raise Refused(f"symbolic link target of {m.size} bytes (more than {MAX_LINK})")


def check_ratio(size: int, compressed: int) -> None:
    if size > RATIO_FLOOR and size > MAX_RATIO * max(compressed, 1):
        raise Refused(f"expands {size / max(compressed, 1):.0f} times ({size} bytes from {compressed}): "
                      f"more than {MAX_RATIO}x, refused as a zip bomb")


def check_total(total: int, archive_size: int) -> None:
    """Raise BadArchive when the members (those not refused one by one) add up to more than any sane archive
    of this size holds."""
    if total > MAX_TOTAL:
        raise BadArchive(f"the archive's members add up to {total} bytes, more than the {MAX_TOTAL} bytes "
                         "one extraction allows")
    if total > RATIO_FLOOR and total > MAX_RATIO * max(archive_size, 1):
        raise BadArchive(f"the archive's members add up to {total} bytes from {archive_size}: more than "
                         f"{MAX_RATIO}x, refused as a zip bomb")


# -- names and links -------------------------------------------------------------------------------------

_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


def safe_parts(name: str) -> list[str]:
    """A member's name as local path parts under DIR, or Refused (absolute, ``..``, unsafe locally)."""
    text = name.replace("\\", "/")
    if text.startswith("/") or _DRIVE_LETTER.match(text):
        raise Refused("absolute path (it would be written outside DIR)")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refused("'..' in its path (it would be written outside DIR)")
    if not parts:
        raise Refused("empty name")
    for p in parts:
        if names.safe_name(p) != p:
            raise Refused(f"name unsafe on a local disk ({p[:40]!r}...: NUL, over {names.NAME_MAX} bytes, "
                          "or a drivesync partial's suffix)" if len(p) > 40 else
                          f"name unsafe on a local disk ({p!r}: NUL or a drivesync partial's suffix)")
    return parts


def link_parts(member_parts: list[str], target: str, *, hard: bool = False) -> list[str]:
    """Where a link at ``member_parts`` leads, as parts under DIR, or Refused when it leaves DIR. A symbolic
    link's target is relative to the link's folder, a hard link's to DIR (tar's rule)."""
    if "\x00" in target or not target:
        raise Refused("link with an empty or NUL target")
    text = target.replace("\\", "/")
    if text.startswith("/") or _DRIVE_LETTER.match(text):
        raise Refused(f"link to an absolute path ({target!r}) leaves DIR")
    where = [] if hard else list(member_parts[:-1])
    for p in text.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not where:
                raise Refused(f"link to {target!r} leaves DIR")
            where.pop()
        else:
            where.append(p)
    return where


# -- one member's bytes ---------------------------------------------------------------------------------


class MemberDecoder:
    """Feed it the member's span (local header, data, descriptor) in order; it yields the decoded bytes in
    pieces of at most ``out_limit`` and checks them: never more than the size claimed, and on ``finish`` the
    exact size and the CRC-32. Raises Refused."""

    def __init__(self, m: Member, out_limit: int = 1024 * 1024):
        self.m = m
        self.out_limit = out_limit
        self.header = bytearray()
        self.data_left: int | None = None     # compressed bytes still to come, once the header is read
        self.written = 0
        self.crc = 0
        self.taken = 0                         # bytes of the span consumed
        if m.method == DEFLATED:
            self._z = zlib.decompressobj(-15)
        elif m.method == BZIP2:
            self._z = bz2.BZ2Decompressor()
        else:
            self._z = None

    @property
    def wants(self) -> int:
        """Bytes of its span still to come."""
        return self.m.span - self.taken

    def feed(self, data) -> Iterator[bytes]:
        data = memoryview(data)[:self.wants]
        self.taken += len(data)
        if self.data_left is None:
            need = LOCAL.size - len(self.header)
            if len(self.header) < LOCAL.size:
                self.header += data[:need]
                data = data[need:]
            if len(self.header) < LOCAL.size:
                return
            sig, _, _, _, method, _, _, _, _, _, n_name, n_extra = LOCAL.unpack_from(self.header)
            if sig != LOCAL_SIG:
                raise Refused("no local header where the central directory says the member starts")
            if method != self.m.method:
                raise Refused("its local header and the central directory disagree on its compression")
            want = LOCAL.size + n_name + n_extra
            more = want - len(self.header)
            self.header += data[:more]
            data = data[more:]
            if len(self.header) < want:
                return
            if self.m.span < want + self.m.csize:
                raise Refused("overlaps the next member (its data cannot fit before it)")
            self.data_left = self.m.csize
        if not data or self.data_left <= 0:
            return
        piece = data[:self.data_left]
        self.data_left -= len(piece)
        yield from self._decode(piece)

    def _decode(self, piece) -> Iterator[bytes]:
        """``piece``: bytes or a memoryview (stored members are passed on without a copy)."""
        if self._z is None:
            yield self._out(piece)
            return
        if isinstance(self._z, bz2.BZ2Decompressor):
            pending = piece
            while True:
                try:
                    out = self._z.decompress(pending, max_length=self.out_limit)
                except (OSError, EOFError, ValueError) as exc:
                    raise Refused(f"damaged bzip2 data ({exc})") from None
                pending = b""
                if out:
                    yield self._out(out)
                if self._z.eof or self._z.needs_input:
                    return
        pending = piece
        while True:
            try:
                out = self._z.decompress(pending, self.out_limit)
            except zlib.error as exc:
                raise Refused(f"damaged deflate data ({exc})") from None
            if out:
                yield self._out(out)
            pending = self._z.unconsumed_tail
            if not pending or self._z.eof:
                return

    def _out(self, out: bytes) -> bytes:
        self.written += len(out)
        if self.written > self.m.size:
            raise Refused(f"holds more than the {self.m.size} bytes it claims")
        self.crc = zlib.crc32(out, self.crc)
        return out

    def finish(self) -> None:
        """After the whole span: the data complete, the size and CRC-32 what the directory claims."""
        if self.data_left is None or self.data_left > 0:
            raise Refused("its data ends before the size it claims (truncated)")
        if isinstance(self._z, bz2.BZ2Decompressor):
            ended = self._z.eof
        elif self._z is not None:
            tail = self._z.flush()
            if tail:
                self._out(tail)
            ended = self._z.eof
        else:
            ended = True
        if not ended and self.written < self.m.size:
            raise Refused(f"holds {self.written} bytes but claims {self.m.size} (its compressed data is cut)")
        if self.written != self.m.size:
            raise Refused(f"holds {self.written} bytes but claims {self.m.size}")
        if self.crc != self.m.crc:
            raise Refused(f"CRC-32 {self.crc:08x} is not the {self.m.crc:08x} it claims")


@dataclass
class Group:
    """Members whose spans touch, fetched as one ranged GET of [start, end)."""

    members: list[Member] = field(default_factory=list)

    @property
    def start(self) -> int:
        return self.members[0].offset

    @property
    def end(self) -> int:
        return self.members[-1].span_end

    @property
    def size(self) -> int:
        return self.end - self.start


def groups(members: list[Member], target: int) -> list[Group]:
    """Pending members (in any order) cut into runs of adjacent spans of about ``target`` bytes: one request
    fetches many small members, a large member has a request to itself; a member not pending breaks a run."""
    out: list[Group] = []
    for m in sorted(members, key=lambda m: m.offset):
        g = out[-1] if out else None
        if g is not None and g.end == m.offset and g.size + m.span <= target:
            g.members.append(m)
        else:
            out.append(Group([m]))
    return out
