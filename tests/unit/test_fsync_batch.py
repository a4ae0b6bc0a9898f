"""download.FsyncBatch: small files' fsyncs are made in one worker call per batch (not a thread hop per
file), every descriptor handed over is closed, and one file's failure is that file's alone."""
from __future__ import annotations

import asyncio
import os

import pytest

from drivesync import download


def _open_written(path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"bytes")
    return fd


def test_files_queued_together_are_synced_in_one_worker_call_and_all_closed(tmp_path, monkeypatch):
    batches: list[list[int]] = []
    synced: list[int] = []
    real = download._fsync_and_close

    def recording(fds):
        batches.append(list(fds))
        return real(fds)

    monkeypatch.setattr(download, "_fsync_and_close", recording)
    monkeypatch.setattr(download, "fsync_fd", lambda fd, folder=False: (os.fsync(fd), synced.append(fd)))
    fds = [_open_written(tmp_path / f"f{i}") for i in range(10)]

    async def main():
        batch = download.FsyncBatch()
        await asyncio.gather(*(batch.sync(fd) for fd in fds))

    asyncio.run(main())
    assert batches == [fds]                 # ten files, one hop
    assert sorted(synced) == sorted(fds)
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)                    # closed by the worker, not left to the caller


def test_a_failed_fsync_fails_only_its_own_file(tmp_path, monkeypatch):
    fds = [_open_written(tmp_path / f"f{i}") for i in range(3)]
    bad = fds[1]

    def fsync(fd, folder=False):
        if fd == bad:
            raise OSError(5, "Input/output error")
        os.fsync(fd)

    monkeypatch.setattr(download, "fsync_fd", fsync)

    async def main():
        batch = download.FsyncBatch()
        return await asyncio.gather(*(batch.sync(fd) for fd in fds), return_exceptions=True)

    got = asyncio.run(main())
    assert got[0] is None and got[2] is None
    assert isinstance(got[1], OSError) and got[1].errno == 5


def test_a_batch_starts_every_files_writeback_before_its_first_fsync(tmp_path, monkeypatch):
    """So the first fsync's journal commit carries the whole batch's blocks: each file's writeback is
    asked for before any fsync of the batch runs (a lone file goes straight to its fsync)."""
    events: list[tuple[str, int]] = []
    monkeypatch.setattr(download, "start_writeback", lambda fd, offset, nbytes: events.append(("writeback", fd)))
    monkeypatch.setattr(download, "fsync_fd", lambda fd, folder=False: (os.fsync(fd), events.append(("fsync", fd))))
    fds = [_open_written(tmp_path / f"f{i}") for i in range(4)]
    assert download._fsync_and_close(fds) == [None] * 4
    assert events == [("writeback", fd) for fd in fds] + [("fsync", fd) for fd in fds]
    events.clear()
    lone = _open_written(tmp_path / "lone")
    assert download._fsync_and_close([lone]) == [None]
    assert events == [("fsync", lone)]
