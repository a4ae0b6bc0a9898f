"""Where credentials come from, and keeping one valid access token for many concurrent requests.

This module owns choosing credentials (in the documented order: ``--credentials FILE``, a static access
token in ``$DRIVESYNC_ACCESS_TOKEN`` (``--access-token``), application default credentials, Colab's own
sign-in, the token saved by ``drivesync login``), the token file
(written 0600, never chmod-ed afterwards) and refreshing: one refresh at a time however many transfers
are waiting (no stampede), ahead of expiry, and once more after a 401. User credentials (a file, the
login token, an ADC file) refresh through drivesync's own grant (oauth.py); the rest through google-auth.

It never prints or logs a token or a secret, and never lets one into an exception message: messages
from a refresh are rebuilt from the error code and scrubbed of every secret the credentials hold.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as _dt
import json
import logging
import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import AuthError
from .oauth import StaticToken, UserCredentials

log = logging.getLogger("drivesync.auth")

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"
SCOPES = {
    "drive": DRIVE_SCOPE,
    "drive.file": "https://www.googleapis.com/auth/drive.file",
    "drive.readonly": "https://www.googleapis.com/auth/drive.readonly",
}

#: Refresh this long before expiry, or after 3/4 of a token's lifetime when lifetimes are short.
REFRESH_MARGIN_S = 120.0
#: Longest sleep between two tries of the token endpoint (it is retried until give_up_after).
REFRESH_BACKOFF_CAP_S = 8.0

#: Name of the token file ``drivesync login`` writes inside the config dir.
TOKEN_FILE_NAME = "token.json"
#: Marker key in a token file written by ``drivesync login`` (google-auth ignores it).
LOGIN_MARKER = "drivesync_login"


# -- where things live --------------------------------------------------------------------------

def config_dir() -> Path:
    """``$DRIVESYNC_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/drivesync``, else the platform's per-user config
    directory + ``drivesync`` (config.user_dir, the one resolver; the config file lives there too)."""
    from .config import user_dir

    return user_dir("config")


def token_path() -> Path:
    """Where ``drivesync login`` saves its token (and where find_credentials looks last)."""
    return config_dir() / TOKEN_FILE_NAME


def write_private_file(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, readable by the owner only (0600 from creation on).

    The file is created under a temporary name with ``os.open(..., 0o600)``, synced and renamed, so
    there is never a moment when a secret sits in a file others can read, nor a half-written token file.
    """
    path = Path(path)
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise AuthError(f"cannot create {parent}: {exc.strerror or exc}") from None
    tmp = parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except FileExistsError:
        os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as exc:
        raise AuthError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise AuthError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def save_token(info: dict, path: str | os.PathLike | None = None) -> Path:
    """Save a login's authorized-user token (refresh token + client) to ``path`` (default: token_path())."""
    record = {k: v for k, v in info.items() if k not in ("token", "access_token", "expiry")}
    record.setdefault("type", "authorized_user")
    record.setdefault(LOGIN_MARKER, 1)
    return write_private_file(path or token_path(), (json.dumps(record, indent=2) + "\n").encode())


# -- choosing credentials -----------------------------------------------------------------------

@dataclass
class Chosen:
    """Credentials plus a one-line, secret-free description of where they came from."""

    credentials: object
    source: str
    #: What to run when these credentials are rejected for good (one short sentence).
    remedy: str = ""


def scope_urls(scopes) -> list[str]:
    """``['drive.readonly']`` or full URLs -> full scope URLs; an unknown short name is a usage error."""
    out = []
    for s in scopes or ["drive"]:
        if s.startswith("https://"):
            out.append(s)
        elif s in SCOPES:
            out.append(SCOPES[s])
        else:
            raise AuthError(f"unknown scope {s!r} (use one of: {', '.join(SCOPES)})")
    return out


def load_credentials_file(path: str, scopes: list[str] | None = None, *, subject: str | None = None,
                          origin: str = "") -> Chosen:
    """An authorized-user JSON, a service-account key, or a token file written by ``drivesync login``."""
    scopes = scope_urls(scopes)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise AuthError(f"credentials file not found: {path}") from None
    except IsADirectoryError:
        raise AuthError(f"credentials file {path} is a directory") from None
    except UnicodeDecodeError:
        raise AuthError(f"credentials file {path} is not a JSON text file") from None
    except OSError as exc:
        raise AuthError(f"cannot read credentials file {path}: {exc.strerror or exc}") from None
    try:
        info = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to be credentials
        # Never quote the content: it may be a secret.
        raise AuthError(f"credentials file {path} is not valid JSON") from None
    if not isinstance(info, dict):
        raise AuthError(f"credentials file {path} is not a JSON object")
    kind = info.get("type", "authorized_user")
    if kind == "access_token":
        # {"type": "access_token", "access_token": "..."}: a token minted elsewhere (CI, tests), used as is.
        token = info.get("access_token")
        if not isinstance(token, str) or not token.strip():
            raise AuthError(f"credentials file {path} has type 'access_token' but no access_token")
        return static_token(token.strip(), f"static access token from {path}", f"put a fresh access token in {path}")
    if "installed" in info or "web" in info:
        raise AuthError(f"{path} is an OAuth client file, not credentials: use it as "
                        f"'drivesync login --client-secrets {path}'")
    if "token_uri" in info and not _is_http_url(info["token_uri"]):
        # Otherwise every refresh fails as a transport error and is retried until --give-up-after.
        raise AuthError(f"credentials file {path} is malformed: its token_uri is not an http(s) URL")
    try:
        if kind == "service_account":
            from google.oauth2 import service_account

            creds = service_account.Credentials.from_service_account_info(info, scopes=scopes)
            if subject:
                creds = creds.with_subject(subject)
            who = info.get("client_email", "?")
            return Chosen(creds, f"service account {who} from {path}" + (f" acting as {subject}" if subject else ""),
                          remedy=f"check that the key in {path} still exists"
                                 + (" and that domain-wide delegation allows these scopes" if subject else ""))
        if kind == "authorized_user":
            if subject:
                raise AuthError("--impersonate needs a service-account key (domain-wide delegation); "
                                f"{path} holds user credentials")
            # Our own refresh grant (oauth.py), not google-auth's class: it honours the file's token_uri
            # (the emulator, proxies), which google-auth replaces by Google's.
            creds = UserCredentials.from_info(info)
            by_login = LOGIN_MARKER in info
            label = origin or ("drivesync login token" if by_login else "user credentials")
            remedy = ("sign in again with 'drivesync login'" if by_login
                      else f"replace {path} with fresh credentials or sign in with 'drivesync login'")
            return Chosen(creds, f"{label} from {path}", remedy=remedy)
    except (ValueError, KeyError, TypeError) as exc:
        # The loaders name the missing field and never echo a value; keep only the first words all the same.
        reason = _first_line(str(exc)) if not _looks_secret(str(exc), info) else type(exc).__name__
        raise AuthError(f"credentials file {path} is malformed: {reason}") from None
    raise AuthError(f"credentials file {path} has unsupported type {kind!r}")


def _is_http_url(value) -> bool:
    from urllib.parse import urlsplit

    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - ValueError for a port that cannot be
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _looks_secret(text: str, info: dict) -> bool:
    return any(isinstance(v, str) and len(v) >= 8 and v in text for v in _secret_values(info))


def _secret_values(info: dict) -> list[str]:
    keys = ("refresh_token", "client_secret", "private_key", "private_key_id", "token", "access_token")
    return [info[k] for k in keys if isinstance(info.get(k), str) and info[k]]


def _first_line(text: str, limit: int = 160) -> str:
    return (text.strip().splitlines() or [""])[0][:limit]


def _in_colab() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
        return False


def _adc_user_file() -> str | None:
    """The file google.auth.default() reads first (GOOGLE_APPLICATION_CREDENTIALS, else gcloud's
    application_default_credentials.json), when it holds usable user credentials: then it is loaded with
    drivesync's own grant, as --credentials is. Anything else (a service account, an external account,
    a broken file, no file) is left to google-auth, which says what is wrong with it."""
    where = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not where:
        if os.environ.get("CLOUDSDK_CONFIG"):
            folder = os.environ["CLOUDSDK_CONFIG"]
        elif os.name == "nt":
            folder = os.path.join(os.environ.get("APPDATA", ""), "gcloud")
        else:
            folder = os.path.join(os.path.expanduser("~"), ".config", "gcloud")
        where = os.path.join(folder, "application_default_credentials.json")
    try:
        with open(where, encoding="utf-8") as fh:
            info = json.load(fh)
        UserCredentials.from_info(info)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError, AttributeError, TypeError):
        return None
    return where if isinstance(info, dict) and info.get("type") == "authorized_user" else None


def application_default(scopes: list[str] | None = None) -> Chosen | None:
    """google.auth.default(): GOOGLE_APPLICATION_CREDENTIALS, gcloud, Colab after authenticate_user()."""
    user_file = _adc_user_file()
    if user_file is not None:
        chosen = load_credentials_file(user_file, scopes)
        remedy = (f"replace {user_file}" if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") else
                  "run 'gcloud auth application-default login --scopes="
                  "https://www.googleapis.com/auth/drive,https://www.googleapis.com/auth/cloud-platform'")
        return Chosen(chosen.credentials, f"application default credentials ({user_file})", remedy=remedy)
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    import warnings

    # "No project ID could be determined" (google-auth logs it, on the logging module): Drive needs no
    # project, and the line would be the first a newcomer sees, before every command's own answer.
    auth_log = logging.getLogger("google.auth._default")
    level = auth_log.level
    auth_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*project ID.*")
            warnings.filterwarnings("ignore", message=".*end user credentials from Google Cloud SDK.*")
            creds, _project = google.auth.default(scopes=scope_urls(scopes))
    except (DefaultCredentialsError, RecursionError) as exc:  # RecursionError: a file nested too deep for JSON
        where = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if where:
            # The user pointed at a file and it is unusable: say so rather than silently falling through.
            reason = "not found" if not os.path.exists(where) else "not usable as credentials"
            raise AuthError(f"GOOGLE_APPLICATION_CREDENTIALS={where} is {reason}") from None
        log.debug("no application default credentials (%s)", type(exc).__name__)
        return None
    finally:
        auth_log.setLevel(level)
    creds = _honour_file_token_uri(creds, os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"))
    if not _drive_scoped_vm(creds):
        log.info("credentials: skipping the VM's service account (its access scopes do not include Drive)")
        return None
    where = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    kind = type(creds).__module__.rsplit(".", 1)[-1]
    source = f"application default credentials ({where})" if where else f"application default credentials ({kind})"
    remedy = (f"replace {where}" if where else "run 'gcloud auth application-default login "
              "--scopes=https://www.googleapis.com/auth/drive,https://www.googleapis.com/auth/cloud-platform'")
    return Chosen(creds, source, remedy=remedy)


def _honour_file_token_uri(creds, path: str | None):
    """google-auth always points authorized-user credentials at Google's token endpoint; keep the one
    the file names (the emulator in tests, a corporate proxy in the wild), as for --credentials."""
    if not path or not hasattr(creds, "with_token_uri") or not hasattr(creds, "refresh_token"):
        return creds
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError, UnicodeDecodeError):
        return creds
    uri = info.get("token_uri") if isinstance(info, dict) and info.get("type") == "authorized_user" else None
    if isinstance(uri, str) and uri and uri != getattr(creds, "token_uri", None):
        return creds.with_token_uri(uri)
    return creds


def _drive_scoped_vm(creds) -> bool:
    """A Compute Engine VM's default service account usually lacks Drive scopes; skip it then.

    (Colab serves the signed-in user's token through the same metadata interface; there it is kept.)
    """
    # Credentials of this kind come from google.auth.compute_engine, so it is loaded when they are here:
    # importing it just to ask would import requests (about 0.13 s of every command) for nothing.
    compute_engine = sys.modules.get("google.auth.compute_engine")
    if compute_engine is None or not isinstance(creds, compute_engine.Credentials) or _in_colab():
        return True
    try:
        from google.auth.compute_engine import _metadata

        info = _metadata.get_service_account_info(_refresh_request())
        return vm_scopes_allow_drive(info.get("scopes", []))
    except Exception:  # noqa: BLE001 - metadata unreachable: let the API answer decide
        return True


def vm_scopes_allow_drive(scopes) -> bool:
    return any(s in SCOPES.values() for s in scopes or [])


def colab_sign_in(scopes: list[str] | None = None) -> Chosen | None:
    """In Colab with nothing else available: ask the notebook user to sign in, then use ADC."""
    if not _in_colab():
        return None
    try:
        from google.colab import auth as colab_auth  # type: ignore[import-not-found]

        log.info("credentials: asking Colab to sign you in (google.colab.auth.authenticate_user)")
        colab_auth.authenticate_user()
    except Exception as exc:  # noqa: BLE001 - Colab raises its own types; one line is all the user needs
        raise AuthError(f"Colab sign-in failed ({type(exc).__name__}); run "
                        "'from google.colab import auth; auth.authenticate_user()' in a cell") from None
    chosen = application_default(scopes)
    if chosen is None:
        return None
    return Chosen(chosen.credentials, "Colab sign-in (google.colab.auth.authenticate_user)",
                  remedy="run 'from google.colab import auth; auth.authenticate_user()' again")


def saved_login(scopes: list[str] | None = None, *, subject: str | None = None) -> Chosen | None:
    path = token_path()
    if not path.exists():
        return None
    return load_credentials_file(str(path), scopes, subject=subject)


#: A bearer token given as is (CI jobs, tests): used until Drive refuses it, never refreshed, never printed.
ACCESS_TOKEN_ENV = "DRIVESYNC_ACCESS_TOKEN"


def static_token(token: str, source: str, remedy: str) -> Chosen:
    """Credentials that are one access token: no refresh, no expiry known (a 401 ends the run with one line)."""
    if any(c.isspace() or not c.isprintable() for c in token):
        raise AuthError(f"the access token ({source.split(' from ')[-1]}) holds spaces or control characters; "
                        "give the bare token")
    return Chosen(StaticToken(token), source, remedy=remedy)


def find_credentials(credentials_file: str | None = None, scopes: list[str] | None = None, *,
                     subject: str | None = None) -> Chosen:
    """The credentials to use, in the documented order (docs/credentials.md):

    1. ``credentials_file`` (``--credentials``); 2. ``$DRIVESYNC_ACCESS_TOKEN`` (``--access-token``), a static
    token; 3. application default credentials; 4. in Colab, ``google.colab.auth.authenticate_user()``;
    5. the token saved by ``drivesync login``.
    ``subject`` (``--impersonate``) applies to service-account credentials only.
    """
    if credentials_file:
        return load_credentials_file(credentials_file, scopes, subject=subject)
    token = (os.environ.get(ACCESS_TOKEN_ENV) or "").strip()
    if token:
        if subject:
            raise AuthError("--impersonate needs a service-account key (domain-wide delegation), "
                            f"not a static access token ({ACCESS_TOKEN_ENV})")
        return static_token(token, f"static access token from {ACCESS_TOKEN_ENV}",
                            f"set {ACCESS_TOKEN_ENV} to a fresh access token")
    for step in (application_default, colab_sign_in):
        chosen = step(scopes)
        if chosen is not None:
            return _with_subject(chosen, subject)
    chosen = saved_login(scopes, subject=subject)
    if chosen is not None:
        return chosen
    raise AuthError("no Google credentials found: run 'drivesync login', pass --credentials FILE, "
                    "or set GOOGLE_APPLICATION_CREDENTIALS")


def _with_subject(chosen: Chosen, subject: str | None) -> Chosen:
    if not subject:
        return chosen
    with_subject = getattr(chosen.credentials, "with_subject", None)
    if with_subject is None:
        raise AuthError(f"--impersonate needs a service-account key (domain-wide delegation), "
                        f"not {chosen.source}")
    return Chosen(with_subject(subject), f"{chosen.source} acting as {subject}", chosen.remedy)


# -- keeping a token fresh ----------------------------------------------------------------------

def _refresh_request():
    """google-auth's requests-based transport: for refreshes with no client session to carry them
    (``Authorizer.token()`` called without ``send``, a VM's metadata check before any session exists)."""
    import google.auth.transport.requests

    return google.auth.transport.requests.Request()


#: Waiting longer than google-auth's own timeout (120 s for the token endpoint) for an answer from the loop.
_LOOP_REQUEST_SLACK_S = 30.0
_COMMAND_ENDED = "the command ended while a token refresh was in flight"


def _loop_request(send, loop: asyncio.AbstractEventLoop):
    """google-auth's ``Request`` for the refresh thread, carried out on ``loop`` by the client's own HTTP
    session: ``await send(method, url, headers, body, timeout)`` -> ``(status, headers, body)``, raising
    ConnectionError when the endpoint cannot be reached (Transport.token_request). The token endpoint is
    then reached like every other request (one HTTP stack: the same proxy, CA bundle and connection pool),
    and a command whose credentials refresh this way never imports ``requests`` (about 0.13 s of CPU).

    A call after the loop has closed, or one the loop cancelled (the command is ending), raises
    RuntimeError: not a TransportError, so the refresh is not retried on a loop that is gone."""
    from google.auth import exceptions, transport

    class Answer(transport.Response):
        def __init__(self, status: int, headers, data: bytes):
            self._status, self._headers, self._data = status, headers, data

        @property
        def status(self):
            return self._status

        @property
        def headers(self):
            return self._headers

        @property
        def data(self):
            return self._data

    class LoopRequest(transport.Request):
        def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
            timeout = 120.0 if timeout is None else float(timeout)
            coro = send(method, url, dict(headers or {}), body, timeout)
            try:
                future = asyncio.run_coroutine_threadsafe(coro, loop)
            except RuntimeError:            # the loop is closed
                coro.close()
                raise RuntimeError(_COMMAND_ENDED) from None
            try:
                status, answer_headers, data = future.result(timeout + _LOOP_REQUEST_SLACK_S)
            except ConnectionError as exc:
                raise exceptions.TransportError(str(exc)) from None
            except concurrent.futures.CancelledError:
                raise RuntimeError(_COMMAND_ENDED) from None
            except concurrent.futures.TimeoutError:     # the loop itself is stuck: retrying cannot help
                future.cancel()
                raise RuntimeError("no answer from the event loop for a token refresh") from None
            return Answer(status, answer_headers, data)

    return LoopRequest()


class Authorizer:
    """Hands out a valid bearer token to concurrent requests, refreshing one at a time.

    ``token()`` refreshes ahead of expiry; ``refresh_after_401(stale)`` refreshes once unless another
    request already did since ``stale`` was handed out. Refreshing runs google-auth in a thread.
    A refresh that fails for good raises AuthError with one line saying what to run.
    """

    def __init__(self, chosen: Chosen, *, clock=None, sleep=time.sleep, monotonic=time.monotonic,
                 give_up_after: float = 120.0):
        self.chosen = chosen
        self.give_up_after = give_up_after
        self._monotonic = monotonic
        self.credentials = chosen.credentials
        self.refreshes = 0
        self._lock: asyncio.Lock | None = None
        self._lock_loop = None
        self._thread_lock = threading.Lock()
        self._clock = clock or (lambda: _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None))
        self._sleep = sleep
        self._issued_at: _dt.datetime | None = None
        #: Once a refresh has failed for good, every waiter gets the same error (no retry loop).
        self._failed: AuthError | None = None

    def _needs_refresh(self) -> bool:
        creds = self.credentials
        if not getattr(creds, "token", None):
            return True
        expiry = getattr(creds, "expiry", None)
        if expiry is None:
            return False
        now = self._clock()
        lifetime = (expiry - self._issued_at).total_seconds() if self._issued_at else None
        margin = REFRESH_MARGIN_S if lifetime is None else min(REFRESH_MARGIN_S, lifetime / 4)
        return (expiry - now).total_seconds() <= margin

    def _refresh_blocking(self, request=None) -> None:
        """Refresh in this (worker) thread, retrying what may pass; ``request``: google-auth's transport
        (a _loop_request on the caller's session), else its requests-based one."""
        from google.auth.exceptions import RefreshError, TransportError

        with self._thread_lock:
            if self._failed is not None:
                raise self._failed
            started = self._monotonic()
            attempt = 0
            while True:
                try:
                    self.credentials.refresh(request or _refresh_request())
                    break
                except (RefreshError, TransportError) as exc:
                    # The token endpoint is retried like any request: connection errors and 5xx
                    # (google-auth marks those retryable) until give_up_after passes without success.
                    retryable = isinstance(exc, TransportError) or getattr(exc, "retryable", False)
                    waited = self._monotonic() - started
                    if not retryable:
                        self._failed = AuthError(refresh_failure_message(exc, self.chosen))
                        raise self._failed from None
                    if waited >= self.give_up_after:
                        where = _token_host(self.credentials)
                        unreachable = isinstance(exc, TransportError)
                        cause = _scrub(_first_line(str(exc), 120), self.chosen) if unreachable else ""
                        what = (f"could not reach the token endpoint{where}" if unreachable
                                else f"the token endpoint{where} kept failing")
                        raise AuthError(f"{what} for {waited:.0f} s{f' ({cause})' if cause else ''}; "
                                        "check the network and run the command again "
                                        "(--give-up-after SECONDS waits longer)") from None
                    delay = min(REFRESH_BACKOFF_CAP_S, 2 ** attempt, max(0.0, self.give_up_after - waited))
                    attempt += 1
                    log.info("token endpoint %s; retry %d in %.0f s",
                             "unreachable" if isinstance(exc, TransportError) else "failing", attempt, delay)
                    self._sleep(delay)
            self._issued_at = self._clock()
            self.refreshes += 1
            log.debug("access token refreshed (%d so far)", self.refreshes)

    def _loop_lock(self) -> asyncio.Lock:
        # One asyncio lock per event loop, so one Authorizer survives several asyncio.run() calls
        # (the library API runs one per pull/push); the thread lock keeps refreshes single-flight across them.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def token(self, send=None) -> str:
        """A valid access token. ``send``: the caller's way to reach the token endpoint (see
        _loop_request); without one google-auth's requests transport is used."""
        if self._failed is not None:
            raise self._failed
        if self._needs_refresh():
            async with self._loop_lock():
                if self._needs_refresh():
                    await asyncio.to_thread(self._refresh_blocking, self._request(send))
        return self.credentials.token

    async def refresh_after_401(self, stale: str, send=None) -> str:
        async with self._loop_lock():
            if self.credentials.token == stale:
                await asyncio.to_thread(self._refresh_blocking, self._request(send))
        return self.credentials.token

    @staticmethod
    def _request(send):
        return _loop_request(send, asyncio.get_running_loop()) if send is not None else None


def _token_host(creds) -> str:
    """' (oauth2.googleapis.com)' from the credentials' token URI, or ''."""
    from urllib.parse import urlsplit

    uri = getattr(creds, "token_uri", None) or getattr(creds, "_token_uri", None)
    host = urlsplit(uri).netloc if isinstance(uri, str) else ""
    return f" ({host})" if host else ""


_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def refresh_failure_message(exc: Exception, chosen: Chosen | None = None) -> str:
    """One secret-free line for a google-auth RefreshError: the OAuth error code, its description
    (scrubbed of every secret these credentials hold), and what to run."""
    data = exc.args[1] if len(exc.args) > 1 else None
    code, description = "", ""
    if isinstance(data, dict):
        raw_code = data.get("error")
        if isinstance(raw_code, str) and _ERROR_CODE.match(raw_code):
            code = raw_code
        raw_desc = data.get("error_description")
        if isinstance(raw_desc, str):
            description = raw_desc
    elif exc.args and isinstance(exc.args[0], str) and exc.args[0] and not isinstance(data, str):
        # google-auth's own messages ("The credentials do not contain the necessary fields ...").
        description = exc.args[0]
    description = _scrub(_first_line(description, 160), chosen)
    what = code or "rejected"
    if description:
        what += f": {description}"
    hint = {
        "invalid_grant": "the sign-in was revoked or has expired",
        "invalid_client": "the OAuth client is unknown or its secret is wrong",
        "unauthorized_client": "this client may not use this grant (for --impersonate: check domain-wide delegation)",
    }.get(code)
    remedy = (chosen.remedy if chosen and chosen.remedy else "sign in again with 'drivesync login'")
    source = f" ({chosen.source})" if chosen else ""
    # Google's own description says it best when there is one; the hint stands in when there is not.
    return (f"the Google credentials{source} were rejected ({what})"
            + (f"; {hint}" if hint and not description else "") + f": {remedy}")


def _scrub(text: str, chosen: Chosen | None) -> str:
    secrets_ = _credential_secrets(chosen.credentials) if chosen else []
    for secret in secrets_:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "[redacted]")
    # Anything that still looks like a bearer token or a JWT goes too.
    text = re.sub(r"ya29\.[\w.\-]+|eyJ[\w\-]+\.[\w\-]+\.[\w\-]*|1//[\w\-]+", "[redacted]", text)
    return text


def _credential_secrets(creds) -> list[str]:
    out = []
    for attr in ("token", "refresh_token", "client_secret", "_refresh_token", "_client_secret"):
        value = getattr(creds, attr, None)
        if isinstance(value, str):
            out.append(value)
    return out
