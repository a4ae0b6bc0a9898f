"""push benchmarks under the emulator's drive-like profile (a standalone script, not a test).

Scenarios (each prints one JSON line and all go to --out as JSON):
  chunks   upload time of one file per chunk size, as a ratio to the profile's floor
  big      one large checkpoint (default 2 GB) with the default chunk size, ratio to the floor
  lag      a trainer saving --save-mb every --every s (--saves times) under drivesync.watch: lag from
           "complete" (the trainer's os.replace returned) to "durable" (verified on Drive), median and worst
  kill     kill -9 of `drivesync push` in the middle of a large upload, restart: bytes re-sent
  sharded  a checkpoint folder of --shards x --shard-mb shards under drivesync.watch (staged, then one rename):
           seconds from "complete" to "durable", as a ratio to the floor of the shards uploaded in parallel;
           the folder listed back from Drive and checked by size and md5

The floor of one resumable upload: Drive-like accepts ``upload_bps_per_connection`` bytes/s on one
connection (after a ``upload_burst_per_connection`` burst) and adds ``metadata_latency_s`` before every
upload request; the chunks of one session are sequential, so each chunk's latency adds up:
    floor(chunk) = (bytes - burst) / bps + (1 + ceil(bytes / chunk)) * latency
``floor_best`` is the same with a single chunk (the best any chunk size could do).

    python benchmarks/push_bench.py --scenarios chunks,big,lag,kill --out /tmp/push_bench.json
Check free space first (df -h /tmp): the big scenario writes a file of --big-mb.

Every scenario lists what it pushed back from Drive over the API (stdlib HTTP, not drivesync's own
code) and compares names, sizes and md5s with the local files (``verified_on_drive``); a mismatch
ends the run with exit status 1 after the report is written.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.contenders.drivesync import CLI  # noqa: E402  (the drivesync command, as the harness runs it)

MiB = 1024 * 1024


class EmulatorProcess:
    """The emulator as a subprocess (its own interpreter: it never competes with the client for the GIL)."""

    def __init__(self, workdir: str, profile: str = "drive-like"):
        self.workdir = workdir
        self.profile = profile

    def __enter__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.credentials = os.path.join(self.workdir, "credentials.json")
        self.proc = subprocess.Popen([sys.executable, "-m", "drivesync.emulator", "--data",
                                      os.path.join(self.workdir, "drive"), "--port", str(port),
                                      "--credentials-out", self.credentials, "--profile", self.profile],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"emulator did not start: {line!r} {self.proc.stderr.read()[:500]}")
        self.url = line.strip().rsplit(" ", 1)[-1]
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def _post(self, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(self.url + path, data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            data = r.read()
        return json.loads(data) if data else {}

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/_emulator/stats") as r:
            return json.loads(r.read())

    def reset_stats(self) -> None:
        self._post("/_emulator/reset-stats")

    def configure(self, **overrides) -> None:
        self._post("/_emulator/configure", overrides)

    def listed_back(self, folder: str) -> dict[str, tuple[int, str]]:
        """{relative path: (size, md5)} of the files below My Drive's `folder` ('a/b'), listed over the
        Drive API with stdlib HTTP: independent of the client being measured."""
        import urllib.parse

        creds = json.load(open(self.credentials))
        form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": creds["refresh_token"],
                                       "client_id": creds["client_id"], "client_secret": creds["client_secret"]})
        with urllib.request.urlopen(urllib.request.Request(creds["token_uri"], data=form.encode())) as r:
            token = json.loads(r.read())["access_token"]

        def children(parent: str) -> list[dict]:
            out, page = [], None
            while True:
                q = {"q": f"'{parent}' in parents and trashed = false", "pageSize": "1000",
                     "fields": "nextPageToken,files(id,name,mimeType,size,md5Checksum)"}
                if page:
                    q["pageToken"] = page
                req = urllib.request.Request(self.url + "/drive/v3/files?" + urllib.parse.urlencode(q),
                                             headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(req) as r:
                    body = json.loads(r.read())
                out += body.get("files", [])
                page = body.get("nextPageToken")
                if not page:
                    return out

        node = "root"
        for part in folder.strip("/").split("/"):
            match = [f for f in children(node) if f["name"] == part and f["mimeType"].endswith(".folder")]
            if len(match) != 1:
                return {}
            node = match[0]["id"]
        found: dict[str, tuple[int, str]] = {}

        def walk(fid: str, prefix: str) -> None:
            for f in children(fid):
                if f["mimeType"].endswith(".folder"):
                    walk(f["id"], prefix + f["name"] + "/")
                elif prefix + f["name"] in found:
                    found[prefix + f["name"]] = (-1, "duplicate")
                else:
                    found[prefix + f["name"]] = (int(f.get("size", -1)), f.get("md5Checksum", ""))

        walk(node, "")
        return found


def md5_of(path: str) -> str:
    import hashlib

    h = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(4 * MiB):
            h.update(block)
    return h.hexdigest()


#: Scenarios whose pushed files did not come back from Drive as they were sent (main's exit status).
UNVERIFIED: list[str] = []


def verified(emu, folder: str, want: dict[str, tuple[int, str]], scenario: str) -> bool:
    ok = emu.listed_back(folder) == want
    if not ok:
        UNVERIFIED.append(scenario)
    return ok


def profile_numbers(profile="drive-like") -> dict:
    from drivesync.emulator.limits import PROFILES

    return PROFILES[profile].as_dict()


def floor_s(nbytes: int, chunk: int | None, p: dict) -> float:
    requests = 1 + (math.ceil(nbytes / chunk) if chunk else 1)
    bps = p["upload_bps_per_connection"] or float("inf")
    return max(1e-9, max(0, nbytes - p["upload_burst_per_connection"]) / bps + requests * p["metadata_latency_s"])


def write_random(path: str, nbytes: int) -> None:
    block = os.urandom(4 * MiB)
    with open(path, "wb") as fh:
        left = nbytes
        i = 0
        while left > 0:
            n = min(left, len(block))
            fh.write(i.to_bytes(8, "little") + block[8:n] if n > 8 else block[:n])
            left -= n
            i += 1


def settings_for(emu, **kw):
    from drivesync.config import from_environment

    return from_environment(api_url=emu.url, **kw)


def one_upload(emu, path: str, remote: str, chunk: int) -> float:
    import drivesync

    s = settings_for(emu, upload_chunk_size=chunk)
    t0 = time.perf_counter()
    drivesync.push(path, remote, settings=s, credentials=emu.credentials)
    return time.perf_counter() - t0


def scenario_chunks(emu, work, args, p) -> dict:
    nbytes = args.sweep_mb * 1_000_000
    path = os.path.join(work, "sweep.bin")
    write_random(path, nbytes)
    rows = []
    want = {"sweep.bin": (nbytes, md5_of(path))}
    for chunk_mib in args.chunk_sizes:
        chunk = chunk_mib * MiB
        seconds = one_upload(emu, path, f"bench/sweep-{chunk_mib}/", chunk)
        rows.append({"chunk_mib": chunk_mib, "seconds": round(seconds, 2),
                     "ratio_to_floor_best": round(seconds / floor_s(nbytes, None, p), 3),
                     "ratio_to_floor_at_chunk": round(seconds / floor_s(nbytes, chunk, p), 3),
                     "verified_on_drive": verified(emu, f"bench/sweep-{chunk_mib}", want, "chunks")})
        print(json.dumps({"scenario": "chunks", "bytes": nbytes, **rows[-1]}), flush=True)
    os.remove(path)
    return {"bytes": nbytes, "rows": rows}


def scenario_big(emu, work, args, p) -> dict:
    from drivesync.config import Settings

    nbytes = args.big_mb * 1_000_000
    chunk = args.chunk_mib * MiB if args.chunk_mib else Settings().upload_chunk_size
    path = os.path.join(work, "big.bin")
    write_random(path, nbytes)
    want = {"big.bin": (nbytes, md5_of(path))}
    seconds = one_upload(emu, path, "bench/big/", chunk)
    os.remove(path)
    out = {"bytes": nbytes, "chunk_mib": chunk // MiB, "seconds": round(seconds, 2),
           "verified_on_drive": verified(emu, "bench/big", want, "big"),
           "floor_best_s": round(floor_s(nbytes, None, p), 2), "floor_at_chunk_s": round(floor_s(nbytes, chunk, p), 2),
           "ratio_to_floor_best": round(seconds / floor_s(nbytes, None, p), 3),
           "ratio_to_floor_at_chunk": round(seconds / floor_s(nbytes, chunk, p), 3)}
    print(json.dumps({"scenario": "big", **out}), flush=True)
    return out


def scenario_lag(emu, work, args, p) -> dict:
    import drivesync

    root = os.path.join(work, "ckpts")
    os.makedirs(root, exist_ok=True)
    nbytes = args.save_mb * 1_000_000
    completed: dict[str, float] = {}
    want: dict[str, tuple[int, str]] = {}
    s = settings_for(emu)
    with drivesync.watch(root, "bench/lag", settings=s, credentials=emu.credentials, progress=args.progress) as w:
        for i in range(args.saves):
            t_start = time.time()
            name = f"step-{i:04d}.pt"
            tmp = os.path.join(root, name + ".tmp")
            write_random(tmp, nbytes)
            os.replace(tmp, os.path.join(root, name))
            completed[name] = time.time()
            want[name] = (nbytes, md5_of(os.path.join(root, name)))  # after the timestamp: not in the lag
            time.sleep(max(0.0, args.every - (time.time() - t_start)))
        flush_started = time.time()
    durable = {d["rel"]: d["durable_at"] for d in w.durable}
    lags = sorted(durable[n] - t for n, t in completed.items() if n in durable)
    out = {"save_bytes": nbytes, "every_s": args.every, "saves": args.saves, "uploaded": len(lags),
           "progress": bool(args.progress),
           "lag_median_s": round(statistics.median(lags), 2) if lags else None,
           "lag_worst_s": round(max(lags), 2) if lags else None,
           "lags_s": [round(x, 2) for x in lags], "floor_one_save_s": round(floor_s(nbytes, s.upload_chunk_size, p), 2),
           "flush_wait_s": round(time.time() - flush_started, 2),
           "verified_on_drive": verified(emu, "bench/lag", want, "lag")}
    print(json.dumps({"scenario": "lag", **out}), flush=True)
    for f in os.listdir(root):
        os.remove(os.path.join(root, f))
    return out


def scenario_sharded(emu, work, args, p) -> dict:
    import asyncio
    import hashlib

    import drivesync
    from drivesync.remote import resolve, walk
    from drivesync.session import open_drive

    root = os.path.join(work, "sharded")
    os.makedirs(root, exist_ok=True)
    nbytes = args.shard_mb * 1_000_000
    s = settings_for(emu)
    with drivesync.watch(root, "bench/sharded", settings=s, credentials=emu.credentials,
                         progress=args.progress) as w:
        staging = os.path.join(root, "tmp-checkpoint-500")
        os.makedirs(staging)
        md5s = {}
        for i in range(1, args.shards + 1):
            name = f"model-{i:05}-of-{args.shards:05}.safetensors"
            write_random(os.path.join(staging, name), nbytes)
            with open(os.path.join(staging, name), "rb") as fh:
                md5s[name] = hashlib.md5(fh.read()).hexdigest()
        with open(os.path.join(staging, "trainer_state.json"), "w") as fh:
            fh.write('{"global_step": 500}')
        md5s["trainer_state.json"] = hashlib.md5(b'{"global_step": 500}').hexdigest()
        os.replace(staging, os.path.join(root, "checkpoint-500"))   # what Trainer does: complete on rename
        completed = time.time()
    durable = {d["rel"]: d["durable_at"] for d in w.durable}
    seconds = durable["checkpoint-500"] - completed

    async def listed():
        async with open_drive(s, credentials=emu.credentials) as drive:
            item = await resolve(drive, "bench/sharded/checkpoint-500/")
            tree = await walk(drive, item, s)
            return {e.path: e.item.md5 for e in tree.files}

    on_drive = asyncio.run(listed())
    floor = floor_s(nbytes, s.upload_chunk_size, p)
    out = {"shards": args.shards, "shard_bytes": nbytes, "progress": bool(args.progress),
           "seconds": round(seconds, 2), "floor_s": round(floor, 2),
           "ratio_to_floor": round(seconds / floor, 3),
           "verified_on_drive": on_drive == md5s and verified(
               emu, "bench/sharded/checkpoint-500",
               {n: (nbytes if n != "trainer_state.json" else len('{"global_step": 500}'), m) for n, m in md5s.items()},
               "sharded"),
           "floor": "one shard's resumable upload at the per-connection rate (the shards go in parallel)"}
    print(json.dumps({"scenario": "sharded", **out}), flush=True)
    return out


def scenario_kill(emu, work, args, p) -> dict:
    from drivesync.config import Settings

    nbytes = args.kill_mb * 1_000_000
    chunk = args.chunk_mib * MiB if args.chunk_mib else Settings().upload_chunk_size
    src = os.path.join(work, "killsrc")
    os.makedirs(src, exist_ok=True)
    path = os.path.join(src, "model.pt")
    write_random(path, nbytes)
    want = {"model.pt": (nbytes, md5_of(path))}
    env = {**os.environ, "DRIVESYNC_STATE_DIR": os.path.join(work, "kill-state")}
    cmd = CLI + ["push", src, "bench/kill", "--api-url", emu.url, "--credentials", emu.credentials,
                 "--chunk-size", f"{chunk // MiB}M", "--no-progress"]
    emu.reset_stats()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    while emu.stats()["bytes_received"] < nbytes * args.kill_at and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = emu.stats()["bytes_received"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    second_s = time.perf_counter() - t0
    total = emu.stats()["bytes_received"]
    os.remove(path)
    out = {"bytes": nbytes, "chunk_mib": chunk // MiB, "killed_after_bytes": first, "restart_rc": r.returncode,
           "resent_bytes": total - nbytes, "resent_chunks": round((total - nbytes) / chunk, 3),
           "restart_s": round(second_s, 2), "verified_on_drive": verified(emu, "bench/kill", want, "kill")}
    print(json.dumps({"scenario": "kill", **out}), flush=True)
    return out


SCENARIOS = {"chunks": scenario_chunks, "big": scenario_big, "lag": scenario_lag, "kill": scenario_kill,
             "sharded": scenario_sharded}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default="chunks,big,lag,kill")
    ap.add_argument("--profile", default="drive-like")
    ap.add_argument("--sweep-mb", type=int, default=512)
    ap.add_argument("--chunk-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[8, 16, 32, 64])
    ap.add_argument("--chunk-mib", type=int, help="chunk size for big/kill (default: Settings default)")
    ap.add_argument("--big-mb", type=int, default=2000)
    ap.add_argument("--save-mb", type=int, default=200)
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument("--saves", type=int, default=6)
    ap.add_argument("--kill-mb", type=int, default=500)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--shard-mb", type=int, default=100)
    ap.add_argument("--kill-at", type=float, default=0.5, help="share of the file sent before kill -9")
    ap.add_argument("--progress", action="store_true",
                    help="lag/sharded: the watcher's bars and durable lines on (to stderr), as a user sees them")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    p = profile_numbers(args.profile)
    results = {"profile": args.profile, "profile_numbers": {k: p[k] for k in (
        "upload_bps_per_connection", "upload_burst_per_connection", "metadata_latency_s", "writes_per_s")}}
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        os.environ["DRIVESYNC_STATE_DIR"] = os.path.join(work, "state")
        with EmulatorProcess(work, args.profile) as emu:
            for name in args.scenarios.split(","):
                results[name] = SCENARIOS[name](emu, work, args, p)
    text = json.dumps(results, indent=2)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    print(text)
    if UNVERIFIED:
        print(f"pushed files did not come back from Drive as sent: {', '.join(sorted(set(UNVERIFIED)))}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
