"""Where credentials come from, and what happens when they fail, over real sockets against the emulator.

The CLI runs as a subprocess with a clean environment (its own config dir, no gcloud, no ambient
GOOGLE_APPLICATION_CREDENTIALS), so what it prints is exactly what a user would see.
"""
from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from drivesync import auth
from drivesync.config import Settings
from drivesync.errors import AuthError
from drivesync.session import open_drive

CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.fixture
def emu(emulator):
    return emulator


def clean_env(tmp_path, emu, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "DRIVESYNC_", "CLOUDSDK_", "GCE_"))}
    env.update(DRIVESYNC_CONFIG_DIR=str(tmp_path / "config"), DRIVESYNC_STATE_DIR=str(tmp_path / "state"),
               CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), DRIVESYNC_API_URL=emu.url,
               GCE_METADATA_DETECT_RETRIES="1", GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9")
    env.update(extra)
    return env


def run_cli(args, env, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), env=env, input=stdin, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(r: subprocess.CompletedProcess, code: int = 7) -> str:   # 7: credentials (fatal)
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("drivesync: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.fixture
def isolated_in_process(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("GOOGLE_", "CLOUDSDK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DRIVESYNC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GCE_METADATA_DETECT_RETRIES", "1")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(_metadata, "is_on_gce", lambda *a, **k: False)


# -- each source, as whoami reports it ---------------------------------------------------------

def test_whoami_with_each_source_in_order(tmp_path, emu):
    env = clean_env(tmp_path, emu)
    r = run_cli(["whoami"], env)
    line = assert_one_line_error(r)
    assert "drivesync login" in line  # 0: nothing anywhere

    # 4: the token saved by drivesync login
    info = json.loads(open(emu.credentials_path).read())
    auth.save_token(info, tmp_path / "config" / "token.json")
    r = run_cli(["whoami", "-v"], env)
    assert r.returncode == 0, r.stderr
    assert f"credentials: drivesync login token from {tmp_path / 'config' / 'token.json'}" in r.stdout
    assert "account: Emulated User <emulated.user@example.com>" in r.stdout and "storage:" in r.stdout
    assert "credentials: drivesync login token" in r.stderr  # the -v line

    # 2: application default credentials beat the saved token
    adc = tmp_path / "adc.json"
    emu.write_credentials(adc)
    r = run_cli(["whoami"], dict(env, GOOGLE_APPLICATION_CREDENTIALS=str(adc)))
    assert r.returncode == 0, r.stderr
    assert f"credentials: application default credentials ({adc})" in r.stdout

    # 1: --credentials beats everything
    sa = emu.write_service_account_key(tmp_path / "sa.json")
    r = run_cli(["whoami", "--credentials", sa, "--impersonate", "someone@example.com"],
                dict(env, GOOGLE_APPLICATION_CREDENTIALS=str(adc)))
    assert r.returncode == 0, r.stderr
    sa_email = json.loads(open(sa).read())["client_email"]
    assert f"credentials: service account {sa_email} from {sa} acting as someone@example.com" in r.stdout


def test_colab_is_asked_to_sign_in_when_nothing_else_is_there(tmp_path, emu):
    """Colab detection = google.colab importable; a stand-in module records that authenticate_user() ran
    and, like Colab, makes application default credentials available afterwards."""
    adc = emu.write_credentials(tmp_path / "colab-adc.json")
    marker = tmp_path / "authenticate_user-called"
    pkg = tmp_path / "stubs" / "google" / "colab"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "auth.py").write_text(textwrap.dedent(f"""
        import os
        def authenticate_user():
            with open({str(marker)!r}, "a") as fh:
                fh.write("called\\n")
            os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = {adc!r}
    """))
    env = clean_env(tmp_path, emu, PYTHONPATH=str(tmp_path / "stubs"))
    auth_saved = json.loads(open(emu.credentials_path).read())
    auth.save_token(auth_saved, tmp_path / "config" / "token.json")  # step 4 exists, but Colab (3) comes first
    r = run_cli(["whoami", "-v"], env)
    assert r.returncode == 0, r.stderr
    assert marker.read_text() == "called\n"
    assert "credentials: Colab sign-in (google.colab.auth.authenticate_user)" in r.stdout


# -- bad input -----------------------------------------------------------------------------------

def test_malformed_credentials_files_are_one_line_errors(tmp_path, emu, isolated_in_process, capsys):
    # In process (drivesync.cli.main), to spare five interpreter start-ups; same code path as the command.
    from drivesync.cli import main

    secret = json.loads(open(emu.credentials_path).read())["client_secret"]
    cases = {
        "truncated.json": open(emu.credentials_path).read()[:-20],
        "wrong-shape.json": json.dumps({"type": "authorized_user", "client_secret": secret}),
        "binary.json": "\x00\x01\x02",
    }

    def one_line_error(args) -> str:
        code = main(args + ["--api-url", emu.url])
        out, err = capsys.readouterr()
        assert code == 7 and out == "", (code, out, err)
        assert len(err.splitlines()) == 1 and err.startswith("drivesync: ") and "Traceback" not in err, err
        return err

    for name, content in cases.items():
        path = tmp_path / name
        path.write_text(content)
        line = one_line_error(["whoami", "--credentials", str(path)])
        assert str(path) in line and secret not in line
    assert "not found" in one_line_error(["whoami", "--credentials", str(tmp_path / "missing.json")])
    assert "service-account" in one_line_error(["whoami", "--credentials", emu.credentials_path,
                                                "--impersonate", "x@example.com"])


def test_revoked_refresh_token_stops_with_one_line_and_no_retry_loop(tmp_path, emu):
    env = clean_env(tmp_path, emu)
    info = json.loads(open(emu.credentials_path).read())
    token_file = auth.save_token(info, tmp_path / "config" / "token.json")
    emu.revoke_refresh_tokens()
    emu.reset_stats()
    line = assert_one_line_error(run_cli(["whoami"], env))
    assert "invalid_grant" in line and "drivesync login" in line
    assert info["refresh_token"] not in line and info["client_secret"] not in line
    assert emu.stats()["by_kind"].get("token", 0) == 1
    assert token_file.exists()  # a failed refresh never destroys the saved sign-in


def test_revoked_during_many_concurrent_calls_fails_all_with_one_token_request(tmp_path, emu, isolated_in_process):
    chosen = auth.find_credentials(emu.credentials_path)
    authorizer = auth.Authorizer(chosen)
    settings = Settings(api_url=emu.url, max_retries=2, backoff_base=0.01, backoff_cap=0.05)

    async def scenario():
        async with open_drive(settings, authorizer=authorizer) as drive:
            await drive.about()  # a valid token first
            emu.revoke_refresh_tokens()
            emu.expire_tokens()
            emu.reset_stats()
            return await asyncio.gather(*(drive.about() for _ in range(40)), return_exceptions=True)

    results = asyncio.run(scenario())
    assert all(isinstance(r, AuthError) for r in results), results
    assert emu.stats()["by_kind"].get("token", 0) == 1
    assert len({str(r) for r in results}) == 1


def test_service_account_key_uses_the_jwt_bearer_grant(tmp_path, emu, isolated_in_process):
    sa = emu.write_service_account_key(tmp_path / "sa.json")
    mode = stat.S_IMODE(os.stat(sa).st_mode)
    assert mode == 0o600
    chosen = auth.find_credentials(sa, subject="someone@example.com")
    authorizer = auth.Authorizer(chosen)

    async def scenario():
        async with open_drive(Settings(api_url=emu.url), authorizer=authorizer) as drive:
            return await drive.about()

    emu.reset_stats()
    about = asyncio.run(scenario())
    assert about["user"]["emailAddress"]
    assert authorizer.refreshes == 1 and emu.stats()["token_grants"] == 1


def test_access_revoked_in_the_middle_of_a_pull(tmp_path, emu, isolated_in_process, monkeypatch):
    """After the first file lands, the sign-in is revoked and every token expired: the pull stops with
    the one credentials message (an AuthError, not a failure per remaining file), after one refused
    refresh (no retry loop), and leaves no partial file at a final path."""
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    folder = emu.add_folder("data")
    ids = [emu.add_file(f"f{i}.bin", os.urandom(64 * 1024 + i), parent_id=folder) for i in range(8)]
    authorizer = auth.Authorizer(auth.load_credentials_file(emu.credentials_path))
    revoked = []

    def on_event(event):
        if event.kind == "done" and not revoked:
            revoked.append(event.path)
            emu.revoke_refresh_tokens()
            emu.expire_tokens()
            emu.reset_stats()

    from drivesync.puller import pull_async

    settings = Settings(api_url=emu.url, transfers=1, max_retries=2, backoff_base=0.01, backoff_cap=0.05)
    with pytest.raises(auth.AuthError) as raised:
        asyncio.run(pull_async("data", str(tmp_path / "local"), settings=settings, authorizer=authorizer,
                               subscribers=[on_event]))
    assert revoked
    assert emu.stats()["by_kind"].get("token", 0) == 1
    assert "invalid_grant" in str(raised.value) and "drivesync login" in str(raised.value)
    local = tmp_path / "local"
    for fid in ids:  # what is there is complete; nothing else is
        path = local / emu.file(fid)["name"]
        if path.exists():
            assert path.read_bytes() == emu.content(fid)


def test_application_default_credentials_print_no_project_id_warning(emulator, tmp_path):
    """google-auth logs 'No project ID could be determined' for credentials without a project; Drive
    needs none, so a command's output is its own lines only."""
    from cli_env import env_for

    top = emulator.add_folder("data")
    emulator.add_file("a.txt", b"hi", parent_id=top)
    env = env_for(tmp_path, emulator, GOOGLE_APPLICATION_CREDENTIALS=emulator.credentials_path)
    r = subprocess.run([sys.executable, "-m", "drivesync", "pull", "data/", str(tmp_path / "out")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "project ID" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pulled 1 file ") and lines[0].endswith(f"-> {tmp_path / 'out'}")
