"""transport.proxy_for and transport.ssl_context: the proxy and CA bundle variables, read as curl and requests do."""
from __future__ import annotations

import ssl

import pytest

from drivesync.errors import DrivesyncError
from drivesync.transport import connector_ssl, proxy_for, ssl_context

G = "https://www.googleapis.com/drive/v3/files"


def test_https_proxy_for_https_and_http_proxy_for_http():
    env = {"HTTPS_PROXY": "http://secure:3128", "HTTP_PROXY": "plain:8080"}
    assert proxy_for(G, env) == ("http://secure:3128", None)
    assert proxy_for("http://example.test/x", env) == ("http://plain:8080", None)


def test_lowercase_wins_and_all_proxy_is_the_fallback():
    assert proxy_for(G, {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"})[0] == "http://lower:2"
    assert proxy_for(G, {"https_proxy": "http://lower:2", "HTTPS_PROXY": "http://upper:1"})[0] == "http://lower:2"
    assert proxy_for(G, {"ALL_PROXY": "http://all:3"})[0] == "http://all:3"


@pytest.mark.parametrize("no_proxy", ["www.googleapis.com", ".googleapis.com", "googleapis.com", "*",
                                      "localhost, www.googleapis.com"])
def test_no_proxy_bypasses(no_proxy):
    assert proxy_for(G, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": no_proxy}) == (None, None)


def test_no_proxy_for_another_host_does_not_bypass():
    assert proxy_for(G, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1,example.com"})[0] == "http://p:1"


def test_credentials_in_the_proxy_url_become_a_header_not_part_of_the_url():
    proxy, headers = proxy_for(G, {"HTTPS_PROXY": "http://me:p%40ss@corp:3128"})
    assert proxy == "http://corp:3128"
    assert headers == {"Proxy-Authorization": "Basic bWU6cEBzcw=="}  # base64("me:p@ss")


def test_no_variable_means_direct():
    assert proxy_for(G, {}) == (None, None)


def _a_ca(tmp_path) -> str:
    from drivesync.emulator.tls import ensure_ca

    return str(ensure_ca(tmp_path / "ca")[0])


def test_ssl_context_always_verifies(tmp_path):
    for ctx in (ssl_context({}), ssl_context({"SSL_CERT_FILE": _a_ca(tmp_path)})):
        assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname


def test_the_connector_uses_aiohttps_verifying_default_unless_a_bundle_is_named(tmp_path):
    """No variable: True, aiohttp's own ssl.create_default_context() (built at its import), not a second load
    of the trust store; an empty variable counts as unset. A variable: its bundle alone, verifying."""
    assert connector_ssl({}) is True and connector_ssl({"SSL_CERT_FILE": ""}) is True
    ctx = connector_ssl({"SSL_CERT_FILE": _a_ca(tmp_path)})
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname


def test_a_missing_bundle_names_its_variable(tmp_path):
    with pytest.raises(DrivesyncError, match="CURL_CA_BUNDLE=.*nope.pem"):
        ssl_context({"CURL_CA_BUNDLE": str(tmp_path / "nope.pem")})


def test_requests_bundle_comes_first(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(DrivesyncError, match="REQUESTS_CA_BUNDLE"):
        ssl_context({"REQUESTS_CA_BUNDLE": str(bad), "SSL_CERT_FILE": _a_ca(tmp_path)})


def test_each_origin_is_worked_out_once_and_kept_apart(monkeypatch):
    """Transport._where cuts the origin out of the URL string (every request asks): URLs of one origin
    share the answer, another port or scheme is another origin, and the host comes out for messages."""
    from drivesync import transport
    from drivesync.config import Settings

    monkeypatch.setenv("HTTPS_PROXY", "http://corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    for name in ("https_proxy", "no_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    calls = []
    real = transport.proxy_for
    monkeypatch.setattr(transport, "proxy_for", lambda url: calls.append(url) or real(url))
    t = transport.Transport(Settings(), None)
    assert t._where(G + "/abc?alt=media") == ("www.googleapis.com", "http://corp:3128", None)
    assert t._where(G + "?q=x") == ("www.googleapis.com", "http://corp:3128", None)
    assert t._where("https://www.googleapis.com?fields=x") == ("www.googleapis.com", "http://corp:3128", None)
    assert len(calls) == 1     # one origin, with or without a path
    assert t._where("https://localhost:8443/token") == ("localhost", None, None)
    assert t._where("https://www.googleapis.com:8443/x")[0] == "www.googleapis.com"
    assert len(calls) == 3
