"""pull benchmarks (a standalone script, not a test): drivesync's time as a ratio to the physical floor.

Scenarios (each prints one JSON line; all go to --out as JSON):
  big     (a) 2 files of 1 GiB under the emulator's drive-like profile
  small   (b) 10,000 files of 64 KiB in 100 folders under drive-like (request-bound: 200 req/s)
  cpu     client CPU-seconds per GB pulled, unthrottled, next to a bare reference loop measured in the
          same run (parallel ranged GETs with aiohttp + md5 + os.pwrite, no drivesync)

The floor comes from benchmarks/floor.py, computed from the profile the emulator reports
(GET /_emulator/profile): bytes over the total bandwidth, requests over the quota (minus the burst),
plus the round trips that cannot overlap. drivesync runs as `drivesync pull` in a subprocess; its wall
time, CPU time and peak RSS come from the child's rusage. Every pulled file is then checked by size and
md5 against the seeded store (not against drivesync's own report); a mismatch ends the run.

    python benchmarks/pull_bench.py --quick                 # small sizes while developing
    python benchmarks/pull_bench.py --out /tmp/pull.json    # the full run (about 5 GB of /tmp: df -h /tmp)
    python benchmarks/pull_bench.py --scenarios small -- --transfers 48   # extra flags go to drivesync pull
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.floor import compute_floor, job_from_tree, ratio  # noqa: E402
from benchmarks.contenders.base import compile_bytecode  # noqa: E402
from benchmarks.contenders.drivesync import CLI  # noqa: E402  (the drivesync command, as the harness runs it)

MiB = 1024 * 1024
GiB = 1024 * MiB
LISTENING = "drivesync emulator listening on "


class Server:
    def __init__(self, data_dir: str, profile: str):
        self.data_dir = data_dir
        self.profile = profile
        self.credentials = os.path.join(data_dir, "credentials.json")

    def __enter__(self):
        compile_bytecode(ROOT)          # the drivesync children this server answers start as installed ones
        self.proc = subprocess.Popen([sys.executable, "-m", "drivesync.emulator", "--data", self.data_dir, "--port", "0",
                                      "--credentials-out", self.credentials, "--profile", self.profile],
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        line = self.proc.stdout.readline()
        if not line.startswith(LISTENING):
            raise SystemExit(f"emulator did not start: {line!r}")
        self.url = line[len(LISTENING):].strip()
        return self

    def admin(self, what: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}/_emulator/{what}", data=data, method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"{}")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait()


def seed(data_dir: str, files: list[tuple[str, int]], top: str = "bench") -> dict[str, tuple[int, str]]:
    """Offline seeding through the emulator's Store (benchmarks may; the client never does).
    Returns {relative path: (size, md5)} as the store keeps them."""
    from drivesync.emulator.store import Store

    store = Store(data_dir)
    want: dict[str, tuple[int, str]] = {}
    folders = {"": store.add_folder(top)}
    for i, (rel, size) in enumerate(files):
        parent = os.path.dirname(rel)
        if parent not in folders:
            parts = parent.split("/")
            for k in range(1, len(parts) + 1):
                p = "/".join(parts[:k])
                if p not in folders:
                    folders[p] = store.add_folder(parts[k - 1], folders["/".join(parts[:k - 1])])
        fid = store.add_file(os.path.basename(rel), size=size, seed=i, parent_id=folders[parent])
        want[rel] = (size, store.file(fid)["md5Checksum"])
    store.close()
    return want


def verify_pulled(out_dir: str, want: dict[str, tuple[int, str]]) -> None:
    """Every file at out_dir with the seeded size and md5, and nothing else; else SystemExit with the first."""
    import hashlib

    found = set()
    for dirpath, _, names in os.walk(out_dir):
        for n in names:
            found.add(os.path.relpath(os.path.join(dirpath, n), out_dir).replace(os.sep, "/"))
    problems = [f"missing {rel}" for rel in want if rel not in found]
    problems += [f"unexpected {rel}" for rel in sorted(found - set(want))]
    for rel, (size, md5) in want.items():
        if rel not in found:
            continue
        path = os.path.join(out_dir, rel)
        h = hashlib.md5()
        with open(path, "rb") as fh:
            while block := fh.read(4 * MiB):
                h.update(block)
        if os.path.getsize(path) != size or h.hexdigest() != md5:
            problems.append(f"wrong content {rel}")
    if problems:
        raise SystemExit(f"the pull's output is wrong: {len(problems)} problems, first: {problems[0]}")


def run_child(cmd: list[str], env: dict) -> dict:
    """Run one child process; its wall time, CPU seconds and peak RSS (from wait4: that child only)."""
    import threading

    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    streams = {}
    readers = [threading.Thread(target=lambda k=k, f=f: streams.__setitem__(k, f.read()))
               for k, f in (("out", proc.stdout), ("err", proc.stderr))]
    for t in readers:
        t.start()
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in readers:
        t.join()
    return {"wall_s": wall, "cpu_s": rusage.ru_utime + rusage.ru_stime, "user_s": rusage.ru_utime,
            "sys_s": rusage.ru_stime, "peak_rss_mb": rusage.ru_maxrss / 1024,
            "stdout": streams.get("out", ""), "stderr": streams.get("err", ""), "returncode": proc.returncode}


def drivesync_pull(server: Server, out_dir: str, state_dir: str, extra: list[str]) -> dict:
    env = dict(os.environ, DRIVESYNC_STATE_DIR=state_dir, PYTHONPATH=ROOT)
    res = run_child(CLI + ["pull", "bench/", out_dir, "--json", "--api-url", server.url,
                           "--credentials", server.credentials] + extra, env)
    try:
        summary = json.loads(res["stdout"])
    except ValueError:
        raise SystemExit(f"drivesync pull failed:\n{res['stderr'][-2000:]}")
    if not summary.get("ok"):
        raise SystemExit(f"drivesync pull reported failures: {summary['failed'][:5]}")
    res["summary"] = {k: summary[k] for k in ("done", "skipped", "bytes", "retries", "requests", "seconds")}
    del res["stdout"]
    res["stderr"] = res["stderr"][-300:]
    return res


def scenario(name: str, files: list[tuple[str, int]], profile: str, extra: list[str], workdir: str) -> dict:
    data_dir = os.path.join(workdir, f"drive-{name}")
    t0 = time.monotonic()
    want = seed(data_dir, files)
    seed_s = time.monotonic() - t0
    out_dir = os.path.join(workdir, f"out-{name}")
    with Server(data_dir, profile) as server:
        prof = server.admin("profile")
        job = job_from_tree("pull", files, root_depth=1)
        floor = compute_floor(prof, job)
        server.admin("reset-stats", {})
        res = drivesync_pull(server, out_dir, os.path.join(workdir, f"state-{name}"), extra)
        stats = server.admin("stats")
    verify_pulled(out_dir, want)
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    r = ratio(res["wall_s"], floor.seconds)
    return {"scenario": name, "profile": profile, "files": len(files), "bytes": job.bytes, "seed_s": round(seed_s, 1),
            "floor_s": round(floor.seconds, 3), "floor_bound_by": floor.bound_by, "floor_requests": floor.requests,
            "wall_s": round(res["wall_s"], 3), "ratio": round(r, 3) if r else None,
            "client_cpu_s": round(res["cpu_s"], 2), "peak_rss_mb": round(res["peak_rss_mb"], 1),
            "server_requests": stats["requests"], "server_by_status": stats["by_status"],
            "rate_limited": stats.get("rate_limited"), "drivesync": res["summary"], "extra_flags": extra,
            "verified": "every file's size and md5 against the seeded store"}


BARE_LOOP = r'''
import asyncio, hashlib, json, os, sys
import aiohttp
from google.oauth2.credentials import Credentials
import google.auth.transport.requests

url, creds_path, file_id, size, out, streams, range_size = sys.argv[1:8]
size, streams, range_size = int(size), int(streams), int(range_size)
info = json.load(open(creds_path))
creds = Credentials.from_authorized_user_info(info).with_token_uri(info["token_uri"])
creds.refresh(google.auth.transport.requests.Request())
headers = {"Authorization": "Bearer " + creds.token}

async def main():
    fd = os.open(out, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.ftruncate(fd, size)
    ranges = [(a, min(size, a + range_size)) for a in range(0, size, range_size)]
    queue = asyncio.Queue()
    for r in ranges:
        queue.put_nowait(r)
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        async def worker():
            while not queue.empty():
                a, b = queue.get_nowait()
                async with s.get(f"{url}/drive/v3/files/{file_id}", params={"alt": "media"},
                                 headers={**headers, "Range": f"bytes={a}-{b - 1}"}) as r:
                    pos, buf = a, bytearray()
                    async for chunk in r.content.iter_any():
                        buf += chunk
                        if len(buf) >= 1 << 20:
                            await asyncio.to_thread(os.pwrite, fd, buf, pos)
                            pos += len(buf); buf = bytearray()
                    if buf:
                        await asyncio.to_thread(os.pwrite, fd, buf, pos)
        await asyncio.gather(*(worker() for _ in range(streams)))
    h = hashlib.md5()
    pos = 0
    while pos < size:
        block = os.pread(fd, 4 << 20, pos)
        h.update(block); pos += len(block)
    os.close(fd)
    print(h.hexdigest())

asyncio.run(main())
'''


def cpu_scenario(size: int, extra: list[str], workdir: str, repeats: int) -> dict:
    """Client CPU per GB, unthrottled: drivesync vs the bare loop, alternating, same server."""
    data_dir = os.path.join(workdir, "drive-cpu")
    want = seed(data_dir, [("one.bin", size)])
    from drivesync.emulator.store import Store

    store = Store(data_dir)
    file_id = store.path_id("bench/one.bin")
    md5 = store.file(file_id)["md5Checksum"]
    store.close()
    out_dir = os.path.join(workdir, "out-cpu")
    bare_out = os.path.join(workdir, "bare.bin")
    rows = {"drivesync": [], "bare": []}
    with Server(data_dir, "unthrottled") as server:
        for i in range(repeats):
            shutil.rmtree(out_dir, ignore_errors=True)
            res = drivesync_pull(server, out_dir, os.path.join(workdir, f"state-cpu-{i}"), extra)
            verify_pulled(out_dir, want)
            rows["drivesync"].append(res)
            env = dict(os.environ, PYTHONPATH=ROOT)
            bare = run_child([sys.executable, "-c", BARE_LOOP, server.url, server.credentials, file_id, str(size),
                              bare_out, "8", str(64 * MiB)], env)
            if bare["stdout"].strip() != md5:
                raise SystemExit(f"bare loop md5 mismatch: {bare['stdout']!r} {bare['stderr'][-500:]}")
            rows["bare"].append(bare)
            os.unlink(bare_out)
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    gb = size / 1e9
    best = {k: min(v, key=lambda r: r["cpu_s"]) for k, v in rows.items()}
    ds, bare = best["drivesync"], best["bare"]
    return {"scenario": "cpu", "profile": "unthrottled", "bytes": size, "repeats": repeats,
            "drivesync_cpu_s_per_gb": round(ds["cpu_s"] / gb, 3), "bare_cpu_s_per_gb": round(bare["cpu_s"] / gb, 3),
            "cpu_ratio": round(ds["cpu_s"] / bare["cpu_s"], 3),
            "drivesync_wall_s": round(ds["wall_s"], 2), "bare_wall_s": round(bare["wall_s"], 2),
            "drivesync_peak_rss_mb": round(ds["peak_rss_mb"], 1), "bare_peak_rss_mb": round(bare["peak_rss_mb"], 1),
            "all_cpu_s": {k: [round(r["cpu_s"], 2) for r in v] for k, v in rows.items()}, "extra_flags": extra}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (2 x 128 MiB, 1,000 files, 256 MiB)")
    p.add_argument("--scenarios", default="big,small,cpu")
    p.add_argument("--repeats", type=int, default=2, help="cpu scenario: runs of each (the best counts)")
    p.add_argument("--out", help="write all results here as JSON")
    p.add_argument("--workdir", default=None, help="scratch space (default: a new dir under /tmp)")
    args = p.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="pull-bench-")
    os.makedirs(workdir, exist_ok=True)
    results = []
    try:
        for name in args.scenarios.split(","):
            if name == "big":
                size = 128 * MiB if args.quick else 1 * GiB
                files = [("a.bin", size), ("b.bin", size)]
                r = scenario("big", files, "drive-like", extra, workdir)
            elif name == "small":
                n, folders = (1000, 10) if args.quick else (10_000, 100)
                files = [(f"d{i % folders:03d}/f{i:05d}.bin", 64 * 1024) for i in range(n)]
                r = scenario("small", files, "drive-like", extra, workdir)
            elif name == "cpu":
                r = cpu_scenario(256 * MiB if args.quick else 2 * GiB, extra, workdir, args.repeats)
            else:
                raise SystemExit(f"unknown scenario {name!r}")
            print(json.dumps(r), flush=True)
            results.append(r)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
