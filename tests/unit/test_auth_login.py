"""The pure parts of the sign-in flows: client files, PKCE, the authorization URL, the token blob."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import urllib.parse

import pytest

from drivesync import login
from drivesync.errors import AuthError, UsageError

SECRET = "GOCSPX-the-client-SECRET-123456"
RT = "1//0-refresh-SECRET-abcdefghijkl"


def client_file(tmp_path, **section):
    body = {"client_id": "123-abc.apps.googleusercontent.com", "client_secret": SECRET, **section}
    path = tmp_path / "client_secret.json"
    path.write_text(json.dumps({"installed": body}))
    return str(path)


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    for name in ("DRIVESYNC_CLIENT_SECRETS", "DRIVESYNC_AUTH_URI", "DRIVESYNC_TOKEN_URI"):
        monkeypatch.delenv(name, raising=False)


def test_a_client_is_required_and_the_error_says_how_to_make_one():
    with pytest.raises(AuthError) as e:
        login.load_client(None)
    assert "--client-secrets" in str(e.value) and "Desktop app" in str(e.value)


def test_client_file_endpoints_default_to_google_and_can_be_overridden(tmp_path, monkeypatch):
    c = login.load_client(client_file(tmp_path))
    assert (c.auth_uri, c.token_uri) == (login.GOOGLE_AUTH_URI, login.GOOGLE_TOKEN_URI)
    assert SECRET not in repr(c)
    monkeypatch.setenv("DRIVESYNC_TOKEN_URI", "http://127.0.0.1:5000/token")
    c = login.load_client(client_file(tmp_path), auth_uri="http://localhost:5000/o/oauth2/auth")
    assert c.token_uri == "http://127.0.0.1:5000/token" and c.auth_uri.startswith("http://localhost:5000")
    with pytest.raises(UsageError, match="plain http"):
        login.load_client(client_file(tmp_path), token_uri="http://evil.example.com/token")


def test_bad_client_files(tmp_path):
    with pytest.raises(AuthError, match="not found"):
        login.load_client(str(tmp_path / "missing.json"))
    p = tmp_path / "c.json"
    p.write_text("{nope " + SECRET)
    with pytest.raises(AuthError) as e:
        login.load_client(str(p))
    assert SECRET not in str(e.value)
    p.write_text(json.dumps({"type": "authorized_user", "refresh_token": RT}))
    with pytest.raises(AuthError, match="--credentials"):
        login.load_client(str(p))
    p.write_text(json.dumps({"installed": {"client_id": "x"}}))
    with pytest.raises(AuthError, match="client_secret"):
        login.load_client(str(p))


def test_pkce_and_authorization_url():
    verifier, challenge = login.pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    client = login.OAuthClient("cid", SECRET)
    url = login.authorization_url(client, "http://127.0.0.1:8765/", ["https://www.googleapis.com/auth/drive"],
                                  "st", challenge)
    parts = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(parts.query))
    assert url.startswith(login.GOOGLE_AUTH_URI + "?")
    assert q["redirect_uri"] == "http://127.0.0.1:8765/" and q["code_challenge_method"] == "S256"
    assert q["access_type"] == "offline" and q["scope"] == "https://www.googleapis.com/auth/drive"
    assert SECRET not in url and verifier not in url


def test_blob_round_trip_and_damaged_pastes_never_echo():
    info = {"client_id": "cid", "client_secret": SECRET, "refresh_token": RT, "token_uri": login.GOOGLE_TOKEN_URI,
            "scopes": ["https://www.googleapis.com/auth/drive.readonly"], "token": "ya29.NOT-CARRIED"}
    blob = login.encode_blob(info)
    assert blob.startswith(login.BLOB_PREFIX) and "\n" not in blob
    back = login.decode_blob("  " + blob[:30] + "\n" + blob[30:] + "\n")  # wrapped by a terminal
    assert back["refresh_token"] == RT and back["scopes"] == info["scopes"] and "token" not in back
    for bad in ("hello", blob[:-10] + "!!!!", login.BLOB_PREFIX + base64.urlsafe_b64encode(b'{"a":1}').decode()):
        with pytest.raises(AuthError) as e:
            login.decode_blob(bad)
        assert RT not in str(e.value) and "drivesync authorize" in str(e.value)


def test_authorize_command_carries_no_secret(monkeypatch):
    monkeypatch.setenv("DRIVESYNC_TOKEN_URI", "http://127.0.0.1:5000/token")
    cmd = login.authorize_command("my client.json", ["https://www.googleapis.com/auth/drive.file"], None, None)
    assert cmd == ("drivesync authorize --client-secrets 'my client.json' --scope drive.file "
                   "--token-uri http://127.0.0.1:5000/token")


def test_empty_paste_is_one_clear_error():
    with pytest.raises(AuthError, match="no token was pasted"):
        login.read_pasted_blob(io.StringIO("\n\n"), say=lambda s: None)
