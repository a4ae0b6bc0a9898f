"""Journal.batched(): a pull's journal writes share transactions (state.py), seen by this journal at once,
by other connections at each commit, never lost at the block's end, lost only up to one batch on a crash."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from drivesync import state
from drivesync.state import Journal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _record(j: Journal, i: int) -> None:
    j.record_synced(f"/out/f{i:04d}", file_id=f"id{i}", md5="0" * 32, size=i, mtime_ns=i,
                    remote_modified=None, direction="pull")


def _others_see(path) -> int:
    db = sqlite3.connect(str(path))
    try:
        return db.execute("SELECT count(*) FROM synced").fetchone()[0]
    finally:
        db.close()


@pytest.fixture
def no_idle_commit(monkeypatch):
    monkeypatch.setattr(state, "BATCH_SECONDS", 3600.0)


def test_writes_in_a_batch_are_read_back_at_once_and_committed_when_it_ends(tmp_path, no_idle_commit):
    j = Journal(tmp_path / "journal.db")
    with j.batched():
        for i in range(5):
            _record(j, i)
        assert j.synced("/out/f0003").size == 3          # this journal sees its own writes
        assert _others_see(j.path) == 0                   # not committed yet
    assert _others_see(j.path) == 5
    j.close()


def test_a_batch_commits_every_batch_writes(tmp_path, no_idle_commit, monkeypatch):
    monkeypatch.setattr(state, "BATCH_WRITES", 10)
    j = Journal(tmp_path / "journal.db")
    with j.batched():
        for i in range(25):
            _record(j, i)
        assert _others_see(j.path) == 20
    assert _others_see(j.path) == 25
    j.close()


def test_nested_batches_commit_at_the_outer_end(tmp_path, no_idle_commit):
    j = Journal(tmp_path / "journal.db")
    with j.batched():
        with j.batched():
            _record(j, 1)
        assert _others_see(j.path) == 0
    assert _others_see(j.path) == 1
    j.close()


def test_an_idle_batch_is_committed_without_another_write(tmp_path, monkeypatch):
    """So a second process writing to this journal never waits for long on the batch's write lock."""
    monkeypatch.setattr(state, "BATCH_SECONDS", 0.05)
    j = Journal(tmp_path / "journal.db")
    with j.batched():
        _record(j, 1)
        deadline = time.monotonic() + 30
        while _others_see(j.path) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _others_see(j.path) == 1
        other = sqlite3.connect(str(j.path), timeout=30)
        other.execute("INSERT INTO synced VALUES ('/x', 'i', NULL, 1, 1, NULL, 'pull', 0)")  # not locked out
        other.commit()
        other.close()
    j.close()


def test_close_inside_a_batch_commits_it(tmp_path, no_idle_commit):
    j = Journal(tmp_path / "journal.db")
    with j.batched():
        _record(j, 1)
        j.close()
    assert _others_see(tmp_path / "journal.db") == 1


def test_a_crash_inside_a_batch_loses_only_the_batch_and_the_journal_opens_clean(tmp_path):
    path = tmp_path / "journal.db"
    code = (f"import os, sys; sys.path.insert(0, {ROOT!r}); from drivesync import state; "
            "state.BATCH_SECONDS = 3600.0; from drivesync.state import Journal; "
            f"j = Journal({str(path)!r}); "
            "j.record_synced('/out/before', file_id='a', md5=None, size=1, mtime_ns=1, remote_modified=None, direction='pull'); "
            "b = j.batched(); b.__enter__(); "
            "j.record_synced('/out/inside', file_id='b', md5=None, size=1, mtime_ns=1, remote_modified=None, direction='pull'); "
            "os._exit(9)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 9
    j = Journal(path)
    assert j.healed is None
    assert j.synced("/out/before") is not None and j.synced("/out/inside") is None
    j.close()


def test_outside_a_batch_every_write_is_its_own_commit(tmp_path):
    j = Journal(tmp_path / "journal.db")
    _record(j, 1)
    assert _others_see(j.path) == 1
    j.close()


def test_forget_partial_writes_nothing_while_no_partial_is_recorded(tmp_path):
    j = Journal(tmp_path / "journal.db")
    before = j.writes
    j.forget_partial("/out/.a.partial")          # a small file: never recorded as a partial
    assert j.writes == before                    # no DELETE was run
    j.start_partial("/out/.b.partial", file_id="idb", md5=None, size=10, remote_modified=None)
    assert j.partial("/out/.b.partial") is not None
    j.forget_partial("/out/.b.partial")
    assert j.partial("/out/.b.partial") is None
    j.close()
    # A partial left by an earlier run (an interrupted large download) is seen at the next open and forgotten.
    j = Journal(tmp_path / "journal.db")
    j.start_partial("/out/.c.partial", file_id="idc", md5=None, size=10, remote_modified=None)
    j.close()
    j = Journal(tmp_path / "journal.db")
    j.forget_partial("/out/.c.partial")
    assert j.partial("/out/.c.partial") is None
    j.close()
    # Another process records a partial after this journal opened (none then): found by partial(), forgotten.
    j = Journal(tmp_path / "journal.db")
    other = Journal(tmp_path / "journal.db")
    other.start_partial("/out/.d.partial", file_id="idd", md5=None, size=10, remote_modified=None)
    other.close()
    assert j.partial("/out/.d.partial") is not None
    j.forget_partial("/out/.d.partial")
    assert j.partial("/out/.d.partial") is None
    j.close()
