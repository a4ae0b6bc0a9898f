"""Signing in to Google Drive: the installed-app flow with a loopback redirect, the two-step
``login --no-browser`` / ``authorize`` flow for machines no browser can reach, and ``whoami``.

Google retired the out-of-band copy-paste flow (2023) and the device flow does not grant the full
Drive scope, so a browser on *some* machine must reach a redirect on *that* machine: either this one
(loopback, ``http://127.0.0.1:PORT/``), or the user's laptop running ``drivesync authorize``, which
prints a token blob to paste back here (the way rclone users know).

This module owns those flows and the token exchange (urllib, synchronous, PKCE S256). It writes the
resulting token only through auth.save_token (0600). It never prints or logs a token or a client
secret: the one exception is by design: ``authorize`` prints the blob the user must carry over.
"""
from __future__ import annotations

import base64
import hashlib
import http.server
import json
import logging
import os
import secrets
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import auth
from .errors import AuthError, UsageError

log = logging.getLogger("drivesync.login")

GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
#: Prefix of the blob ``drivesync authorize`` prints; lets ``login`` recognise a paste.
BLOB_PREFIX = "drivesync-token:"
#: Seconds to wait for the browser to come back to the loopback redirect.
LOOPBACK_TIMEOUT_S = 300.0

CLIENT_HELP = ("drivesync login needs your own OAuth client: create one (Google Cloud console -> APIs & Services "
               "-> Credentials -> Create credentials -> OAuth client ID -> Desktop app, with the Drive API enabled), "
               "download its JSON and pass --client-secrets client_secret.json (or set DRIVESYNC_CLIENT_SECRETS); "
               "see docs/credentials.md")


@dataclass(frozen=True)
class OAuthClient:
    """The user's own OAuth client (installed/Desktop app) and the endpoints to use it with."""

    client_id: str
    client_secret: str = field(repr=False)
    auth_uri: str = GOOGLE_AUTH_URI
    token_uri: str = GOOGLE_TOKEN_URI


def _endpoint(explicit: str | None, env: str, from_file: str | None, default: str) -> str:
    return _check_url(explicit or os.environ.get(env) or from_file or default)


def _check_url(value: str) -> str:
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:  # e.g. an unclosed '[' of an IPv6 host
        raise UsageError(f"not an http(s) URL: {value!r}") from None
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise UsageError(f"not an http(s) URL: {value!r}")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise UsageError(f"refusing plain http for a remote OAuth endpoint: {value}")
    return value


def load_client(path: str | None = None, *, auth_uri: str | None = None, token_uri: str | None = None) -> OAuthClient:
    """``--client-secrets FILE`` (or $DRIVESYNC_CLIENT_SECRETS): Google's client_secret.json
    (``{"installed": {...}}`` or ``{"web": {...}}``). Endpoints: flag, then $DRIVESYNC_AUTH_URI /
    $DRIVESYNC_TOKEN_URI, then the file, then Google's."""
    path = path or os.environ.get("DRIVESYNC_CLIENT_SECRETS")
    if not path:
        raise AuthError(CLIENT_HELP)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise AuthError(f"OAuth client file not found: {path}") from None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        raise AuthError(f"OAuth client file {path} is not valid JSON (download it again from the Cloud console)") from None
    section = data.get("installed") or data.get("web") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        hint = " (that is a credentials file: use --credentials)" if isinstance(data, dict) and "type" in data else ""
        raise AuthError(f"{path} is not an OAuth client file: expected an 'installed' section{hint}")
    cid, secret = section.get("client_id"), section.get("client_secret")
    if not isinstance(cid, str) or not cid or not isinstance(secret, str) or not secret:
        raise AuthError(f"OAuth client file {path} lacks client_id or client_secret")
    return OAuthClient(cid, secret,
                       _endpoint(auth_uri, "DRIVESYNC_AUTH_URI", section.get("auth_uri"), GOOGLE_AUTH_URI),
                       _endpoint(token_uri, "DRIVESYNC_TOKEN_URI", section.get("token_uri"), GOOGLE_TOKEN_URI))


# -- the pieces of the installed-app flow -------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636."""
    verifier = _b64url(secrets.token_bytes(48))
    return verifier, _b64url(hashlib.sha256(verifier.encode()).digest())


def authorization_url(client: OAuthClient, redirect_uri: str, scopes: list[str], state: str, challenge: str) -> str:
    params = {
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(scopes),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",  # a refresh token, so the sign-in outlives the hour
        "prompt": "consent",       # Google returns a refresh token only on consent
    }
    sep = "&" if "?" in client.auth_uri else "?"
    return client.auth_uri + sep + urllib.parse.urlencode(params)


def _token_request(client: OAuthClient, form: dict) -> dict:
    """POST the form to the token endpoint (urllib: a small synchronous call needs no HTTP library of its own)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(client.token_uri, data=urllib.parse.urlencode(form).encode(), method="POST",
                                     headers={"Accept": "application/json",
                                              "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=30.0) as answer:   # noqa: S310 - _check_url vetted it
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as exc:      # an error status: its body says why
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise AuthError(f"could not reach the token endpoint {client.token_uri} ({type(exc).__name__})") from None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
        secrets_ = [v for v in form.values() if isinstance(v, str)] + [client.client_secret]
        code = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else ""
        desc = body.get("error_description") if isinstance(body, dict) else ""
        text = _scrub(f"{code}: {desc}" if code and isinstance(desc, str) and desc else code, secrets_)
        raise AuthError(f"the token endpoint refused the sign-in (HTTP {status}"
                        + (f", {text[:160]}" if text else "") + ")")
    return body


def _scrub(text: str, values) -> str:
    for v in values:
        if v and len(v) >= 6:
            text = text.replace(v, "[redacted]")
    return text


def exchange_code(client: OAuthClient, code: str, redirect_uri: str, verifier: str) -> dict:
    """The authorization_code grant -> the token endpoint's answer (access and refresh token)."""
    return _token_request(client, {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "code_verifier": verifier,
    })


def token_info(client: OAuthClient, answer: dict, scopes: list[str]) -> dict:
    """An authorized-user record google-auth loads (no access token: it is refreshed on use)."""
    refresh = answer.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise AuthError("Google granted no refresh token; remove drivesync's access at "
                        "https://myaccount.google.com/permissions and run the sign-in again")
    granted = answer.get("scope")
    return {
        "type": "authorized_user",
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "refresh_token": refresh,
        "token_uri": client.token_uri,
        "scopes": granted.split() if isinstance(granted, str) and granted.strip() else list(scopes),
        auth.LOGIN_MARKER: 1,
    }


class _Redirect:
    """What the browser brought back to the loopback server."""

    def __init__(self, state: str):
        self.state = state
        self.done = threading.Event()
        self.code: str | None = None
        self.error: str | None = None


def _handler_for(result: _Redirect):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            if "code" not in query and "error" not in query:
                self._answer(404, "Not the sign-in redirect.")
                return
            if query.get("state") != result.state:
                # A request that does not carry our state did not come from our sign-in: ignore it.
                self._answer(400, "This sign-in link is stale or forged; start again from drivesync.")
                return
            if "error" in query:
                result.error = query["error"][:64]
                self._answer(200, "Sign-in was not completed. You can close this tab.")
            else:
                result.code = query["code"]
                self._answer(200, "drivesync is signed in. You can close this tab.")
            result.done.set()

        def _answer(self, status: int, text: str) -> None:
            body = f"<!doctype html><title>drivesync</title><p>{text}</p>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # the request line carries the code: never log it
            pass

    return Handler


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def loopback_flow(client: OAuthClient, scopes: list[str], *, open_browser: Callable[[str], object] | None = None,
                  timeout: float = LOOPBACK_TIMEOUT_S, say: Callable[[str], None] = _say) -> dict:
    """Run the installed-app flow: a one-shot HTTP server on 127.0.0.1, the browser sent to Google's
    consent page, the code it brings back exchanged (with PKCE) for tokens. Returns token_info()."""
    scopes = auth.scope_urls(scopes)
    result = _Redirect(secrets.token_urlsafe(24))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(result))
    except OSError as exc:
        raise AuthError(f"cannot listen on 127.0.0.1 for the sign-in redirect ({exc.strerror or exc}); "
                        "use 'drivesync login --no-browser'") from None
    server.daemon_threads = True
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/"
    verifier, challenge = pkce_pair()
    url = authorization_url(client, redirect_uri, scopes, result.state, challenge)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        say("Opening your browser to sign in to Google. If it does not open, visit:\n  " + url)
        opener = open_browser or _open_in_browser
        try:
            opener(url)
        except Exception as exc:  # noqa: BLE001 - a browser that cannot start: the URL is printed above
            log.debug("could not start a browser (%s)", type(exc).__name__)
        if not result.done.wait(timeout):
            raise AuthError(f"no answer from the browser within {int(timeout)} s; run 'drivesync login' again, "
                            "or 'drivesync login --no-browser' if no browser can reach this machine")
    finally:
        server.shutdown()
        server.server_close()
    if result.error:
        raise AuthError(f"sign-in was not completed ({result.error})")
    answer = exchange_code(client, result.code or "", redirect_uri, verifier)
    return token_info(client, answer, scopes)


def _open_in_browser(url: str) -> None:
    import webbrowser

    webbrowser.open(url, new=1, autoraise=True)


def browser_available() -> bool:
    """Whether a browser on this machine can be expected to open the consent page."""
    if os.environ.get("BROWSER"):
        return True
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY") or auth._in_colab():
        return False
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    import webbrowser

    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


# -- the two-step way: authorize elsewhere, paste the blob here ---------------------------------

def encode_blob(info: dict) -> str:
    """The one-line token ``drivesync authorize`` prints (it carries the refresh token: a secret)."""
    keep = {k: info[k] for k in ("client_id", "client_secret", "refresh_token", "token_uri", "scopes") if k in info}
    return BLOB_PREFIX + _b64url(json.dumps(keep, separators=(",", ":")).encode())


def decode_blob(text: str) -> dict:
    text = "".join((text or "").split())  # a paste may wrap across lines
    if not text.startswith(BLOB_PREFIX):
        raise AuthError(f"that is not a token from 'drivesync authorize' (it starts with '{BLOB_PREFIX}')")
    payload = text[len(BLOB_PREFIX):]
    try:
        info = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError, RecursionError):
        raise AuthError("the pasted token is damaged (copy the whole line 'drivesync authorize' printed)") from None
    needed = ("client_id", "client_secret", "refresh_token", "token_uri")
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) and info[k] for k in needed):
        raise AuthError("the pasted token is incomplete (copy the whole line 'drivesync authorize' printed)")
    _check_url(info["token_uri"])
    scopes = info.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        info["scopes"] = [auth.DRIVE_SCOPE]
    info["type"] = "authorized_user"
    info[auth.LOGIN_MARKER] = 1
    return info


def check_refresh(info: dict) -> None:
    """Prove a pasted token works: one refresh_token grant (its access token is thrown away)."""
    client = OAuthClient(info["client_id"], info["client_secret"], token_uri=info["token_uri"])
    _token_request(client, {"grant_type": "refresh_token", "refresh_token": info["refresh_token"],
                            "client_id": client.client_id, "client_secret": client.client_secret})


def authorize_command(client_secrets: str | None, scopes: list[str], auth_uri: str | None,
                      token_uri: str | None) -> str:
    """The command to run on a machine with a browser (no secret in it)."""
    parts = ["drivesync", "authorize", "--client-secrets", client_secrets or "client_secret.json"]
    short = {v: k for k, v in auth.SCOPES.items()}
    for s in scopes:
        if short.get(s, s) != "drive":
            parts += ["--scope", short.get(s, s)]
    for flag, value, env in (("--auth-uri", auth_uri, "DRIVESYNC_AUTH_URI"),
                             ("--token-uri", token_uri, "DRIVESYNC_TOKEN_URI")):
        value = value or os.environ.get(env)
        if value:
            parts += [flag, value]
    import shlex

    return " ".join(shlex.quote(p) for p in parts)


def read_pasted_blob(stream=None, say: Callable[[str], None] = _say) -> str:
    stream = stream or sys.stdin
    say("Paste the token here and press Enter:")
    while True:
        line = stream.readline()
        if not line:
            raise AuthError("no token was pasted; run 'drivesync login --no-browser' again")
        if line.strip():
            return line.strip()


# -- the commands, as library calls --------------------------------------------------------------

@dataclass
class LoginResult:
    token_file: Path
    scopes: list[str]
    account: str | None = None


def login(*, client_secrets: str | None = None, scopes: list[str] | None = None, no_browser: bool | None = None,
          auth_uri: str | None = None, token_uri: str | None = None, token_file: str | None = None,
          open_browser: Callable[[str], object] | None = None, paste=None,
          say: Callable[[str], None] = _say, timeout: float = LOOPBACK_TIMEOUT_S) -> LoginResult:
    """Sign in and save the token (0600) under the config dir. ``no_browser=None`` decides by
    browser_available(); ``paste`` is a stream to read the blob from (default stdin)."""
    scope_urls = auth.scope_urls(scopes or ["drive"])
    if no_browser is None:
        no_browser = open_browser is None and not browser_available()
        if no_browser:
            say("No web browser on this machine: using the two-step sign-in (--no-browser).")
    if no_browser:
        say("On any machine with a web browser and drivesync installed (from its repository), run:\n\n    "
            + authorize_command(client_secrets or os.environ.get("DRIVESYNC_CLIENT_SECRETS"), scope_urls,
                                auth_uri, token_uri)
            + "\n\nthen copy the line it prints (it starts with '" + BLOB_PREFIX + "').")
        info = decode_blob(read_pasted_blob(paste, say))
        check_refresh(info)
    else:
        client = load_client(client_secrets, auth_uri=auth_uri, token_uri=token_uri)
        info = loopback_flow(client, scope_urls, open_browser=open_browser, timeout=timeout, say=say)
    path = auth.save_token(info, token_file)
    return LoginResult(path, list(info.get("scopes") or scope_urls))


def authorize(*, client_secrets: str | None = None, scopes: list[str] | None = None, auth_uri: str | None = None,
              token_uri: str | None = None, open_browser: Callable[[str], object] | None = None,
              say: Callable[[str], None] = _say, timeout: float = LOOPBACK_TIMEOUT_S) -> str:
    """Run the browser sign-in here and return the blob for ``drivesync login --no-browser`` elsewhere."""
    client = load_client(client_secrets, auth_uri=auth_uri, token_uri=token_uri)
    info = loopback_flow(client, auth.scope_urls(scopes or ["drive"]), open_browser=open_browser,
                         timeout=timeout, say=say)
    return encode_blob(info)


async def whoami_async(settings, *, credentials: str | None = None, subject: str | None = None) -> dict:
    """Where the credentials come from, the account, and its storage quota (about.get)."""
    from .session import open_drive

    async with open_drive(settings, credentials=credentials, subject=subject) as drive:
        chosen = drive.t.authorizer.chosen
        about = await drive.about()
    user = about.get("user") or {}
    quota = about.get("storageQuota") or {}
    return {"source": chosen.source, "name": user.get("displayName"), "email": user.get("emailAddress"),
            "quota": {k: int(v) for k, v in quota.items() if isinstance(v, (str, int)) and str(v).isdigit()}}


def whoami(settings=None, *, credentials: str | None = None, subject: str | None = None) -> dict:
    import asyncio

    from .config import from_environment

    return asyncio.run(whoami_async(settings or from_environment(), credentials=credentials, subject=subject))
