"""--bwlimit: a token bucket of bytes shared by every transfer, checked on a fake clock (no wall time)."""
from __future__ import annotations

import asyncio

import pytest

from drivesync.config import MiB, Settings
from drivesync.pacer import Bandwidth


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_one_seconds_worth_passes_at_once_then_the_rate_holds():
    bw = Bandwidth(1000)
    assert bw.delay(1000, now=0.0) == 0.0            # the bucket starts full: one second of the rate
    assert bw.delay(500, now=0.0) == pytest.approx(0.5)
    assert bw.delay(500, now=0.0) == pytest.approx(1.0)   # reservations queue up behind each other
    assert bw.delay(1000, now=5.0) == 0.0            # idle for long: full again, never more than one second's worth


def test_many_concurrent_transfers_share_one_limit():
    clock = FakeClock()
    bw = Bandwidth(1 * MiB, clock=clock, sleep=clock.sleep)

    async def transfer(chunks: int, size: int):
        for _ in range(chunks):
            await bw.spend(size)

    async def main():
        # 8 streams of 64 KiB reads and 2 uploads of 4 MiB chunks, all at once: 8 * 2 MiB + 2 * 8 MiB = 32 MiB.
        await asyncio.gather(*[transfer(32, 64 * 1024) for _ in range(8)], transfer(2, 4 * MiB),
                             transfer(2, 4 * MiB))

    asyncio.run(main())
    assert bw.bytes == 32 * MiB
    # 32 MiB at 1 MiB/s after a 1 MiB burst: 31 s of fake time, however the transfers interleave.
    assert clock.now == pytest.approx(31.0, rel=1e-6)
    assert bw.waited > 0


def test_a_limit_is_a_positive_rate():
    with pytest.raises(ValueError):
        Bandwidth(0)


def test_the_transport_applies_the_setting():
    from drivesync.transport import Transport

    assert Transport(Settings(), None).bandwidth is None
    t = Transport(Settings(bwlimit=2 * MiB), None)
    assert t.bandwidth is not None and t.bandwidth.rate == 2 * MiB
    clock = FakeClock()
    t.bandwidth = Bandwidth(2 * MiB, clock=clock, sleep=clock.sleep)

    async def read_like_a_download():
        for _ in range(6):
            await t.throttle(1 * MiB)

    asyncio.run(read_like_a_download())
    assert clock.now == pytest.approx(2.0)           # 6 MiB at 2 MiB/s, the first 2 MiB at once
