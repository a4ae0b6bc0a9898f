"""The sign-in flows against the emulator's authorization and token endpoints, over real sockets.

The browser is replaced by a small HTTP client that follows the emulator's consent redirect back to
drivesync's loopback server: in-process as ``open_browser=``, and for the CLI as the program named by
$BROWSER (which Python's webbrowser module runs), so the command under test is unchanged.
"""
from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import urllib.parse

import httpx
import pytest

from cli_env import browser_program, env_for

from drivesync import auth, login
from drivesync.config import Settings
from drivesync.errors import AuthError

CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.fixture
def emu(emulator):
    return emulator


@pytest.fixture
def client_secrets(tmp_path, emu):
    """A client_secret.json in Google's Desktop-app format, for the emulator's OAuth client."""
    creds = json.loads(open(emu.credentials_path).read())
    path = tmp_path / "client_secret.json"
    path.write_text(json.dumps({"installed": {
        "client_id": creds["client_id"], "client_secret": creds["client_secret"],
        "auth_uri": emu.url + "/o/oauth2/auth", "token_uri": emu.token_uri,
        "redirect_uris": ["http://localhost"]}}))
    return str(path)


def follow(url: str) -> None:
    """The browser: load the consent page (the emulator auto-consents) and follow it back to drivesync."""
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        client.get(url).raise_for_status()


def run_cli(args, env, stdin=None, timeout=60):
    return subprocess.run(CLI + list(args), env=env, input=stdin, capture_output=True, text=True, timeout=timeout)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- in process --------------------------------------------------------------------------------

def test_loopback_flow_saves_a_working_token(tmp_path, emu, client_secrets):
    target = tmp_path / "cfg" / "token.json"
    said = []
    result = login.login(client_secrets=client_secrets, scopes=["drive.readonly"], no_browser=False,
                         open_browser=follow, token_file=str(target), say=said.append)
    assert result.token_file == target and mode(target) == 0o600
    saved = json.loads(target.read_text())
    assert saved["scopes"] == [auth.SCOPES["drive.readonly"]] and saved["token_uri"] == emu.token_uri
    assert "token" not in saved and saved["refresh_token"]
    # The URL shown to the user carries PKCE and state, never the client secret.
    shown = "\n".join(said)
    assert "code_challenge=" in shown and saved["client_secret"] not in shown
    # The saved token works: a refresh_token grant at the emulator, then a Drive call.
    emu.reset_stats()
    info = asyncio.run(login.whoami_async(Settings(api_url=emu.url), credentials=str(target)))
    assert info["email"] == "emulated.user@example.com" and info["source"].startswith("drivesync login token")
    assert emu.stats()["token_grants"] == 1


def test_a_denied_consent_and_a_forged_redirect(tmp_path, emu, client_secrets):
    def deny(url):
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        with httpx.Client(timeout=10) as c:
            # A request without our state is ignored (400) and does not end the sign-in...
            forged = c.get(q["redirect_uri"], params={"code": "4/0forged", "state": "not-ours"})
            assert forged.status_code == 400
            # ...the user pressing "Cancel" on the consent page does.
            c.get(q["redirect_uri"], params={"error": "access_denied", "state": q["state"]})

    with pytest.raises(AuthError, match="access_denied"):
        login.login(client_secrets=client_secrets, no_browser=False, open_browser=deny,
                    token_file=str(tmp_path / "t.json"), say=lambda s: None)
    assert not (tmp_path / "t.json").exists()


def test_a_browser_that_never_comes_back_times_out_cleanly(tmp_path, emu, client_secrets):
    with pytest.raises(AuthError, match="no answer from the browser"):
        login.login(client_secrets=client_secrets, no_browser=False, open_browser=lambda url: None,
                    token_file=str(tmp_path / "t.json"), say=lambda s: None, timeout=0.5)
    assert not (tmp_path / "t.json").exists()


# -- the CLI -------------------------------------------------------------------------------------

def test_cli_login_with_a_browser_then_whoami_uses_the_saved_token(tmp_path, emu, client_secrets):
    env = env_for(tmp_path, emu, BROWSER=browser_program(tmp_path))
    r = run_cli(["login", "--client-secrets", client_secrets], env)
    assert r.returncode == 0, r.stderr
    token = tmp_path / "config" / "token.json"
    assert f"token saved to {token}" in r.stdout and "Emulated User" in r.stdout
    assert mode(token) == 0o600
    r = run_cli(["whoami"], env)
    assert r.returncode == 0, r.stderr
    assert f"credentials: drivesync login token from {token}" in r.stdout


def test_cli_login_needs_the_users_own_client(tmp_path, emu):
    env = env_for(tmp_path, emu, BROWSER=browser_program(tmp_path))
    r = run_cli(["login"], env)
    assert r.returncode == 7 and "Traceback" not in r.stderr
    assert "Desktop app" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli(["login", "--scope", "drive.everything"], env)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_cli_two_step_authorize_elsewhere_paste_here(tmp_path, emu, client_secrets):
    # The laptop: has a browser and the client file; its endpoints come from the environment.
    laptop = env_for(tmp_path / "laptop", emu, BROWSER=browser_program(tmp_path),
                     DRIVESYNC_AUTH_URI=emu.url + "/o/oauth2/auth", DRIVESYNC_TOKEN_URI=emu.token_uri)
    # The GPU VM: no browser, no client file.
    vm = env_for(tmp_path / "vm", emu)

    r = run_cli(["login", "--no-browser", "--scope", "drive.file"], vm, stdin="")
    assert r.returncode == 7
    assert "drivesync authorize --client-secrets client_secret.json --scope drive.file" in r.stderr
    assert "no token was pasted" in r.stderr.strip().splitlines()[-1]

    r = run_cli(["authorize", "--client-secrets", client_secrets, "--scope", "drive.file"], laptop)
    assert r.returncode == 0, r.stderr
    blob = r.stdout.strip()
    assert blob.startswith(login.BLOB_PREFIX) and len(r.stdout.strip().splitlines()) == 1

    r = run_cli(["login", "--no-browser"], vm, stdin="garbage\n")
    assert r.returncode == 7 and "not a token from 'drivesync authorize'" in r.stderr
    assert not (tmp_path / "vm" / "config" / "token.json").exists()

    r = run_cli(["login", "--no-browser"], vm, stdin="\n" + blob + "\n")  # blank lines before a paste are skipped
    assert r.returncode == 0, r.stderr
    token = tmp_path / "vm" / "config" / "token.json"
    assert mode(token) == 0o600
    saved = json.loads(token.read_text())
    assert saved["scopes"] == [auth.SCOPES["drive.file"]]
    assert blob not in r.stdout + r.stderr and saved["refresh_token"] not in r.stdout + r.stderr
    r = run_cli(["whoami"], vm)
    assert r.returncode == 0 and "drivesync login token" in r.stdout


def test_cli_login_without_a_browser_falls_back_to_two_steps(tmp_path, emu):
    env = env_for(tmp_path, emu, SSH_CONNECTION="10.0.0.1 50000 10.0.0.2 22")
    r = run_cli(["login"], env, stdin="")
    assert r.returncode == 7
    assert "two-step" in r.stderr and "drivesync authorize" in r.stderr
