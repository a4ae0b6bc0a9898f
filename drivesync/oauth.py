"""Authorized-user credentials of our own: the OAuth 2.0 refresh-token grant (RFC 6749, section 6).

``UserCredentials`` stands where google-auth's ``google.oauth2.credentials.Credentials`` would for every
``--credentials`` file, ``drivesync login`` token and application-default file of type
``authorized_user``. Importing google-auth's class loads its reauth, JWT and crypto modules
(cryptography's x509 among them): about 50 ms at the start of every command, for one form POST and
one JSON answer. Service-account keys, impersonation and the other kinds of application default
credentials still go through google-auth.

The grant itself is sans-I/O: ``grant_request()`` is what to send, ``take_answer()`` reads what came back.
``refresh(request)`` joins the two over google-auth's ``Request`` protocol (``request(url, method, body,
headers, timeout)`` -> an answer with ``status`` and ``data``), the one auth.Authorizer already drives for
google-auth's own credentials, and fails the way google-auth's do: ``RefreshError(message, answer,
retryable=...)``, so the Authorizer's retries and its one-line messages treat both alike. No message here
ever holds a token, a refresh token or a client secret.
"""
from __future__ import annotations

import datetime as _dt
import json
import urllib.parse
from dataclasses import dataclass

#: google-auth's default, where a file names none.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"

#: Statuses worth asking again: google-auth's retryable ones (408, 429, 500, 503, 504) plus 502, the
#: Bad Gateway page Google's front end serves (drive-api.md, "Errors not from Drive").
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: OAuth error codes that say "try again" (RFC 6749 4.1.2.1; google-auth retries these too).
RETRYABLE_ERRORS = frozenset({"internal_failure", "server_error", "temporarily_unavailable"})

_REQUIRED = ("refresh_token", "client_id", "client_secret")


def utcnow() -> _dt.datetime:
    """Naive UTC, as google-auth keeps expiries (tests put this on a virtual clock)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def _refresh_error(message: str, answer, *, retryable: bool):
    from google.auth.exceptions import RefreshError     # after aiohttp, about 1 ms: the Authorizer's protocol

    return RefreshError(message, answer, retryable=retryable)


def parse_expiry(text) -> _dt.datetime | None:
    """An ``expiry`` as google-auth writes it ("2030-01-01T00:00:00Z", fractions allowed) -> naive UTC."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError("expiry is not a date")
    stamp = text.strip().rstrip("Z").split(".")[0]
    return _dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S")


def _good_token(value) -> bool:
    """A bearer token goes into a header: printable ASCII, no spaces."""
    return isinstance(value, str) and 0 < len(value) <= 8192 and value.isascii() and value.isprintable() \
        and " " not in value


@dataclass
class UserCredentials:
    """A refresh token and the OAuth client it was granted to; ``token``/``expiry`` once refreshed."""

    client_id: str
    client_secret: str
    refresh_token: str
    token_uri: str = GOOGLE_TOKEN_URI
    scopes: list[str] | None = None
    token: str | None = None
    expiry: _dt.datetime | None = None

    def __repr__(self) -> str:          # never the secrets, whoever prints it
        return f"UserCredentials(client_id={self.client_id!r}, token_uri={self.token_uri!r})"

    @classmethod
    def from_info(cls, info: dict) -> "UserCredentials":
        """From an authorized-user JSON object. ValueError names what is missing or wrong, never a value."""
        missing = [k for k in _REQUIRED if not isinstance(info.get(k), str) or not info[k]]
        if missing:
            raise ValueError(f"missing fields {', '.join(missing)}")
        uri = info.get("token_uri") or GOOGLE_TOKEN_URI
        scopes = info.get("scopes")
        if isinstance(scopes, str):
            scopes = scopes.split()
        if scopes is not None and (not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)):
            raise ValueError("scopes is not a list of strings")
        token = info.get("token")
        if token is not None and not _good_token(token):
            raise ValueError("token is not a bearer token")
        try:
            expiry = parse_expiry(info.get("expiry"))
        except ValueError:
            raise ValueError("expiry is not a date like 2030-01-01T00:00:00Z") from None
        return cls(info["client_id"], info["client_secret"], info["refresh_token"], uri,
                   scopes or None, token, expiry)

    def grant_request(self) -> tuple[str, dict[str, str], bytes]:
        """(url, headers, body) of the refresh-token grant: a form POST, the scopes when the file names some."""
        form = {"grant_type": "refresh_token", "client_id": self.client_id, "client_secret": self.client_secret,
                "refresh_token": self.refresh_token}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        return self.token_uri, headers, urllib.parse.urlencode(form).encode()

    def take_answer(self, status: int, body: bytes, now: _dt.datetime | None = None) -> None:
        """Keep the access token (and a rotated refresh token) from the token endpoint's answer, or raise
        RefreshError: retryable for a 5xx, a 408/429, "try again" error codes, and a 200 that is not a token
        answer (a body cut short, a proxy's HTML page); not retryable for what the endpoint refused."""
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            raise _refresh_error(f"the token endpoint answered HTTP {status}, not a JSON object", None,
                                 retryable=status == 200 or status in RETRYABLE_STATUSES)
        if status != 200:
            code, desc = answer.get("error"), answer.get("error_description")
            retryable = status in RETRYABLE_STATUSES or any(
                isinstance(v, str) and v in RETRYABLE_ERRORS for v in (code, desc))
            raise _refresh_error(f"{code}: {desc}" if isinstance(code, str) else f"HTTP {status}", answer,
                                 retryable=retryable)
        token = answer.get("access_token")
        if not _good_token(token):
            raise _refresh_error("the token endpoint's answer holds no access token", None,
                                 retryable=True)
        self.token = token
        self.expiry = None
        lifetime = answer.get("expires_in")
        if isinstance(lifetime, str) and lifetime.strip().isdigit():
            lifetime = int(lifetime)
        if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool) and 0 < lifetime < 10 ** 8:
            # Without a usable lifetime the token is kept until Drive answers 401 (then refreshed once).
            self.expiry = (now or utcnow()) + _dt.timedelta(seconds=lifetime)
        rotated = answer.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self.refresh_token = rotated

    def refresh(self, request) -> None:
        """google-auth's ``Credentials.refresh``: one grant over ``request`` (its TransportError passes through)."""
        url, headers, body = self.grant_request()
        answer = request(url, method="POST", body=body, headers=headers)
        self.take_answer(answer.status, answer.data)


class StaticToken:
    """One access token given as is (CI jobs, tests): no expiry known, nothing to refresh it with."""

    expiry = None

    def __init__(self, token: str):
        self.token = token

    def __repr__(self) -> str:
        return "StaticToken()"

    def refresh(self, request) -> None:  # noqa: ARG002 - nothing to refresh with
        raise _refresh_error("Drive refused it, and a static access token cannot be refreshed", None,
                             retryable=False)
