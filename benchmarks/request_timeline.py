"""When a pull's requests leave, half a second at a time (a standalone script, not a test; issue 13).

Runs `drivesync pull` of one harness scenario the way the harness does (the emulator and its TLS proxy in
processes of their own, the pacing budget of every paced row: 195 requests/s, burst 20 under drive-like),
with aiohttp's ClientSession._request wrapped in the child so that every request's send time, answer time
(its headers), kind (metadata, media, token), Range and the time its body was read are recorded. Prints the requests sent in each half
second: a paced pull that keeps the quota busy sends 97-98 in every one, so a shortfall shows where the
wall time above the floor goes (listing levels in a row, too few requests in flight, a stalled loop).
The store is warmed and the disk settled first, as the harness does before every row; the pulled tree is
checked by size and md5 against the seeded manifest before anything is printed.

    python benchmarks/request_timeline.py --scenario project
    DRIVESYNC_TRANSFERS=32 python benchmarks/request_timeline.py --scenario project   # other settings via env
    python benchmarks/request_timeline.py --scenario small --tree /path/to/other/checkout --json out.json
"""
from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.contenders.base import RunContext, compile_bytecode  # noqa: E402
from benchmarks.contenders.drivesync import Drivesync  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    SETTLE_S, EmulatorProcess, build_scenarios, seed_remote, settle, verify_local, warm)

#: The child: the recorder around aiohttp, then the CLI. TREE and OUT are filled in.
CHILD = r'''
import atexit, json, sys, time
sys.path.insert(0, TREE)
import aiohttp
start = time.monotonic()
records = []
send = aiohttp.ClientSession._request
async def recorded(self, method, url, *args, **kwargs):
    sent = time.monotonic()
    response = await send(self, method, url, *args, **kwargs)
    text = str(url)
    params = kwargs.get("params") or {}
    kind = ("media" if "alt=media" in text or params.get("alt") == "media"
            else "token" if text.rstrip("/").endswith("token") else "metadata")
    records.append([sent - start, time.monotonic() - start, kind, response.status,
                    (kwargs.get("headers") or {}).get("Range", ""), None])
    response._timeline_record = records[-1]
    return response
release = aiohttp.ClientResponse.release
def released(self):
    record = getattr(self, "_timeline_record", None)
    if record is not None and record[5] is None:
        record[5] = time.monotonic() - start     # the body read (or given up): the request is over
    return release(self)
aiohttp.ClientSession._request = recorded
aiohttp.ClientResponse.release = released
atexit.register(lambda: json.dump({"records": records, "exit": time.monotonic() - start}, open(OUT, "w")))
from drivesync.cli import main
sys.exit(main(sys.argv[1:]))
'''


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="project", help="a pull scenario of the harness (default: project)")
    p.add_argument("--profile", default="drive-like")
    p.add_argument("--tree", default=str(ROOT), help="the checkout whose drivesync/ runs (default: this one)")
    p.add_argument("--work", help="scratch space; the seeded tree is kept there for the next run")
    p.add_argument("--quick", action="store_true", help="the harness's tiny sizes")
    p.add_argument("--json", help="write every request's record here")
    args = p.parse_args(argv)
    scenario = build_scenarios(args.quick)[args.scenario]
    if scenario.direction != "pull":
        raise SystemExit(f"{args.scenario} is a push: this script times pulls")
    work = Path(args.work or tempfile.mkdtemp(prefix="request-timeline-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "seed" / f"{args.scenario}-{'quick' if args.quick else 'full'}"
    manifest = seed_remote(scenario, data_dir, log=lambda line: print(line, flush=True))
    out, record_file = work / "out", work / "records.json"
    shutil.rmtree(out, ignore_errors=True)
    # As the harness does before every row: the store in the page cache (a cold one stalls the emulator in
    # pread and reads as a client stall) and the deleted output's discards over before the clock starts.
    warm(data_dir)
    compile_bytecode(args.tree)     # the child starts as an installed drivesync does, as in the harness
    settle(0 if args.quick else SETTLE_S)
    with EmulatorProcess(data_dir, args.profile, work / "emulator", "tls") as emu:
        # The harness's own environment for drivesync (proxy, CA bundle, pacing budget), a fresh state dir.
        ctx = RunContext(emu=emu.emu(), work=work / f"run-{time.time_ns()}", timeout=0,
                         remote_root=scenario.remote_root, profile_name=args.profile)
        contender = Drivesync()
        env = dict(contender._env(ctx), PYTHONPATH=args.tree)
        code = CHILD.replace("TREE", repr(args.tree)).replace("OUT", repr(str(record_file)))
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-c", code, "pull", f"{scenario.remote_root}/", str(out), "-q",
                              *contender._common(ctx)], env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
    if run.returncode:
        raise SystemExit(f"the pull failed ({run.returncode}): {run.stderr.strip()[-600:]}")
    wrong = verify_local(manifest, out)
    if wrong:
        raise SystemExit(f"the pulled tree is wrong: {wrong}")
    recorded = json.loads(record_file.read_text())
    records = recorded["records"]
    per_bucket: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for sent, _, kind, *_ in records:
        per_bucket[int(sent * 2)][kind] += 1
    media = [r for r in records if r[2] == "media"]
    print(f"{args.scenario} ({args.profile}): wall {wall:.2f} s, {len(records)} requests, verified; "
          f"first request {records[0][0]:.2f} s and first download {min(r[0] for r in media):.2f} s after "
          "aiohttp was imported")
    last_body = max((r[5] for r in records if r[5] is not None), default=0.0)
    print(f"last body read {last_body:.2f} s, process exit {recorded['exit']:.2f} s after aiohttp was imported "
          f"(the tail after the last byte: {recorded['exit'] - last_body:.2f} s)")
    for bucket in range(max(per_bucket) + 1):
        kinds = per_bucket.get(bucket, collections.Counter())
        detail = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        print(f"{bucket / 2:6.1f} s  {sum(kinds.values()):4d}  {detail}")
    if args.json:
        Path(args.json).write_text(json.dumps({"wall_s": wall, "records": records}))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
