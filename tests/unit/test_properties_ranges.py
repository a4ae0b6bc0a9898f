"""Properties of download.py's range arithmetic (normalize, missing, plan_ranges, missing_within,
prefix_end) and of resuming a partial file from the ranges a journal kept, checked against the
simplest model there is: a set of byte offsets."""
from __future__ import annotations

import hashlib
import os
import random
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivesync.download import PartialFile, missing, missing_within, normalize, plan_ranges, prefix_end

FAST = settings(max_examples=200, deadline=None)

sizes = st.integers(min_value=0, max_value=5_000)
ranges = st.lists(st.tuples(st.integers(-50, 5_100), st.integers(-50, 5_100)), max_size=12)


def covered(rs, lo=None, hi=None) -> set[int]:
    out = set()
    for a, b in rs:
        a2, b2 = (a if lo is None else max(a, lo)), (b if hi is None else min(b, hi))
        out.update(range(a2, b2))
    return out


@FAST
@given(ranges)
def test_normalize_is_sorted_disjoint_and_covers_the_same_bytes(rs):
    n = normalize(rs)
    assert covered(n) == covered(rs)
    assert all(a < b for a, b in n)                                   # nothing empty
    assert all(b1 < a2 for (_, b1), (a2, _) in zip(n, n[1:]))         # sorted, apart (touching ones merged)
    assert normalize(n) == n                                          # idempotent


@FAST
@given(sizes, ranges)
def test_missing_is_exactly_the_complement_within_the_file(size, done):
    gaps = missing(size, done)
    assert covered(gaps) == set(range(size)) - covered(done)
    assert all(0 <= a < b <= size for a, b in gaps)
    assert normalize(gaps) == gaps


@FAST
@given(sizes, ranges, st.integers(1, 3_000))
def test_plan_ranges_covers_the_missing_bytes_once_in_bounded_requests(size, done, range_size):
    pieces = plan_ranges(size, done, range_size)
    assert covered(pieces) == set(range(size)) - covered(done)
    assert sum(b - a for a, b in pieces) == size - len(covered(done, 0, size))   # no byte twice
    assert all(0 < b - a <= range_size for a, b in pieces)
    assert pieces == sorted(pieces)
    # as few requests as the gaps allow: ceil(gap / range_size) each
    assert len(pieces) == sum(-(-(b - a) // range_size) for a, b in missing(size, done))


@FAST
@given(sizes, ranges, st.integers(16, 3_000), st.integers(2, 32))
def test_multi_stream_plans_cover_the_missing_bytes_once_in_bounded_requests(size, done, range_size, streams):
    """The ramps at both ends (plan_ranges' docstring) never cost a byte, a request past range_size or
    one straddling bytes already kept."""
    pieces = plan_ranges(size, done, range_size, streams=streams)
    assert covered(pieces) == set(range(size)) - covered(done)
    assert sum(b - a for a, b in pieces) == size - len(covered(done, 0, size))
    assert all(0 < b - a <= range_size for a, b in pieces)
    assert pieces == sorted(pieces)
    assert not any(covered([piece]) & covered(done) for piece in pieces)


@FAST
@given(ranges, st.integers(-10, 5_000), st.integers(0, 3_000))
def test_missing_within_is_the_gap_of_one_window(done, start, length):
    end = start + length
    got = missing_within(done, start, end)
    assert covered(got) == set(range(start, end)) - covered(done)
    assert all(start <= a < b <= end for a, b in got)


@FAST
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), max_size=10))  # offsets a journal holds
def test_prefix_end_is_the_contiguous_run_from_zero(done):
    have, k = covered(done), 0
    while k in have:
        k += 1
    assert prefix_end(done) == k


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 70_000), st.integers(1, 20_000), st.randoms(use_true_random=False), st.data())
def test_a_download_interrupted_anywhere_resumes_to_the_same_bytes(size, range_size, rnd, data):
    """Write a random part of the planned requests (some cut short) as a killed pull would, keep the ranges
    the journal would hold, reopen, plan what is missing and finish: the md5 is the file's and no byte that
    was already on disk is planned again."""
    content = rnd.randbytes(size) if hasattr(rnd, "randbytes") else bytes(rnd.getrandbits(8) for _ in range(size))
    pieces = plan_ranges(size, [], range_size)
    rnd.shuffle(pieces)
    kept = []
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "p")
        first = PartialFile(path, size, fresh=True, durable=False)
        for a, b in pieces[:data.draw(st.integers(0, len(pieces)), label="pieces done")]:
            cut = data.draw(st.integers(a, b), label="bytes of it that landed")  # a body cut mid-stream
            if cut > a:
                first.write(a, content[a:cut])
                kept.append((a, cut))
        first.close()
        resume = plan_ranges(size, kept, range_size)
        assert not covered(resume) & covered(kept)                  # what is on disk is not fetched again
        second = PartialFile(path, size, kept, fresh=False, durable=False)
        order = list(resume)
        random.Random(size).shuffle(order)                          # streams finish in any order
        for a, b in order:
            second.write(a, content[a:b])
        assert second.prefix() == size
        assert second.finish() == hashlib.md5(content).hexdigest()
        second.close()
        with open(path, "rb") as fh:
            assert fh.read() == content
