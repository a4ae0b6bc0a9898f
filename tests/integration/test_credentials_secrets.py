"""No token or secret in any output: stdout/stderr of CLI runs at -vv (which carries every log
record), log records in process at DEBUG, and the journal's bytes.

The runs use 2-second tokens so that refreshes (and 401s) happen during them, and cover every way
credentials are used: sign-in, a saved token, a service-account key, a revoked refresh token. The
secrets to look for are read back from the emulator afterwards: every access token, refresh token
and authorization code it ever issued, the OAuth client secret and the service account's private key.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys

import pytest

from cli_env import browser_program, env_for

from drivesync import auth
from drivesync.config import KiB, MiB, Settings

CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]
LIFETIME_S = 2.0


@pytest.fixture
def emu(emulator):
    return emulator


def issued_secrets(emu, *files) -> set[str]:
    store = emu.server.store  # reading the emulator's own records is how the test learns what to look for
    found = set()
    for table, column in (("access_tokens", "token"), ("refresh_tokens", "token"), ("auth_codes", "code")):
        found.update(row[column] for row in store.execute(f"SELECT {column} FROM {table}"))
    for path in files:
        info = json.loads(open(path).read())
        for key in ("client_secret", "refresh_token", "private_key_id"):
            if isinstance(info.get(key), str):
                found.add(info[key])
        if isinstance(info.get("private_key"), str):  # any line of the PEM body
            found.update(line for line in info["private_key"].splitlines() if len(line) > 40)
    return {s for s in found if s and len(s) >= 16}


JWT = re.compile(rb"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}")
BEARER = re.compile(rb"Bearer\s+[A-Za-z0-9._\-]{16,}")


def scan(blobs: dict[str, bytes], secrets_: set[str]) -> list[str]:
    leaks = []
    for where, blob in blobs.items():
        for secret in secrets_:
            if secret.encode() in blob:
                leaks.append(f"{where}: issued secret {secret[:6]}...")
        if JWT.search(blob):
            leaks.append(f"{where}: a JWT")
        if BEARER.search(blob):
            leaks.append(f"{where}: a bearer header")
    return leaks


def test_no_token_or_secret_in_any_output(tmp_path, emu):
    folder = emu.add_folder("data")
    emu.add_file("big.bin", size=6 * MiB, seed=3, parent_id=folder)
    for i in range(6):
        emu.add_file(f"f{i}.bin", os.urandom(64 * KiB), parent_id=folder)
    creds = json.loads(open(emu.credentials_path).read())
    client_secrets = tmp_path / "client_secret.json"
    client_secrets.write_text(json.dumps({"installed": {
        "client_id": creds["client_id"], "client_secret": creds["client_secret"],
        "auth_uri": emu.url + "/o/oauth2/auth", "token_uri": emu.token_uri}}))
    sa = emu.write_service_account_key(tmp_path / "sa.json")
    push_src = tmp_path / "ckpt"
    push_src.mkdir()
    (push_src / "model.pt").write_bytes(os.urandom(3 * MiB))
    emu.configure(token_lifetime_s=LIFETIME_S, download_bps_total=2 * MiB, download_burst_total=256 * KiB,
                  upload_bps_total=2 * MiB, upload_burst_total=256 * KiB)
    env = env_for(tmp_path, emu, BROWSER=browser_program(tmp_path))

    runs = [
        (["login", "-vv", "--client-secrets", str(client_secrets)], None, 0),
        (["whoami", "-vv"], None, 0),
        (["pull", "-vv", "-q", "data", str(tmp_path / "local"), "--range-size", "1M", "--multistream-cutoff", "2M"],
         None, 0),
        (["push", "-vv", "--no-progress", str(push_src), "up/ckpt", "--chunk-size", "1M"], None, 0),
        (["whoami", "-vv", "--credentials", sa, "--impersonate", "someone@example.com"], None, 0),
        (["authorize", "-vv", "--client-secrets", str(client_secrets)], None, 0),
    ]
    outputs: dict[str, bytes] = {}
    for i, (args, stdin, expected) in enumerate(runs):
        r = subprocess.run(CLI + args, env=env, input=stdin, capture_output=True, timeout=120)
        assert r.returncode == expected, (args, r.stderr.decode(errors="replace")[-2000:])
        if args[0] == "authorize":
            # authorize's one job is to print the token blob on stdout; its stderr must still be clean.
            outputs[f"{args[0]}#{i} stderr"] = r.stderr
        else:
            outputs[f"{args[0]}#{i} stdout"] = r.stdout
            outputs[f"{args[0]}#{i} stderr"] = r.stderr
    assert b"credentials:" in outputs["whoami#1 stderr"]  # -vv really logged
    # A revoked sign-in, at -vv.
    emu.revoke_refresh_tokens()
    emu.expire_tokens()
    r = subprocess.run(CLI + ["whoami", "-vv"], env=env, capture_output=True, timeout=60)
    assert r.returncode == 7 and b"invalid_grant" in r.stderr
    outputs["revoked stdout"], outputs["revoked stderr"] = r.stdout, r.stderr

    # The journal and anything else drivesync keeps in its state dir.
    state = tmp_path / "state"
    state_files = [p for p in state.rglob("*") if p.is_file()]
    assert state_files, "the pull and push should have written a journal"
    for p in state_files:
        outputs[f"state {p.name}"] = p.read_bytes()
    # The config dir holds the token file (the one place a refresh token belongs) and nothing else.
    assert sorted(p.name for p in (tmp_path / "config").iterdir()) == ["token.json"]

    secrets_ = issued_secrets(emu, emu.credentials_path, sa, tmp_path / "config" / "token.json")
    assert len(secrets_) > 6, "the runs should have been issued several tokens"
    assert scan(outputs, secrets_) == []


def test_no_token_in_log_records_in_process(tmp_path, emu, monkeypatch, caplog):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    folder = emu.add_folder("data")
    emu.add_file("a.bin", os.urandom(3 * MiB), parent_id=folder)
    emu.configure(token_lifetime_s=LIFETIME_S, download_bps_total=1 * MiB, download_burst_total=256 * KiB)
    authorizer = auth.Authorizer(auth.load_credentials_file(emu.credentials_path))
    from drivesync.puller import pull_async

    caplog.set_level(logging.DEBUG)
    for name in ("google", "urllib3", "aiohttp", "drivesync"):
        caplog.set_level(logging.DEBUG, logger=name)
    # One stream of 512 KiB ranges: new requests keep coming while tokens expire under them.
    settings = Settings(api_url=emu.url, range_size=512 * KiB, multistream_cutoff=1 * MiB, streams_per_file=1)
    result = asyncio.run(pull_async("data", str(tmp_path / "local"), settings=settings, authorizer=authorizer))
    assert result.ok
    emu.revoke_refresh_tokens()
    emu.expire_tokens()

    async def after_revoke():
        from drivesync.session import open_drive

        async with open_drive(settings, authorizer=authorizer) as drive:
            await drive.about()

    with pytest.raises(Exception) as failure:
        asyncio.run(after_revoke())
    assert authorizer.refreshes >= 2
    records = "\n".join(f"{r.name} {r.getMessage()} {r.__dict__.get('httpRequest', '')} "
                        f"{r.__dict__.get('httpResponse', '')}" for r in caplog.records)
    secrets_ = issued_secrets(emu, emu.credentials_path)
    blobs = {"log records": records.encode(), "exception": str(failure.value).encode(),
             "exception repr": repr(failure.value).encode()}
    assert scan(blobs, secrets_) == []
