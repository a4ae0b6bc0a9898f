"""Command line: `python -m drivesync.emulator --data DIR --port PORT --credentials-out FILE [--profile NAME]
[--storage-limit SIZE]`.

Owns argument parsing, startup (store, server, optional TLS proxy), the one ready line on stdout, and
shutdown on SIGTERM/SIGINT. Must never print tokens or anything else on stdout but the ready lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sys

from .limits import PROFILES, get_profile
from .server import EmulatorServer
from .store import Store


_FROM_PROFILE = object()  # --storage-limit not given: the profile's number
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def storage_size(text: str) -> int | None:
    """'none' -> None (unlimited); '123', '15GiB', '1.5 GB' -> bytes."""
    t = text.strip().lower()
    if t in ("none", "unlimited"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", t)
    if not m or m.group(2) not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 16106127360, 15GiB, 500MB, none)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m drivesync.emulator", description="A Google Drive v3 emulator.")
    p.add_argument("--data", required=True, help="state directory (SQLite metadata + content files)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--credentials-out", help="write an authorized_user credentials file here (mode 0600)")
    p.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="EMAIL=PATH",
        help="create another account (or take the existing one) and write its authorized_user credentials to "
        "PATH (mode 0600); repeatable. At run time: POST /_emulator/accounts {\"email\": ...}",
    )
    p.add_argument("--profile", default="unthrottled", choices=sorted(PROFILES))
    p.add_argument("--token-lifetime", type=float, help="access-token lifetime in seconds")
    p.add_argument(
        "--storage-limit",
        type=storage_size,
        metavar="SIZE",
        help="storage quota (about.storageQuota.limit; uploads past it get 403 storageQuotaExceeded): bytes, "
        "or with a unit (15GiB, 500MB, 64KiB), or 'none' for unlimited; default: the profile's",
        default=_FROM_PROFILE,
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one Profile setting (VALUE is JSON, else a string), e.g. --set gzip_json=false; repeatable",
    )
    p.add_argument("--proxy-port", type=int, help="also start the TLS proxy on this port (0 = free port)")
    p.add_argument("--ca-out", help="where to copy the proxy's CA certificate")
    return p.parse_args(argv)


def parse_sets(items: list[str]) -> dict:
    """`NAME=VALUE` strings -> Profile overrides; VALUE is read as JSON (1, 0.5, true, null), else kept as a string."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--set needs NAME=VALUE, got {item!r}")
        try:
            out[name.strip()] = json.loads(value)
        except ValueError:
            out[name.strip()] = value
    return out


async def amain(args: argparse.Namespace) -> int:
    overrides = {}
    if args.token_lifetime is not None:
        overrides["token_lifetime_s"] = args.token_lifetime
    if args.storage_limit is not _FROM_PROFILE:
        overrides["storage_limit_bytes"] = args.storage_limit
    overrides.update(parse_sets(args.set))
    try:
        profile = get_profile(args.profile, **overrides)
    except TypeError as e:
        raise SystemExit(str(e)) from None
    store = Store(args.data)
    server = EmulatorServer(store, profile)
    port = await server.start(args.host, args.port)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    url = f"http://{shown}:{port}"
    if args.credentials_out:
        server.auth.write_credentials(args.credentials_out, url + "/token")
    for item in args.account:
        email, sep, path = item.partition("=")
        if not sep or not path:
            raise SystemExit(f"--account needs EMAIL=PATH, got {item!r}")
        try:
            server.sharing.add_account(email)
        except ValueError as e:
            raise SystemExit(f"--account: {e}") from None
        server.auth.write_credentials(path, url + "/token", email=email.strip())
    proxy = None
    if args.proxy_port is not None:
        from .proxy import start_proxy

        ca_dir = os.path.join(args.data, "proxy-ca")
        os.makedirs(ca_dir, exist_ok=True)
        proxy, pport, ca = await start_proxy("127.0.0.1", port, "127.0.0.1", args.proxy_port, ca_dir)
        if args.ca_out and os.path.abspath(args.ca_out) != os.path.abspath(ca):
            shutil.copyfile(ca, args.ca_out)
            ca = args.ca_out
    print(f"drivesync emulator listening on {url}", flush=True)
    if proxy is not None:
        print(f"drivesync emulator proxy on http://127.0.0.1:{pport} (CA: {ca})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await stop.wait()
    if proxy is not None:
        proxy.close()
    await server.stop()
    store.close()
    return 0


def main(argv=None) -> int:
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
