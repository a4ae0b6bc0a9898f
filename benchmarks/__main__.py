"""`python -m benchmarks`: run the staging scenarios for every contender and write the report.

    python -m benchmarks                      # everything; results in benchmarks/results/
    python -m benchmarks --quick              # tiny sizes, same shapes (seconds, not an hour)
    python -m benchmarks --scenarios small,project --contenders drivesync,rclone-tuned --profiles drive-like
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def _csv(allowed: tuple[str, ...], what: str):
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"unknown {what}: {', '.join(bad) or text!r} (choose from {', '.join(allowed)})")
        return items
    return parse


def main(argv: list[str] | None = None) -> int:
    from . import harness
    from .contenders import NAMES, all_contenders

    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (the test suite runs this)")
    ap.add_argument("--scenarios", type=_csv(harness.SCENARIOS, "scenario"), default=list(harness.SCENARIOS),
                    help=f"comma-separated, from {','.join(harness.SCENARIOS)}")
    ap.add_argument("--contenders", type=_csv(NAMES, "contender"), default=list(NAMES),
                    help=f"comma-separated, from {','.join(NAMES)}")
    ap.add_argument("--profiles", type=_csv(harness.PROFILES, "profile"), default=list(harness.PROFILES),
                    help=f"comma-separated, from {','.join(harness.PROFILES)}")
    ap.add_argument("--transport", choices=("tls", "plain"), default="tls",
                    help="tls (default): every contender but the official client through the one TLS proxy "
                         "process; plain: the emulator's plain port (rclone rows are then unavailable)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per contender run (default 900)")
    ap.add_argument("--long-timeout", type=float, default=None,
                    help="seconds for the rows measured outright however long they take (the official client "
                         "on small and project; default: --timeout)")
    ap.add_argument("--out", type=Path, default=harness.DEFAULT_RESULTS, help="where the report goes")
    ap.add_argument("--work", type=Path, default=harness.DEFAULT_WORK, help="scratch space (seeded data, outputs)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the rows of --out's previous results.json that are not run now (by profile, scenario "
                         "and contender; each row keeps its date)")
    ap.add_argument("--rewrite-report", action="store_true",
                    help="only rewrite results.md and the plots from --out's results.json (no run)")
    ns = ap.parse_args(argv)
    if ns.timeout <= 0 or (ns.long_timeout is not None and ns.long_timeout <= 0):
        ap.error("--timeout and --long-timeout must be positive")
    if ns.rewrite_report:
        if not (ns.out / "results.json").is_file():
            ap.error(f"no results.json in {ns.out}")
        for what, path in harness.rewrite_report(ns.out).items():
            print(f"wrote {what}: {path}")
        return 0

    contenders = [c for c in all_contenders() if c.name in ns.contenders]
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(f"machine: {harness.machine_description()}", flush=True)
    previous = harness.load_previous(ns.out) if ns.merge else None
    machine = harness.machine_description()

    def report(rows: list, floors: dict) -> dict[str, str]:
        for row in rows:
            row.cpu = row.cpu or machine["cpu"]
            row.commit = row.commit or machine["commit"]
        if previous is not None:
            rows, floors = harness.merge_rows(previous, rows, floors, quick=ns.quick)
        return harness.write_report(rows, floors, machine, ns.out, quick=ns.quick, timeout=ns.timeout,
                                    command=command.strip())

    rows, floors = harness.run_all(scenarios=ns.scenarios, contenders=contenders, profiles=ns.profiles,
                                   quick=ns.quick, timeout=ns.timeout, work=ns.work,
                                   log=lambda s: print(s, flush=True), progress=report, transport=ns.transport,
                                   long_timeout=ns.long_timeout)
    written = report(rows, floors)
    for what, path in written.items():
        print(f"wrote {what}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
