"""drivesync behind a proxy, over real sockets: HTTPS_PROXY / HTTP_PROXY / NO_PROXY and the CA bundle
variables (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE), as a user behind a corporate proxy sets them.

The proxy is the emulator's TLS-terminating CONNECT proxy (drivesync/emulator/proxy.py): it presents
certificates for www.googleapis.com signed by the emulator's own CA, so a pull through it to the default
https://www.googleapis.com works only if drivesync goes through the proxy *and* trusts the bundle the
variable names, and fails if verification were off for any other certificate."""
from __future__ import annotations

import hashlib
import json
import socket

import pytest

import drivesync
from drivesync.emulator import Emulator
from drivesync.errors import DrivesyncError

BUNDLE_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
              "NO_PROXY", "no_proxy")


@pytest.fixture
def emu(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DRIVESYNC_API_URL", raising=False)
    for name in PROXY_VARS + BUNDLE_VARS:
        monkeypatch.delenv(name, raising=False)
    with Emulator(tmp_path / "drive", proxy=True) as e:
        yield e


def _tree(emu) -> dict[str, bytes]:
    top = emu.add_folder("behind-proxy")
    files = {"a.txt": b"alpha\n", "b.bin": bytes(range(256)) * 300}
    for name, data in files.items():
        emu.add_file(name, data, parent_id=top)
    return files


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("bundle_var", BUNDLE_VARS)
def test_pull_through_an_https_proxy_trusting_the_bundle(emu, tmp_path, monkeypatch, bundle_var):
    files = _tree(emu)
    monkeypatch.setenv("HTTPS_PROXY", emu.proxy_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # the token endpoint is the emulator's plain port
    monkeypatch.setenv(bundle_var, emu.ca_cert_path)
    before = emu._proxy_server.bytes_down
    result = drivesync.pull("behind-proxy/", str(tmp_path / "out"), credentials=emu.credentials_path,
                            progress=False)  # api_url: the default, https://www.googleapis.com
    for name, data in files.items():
        got = (tmp_path / "out" / name).read_bytes()
        assert hashlib.md5(got).hexdigest() == hashlib.md5(data).hexdigest()
    assert result.done == len(files)
    assert emu._proxy_server.connections >= 1
    assert emu._proxy_server.bytes_down - before > sum(len(d) for d in files.values())


def test_a_proxy_certificate_outside_the_trust_store_is_refused(emu, tmp_path, monkeypatch):
    """No bundle variable: the proxy's certificate is not trusted and the pull fails; TLS verification is on."""
    _tree(emu)
    monkeypatch.setenv("HTTPS_PROXY", emu.proxy_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with pytest.raises(DrivesyncError) as info:
        drivesync.pull("behind-proxy/", str(tmp_path / "out"), credentials=emu.credentials_path,
                       progress=False, give_up_after=1.0, max_retries=0)
    assert "certificate" in str(info.value).lower()
    assert not (tmp_path / "out" / "a.txt").exists()


def test_a_bundle_variable_naming_no_file_is_one_clear_error(emu, tmp_path, monkeypatch):
    _tree(emu)
    monkeypatch.setenv("HTTPS_PROXY", emu.proxy_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(DrivesyncError) as info:
        drivesync.pull("behind-proxy/", str(tmp_path / "out"), credentials=emu.credentials_path, progress=False)
    assert "REQUESTS_CA_BUNDLE" in str(info.value) and "missing.pem" in str(info.value)


def test_http_proxy_is_used_for_a_plain_api_url_unless_no_proxy_names_it(emu, tmp_path, monkeypatch):
    """The API at localhost, the token endpoint at 127.0.0.1 (always bypassed): only drivesync's own
    requests meet the dead proxy."""
    files = _tree(emu)
    api = emu.url.replace("127.0.0.1", "localhost")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_dead_port()}")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(DrivesyncError) as info:
        drivesync.pull("behind-proxy/", str(tmp_path / "no"), credentials=emu.credentials_path,
                       api_url=api, progress=False, give_up_after=1.0, max_retries=0)
    assert "localhost" in str(info.value) or "refused" in str(info.value).lower()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    drivesync.pull("behind-proxy/", str(tmp_path / "yes"), credentials=emu.credentials_path,
                   api_url=api, progress=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "yes").iterdir()} == files


def test_the_token_endpoint_is_reached_through_the_proxy_and_checked_against_the_bundle(emu, tmp_path, monkeypatch):
    """Google's own token URI and no NO_PROXY: the refresh goes through HTTPS_PROXY (the only way to the
    emulator from that name) and its certificate is checked like every request's; untrusted, one line."""
    files = _tree(emu)
    info = json.loads(open(emu.credentials_path).read())
    info["token_uri"] = "https://oauth2.googleapis.com/token"
    creds = tmp_path / "google-token-uri.json"
    creds.write_text(json.dumps(info))
    monkeypatch.setenv("HTTPS_PROXY", emu.proxy_url)
    with pytest.raises(DrivesyncError) as failed:
        drivesync.pull("behind-proxy/", str(tmp_path / "no"), credentials=str(creds), progress=False,
                       give_up_after=1.0)
    line = str(failed.value)
    assert "\n" not in line and "oauth2.googleapis.com" in line and "certificate" in line.lower()
    assert not (tmp_path / "no").exists() or not any((tmp_path / "no").iterdir())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_cert_path)
    grants = emu.stats()["token_grants"]
    drivesync.pull("behind-proxy/", str(tmp_path / "yes"), credentials=str(creds), progress=False)
    assert emu.stats()["token_grants"] > grants
    assert {p.name: p.read_bytes() for p in (tmp_path / "yes").iterdir()} == files
