"""The only module that knows the HTTP library (aiohttp).

It owns connections, authorization headers, pacing and request-level retries: every request goes
through ``Transport.request`` (whole body) or ``Transport.stream`` (body read by the caller), which
apply the pacer and ``errors.classify`` in one loop. Retries of a body cut mid-stream belong to the
transfer that knows how much of it was kept (download.py, upload.py), not here.

It never logs a token, never disables TLS verification, and knows nothing about files or folders.

Behind a corporate proxy: ``HTTPS_PROXY``/``HTTP_PROXY`` (either case, ``ALL_PROXY`` too) and
``NO_PROXY`` are honoured as curl and requests do, and the CA bundle named by ``REQUESTS_CA_BUNDLE``,
``CURL_CA_BUNDLE`` or ``SSL_CERT_FILE`` (first one set) replaces the system's trust store, so a
proxy that re-signs TLS with the company's CA is trusted while verification stays on. The proxy is
looked up once per origin (scheme, host, port), not per request: aiohttp's own ``trust_env`` would
look up the proxy and ``~/.netrc`` in a worker thread on every request (two thread hops per small
file) and a ``.netrc`` entry for Google would clash with our Authorization header.
"""
from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json as _json
import logging
import os
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import AsyncIterator, Iterable, Mapping, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

import aiohttp
from multidict import CIMultiDict

from . import answers
from .auth import Authorizer
from .config import Settings
from .errors import (BAD_ANSWER, Action, BodyAborted, DriveError, DriveUnreachable, StorageFull, TransferInterrupted, classify,
                     hint_for)
from .pacer import Bandwidth, Pacer, backoff_delay

log = logging.getLogger("drivesync.transport")

#: Google sends gzip-encoded answers only to a User-Agent that says "gzip" (Drive's performance guide).
USER_AGENT = "drivesync/0.1 (gzip)"

#: Exceptions that mean "the connection failed"; retried like a 5xx.
CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError,
                     ConnectionError)

#: A body larger than this is handed to the socket in slices of SLICE bytes, each written only once
#: the one before has drained: a multipart upload's body is then held once (by the caller), not a
#: second time in the socket's (or TLS layer's) write buffer.
SLICE = 256 * 1024


class StreamedBody(Protocol):
    """A request body produced while it is sent (upload.py's chunk read from its file piece by piece):
    ``len()`` bytes, from a fresh iterator on every try. An iterator that must stop sets ``aborted`` to
    why and raises; the request then fails with ``BodyAborted`` at once, without a retry."""

    aborted: str | None

    def __len__(self) -> int: ...

    def pieces(self) -> AsyncIterator[bytes | memoryview]: ...


@dataclass
class Reply:
    """A whole answer: status, headers, the decoded body and (for JSON answers) its object."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    data: dict = field(default_factory=dict)

    def json(self) -> dict:
        return self.data


@dataclass
class TransportStats:
    requests: int = 0
    retries: int = 0
    by_status: Counter = field(default_factory=Counter)
    auth_refreshes_after_401: int = 0
    #: Bytes of answer bodies as they came over the wire (compressed), for request() calls.
    wire_bytes: int = 0


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def parse_error(status: int, headers: Mapping[str, str], body: bytes, *, method: str = "", what: str = "",
                host: str = "") -> DriveError:
    """Any error body (Drive's JSON, another JSON shape, an HTML page, text) -> a one-line DriveError."""
    reason, message = answers.error_summary(headers, body)
    if not message and not reason:
        message = _STATUS_TEXT.get(status, "")
    return DriveError(status, reason, message, retry_after=_retry_after(headers), method=method, what=what,
                      host=host)


_STATUS_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 413: "Payload Too Large",
                429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
                503: "Service Unavailable", 504: "Gateway Timeout"}


def describe_connection_error(exc: BaseException) -> str:
    """A few words for a failed connection, without aiohttp's internals."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "TLS certificate not trusted"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = getattr(exc, "os_error", None)
        errno_ = getattr(os_error, "errno", None)
        text = (os.strerror(errno_) if errno_ else "") or getattr(os_error, "strerror", None) or "cannot connect"
        return text[0].lower() + text[1:]
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "answer cut short"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    return type(exc).__name__


#: The CA bundle variables, in the order requests reads them (SSL_CERT_FILE is OpenSSL's own).
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def ssl_context(environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """A verifying TLS context: the CA bundle a variable names (alone, as requests and curl use it),
    else the system's trust store. Verification and hostname checks are always on."""
    env = os.environ if environ is None else environ
    for name in CA_BUNDLE_VARIABLES:
        path = env.get(name)
        if not path:
            continue
        try:
            ctx = ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise DriveUnreachable(f"cannot use the CA bundle {name}={path}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from None
        break
    else:
        ctx = ssl.create_default_context()
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def connector_ssl(environ: Mapping[str, str] | None = None) -> ssl.SSLContext | bool:
    """What the connector verifies TLS with: ``ssl_context()`` where a CA bundle variable is set, else True,
    aiohttp's verifying default (``ssl.create_default_context()``: the system's trust store, hostname checks
    on), which it builds when it is imported. Building a second one would load the trust store again, about
    17 ms of every command's start where no variable is set (Colab, most machines)."""
    env = os.environ if environ is None else environ
    if any(env.get(name) for name in CA_BUNDLE_VARIABLES):
        return ssl_context(env)
    return True


def proxy_for(url: str, environ: Mapping[str, str] | None = None) -> tuple[str | None, dict[str, str] | None]:
    """(proxy URL without credentials, proxy headers) for ``url`` per HTTP(S)_PROXY/ALL_PROXY/NO_PROXY,
    or (None, None) for a direct connection."""
    if environ is None:
        proxies = getproxies_environment()
    else:  # the same reading as urllib's, of the mapping given (lowercase wins, as there)
        proxies = {}
        for key, value in environ.items():
            low = key.lower()
            if value and low.endswith("_proxy") and (key == low or low[:-6] not in proxies):
                proxies[low[:-6]] = value
        if "REQUEST_METHOD" in environ:
            proxies.pop("http", None)
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if proxies.get("no") and proxy_bypass_environment(netloc, proxies):
        return None, None
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy:
        return None, None
    if "://" not in proxy:
        proxy = "http://" + proxy
    p = urlsplit(proxy)
    headers = None
    if p.username is not None:
        import base64
        from urllib.parse import unquote

        pair = f"{unquote(p.username)}:{unquote(p.password or '')}".encode("latin-1")
        headers = {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        proxy = p._replace(netloc=p.netloc.rpartition("@")[2]).geturl()
    return proxy, headers


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class _Tries:
    """The retry state of one call: tries so far, since when it has failed, one 401 refresh.

    ``after(error)`` returns once the caller should try again (after backing off) and raises when it
    should not: the error is final (404, 403 permissions), retries are used up, or Drive has given
    nothing but failures for ``settings.give_up_after`` seconds, counted from this call's start or the
    transport's last success, whichever is later."""

    def __init__(self, transport: "Transport", method: str, what: str):
        self.t = transport
        self.method = method
        self.what = what
        self.started = time.monotonic()
        self.attempt = 0
        self.refreshed = False

    async def after(self, error: DriveError, token: str | None) -> None:
        t = self.t
        s = t.settings
        action = classify(error.status, error.reason)
        if action is Action.REFRESH_AUTH and t.authorizer and not self.refreshed:
            self.refreshed = True
            t.stats.auth_refreshes_after_401 += 1
            await t.authorizer.refresh_after_401(token, t.token_request)
            return
        if action is not Action.RETRY:
            if error.reason == "storageQuotaExceeded":
                raise StorageFull(f"Drive is full: {error.describe()}; free space on Drive (empty the trash) "
                                  "or add storage, then run the same command again")
            hint = hint_for(error)
            if hint:
                error.args = (f"{error.args[0]}: {hint}",)
            raise error
        failing_for = time.monotonic() - max(self.started, t.last_success)
        call = error.what or self.what or self.method
        if not error.what:
            error = DriveError(error.status, error.reason, error.message, method=error.method, what=call,
                               host=error.host)
        if failing_for >= s.give_up_after:
            raise DriveUnreachable(f"gave up on {error.host or 'Drive'} after {_minutes(failing_for)} without "
                                   f"progress; last error: {error.describe()}; --give-up-after SECONDS waits longer")
        if self.attempt >= s.max_retries:
            if error.status == 0 or error.status >= 500 or error.reason == BAD_ANSWER:
                raise DriveUnreachable(f"gave up on {error.host or 'Drive'} after {self.attempt} retries; "
                                       f"last error: {error.describe()}")
            raise error
        delay = backoff_delay(self.attempt, base=s.backoff_base, cap=s.backoff_cap, jitter=t.pacer.jitter(),
                              retry_after=error.retry_after)
        delay = max(0.0, min(delay, s.give_up_after - failing_for))
        if error.status in (403, 429):
            t.pacer.rate_limited(delay / 2)
        self.attempt += 1
        t.stats.retries += 1
        notice = f"{error.short()}, retry {self.attempt} in {delay:.0f} s ({error.what or self.what or self.method})"
        log.info("%s", notice)
        if t.on_retry:
            t.on_retry(notice)
        await asyncio.sleep(delay)


class Transport:
    """One account's HTTP session: ``async with Transport(settings, authorizer) as t: ...``.

    ``on_retry(notice)`` (settable) hears a one-line notice before every backoff sleep
    ("503 from www.googleapis.com, retry 3 in 4 s (files.list)"); the same line is logged at INFO (-v)."""

    def __init__(self, settings: Settings, authorizer: Authorizer | None, *, pacer: Pacer | None = None,
                 on_retry=None):
        self.settings = settings
        self.authorizer = authorizer
        self.pacer = pacer or Pacer(settings.tps, settings.write_tps, burst=settings.tps_burst,
                                    write_burst=settings.write_burst, beat=settings.tps_beat)
        self.stats = TransportStats()
        #: --bwlimit: request bodies wait here before they are sent, media bodies after each read (throttle).
        self.bandwidth = Bandwidth(settings.bwlimit) if settings.bwlimit else None
        self._session: aiohttp.ClientSession | None = None
        self.on_retry = on_retry
        #: monotonic time of the last answer with an ok status (the give-up clock restarts there).
        self.last_success = time.monotonic()
        #: 'scheme://netloc' -> (host for messages, proxy, proxy headers), worked out once per origin.
        self._origins: dict[str, tuple[str, str | None, dict[str, str] | None]] = {}

    def _where(self, url: str) -> tuple[str, str | None, dict[str, str] | None]:
        """(host, proxy, proxy headers) for ``url``. Every request asks, so the origin is cut out of the
        string without parsing it: urlsplit twice per request cost 14 us for a fresh URL (every media URL is
        one), this costs about 1 us, about 1 % of a small file's CPU (issue 13)."""
        scheme, sep, rest = url.partition("://")
        origin = scheme + sep + rest.split("/", 1)[0].split("?", 1)[0]
        found = self._origins.get(origin)
        if found is None:
            found = self._origins[origin] = (urlsplit(url).hostname or "Drive", *proxy_for(url))
        return found

    async def __aenter__(self) -> "Transport":
        connector = aiohttp.TCPConnector(
            limit=0,  # concurrency is owned by transfer.py, not by the pool
            ssl=connector_ssl(),  # never off: a bundle variable only replaces the trust store
            enable_cleanup_closed=True,
        )
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout,
                                        sock_read=self.settings.read_timeout)
        # Bodies are read raw (auto_decompress=False): media must stay byte-exact, so it asks for
        # identity, while JSON answers are asked for gzip and inflated by answers.decode.
        # trust_env stays False: the proxy is resolved here once per origin (see the module's docstring).
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                              headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"})
        self.last_success = time.monotonic()
        return self

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- the one retry loop -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, *, params: Mapping | None = None,
                     headers: Mapping[str, str] | None = None, data: bytes | StreamedBody | None = None,
                     json: object = None, ok: Iterable[int] = (200,), write: bool = False,
                     what: str = "", tries: _Tries | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send until an ``ok`` status arrives (retrying per errors.classify, within the give-up
        bound), then yield the response with its body unread. Errors while the caller reads the body
        are TransferInterrupted: the caller knows what it kept and resumes from there. A caller that
        asked for ``Accept-Encoding: identity`` never gets a compressed body."""
        assert self._session is not None, "Transport used outside 'async with'"
        ok = tuple(ok)
        payload = _json_bytes(json) if json is not None else data
        send_headers = dict(headers or {})
        if json is not None:
            send_headers.setdefault("Content-Type", "application/json; charset=UTF-8")
        wants_identity = send_headers.get("Accept-Encoding", "").strip().lower() == "identity"
        host, proxy, proxy_headers = self._where(url)
        tries = tries or _Tries(self, method, what)
        while True:
            await self.pacer.wait(write=write)
            streamed = hasattr(payload, "pieces")
            if self.bandwidth is not None and (streamed or isinstance(payload, (bytes, bytearray, memoryview))) \
                    and len(payload):
                await self.bandwidth.spend(len(payload))
            token = await self.authorizer.token(self.token_request) if self.authorizer else None
            if token:
                send_headers["Authorization"] = f"Bearer {token}"
            error: DriveError | None = None
            self.stats.requests += 1
            body = payload
            if streamed:
                body = payload.pieces()             # a fresh iterator for every try
                send_headers["Content-Length"] = str(len(payload))
            elif isinstance(payload, (bytes, bytearray, memoryview)) and len(payload) > SLICE:
                body = _slices(payload)             # a fresh generator for every try
                send_headers["Content-Length"] = str(len(payload))
            try:
                response = await self._session.request(method, url, params=_clean(params), headers=send_headers,
                                                       data=body, allow_redirects=False, proxy=proxy,
                                                       proxy_headers=proxy_headers)
            except CONNECTION_ERRORS as exc:
                if streamed and payload.aborted:
                    raise BodyAborted(payload.aborted) from None
                error = DriveError(0, "connectionError", describe_connection_error(exc), method=method, what=what,
                                   host=host)
                response = None
            if response is not None:
                self.stats.by_status[response.status] += 1
                encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
                if response.status in ok and wants_identity and encoding not in ("identity", ""):
                    response.release()
                    error = DriveError(response.status, BAD_ANSWER, f"{encoding}-encoded although identity was asked",
                                       method=method, what=what, host=host)
                elif response.status in ok:
                    self.last_success = time.monotonic()
                    try:
                        yield response
                    except CONNECTION_ERRORS as exc:
                        raise TransferInterrupted(f"connection lost while reading {what or 'a body'} "
                                                  f"({describe_connection_error(exc)})") from None
                    finally:
                        response.release()
                    return
                else:
                    try:
                        body = await response.read()
                    except CONNECTION_ERRORS:
                        body = b""
                    finally:
                        response.release()
                    error = parse_error(response.status, response.headers, body, method=method, what=what,
                                        host=host)
            await tries.after(error, token)

    async def token_request(self, method: str, url: str, headers: Mapping[str, str], body, timeout: float
                            ) -> tuple[int, CIMultiDict, bytes]:
        """One request to an OAuth token endpoint for auth.Authorizer's refresh (google-auth builds it and
        reads the answer): this session's proxy, CA bundle and connections, outside the Drive pacer, with
        only the headers google-auth gives (an impersonation's IAM call carries its own bearer token) and no
        retries (the Authorizer retries refreshes). Returns (status, headers, the body with its
        Content-Encoding undone); ConnectionError when the endpoint cannot be reached or answers too slowly,
        or the body is cut short; RuntimeError once the session is closed (a refresh thread outliving its
        command: not something to retry)."""
        if self._session is None:
            raise RuntimeError("the command ended while a token refresh was in flight")
        _, proxy, proxy_headers = self._where(url)
        try:
            async with self._session.request(method, url, headers=dict(headers), data=body, allow_redirects=False,
                                             proxy=proxy, proxy_headers=proxy_headers,
                                             timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                raw = await response.read()
                status, answer_headers = response.status, CIMultiDict(response.headers)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:   # what requests' errors cover
            raise ConnectionError(describe_connection_error(exc)) from None
        try:
            raw = answers.decode(answer_headers, raw)
        except answers.BadAnswer as exc:
            raise ConnectionError(str(exc)) from None
        answer_headers.popall("Content-Encoding", None)
        return status, answer_headers, raw

    async def throttle(self, nbytes: int) -> None:
        """Count ``nbytes`` of a body just read against --bwlimit (waits when over it); free without one."""
        if self.bandwidth is not None:
            await self.bandwidth.spend(nbytes)

    async def request(self, method: str, url: str, *, ok: Iterable[int] = (200,), what: str = "",
                      **kwargs) -> Reply:
        """Like ``stream`` but reads and decodes the whole body, which must be a JSON object (or
        empty). A body cut short or unreadable (an HTML page, truncated JSON) is retried like a 5xx,
        within the same bound, then fails with one line naming the call."""
        tries = _Tries(self, method, what)
        host = self._where(url)[0]
        while True:
            try:
                async with self.stream(method, url, ok=ok, what=what, tries=tries, **kwargs) as response:
                    raw = await response.read()
                    status, headers = response.status, response.headers
            except TransferInterrupted:
                error = DriveError(0, "connectionError", "the answer was cut short", method=method, what=what,
                                   host=host)
            else:
                self.stats.wire_bytes += len(raw)
                try:
                    body = answers.decode(headers, raw)
                    return Reply(status, headers, body, answers.json_object(body, headers.get("Content-Type", "")))
                except answers.BadAnswer as exc:
                    error = DriveError(status, BAD_ANSWER, str(exc), method=method, what=what, host=host)
            await tries.after(error, None)


async def _slices(payload: bytes | bytearray | memoryview) -> AsyncIterator[memoryview]:
    """``payload`` as SLICE-sized views (no copies); aiohttp waits for the socket to drain between them."""
    view = memoryview(payload)
    for start in range(0, len(view), SLICE):
        yield view[start:start + SLICE]


def _json_bytes(obj) -> bytes:
    return _json.dumps(obj).encode()


def _clean(params: Mapping | None):
    if not params:
        return None
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out
