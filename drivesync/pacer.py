"""Request pacing and backoff: how long to wait before the next request.

The arithmetic is pure (``TokenBucket.take`` and ``backoff_delay`` take the clock and the dice as
arguments, so tests use a fake clock); ``Pacer`` is the thin async loop around it. This module never
sends a request and never decides whether an error is worth retrying (errors.classify does).
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``. Starts full."""

    rate: float
    burst: float
    tokens: float | None = None
    stamp: float | None = None

    def take(self, now: float, cost: float = 1.0) -> float:
        """Reserve ``cost`` tokens at time ``now``; return the seconds to wait before using them.

        The reservation is made at once (tokens may go negative), so concurrent callers queue up
        fairly instead of all waking at the same moment.
        """
        if self.tokens is None or self.stamp is None:
            self.tokens, self.stamp = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= cost
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def slow_down(self, now: float, seconds: float) -> None:
        """After a rate-limit answer: spend the bucket so nobody sends for ``seconds``."""
        self.take(now, 0)
        self.tokens = min(self.tokens or 0.0, -seconds * self.rate)


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: float, retry_after: float | None = None) -> float:
    """Truncated exponential backoff: min(cap, base * 2**attempt) plus ``jitter`` seconds (0..1 drawn by
    the caller). A server's Retry-After wins when it asks for longer."""
    delay = min(cap, base * (2 ** attempt)) + jitter
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


class Bandwidth:
    """--bwlimit: at most ``rate`` bytes per second across every transfer of a run, in both directions.

    A TokenBucket whose tokens are bytes, holding one second's worth (so a run never bursts beyond one
    second of its rate). ``delay(n, now)`` is the pure part: it reserves ``n`` bytes and says how long to
    wait before they may move; ``spend(n)`` waits that long. Readers call it after taking bytes off a socket
    (the unread rest waits in the kernel, and TCP slows the sender), writers before sending them."""

    def __init__(self, rate: float, *, clock=time.monotonic, sleep=asyncio.sleep):
        if not rate > 0:
            raise ValueError("a bandwidth limit must be positive")
        self.rate = float(rate)
        self.bucket = TokenBucket(self.rate, self.rate)
        self._clock = clock
        self._sleep = sleep
        #: Bytes that went through and seconds waited, for tests and -v.
        self.bytes = 0
        self.waited = 0.0

    def delay(self, nbytes: int, now: float) -> float:
        self.bytes += nbytes
        return self.bucket.take(now, float(nbytes)) if nbytes > 0 else 0.0

    async def spend(self, nbytes: int) -> None:
        wait = self.delay(nbytes, self._clock())
        if wait > 0:
            self.waited += wait
            await self._sleep(wait)


def on_beat(now: float, delay: float, beat: float) -> float:
    """``delay`` shortened so that the wait ends on the last multiple of ``beat`` (absolute clock time)
    at or before ``now + delay``: requests whose turns fall within one beat all leave at its start,
    together. Never longer than ``delay``; 0 when that beat has begun already. ``beat`` 0: ``delay``."""
    if beat <= 0 or delay <= 0:
        return max(delay, 0.0)
    return max(0.0, (now + delay + 1e-9) // beat * beat - now)    # 1e-9: a turn on the beat stays on it


class Pacer:
    """Paces all requests of one account: a bucket for every request and one for writes.

    Requests that wait for the request bucket leave on a ``beat``: each wakes at the start of the beat
    its turn falls in, with the others of that beat, instead of on a timer of its own. At 195 requests
    per second and a 50 ms beat that is 20 wake-ups a second instead of 195, and the responses come back
    close together, so one pass of the event loop handles several; a 2,000-file pull spent about a third
    less CPU (benchmarks/profile_pull.py, issue 13). The long-run rate is the bucket's still (turns are
    reserved as before); at most ``rate * beat`` requests (about 10) leave early, up to one beat before
    their turn, on top of ``burst``. Writes keep their exact turn: their bucket is small and slow."""

    def __init__(self, tps: float, write_tps: float, *, burst: int = 20, write_burst: int = 3, beat: float = 0.0,
                 clock=time.monotonic, sleep=asyncio.sleep, rng: random.Random | None = None):
        self.requests = TokenBucket(tps, burst)
        self.writes = TokenBucket(write_tps, write_burst)
        self.beat = beat
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def wait(self, *, write: bool = False) -> None:
        now = self._clock()
        delay = self.requests.take(now)
        if write:
            delay = max(delay, self.writes.take(now))
        else:
            delay = on_beat(now, delay, self.beat)
        if delay > 0:
            await self._sleep(delay)

    def jitter(self) -> float:
        return self._rng.random()

    def rate_limited(self, seconds: float) -> None:
        """Everyone pauses after a 403/429 rate-limit answer, not just the request that got it."""
        self.requests.slow_down(self._clock(), seconds)
