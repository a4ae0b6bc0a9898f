"""google-auth, unchanged, against the emulator's OAuth endpoints.

google-auth ignores the token_uri of an `authorized_user` file (it always uses Google's), so the
`google.auth.default()` path goes through the TLS proxy the way rclone does: HTTPS_PROXY plus the
proxy's CA, and oauth2.googleapis.com reaches the emulator's /token. Service-account keys keep their
token_uri, so the JWT-bearer grant is exercised directly.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

import google.auth
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from drivesync.emulator import Emulator

DRIVE = "https://www.googleapis.com/auth/drive"


def file_credentials(emu) -> user_credentials.Credentials:
    with open(emu.credentials_path) as f:
        info = json.load(f)
    assert info["type"] == "authorized_user" and info["token_uri"] == emu.token_uri
    return user_credentials.Credentials(
        None,
        refresh_token=info["refresh_token"],
        token_uri=info["token_uri"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
    )


def about(emu, token: str) -> requests.Response:
    return requests.get(
        emu.url + "/drive/v3/about", params={"fields": "user"}, headers={"Authorization": f"Bearer {token}"}
    )


def test_credentials_file_mode_and_refresh(emulator):
    import os
    import stat

    assert stat.S_IMODE(os.stat(emulator.credentials_path).st_mode) == 0o600
    creds = file_credentials(emulator)
    creds.refresh(Request())
    assert creds.token and creds.expiry
    r = about(emulator, creds.token)
    assert r.status_code == 200 and r.json()["user"]["me"] is True


def test_default_credentials_through_proxy(tmp_path, monkeypatch):
    import drivesync.emulator.proxy  # noqa: F401  (the project's own module: an import error must fail)
    with Emulator(tmp_path / "d", proxy=True) as emu:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", emu.credentials_path)
        monkeypatch.setenv("HTTPS_PROXY", emu.proxy_url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_cert_path)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        creds, _ = google.auth.default(scopes=[DRIVE])
        creds.refresh(Request())
        assert creds.token
        session = AuthorizedSession(creds)
        r = session.get("https://www.googleapis.com/drive/v3/files/root", params={"fields": "id,name"})
        assert r.status_code == 200, r.text
        assert r.json() == {"id": emu.root_id, "name": "My Drive"}
        assert emu.stats()["token_grants"] >= 1


def test_short_token_lifetime(emulator):
    emulator.configure(token_lifetime_s=2)
    creds = file_credentials(emulator)
    creds.refresh(Request())
    first = creds.token
    assert about(emulator, first).status_code == 200
    time.sleep(2.2)
    r = about(emulator, first)
    assert r.status_code == 401
    assert r.json()["error"]["errors"][0]["reason"] == "authError"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    creds.refresh(Request())
    assert creds.token != first
    assert about(emulator, creds.token).status_code == 200
    # AuthorizedSession refreshes on its own (the 2 s token is always inside google-auth's refresh window).
    session = AuthorizedSession(creds)
    for _ in range(3):
        assert session.get(emulator.url + "/drive/v3/files/root").status_code == 200


def test_revoked_refresh_token(emulator):
    creds = file_credentials(emulator)
    emulator.revoke_refresh_tokens()
    with pytest.raises(RefreshError) as ei:
        creds.refresh(Request())
    assert "invalid_grant" in str(ei.value)


def test_service_account_jwt_bearer(emulator, tmp_path, monkeypatch):
    key = emulator.write_service_account_key(tmp_path / "sa.json")
    creds = service_account.Credentials.from_service_account_file(key, scopes=[DRIVE])
    creds.refresh(Request())
    assert about(emulator, creds.token).status_code == 200
    # impersonation (the `sub` claim)
    delegated = creds.with_subject("someone@example.com")
    delegated.refresh(Request())
    assert delegated.token != creds.token
    # and through google.auth.default()
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    dcreds, project = google.auth.default(scopes=[DRIVE])
    dcreds.refresh(Request())
    assert project == "drivesync-emulator" and about(emulator, dcreds.token).status_code == 200


def test_service_account_forged_key_rejected(emulator, tmp_path):
    key = emulator.write_service_account_key(tmp_path / "sa.json")
    other = Emulator(tmp_path / "other")
    with other:
        forged = other.write_service_account_key(tmp_path / "forged.json")
    info = json.loads(open(forged).read())
    info["token_uri"] = emulator.token_uri
    info["client_email"] = json.loads(open(key).read())["client_email"]
    creds = service_account.Credentials.from_service_account_info(info, scopes=[DRIVE])
    with pytest.raises(RefreshError) as ei:
        creds.refresh(Request())
    assert "invalid_grant" in str(ei.value)
