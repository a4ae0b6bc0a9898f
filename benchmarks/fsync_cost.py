"""What durability costs a pull (issue 14, item 4): seconds spent inside fsync calls over the run's wall seconds.

Wall-clock A/B runs (fsync on vs off) are noise on a small shared machine, so this measures the cost directly:
``download.FSYNC`` sums time.perf_counter() around every os.fsync of a pulled file (before its rename) and of its
folder (after it). The journal's syncs happen inside SQLite (synchronous=FULL), so the journal's write time
(``Journal.write_seconds``, commits included) is measured in a run with FULL and in one with NORMAL on the same
data; the difference is what the journal's syncs cost. A third run with fsync=False gives a wall time to
compare with (one run each on a shared machine: read it as a sanity check, not a measurement).

    python benchmarks/fsync_cost.py                       # large (2 x 1 GiB) and small (10,000 x 64 KiB), drive-like
    python benchmarks/fsync_cost.py --quick               # 2 x 256 MiB and 2,000 x 64 KiB
    python benchmarks/fsync_cost.py --profile unthrottled # the worst case: no network time to hide behind

The emulator runs as its own process (as in pull_bench.py); the pull runs in this process so the counters can be
read. Prints one JSON line per scenario and journal mode, then a summary.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.pull_bench import Server, seed  # noqa: E402

KiB, MiB, GiB = 1024, 1024 * 1024, 1024 * 1024 * 1024


def scenarios(quick: bool) -> dict[str, list[tuple[str, int]]]:
    big = 256 * MiB if quick else 1 * GiB
    n, folders = (2_000, 20) if quick else (10_000, 100)
    per = n // folders
    return {"large": [(f"big{i}.bin", big) for i in range(2)],
            "small": [(f"d{d:03d}/f{f:03d}.bin", 64 * KiB) for d in range(folders) for f in range(per)]}


def one_pull(server: Server, workdir: str, name: str, synchronous: str, fsync: bool = True) -> dict:
    import drivesync
    from drivesync import download
    from drivesync.state import Journal

    out = os.path.join(workdir, f"out-{name}")
    shutil.rmtree(out, ignore_errors=True)
    journal = Journal(os.path.join(workdir, f"journal-{name}-{synchronous}.db"))
    journal._db.execute(f"PRAGMA synchronous={synchronous}")
    os.sync()                               # start from a clean page cache: earlier runs' dirty pages are not ours
    download.FSYNC.reset()
    started = time.perf_counter()
    try:
        result = drivesync.pull("bench/", out, api_url=server.url, credentials=server.credentials, journal=journal,
                                progress=False, fsync=fsync)
    finally:
        journal.close()
    wall = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"pull failed: {result.failed[:3]}")
    row = {"scenario": name, "journal_synchronous": synchronous, "fsync": fsync, "files": result.done, "bytes": result.bytes,
           "wall_s": round(wall, 3), "fsync_calls": download.FSYNC.calls, "fsync_s": round(download.FSYNC.seconds, 4),
           "fsync_share": round(download.FSYNC.seconds / wall, 5), "folder_fsyncs": download.FSYNC.folder_calls,
           "writeback_calls": download.FSYNC.writeback_calls, "writeback_s": round(download.FSYNC.writeback_seconds, 4),
           "journal_writes": journal.writes, "journal_write_s": round(journal.write_seconds, 4)}
    shutil.rmtree(out, ignore_errors=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--scenarios", default="large,small")
    p.add_argument("--profile", default="drive-like")
    p.add_argument("--workdir", default=None, help="where the emulator's data and the pulled files go")
    args = p.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="fsync-cost-")
    rows = []
    try:
        for name in args.scenarios.split(","):
            files = scenarios(args.quick)[name]
            data = os.path.join(workdir, f"drive-{name}")
            seed(data, files)
            with Server(data, args.profile) as server:
                for synchronous, fsync in (("FULL", True), ("NORMAL", True), ("NORMAL", False)):
                    row = one_pull(server, workdir, name, synchronous, fsync)
                    row["profile"] = args.profile
                    print(json.dumps(row), flush=True)
                    rows.append(row)
            shutil.rmtree(data, ignore_errors=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    for name in args.scenarios.split(","):
        full = next(r for r in rows if r["scenario"] == name and r["journal_synchronous"] == "FULL")
        normal = next(r for r in rows if r["scenario"] == name and r["journal_synchronous"] == "NORMAL" and r["fsync"])
        off = next(r for r in rows if r["scenario"] == name and not r["fsync"])
        journal_extra = max(0.0, full["journal_write_s"] - normal["journal_write_s"])
        spent = normal["fsync_s"] + normal["writeback_s"]
        print(f"{name} ({args.profile}{', quick' if args.quick else ''}): files+folders fsync {normal['fsync_s']:.3f} s "
              f"in {normal['fsync_calls']} calls ({normal['folder_fsyncs']} folders) + writeback starts "
              f"{normal['writeback_s']:.3f} s = {100 * spent / normal['wall_s']:.2f}% of {normal['wall_s']:.1f} s wall; "
              f"journal FULL vs NORMAL: {full['journal_write_s']:.3f} s vs {normal['journal_write_s']:.3f} s "
              f"(+{journal_extra:.3f} s = {100 * journal_extra / full['wall_s']:.2f}%); "
              f"with FULL the total would be {100 * (spent + journal_extra) / normal['wall_s']:.2f}%; "
              f"wall with fsync off {off['wall_s']:.1f} s (one run each: noise on a shared machine)")


if __name__ == "__main__":
    main()
