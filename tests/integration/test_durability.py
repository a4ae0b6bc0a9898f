"""Durability (issue 14, item 4), against the emulator over real sockets: a pulled file's bytes are fsynced
before the rename that makes it final, its folder after it (before the pull returns), and the journal is
consistent across a power cut (WAL, synchronous=NORMAL; FULL on request). os.fsync and os.replace are wrapped to record what they were called on, in order (the
HTTP stays real); the cost is measured by ``download.FSYNC`` (benchmarks/fsync_cost.py reports it)."""
from __future__ import annotations

import os
import threading

import pytest

import drivesync
from drivesync import download
from drivesync.names import PARTIAL_SUFFIX
from drivesync.errors import UsageError
from drivesync.state import Journal

KiB, MiB = 1024, 1024 * 1024


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DRIVESYNC_API_URL", raising=False)


@pytest.fixture
def calls(monkeypatch):
    """Every os.fsync (with the path of its fd) and os.replace, in the order they happened."""
    log: list[tuple] = []
    lock = threading.Lock()
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        real_fsync(fd)
        with lock:
            log.append(("fsync", path))

    def replace(src, dst, **kw):
        real_replace(src, dst, **kw)
        with lock:
            log.append(("replace", os.fspath(src), os.fspath(dst)))

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to name what an fd is")
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return log


def test_each_pulled_file_is_synced_before_its_rename_and_its_folder_after(emulator, tmp_path, calls):
    emu = emulator
    top = emu.add_folder("ds")
    sub = emu.add_folder("sub", top)
    emu.add_file("small.txt", b"small and whole in one GET", parent_id=top)     # the in-memory path
    emu.add_file("mid.bin", size=3 * MiB + 7, seed=1, parent_id=sub)           # one stream, checkpointed
    emu.add_file("big.bin", size=9 * MiB + 3, seed=2, parent_id=top)           # ranged, several streams
    emu.add_doc("Notes", top, kind="document", text="exported")                 # an export
    out = tmp_path / "out"
    download.FSYNC.reset()
    result = drivesync.pull("ds", str(out), credentials=emu.credentials_path, api_url=emu.url, progress=False,
                            multistream_cutoff=4 * MiB, range_size=1 * MiB)
    assert result.ok, result.failed
    finals = {"small.txt": out, "sub/mid.bin": out / "sub", "big.bin": out, "Notes.docx": out}
    for rel, folder in finals.items():
        final = str(out / rel)
        renames = [i for i, c in enumerate(calls) if c[0] == "replace" and c[2] == final]
        assert len(renames) == 1, (rel, calls)
        i = renames[0]
        part = calls[i][1]
        assert PARTIAL_SUFFIX in os.path.basename(part)
        assert ("fsync", part) in calls[:i], f"{rel}: its bytes were not synced before the rename"
        assert ("fsync", str(folder)) in calls[i + 1:], f"{rel}: its folder was not synced after the rename"
    # The counter the cost measurement reads saw them all: each file, and each folder once (not once per file).
    assert download.FSYNC.calls >= len(finals) + 2 and download.FSYNC.folder_calls >= 2
    assert download.FSYNC.seconds > 0


def test_the_journal_is_consistent_by_default_and_syncs_every_commit_on_request(tmp_path, monkeypatch):
    # NORMAL in WAL mode: on disk at each checkpoint and at close (measured: FULL costs 8-25% of a pull).
    with Journal(tmp_path / "journal.db") as j:
        assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 1          # NORMAL
        assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        j.record_synced("/x", file_id="A", md5=None, size=1, mtime_ns=1, remote_modified=None, direction="pull")
    assert not os.path.exists(tmp_path / "journal.db-wal")                     # checkpointed into the file at close
    monkeypatch.setenv("DRIVESYNC_JOURNAL_SYNC", "full")
    with Journal(tmp_path / "journal.db") as j:
        assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2          # FULL: every commit
    monkeypatch.setenv("DRIVESYNC_JOURNAL_SYNC", "sometimes")
    with pytest.raises(UsageError, match="NORMAL or FULL"):
        Journal(tmp_path / "journal.db")


def test_fsync_false_syncs_nothing_and_still_pulls_everything(emulator, tmp_path, calls, monkeypatch):
    emu = emulator
    top = emu.add_folder("ds")
    emu.add_file("small.txt", b"small", parent_id=top)
    big = emu.add_file("big.bin", size=9 * MiB, seed=3, parent_id=top)
    monkeypatch.setenv("DRIVESYNC_FSYNC", "0")
    out = tmp_path / "out"
    result = drivesync.pull("ds", str(out), credentials=emu.credentials_path, api_url=emu.url, progress=False,
                            multistream_cutoff=4 * MiB, range_size=1 * MiB)
    assert result.ok and (out / "big.bin").read_bytes() == emu.content(big)
    assert not [c for c in calls if c[0] == "fsync"], calls


def test_a_file_waiting_for_its_fsync_hands_its_transfer_slot_to_the_next_download(emulator, tmp_path, monkeypatch):
    """A disk slow to sync must not idle the network: with 2 transfers, the first fsync is held until 4 files
    are written (each still a partial, none final). That happens only if files waiting for their fsync gave
    their slots on; holding them, the pull could never get past 2 and the fsync would time out."""
    emu = emulator
    top = emu.add_folder("ds")
    want = {f"f{i}.bin": emu.content(emu.add_file(f"f{i}.bin", size=40 * KiB + i, seed=10 + i, parent_id=top))
            for i in range(8)}
    out = tmp_path / "out"
    real_fsync = os.fsync
    seen: list[int] = []

    def partials() -> int:
        return len([n for n in os.listdir(out) if PARTIAL_SUFFIX in n])

    def slow_disk_fsync(fd):
        import stat
        import time
        if stat.S_ISREG(os.fstat(fd).st_mode) and not seen:
            deadline = time.monotonic() + 10
            while partials() < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            seen.append(partials())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_disk_fsync)
    result = drivesync.pull("ds", str(out), credentials=emu.credentials_path, api_url=emu.url, progress=False,
                            transfers=2)
    assert result.ok, result.failed
    assert seen and seen[0] >= 4, f"only {seen} files were written while the first one waited for its fsync"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == want
