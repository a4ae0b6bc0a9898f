"""Range planning and the prefix-hashing partial file of download.py."""
import hashlib
import os
import random

import pytest

from drivesync import download
from drivesync.download import (IOV_MAX, PartialFile, missing, normalize, parse_time_ns, plan_ranges, prefix_end,
                                write_all)


def test_normalize_merges_and_drops_empty():
    assert normalize([(5, 10), (0, 5), (20, 20), (8, 12)]) == [(0, 12)]
    assert normalize([(3, 4), (0, 1)]) == [(0, 1), (3, 4)]


def test_missing_is_the_complement():
    assert missing(10, []) == [(0, 10)]
    assert missing(10, [(0, 10)]) == []
    assert missing(10, [(2, 4), (6, 8)]) == [(0, 2), (4, 6), (8, 10)]
    assert missing(10, [(5, 50)]) == [(0, 5)]
    assert missing(0, []) == []


def test_plan_ranges_cuts_the_gaps_into_bounded_requests():
    assert plan_ranges(10, [], 4) == [(0, 4), (4, 8), (8, 10)]
    assert plan_ranges(10, [(0, 3), (5, 6)], 4) == [(3, 5), (6, 10)]
    assert plan_ranges(10, [(0, 10)], 4) == []
    with pytest.raises(ValueError):
        plan_ranges(10, [], 0)


@pytest.mark.parametrize("seed", range(8))
def test_plan_ranges_covers_exactly_the_missing_bytes(seed):
    rng = random.Random(seed)
    size = rng.randrange(1, 10_000)
    done = [(a, a + rng.randrange(0, 500)) for a in (rng.randrange(0, size) for _ in range(rng.randrange(0, 8)))]
    pieces = plan_ranges(size, done, rng.randrange(1, 2000), streams=rng.choice((1, 2, 8, 16)))
    covered = bytearray(size)
    for a, b in normalize(done):
        for i in range(a, min(b, size)):
            covered[i] += 1
    for a, b in pieces:
        for i in range(a, b):
            covered[i] += 1
    assert all(c >= 1 for c in covered)
    assert all(covered[i] == 1 for a, b in pieces for i in range(a, b))


def test_plan_ranges_ramps_up_at_the_start_and_down_at_the_end_of_a_multi_stream_file():
    MiB = 1 << 20
    sizes = [b - a for a, b in plan_ranges(500_000_000, [], 32 * MiB, streams=8)]
    m = sizes[0] + 7 * 2 * MiB
    assert max(sizes) <= 32 * MiB and sum(sizes) == 500_000_000
    assert sizes[:7] == [m - (7 - k) * 2 * MiB for k in range(7)]      # one step (range_size / 16) apart
    assert sizes[-7:] == [m - (k + 1) * 2 * MiB for k in range(7)]
    assert max(sizes[7:-7]) - min(sizes[7:-7]) <= 1                   # the middle shares the rest evenly
    # One stream (or a single-range file) keeps equal requests.
    assert plan_ranges(100, [], 16) == [(0, 16), (16, 32), (32, 48), (48, 64), (64, 80), (80, 96), (96, 100)]
    # More streams than steps fit: no request shrinks below one step.
    assert min(b - a for a, b in plan_ranges(64 * MiB, [], 16 * MiB, streams=32)) == 1 * MiB
    # Too small for both ramps: the first one, then equal requests (a 100 MB file over 8 streams).
    assert [b - a for a, b in plan_ranges(100 * MiB, [], 32 * MiB, streams=8)] == [
        18 * MiB, 20 * MiB, 22 * MiB, 24 * MiB, 16 * MiB]


def test_a_resumed_file_ramps_over_the_bytes_still_missing():
    MiB = 1 << 20
    done = [(0, 100 * MiB), (300 * MiB, 310 * MiB)]
    pieces = plan_ranges(1 << 30, done, 32 * MiB, streams=8)
    assert pieces[0][0] == 100 * MiB and pieces[-1][1] == 1 << 30
    assert not any(a < 310 * MiB and b > 300 * MiB for a, b in pieces)   # cut at the kept bytes, not across
    sizes = [b - a for a, b in pieces]
    assert sizes[-7:] == sorted(sizes[-7:], reverse=True) and sizes[-1] < sizes[-7]


def _finish_order(pieces, streams):
    """Equal-speed workers taking ``pieces`` in order: the pieces' indexes sorted by the time each ends."""
    free = [0.0] * streams
    ends = []
    for i, (a, b) in enumerate(pieces):
        w = min(range(streams), key=lambda k: (free[k], k))
        free[w] += b - a
        ends.append((free[w], i))
    return [i for _, i in sorted(ends)], [t for t, _ in sorted(ends, key=lambda e: e[1])]


@pytest.mark.parametrize("size", [500_000_000, 1 << 30, 300_000_000])
def test_staggered_requests_end_in_file_order_and_the_streams_run_out_close_together(size):
    """What the ramps are for: with streams at one speed, every request ends no earlier than the one before
    it in the file, so the hashed prefix follows the bytes as they land; and the last requests are short
    enough that the file is done within a third of a request of the ideal (its bytes over the streams),
    where full last requests left one stream alone on the link for up to a whole one."""
    MiB = 1 << 20
    pieces = plan_ranges(size, [], 32 * MiB, streams=8)
    _, ends = _finish_order(pieces, 8)
    assert ends == sorted(ends)
    assert max(ends) - size / 8 <= 32 * MiB / 3    # the plan without the end ramp: 11-18 MiB over


def test_prefix_end():
    assert prefix_end([]) == 0
    assert prefix_end([(1, 5)]) == 0
    assert prefix_end([(0, 5), (5, 9), (10, 12)]) == 9


def test_partial_file_hashes_out_of_order_writes(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = str(tmp_path / "p")
    pf = PartialFile(path, len(data), fresh=True)
    pieces = [(a, min(len(data), a + 300_000)) for a in range(0, len(data), 300_000)]
    random.Random(1).shuffle(pieces)
    for a, b in pieces:
        pf.write(a, data[a:b])
    assert pf.finish() == hashlib.md5(data).hexdigest()
    pf.close()
    with open(path, "rb") as fh:
        assert fh.read() == data


def test_partial_file_resumes_with_bytes_already_on_disk(tmp_path):
    data = os.urandom(1_000_000)
    path = str(tmp_path / "p")
    first = PartialFile(path, len(data), fresh=True)
    first.write(0, data[:400_000])
    first.write(700_000, data[700_000:])
    first.close()
    second = PartialFile(path, len(data), [(0, 400_000), (700_000, 1_000_000)], fresh=False)
    second.write(400_000, data[400_000:700_000])
    assert second.finish() == hashlib.md5(data).hexdigest()
    second.close()


def _cut(data: bytes, rng: random.Random) -> list:
    """data as a list of views of random sizes (some tiny), as aiohttp hands a body over."""
    views, at = [], 0
    while at < len(data):
        n = rng.choice([1, 7, 4096, 16_384, 65_536, 262_144])
        views.append(memoryview(data)[at:at + n])
        at += n
    return views


@pytest.mark.parametrize("seed", range(4))
def test_partial_file_takes_lists_of_pieces_in_any_order(tmp_path, seed):
    """Each write is a list of chunks; writes land out of order, so the md5 runs partly from the pieces
    just written and partly from bytes read back. Both must give the file's md5."""
    rng = random.Random(seed)
    data = os.urandom(2 * 1024 * 1024 + rng.randrange(1000))
    path = str(tmp_path / "p")
    pf = PartialFile(path, len(data), fresh=True, durable=False)
    spans = [(a, min(len(data), a + 1_048_576)) for a in range(0, len(data), 1_048_576)]
    rng.shuffle(spans)
    for a, b in spans:
        pf.write(a, _cut(data[a:b], rng))
    assert pf.finish() == hashlib.md5(data).hexdigest()
    pf.close()
    with open(path, "rb") as fh:
        assert fh.read() == data


def test_write_all_goes_on_after_short_writes(tmp_path, monkeypatch):
    """A pwritev/writev may write fewer bytes than asked (a signal, a full disk's last blocks): the rest
    goes out from the first byte not written, whichever piece it is in; more pieces than IOV_MAX are split."""
    data = os.urandom(300_000)
    pieces = _cut(data, random.Random(9)) + [memoryview(b"x")] * (IOV_MAX + 5)
    want = data + b"x" * (IOV_MAX + 5)
    real_pwritev, real_writev = os.pwritev, os.writev
    calls = []

    def short_pwritev(fd, bufs, offset):
        assert len(bufs) <= IOV_MAX
        calls.append(len(bufs))
        first = bytes(bufs[0])[:max(1, len(bufs[0]) // 2)]    # half of the first piece only
        return real_pwritev(fd, [first], offset)

    def short_writev(fd, bufs):
        assert len(bufs) <= IOV_MAX
        return real_writev(fd, [bytes(b"".join(bytes(b) for b in bufs[:3]))[:5000]])

    monkeypatch.setattr(download.os, "pwritev", short_pwritev)
    monkeypatch.setattr(download.os, "writev", short_writev)
    path = str(tmp_path / "f")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert write_all(fd, pieces, 10) == len(want)
        assert len(calls) > len(pieces) // 2
        os.lseek(fd, 0, os.SEEK_END)
        assert write_all(fd, pieces) == len(want)
    finally:
        os.close(fd)
    with open(path, "rb") as fh:
        assert fh.read() == b"\0" * 10 + want + want


def test_parse_time_ns():
    assert parse_time_ns("1970-01-01T00:00:01.500Z") == 1_500_000_000
    assert parse_time_ns(None) is None and parse_time_ns("garbage") is None
