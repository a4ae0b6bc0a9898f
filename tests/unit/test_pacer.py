"""pacer.py arithmetic with a fake clock: token bucket rates and bursts, backoff, the async loop."""
import asyncio
import random

import pytest

from drivesync.pacer import Pacer, TokenBucket, backoff_delay


def test_bucket_allows_a_burst_then_paces_at_the_rate():
    b = TokenBucket(rate=10, burst=5)
    waits = [b.take(0.0) for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(0.1) and waits[6] == pytest.approx(0.2)


def test_bucket_refills_with_time_but_not_beyond_burst():
    b = TokenBucket(rate=10, burst=5)
    for _ in range(5):
        b.take(0.0)
    assert b.take(0.35) == 0.0             # 3.5 tokens came back, one used
    assert b.take(100.0) == 0.0 and b.tokens == pytest.approx(4.0)   # capped at burst


def test_long_run_rate_is_exact():
    b = TokenBucket(rate=200, burst=20)
    now, sent = 0.0, 0
    while now < 10.0:
        wait = b.take(now)
        now += wait
        sent += 1
    assert sent == pytest.approx(200 * 10 + 20, abs=2)


def test_slow_down_blocks_everyone_for_the_given_time():
    b = TokenBucket(rate=10, burst=5)
    b.slow_down(0.0, 2.0)
    assert b.take(0.0) == pytest.approx(2.1)


@pytest.mark.parametrize("attempt, expected", [(0, 1.0), (1, 2.0), (3, 8.0), (10, 32.0)])
def test_backoff_is_truncated_exponential(attempt, expected):
    assert backoff_delay(attempt, base=1.0, cap=32.0, jitter=0.0) == expected
    assert backoff_delay(attempt, base=1.0, cap=32.0, jitter=0.5) == expected + 0.5


def test_retry_after_wins_when_longer():
    assert backoff_delay(0, base=1.0, cap=32.0, jitter=0.0, retry_after=5.0) == 5.0
    assert backoff_delay(4, base=1.0, cap=32.0, jitter=0.0, retry_after=5.0) == 16.0


def test_pacer_sleeps_what_the_bucket_says_and_writes_use_both_buckets():
    clock = [0.0]
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    pacer = Pacer(tps=100, write_tps=2, burst=2, write_burst=1, clock=lambda: clock[0], sleep=fake_sleep,
                  rng=random.Random(0))

    async def go():
        await pacer.wait()
        await pacer.wait()
        await pacer.wait()            # third request: bucket empty -> 1/100 s
        await pacer.wait(write=True)  # write bucket full (1), request bucket in debt
        await pacer.wait(write=True)  # write bucket empty -> 1/2 s

    asyncio.run(go())
    assert slept[0] == pytest.approx(0.01)
    assert slept[-1] == pytest.approx(0.5, abs=0.02)
    assert 0.0 <= pacer.jitter() < 1.0


def test_rate_limited_pauses_all_requests():
    clock = [0.0]
    pacer = Pacer(tps=10, write_tps=1, burst=10, clock=lambda: clock[0])
    pacer.rate_limited(3.0)
    assert pacer.requests.take(0.0) == pytest.approx(3.1)
