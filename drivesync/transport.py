"""The only module that knows the HTTP library (aiohttp).

It owns connections, authorization headers, pacing and request-level retries: every request goes
through ``Transport.request`` (whole body) or ``Transport.stream`` (body read by the caller), which
apply the pacer and ``errors.classify`` in one loop. Retries of a body cut mid-stream belong to the
transfer that knows how much of it was kept (download.py, upload.py), not here.

It never logs a token, never disables TLS verification, and knows nothing about files or folders.
"""
from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json as _json
import logging
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import AsyncIterator, Iterable, Mapping

import aiohttp

from .auth import Authorizer
from .config import Settings
from .errors import Action, DriveError, TransferInterrupted, classify, hint_for
from .pacer import Pacer, backoff_delay

log = logging.getLogger("drivesync.transport")

USER_AGENT = "drivesync/0.1 (gzip)"

#: Exceptions that mean "the connection failed"; retried like a 5xx.
CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError,
                     ConnectionError)


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self):
        return _json.loads(self.body) if self.body else {}


@dataclass
class TransportStats:
    requests: int = 0
    retries: int = 0
    by_status: Counter = field(default_factory=Counter)
    auth_refreshes_after_401: int = 0


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def parse_error(status: int, headers: Mapping[str, str], body: bytes, *, method: str = "", what: str = "") -> DriveError:
    """Drive's error body -> DriveError (reason and message of the first error)."""
    reason, message = "", ""
    try:
        err = _json.loads(body or b"{}").get("error", {})
        if isinstance(err, dict):
            message = str(err.get("message", ""))[:300]
            errors = err.get("errors") or []
            if errors and isinstance(errors[0], dict):
                reason = str(errors[0].get("reason", ""))
            reason = reason or str(err.get("status", ""))
        elif isinstance(err, str):
            reason = err
    except (ValueError, AttributeError):
        message = body[:200].decode("utf-8", "replace") if body else ""
    return DriveError(status, reason, message, retry_after=_retry_after(headers), method=method, what=what)


class Transport:
    """One account's HTTP session: ``async with Transport(settings, authorizer) as t: ...``."""

    def __init__(self, settings: Settings, authorizer: Authorizer | None, *, pacer: Pacer | None = None,
                 on_retry=None):
        self.settings = settings
        self.authorizer = authorizer
        self.pacer = pacer or Pacer(settings.tps, settings.write_tps, burst=settings.tps_burst,
                                    write_burst=settings.write_burst)
        self.stats = TransportStats()
        self._session: aiohttp.ClientSession | None = None
        self._on_retry = on_retry

    async def __aenter__(self) -> "Transport":
        connector = aiohttp.TCPConnector(
            limit=0,  # concurrency is owned by transfer.py, not by the pool
            ssl=ssl.create_default_context(),
            enable_cleanup_closed=True,
        )
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout,
                                        sock_read=self.settings.read_timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                              headers={"User-Agent": USER_AGENT})
        return self

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- the one retry loop -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, *, params: Mapping | None = None,
                     headers: Mapping[str, str] | None = None, data: bytes | None = None,
                     json: object = None, ok: Iterable[int] = (200,), write: bool = False,
                     what: str = "") -> AsyncIterator[aiohttp.ClientResponse]:
        """Send until an ``ok`` status arrives (retrying per errors.classify), then yield the
        response with its body unread. Errors while the caller reads the body are
        TransferInterrupted: the caller knows what it kept and resumes from there."""
        assert self._session is not None, "Transport used outside 'async with'"
        ok = tuple(ok)
        payload = _json.dumps(json).encode() if json is not None else data
        send_headers = dict(headers or {})
        if json is not None:
            send_headers.setdefault("Content-Type", "application/json; charset=UTF-8")
        attempt = 0
        refreshed = False
        while True:
            await self.pacer.wait(write=write)
            token = await self.authorizer.token() if self.authorizer else None
            if token:
                send_headers["Authorization"] = f"Bearer {token}"
            error: DriveError | None = None
            self.stats.requests += 1
            try:
                response = await self._session.request(method, url, params=_clean(params), headers=send_headers,
                                                       data=payload, allow_redirects=False)
            except CONNECTION_ERRORS as exc:
                error = DriveError(0, "connectionError", type(exc).__name__, method=method, what=what)
                response = None
            if response is not None:
                self.stats.by_status[response.status] += 1
                if response.status in ok:
                    try:
                        yield response
                    except CONNECTION_ERRORS as exc:
                        raise TransferInterrupted(f"connection lost while reading {what or 'a body'} "
                                                  f"({type(exc).__name__})") from None
                    finally:
                        response.release()
                    return
                try:
                    body = await response.read()
                except CONNECTION_ERRORS:
                    body = b""
                finally:
                    response.release()
                error = parse_error(response.status, response.headers, body, method=method, what=what)
            action = Action.RETRY if error.status == 0 else classify(error.status, error.reason)
            if action is Action.REFRESH_AUTH and self.authorizer and not refreshed:
                refreshed = True
                self.stats.auth_refreshes_after_401 += 1
                await self.authorizer.refresh_after_401(token)
                continue
            if action is not Action.RETRY or attempt >= self.settings.max_retries:
                hint = hint_for(error)
                if hint:
                    error.args = (f"{error.args[0]}: {hint}",)
                raise error
            delay = backoff_delay(attempt, base=self.settings.backoff_base, cap=self.settings.backoff_cap,
                                  jitter=self.pacer.jitter(), retry_after=error.retry_after)
            if error.status in (403, 429):
                self.pacer.rate_limited(delay / 2)
            attempt += 1
            self.stats.retries += 1
            if self._on_retry:
                self._on_retry(error)
            log.debug("retry %d of %s %s after %s: sleeping %.2fs", attempt, method, what or "", error.status, delay)
            await asyncio.sleep(delay)

    async def request(self, method: str, url: str, *, ok: Iterable[int] = (200,), **kwargs) -> Reply:
        """Like ``stream`` but reads the whole body; a body cut short is retried like any failure."""
        attempt = 0
        while True:
            try:
                async with self.stream(method, url, ok=ok, **kwargs) as response:
                    body = await response.read()
                    return Reply(response.status, response.headers, body)
            except TransferInterrupted:
                attempt += 1
                self.stats.retries += 1
                if attempt > self.settings.max_retries:
                    raise
                await asyncio.sleep(backoff_delay(attempt - 1, base=self.settings.backoff_base,
                                                  cap=self.settings.backoff_cap, jitter=self.pacer.jitter()))


def _clean(params: Mapping | None):
    if not params:
        return None
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out
