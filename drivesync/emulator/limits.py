"""Limits and faults: the `Profile` numbers, exact token buckets, and seeded fault decisions.

Owns every number that makes the emulator behave like Drive under load (latency, bandwidth, request
quota, write rate) and every injected fault (5xx, cut connections, early token expiry, upload session
expiry). A benchmark computes the physical floor of a transfer from `Profile.as_dict()`, so the buckets
here are exact: a transfer of N bytes through a bucket of rate r and burst b takes at least (N - b) / r
seconds, and never less. Must never touch HTTP or the store: the server asks, this module answers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import threading
import time
from dataclasses import dataclass

MB = 1_000_000
JSON_CUT_MODES = ("truncated", "drop", "html")
KiB = 1024
MiB = 1024 * 1024
GiB = 1024 * MiB


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

    # What Google's front end does that Drive's backend does not (frontend.py; all off by default).
    # gzip: JSON and batch answers gzip-encoded when the request has Accept-Encoding: gzip AND a
    # User-Agent containing "gzip"; media and export never.
    gzip_json: bool = False
    # Share of Drive calls the front end answers itself with an HTML 502/503 page (before auth, quota
    # or the handler); html_error_503_share of them are 503. html_error_next: the next K calls.
    html_error_rate: float = 0.0
    html_error_503_share: float = 0.5
    html_error_next: int = 0
    # Share of Drive's own 500/502/503/504 answers (e.g. injected backendError) sent as an HTML page.
    html_5xx_share: float = 0.0
    # files.list whose q ORs two or more `'X' in parents` terms: this share answered as an empty list
    # (no nextPageToken). ord_parents_empty_next: the next K such queries (a counter, consumed).
    ord_parents_empty_rate: float = 0.0
    ord_parents_empty_next: int = 0
    # Share of JSON 200 answers of Drive calls that are spoiled, in one of json_cut_modes (comma-separated,
    # picked at random): "truncated" (a complete 200 whose body is the first part of the JSON),
    # "drop" (Content-Length of the whole body, half of it, then the connection closes), "html" (a 200
    # HTML page, as a captive portal or proxy answers). json_cut_next: the next K such answers.
    json_cut_rate: float = 0.0
    json_cut_next: int = 0
    json_cut_modes: str = "truncated"
    # Share of ranged media requests answered 200 with the whole body (Range ignored); _next: the next K.
    range_ignored_rate: float = 0.0
    range_ignored_next: int = 0
    # A test fault, not a habit of Google's: the next K uploads are stored with one byte flipped (and
    # Drive's md5Checksum is that of the stored bytes), as corruption on the way would leave them.
    corrupt_upload_next: int = 0
    # Share of binary files whose metadata carries no md5Checksum/sha1Checksum/sha256Checksum (decided per
    # file id by a hash with the seed, so a file always lacks them or never); X-Goog-Hash still comes.
    md5_missing_rate: float = 0.0

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
    "storage_limit_bytes": "15 GB free account = 15 * 1024**3 bytes (16106127360): Google's storage 'GB' are binary; "
    "a '17GB' Drive answers quotaBytesTotal 18253611008 = 17 * 1024**3 (rclone issue 1768)",
    # google-like only: the front end's habits (shared/drive-api.md, "What Google's front end does").
    "gzip_json": "on: Drive API performance guide ('Using gzip'): gzip answers need Accept-Encoding: gzip and 'gzip' in the User-Agent",
    "html_error_rate": "0.005: ASSUMPTION for the share; the HTML 502/503 pages themselves are what Google's front end serves (drive-api.md 'Errors not from Drive'; handle-errors guide lists 502/503/504)",
    "html_error_503_share": "0.5: assumption, half 502 Bad Gateway, half 503",
    "html_5xx_share": "0.5: assumption; Google's front end turns some backend 5xx answers into its own HTML page (observed)",
    "ord_parents_empty_rate": "0.1: ASSUMPTION for the share; OR'd-parents listings sometimes come back empty (rclone issues #3114, #4289, its --drive-fast-list-bug-fix)",
    "json_cut_rate": "0.002: ASSUMPTION; answers cut mid-body and proxy/captive-portal HTML 200s reach real clients (drive-api.md 'Errors not from Drive')",
    "json_cut_modes": "truncated,drop,html: a complete-but-truncated body, a connection dropped mid-body, a 200 HTML page",
    "corrupt_upload_next": "a test fault (no rate in any profile): stands for bytes damaged between client and Drive, which only the md5 check catches",
    "range_ignored_rate": "0.05: ASSUMPTION for the share; Drive's manage-downloads guide: a server may ignore Range and answer 200 with the whole body",
    "md5_missing_rate": "0.01: ASSUMPTION for the share; a client needs a rule for a binary file without md5Checksum (drive-api.md 'Hashes'); media still carries X-Goog-Hash",
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
        storage_limit_bytes=15 * GiB,
    ),
}

# drive-like's numbers (whatever they are) plus every front-end oddity of frontend.py switched on.
GOOGLE_LIKE_ODDITIES = dict(
    gzip_json=True,
    html_error_rate=0.005,
    html_error_503_share=0.5,
    html_5xx_share=0.5,
    ord_parents_empty_rate=0.1,
    json_cut_rate=0.002,
    json_cut_modes="truncated,drop,html",
    range_ignored_rate=0.05,
    md5_missing_rate=0.01,
)
PROFILES["google-like"] = PROFILES["drive-like"].replace(name="google-like", **GOOGLE_LIKE_ODDITIES)


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
        # The front end's "next K" counters (Profile field -> remaining count), consumed by the decisions.
        self.remaining = {name: getattr(profile, name) for name in self._COUNTERS}
        self._buckets: dict[str, TokenBucket | None] = {}
        self._build_buckets(None)
        self.daily_upload_log: list[tuple[float, int]] = []

    _COUNTERS = ("html_error_next", "ord_parents_empty_next", "json_cut_next", "range_ignored_next",
                 "corrupt_upload_next")

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
            for name in self._COUNTERS:
                if name in overrides:
                    self.remaining[name] = getattr(new, name)
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

    # ---- the front end's oddities (frontend.py asks)

    def _counted_or_drawn(self, counter: str, rate: float) -> bool:
        """True when the counter has calls left (one is consumed) or a draw falls under `rate`.
        Draws only when rate > 0, so profiles without the oddity keep their random stream as it was."""
        with self._lock:
            if self.remaining.get(counter, 0) > 0:
                self.remaining[counter] -= 1
                return True
            return rate > 0 and self.rng.random() < rate

    def frontend_error(self) -> int | None:
        """None, or the status (502/503) of an HTML error page the front end answers this call with."""
        p = self.profile
        if not self._counted_or_drawn("html_error_next", p.html_error_rate):
            return None
        with self._lock:
            return 503 if self.rng.random() < p.html_error_503_share else 502

    def html_5xx(self) -> bool:
        """Whether this 5xx answer of Drive's goes out as the front end's HTML page instead of JSON."""
        share = self.profile.html_5xx_share
        if share <= 0:
            return False
        with self._lock:
            return share >= 1 or self.rng.random() < share

    def ord_parents_empty(self) -> bool:
        """Whether this files.list with OR'd parents is answered as an empty list."""
        return self._counted_or_drawn("ord_parents_empty_next", self.profile.ord_parents_empty_rate)

    def json_cut(self) -> str | None:
        """None, or how this JSON 200 answer is spoiled: "truncated", "drop" or "html"."""
        p = self.profile
        if not self._counted_or_drawn("json_cut_next", p.json_cut_rate):
            return None
        modes = [m.strip() for m in p.json_cut_modes.split(",") if m.strip() in JSON_CUT_MODES] or ["truncated"]
        with self._lock:
            return modes[0] if len(modes) == 1 else self.rng.choice(modes)

    def corrupt_upload(self) -> bool:
        """Whether this upload's bytes are stored with one byte flipped (corrupt_upload_next)."""
        return self._counted_or_drawn("corrupt_upload_next", 0.0)

    def range_ignored(self) -> bool:
        """Whether this ranged media request is answered 200 with the whole body."""
        return self._counted_or_drawn("range_ignored_next", self.profile.range_ignored_rate)

    def md5_missing(self, file_id: str) -> bool:
        """Whether this file's metadata lacks its checksums: a hash of (seed, id), so the same file always
        answers the same way for a given seed and rate, whatever the order of requests."""
        p = self.profile
        if p.md5_missing_rate <= 0:
            return False
        h = hashlib.blake2b(f"{p.seed}:{file_id}".encode(), digest_size=8).digest()
        return int.from_bytes(h, "big") / 2.0**64 < p.md5_missing_rate

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
