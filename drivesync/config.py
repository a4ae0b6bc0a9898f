"""One frozen settings object for every transfer knob, and the memory bound those knobs imply.

This module owns defaults and validation of user-facing numbers, and where settings come from:
a flag (the caller's overrides) beats a ``DRIVESYNC_<FIELD>`` environment variable, which beats the config
file (``config.toml`` in ``user_dir("config")``), which beats the default here. The only I/O it does is
reading the environment and that one file. Sizes and rates are binary everywhere (1M = 1 MiB, as rclone).
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import re
import sys
import urllib.parse
from dataclasses import dataclass, fields, replace
from pathlib import Path

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

    Memory bound. Downloads never hold a file in memory: each stream holds at most ``io_buffer``
    bytes (plus the one chunk that crosses it) of what it read before writing them at their offset
    (one ``os.pwritev`` of aiohttp's own chunks) and reading more, and
    at most ``transfers * streams_per_file`` streams are open (``max_streams`` caps the total).
    Uploads never hold a resumable chunk in memory: it is read from its file and hashed 1 MiB at a time
    while it is sent (upload.READ_PIECE, the next piece while one goes out), so the chunk size costs no
    memory. A file up to ``upload_cutoff`` goes up in one multipart request, held whole and once more
    as that request's body. So the transfer buffers are bounded by::

        max_streams * (io_buffer + socket_buffer)  +  upload_transfers * 2 * upload_cutoff

    A small file (at most ``io_buffer`` bytes) is held whole in its one stream's buffer, so it stays
    inside the same bound. With the defaults a pull holds at most 64 * (1 MiB + ~0.3 MiB) ~= 83 MiB, a
    push 4 * 2 * 8 MiB = 64 MiB, on top of the interpreter and libraries (~60 MiB): peak RSS stays under
    200 MB whatever the size of the dataset (measured with 32 streams: 136 MB pulling 2 x 1 GiB, 92 MB
    pulling 10,000 files, benchmarks/pull_bench.py; with 64: 104 MiB on the harness's `small`, 124 MiB on
    `project`). ``pull --extract`` keeps to 32 of each (extract.EXTRACT_CONCURRENCY).
    The listing of a tree costs about 1 KiB per remote file (10,000 files ~= 10 MB).
    A push of 4 parallel 150 MB uploads through the TLS proxy measured 68 MiB peak RSS (132 MiB while
    each upload held its 16 MiB chunk in memory), with the CLI returning buffers of 1 MiB and more to the OS
    (cli._return_big_buffers_to_the_os; without it glibc's arenas kept 312 MB resident).
    """

    api_url: str = DEFAULT_API_URL
    #: Files downloaded at once. Keeping Drive's 200 requests/s busy takes rate x answer time of them in
    #: flight: ~20 when a small file's answer takes ~100 ms (8 managed ~80 files/s, benchmarks/pull_bench.py),
    #: ~50 while a large file's streams share the link and the CPU with them (answers of 0.2-0.3 s: the
    #: harness's `project`, a 500 MB zip beside 2,000 images, ran at 120-170 requests/s with 32 and at
    #: 195/s with 64; 13.2 s -> 12.1 s, median of 3).
    transfers: int = 64
    #: Parallel byte-range streams for one large download.
    streams_per_file: int = 8
    #: Cap on open download streams across all files (transfers * streams can exceed it); a small file's
    #: one stream counts too, so this is raised with ``transfers`` (see the memory bound above).
    max_streams: int = 64
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
    #: Bytes per resumable chunk; a multiple of 256 KiB. Each chunk is one request, and each request
    #: costs a round trip before Drive reads its body: 64 MiB instead of 16 MiB took a 200 MB upload at
    #: 25 MB/s from 8.21 s to 8.07 s of sending (8.0 s is the link's floor). Chunks are streamed from the
    #: file, so their size costs no memory; what it costs is the part of one chunk a dropped connection
    #: sends again (under 2.7 s at 25 MB/s).
    upload_chunk_size: int = 64 * MiB
    #: Request pacing (requests per second, all kinds). Drive allows 12,000/min = 200/s per user;
    #: 195 keeps a request-bound pull within 1.1x of that quota's floor without 403 storms (measured).
    tps: float = 195.0
    #: Writes (creates, updates, uploads started) per second. Drive sustains ~3/s per account.
    write_tps: float = 3.0
    #: Bursts allowed above the steady rates.
    tps_burst: int = 20
    #: Requests waiting for their turn leave together on this beat (seconds; pacer.Pacer): one timer
    #: wake-up per beat instead of per request, about a third less client CPU on a many-small-files pull.
    tps_beat: float = 0.05
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
    #: Listing queries in flight; a level of few folders is spread over this many queries (remote.py), so
    #: their pages come in parallel rather than one after another. 16: the first of 10,000 files in 100
    #: folders starts downloading 0.6 s sooner than with 4 (pages of ~700 items, not three of 1000 in a row).
    list_concurrency: int = 16
    #: Durable pulls: a file's bytes are fsynced before the rename that makes it final, and the folders renamed
    #: into before the pull returns, so a power cut never leaves a final name with unwritten data. Measured
    #: (benchmarks/fsync_cost.py) above the 3% target where many small files arrive, hence a setting:
    #: False (DRIVESYNC_FSYNC=0) leaves writing back to the kernel, for scratch disks.
    fsync: bool = True
    #: Bytes per second across all transfers of a run, both directions (--bwlimit); 0: no limit.
    bwlimit: float = 0.0

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
        if not (isinstance(self.bwlimit, (int, float)) and math.isfinite(self.bwlimit) and self.bwlimit >= 0):
            raise UsageError(f"--bwlimit must be a rate of at least 0 bytes/s, got {self.bwlimit!r}")
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


#: Settings given as sizes: a number of bytes or '64M' (binary), in flags, variables and the config file.
SIZE_FIELDS = frozenset({"multistream_cutoff", "range_size", "io_buffer", "upload_cutoff", "upload_chunk_size"})
#: Settings given as rates (bytes/s): '10M' = 10 MiB/s, a bare number is KiB/s (rclone's --bwlimit).
RATE_FIELDS = frozenset({"bwlimit"})
ENV_PREFIX = "DRIVESYNC_"
CONFIG_FILE_NAME = "config.toml"


def env_name(field: str) -> str:
    """The environment variable of a Settings field: ``transfers`` -> ``DRIVESYNC_TRANSFERS``."""
    return ENV_PREFIX + field.upper()


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings)]


def user_dir(kind: str) -> Path:
    """The one resolver for drivesync's per-user folders; ``kind`` is 'config' or 'state'.

    ``$DRIVESYNC_CONFIG_DIR`` / ``$DRIVESYNC_STATE_DIR`` first; then ``$XDG_CONFIG_HOME`` / ``$XDG_STATE_HOME``
    when set to an absolute path (the XDG spec says to ignore a relative one), on any system but Windows;
    then the platform's place: Windows %APPDATA% (config) / %LOCALAPPDATA% (state), macOS
    ~/Library/Application Support, elsewhere ~/.config and ~/.local/state. Always ending in ``drivesync``."""
    if kind not in ("config", "state"):
        raise ValueError(kind)
    explicit = os.environ.get(f"DRIVESYNC_{kind.upper()}_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        var, fallback = ("APPDATA", Path.home() / "AppData" / "Roaming") if kind == "config" else \
            ("LOCALAPPDATA", Path.home() / "AppData" / "Local")
        return Path(os.environ.get(var) or fallback) / "drivesync"
    xdg = os.path.expanduser(os.environ.get(f"XDG_{kind.upper()}_HOME") or "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "drivesync"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "drivesync"
    return Path.home() / (".config" if kind == "config" else ".local/state") / "drivesync"


def config_file() -> Path:
    """Where the config file is read from: ``user_dir("config") / "config.toml"``."""
    return user_dir("config") / CONFIG_FILE_NAME


def coerce(field: str, value, origin: str):
    """A value from a variable (text) or the config file (TOML types) -> the field's type, or one UsageError
    line naming ``origin`` (``DRIVESYNC_TRANSFERS`` or ``config.toml``)."""
    default = getattr(Settings, field)
    bad = lambda what: UsageError(f"{origin}: {value!r} is not {what}")  # noqa: E731
    if field in SIZE_FIELDS:
        if isinstance(value, bool):
            raise bad("a size (e.g. 64M)")
        return parse_size(str(value)) if not isinstance(value, int) else value
    if field in RATE_FIELDS:
        if isinstance(value, bool):
            raise bad("a rate (e.g. 10M)")
        return float(value) * KiB if isinstance(value, (int, float)) else parse_rate(str(value))
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise bad("true or false")
    if isinstance(default, int):
        if isinstance(value, bool) or (not isinstance(value, int) and not re.fullmatch(r"\s*[+-]?\d+\s*", str(value))):
            raise bad("a whole number")
        return int(value)
    if isinstance(default, float):
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise bad("a number") from None
        if not math.isfinite(number):
            raise bad("a finite number")
        return number
    if not isinstance(value, str):
        raise bad("text")
    return value


def _checked(values: dict, origins: dict) -> dict:
    """Each value on its own against Settings' rules, so a bad one is named with where it came from."""
    for name, value in values.items():
        try:
            Settings(**{name: value})
        except UsageError as exc:
            raise UsageError(f"{origins[name]}: {exc}") from None
    return values


def env_settings(environ=None) -> dict:
    """Settings fields set by ``DRIVESYNC_<FIELD>`` variables (an empty one counts as unset)."""
    environ = os.environ if environ is None else environ
    values, origins = {}, {}
    for name in setting_names():
        var = env_name(name)
        text = environ.get(var)
        if text is None or text.strip() == "":
            continue
        values[name] = coerce(name, text.strip(), var)
        origins[name] = var
    return _checked(values, origins)


def file_settings(path: str | os.PathLike | None = None) -> dict:
    """Settings fields from the TOML config file (missing file: none). Keys are field names; '-' may stand for
    '_' (``range-size = "64M"``). An unknown key, a bad value or bad TOML is one UsageError line."""
    path = Path(path) if path is not None else config_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise UsageError(f"config file {path} is a folder") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"config file {path} is not UTF-8 text") from None
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise UsageError(f"config file {path} is not valid TOML: {str(exc).splitlines()[0] if str(exc) else ''}") \
            from None
    known = set(setting_names())
    values, origins = {}, {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            raise UsageError(f"config file {path}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
        values[name] = coerce(name, value, f"{path}: {key}")
        origins[name] = f"config file {path}: {key}"
    return _checked(values, origins)


def from_environment(**overrides) -> Settings:
    """Settings from every source, in precedence order: ``overrides`` (flags; None means not given) over
    ``DRIVESYNC_*`` variables over the config file over the defaults."""
    values = file_settings()
    values.update(env_settings())
    return Settings(**values).with_(**overrides)


def settings_with(settings: Settings | None, overrides: dict) -> Settings:
    """``settings`` (or, without them, every source: from_environment) with the options a Python API caller
    passed as keywords (None: not given); an unknown option is one UsageError line."""
    known = {k: v for k, v in overrides.items() if v is not None}
    base = settings or from_environment()
    try:
        return base.with_(**known)
    except TypeError as exc:
        raise UsageError(f"unknown option: {exc}") from None


def parse_rate(text: str) -> float:
    """--bwlimit: '10M' -> 10 MiB/s in bytes/s; a bare number is KiB/s (as rclone); '0' or 'off': no limit."""
    s = str(text).strip()
    if s.lower() in ("off", "0", ""):
        return 0.0
    if s and s[-1] in "0123456789.":
        s += "K"
    try:
        return float(parse_size(s))
    except UsageError:
        raise UsageError(f"not a rate: {text!r} (bytes per second, e.g. 10M for 10 MiB/s; a bare number is KiB/s)") \
            from None


#: --max-age / --min-age units, as rclone's: ms, s (the default), m, h, d, w, M (30 days), y (365 days).
_AGE_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400,
              "y": 365 * 86400}


def parse_age(text: str, now: float) -> float:
    """--max-age / --min-age -> the moment (epoch seconds) it names: a duration back from ``now``
    ('90m', '7d', '1.5h', '3600'; rclone's units, combinable as '1h30m') or an absolute date or time
    ('2024-05-01', '2024-05-01T12:00:00', UTC unless it says otherwise)."""
    s = str(text).strip()
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d|w|M|y)?", s)
    if s and "".join(n + u for n, u in parts) == s:
        return now - sum(float(n) * _AGE_UNITS[u or "s"] for n, u in parts)
    try:
        moment = _dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise UsageError(f"not an age: {text!r} (a duration like 7d, 12h, 90m, or a date like 2024-05-01)") \
            from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.timestamp()


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
