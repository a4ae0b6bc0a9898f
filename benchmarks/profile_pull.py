"""Where a many-small-files pull spends its CPU (a standalone script, not a test; issue 13).

Seeds N files of 64 KiB in folders of 100 (the harness's `small` shape; --files 10000 is `small` itself),
starts the emulator in its own process (unthrottled: the pacer's sleeps are not CPU, and nothing else
waits), then runs `drivesync pull` as a child process:

* --repeats times plain, for the client's CPU seconds (user+sys from wait4: the child alone, not wall
  time), reported per file as the best and all runs;
* once under cProfile (its own overhead inflates every figure: read it for shares, not totals), the top
  entries by own time and by cumulative time; cProfile sees only the event loop's thread;
* with --py-spy (pip install py-spy), once under `py-spy record --gil`: every thread's Python work.

Every run's output is checked by size and md5 against the seeded store (pull_bench.verify_pulled).

    python benchmarks/profile_pull.py --files 2000 --repeats 3 --out /tmp/profile.json
    python benchmarks/profile_pull.py --files 2000 --no-profile -- --transfers 16   # extra flags go to pull
    python benchmarks/profile_pull.py --scenario deep --repeats 2 --py-spy   # a harness scenario's own tree
"""
from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.contenders.base import compile_bytecode  # noqa: E402
from benchmarks.harness import Trash, build_scenarios  # noqa: E402
from benchmarks.pull_bench import CLI, Server, run_child, seed, verify_pulled  # noqa: E402

KiB = 1024


def pull_argv(server: Server, out_dir: str, extra: list[str]) -> list[str]:
    return ["pull", "bench/", out_dir, "--api-url", server.url, "--credentials", server.credentials,
            "--quiet", *extra]


def py_spy_profile(server: Server, work: str, want: dict, extra: list[str], top: int) -> dict:
    """py-spy's samples of the thread holding the GIL (--gil: Python work, not threads blocked in fsync or
    on a queue), summed by function: own share (the leaf) and inclusive share (anywhere in the stack)."""
    from collections import Counter

    out = os.path.join(work, "out-spy")
    raw = os.path.join(work, "spy.txt")
    env = dict(os.environ, DRIVESYNC_STATE_DIR=os.path.join(work, "state-spy"), PYTHONPATH=ROOT)
    res = run_child(["py-spy", "record", "--rate", "250", "--format", "raw", "--gil", "--output", raw,
                     "--", *CLI, *pull_argv(server, out, extra)], env)
    if res["returncode"]:
        raise SystemExit(f"py-spy pull failed: {res['stderr'][-1500:]}")
    verify_pulled(out, want)
    own, incl = Counter(), Counter()
    total = 0
    for line in open(raw):
        stack, _, n = line.rstrip("\n").rpartition(" ")
        if not stack or not n.isdigit():
            continue
        n = int(n)
        frames = stack.split(";")
        total += n
        own[_short(frames[-1])] += n
        for f in {_short(f) for f in frames[1:]}:
            incl[f] += n
    pct = lambda c: [(k, round(100 * v / total, 1)) for k, v in c.most_common(top)]  # noqa: E731
    summary = {"samples": total, "own_pct": pct(own), "inclusive_pct": pct(incl)}
    for k in ("own_pct", "inclusive_pct"):
        print(f"--- py-spy --gil, {k} of {total} samples (the thread holding the GIL)", flush=True)
        for name, share in summary[k]:
            print(f"{share:6.1f}  {name}", flush=True)
    return summary


def _short(frame: str) -> str:
    """'read_ranged (drivesync/download.py:271)' -> 'read_ranged (download.py)'."""
    name, _, where = frame.partition(" (")
    return f"{name} ({os.path.basename(where.split(':')[0])})" if where else name


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--size", type=int, default=64 * KiB)
    p.add_argument("--scenario", help="seed this harness scenario's tree (paths and sizes) instead of "
                                      "--files x --size in folders of 100")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--py-spy", action="store_true",
                   help="also sample every thread with py-spy (cProfile sees only the event loop's thread)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--ab", metavar="TREE",
                   help="A/B: alternate each run between this checkout and another one's drivesync/ (a copy "
                        "with the change undone), same emulator, same command; both reported")
    p.add_argument("--out", help="write the results here as JSON")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="profile-pull-")
    trash = Trash(Path(work) / "trash")      # deleted with ``work`` at the end
    if args.scenario:
        scenarios = build_scenarios()
        if args.scenario not in scenarios:
            p.error(f"--scenario: one of {', '.join(scenarios)}")
        files = [(rel, size) for rel, size, _ in scenarios[args.scenario].files]
        args.files = len(files)
    else:
        files = [(f"d{i // 100:03d}/f{i % 100:03d}.bin", args.size) for i in range(args.files)]
    result: dict = {"files": args.files, "size": args.size, "scenario": args.scenario, "extra_flags": extra,
                    "runs_cpu_s": []}
    try:
        data_dir = os.path.join(work, "drive")
        want = seed(data_dir, files)
        with Server(data_dir, "unthrottled") as server:
            trees = {"this": ROOT, **({"other": os.path.abspath(args.ab)} if args.ab else {})}
            if args.ab:
                compile_bytecode(args.ab)   # Server compiled this checkout's
            runs: dict[str, list[float]] = {k: [] for k in trees}
            for i in range(args.repeats):
                for label, tree in trees.items():
                    out = os.path.join(work, f"out-{label}-{i}")
                    env = dict(os.environ, DRIVESYNC_STATE_DIR=os.path.join(work, f"state-{label}-{i}"),
                               PYTHONPATH=tree)
                    cli = [sys.executable, "-c", f"import sys; sys.path.insert(0, {tree!r}); "
                           "from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]
                    res = run_child(cli + pull_argv(server, out, extra), env)
                    if res["returncode"]:
                        raise SystemExit(f"pull failed: {res['stderr'][-1500:]}")
                    verify_pulled(out, want)
                    # Many files are kept until the end: deleting them here would slow the next run's creates.
                    trash.dispose(Path(out), len(files))
                    runs[label].append(round(res["cpu_s"], 3))
                    print(f"run {i} ({label}): cpu {res['cpu_s']:.2f} s (user {res['user_s']:.2f}, sys "
                          f"{res['sys_s']:.2f}), wall {res['wall_s']:.2f} s, "
                          f"{1000 * res['cpu_s'] / args.files:.3f} ms/file", flush=True)
            result["runs_cpu_s"] = runs["this"]
            for label, cpu in runs.items():
                key = "" if label == "this" else "other_"
                result[f"{key}runs_cpu_s"] = cpu
                result[f"{key}cpu_ms_per_file_best"] = round(1000 * min(cpu) / args.files, 3)
                result[f"{key}cpu_ms_per_file_median"] = round(1000 * sorted(cpu)[len(cpu) // 2] / args.files, 3)
            if not args.no_profile:
                out = os.path.join(work, "out-prof")
                prof = os.path.join(work, "pull.prof")
                env = dict(os.environ, DRIVESYNC_STATE_DIR=os.path.join(work, "state-prof"), PYTHONPATH=ROOT)
                code = ("import cProfile, sys; from drivesync.cli import main; "
                        f"cProfile.run('rc = main(sys.argv[1:])', {prof!r}); sys.exit(rc)")
                res = run_child([sys.executable, "-c", code, *pull_argv(server, out, extra)], env)
                if res["returncode"]:
                    raise SystemExit(f"profiled pull failed: {res['stderr'][-1500:]}")
                verify_pulled(out, want)
                for key in ("tottime", "cumulative"):
                    buf = io.StringIO()
                    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(args.top)
                    text = buf.getvalue()
                    result[f"top_{key}"] = text[text.find("ncalls"):]
                    print(f"--- top {args.top} by {key} (under cProfile: cpu {res['cpu_s']:.2f} s)\n"
                          + result[f"top_{key}"], flush=True)
            if args.py_spy:
                result["py_spy"] = py_spy_profile(server, work, want, extra, args.top)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("top_")}), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
