"""`pull ARCHIVE DIR --extract` against pull-then-unzip, under the emulator's drive-like profile (a standalone
script, not a test): time until the dataset is usable and peak disk use.

The archive: --images files of about --image-kb KB each (random, incompressible bytes, as JPEGs are), zipped
with deflate (as `zip -r` does; --stored for `zip -0`), about 500 MB with the defaults. It is seeded into the
emulator's store offline, then the emulator runs as its own process (it must not share the client's GIL).

Contenders, each a fresh folder, run as a user would (the CLI in a subprocess):
  pull+unzip   `drivesync pull data.zip W/` then `unzip -q W/data.zip -d W/data` (the archive stays: peak disk
               is archive + members)
  extract      `drivesync pull data.zip W/data --extract`
  extract-nofsync  the same with DRIVESYNC_FSYNC=0 (no fsync per member; `unzip` never fsyncs)
Peak disk: a sampler thread sums the allocated blocks of everything under W every 50 ms (the largest sum).
Each contender's members are checked against the zip's CRC-32s (every file).

    python benchmarks/extract_bench.py --out /tmp/extract_bench.json
Check free space first (df -h): it needs about 3x the archive size.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.push_bench import EmulatorProcess  # noqa: E402  (the emulator as a process)
from benchmarks.contenders.drivesync import CLI  # noqa: E402  (the drivesync command, as the harness runs it)

MB = 1_000_000


def build_zip(path: str, images: int, image_kb: int, stored: bool) -> dict:
    """The dataset zip; returns {name: (size, crc32)} of its members."""
    rng = __import__("random").Random(12)
    members = {}
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression=method, compresslevel=1 if not stored else None) as z:
        for i in range(images):
            size = int(image_kb * 1000 * (0.6 + 0.8 * rng.random()))
            data = os.urandom(size)
            name = f"images/class_{i % 20:02d}/img_{i:05d}.jpg"
            z.writestr(name, data)
            members[name] = (size, zlib.crc32(data))
        labels = "".join(f"img_{i:05d}.jpg,{i % 20}\n" for i in range(images)).encode()
        z.writestr("labels.csv", labels)
        members["labels.csv"] = (len(labels), zlib.crc32(labels))
    return members


def seed(data_dir: str, zip_path: str) -> None:
    from drivesync.emulator.store import Store  # the benchmark (not the client) may use the emulator

    store = Store(data_dir)
    try:
        store.add_file("data.zip", path=zip_path, mime_type="application/zip")
    finally:
        store.close()


class DiskSampler:
    """The most bytes (allocated blocks) under a folder, sampled every ``every`` seconds."""

    def __init__(self, root: str, every: float = 0.05):
        self.root, self.every = root, every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _used(self) -> int:
        total = 0
        for dirpath, _, filenames in os.walk(self.root):
            for f in filenames:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
                except OSError:
                    pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._used())
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._used())


def check(folder: str, members: dict) -> str | None:
    """Every member there with its size and CRC-32, or what is wrong."""
    for name, (size, crc) in members.items():
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            return f"{name}: {exc}"
        if len(data) != size or zlib.crc32(data) != crc:
            return f"{name}: {len(data)} bytes, crc {zlib.crc32(data):08x}, want {size} / {crc:08x}"
    return None


def run(cmd: list[str], env: dict, cwd: str) -> None:
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited {r.returncode}: {r.stderr[-800:]}")


def contender(name: str, emu, work: str, members: dict, archive_bytes: int) -> dict:
    w = os.path.join(work, name)
    os.makedirs(w)
    env = dict(os.environ, DRIVESYNC_STATE_DIR=os.path.join(work, f"state-{name}"), DRIVESYNC_API_URL=emu.url,
               PYTHONPATH=ROOT)
    if name == "extract-nofsync":
        env["DRIVESYNC_FSYNC"] = "0"
    creds = ["--credentials", emu.credentials, "-q"]
    with DiskSampler(w) as disk:
        t0 = time.perf_counter()
        if name == "pull+unzip":
            run(CLI + ["pull", "data.zip", w + "/"] + creds, env, w)
            pulled = time.perf_counter() - t0
            run(["unzip", "-q", os.path.join(w, "data.zip"), "-d", os.path.join(w, "data")], env, w)
        else:
            run(CLI + ["pull", "data.zip", os.path.join(w, "data"), "--extract"] + creds, env, w)
            pulled = None
        seconds = time.perf_counter() - t0
    problem = check(os.path.join(w, "data"), members)
    row = {"contender": name, "usable_s": round(seconds, 2), "peak_disk_mb": round(disk.peak / MB, 1),
           "peak_disk_x_archive": round(disk.peak / archive_bytes, 2), "ok": problem is None}
    if pulled is not None:
        row["pull_s"] = round(pulled, 2)
        row["unzip_s"] = round(seconds - pulled, 2)
    if problem:
        row["problem"] = problem
    shutil.rmtree(w)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--image-kb", type=int, default=250)
    ap.add_argument("--stored", action="store_true", help="store members (zip -0) instead of deflating them")
    ap.add_argument("--profile", default="drive-like")
    ap.add_argument("--contenders", default="pull+unzip,extract,extract-nofsync")
    ap.add_argument("--work", default=None, help="work folder (default: a temporary one, removed after)")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="extract-bench-")
    os.makedirs(work, exist_ok=True)
    try:
        zip_path = os.path.join(work, "data.zip")
        t0 = time.perf_counter()
        cache = os.path.join(work, "members.json")
        spec = [args.images, args.image_kb, args.stored]
        cached = json.load(open(cache)) if os.path.exists(cache) else None
        if cached and cached["spec"] == spec:        # a --work folder seeded by an earlier run: reuse it
            members = {k: tuple(v) for k, v in cached["members"].items()}
            archive_bytes = cached["archive_bytes"]
        else:
            shutil.rmtree(os.path.join(work, "drive"), ignore_errors=True)
            members = build_zip(zip_path, args.images, args.image_kb, args.stored)
            archive_bytes = os.path.getsize(zip_path)
            seed(os.path.join(work, "drive"), zip_path)
            os.unlink(zip_path)
            with open(cache, "w") as fh:
                json.dump({"spec": spec, "members": members, "archive_bytes": archive_bytes}, fh)
        print(json.dumps({"archive_mb": round(archive_bytes / MB, 1), "members": len(members),
                          "built_s": round(time.perf_counter() - t0, 1)}), flush=True)
        rows = []
        load_before = os.getloadavg()
        with EmulatorProcess(work, args.profile) as emu:
            for name in args.contenders.split(","):
                row = contender(name, emu, work, members, archive_bytes)
                print(json.dumps(row), flush=True)
                rows.append(row)
        by = {r["contender"]: r for r in rows}
        summary = {"archive_mb": round(archive_bytes / MB, 1), "members": len(members), "profile": args.profile,
                   "cores": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
                   "loadavg_after": [round(x, 2) for x in os.getloadavg()], "rows": rows}
        if "pull+unzip" in by and "extract" in by:
            base, ours = by["pull+unzip"], by["extract"]
            summary["speedup"] = round(base["usable_s"] / ours["usable_s"], 2)
            summary["peak_disk_ratio"] = round(ours["peak_disk_mb"] / base["peak_disk_mb"], 2)
        print(json.dumps({k: v for k, v in summary.items() if k != "rows"}), flush=True)
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(summary, fh, indent=2)
        return 0 if all(r["ok"] for r in rows) else 1
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
