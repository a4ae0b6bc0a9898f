"""Access tokens that live 2 seconds, during a pull and a push that last several lifetimes.

Every file must arrive intact, and the number of token grants must stay bounded: about one per
3/4 lifetime (refresh ahead of expiry), not one per request (a stampede). The bound is computed from
the run's own duration, so a slow CI machine changes the bound, never the verdict.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import time

import pytest

from drivesync import auth
from drivesync.config import MiB, KiB, Settings
from drivesync.session import open_drive

LIFETIME_S = 2.0


@pytest.fixture
def emu(emulator):
    return emulator


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def grant_bound(elapsed_s: float) -> int:
    # Ahead-of-expiry refreshes come every 0.75 * lifetime; allow twice that rate plus a few 401 refreshes.
    return 3 + int(elapsed_s / (0.375 * LIFETIME_S))


def authorizer_for(emu) -> auth.Authorizer:
    return auth.Authorizer(auth.load_credentials_file(emu.credentials_path))


def test_pull_with_two_second_tokens(tmp_path, emu, state_dir):
    folder = emu.add_folder("data")
    big = emu.add_file("big.bin", size=12 * MiB, seed=7, parent_id=folder)
    small = [emu.add_file(f"s{i:02d}.bin", os.urandom(200 * KiB + i), parent_id=folder) for i in range(12)]
    # ~14.4 MiB at 2 MiB/s in all: several token lifetimes.
    emu.configure(token_lifetime_s=LIFETIME_S, download_bps_total=2 * MiB, download_burst_total=256 * KiB)
    emu.reset_stats()
    authorizer = authorizer_for(emu)
    settings = Settings(api_url=emu.url, transfers=4, streams_per_file=4, max_streams=8,
                        multistream_cutoff=2 * MiB, range_size=1 * MiB, io_buffer=128 * KiB)
    from drivesync.puller import pull_async

    started = time.monotonic()
    result = asyncio.run(pull_async("data", str(tmp_path / "local"), settings=settings, authorizer=authorizer))
    elapsed = time.monotonic() - started

    assert result.ok, result.failed
    local = tmp_path / "local"
    assert hashlib.md5((local / "big.bin").read_bytes()).hexdigest() == hashlib.md5(emu.content(big)).hexdigest()
    for fid in small:
        assert (local / emu.file(fid)["name"]).read_bytes() == emu.content(fid)
    grants = emu.stats()["token_grants"]
    assert elapsed > 2 * LIFETIME_S, "the pull must outlive several tokens for this test to mean anything"
    assert 2 <= grants <= grant_bound(elapsed), (grants, elapsed)
    assert authorizer.refreshes == grants


def test_push_with_two_second_tokens(tmp_path, emu, state_dir):
    src = tmp_path / "checkpoints"
    src.mkdir()
    (src / "model.pt").write_bytes(os.urandom(10 * MiB))
    for i in range(8):
        (src / f"opt-{i}.pt").write_bytes(os.urandom(150 * KiB + i))
    emu.configure(token_lifetime_s=LIFETIME_S, upload_bps_total=2 * MiB, upload_burst_total=256 * KiB)
    emu.reset_stats()
    authorizer = authorizer_for(emu)
    settings = Settings(api_url=emu.url, upload_transfers=4, upload_cutoff=1 * MiB, upload_chunk_size=1 * MiB)
    from drivesync.pusher import push_async

    async def run():
        async with open_drive(settings, authorizer=authorizer) as drive:
            return await push_async(str(src), "run1/checkpoints", settings=settings, drive=drive)

    started = time.monotonic()
    result = asyncio.run(run())
    elapsed = time.monotonic() - started

    assert result.ok, result.failed
    for path in src.iterdir():
        assert emu.content(emu.path_id(f"run1/checkpoints/{path.name}")) == path.read_bytes()
    grants = emu.stats()["token_grants"]
    assert elapsed > 2 * LIFETIME_S
    assert 2 <= grants <= grant_bound(elapsed), (grants, elapsed)


def test_many_concurrent_calls_share_refreshes_when_tokens_are_revoked_under_them(tmp_path, emu):
    """expire_tokens() invalidates every token at once: 64 requests in flight get 401 together and
    must share one refresh, not send 64 token requests."""
    authorizer = authorizer_for(emu)
    settings = Settings(api_url=emu.url, tps=10_000, tps_burst=1_000)

    async def run():
        async with open_drive(settings, authorizer=authorizer) as drive:
            await drive.about()
            for _ in range(3):
                emu.expire_tokens()
                results = await asyncio.gather(*(drive.about() for _ in range(64)))
                assert all(r["user"]["emailAddress"] for r in results)

    emu.reset_stats()
    asyncio.run(run())
    assert emu.stats()["token_grants"] == 1 + 3  # the first token, then one per mass expiry
    assert authorizer.refreshes == 4
