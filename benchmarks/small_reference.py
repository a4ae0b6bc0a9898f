"""What an aiohttp client must spend per small file, beside what drivesync spends (a standalone script, not a test;
issue 13).

Seeds N files of 64 KiB in folders of 100 (the harness's `small` shape), starts the emulator in its own process
(unthrottled, plain HTTP, so the client's own work is what is timed), and runs, interleaved, --repeats times each:

* ``drivesync``: `drivesync pull` unpaced (``--tps 1000000``): resumable, journalled, verified, fsynced;
* ``bare``: the least an aiohttp client can do for the same tree (REFERENCE below): one listing query per folder,
  64 workers, each file's body read whole, its md5 checked against the listing, written to a temporary name and
  renamed; no journal, no retries, no pacing, nothing durable;
* ``bare-fsync``: the same with an fsync per file before its rename (what "nothing lost" needs, done plainly).

Each reports the child's CPU seconds (user and system, from wait4) per file and its wall time; every output tree
is checked by size and md5 against the seeded store before any figure is printed. uvloop for all three, as
drivesync uses it.

    python benchmarks/small_reference.py --files 6000 --repeats 3
    python benchmarks/small_reference.py --tree /path/to/an/older/checkout   # its drivesync beside the same references
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.pull_bench import CLI, Server, run_child, seed, verify_pulled  # noqa: E402

REFERENCE = r'''
import asyncio, hashlib, json, os, sys
import aiohttp, uvloop
from google.oauth2.credentials import Credentials
import google.auth.transport.requests

url, creds_path, out, durable = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
info = json.load(open(creds_path))
creds = Credentials.from_authorized_user_info(info).with_token_uri(info["token_uri"])
creds.refresh(google.auth.transport.requests.Request())
headers = {"Authorization": "Bearer " + creds.token}
FIELDS = "nextPageToken,files(id,name,mimeType,size,md5Checksum)"

async def main():
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        async def query(q):
            items, token = [], None
            while True:
                params = {"q": q + " and trashed=false", "fields": FIELDS, "pageSize": "1000"}
                if token:
                    params["pageToken"] = token
                async with s.get(f"{url}/drive/v3/files", params=params, headers=headers) as r:
                    r.raise_for_status()
                    page = json.loads(await r.read())
                items += page["files"]
                token = page.get("nextPageToken")
                if not token:
                    return items
        top = (await query("name='bench' and 'root' in parents"))[0]
        folders = await query(f"'{top['id']}' in parents")
        files = []
        for i in range(0, len(folders), 64):
            group = folders[i:i + 64]
            for folder, kids in zip(group, await asyncio.gather(*(query(f"'{f['id']}' in parents") for f in group))):
                os.makedirs(os.path.join(out, folder["name"]), exist_ok=True)
                files += [(os.path.join(out, folder["name"], k["name"]), k) for k in kids]
        todo = iter(files)

        async def worker():
            for path, item in todo:
                async with s.get(f"{url}/drive/v3/files/{item['id']}", params={"alt": "media"},
                                 headers={**headers, "Accept-Encoding": "identity"}) as r:
                    r.raise_for_status()
                    body = await r.read()
                if hashlib.md5(body).hexdigest() != item["md5Checksum"]:
                    raise SystemExit(f"md5 mismatch: {path}")
                fd = os.open(path + ".part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    os.write(fd, body)
                    if durable:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(path + ".part", path)

        await asyncio.gather(*(worker() for _ in range(64)))

uvloop.run(main())
'''

KINDS = ("drivesync", "bare", "bare-fsync")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=6000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tree", default=ROOT, help="the checkout whose drivesync/ runs (default: this one)")
    p.add_argument("--work", help="scratch space (default: a temporary folder, removed at the end)")
    p.add_argument("--out", help="write the results here as JSON")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="small-reference-", dir=args.work)
    results: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    try:
        files = [(f"d{i // 100:03d}/f{i % 100:03d}.bin", 64 * 1024) for i in range(args.files)]
        want = seed(os.path.join(work, "drive"), files)
        reference = os.path.join(work, "reference.py")
        with open(reference, "w") as fh:
            fh.write(REFERENCE)
        with Server(os.path.join(work, "drive"), "unthrottled") as server:
            for rep in range(args.repeats):
                for kind in KINDS:
                    out = os.path.join(work, f"out-{rep}-{kind}")
                    env = dict(os.environ, DRIVESYNC_STATE_DIR=out + ".state", PYTHONPATH=os.path.abspath(args.tree))
                    if kind == "drivesync":
                        argv_ = CLI + ["pull", "bench/", out, "--quiet", "--api-url", server.url,
                                       "--credentials", server.credentials, "--tps", "1000000"]
                    else:
                        os.makedirs(out)
                        argv_ = [sys.executable, reference, server.url, server.credentials, out,
                                 "1" if kind == "bare-fsync" else "0"]
                    res = run_child(argv_, env)
                    if res["returncode"] != 0:
                        raise SystemExit(f"{kind} failed:\n{res['stderr'][-2000:]}")
                    verify_pulled(out, want)
                    row = {"user_s": round(res["user_s"], 3), "sys_s": round(res["sys_s"], 3),
                           "cpu_ms_per_file": round((res["user_s"] + res["sys_s"]) / args.files * 1000, 3),
                           "wall_s": round(res["wall_s"], 2)}
                    results[kind].append(row)
                    print(f"run {rep} {kind:<10} user {row['user_s']:.2f} s, sys {row['sys_s']:.2f} s, "
                          f"{row['cpu_ms_per_file']:.3f} ms CPU/file, wall {row['wall_s']:.2f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {"files": args.files, "runs": results,
               "median_cpu_ms_per_file": {k: statistics.median(r["cpu_ms_per_file"] for r in rows)
                                          for k, rows in results.items()},
               "median_user_ms_per_file": {k: round(statistics.median(r["user_s"] for r in rows) / args.files * 1000, 3)
                                           for k, rows in results.items()},
               "median_wall_s": {k: statistics.median(r["wall_s"] for r in rows) for k, rows in results.items()}}
    print(json.dumps({k: summary[k] for k in ("files", "median_cpu_ms_per_file", "median_user_ms_per_file",
                                                "median_wall_s")}))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(summary, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
