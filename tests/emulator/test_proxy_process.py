"""`python -m drivesync.emulator.proxy`: the TLS proxy as its own process (the benchmark harness runs it so,
off the emulator's event loop), in front of a real emulator, over real sockets."""
from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys

import httpx

from drivesync.emulator import Emulator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_standalone_proxy_tunnels_to_the_emulator_and_exits_on_sigterm(tmp_path):
    with Emulator(tmp_path / "drive") as emu:
        emu.add_folder("seen-through-the-proxy")
        ca_out = tmp_path / "ca.pem"
        env = dict(os.environ, PYTHONPATH=ROOT)
        proc = subprocess.Popen([sys.executable, "-m", "drivesync.emulator.proxy", "--upstream",
                                 f"127.0.0.1:{emu.port}", "--ca-dir", str(tmp_path / "ca"), "--ca-out", str(ca_out)],
                                stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        try:
            line = proc.stdout.readline()
            m = re.search(r"proxy on (http://\S+) \(CA: (.+)\)", line)
            assert m, line
            assert m.group(2) == str(ca_out) and ca_out.is_file()
            token = httpx.post(emu.token_uri, data=_refresh_form(emu), trust_env=False).json()["access_token"]
            with httpx.Client(proxy=m.group(1), verify=ssl.create_default_context(cafile=str(ca_out)),
                              trust_env=False, timeout=30) as c:
                r = c.get("https://www.googleapis.com/drive/v3/files",
                          params={"q": "name = 'seen-through-the-proxy'"},
                          headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200
            assert [f["name"] for f in r.json()["files"]] == ["seen-through-the-proxy"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0


def _refresh_form(emu) -> dict:
    import json

    creds = json.loads(open(emu.credentials_path).read())
    return {"grant_type": "refresh_token", "refresh_token": creds["refresh_token"],
            "client_id": creds["client_id"], "client_secret": creds["client_secret"]}
