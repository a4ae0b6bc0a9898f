"""OAuth 2.0 as Google runs it, enough for google-auth, google-api-python-client and rclone.

Owns the grants of the token endpoint (refresh_token, JWT-bearer with RS256 service-account assertions,
authorization_code with optional PKCE), the auto-consenting authorization endpoint, revocation, bearer
token checks, the credentials file (`authorized_user`) and service-account key files.
Tokens persist in the store's SQLite, so a credentials file keeps working across a restart.
Must never log or print a token, and never know about HTTP frameworks: it takes dicts and returns dicts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import time
from urllib.parse import urlencode, urlparse, urlunparse, parse_qsl

from .store import Store, USER_EMAIL, now_ms

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URIS = {
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
}


class OAuthError(Exception):
    """An OAuth error answer: (status, {"error", "error_description"})."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict:
        return {"error": self.error, "error_description": self.description}


def invalid_grant(description: str = "Token has been expired or revoked.") -> OAuthError:
    return OAuthError(400, "invalid_grant", description)


def _b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Auth:
    def __init__(self, store: Store, token_lifetime_s=lambda: 3600.0):
        self.store = store
        self.token_lifetime_s = token_lifetime_s
        self._lock = threading.Lock()
        # token -> (expires epoch seconds, subject); a cache in front of SQLite for the hot path.
        self._cache: dict[str, tuple[float, str]] = {}
        self.grants = 0
        cid = store.meta("client_id")
        if cid is None:
            cid = store.set_meta("client_id", f"{secrets.randbelow(10**12):012d}-emulator.apps.googleusercontent.com")
            store.set_meta("client_secret", "GOCSPX-" + secrets.token_urlsafe(21))
        self.client_id = cid
        self.client_secret = store.meta("client_secret")

    # ------------------------------------------------------------------ files

    def default_refresh_token(self) -> str:
        """The refresh token of the credentials file; a new one if the old one was revoked."""
        tok = self.store.meta("default_refresh_token")
        if tok:
            rows = self.store.execute("SELECT revoked FROM refresh_tokens WHERE token = ?", (tok,))
            if rows and not rows[0]["revoked"]:
                return tok
        tok = self._new_refresh_token(self.client_id, USER_EMAIL, DRIVE_SCOPE)
        self.store.set_meta("default_refresh_token", tok)
        return tok

    def credentials_info(self, token_uri: str, email: str | None = None) -> dict:
        """An `authorized_user` credentials dict: the default account's (its one refresh token), or with
        `email` a new refresh token tied to that account (sharing.add_account makes accounts)."""
        if email is None or email == USER_EMAIL:
            refresh = self.default_refresh_token()
        else:
            refresh = self._new_refresh_token(self.client_id, email, DRIVE_SCOPE)
        return {
            "type": "authorized_user",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": refresh,
            "token_uri": token_uri,
        }

    def write_credentials(self, path: str | os.PathLike, token_uri: str, email: str | None = None) -> str:
        """Write an `authorized_user` credentials file (mode 0600) that google.auth.default() accepts."""
        _write_private(path, json.dumps(self.credentials_info(token_uri, email), indent=2) + "\n")
        return str(path)

    def write_service_account_key(self, path: str | os.PathLike, token_uri: str, email: str | None = None) -> str:
        """Write a service-account JSON key whose public half this emulator trusts for the JWT-bearer grant."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        email = email or f"sa-{secrets.token_hex(4)}@drivesync-emulator.iam.gserviceaccount.com"
        pub = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        priv = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.store.execute("INSERT INTO sa_keys (key_id, email, public_pem) VALUES (?, ?, ?)", (key_id, email, pub))
        info = {
            "type": "service_account",
            "project_id": "drivesync-emulator",
            "private_key_id": key_id,
            "private_key": priv,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**21)),
            "auth_uri": token_uri.rsplit("/", 1)[0] + "/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        }
        _write_private(path, json.dumps(info, indent=2) + "\n")
        return str(path)

    # ------------------------------------------------------------------ tokens

    def _new_refresh_token(self, client_id: str, subject: str, scope: str) -> str:
        tok = "1//0" + secrets.token_urlsafe(48)
        self.store.execute(
            "INSERT INTO refresh_tokens (token, client_id, subject, scope, created_ms) VALUES (?, ?, ?, ?, ?)",
            (tok, client_id, subject, scope, now_ms()),
        )
        return tok

    def issue_access_token(
        self, *, subject: str = USER_EMAIL, scope: str = DRIVE_SCOPE, refresh_token: str | None = None,
        lifetime_s: float | None = None,
    ) -> tuple[str, int]:
        """A new bearer token and its lifetime in whole seconds (`expires_in`)."""
        life = float(self.token_lifetime_s() if lifetime_s is None else lifetime_s)
        tok = "ya29." + secrets.token_urlsafe(64)
        expires = time.time() + life
        self.store.execute(
            "INSERT INTO access_tokens (token, refresh_token, subject, scope, expires) VALUES (?, ?, ?, ?, ?)",
            (tok, refresh_token, subject, scope, expires),
        )
        with self._lock:
            self._cache[tok] = (expires, subject)
        return tok, max(1, int(life))

    def check(self, token: str | None) -> bool:
        """Whether a bearer token is known, unrevoked and unexpired."""
        return self.subject(token) is not None

    def subject(self, token: str | None) -> str | None:
        """The subject (an account's email, or a service account's / JWT `sub`) of a valid bearer token, else None."""
        if not token:
            return None
        with self._lock:
            hit = self._cache.get(token)
        if hit is None:
            rows = self.store.execute(
                "SELECT expires, subject FROM access_tokens WHERE token = ? AND revoked = 0", (token,)
            )
            if not rows:
                return None
            hit = (rows[0]["expires"], rows[0]["subject"])
            with self._lock:
                self._cache[token] = hit
        return (hit[1] or USER_EMAIL) if time.time() < hit[0] else None

    def expire_tokens(self) -> None:
        self.store.execute("UPDATE access_tokens SET expires = 0")
        with self._lock:
            self._cache.clear()

    def revoke_refresh_tokens(self) -> None:
        self.store.execute("UPDATE refresh_tokens SET revoked = 1")
        self.store.execute("UPDATE access_tokens SET revoked = 1 WHERE refresh_token IS NOT NULL")
        with self._lock:
            self._cache.clear()

    def revoke(self, token: str) -> None:
        n = self.store.execute("SELECT token FROM refresh_tokens WHERE token = ? AND revoked = 0", (token,))
        if n:
            self.store.execute("UPDATE refresh_tokens SET revoked = 1 WHERE token = ?", (token,))
            self.store.execute("UPDATE access_tokens SET revoked = 1 WHERE refresh_token = ?", (token,))
        else:
            a = self.store.execute("SELECT token FROM access_tokens WHERE token = ? AND revoked = 0", (token,))
            if not a:
                raise OAuthError(400, "invalid_token", "Token expired or revoked")
            self.store.execute("UPDATE access_tokens SET revoked = 1 WHERE token = ?", (token,))
        with self._lock:
            self._cache.clear()

    # ------------------------------------------------------------------ the token endpoint

    def grant(self, form: dict, accepted_audiences: set[str]) -> dict:
        """Answer one token request (`form` = the decoded form fields). Raises OAuthError."""
        gt = form.get("grant_type")
        if gt == "refresh_token":
            out = self._grant_refresh(form)
        elif gt == JWT_BEARER:
            out = self._grant_jwt(form, accepted_audiences)
        elif gt == "authorization_code":
            out = self._grant_code(form)
        elif not gt:
            raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
        else:
            raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {gt}")
        self.grants += 1
        return out

    def _grant_refresh(self, form: dict) -> dict:
        rt = form.get("refresh_token")
        if not rt:
            raise OAuthError(400, "invalid_request", "Missing required parameter: refresh_token")
        rows = self.store.execute("SELECT subject, scope, revoked FROM refresh_tokens WHERE token = ?", (rt,))
        if not rows or rows[0]["revoked"]:
            raise invalid_grant()
        scope = rows[0]["scope"] or DRIVE_SCOPE
        tok, life = self.issue_access_token(subject=rows[0]["subject"], scope=scope, refresh_token=rt)
        return {"access_token": tok, "expires_in": life, "scope": scope, "token_type": "Bearer"}

    def _grant_jwt(self, form: dict, accepted_audiences: set[str]) -> dict:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        assertion = form.get("assertion") or ""
        try:
            h64, p64, s64 = assertion.split(".")
            header = json.loads(_b64url_decode(h64))
            claims = json.loads(_b64url_decode(p64))
            sig = _b64url_decode(s64)
        except Exception:
            raise invalid_grant("Invalid JWT: could not be decoded.") from None
        if header.get("alg") != "RS256":
            raise invalid_grant("Invalid JWT Signature.")
        rows = []
        if header.get("kid"):
            rows = self.store.execute("SELECT email, public_pem FROM sa_keys WHERE key_id = ?", (header["kid"],))
        if not rows:
            rows = self.store.execute("SELECT email, public_pem FROM sa_keys WHERE email = ?", (claims.get("iss"),))
        ok = False
        for row in rows:
            key = serialization.load_pem_public_key(row["public_pem"].encode())
            try:
                key.verify(sig, f"{h64}.{p64}".encode(), padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                continue
            if row["email"] != claims.get("iss"):
                raise invalid_grant("Invalid JWT: issuer does not match the key.")
            ok = True
            break
        if not ok:
            raise invalid_grant("Invalid JWT Signature.")
        if claims.get("aud") not in accepted_audiences:
            raise invalid_grant("Invalid JWT: Failed audience check. The expected audience is the token endpoint URL.")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, (int, float)) or not isinstance(exp, (int, float)):
            raise invalid_grant("Invalid JWT: iat and exp are required.")
        if exp <= now or iat > now + 300 or exp - iat > 3600 + 5:
            raise invalid_grant(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
                "Check your iat and exp values in the JWT claim."
            )
        scope = claims.get("scope")
        if not scope:
            raise OAuthError(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        subject = claims.get("sub") or claims["iss"]
        tok, life = self.issue_access_token(subject=subject, scope=scope)
        return {"access_token": tok, "expires_in": life, "token_type": "Bearer"}

    def _grant_code(self, form: dict) -> dict:
        code = form.get("code")
        if not code:
            raise OAuthError(400, "invalid_request", "Missing required parameter: code")
        rows = self.store.execute("SELECT * FROM auth_codes WHERE code = ?", (code,))
        if not rows or rows[0]["used"] or rows[0]["expires"] < time.time():
            raise invalid_grant("Malformed auth code.")
        c = rows[0]
        if c["redirect_uri"] and form.get("redirect_uri") != c["redirect_uri"]:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        if c["challenge"]:
            verifier = form.get("code_verifier") or ""
            if c["method"] == "S256":
                got = _b64url(hashlib.sha256(verifier.encode()).digest())
            else:
                got = verifier
            if got != c["challenge"]:
                raise invalid_grant("Invalid code verifier.")
        self.store.execute("UPDATE auth_codes SET used = 1 WHERE code = ?", (code,))
        scope = c["scope"] or DRIVE_SCOPE
        subject = c.get("subject") or USER_EMAIL
        rt = self._new_refresh_token(form.get("client_id") or c["client_id"], subject, scope)
        tok, life = self.issue_access_token(subject=subject, scope=scope, refresh_token=rt)
        return {"access_token": tok, "expires_in": life, "refresh_token": rt, "scope": scope, "token_type": "Bearer"}

    # ------------------------------------------------------------------ the authorization endpoint

    def authorize(self, query: dict) -> str:
        """Auto-consent: return the redirect URL carrying a fresh code (and state). Raises OAuthError."""
        redirect_uri = query.get("redirect_uri")
        if not redirect_uri:
            raise OAuthError(400, "invalid_request", "Missing required parameter: redirect_uri")
        if query.get("response_type", "code") != "code":
            raise OAuthError(400, "unsupported_response_type", "Only response_type=code is supported.")
        method = query.get("code_challenge_method") or ("plain" if query.get("code_challenge") else None)
        if method not in (None, "plain", "S256"):
            raise OAuthError(400, "invalid_request", "Invalid code_challenge_method.")
        code = "4/0" + secrets.token_urlsafe(40)
        # Consent is automatic: the account signed in is `login_hint` when it names an account, else the default.
        hint = (query.get("login_hint") or "").strip()
        subject = hint if hint and self.store.execute("SELECT 1 FROM accounts WHERE email = ?", (hint,)) else USER_EMAIL
        self.store.execute(
            "INSERT INTO auth_codes (code, client_id, redirect_uri, scope, challenge, method, expires, subject) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                code,
                query.get("client_id"),
                redirect_uri,
                query.get("scope") or DRIVE_SCOPE,
                query.get("code_challenge"),
                method,
                time.time() + 600,
                subject,
            ),
        )
        params = {"code": code, "scope": query.get("scope") or DRIVE_SCOPE}
        if "state" in query:
            params["state"] = query["state"]
        parts = urlparse(redirect_uri)
        q = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
        return urlunparse(parts._replace(query=urlencode(q)))


def _write_private(path, text: str) -> None:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp-" + secrets.token_hex(4)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
