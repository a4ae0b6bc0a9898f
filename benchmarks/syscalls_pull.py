"""Syscalls per file of a many-small-files pull (a standalone script; issue 13): `strace -f -c` around
`drivesync pull` of N files of 64 KiB (the `small` shape) from an unthrottled emulator in its own process.

Counts, unlike CPU seconds on a shared 2-core machine, do not move with the load: read them beside
benchmarks/profile_pull.py's CPU figures. strace slows the client several-fold, so its seconds mean nothing.

    python benchmarks/syscalls_pull.py --files 2000 [--tree /path/to/another/checkout]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.pull_bench import Server, seed, verify_pulled  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--tree", default=ROOT, help="the checkout whose drivesync/ runs (default: this one)")
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args(argv)
    if not shutil.which("strace"):
        raise SystemExit("strace is not installed")
    work = tempfile.mkdtemp(prefix="syscalls-pull-")
    try:
        files = [(f"d{i // 100:03d}/f{i % 100:03d}.bin", 64 * 1024) for i in range(args.files)]
        want = seed(os.path.join(work, "drive"), files)
        tree = os.path.abspath(args.tree)
        with Server(os.path.join(work, "drive"), "unthrottled") as s:
            env = dict(os.environ, DRIVESYNC_STATE_DIR=os.path.join(work, "state"), PYTHONPATH=tree)
            out, report = os.path.join(work, "out"), os.path.join(work, "strace.txt")
            cli = [sys.executable, "-c", f"import sys; sys.path.insert(0, {tree!r}); "
                   "from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]
            subprocess.run(["strace", "-f", "-c", "-o", report, *cli, "pull", "bench/", out, "--api-url", s.url,
                            "--credentials", s.credentials, "--quiet"], env=env, cwd=work, check=True)
            verify_pulled(out, want)
        counts = {}
        for line in open(report):
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
            if m and m.group(2) != "total":
                counts[m.group(2)] = int(m.group(1))
        total = sum(counts.values())
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:args.top]
        result = {"files": args.files, "tree": tree, "syscalls_per_file": round(total / args.files, 1),
                  "top_per_file": {k: round(v / args.files, 2) for k, v in top}}
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
