"""The access token is refreshed over the client's own HTTP session (auth's _loop_request carried out by
Transport.token_request), over real sockets against the emulator's token endpoint: the same proxy, CA
bundle and connections as every Drive request, no second HTTP stack loaded for it, and for user credentials
drivesync's own grant (oauth.py), not google-auth's class."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from drivesync.emulator import Emulator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# What google-auth's requests transport would bring in (about 0.13 s of CPU for every command), and its
# user-credentials class (about 50 ms: reauth, JWT, cryptography's x509), which oauth.py stands in for.
_SCRIPT = textwrap.dedent("""
    import json, sys
    from drivesync.cli import main
    url, creds, out = sys.argv[1:]
    code = main(["pull", "data/", out, "-q", "--api-url", url, "--credentials", creds])
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"requests", "urllib3", "charset_normalizer"})
    loaded += sorted(m for m in sys.modules if m.startswith(("google.oauth2", "cryptography")))
    print(json.dumps({"code": code, "loaded": loaded}))
""")


def test_a_pull_refreshes_its_token_over_its_own_session_without_loading_requests_or_google_oauth2(tmp_path):
    with Emulator(tmp_path / "drive") as emu:
        top = emu.add_folder("data")
        emu.add_file("a.txt", b"hello", parent_id=top)
        grants = emu.stats()["token_grants"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "DRIVESYNC_"))}
        env.update(DRIVESYNC_STATE_DIR=str(tmp_path / "state"), DRIVESYNC_CONFIG_DIR=str(tmp_path / "config"),
                   PYTHONPATH=ROOT)
        r = subprocess.run([sys.executable, "-c", _SCRIPT, emu.url, emu.credentials_path, str(tmp_path / "out")],
                           env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1]) == {"code": 0, "loaded": []}
        assert emu.stats()["token_grants"] > grants   # the file holds no access token: it was refreshed
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"hello"


def test_token_request_sends_google_auths_headers_and_body_as_given(monkeypatch):
    """An impersonation's IAM call carries the source credentials' bearer token: it must reach the server."""
    import asyncio

    from aiohttp import web

    from drivesync.config import Settings
    from drivesync.transport import Transport

    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    seen: dict = {}

    async def handler(request):
        seen.update(request.headers)
        seen["body"] = await request.read()
        return web.json_response({"accessToken": "x"})

    async def main():
        app = web.Application()
        app.router.add_post("/v1/generate", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1/generate"
        try:
            async with Transport(Settings(api_url=url.rsplit("/v1", 1)[0]), None) as t:
                return await t.token_request("POST", url, {"Authorization": "Bearer source-token",
                                                           "Content-Type": "application/json"}, b'{"scope": []}', 10)
        finally:
            await runner.cleanup()

    status, headers, body = asyncio.run(main())
    assert (status, json.loads(body), headers["content-type"].split(";")[0]) == (200, {"accessToken": "x"},
                                                                                 "application/json")
    assert seen["Authorization"] == "Bearer source-token" and seen["body"] == b'{"scope": []}'
