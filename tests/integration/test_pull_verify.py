"""A file whose bytes do not hash to Drive's md5 is downloaded once more, then reported as failed,
and never appears at its final path (real sockets; the emulator's stored bytes are corrupted on disk)."""
import asyncio
import os

from drivesync.config import Settings
from drivesync.puller import pull_async


def test_md5_mismatch_is_fetched_twice_then_fails_without_a_final_file(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    folder = emulator.add_folder("data")
    good = emulator.add_file("good.bin", os.urandom(300_000), parent_id=folder)
    small_bad = emulator.add_file("bad.bin", os.urandom(200_000), parent_id=folder)
    big_bad = emulator.add_file("big.bin", os.urandom(3 * 1024 * 1024), parent_id=folder)
    for fid in (small_bad, big_bad):  # same size, other bytes: Drive's md5 no longer matches what it serves
        path = emulator.store.content_path(emulator.file(fid)["headRevisionId"])
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    emulator.reset_stats()

    settings = Settings(api_url=emulator.url, multistream_cutoff=1024 * 1024, range_size=1024 * 1024)
    local = tmp_path / "local"
    result = asyncio.run(pull_async("data", str(local), settings=settings, credentials=emulator.credentials_path))

    assert sorted(f.path for f in result.failed) == ["bad.bin", "big.bin"]
    assert all("md5 mismatch" in f.reason and f.reason.endswith("twice") for f in result.failed), result.failed
    assert (local / "good.bin").read_bytes() == emulator.content(good)
    assert not (local / "bad.bin").exists() and not (local / "big.bin").exists()
    assert not [n for n in os.listdir(local) if n.endswith(".drivesync-partial")]
    # each bad file went over the wire twice, the good one once
    sent = emulator.stats()["bytes_sent"]
    assert sent >= 300_000 + 2 * 200_000 + 2 * 3 * 1024 * 1024
