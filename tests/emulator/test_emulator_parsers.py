"""Pure logic of the emulator: the q parser, the fields parser, exact token buckets, Range parsing."""

from __future__ import annotations

import pytest

from drivesync.emulator import fields as F
from drivesync.emulator import query as Q
from drivesync.emulator.limits import PROFILES, Limits, Profile, TokenBucket
from drivesync.emulator.server import parse_range


# ----------------------------------------------------------------- q


def rows():
    return [
        {"id": "a", "name": "Hello World.txt", "mime_type": "text/plain", "parent": "P", "trashed": 0, "starred": 0,
         "modified_ms": 1_700_000_000_000, "created_ms": 0, "doc_text": None},
        {"id": "b", "name": "it's here", "mime_type": "application/vnd.google-apps.folder", "parent": "Q", "trashed": 1,
         "starred": 1, "modified_ms": 1_600_000_000_000, "created_ms": 0, "doc_text": None},
        {"id": "c", "name": "back\\slash", "mime_type": "image/png", "parent": "R", "trashed": 0, "starred": 0,
         "modified_ms": 1_650_000_000_000, "created_ms": 0, "doc_text": None},
    ]


def select(q):
    node = Q.parse(q)
    return [r["id"] for r in rows() if Q.matches(node, r, root_id="R", user_email="me@x")]


@pytest.mark.parametrize(
    "q, ids",
    [
        ("'P' in parents", ["a"]),
        ("trashed=false", ["a", "c"]),
        ("trashed = true", ["b"]),
        ("trashed != true", ["a", "c"]),
        ("name = 'it\\'s here'", ["b"]),
        ("name = 'back\\\\slash'", ["c"]),
        ("name != 'Hello World.txt'", ["b", "c"]),
        ("name contains 'hello'", ["a"]),
        ("name contains 'World'", ["a"]),  # word prefix
        ("name contains 'orld'", []),  # not a substring match
        ("mimeType = 'application/vnd.google-apps.folder'", ["b"]),
        ("mimeType != 'application/vnd.google-apps.folder' and trashed=false", ["a", "c"]),
        ("modifiedTime > '2023-01-01T00:00:00Z'", ["a"]),
        ("modifiedTime <= '2022-04-16T00:00:00.000Z'", ["b", "c"]),
        ("modifiedTime >= '2022-04-16T05:20:00+00:00'", ["a"]),
        ("not trashed", None),  # bare field: invalid
        ("not (trashed = true)", ["a", "c"]),
        ("('P' in parents or 'Q' in parents) and trashed=false", ["a"]),
        ("'root' in parents", ["c"]),
        ("'me' in owners and starred = true", ["b"]),
        ("trashed=false and not name contains 'hello'", ["c"]),
    ],
)
def test_query_semantics(q, ids):
    if ids is None:
        with pytest.raises(Q.QueryError):
            Q.parse(q)
    else:
        assert select(q) == ids


@pytest.mark.parametrize(
    "bad",
    [
        "name = 'unterminated",
        "name = 'x' and",
        "(trashed = false",
        "trashed = maybe",
        "size > 5",
        "name > 'a' or",
        "'a' in nowhere",
        "modifiedTime > 'yesterday'",
        "name = foo",
        "name contains",
        "trashed = false)",
        "name = 'x' 'y'",
    ],
)
def test_query_rejects(bad):
    with pytest.raises(Q.QueryError):
        Q.parse(bad)


def test_query_batched_parents_to_sql():
    ids = [f"id{i}" for i in range(60)]
    q = "trashed=false and (" + " or ".join(f"'{i}' in parents" for i in ids) + ")"
    where, params = Q.to_sql(Q.parse(q), root_id="R", user_email="e")
    assert params == [0, *ids]
    assert where.count("parent = ?") == 60


def test_query_precedence_and_binds_tighter_than_or():
    node = Q.parse("'A' in parents or 'B' in parents and trashed = true")
    assert isinstance(node, Q.Or) and isinstance(node.right, Q.And)


def test_query_empty():
    assert Q.parse("") is None and Q.parse("   ") is None


# ----------------------------------------------------------------- fields


def test_fields_parse_forms():
    assert F.parse("id,name") == {"id": None, "name": None}
    assert F.parse("files(id,name),nextPageToken") == {"files": {"id": None, "name": None}, "nextPageToken": None}
    assert F.parse("files/id,files/name") == {"files": {"id": None, "name": None}}
    assert F.parse("capabilities/canEdit") == {"capabilities": {"canEdit": None}}
    assert F.parse("files(id,capabilities(canEdit,canCopy))") == {
        "files": {"id": None, "capabilities": {"canEdit": None, "canCopy": None}}
    }
    assert F.parse("*") == {"*": None}
    assert F.parse("files(*)") == {"files": {"*": None}}


@pytest.mark.parametrize("bad", ["files(id", "id,,name", "files(id))", "", "a//b", "files()"])
def test_fields_parse_errors(bad):
    with pytest.raises(F.FieldsError):
        F.parse(bad)


def test_fields_validate_against_discovery_schema():
    F.validate(F.parse("nextPageToken,files(id,name,mimeType,size,md5Checksum,parents,modifiedTime)"), "FileList")
    F.validate(F.parse("files(owners(emailAddress),shortcutDetails/targetId,properties/anything)"), "FileList")
    with pytest.raises(F.FieldsError) as ei:
        F.validate(F.parse("files(id,bogus)"), "FileList")
    assert ei.value.selection == "files/bogus"
    with pytest.raises(F.FieldsError):
        F.validate(F.parse("user/nope"), "About")


def test_fields_apply():
    value = {"kind": "k", "files": [{"id": "1", "name": "a", "size": "3"}, {"id": "2", "name": "b"}], "x": 1}
    assert F.apply(value, F.parse("files(id)")) == {"files": [{"id": "1"}, {"id": "2"}]}
    assert F.apply(value, F.parse("files/name,kind")) == {"files": [{"name": "a"}, {"name": "b"}], "kind": "k"}
    assert F.apply(value, F.parse("*")) == value
    assert F.apply({"a": {"b": 1, "c": 2}}, F.parse("a/b")) == {"a": {"b": 1}}


# ----------------------------------------------------------------- token buckets


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_bucket_exact_floor():
    clock = Clock()
    b = TokenBucket(rate=1000, burst=100, clock=clock)
    # 1100 bytes: the first 100 are free, the rest take exactly 1 s.
    waited = 0.0
    for _ in range(11):
        d = b.reserve(100)
        waited = max(waited, d)
    assert waited == pytest.approx(1.0)
    clock.t += 1.0
    assert b.reserve(0) == 0.0
    assert b.tokens == pytest.approx(0.0)  # the debt is paid, nothing saved up
    # Ten idle seconds refill the bucket, but only up to the burst: 100 bytes go at once, the next
    # byte waits 1/rate (a bucket that refilled past its burst would let 10,000 go).
    clock.t += 10
    assert b.reserve(100) == 0.0
    assert b.tokens == pytest.approx(0.0)
    assert b.reserve(1) == pytest.approx(1 / 1000)


def test_bucket_try_take_and_wait_time():
    clock = Clock()
    b = TokenBucket(rate=2, burst=3, clock=clock)
    assert [b.try_take() for _ in range(4)] == [True, True, True, False]
    assert b.wait_time() == pytest.approx(0.5)
    clock.t += 0.5
    assert b.try_take()


def test_limits_seeded_faults_are_reproducible():
    p = Profile(error_rate=0.3, seed=42)
    a, b = Limits(p), Limits(p)
    assert [a.injected_error() for _ in range(50)] == [b.injected_error() for _ in range(50)]
    lim = Limits(Profile())
    lim.configure(cut_next=2, cut_after_bytes=10)
    assert [lim.cut_after(), lim.cut_after(), lim.cut_after()] == [10, 10, None]


def test_profiles_are_data():
    d = PROFILES["drive-like"].as_dict()
    assert d["requests_per_s"] == 200.0 and d["writes_per_s"] == 3.0
    assert d["download_bps_per_connection"] == 25_000_000 and d["download_bps_total"] == 150_000_000
    assert d["metadata_latency_s"] == 0.05 and d["media_latency_s"] == 0.1
    assert PROFILES["unthrottled"].requests_per_s is None
    with pytest.raises(TypeError):
        PROFILES["unthrottled"].replace(no_such_knob=1)


# ----------------------------------------------------------------- Range


@pytest.mark.parametrize(
    "header, size, want",
    [
        ("bytes=0-99", 1000, (0, 99)),
        ("bytes=900-5000", 1000, (900, 999)),
        ("bytes=500-", 1000, (500, 999)),
        ("bytes=-100", 1000, (900, 999)),
        ("bytes=1000-1001", 1000, "unsatisfiable"),
        ("bytes=0-104857599", 0, "unsatisfiable"),
        ("bytes=5-2", 1000, None),
        ("items=0-1", 1000, None),
        ("bytes=0-1,5-6", 1000, None),
    ],
)
def test_parse_range(header, size, want):
    assert parse_range(header, size) == want
