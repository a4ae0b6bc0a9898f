"""``drivesync demo [DIR]``: the whole story against a local Drive emulator, in DIR (default ./drivesync-demo):
pull a sample project, train with a watcher uploading checkpoints, lose the runtime (kill -9), restore with
``pull --latest`` into a fresh folder, resume, flush; then the measured speeds and lags. ``--pull-only``: just
the pull, into DIR itself. Parsing and printing only."""
from __future__ import annotations

import sys

from .common import local_path


def register(subparsers, name: str) -> None:
    p = subparsers.add_parser("demo", help="see pull, watch, a lost runtime and its restore against a local Drive "
                                           "emulator (no Google account needed)",
                              description="Start a local Drive emulator and play the whole story: pull a sample "
                                          "project, train while a background watcher uploads checkpoints, kill the "
                                          "watcher (the runtime is lost), restore the newest checkpoint into a fresh "
                                          "folder with 'pull --latest', resume training, flush, and print the "
                                          "measured speeds and lags. DIR/runtime-1 and DIR/runtime-2 are recreated.")
    p.add_argument("target", metavar="DIR", nargs="?", default="drivesync-demo", type=local_path,
                   help="where the demo works (default ./drivesync-demo)")
    p.add_argument("--pull-only", action="store_true",
                   help="only upload the sample project and pull it into DIR (the short demo)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no narration")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..puller import check_writable

    check_writable(args.target)
    say = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    if args.pull_only:
        return _pull_only(args, say)
    from ..demo import run_story, story_summary

    report = run_story(args.target, progress=False if args.quiet else None, say=say)
    for line in story_summary(report):
        print(line, file=sys.stderr)
    for failure in report.project.failed if report.project else ():
        print(f"failed: {failure.path}: {failure.reason}", file=sys.stderr)
    if report.ok and not args.quiet:
        print("done. On Colab or a VM: 'drivesync pull deeplearning/', "
              "'drivesync push --watch checkpoints/ run42/checkpoints --background', and after a recycled runtime "
              "'drivesync pull run42/checkpoints checkpoints/ --latest'.", file=sys.stderr)
    return 0 if report.ok else 1


def _pull_only(args, say) -> int:
    from ..demo import run_demo
    from ..progress import summary_line

    result = run_demo(args.target, progress=False if args.quiet else None, say=say)
    print(summary_line(result), file=sys.stderr)
    for failure in result.failed:
        print(f"failed: {failure.path}: {failure.reason}", file=sys.stderr)
    if result.ok and not args.quiet:
        print(f"done: the sample project is in {result.local}. On Colab or a VM, pull your own folder with "
              "'drivesync pull deeplearning/'.", file=sys.stderr)
    return 0 if result.ok else 1
