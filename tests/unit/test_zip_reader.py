"""archive.py, without I/O: the directory of zips that zipfile writes (zip64, a prefix, comments), member
decoding with its CRC-32 and size checks, and the rules that refuse hostile names, links and bombs."""
import io
import os
import struct
import zipfile
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from drivesync import archive
from drivesync.archive import BadArchive, Refused


def make_zip(members, *, comment=b"", prefix=b"", compression=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    buf.write(prefix)
    with zipfile.ZipFile(buf, "a" if prefix else "w", compression=compression) as z:
        for name, data in members:
            z.writestr(name, data)
        z.comment = comment
    return buf.getvalue()


def read_members(data: bytes, out_limit=1024 * 1024):
    """Everything the driver does, from bytes in memory: tail, directory, each member's span decoded."""
    start, end = archive.tail_range(len(data))
    where = archive.find_directory(data[start:end], start, len(data))
    if isinstance(where, tuple):
        where = archive.zip64_directory(data[where[0]:where[1]], where[0], archive_size=len(data))
    members = archive.parse_directory(data[where.start:where.end], where)
    out = {}
    for m in members:
        archive.check_member(m)
        dec = archive.MemberDecoder(m, out_limit)
        got = b"".join(dec.feed(data[m.offset:m.span_end]))
        dec.finish()
        out[m.name] = got
    return members, out


def test_stored_and_deflated_members_round_trip():
    content = [("a.txt", b"hello"), ("d/b.bin", os.urandom(200_000)), ("d/z", b"z" * 500_000), ("empty", b"")]
    members, out = read_members(make_zip(content))
    assert out == dict(content)
    assert [m.index for m in members] == [0, 1, 2, 3]
    _, stored = read_members(make_zip(content, compression=zipfile.ZIP_STORED))
    assert stored == dict(content)
    _, bz = read_members(make_zip(content, compression=zipfile.ZIP_BZIP2))
    assert bz == dict(content)


def test_a_long_comment_and_a_prefix_are_found_past():
    content = [("x", b"1" * 1000), ("y", b"2")]
    _, out = read_members(make_zip(content, comment=b"c" * 65535))
    assert out == dict(content)
    _, out = read_members(make_zip(content, prefix=b"#!/bin/sh\nexit 0\n" + os.urandom(5000)))
    assert out == dict(content)


def test_zip64_records_and_extra_fields(monkeypatch):
    # zipfile writes zip64 end records and zip64 extra fields above these limits: lower them.
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)
    content = [(f"f{i}", os.urandom(3000)) for i in range(5)]
    data = make_zip(content, compression=zipfile.ZIP_STORED)
    assert archive.ZIP64_SIG in data and archive.LOCATOR_SIG in data
    members, out = read_members(data)
    assert out == dict(content)
    assert all(m.size == 3000 for m in members)


def test_decoding_in_small_pieces_gives_the_same_bytes():
    data = make_zip([("z", b"abc" * 100_000)])
    start, end = archive.tail_range(len(data))
    where = archive.find_directory(data[start:end], start, len(data))
    m, = archive.parse_directory(data[where.start:where.end], where)
    dec = archive.MemberDecoder(m, out_limit=1000)
    pieces = []
    span = data[m.offset:m.span_end]
    for i in range(0, len(span), 7):
        pieces += list(dec.feed(span[i:i + 7]))
    dec.finish()
    assert b"".join(pieces) == b"abc" * 100_000
    assert max(len(p) for p in pieces) <= 1000


def _patch_central(data: bytes, field: str, value: int) -> bytes:
    """One central directory field of the first entry changed (crc, csize or size)."""
    at = data.index(archive.CENTRAL_SIG)
    offsets = {"crc": 16, "csize": 20, "size": 24}
    return data[:at + offsets[field]] + struct.pack("<L", value) + data[at + offsets[field] + 4:]


def test_a_member_holding_more_or_less_than_it_claims_is_refused():
    data = make_zip([("a", b"x" * 10_000)])
    with pytest.raises(Refused, match="holds more than the 9999 bytes"):
        read_members(_patch_central(data, "size", 9999))
    with pytest.raises(Refused, match="holds 10000 bytes but claims 10001"):
        read_members(_patch_central(data, "size", 10001))
    with pytest.raises(Refused, match="CRC-32"):
        read_members(_patch_central(data, "crc", zlib.crc32(b"other")))
    stored = make_zip([("a", b"x" * 100)], compression=zipfile.ZIP_STORED)
    with pytest.raises(Refused, match="stored member claims"):
        read_members(_patch_central(stored, "size", 50))


def test_a_zip_bomb_is_refused_before_its_bytes():
    data = make_zip([("bomb", bytes(50 * 1024 * 1024))])
    start, end = archive.tail_range(len(data))
    where = archive.find_directory(data[start:end], start, len(data))
    m, = archive.parse_directory(data[where.start:where.end], where)
    with pytest.raises(Refused, match="zip bomb"):
        archive.check_member(m)
    archive.check_ratio(1024 * 1024, 10)            # small members may expand as much as they like
    with pytest.raises(BadArchive, match="zip bomb"):
        archive.check_total(11 * archive.MAX_RATIO * 1024 * 1024, 10 * 1024 * 1024)
    with pytest.raises(BadArchive, match="more than"):
        archive.check_total(archive.MAX_TOTAL + 1, archive.MAX_TOTAL)


def test_overlapping_entries_are_refused():
    data = make_zip([("a", b"a" * 1000), ("b", b"b" * 1000)], compression=zipfile.ZIP_STORED)
    # Point the second entry at the first one's local header (the overlapping-files bomb).
    second = data.index(archive.CENTRAL_SIG, data.index(archive.CENTRAL_SIG) + 4)
    data = data[:second + 42] + struct.pack("<L", 0) + data[second + 46:]
    start, end = archive.tail_range(len(data))
    where = archive.find_directory(data[start:end], start, len(data))
    a, b = archive.parse_directory(data[where.start:where.end], where)
    assert a.problem is None or b.problem is not None
    with pytest.raises(Refused, match="overlaps"):
        archive.check_member(b)


def test_not_a_zip_is_one_line():
    with pytest.raises(BadArchive, match="not a zip archive"):
        archive.find_directory(b"hello world" * 10, 0, 110)
    data = make_zip([("a", b"1")])
    at = data.rindex(archive.EOCD_SIG)
    damaged = data[:at + 8] + struct.pack("<2H", 2, 2) + data[at + 12:]     # two entries claimed, one there
    start, end = archive.tail_range(len(damaged))
    where = archive.find_directory(damaged[start:end], start, len(damaged))
    with pytest.raises(BadArchive, match="damaged at entry 1"):
        archive.parse_directory(damaged[where.start:where.end], where)


@pytest.mark.parametrize("name, why", [
    ("../x", "'..'"), ("a/../../x", "'..'"), ("/etc/passwd", "absolute"), ("C:/x", "absolute"),
    ("a\\..\\..\\x", "'..'"), ("\\x", "absolute"), ("a/\x00b", "unsafe"), ("L" * 300, "unsafe"),
    ("x.drivesync-partial", "unsafe"), ("", "empty"), ("./.", "empty"),
])
def test_hostile_names_are_refused(name, why):
    with pytest.raises(Refused, match=why):
        archive.safe_parts(name)


def test_ordinary_names_are_kept_as_unzip_would():
    assert archive.safe_parts("a/b/c.txt") == ["a", "b", "c.txt"]
    assert archive.safe_parts("./a//b/") == ["a", "b"]
    assert archive.safe_parts("win\\dir\\f.txt") == ["win", "dir", "f.txt"]
    assert archive.safe_parts("caf\u00e9/\u65e5\u672c.txt") == ["caf\u00e9", "\u65e5\u672c.txt"]


def test_links_inside_dir_are_kept_and_links_out_refused():
    assert archive.link_parts(["d", "link"], "a.txt") == ["d", "a.txt"]
    assert archive.link_parts(["d", "e", "link"], "../../top") == ["top"]
    assert archive.link_parts(["d", "hard"], "d/a.txt", hard=True) == ["d", "a.txt"]
    assert archive.link_parts(["d", "link"], "..") == []          # DIR itself
    for target in ("../../etc/passwd", "/etc/passwd", "../..", "a/../../.."):
        with pytest.raises(Refused, match="leaves DIR"):
            archive.link_parts(["d", "link"], target)
    with pytest.raises(Refused, match="leaves DIR"):
        archive.link_parts(["link"], "../x", hard=True)


def test_groups_cut_adjacent_spans_and_break_at_gaps():
    ms = [archive.Member(i, f"m{i}", 0, 0, 0, 10, 10, offset=i * 100, span_end=(i + 1) * 100) for i in range(10)]
    runs = archive.groups([m for m in ms if m.index != 4], 300)
    assert [[m.index for m in g.members] for g in runs] == [[0, 1, 2], [3], [5, 6, 7], [8, 9]]
    assert all(g.size <= 300 for g in runs)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet="ab/._", min_size=1, max_size=12), st.binary(max_size=3000)),
                min_size=1, max_size=8, unique_by=lambda t: t[0]))
def test_any_zip_zipfile_writes_reads_back(content):
    content = [(n, d) for n, d in content if not n.endswith("/")]
    if not content:
        return
    _, out = read_members(make_zip(content))
    assert out == dict(content)


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors after each member (as streaming zippers do)."""

    def __init__(self):
        self.buf = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.buf += b
        return len(b)


def test_members_with_data_descriptors():
    sink = _Unseekable()
    content = [("a.bin", os.urandom(5000)), ("b.txt", b"b" * 20_000), ("c", b"")]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in content:
            z.writestr(name, data)
    data = bytes(sink.buf)
    assert b"PK\x07\x08" in data                     # the descriptors are there
    members, out = read_members(data)
    assert all(m.flags & 0x08 for m in members)
    assert out == dict(content)
