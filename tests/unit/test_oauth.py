"""drivesync's own refresh-token grant (oauth.py): the form it sends and every answer it may get back.

Pure logic: the grant's request and answers as bytes. Over sockets against the emulator's token endpoint it
runs in every integration test that refreshes (test_token_refresh.py, test_credentials_lifetime.py).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.parse

import pytest
from google.auth.exceptions import RefreshError

from drivesync import auth, oauth
from drivesync.errors import AuthError

SECRET_RT = "1//0refresh-SECRET-abcdefghijklmnop"
SECRET_CS = "GOCSPX-client-SECRET-qrstuvwxyz"
NOW = dt.datetime(2030, 1, 1, 12, 0, 0)


def info(**extra):
    base = {"type": "authorized_user", "client_id": "cid.apps.googleusercontent.com", "client_secret": SECRET_CS,
            "refresh_token": SECRET_RT, "token_uri": "http://127.0.0.1:9/token"}
    base.update(extra)
    return base


def creds(**extra) -> oauth.UserCredentials:
    return oauth.UserCredentials.from_info(info(**extra))


def answer(status: int, body) -> tuple[int, bytes]:
    return status, body if isinstance(body, bytes) else json.dumps(body).encode()


def test_the_grant_is_a_form_post_with_the_scopes_the_file_names():
    url, headers, body = creds().grant_request()
    assert url == "http://127.0.0.1:9/token"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(body.decode()) == {
        "grant_type": ["refresh_token"], "client_id": ["cid.apps.googleusercontent.com"],
        "client_secret": [SECRET_CS], "refresh_token": [SECRET_RT]}
    _, _, body = creds(scopes=[auth.DRIVE_SCOPE, auth.SCOPES["drive.file"]]).grant_request()
    assert urllib.parse.parse_qs(body.decode())["scope"] == [f"{auth.DRIVE_SCOPE} {auth.SCOPES['drive.file']}"]
    assert oauth.UserCredentials.from_info({k: v for k, v in info().items() if k != "token_uri"}).token_uri \
        == oauth.GOOGLE_TOKEN_URI


def test_a_token_answer_is_kept_with_its_expiry_and_a_rotated_refresh_token():
    c = creds()
    c.take_answer(*answer(200, {"access_token": "ya29.first", "expires_in": 3599, "token_type": "Bearer"}), now=NOW)
    assert (c.token, c.expiry, c.refresh_token) == ("ya29.first", NOW + dt.timedelta(seconds=3599), SECRET_RT)
    c.take_answer(*answer(200, {"access_token": "ya29.second", "expires_in": "60", "refresh_token": "1//rotated"}),
                  now=NOW)
    assert (c.token, c.expiry, c.refresh_token) == ("ya29.second", NOW + dt.timedelta(seconds=60), "1//rotated")


@pytest.mark.parametrize("lifetime", [None, "soon", -5, 0, True, 10 ** 12, [1]])
def test_a_token_without_a_usable_lifetime_is_kept_until_drive_refuses_it(lifetime):
    c = creds()
    body = {"access_token": "ya29.x"} if lifetime is None else {"access_token": "ya29.x", "expires_in": lifetime}
    c.take_answer(*answer(200, body), now=NOW)
    assert c.token == "ya29.x" and c.expiry is None


@pytest.mark.parametrize("status,body,retryable", [
    (400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}, False),
    (401, {"error": "invalid_client", "error_description": "The OAuth client was not found."}, False),
    (400, {"error": "temporarily_unavailable"}, True),              # RFC 6749: "try again later"
    (503, {"error": "backendError"}, True),
    (429, {"error": "rate_limit_exceeded"}, True),
    (502, b"<html><title>502 Bad Gateway</title></html>", True),   # Google's front end's own page
    (500, b"", True),
    (400, b"<html>Bad Request</html>", False),
    (200, b"<html>Sign in to the Wi-Fi</html>", True),             # a captive portal's 200
    (200, b'{"access_token": "ya29.cut', True),                    # a body cut short
    (200, {"token_type": "Bearer"}, True),                          # no access token at all
    (200, {"access_token": "ya29.x\r\nX-Evil: 1"}, True),          # not something to put in a header
    (200, {"access_token": ""}, True),
])
def test_refusals_are_final_and_bad_days_are_retried(status, body, retryable):
    c = creds()
    with pytest.raises(RefreshError) as e:
        c.take_answer(*answer(status, body), now=NOW)
    assert e.value.retryable is retryable
    assert c.token is None
    assert SECRET_RT not in str(e.value.args) and SECRET_CS not in str(e.value.args)


def test_a_refusal_becomes_the_authorizers_one_scrubbed_line():
    c = creds()
    with pytest.raises(RefreshError) as e:
        c.take_answer(*answer(400, {"error": "invalid_grant", "error_description": f"{SECRET_RT} was revoked"}))
    text = auth.refresh_failure_message(e.value, auth.Chosen(c, "user credentials from /x.json", "sign in again"))
    assert "invalid_grant" in text and "revoked" in text and SECRET_RT not in text and "\n" not in text
    with pytest.raises(RefreshError) as e:
        c.take_answer(*answer(400, b"<html>Bad Request</html>"))
    assert "HTTP 400, not a JSON object" in auth.refresh_failure_message(e.value)


@pytest.mark.parametrize("broken,named", [
    ({"refresh_token": None}, "refresh_token"), ({"client_id": ""}, "client_id"),
    ({"client_secret": 7}, "client_secret"),
    ({"scopes": [1]}, "scopes"), ({"expiry": "tomorrow"}, "expiry"), ({"token": "two words"}, "token"),
])
def test_a_malformed_file_is_named_without_its_values(tmp_path, broken, named):
    path = tmp_path / "creds.json"
    path.write_text(json.dumps(info(**broken)))
    with pytest.raises(AuthError) as e:
        auth.load_credentials_file(str(path))
    assert "malformed" in str(e.value) and named in str(e.value)
    assert SECRET_RT not in str(e.value) and SECRET_CS not in str(e.value)


def test_a_file_that_carries_a_live_token_needs_no_grant(tmp_path):
    path = tmp_path / "creds.json"
    path.write_text(json.dumps(info(token="ya29.carried", expiry="2030-01-01T13:00:00.250Z", scopes="a b")))
    chosen = auth.load_credentials_file(str(path))
    assert chosen.credentials.expiry == dt.datetime(2030, 1, 1, 13, 0, 0)
    assert chosen.credentials.scopes == ["a", "b"]
    a = auth.Authorizer(chosen, clock=lambda: NOW)

    async def must_not_send(*args):
        raise AssertionError("a live token was refreshed")

    assert asyncio.run(a.token(must_not_send)) == "ya29.carried" and a.refreshes == 0


def test_refresh_goes_through_google_auths_request_protocol():
    seen = []

    class Answer:
        status, data = 200, b'{"access_token": "ya29.y", "expires_in": 10}'

    def request(url, method="GET", body=None, headers=None, timeout=None):
        seen.append((url, method, headers["Content-Type"]))
        return Answer()

    c = creds()
    c.refresh(request)
    assert c.token == "ya29.y" and seen == [("http://127.0.0.1:9/token", "POST", "application/x-www-form-urlencoded")]


def test_no_secret_in_repr_and_static_tokens_cannot_be_refreshed():
    c = creds(token="ya29.SECRETTOKEN")
    assert SECRET_RT not in repr(c) and SECRET_CS not in repr(c) and "ya29" not in repr(c)
    static = oauth.StaticToken("ya29.STATIC")
    assert "ya29" not in repr(static) and static.expiry is None
    with pytest.raises(RefreshError) as e:
        static.refresh(None)
    assert not e.value.retryable
