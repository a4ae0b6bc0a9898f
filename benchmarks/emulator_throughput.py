"""How fast the emulator serves media when nothing throttles it (it must never be the bottleneck).

Standalone: seeds a ~1 GiB pseudo-random file straight into a fresh store, starts
`python -m drivesync.emulator` as a subprocess (unthrottled), then a plain aiohttp reader fetches the
file with N parallel ranged GETs (default 8) and prints MB/s (1 MB = 10^6 bytes). Also times a
metadata round (files.list of 10,000 files in pages of 1000) so per-request overhead stays visible.

    python benchmarks/emulator_throughput.py [--size-mib 1024] [--streams 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import aiohttp  # noqa: E402

from drivesync.emulator.store import Store  # noqa: E402


async def fetch_range(session, url, headers, start, end, block) -> int:
    h = dict(headers, Range=f"bytes={start}-{end}")
    n = 0
    async with session.get(url, headers=h) as r:
        assert r.status == 206, r.status
        async for chunk in r.content.iter_chunked(block):
            n += len(chunk)
    return n


async def download(base, fid, token, size, streams, block) -> float:
    url = f"{base}/drive/v3/files/{fid}?alt=media"
    headers = {"Authorization": f"Bearer {token}"}
    part = -(-size // streams)
    conn = aiohttp.TCPConnector(limit=streams)
    async with aiohttp.ClientSession(connector=conn, read_bufsize=block) as s:
        t = time.perf_counter()
        got = await asyncio.gather(
            *(fetch_range(s, url, headers, i * part, min(size, (i + 1) * part) - 1, block) for i in range(streams))
        )
        took = time.perf_counter() - t
    assert sum(got) == size, (sum(got), size)
    return took


async def list_all(base, token, folder) -> tuple[float, int, int]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as s:
        t = time.perf_counter()
        n, pages, tok = 0, 0, None
        while True:
            params = {"q": f"'{folder}' in parents and trashed=false", "pageSize": "1000",
                      "fields": "nextPageToken,files(id,name,mimeType,size,md5Checksum,parents,modifiedTime)"}
            if tok:
                params["pageToken"] = tok
            async with s.get(f"{base}/drive/v3/files", params=params, headers=headers) as r:
                body = await r.json()
            n += len(body["files"])
            pages += 1
            tok = body.get("nextPageToken")
            if not tok:
                break
        return time.perf_counter() - t, n, pages


async def token_from(base, creds_path) -> str:
    info = json.load(open(creds_path))
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/token", data={"grant_type": "refresh_token", "refresh_token": info["refresh_token"],
                                                 "client_id": info["client_id"], "client_secret": info["client_secret"]}) as r:
            return (await r.json())["access_token"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=1024 * 1024, help="client read size")
    ap.add_argument("--files", type=int, default=10_000, help="files for the listing round (0 = skip)")
    args = ap.parse_args()
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="emu-bench-") as tmp:
        data = os.path.join(tmp, "data")
        t = time.perf_counter()
        store = Store(data)
        fid = store.add_file("big.bin", size=size, seed=1)
        folder = store.add_folder("many")
        if args.files:
            for i in range(args.files):
                store.insert(name=f"f{i:05d}.bin", mime_type="application/octet-stream", parent_id=folder)
        store.close()
        print(f"seeded {args.size_mib} MiB + {args.files} files in {time.perf_counter() - t:.1f} s", flush=True)
        creds = os.path.join(tmp, "creds.json")
        proc = subprocess.Popen(
            [sys.executable, "-m", "drivesync.emulator", "--data", data, "--port", "0", "--credentials-out", creds],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        try:
            line = proc.stdout.readline().strip()
            base = line.rsplit(" ", 1)[-1]
            print(line, flush=True)
            token = asyncio.run(token_from(base, creds))
            best = 0.0
            for r in range(args.rounds):
                took = asyncio.run(download(base, fid, token, size, args.streams, args.block))
                mbps = size / took / 1e6
                best = max(best, mbps)
                print(f"round {r + 1}: {size / 1e6:.0f} MB in {took:.2f} s = {mbps:.0f} MB/s "
                      f"({args.streams} parallel ranged GETs)", flush=True)
            print(f"best: {best:.0f} MB/s", flush=True)
            if args.files:
                took, n, pages = asyncio.run(list_all(base, token, folder))
                print(f"files.list: {n} files in {pages} pages, {took * 1000:.0f} ms "
                      f"({took / pages * 1000:.0f} ms per page of 1000)", flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
