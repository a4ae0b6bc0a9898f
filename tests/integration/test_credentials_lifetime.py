"""Access tokens that live 2 seconds, during a pull and a push that last several lifetimes.

Every file must arrive intact, and the number of token grants must stay bounded: about one per
3/4 lifetime (refresh ahead of expiry), not one per request (a stampede).

Time here is counted, not measured: the emulator's token expiry, the Authorizer and the client's grant all
read one virtual clock that advances STEP_S with every request the emulator receives. A run's length
is then its request count, the same on any machine, and the bound on grants is computed from it: a
slow CI machine changes nothing, and a client that refreshes per request or stampedes fails.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import time

import pytest

from drivesync import auth
from drivesync.config import MiB, KiB, Settings
from drivesync.session import open_drive

LIFETIME_S = 2.0
STEP_S = 0.25  # virtual seconds per request the emulator receives: a token lives 8 requests


@pytest.fixture
def emu(emulator):
    return emulator


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


class RequestClock:
    """Virtual time: a fixed start plus STEP_S per request the emulator has received."""

    def __init__(self, emu):
        self.emu = emu
        self.start = time.time()

    def requests(self) -> int:
        return self.emu.server.stats.requests

    def now(self) -> float:
        return self.start + STEP_S * self.requests()

    def utcnow(self) -> dt.datetime:  # naive UTC, as google-auth and the Authorizer use
        return dt.datetime.fromtimestamp(self.now(), dt.timezone.utc).replace(tzinfo=None)


class _TimeModule:
    """`time` for the emulator's auth module: time() is the virtual clock, the rest the real module."""

    def __init__(self, now):
        self.time = now

    def __getattr__(self, name):
        return getattr(time, name)


@pytest.fixture
def clock(emu, monkeypatch):
    import google.auth._helpers

    from drivesync import oauth
    from drivesync.emulator import auth as emulator_auth

    c = RequestClock(emu)
    # The emulator's token expiry and check, and the client's expiry (utcnow + expires_in: drivesync's own
    # grant for user credentials, google-auth's for service accounts), on the clock.
    monkeypatch.setattr(emulator_auth, "time", _TimeModule(c.now))
    monkeypatch.setattr(oauth, "utcnow", c.utcnow)
    monkeypatch.setattr(google.auth._helpers, "utcnow", c.utcnow)
    return c


def grant_bound(elapsed_s: float) -> int:
    # Ahead-of-expiry refreshes come every 0.75 * lifetime; allow twice that rate plus a few 401 refreshes.
    return 3 + int(elapsed_s / (0.375 * LIFETIME_S))


def authorizer_for(emu, clock=None) -> auth.Authorizer:
    return auth.Authorizer(auth.load_credentials_file(emu.credentials_path),
                           clock=clock.utcnow if clock else None)


def test_pull_with_two_second_tokens(tmp_path, emu, state_dir, clock):
    folder = emu.add_folder("data")
    big = emu.add_file("big.bin", size=12 * MiB, seed=7, parent_id=folder)
    small = [emu.add_file(f"s{i:02d}.bin", os.urandom(200 * KiB + i), parent_id=folder) for i in range(12)]
    emu.configure(token_lifetime_s=LIFETIME_S)
    emu.reset_stats()
    authorizer = authorizer_for(emu, clock)
    settings = Settings(api_url=emu.url, transfers=4, streams_per_file=4, max_streams=8,
                        multistream_cutoff=2 * MiB, range_size=1 * MiB, io_buffer=128 * KiB)
    from drivesync.puller import pull_async

    result = asyncio.run(pull_async("data", str(tmp_path / "local"), settings=settings, authorizer=authorizer))
    elapsed = STEP_S * clock.requests()

    assert result.ok, result.failed
    local = tmp_path / "local"
    assert hashlib.md5((local / "big.bin").read_bytes()).hexdigest() == hashlib.md5(emu.content(big)).hexdigest()
    for fid in small:
        assert (local / emu.file(fid)["name"]).read_bytes() == emu.content(fid)
    stats = emu.stats()
    grants = stats["token_grants"]
    assert elapsed > 2 * LIFETIME_S, "the pull must outlive several tokens for this test to mean anything"
    assert 2 <= grants <= grant_bound(elapsed), (grants, elapsed, stats)
    assert authorizer.refreshes == grants


def test_push_with_two_second_tokens(tmp_path, emu, state_dir, clock):
    src = tmp_path / "checkpoints"
    src.mkdir()
    (src / "model.pt").write_bytes(os.urandom(10 * MiB))
    for i in range(8):
        (src / f"opt-{i}.pt").write_bytes(os.urandom(150 * KiB + i))
    emu.configure(token_lifetime_s=LIFETIME_S)
    emu.reset_stats()
    authorizer = authorizer_for(emu, clock)
    settings = Settings(api_url=emu.url, upload_transfers=4, upload_cutoff=1 * MiB, upload_chunk_size=1 * MiB)
    from drivesync.pusher import push_async

    async def run():
        async with open_drive(settings, authorizer=authorizer) as drive:
            return await push_async(str(src), "run1/checkpoints", settings=settings, drive=drive)

    result = asyncio.run(run())
    elapsed = STEP_S * clock.requests()

    assert result.ok, result.failed
    for path in src.iterdir():
        assert emu.content(emu.path_id(f"run1/checkpoints/{path.name}")) == path.read_bytes()
    stats = emu.stats()
    grants = stats["token_grants"]
    assert elapsed > 2 * LIFETIME_S
    assert 2 <= grants <= grant_bound(elapsed), (grants, elapsed, stats)
    assert authorizer.refreshes == grants


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
