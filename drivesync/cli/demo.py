"""``drivesync demo [DIR]``: a local Drive emulator, a sample project uploaded to it, and a pull with
progress bars into DIR (default ./drivesync-demo). Parsing and printing only."""
from __future__ import annotations

import sys


def register(subparsers, name: str) -> None:
    p = subparsers.add_parser("demo", help="try a pull against a local Drive emulator (no Google account needed)",
                              description="Start a local Drive emulator, upload a sample project to it through "
                                          "the Drive API, and pull it here with progress bars.")
    p.add_argument("target", metavar="DIR", nargs="?", default="drivesync-demo",
                   help="where the sample project lands (default ./drivesync-demo)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo
    from ..progress import summary_line
    from ..puller import check_writable

    check_writable(args.target)
    say = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    result = run_demo(args.target, progress=not args.quiet, say=say)
    print(summary_line(result), file=sys.stderr)
    for failure in result.failed:
        print(f"failed: {failure.path}: {failure.reason}", file=sys.stderr)
    if result.ok and not args.quiet:
        print(f"done: the sample project is in {result.local}. On Colab or a VM, pull your own folder with "
              "'drivesync pull deeplearning/'.", file=sys.stderr)
    return 0 if result.ok else 1
