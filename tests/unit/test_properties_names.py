"""Properties of names.py, for any Drive name hypothesis can make: a safe local name can exist (no '/',
no NUL, not '.' or '..', at most 255 bytes of UTF-8), is stable (the same tree gives the same names,
whatever order Drive lists it in), the names of one folder are distinct (injective on file ids), no
final name looks like a partial, and joining safe names never leaves LOCAL."""
from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivesync import names
from drivesync.errors import UsageError

FAST = settings(max_examples=300, deadline=None)

# Drive names: any text (hypothesis's text() has no lone surrogates, as JSON from Drive has none), with the
# troublesome ones made likely.
drive_names = st.one_of(
    st.text(max_size=40),
    st.text(max_size=400),                                    # longer than NAME_MAX in bytes
    st.sampled_from(["", ".", "..", "/", "a/b", "../x", "\x00", "x.drivesync-partial", ".x.drivesync-partial",
                     "\u00e9" * 200 + ".bin", "a" * 300, "a" * 300 + ".tar.gz", "~", " ", "..."]),
    st.builds(lambda a, b: a + "/" + b, st.text(max_size=10), st.text(max_size=10)),
)
# Drive ids: letters, digits, '-' and '_', 10 to 60 of them (Drive's are 19 to 44)
file_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=10,
                   max_size=60)


def can_exist(name: str) -> bool:
    return (name not in ("", ".", "..") and "/" not in name and "\x00" not in name
            and len(name.encode("utf-8")) <= names.NAME_MAX)


@FAST
@given(drive_names)
def test_safe_name_can_exist_is_stable_and_idempotent(name):
    safe = names.safe_name(name)
    assert can_exist(safe), safe
    assert safe == names.safe_name(name)
    assert names.safe_name(safe) == safe          # an already-safe name is kept as it is
    assert not names.is_partial(safe)             # never taken for one of our partials (and cleaned up)
    if can_exist(name) and not name.endswith(names.PARTIAL_SUFFIX):
        assert safe == name                       # ordinary names are left alone


@FAST
@given(st.lists(st.tuples(file_ids, drive_names), max_size=12, unique_by=lambda t: t[0]), st.randoms())
def test_the_names_of_one_folder_are_distinct_safe_and_independent_of_listing_order(children, rnd):
    items = [(fid, names.safe_name(n)) for fid, n in children]
    got, _ = names.assign_names(items)
    assert set(got) == {fid for fid, _ in items}
    assert len(set(got.values())) == len(got)                        # injective: one local name per item
    assert all(can_exist(v) for v in got.values()), got
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert names.assign_names(shuffled)[0] == got                    # stable whatever order Drive lists
    # An item whose wanted name nobody else wants keeps it.
    wanted = [w for _, w in items]
    for fid, w in items:
        if wanted.count(w) == 1:
            assert got[fid] == w


@FAST
@given(drive_names, file_ids)
def test_a_partial_is_hidden_beside_its_final_name_and_never_a_final_name(name, fid):
    final = names.safe_name(name)
    partial = names.partial_name(final, fid)
    assert names.is_partial(partial) and partial.startswith(".")
    assert can_exist(partial)
    assert partial != final


@settings(max_examples=150, deadline=None)
@given(st.lists(drive_names, min_size=1, max_size=6))
def test_joining_safe_names_stays_inside_local(parts):
    with tempfile.TemporaryDirectory() as root:
        path = names.join_inside(root, [names.safe_name(p) for p in parts])
        assert os.path.commonpath([root, path]) == root and path != root
        assert names.inside(root, path)


@settings(max_examples=150, deadline=None)
@given(st.lists(drive_names, max_size=4), st.sampled_from(["", ".", "..", "a/b", "../..", "x\x00y"]),
       st.lists(drive_names, max_size=3))
def test_an_unsafe_part_is_refused_wherever_it_is(before, bad, after):
    with tempfile.TemporaryDirectory() as root:
        with pytest.raises(UsageError):
            names.join_inside(root, [names.safe_name(p) for p in before] + [bad]
                              + [names.safe_name(p) for p in after])


def test_a_symlink_out_of_local_is_not_inside():
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as elsewhere:
        os.symlink(elsewhere, os.path.join(root, "link"))
        assert not names.inside(root, os.path.join(root, "link", "x"))
        with pytest.raises(UsageError):
            names.join_inside(root, ["link", "x"])
