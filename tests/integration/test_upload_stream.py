"""A resumable chunk is streamed from its file, never held whole (issue 13: push memory, and no pause to
read the next chunk): its pieces, its running md5 on every try, and the last line of defence (the file
changed while its final chunk went out) checked against the emulator over real sockets."""
from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time

import pytest

from drivesync import upload as upload_mod
from drivesync.config import Settings
from drivesync.errors import BodyAborted
from drivesync.session import open_drive
from drivesync.emulator.testing import Emulator  # an import error fails these tests, never skips them

KiB, MiB = 1024, 1024 * 1024


def _collect(chunk) -> list[bytes]:
    async def run():
        return [bytes(p) async for p in chunk.pieces()]
    return asyncio.run(run())


def test_a_chunk_is_read_piece_by_piece_and_every_try_hashes_from_the_prefix(tmp_path):
    data = os.urandom(3 * upload_mod.READ_PIECE + 12345)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    start, length = 100_000, 2 * upload_mod.READ_PIECE + 777        # a chunk that starts mid-file
    fd = os.open(path, os.O_RDONLY)
    try:
        base = hashlib.md5(data[:start])
        chunk = upload_mod._FileChunk(fd, start, length, base, None)
        assert len(chunk) == length and chunk.hasher is None
        for _ in range(2):                                           # a retry: a fresh iteration
            pieces = _collect(chunk)
            assert max(len(p) for p in pieces) <= upload_mod.READ_PIECE
            assert b"".join(pieces) == data[start:start + length]
            assert chunk.hasher.hexdigest() == hashlib.md5(data[:start + length]).hexdigest()
        assert base.hexdigest() == hashlib.md5(data[:start]).hexdigest(), "the prefix hash is never touched"
    finally:
        os.close(fd)


def test_the_final_chunk_stops_before_its_last_piece_when_the_check_fails(tmp_path):
    data = os.urandom(2 * upload_mod.READ_PIECE + 5)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    seen: list[str] = []
    try:
        def check(whole_md5):
            seen.append(whole_md5)
            return "changed while it was uploaded"

        chunk = upload_mod._FileChunk(fd, 0, len(data), hashlib.md5(), check)
        sent: list[bytes] = []

        async def run():
            async for p in chunk.pieces():
                sent.append(bytes(p))
        with pytest.raises(BodyAborted, match="changed while it was uploaded"):
            asyncio.run(run())
        assert seen == [hashlib.md5(data).hexdigest()], "checked once, with the md5 of every byte read"
        assert b"".join(sent) == data[:2 * upload_mod.READ_PIECE], "all but the last piece went out"
        assert chunk.aborted and chunk.hasher is None

        # A file that ends before the chunk does stops the body too.
        short = upload_mod._FileChunk(fd, 0, len(data) + 10, hashlib.md5(), None)
        with pytest.raises(BodyAborted, match="shrank"):
            _collect(short)
    finally:
        os.close(fd)


def test_a_file_rewritten_while_its_final_chunk_is_sent_leaves_nothing_on_drive(tmp_path, monkeypatch):
    """One final chunk of 24 MiB at 4 MiB/s: the file is rewritten in place a second in, so the md5 of
    what was read no longer matches the file's stat. The body stops before its last byte, the upload
    fails with FileChanged at once (one chunk request: the transport does not retry it), and Drive holds
    no file and no finished session."""
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    size = 24 * MiB
    path = tmp_path / "ckpt.pt"
    path.write_bytes(os.urandom(size))
    with Emulator(tmp_path / "emu", profile="unthrottled") as emu:
        emu.configure(upload_bps_per_connection=4 * MiB, upload_burst_per_connection=256 * KiB)
        settings = Settings(api_url=emu.url, upload_cutoff=1 * MiB, upload_chunk_size=size,
                            backoff_base=0.01, backoff_cap=0.05)

        def rewrite_soon():
            time.sleep(1.0)
            with open(path, "r+b") as fh:
                fh.seek(size // 2)
                fh.write(b"\0" * 4096)

        async def main():
            async with open_drive(settings, credentials=emu.credentials_path) as drive:
                writer = threading.Thread(target=rewrite_soon)
                writer.start()
                try:
                    before = drive.t.stats.requests
                    with pytest.raises(upload_mod.FileChanged, match="changed while it was uploaded"):
                        await upload_mod.upload_file(drive, str(path), upload_mod.UploadTarget("ckpt.pt"))
                    return drive.t.stats.requests - before
                finally:
                    writer.join()

        requests = asyncio.run(main())
        assert requests == 2, f"one session start and one chunk, not retried: {requests} requests"
        assert emu.store.execute("SELECT id FROM files WHERE name = 'ckpt.pt'") == []
        sessions = emu.store.execute("SELECT committed, done_file_id FROM upload_sessions")
        assert len(sessions) == 1 and sessions[0]["done_file_id"] is None and sessions[0]["committed"] < size
