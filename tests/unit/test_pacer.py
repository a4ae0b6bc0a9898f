"""pacer.py arithmetic with a fake clock: token bucket rates and bursts, backoff, the async loop."""
import asyncio
import heapq
import random

import pytest

from drivesync.pacer import Pacer, TokenBucket, backoff_delay, on_beat


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


def _stepping_clock():
    """A fake clock and a sleep that records each wait and moves the clock on by it: (clock, slept, sleep)."""
    clock = [0.0]
    slept: list = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    return clock, slept, fake_sleep


def test_pacer_sleeps_what_the_bucket_says_and_writes_use_both_buckets():
    clock, slept, fake_sleep = _stepping_clock()
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


def test_on_beat_ends_each_wait_at_the_start_of_the_beat_its_turn_falls_in():
    assert on_beat(10.0, 0.012, 0.05) == 0.0                   # turn 10.012: that beat began at 10.00
    assert on_beat(10.0, 0.07, 0.05) == pytest.approx(0.05)    # turn 10.07: leaves at 10.05
    assert on_beat(10.03, 0.07, 0.05) == pytest.approx(0.07)   # turn 10.10 is itself on the beat
    assert on_beat(10.0, 0.07, 0.0) == 0.07                    # no beat: the exact turn
    assert on_beat(10.0, 0.0, 0.05) == 0.0


def _paced_run(beat: float, n: int):
    """n requests, all waiting at once, through a 200/s burst-20 pacer on a fake clock whose sleeps end
    in order of their wake time: (wake-up times, send times)."""
    clock = [0.0]
    timers: list = []
    sent: list = []

    async def fake_sleep(seconds):
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(timers, (clock[0] + seconds, id(fut), fut))
        await fut

    pacer = Pacer(tps=200, write_tps=3, burst=20, beat=beat, clock=lambda: clock[0], sleep=fake_sleep)

    async def one():
        await pacer.wait()
        sent.append(clock[0])

    async def go():
        todo = [asyncio.ensure_future(one()) for _ in range(n)]
        wakeups = []
        while True:
            for _ in range(3):                      # let every woken request run to its next wait
                await asyncio.sleep(0)
            if not timers:
                break
            when = timers[0][0]
            wakeups.append(when)
            clock[0] = when
            while timers and timers[0][0] <= when:
                heapq.heappop(timers)[2].set_result(None)
        assert all(t.done() for t in todo)
        return wakeups

    wakeups = asyncio.run(go())
    return wakeups, sent


def test_waiting_requests_leave_together_on_the_beat_at_the_same_long_run_rate():
    exact_wakeups, exact = _paced_run(0.0, 1000)
    beat_wakeups, beaten = _paced_run(0.05, 1000)
    # One timer per request without a beat; one per 50 ms with it.
    assert len(exact_wakeups) == 1000 - 20
    assert len(beat_wakeups) <= exact[-1] / 0.05 + 1
    assert all(abs(t / 0.05 - round(t / 0.05)) < 1e-9 for t in beat_wakeups)
    # The rate holds: nobody leaves later than the exact turn, nobody earlier than one beat before it,
    # so any second holds at most 200 + burst + 200 * beat requests.
    assert sorted(beaten) == beaten and len(beaten) == len(exact)
    for b, e in zip(beaten, exact):
        assert e - 0.05 - 1e-9 <= b <= e + 1e-9
    assert beaten[-1] >= exact[-1] - 0.05
    for start in [i * 0.25 for i in range(20)]:
        assert sum(start <= t < start + 1.0 for t in beaten) <= 200 + 20 + 10


def test_writes_keep_their_exact_turn():
    clock, slept, fake_sleep = _stepping_clock()
    pacer = Pacer(tps=100, write_tps=3, burst=1, write_burst=1, beat=0.05, clock=lambda: clock[0], sleep=fake_sleep)

    async def go():
        await pacer.wait(write=True)
        await pacer.wait(write=True)    # its exact turn, 1/3 s, not the beat before it (0.30 s)

    asyncio.run(go())
    assert slept == [pytest.approx(1 / 3)]
