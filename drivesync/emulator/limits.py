"""Limits and faults: the `Profile` numbers, exact token buckets, and seeded fault decisions.

Owns every number that makes the emulator behave like Drive under load (latency, bandwidth, request
quota, write rate) and every injected fault (5xx, cut connections, early token expiry, upload session
expiry). A benchmark computes the physical floor of a transfer from `Profile.as_dict()`, so the buckets
here are exact: a transfer of N bytes through a bucket of rate r and burst b takes at least (N - b) / r
seconds, and never less. Must never touch HTTP or the store: the server asks, this module answers.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from dataclasses import dataclass

MB = 1_000_000
KiB = 1024
MiB = 1024 * 1024


@dataclass(frozen=True)
class Profile:
    """Every limit and fault the emulator applies. None means unlimited. Times in seconds, rates per second."""

    name: str = "unthrottled"

    # Latency added before a request is answered. Metadata: before the JSON answer. Media: time to the
    # first byte of a download (before the response headers).
    metadata_latency_s: float = 0.0
    media_latency_s: float = 0.0

    # Bandwidth, bytes per second, token buckets (burst = bucket size in bytes).
    download_bps_per_connection: float | None = None
    download_burst_per_connection: int = 1 * MiB
    download_bps_total: float | None = None
    download_burst_total: int = 4 * MiB
    upload_bps_per_connection: float | None = None
    upload_burst_per_connection: int = 1 * MiB
    upload_bps_total: float | None = None
    upload_burst_total: int = 4 * MiB

    # Request quota (every Drive API call: metadata, media, upload requests, each call inside a batch).
    requests_per_s: float | None = None
    request_burst: int = 100
    # Sustained writes (creates, metadata updates, deletes, uploads started; not upload chunks).
    writes_per_s: float | None = None
    write_burst: int = 3
    # What an exceeded quota answers: this share gets 429 rateLimitExceeded, the rest
    # 403 userRateLimitExceeded (domain usageLimits). Retry-After only when set.
    rate_limit_429_share: float = 0.0
    retry_after_s: float | None = None
    # Bytes uploaded per rolling day before 403 userRateLimitExceeded (Drive's 750 GB/day).
    daily_upload_bytes: int | None = None
    # Storage quota shown by about.get and enforced on upload (403 storageQuotaExceeded).
    storage_limit_bytes: int | None = None

    # Injected faults. Randomness comes from random.Random(seed).
    seed: int = 0
    error_rate: float = 0.0  # share of API requests answered 500/503 backendError
    error_503_share: float = 0.5  # of those, the share that is a 503
    cut_share: float = 0.0  # share of media responses cut after cut_after_bytes body bytes
    cut_next: int = 0  # cut the next K media responses (a counter, consumed)
    cut_after_bytes: int = 1 * MiB

    # Lifetimes.
    token_lifetime_s: float = 3600.0
    upload_session_lifetime_s: float = 7 * 24 * 3600.0

    # Export: Drive refuses to export more than 10 MB (403 exportSizeLimitExceeded).
    export_size_limit_bytes: int = 10 * MB

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **overrides) -> "Profile":
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown profile settings: {sorted(unknown)}")
        return dataclasses.replace(self, **overrides)


# Where each drive-like number comes from. The benchmark prints these next to the floor it computes.
SOURCES = {
    "metadata_latency_s": "50 ms: typical round trip of a Drive v3 metadata call from a cloud VM (observed order of magnitude)",
    "media_latency_s": "100 ms to first byte of alt=media: Drive redirects media to a content server (observed order of magnitude)",
    "download_bps_per_connection": "25 MB/s: per-stream cap users report for Drive v3 downloads (rclone issue 2573)",
    "download_burst_per_connection": "1 MiB bucket: assumption, small so the floor is (bytes - 1 MiB) / 25 MB/s",
    "download_bps_total": "150 MB/s: a cloud VM's share of a network link (assumption)",
    "download_burst_total": "4 MiB bucket: assumption",
    "upload_bps_per_connection": "25 MB/s: ASSUMPTION, the download per-stream cap reused for uploads",
    "upload_bps_total": "150 MB/s: ASSUMPTION, the download total cap reused for uploads",
    "requests_per_s": "200/s: Google's published 12,000 queries per minute per user",
    "request_burst": "100 requests: assumption (half a second of quota), so pacing matters",
    "writes_per_s": "3/s: Google's documented sustained write limit (creates/updates) per account",
    "write_burst": "3 writes: assumption (one second of the sustained rate)",
    "rate_limit_429_share": "0.5: both 403 userRateLimitExceeded and 429 rateLimitExceeded occur in the wild; half each",
    "daily_upload_bytes": "750 GB/day: Google's documented upload cap per user",
    "token_lifetime_s": "3600 s: Google access tokens live one hour",
    "upload_session_lifetime_s": "one week: Drive's documented resumable session lifetime",
    "export_size_limit_bytes": "10 MB: Drive's documented export limit",
}

PROFILES: dict[str, Profile] = {
    "unthrottled": Profile(name="unthrottled"),
    "drive-like": Profile(
        name="drive-like",
        metadata_latency_s=0.050,
        media_latency_s=0.100,
        download_bps_per_connection=25 * MB,
        download_burst_per_connection=1 * MiB,
        download_bps_total=150 * MB,
        download_burst_total=4 * MiB,
        upload_bps_per_connection=25 * MB,
        upload_burst_per_connection=1 * MiB,
        upload_bps_total=150 * MB,
        upload_burst_total=4 * MiB,
        requests_per_s=200.0,
        request_burst=100,
        writes_per_s=3.0,
        write_burst=3,
        rate_limit_429_share=0.5,
        daily_upload_bytes=750 * 1000 * MB,
    ),
}


def get_profile(profile: "str | Profile", **overrides) -> Profile:
    base = PROFILES[profile] if isinstance(profile, str) else profile
    return base.replace(**overrides) if overrides else base


class TokenBucket:
    """An exact token bucket that may go into debt.

    `reserve(n)` takes n tokens now and returns how long the caller must wait before using them.
    Waiting until the debt is paid makes the long-run rate exactly `rate`, with at most `burst`
    tokens spent ahead of it; concurrent callers queue behind each other's debt (FIFO by reservation).
    `try_take(n)` takes n tokens only if available (for quotas that reject instead of delaying).
    Thread-safe; the clock is injectable for tests.
    """

    def __init__(self, rate: float, burst: float, clock=time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self.stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def reserve(self, n: float) -> float:
        with self._lock:
            self._refill()
            self.tokens -= n
            return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def try_take(self, n: float = 1.0) -> bool:
        with self._lock:
            self._refill()
            if self.tokens >= n:
                self.tokens -= n
                return True
            return False

    def wait_time(self, n: float = 1.0) -> float:
        """Seconds until n tokens would be available (for Retry-After hints)."""
        with self._lock:
            self._refill()
            return max(0.0, (n - self.tokens) / self.rate)


class Limits:
    """The live limits of one server: the current Profile, its buckets and the fault random stream.

    `configure(**overrides)` swaps the profile and rebuilds only the buckets whose numbers changed."""

    def __init__(self, profile: Profile, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self.profile = profile
        self.rng = random.Random(profile.seed)
        self.cut_remaining = profile.cut_next
        self._buckets: dict[str, TokenBucket | None] = {}
        self._build_buckets(None)
        self.daily_upload_log: list[tuple[float, int]] = []

    _BUCKETS = {
        "download_total": ("download_bps_total", "download_burst_total"),
        "upload_total": ("upload_bps_total", "upload_burst_total"),
        "requests": ("requests_per_s", "request_burst"),
        "writes": ("writes_per_s", "write_burst"),
    }

    def _build_buckets(self, old: Profile | None) -> None:
        p = self.profile
        for key, (rate_name, burst_name) in self._BUCKETS.items():
            rate, burst = getattr(p, rate_name), getattr(p, burst_name)
            if old is not None and (getattr(old, rate_name), getattr(old, burst_name)) == (rate, burst):
                continue
            self._buckets[key] = TokenBucket(rate, burst, self.clock) if rate else None

    def configure(self, **overrides) -> Profile:
        with self._lock:
            old = self.profile
            new = old.replace(**overrides)
            self.profile = new
            self._build_buckets(old)
            if "seed" in overrides:
                self.rng = random.Random(new.seed)
            if "cut_next" in overrides:
                self.cut_remaining = new.cut_next
            return new

    def bucket(self, key: str) -> TokenBucket | None:
        return self._buckets.get(key)

    # ---- per-connection buckets (made fresh for each connection by the server)

    def download_connection_bucket(self) -> TokenBucket | None:
        p = self.profile
        if not p.download_bps_per_connection:
            return None
        return TokenBucket(p.download_bps_per_connection, p.download_burst_per_connection, self.clock)

    def upload_connection_bucket(self) -> TokenBucket | None:
        p = self.profile
        if not p.upload_bps_per_connection:
            return None
        return TokenBucket(p.upload_bps_per_connection, p.upload_burst_per_connection, self.clock)

    # ---- decisions

    def admit_request(self) -> bool:
        b = self._buckets.get("requests")
        return True if b is None else b.try_take(1)

    def admit_write(self) -> bool:
        b = self._buckets.get("writes")
        return True if b is None else b.try_take(1)

    def rate_limit_is_429(self) -> bool:
        share = self.profile.rate_limit_429_share
        if share <= 0:
            return False
        if share >= 1:
            return True
        with self._lock:
            return self.rng.random() < share

    def injected_error(self) -> int | None:
        """None, or the status code (500/503) of an injected backend error."""
        p = self.profile
        if p.error_rate <= 0:
            return None
        with self._lock:
            if self.rng.random() >= p.error_rate:
                return None
            return 503 if self.rng.random() < p.error_503_share else 500

    def cut_after(self) -> int | None:
        """None, or the number of body bytes after which this media response is cut."""
        p = self.profile
        with self._lock:
            if self.cut_remaining > 0:
                self.cut_remaining -= 1
                return p.cut_after_bytes
            if p.cut_share > 0 and self.rng.random() < p.cut_share:
                return p.cut_after_bytes
        return None

    def admit_upload_bytes(self, n: int) -> bool:
        """Count n uploaded bytes against the rolling-day cap; False once the cap is exceeded."""
        cap = self.profile.daily_upload_bytes
        if cap is None:
            return True
        now = self.clock()
        with self._lock:
            log = self.daily_upload_log
            while log and log[0][0] < now - 86400:
                log.pop(0)
            used = sum(x for _, x in log)
            if used >= cap:
                return False
            log.append((now, n))
            return True

    @property
    def throttles_media(self) -> bool:
        p = self.profile
        return bool(
            p.download_bps_per_connection or p.download_bps_total or p.cut_share > 0 or self.cut_remaining > 0
        )
