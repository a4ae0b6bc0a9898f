"""Range planning and the prefix-hashing partial file of download.py."""
import hashlib
import os
import random

import pytest

from drivesync.download import PartialFile, missing, normalize, parse_time_ns, plan_ranges, prefix_end


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


@pytest.mark.parametrize("seed", range(5))
def test_plan_ranges_covers_exactly_the_missing_bytes(seed):
    rng = random.Random(seed)
    size = rng.randrange(1, 10_000)
    done = [(a, a + rng.randrange(0, 500)) for a in (rng.randrange(0, size) for _ in range(rng.randrange(0, 8)))]
    pieces = plan_ranges(size, done, rng.randrange(1, 2000))
    covered = bytearray(size)
    for a, b in normalize(done):
        for i in range(a, min(b, size)):
            covered[i] += 1
    for a, b in pieces:
        for i in range(a, b):
            covered[i] += 1
    assert all(c >= 1 for c in covered)
    assert all(covered[i] == 1 for a, b in pieces for i in range(a, b))


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


def test_parse_time_ns():
    assert parse_time_ns("1970-01-01T00:00:01.500Z") == 1_500_000_000
    assert parse_time_ns(None) is None and parse_time_ns("garbage") is None
