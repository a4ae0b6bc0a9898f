"""Credentials choice, the token file, and the single-flight refresh (pure logic, no network)."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import stat
import sys
import textwrap
import threading

import pytest

from drivesync import auth
from drivesync.errors import AuthError

SECRET_RT = "1//0refresh-SECRET-abcdefghijklmnop"
SECRET_CS = "GOCSPX-client-SECRET-qrstuvwxyz"


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No ambient credentials: own config dir, no gcloud, no GOOGLE_APPLICATION_CREDENTIALS, no GCE."""
    monkeypatch.setenv("DRIVESYNC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("GCE_METADATA_DETECT_RETRIES", "1")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(_metadata, "is_on_gce", lambda *a, **k: False)
    return tmp_path


def user_info(**extra):
    info = {"type": "authorized_user", "client_id": "cid.apps.googleusercontent.com", "client_secret": SECRET_CS,
            "refresh_token": SECRET_RT, "token_uri": "http://127.0.0.1:9/token"}
    info.update(extra)
    return info


def write_json(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


# -- config dir and token file ---------------------------------------------------------------------

def test_config_dir_env_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("DRIVESYNC_CONFIG_DIR", str(tmp_path / "x"))
    assert auth.config_dir() == tmp_path / "x"
    monkeypatch.delenv("DRIVESYNC_CONFIG_DIR")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
        assert auth.config_dir() == tmp_path / "xdg" / "drivesync"
        monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")  # the XDG spec says relative paths are invalid
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert auth.config_dir() == tmp_path / "home" / ".config" / "drivesync"
    assert auth.token_path().name == "token.json"


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_token_file_is_0600_from_creation_even_with_an_open_umask(tmp_path):
    old = os.umask(0)
    try:
        target = tmp_path / "cfg" / "token.json"
        target.parent.mkdir()
        target.write_text("old")
        os.chmod(target, 0o644)
        auth.save_token(user_info(token="ya29.ACCESS", expiry="2030-01-01T00:00:00Z"), target)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    saved = json.loads(target.read_text())
    assert saved["refresh_token"] == SECRET_RT
    assert "token" not in saved and "expiry" not in saved  # access tokens are never stored
    assert saved[auth.LOGIN_MARKER] == 1
    assert [p.name for p in target.parent.iterdir()] == ["token.json"]  # no temporary left behind


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_config_dir_created_private(tmp_path):
    target = tmp_path / "new" / "dir" / "token.json"
    auth.save_token(user_info(), target)
    assert stat.S_IMODE(target.parent.stat().st_mode) & 0o077 == 0


def test_unwritable_token_location_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AuthError, match="cannot"):
        auth.save_token(user_info(), blocker / "token.json")


# -- reading credentials files ---------------------------------------------------------------------

def test_missing_and_malformed_files_never_quote_content(tmp_path):
    with pytest.raises(AuthError, match="not found"):
        auth.load_credentials_file(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"refresh_token": "' + SECRET_RT + '", oops')
    with pytest.raises(AuthError) as e:
        auth.load_credentials_file(str(bad))
    assert "not valid JSON" in str(e.value) and SECRET_RT not in str(e.value)
    with pytest.raises(AuthError, match="not a JSON object"):
        auth.load_credentials_file(write_json(tmp_path / "list.json", [1, 2]))
    with pytest.raises(AuthError, match="unsupported type"):
        auth.load_credentials_file(write_json(tmp_path / "ext.json", {"type": "external_account"}))
    no_rt = user_info()
    del no_rt["refresh_token"]
    with pytest.raises(AuthError) as e:
        auth.load_credentials_file(write_json(tmp_path / "nort.json", no_rt))
    assert "malformed" in str(e.value) and SECRET_CS not in str(e.value)
    with pytest.raises(AuthError, match="malformed"):
        auth.load_credentials_file(write_json(tmp_path / "sa.json", {"type": "service_account", "private_key": "x"}))
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(AuthError, match="directory"):
        auth.load_credentials_file(str(tmp_path / "dir.json"))


def test_client_secrets_file_given_as_credentials_says_what_it_is(tmp_path):
    path = write_json(tmp_path / "client_secret.json", {"installed": {"client_id": "a", "client_secret": "b"}})
    with pytest.raises(AuthError, match="--client-secrets"):
        auth.load_credentials_file(path)


def test_user_credentials_file_and_login_token_are_labelled(tmp_path):
    plain = auth.load_credentials_file(write_json(tmp_path / "u.json", user_info()))
    assert plain.source.startswith("user credentials from") and SECRET_RT not in plain.source
    saved = auth.save_token(user_info(scopes=[auth.SCOPES["drive.readonly"]]), tmp_path / "t.json")
    chosen = auth.load_credentials_file(str(saved))
    assert chosen.source.startswith("drivesync login token from")
    assert "drivesync login" in chosen.remedy
    assert chosen.credentials.scopes == [auth.SCOPES["drive.readonly"]]


def test_impersonate_needs_a_service_account(tmp_path):
    with pytest.raises(AuthError, match="service-account"):
        auth.load_credentials_file(write_json(tmp_path / "u.json", user_info()), subject="someone@example.com")


def test_unknown_scope_is_rejected():
    with pytest.raises(AuthError, match="unknown scope"):
        auth.scope_urls(["drive.everything"])
    assert auth.scope_urls(["drive.file"]) == ["https://www.googleapis.com/auth/drive.file"]


# -- the order -----------------------------------------------------------------------------------

def test_nothing_found_says_what_to_run(isolated):
    with pytest.raises(AuthError) as e:
        auth.find_credentials()
    assert "drivesync login" in str(e.value)


def test_order_file_then_adc_then_saved_login(isolated, monkeypatch):
    explicit = write_json(isolated / "explicit.json", user_info(client_id="explicit"))
    adc = write_json(isolated / "adc.json", user_info(client_id="adc"))
    auth.save_token(user_info(client_id="saved"), auth.token_path())

    assert auth.find_credentials().credentials.client_id == "saved"  # 4: only the saved login
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", adc)
    chosen = auth.find_credentials()  # 2: ADC before the saved login
    assert chosen.credentials.client_id == "adc" and "application default" in chosen.source
    chosen = auth.find_credentials(explicit)  # 1: --credentials before everything
    assert chosen.credentials.client_id == "explicit"


def test_adc_pointing_at_a_missing_file_is_an_error_not_a_fallthrough(isolated, monkeypatch):
    auth.save_token(user_info(client_id="saved"), auth.token_path())
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(isolated / "gone.json"))
    with pytest.raises(AuthError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        auth.find_credentials()


def test_adc_user_files_load_with_drivesyncs_own_grant_and_the_rest_with_google_auth(isolated, monkeypatch):
    from drivesync import oauth

    # gcloud's well-known file (CLOUDSDK_CONFIG), then GOOGLE_APPLICATION_CREDENTIALS ahead of it.
    (isolated / "gcloud").mkdir()
    write_json(isolated / "gcloud" / "application_default_credentials.json", user_info(client_id="gcloud"))
    chosen = auth.find_credentials()
    assert isinstance(chosen.credentials, oauth.UserCredentials) and chosen.credentials.client_id == "gcloud"
    assert "application default" in chosen.source and "gcloud auth application-default login" in chosen.remedy
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", write_json(isolated / "adc.json", user_info(client_id="env")))
    chosen = auth.find_credentials()
    assert chosen.credentials.client_id == "env" and chosen.credentials.token_uri == "http://127.0.0.1:9/token"
    # A user file google-auth would refuse is still google-auth's to explain.
    no_rt = user_info()
    del no_rt["refresh_token"]
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", write_json(isolated / "broken.json", no_rt))
    with pytest.raises(AuthError, match="not usable as credentials"):
        auth.find_credentials()


def test_user_credentials_never_load_google_oauth2(tmp_path):
    import subprocess

    path = write_json(tmp_path / "u.json", user_info())
    code = ("import os, sys; from drivesync import auth; "
            f"a = auth.find_credentials({path!r}); os.environ['GOOGLE_APPLICATION_CREDENTIALS'] = {path!r}; "
            "b = auth.application_default(); "
            "print(type(a.credentials).__name__, type(b.credentials).__name__, "
            "sorted(m for m in sys.modules if m.startswith('google.oauth2')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["UserCredentials", "UserCredentials", "[]"]


def _fake_colab(tmp_path, monkeypatch, body: str):
    """A stand-in google.colab package on sys.path (not HTTP mocking: Colab's module is not on PyPI)."""
    pkg = tmp_path / "stubs" / "google" / "colab"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "auth.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path / "stubs"))
    for name in ("google.colab", "google.colab.auth"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import google

    monkeypatch.setattr(google, "__path__", list(google.__path__) + [str(tmp_path / "stubs" / "google")])
    yield_cleanup = lambda: [sys.modules.pop(n, None) for n in ("google.colab", "google.colab.auth")]  # noqa: E731
    return yield_cleanup


def test_colab_sign_in_is_step_three(isolated, monkeypatch):
    creds = write_json(isolated / "colab-adc.json", user_info(client_id="colab"))
    marker = isolated / "called"
    cleanup = _fake_colab(isolated, monkeypatch, f"""
        import os
        def authenticate_user():
            open({str(marker)!r}, "a").write("called\\n")
            os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = {creds!r}
    """)
    try:
        auth.save_token(user_info(client_id="saved"), auth.token_path())
        chosen = auth.find_credentials()
        assert marker.read_text() == "called\n"
        assert chosen.credentials.client_id == "colab" and chosen.source.startswith("Colab sign-in")
        # Once signed in (ADC available), Colab is not asked again: ADC is step 2.
        chosen = auth.find_credentials()
        assert marker.read_text() == "called\n" and chosen.credentials.client_id == "colab"
    finally:
        monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        cleanup()


def test_colab_sign_in_failure_is_one_line(isolated, monkeypatch):
    cleanup = _fake_colab(isolated, monkeypatch, """
        def authenticate_user():
            raise RuntimeError("popup blocked")
    """)
    try:
        with pytest.raises(AuthError, match="Colab sign-in failed"):
            auth.find_credentials()
    finally:
        cleanup()


def test_vm_scopes_decide_whether_a_vm_service_account_is_used():
    assert not auth.vm_scopes_allow_drive(["https://www.googleapis.com/auth/cloud-platform"])
    assert auth.vm_scopes_allow_drive(["https://www.googleapis.com/auth/drive.readonly"])


def test_the_vm_check_runs_for_vm_credentials_only_and_loads_nothing_for_others(monkeypatch):
    import subprocess

    from google.auth import compute_engine
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(auth, "_in_colab", lambda: False)
    monkeypatch.setattr(_metadata, "get_service_account_info", lambda request, **kw: {
        "scopes": ["https://www.googleapis.com/auth/cloud-platform"]})
    assert not auth._drive_scoped_vm(compute_engine.Credentials())   # asked, and its scopes lack Drive
    assert auth._drive_scoped_vm(object())
    # Other credentials never load google.auth.compute_engine (it imports requests) just to be told no.
    code = ("import sys; from drivesync import auth; assert auth._drive_scoped_vm(object()); "
            "print('google.auth.compute_engine' in sys.modules, 'requests' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


# -- refreshing --------------------------------------------------------------------------------

class FakeCredentials:
    """Stands in for a google-auth Credentials object (the OAuth exchange is tested against the emulator)."""

    def __init__(self, clock, lifetime_s=3.0, fail=None):
        self.clock = clock
        self.lifetime = lifetime_s
        self.token = None
        self.expiry = None
        self.refresh_token = SECRET_RT
        self.client_secret = SECRET_CS
        self.calls = 0
        self.fail = fail

    def refresh(self, request):
        self.calls += 1
        failure = self.fail(self) if self.fail else None
        if failure is not None:
            raise failure
        import time

        time.sleep(0.01)  # let waiters pile up behind the single flight
        self.token = f"ya29.token-{self.calls}-SECRETSECRET"
        self.expiry = self.clock() + dt.timedelta(seconds=self.lifetime)


class Clock:
    def __init__(self):
        self.now = dt.datetime(2030, 1, 1)

    def __call__(self):
        return self.now


def test_many_waiters_share_one_refresh_and_refresh_ahead_of_expiry():
    clock = Clock()
    creds = FakeCredentials(clock, lifetime_s=3.0)
    a = auth.Authorizer(auth.Chosen(creds, "fake"), clock=clock)

    async def burst():
        return await asyncio.gather(*(a.token() for _ in range(200)))

    tokens = asyncio.run(burst())
    assert set(tokens) == {"ya29.token-1-SECRETSECRET"} and creds.calls == 1
    clock.now += dt.timedelta(seconds=2.0)  # not yet within the last quarter of the lifetime
    assert asyncio.run(burst())[0].startswith("ya29.token-1") and creds.calls == 1
    clock.now += dt.timedelta(seconds=0.5)  # within 0.75 s of expiry: refresh ahead of time
    assert set(asyncio.run(burst())) == {"ya29.token-2-SECRETSECRET"} and creds.calls == 2


def test_refresh_after_401_happens_once_per_stale_token():
    clock = Clock()
    creds = FakeCredentials(clock, lifetime_s=3600)
    a = auth.Authorizer(auth.Chosen(creds, "fake"), clock=clock)

    async def run():
        stale = await a.token()
        return await asyncio.gather(*(a.refresh_after_401(stale) for _ in range(50)))

    fresh = asyncio.run(run())
    assert set(fresh) == {"ya29.token-2-SECRETSECRET"} and creds.calls == 2


def _refresh_error(data):
    from google.auth.exceptions import RefreshError

    def make(creds):
        return RefreshError(f"invalid_grant: echo {SECRET_RT} {creds.client_secret}", data)
    return make


def test_revoked_refresh_fails_once_with_a_scrubbed_line_and_stays_failed():
    clock = Clock()
    data = {"error": "invalid_grant", "error_description": f"Token {SECRET_RT} has been expired or revoked."}
    creds = FakeCredentials(clock, fail=_refresh_error(data))
    a = auth.Authorizer(auth.Chosen(creds, "drivesync login token from /x/token.json",
                                    remedy="sign in again with 'drivesync login'"), clock=clock)

    async def run():
        return await asyncio.gather(*(a.token() for _ in range(20)), return_exceptions=True)

    errors = asyncio.run(run())
    assert all(isinstance(e, AuthError) for e in errors)
    assert creds.calls == 1  # no retry loop, no stampede
    text = str(errors[0])
    assert "\n" not in text and SECRET_RT not in text and SECRET_CS not in text
    assert "invalid_grant" in text and "drivesync login" in text and "revoked" in text
    with pytest.raises(AuthError):
        asyncio.run(a.token())
    assert creds.calls == 1


def test_refresh_error_without_json_body_leaks_nothing():
    from google.auth.exceptions import RefreshError

    exc = RefreshError(json.dumps({"weird": SECRET_RT, "access_token": "ya29.LEAKED"}), {"weird": SECRET_RT})
    chosen = auth.Chosen(FakeCredentials(Clock()), "x")
    text = auth.refresh_failure_message(exc, chosen)
    assert SECRET_RT not in text and "ya29.LEAKED" not in text
    text = auth.refresh_failure_message(RefreshError("body " + SECRET_RT, "raw html " + SECRET_RT), chosen)
    assert SECRET_RT not in text


def test_unreachable_token_endpoint_is_retried_until_give_up_after_then_one_line():
    from google.auth.exceptions import TransportError

    clock = Clock()
    creds = FakeCredentials(clock, fail=lambda c: TransportError("connection refused"))
    fake_now = [0.0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        fake_now[0] += seconds

    a = auth.Authorizer(auth.Chosen(creds, "fake"), clock=clock, sleep=sleep, monotonic=lambda: fake_now[0],
                        give_up_after=30.0)
    with pytest.raises(AuthError, match="could not reach the token endpoint for 30 s"):
        asyncio.run(a.token())
    # Backoff 1, 2, 4, 8, 8, ... until 30 s have passed; never one sleep past the bound.
    assert sleeps[:4] == [1, 2, 4, 8] and max(sleeps) <= auth.REFRESH_BACKOFF_CAP_S
    assert sum(sleeps) == pytest.approx(30.0) and creds.calls == len(sleeps) + 1


def test_token_endpoint_blip_is_ridden_out():
    from google.auth.exceptions import TransportError

    clock = Clock()
    failures = iter([TransportError("connection refused")] * 3)
    creds = FakeCredentials(clock, fail=lambda c: next(failures, None))
    a = auth.Authorizer(auth.Chosen(creds, "fake"), clock=clock, sleep=lambda s: None)
    asyncio.run(a.token())
    assert creds.calls == 4


# -- the refresh carried out on the caller's loop (_loop_request; over sockets in test_token_refresh.py) --

def _loop_in_thread():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    return loop, thread


def test_loop_request_hands_google_auth_the_answer_and_maps_unreachable_to_transport_error():
    from google.auth.exceptions import TransportError

    loop, thread = _loop_in_thread()
    seen = []

    async def send(method, url, headers, body, timeout):
        seen.append((method, url, headers, body, timeout, asyncio.get_running_loop()))
        if url.endswith("/down"):
            raise ConnectionError("connection refused")
        return 200, {"Content-Type": "application/json"}, b'{"access_token": "x"}'

    try:
        request = auth._loop_request(send, loop)
        answer = request("http://127.0.0.1:9/token", method="POST", body=b"grant_type=refresh_token",
                         headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=5)
        assert (answer.status, answer.data, answer.headers["Content-Type"]) == (
            200, b'{"access_token": "x"}', "application/json")
        assert seen[0][:5] == ("POST", "http://127.0.0.1:9/token",
                               {"Content-Type": "application/x-www-form-urlencoded"}, b"grant_type=refresh_token", 5.0)
        assert seen[0][5] is loop                     # carried out on the session's loop, not this thread
        with pytest.raises(TransportError, match="connection refused"):   # retried by the Authorizer
            request("http://127.0.0.1:9/down")
        assert seen[1][4] == 120.0                    # google-auth's default when it names none
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    # The loop is gone (the command ended): RuntimeError, which the Authorizer does not retry.
    with pytest.raises(RuntimeError, match="command ended"):
        request("http://127.0.0.1:9/token")


def test_a_refresh_cancelled_by_its_loop_ends_without_a_retry():
    from google.auth.exceptions import TransportError

    loop, thread = _loop_in_thread()
    started = threading.Event()

    async def send(method, url, headers, body, timeout):
        started.set()
        await asyncio.sleep(60)

    try:
        request = auth._loop_request(send, loop)

        def cancel_all():
            for task in asyncio.all_tasks(loop):
                task.cancel()

        def cancel_when_started():
            started.wait(5)
            loop.call_soon_threadsafe(cancel_all)

        threading.Thread(target=cancel_when_started, daemon=True).start()
        with pytest.raises(RuntimeError, match="command ended") as info:
            request("http://127.0.0.1:9/token")
        assert not isinstance(info.value, TransportError)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
