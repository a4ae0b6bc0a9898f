"""The figures of "works on real Drive" (issue 9), each measured against the emulator's front-end habits.

1. Bytes moved pulling a 1 GiB file from a server that ignores Range (every ranged GET answered 200),
   at the default pull settings: what the client read, and what the server sent.
2. Requests spent recovering from OR'd-parents listings answered empty, on a 1,000-folder tree:
   at google-like's rate (10 %) and when every OR'd query is answered empty.
3. Seconds until `drivesync pull` gives up with Drive down (nothing listening) and with every call
   answered 503, at the default --give-up-after.
4. The size on the wire of a 10,000-file listing (10 pages of 1000) with and without gzip.

    python benchmarks/frontend_figures.py [--skip-down] [--out benchmarks/results/frontend.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from drivesync.config import GiB, Settings  # noqa: E402
from drivesync.emulator import Emulator  # noqa: E402
from drivesync.puller import pull  # noqa: E402
from drivesync.remote import resolve, walk  # noqa: E402
from drivesync.session import open_drive  # noqa: E402


def range_ignored(tmp: str) -> dict:
    with Emulator(os.path.join(tmp, "range")) as emu:
        size = 1 * GiB
        emu.add_file("big.bin", size=size, seed=5)
        emu.configure(range_ignored_rate=1.0)
        emu.reset_stats()
        started = time.monotonic()
        result = pull("big.bin", os.path.join(tmp, "range-out", "big.bin"), settings=Settings(api_url=emu.url),
                      credentials=emu.credentials_path)
        seconds = time.monotonic() - started
        stats = emu.stats()
        assert result.ok, result.failed
    return {"file_bytes": size, "client_received": result.bytes_received,
            "client_ratio": round(result.bytes_received / size, 4),
            "server_sent": stats["bytes_sent"], "server_ratio": round(stats["bytes_sent"] / size, 4),
            "media_requests": stats["by_kind"].get("media", 0), "seconds": round(seconds, 2),
            "settings": "defaults (range 32 MiB, 8 streams per file)"}


def ord_parents(tmp: str) -> dict:
    out = {}
    with Emulator(os.path.join(tmp, "ord")) as emu:
        top = emu.add_folder("tree")
        for i in range(10):
            mid = emu.add_folder(f"m{i}", top)
            for j in range(99):
                leaf = emu.add_folder(f"l{j}", mid)
                emu.add_file("x.txt", b"x", parent_id=leaf)
        settings = Settings(api_url=emu.url)

        async def listing():
            async with open_drive(settings, credentials=emu.credentials_path) as drive:
                root = await resolve(drive, "tree/")
                tree = await walk(drive, root, settings)
                return len(tree.files), len(tree.folders), tree.requests, tree.recheck_requests, tree.recovered_folders

        for label, overrides in [("none", {}), ("google-like rate 0.1", {"ord_parents_empty_rate": 0.1, "seed": 1}),
                                 ("every OR'd query", {"ord_parents_empty_rate": 1.0})]:
            emu.configure(ord_parents_empty_rate=0.0)
            emu.configure(**overrides)
            emu.reset_stats()
            files, folders, requests, rechecks, recovered = asyncio.run(listing())
            out[label] = {"files": files, "folders": folders, "listing_requests": requests,
                          "recheck_requests": rechecks, "folders_recovered": recovered,
                          "emptied_by_server": emu.stats()["frontend"].get("ord_parents_empty", 0)}
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def give_up(tmp: str) -> dict:
    out = {}
    with Emulator(os.path.join(tmp, "down")) as emu:
        top = emu.add_folder("data")
        for i in range(58):
            emu.add_file(f"f{i}.bin", b"x" * 1000, parent_id=top)
        env = dict(os.environ, DRIVESYNC_STATE_DIR=os.path.join(tmp, "state"), PYTHONPATH=ROOT)
        for label, url, overrides in [("nothing listening", f"http://127.0.0.1:{free_port()}", {}),
                                      ("every call 500/503", emu.url, {"error_rate": 1.0})]:
            emu.configure(error_rate=0.0)
            emu.configure(**overrides)
            emu.reset_stats()
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "drivesync", "pull", "data/", os.path.join(tmp, "down-out"),
                                   "-q", "--api-url", url, "--credentials", emu.credentials_path],
                                  env=env, capture_output=True, text=True, timeout=900)
            out[label] = {"seconds": round(time.monotonic() - started, 1), "exit": proc.returncode,
                          "stderr": proc.stderr.strip(), "requests_seen_by_server": emu.stats()["requests"]}
    return out


def gzip_listing(tmp: str) -> dict:
    out = {}
    with Emulator(os.path.join(tmp, "gzip")) as emu:
        top = emu.add_folder("many")
        for i in range(10_000):
            emu.add_file(f"sample-{i:05}.jpg", b"", parent_id=top)
        settings = Settings(api_url=emu.url)

        async def listing():
            async with open_drive(settings, credentials=emu.credentials_path) as drive:
                files = await drive.list(f"'{top}' in parents and trashed=false")
                return len(files), drive.t.stats.wire_bytes, drive.t.stats.requests

        for label, on in [("identity", False), ("gzip", True)]:
            emu.configure(gzip_json=on)
            emu.reset_stats()
            started = time.monotonic()
            files, wire, requests = asyncio.run(listing())
            out[label] = {"files": files, "wire_bytes": wire, "requests": requests,
                          "seconds": round(time.monotonic() - started, 2)}
    out["ratio"] = round(out["identity"]["wire_bytes"] / out["gzip"]["wire_bytes"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-down", action="store_true", help="skip the give-up timings (about 4 minutes)")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "frontend.json"))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="drivesync-frontend-") as tmp:
        os.environ.setdefault("DRIVESYNC_STATE_DIR", os.path.join(tmp, "state"))
        for name, fn in [("gzip_listing_10000", gzip_listing), ("ord_parents_1000_folders", ord_parents),
                         ("range_ignored_1GiB", range_ignored)] + ([] if args.skip_down else [("give_up", give_up)]):
            results[name] = fn(tmp)
            print(json.dumps({name: results[name]}, indent=2), flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
