"""Where credentials come from, and keeping one valid access token for many concurrent requests.

This module owns choosing credentials and refreshing them: one refresh at a time however many
transfers are waiting (no stampede), ahead of expiry, and once more after a 401. It never prints or
logs a token, and never lets one into an exception message.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import threading
from dataclasses import dataclass

from .errors import AuthError

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"
SCOPES = {
    "drive": DRIVE_SCOPE,
    "drive.file": "https://www.googleapis.com/auth/drive.file",
    "drive.readonly": "https://www.googleapis.com/auth/drive.readonly",
}

#: Refresh this long before expiry, or after 3/4 of a token's lifetime when lifetimes are short.
REFRESH_MARGIN_S = 120.0


@dataclass
class Chosen:
    """Credentials plus a one-line, secret-free description of where they came from."""

    credentials: object
    source: str


def load_credentials_file(path: str, scopes: list[str] | None = None, *, subject: str | None = None) -> Chosen:
    """An authorized-user JSON, a service-account key, or a token file written by ``drivesync login``."""
    scopes = scopes or [DRIVE_SCOPE]
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except FileNotFoundError:
        raise AuthError(f"credentials file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise AuthError(f"credentials file {path} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(info, dict):
        raise AuthError(f"credentials file {path} is not a JSON object")
    kind = info.get("type", "authorized_user")
    try:
        if kind == "service_account":
            from google.oauth2 import service_account

            creds = service_account.Credentials.from_service_account_info(info, scopes=scopes)
            if subject:
                creds = creds.with_subject(subject)
            who = info.get("client_email", "?")
            return Chosen(creds, f"service account {who} from {path}" + (f" as {subject}" if subject else ""))
        if kind == "authorized_user":
            from google.oauth2.credentials import Credentials

            creds = Credentials.from_authorized_user_info(info, scopes=info.get("scopes") or None)
            return Chosen(creds, f"user credentials from {path}")
    except (ValueError, KeyError) as exc:
        # google-auth names the missing field; it never echoes secret values.
        raise AuthError(f"credentials file {path} is malformed: {exc}") from None
    raise AuthError(f"credentials file {path} has unsupported type {kind!r}")


def application_default(scopes: list[str] | None = None) -> Chosen | None:
    """google.auth.default(): GOOGLE_APPLICATION_CREDENTIALS, gcloud, Colab after authenticate_user()."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        creds, project = google.auth.default(scopes=scopes or [DRIVE_SCOPE])
    except DefaultCredentialsError:
        return None
    where = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    source = f"application default credentials ({where})" if where else "application default credentials"
    return Chosen(creds, source)


def find_credentials(credentials_file: str | None = None, scopes: list[str] | None = None, *,
                     subject: str | None = None) -> Chosen:
    """The credentials to use, in the documented order (see README, Credentials)."""
    if credentials_file:
        return load_credentials_file(credentials_file, scopes, subject=subject)
    chosen = application_default(scopes)
    if chosen is not None:
        return chosen
    raise AuthError("no Google credentials found: pass --credentials FILE or set GOOGLE_APPLICATION_CREDENTIALS "
                    "(or run 'drivesync login')")


def _refresh_request():
    import google.auth.transport.requests

    return google.auth.transport.requests.Request()


class Authorizer:
    """Hands out a valid bearer token to concurrent requests, refreshing one at a time.

    ``token()`` refreshes ahead of expiry; ``refresh_after_401(stale)`` refreshes once unless another
    request already did since ``stale`` was handed out. Refreshing runs google-auth in a thread.
    """

    def __init__(self, chosen: Chosen, *, clock=None):
        self.chosen = chosen
        self.credentials = chosen.credentials
        self.refreshes = 0
        self._lock = asyncio.Lock()
        self._thread_lock = threading.Lock()
        self._clock = clock or (lambda: _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None))
        self._issued_at: _dt.datetime | None = None

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

    def _refresh_blocking(self) -> None:
        from google.auth.exceptions import RefreshError, TransportError

        with self._thread_lock:
            try:
                self.credentials.refresh(_refresh_request())
            except RefreshError as exc:
                raise AuthError(_refresh_failure_message(exc)) from None
            except TransportError as exc:
                raise AuthError(f"could not reach the token endpoint ({type(exc).__name__})") from None
            self._issued_at = self._clock()
            self.refreshes += 1

    async def token(self) -> str:
        if self._needs_refresh():
            async with self._lock:
                if self._needs_refresh():
                    await asyncio.to_thread(self._refresh_blocking)
        return self.credentials.token

    async def refresh_after_401(self, stale: str) -> str:
        async with self._lock:
            if self.credentials.token == stale:
                await asyncio.to_thread(self._refresh_blocking)
        return self.credentials.token


def _refresh_failure_message(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    # google-auth's message is "<error>: <description>"; keep it, it names no secret.
    first = text.splitlines()[0][:200]
    return (f"the Google credentials were rejected ({first}); sign in again with 'drivesync login' "
            "or point --credentials at a valid file")
