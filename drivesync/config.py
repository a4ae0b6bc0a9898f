"""One frozen settings object for every transfer knob, and the memory bound those knobs imply.

This module owns defaults and validation of user-facing numbers. It never does I/O.
"""
from __future__ import annotations

import math
import os
import urllib.parse
from dataclasses import dataclass, replace

from .errors import UsageError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

DEFAULT_API_URL = "https://www.googleapis.com"

#: Drive rejects non-final resumable chunks that are not a multiple of this.
UPLOAD_CHUNK_GRANULARITY = 256 * KiB


@dataclass(frozen=True)
class Settings:
    """Every knob of a pull or a push.

    Memory bound. Downloads never hold a file in memory: each stream reads at most ``io_buffer``
    bytes from its socket and writes them at their offset (``os.pwrite``) before reading more, and
    at most ``transfers * streams_per_file`` streams are open (``max_streams`` caps the total).
    Uploads hold one chunk per file in flight, plus at most one more copy of it in the socket's
    send buffer while it drains. So the transfer buffers are bounded by::

        max_streams * (io_buffer + socket_buffer)  +  2 * upload_transfers * upload_chunk_size

    A small file (at most ``io_buffer`` bytes) is held whole in its one stream's buffer, so it stays
    inside the same bound. With the defaults: 32 * (1 MiB + ~0.3 MiB) + 4 * 16 MiB ~= 106 MiB, on top
    of the interpreter and libraries (~60 MiB): peak RSS stays under 200 MB whatever the size of the
    dataset (measured: 136 MB pulling 2 x 1 GiB, 92 MB pulling 10,000 files; benchmarks/pull_bench.py).
    The listing of a tree costs about 1 KiB per remote file (10,000 files ~= 10 MB).
    A push of several large files holds 2 * 4 * 16 MiB = 128 MiB of chunks: measured 205 MB peak RSS
    for 4 parallel 150 MB uploads, with the CLI returning buffers of 1 MiB and more to the OS
    (cli._return_big_buffers_to_the_os; without it glibc's arenas kept 312 MB resident).
    """

    api_url: str = DEFAULT_API_URL
    #: Files downloaded at once. 32 keeps Drive's 200 requests/s busy when each small file waits
    #: ~100 ms for its first byte (8 managed ~80 files/s; measured in benchmarks/pull_bench.py).
    transfers: int = 32
    #: Parallel byte-range streams for one large download.
    streams_per_file: int = 8
    #: Cap on open download streams across all files (transfers * streams can exceed it).
    max_streams: int = 32
    #: Files at least this large are fetched as several parallel ranges.
    multistream_cutoff: int = 32 * MiB
    #: Size of one ranged GET of a multi-stream download; a retry re-fetches at most the unwritten rest of one.
    #: 32 MiB measured better than 64 MiB for 2 x 1 GiB (a shorter tail when the last ranges finish).
    range_size: int = 32 * MiB
    #: Bytes read from a socket before they are written to disk.
    io_buffer: int = 1 * MiB
    #: Files uploaded at once.
    upload_transfers: int = 4
    #: Files up to this size go up in one multipart request; larger ones as resumable sessions.
    upload_cutoff: int = 8 * MiB
    #: Bytes per resumable chunk; a multiple of 256 KiB.
    upload_chunk_size: int = 16 * MiB
    #: Request pacing (requests per second, all kinds). Drive allows 12,000/min = 200/s per user;
    #: 195 keeps a request-bound pull within 1.1x of that quota's floor without 403 storms (measured).
    tps: float = 195.0
    #: Writes (creates, updates, uploads started) per second. Drive sustains ~3/s per account.
    write_tps: float = 3.0
    #: Bursts allowed above the steady rates.
    tps_burst: int = 20
    write_burst: int = 3
    #: Request-level retries (5xx, 403/429 rate limits, dropped connections), then fail.
    max_retries: int = 10
    #: Truncated exponential backoff: base * 2**attempt + jitter, at most backoff_cap seconds.
    backoff_base: float = 1.0
    backoff_cap: float = 32.0
    #: Seconds of failing requests (no connection, 5xx, unreadable answers) with no success in between
    #: before a run gives up on Drive with one line (the token endpoint counts too). --give-up-after.
    give_up_after: float = 120.0
    #: Seconds without a byte from the server before a stream is abandoned and retried.
    read_timeout: float = 60.0
    connect_timeout: float = 30.0
    #: Folders per batched listing query ('a' in parents or 'b' in parents ...).
    list_batch: int = 50
    #: Listing queries in flight.
    list_concurrency: int = 4

    def __post_init__(self) -> None:
        positive = (
            "transfers", "streams_per_file", "max_streams", "range_size", "io_buffer",
            "upload_transfers", "upload_chunk_size", "list_batch", "list_concurrency",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.tps <= 0 or self.write_tps <= 0:
            raise UsageError("--tps must be a positive number")
        if self.upload_chunk_size % UPLOAD_CHUNK_GRANULARITY:
            raise UsageError("upload chunk size must be a multiple of 256 KiB")
        if not self.give_up_after > 0:
            raise UsageError("--give-up-after must be a positive number of seconds")
        if self.max_retries < 0:
            raise UsageError("retries must be >= 0")
        check_api_url(self.api_url)

    def with_(self, **changes) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def metadata_url(self) -> str:
        return self.api_url.rstrip("/") + "/drive/v3"

    @property
    def upload_url(self) -> str:
        return self.api_url.rstrip("/") + "/upload/drive/v3"


def check_api_url(url: str) -> str:
    """An http(s) URL with a host (and a port that can be), or one UsageError line, before any request."""
    bad = UsageError(f"API URL {url!r} (--api-url or DRIVESYNC_API_URL) is not an http(s) URL with a host, "
                     "e.g. https://www.googleapis.com")
    if not isinstance(url, str) or any(c.isspace() or not c.isprintable() for c in url):
        raise bad
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError:
        raise bad from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad
    return url


def from_environment(**overrides) -> Settings:
    """Settings from DRIVESYNC_* environment variables, then explicit overrides."""
    env_url = os.environ.get("DRIVESYNC_API_URL")
    base = Settings(api_url=env_url) if env_url else Settings()
    return base.with_(**overrides)


def parse_size(text: str) -> int:
    """'64M', '256k', '1G', '1048576' -> bytes (binary units, like rclone)."""
    s = str(text).strip()
    units = {"": 1, "B": 1, "K": KiB, "M": MiB, "G": GiB, "T": 1024 * GiB}
    number = s.rstrip("bBkKmMgGtTiI")
    unit = s[len(number):].upper().replace("IB", "").replace("I", "").rstrip("B") if s[len(number):] else ""
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"not a size: {text!r} (use e.g. 64M, 256K, 1G)") from None
    if unit not in units or not value >= 0 or not math.isfinite(value * units[unit]):
        raise UsageError(f"not a size: {text!r} (use e.g. 64M, 256K, 1G)")
    return int(value * units[unit])
