"""Point an unchanged rclone (Debian 1.60.1) at the drivesync emulator.

rclone's drive backend has no base-URL option: it always calls https://www.googleapis.com/...
(metadata, and uploads at https://www.googleapis.com/upload/drive/v3/files). What it does honour:

* `HTTPS_PROXY` (Go's ProxyFromEnvironment) -> the emulator's TLS-terminating CONNECT proxy;
* `--ca-cert FILE` (or `RCLONE_CA_CERT`) -> trust the emulator's CA for that proxy's certificates;
* the remote's `token_url` -> where the OAuth refresh goes (form POST with
  grant_type=refresh_token, refresh_token, client_id, client_secret in the body);
* the remote's `token` -> a JSON oauth2.Token; rclone only refreshes it when `expiry` is within
  10 s of now, and writes the refreshed token back into the config file (so the file must be
  writable).

At start rclone asks `files.get("root", fields="id")` unless `root_folder_id` is set.

Things that matter when benchmarking rclone 1.60 (from its v1.60.1 source, checked on the emulator):

* Its pacer (`pacer_min_sleep` 100ms, `pacer_burst` 100) caps it near 10 API calls/s after the
  first 100: many-small-file runs are pacer-bound, as they are against real Drive. Pass
  `options={"pacer_min_sleep": "0"}` only if you mean to measure without it.
* Downloads above `--multi-thread-cutoff` (250M) use `--multi-thread-streams` (4) ranged GETs;
  `rclone copy` then re-reads the local file to check its md5 (disk-bound on slow disks;
  `rclone cat ... > /dev/null` measures the network path alone).
* Uploads above `--drive-upload-cutoff` (8M) are resumable, chunks of `--drive-chunk-size` (8M,
  power of two, >= 256k) POSTed one at a time per file; `--transfers` (4) files in parallel.
* `rclone mount` works here (fuse3, /dev/fuse, root); with `--vfs-cache-mode writes` the upload of
  a written file waits `--vfs-write-back` (5s) and is dropped if the mount exits first: use
  `--vfs-write-back 0s` and give it a moment before `fusermount -u`.

Usage::

    env = write_rclone_config(cfg, emulator_token_uri=emu.token_uri,
                              credentials_json_path=emu.credentials_path,
                              proxy_url=emu.proxy_url, ca_cert_path=emu.ca_cert_path)
    subprocess.run(rclone_args("lsjson", "-R", "emu:", ca_cert_path=emu.ca_cert_path), env=env)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

__all__ = ["write_rclone_config", "rclone_args", "rclone_env", "fetch_access_token"]

_TS = "%Y-%m-%dT%H:%M:%S.%fZ"


def _rfc3339(t: _dt.datetime) -> str:
    return t.astimezone(_dt.timezone.utc).strftime(_TS)


def fetch_access_token(token_uri: str, creds: Mapping[str, Any], timeout: float = 10.0) -> dict:
    """Refresh-token grant against the emulator; returns the token JSON (access_token, expires_in...)."""
    import httpx

    r = httpx.post(
        token_uri,
        data={
            "grant_type": "refresh_token",
            "refresh_token": creds["refresh_token"],
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
        },
        timeout=timeout,
        trust_env=False,  # the emulator's plain port: never through a proxy
    )
    r.raise_for_status()
    return r.json()


def rclone_env(
    config_path: str | os.PathLike[str],
    *,
    proxy_url: str | None = None,
    ca_cert_path: str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment to run rclone with: the config file, the proxy, and the CA.

    Inherits `base` (default: os.environ) minus any proxy settings of its own, so rclone reaches
    Google's hostnames only through the emulator's proxy and everything else (the emulator's plain
    token URL on 127.0.0.1) directly.
    """
    env = dict(os.environ if base is None else base)
    for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
              "NO_PROXY", "no_proxy"):
        env.pop(k, None)
    env["RCLONE_CONFIG"] = str(config_path)
    if proxy_url:
        env["HTTPS_PROXY"] = env["https_proxy"] = proxy_url
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    if ca_cert_path:
        env["RCLONE_CA_CERT"] = str(ca_cert_path)  # same as --ca-cert, for callers that forget it
    return env


def write_rclone_config(
    path: str | os.PathLike[str],
    *,
    emulator_token_uri: str,
    credentials_json_path: str | os.PathLike[str],
    remote_name: str = "emu",
    proxy_url: str | None = None,
    ca_cert_path: str | None = None,
    root_folder_id: str | None = None,
    token_url: str | None = None,
    prefetch_token: bool = True,
    options: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Write an rclone config with one `drive` remote for the emulator; return the env to run rclone.

    - `client_id`/`client_secret`/`refresh_token` come from the emulator's authorized_user file.
    - `token_url` defaults to `emulator_token_uri` (the emulator's plain http URL: rclone reaches it
      directly, Go never proxies 127.0.0.1). Pass "https://oauth2.googleapis.com/token" to send
      refreshes through the proxy instead (that is also rclone's built-in default).
    - With `prefetch_token` the access token is obtained now, with its real expiry, so rclone's
      first request needs no refresh; otherwise (or if that fails) the token is written already
      expired and rclone refreshes it on its first request.
    - `options`: more backend keys, e.g. {"chunk_size": "1M", "upload_cutoff": "1M",
      "pacer_min_sleep": "0"}.
    """
    path = Path(path)
    creds = json.loads(Path(credentials_json_path).read_text())
    now = _dt.datetime.now(_dt.timezone.utc)
    # access_token must be non-empty: rclone 1.60 reads a token with an empty access_token as its
    # legacy {AccessToken,RefreshToken,Expiry} format, loses refresh_token and then fails with
    # "token expired and there's no refresh token".
    token: dict[str, Any] = {
        "access_token": "expired-placeholder",
        "token_type": "Bearer",
        "refresh_token": creds["refresh_token"],
        "expiry": _rfc3339(now - _dt.timedelta(hours=1)),
    }
    if prefetch_token:
        try:
            got = fetch_access_token(emulator_token_uri, creds)
        except Exception:  # noqa: BLE001 - fall back to letting rclone refresh
            got = None
        if got and got.get("access_token"):
            token["access_token"] = got["access_token"]
            token["token_type"] = got.get("token_type", "Bearer") or "Bearer"
            if got.get("refresh_token"):
                token["refresh_token"] = got["refresh_token"]
            lifetime = int(got.get("expires_in", 3600))
            token["expiry"] = _rfc3339(now + _dt.timedelta(seconds=lifetime))

    keys: dict[str, Any] = {
        "type": "drive",
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "scope": "drive",
        "token": json.dumps(token, separators=(",", ":")),
        "token_url": token_url or emulator_token_uri,
    }
    if root_folder_id:
        keys["root_folder_id"] = root_folder_id
    for k, v in (options or {}).items():
        keys[k] = "true" if v is True else "false" if v is False else v

    lines = [f"[{remote_name}]"] + [f"{k} = {v}" for k, v in keys.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return rclone_env(path, proxy_url=proxy_url, ca_cert_path=ca_cert_path)


def rclone_args(
    *args: str,
    ca_cert_path: str | None = None,
    rclone: str | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """argv for subprocess: `rclone [--ca-cert CA] <extra> <args>`."""
    exe = rclone or shutil.which("rclone") or "rclone"
    argv = [exe]
    if ca_cert_path:
        argv += ["--ca-cert", str(ca_cert_path)]
    argv += list(extra)
    argv += list(args)
    return argv


def for_emulator(emu: Any, path: str | os.PathLike[str], **kw: Any) -> dict[str, str]:
    """`write_rclone_config` filled from an `Emulator(proxy=True)` (or anything with the same attrs)."""
    return write_rclone_config(
        path,
        emulator_token_uri=emu.token_uri,
        credentials_json_path=emu.credentials_path,
        proxy_url=emu.proxy_url,
        ca_cert_path=emu.ca_cert_path,
        **kw,
    )


if __name__ == "__main__":  # pragma: no cover - handy from a shell
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--token-uri", required=True)
    ap.add_argument("--credentials", required=True)
    ap.add_argument("--proxy-url")
    ap.add_argument("--ca-cert")
    ap.add_argument("--remote", default="emu")
    ap.add_argument("--root-folder-id")
    ns = ap.parse_args()
    env = write_rclone_config(
        ns.config,
        emulator_token_uri=ns.token_uri,
        credentials_json_path=ns.credentials,
        remote_name=ns.remote,
        proxy_url=ns.proxy_url,
        ca_cert_path=ns.ca_cert,
        root_folder_id=ns.root_folder_id,
    )
    for k in ("RCLONE_CONFIG", "HTTPS_PROXY", "NO_PROXY", "RCLONE_CA_CERT"):
        if k in env:
            print(f"export {k}={env[k]}")
