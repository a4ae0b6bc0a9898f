"""``drivesync push``, ``status``, ``flush`` and ``stop``: parsing and printing only."""
from __future__ import annotations

import os
import sys
import time

from .common import (REMOTE_FORMS, add_connection_flags, add_remote_flags, add_transfer_flags, local_path,
                     positive_float, positive_int, selection, setting_default, size)


def register(sub, name: str) -> None:
    if name == "push":
        p = sub.add_parser("push", help="upload a file or folder to Drive (--watch: keep uploading checkpoints)",
                           description=f"Upload LOCAL to REMOTE ({REMOTE_FORMS}; default: LOCAL's folder "
                                       "name under My Drive). Unchanged files are skipped, changed ones become "
                                       "new revisions.")
        p.add_argument("local", metavar="LOCAL", type=local_path)
        p.add_argument("remote", metavar="REMOTE", nargs="?")
        p.add_argument("--transfers", type=positive_int, metavar="N",
                       help="files uploaded at once " + setting_default("upload_transfers"))
        p.add_argument("--chunk-size", type=size, metavar="SIZE",
                       help="resumable chunk size, a multiple of 256K " + setting_default("upload_chunk_size"))
        p.add_argument("--delete", action="store_true",
                       help="move Drive files that no longer exist locally to the trash")
        p.add_argument("-L", "--copy-links", action="store_true",
                       help="follow symlinks that lead out of LOCAL (links inside LOCAL are always followed)")
        w = p.add_argument_group("watch")
        w.add_argument("--watch", action="store_true", help="keep running and upload what becomes complete")
        w.add_argument("--settle", type=positive_float, default=None,
                       help="seconds unchanged after which a file or checkpoint folder is complete (default 15)")
        w.add_argument("--complete-marker", metavar="NAME",
                       help="a checkpoint folder is complete when this file appears in it (e.g. trainer_state.json; "
                            "default: none, a folder is complete when it settles)")
        w.add_argument("--keep-last", type=positive_int, metavar="N",
                       help="keep only the N newest numbered checkpoints on Drive (others go to the trash; "
                            "default: keep all)")
        w.add_argument("--poll", action="store_true", help="poll the folder instead of using inotify")
        w.add_argument("--background", action="store_true",
                       help="detach; see 'drivesync status', wait with 'drivesync flush', end with 'drivesync stop'")
        p.add_argument("--no-progress", action="store_true",
                       help="no progress bars (--watch still prints a line per checkpoint made durable)")
        add_transfer_flags(p, verb="uploaded")
        add_remote_flags(p)
        add_connection_flags(p)
        p.set_defaults(func=run_push, filter_rules=[])
    elif name == "status":
        p = sub.add_parser("status", help="what background watchers have queued, in flight and done")
        p.add_argument("--json", action="store_true", help="print the raw status")
        p.set_defaults(func=run_status)
    elif name == "flush":
        p = sub.add_parser("flush", help="wait until background watchers have put everything complete on Drive")
        p.add_argument("local", metavar="LOCAL", nargs="?", type=local_path, help="only the watcher of this folder")
        p.add_argument("--timeout", type=positive_float, help="give up after this many seconds (default: wait)")
        p.set_defaults(func=run_flush)
    elif name == "stop":
        p = sub.add_parser("stop", help="flush a background watcher, then stop it",
                           description="Wait until the watcher of LOCAL has put everything complete on Drive, "
                                       "then stop it. Without LOCAL: the one running watcher (several: name one).")
        p.add_argument("local", metavar="LOCAL", nargs="?", type=local_path, help="the folder the watcher watches")
        p.add_argument("--timeout", type=positive_float,
                       help="stop waiting after this many seconds (default: wait)")
        p.set_defaults(func=run_stop)


def _progress_subscriber(enabled: bool):
    if not enabled:
        return None, []
    from ..progress import Progress

    state = {"bar": None, "files": 0, "bytes": 0, "early": []}

    def subscriber(event):
        if event.kind == "queued":
            state["files"] += 1
            state["bytes"] += event.total or 0
            return
        if state["bar"] is None:
            state["bar"] = Progress(total_bytes=state["bytes"], total_files=state["files"], desc="push")
        state["bar"](event)

    def close():
        if state["bar"] is not None:
            state["bar"].close()

    return close, [subscriber]


def run_push(args) -> int:
    from ..errors import UsageError

    if not args.watch:
        for flag in ("settle", "complete_marker", "keep_last"):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} needs --watch")
        if args.poll or args.background:
            raise UsageError("--poll and --background need --watch")
        return _push_once(args)
    if args.drive_id:
        raise UsageError("--drive-id does not go with --watch; write REMOTE as shared-drive:DRIVE NAME/path")
    for flag in ("files_from", "min_size", "max_size", "max_age", "min_age"):
        if getattr(args, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} does not go with --watch (a watcher uploads what completes)")
    for flag in ("checksum", "size_only", "dry_run", "json", "error_on_no_transfer"):
        if getattr(args, flag):
            raise UsageError(f"--{flag.replace('_', '-')} does not go with --watch")
    if any(include for (include, _kind), _value in args.filter_rules):
        raise UsageError("--include and --include-from do not go with --watch (--exclude does)")
    if args.copy_links:
        raise UsageError("--copy-links does not go with --watch (a watcher never follows links out of LOCAL)")
    return _watch(args)


def _connection(args) -> dict:
    from ..config import from_environment

    return dict(credentials=args.credentials, impersonate=args.impersonate, api_url=args.api_url,
                transfers=args.transfers, chunk_size=args.chunk_size,
                settings=from_environment(give_up_after=args.give_up_after, bwlimit=args.bwlimit,
                                          list_concurrency=args.list_concurrency))


def _excludes(args) -> list[str]:
    """The --exclude / --exclude-from patterns, in order (what a watcher takes)."""
    filt, _compare = selection(args)
    return [rule.pattern for rule in filt.rules if not rule.include]


def _push_once(args) -> int:
    import json

    from ..errors import EXIT_NO_TRANSFER
    from ..pusher import PushFailed, push

    filt, compare = selection(args)
    quiet_output = args.no_progress or args.quiet or args.json or args.dry_run
    close, subscribers = _progress_subscriber(not quiet_output and (args.progress or sys.stderr.isatty()))
    started = time.monotonic()
    try:
        result = push(args.local, args.remote, filter=filt, compare=compare, dry_run=args.dry_run,
                      delete=args.delete, subscribers=subscribers, progress=False, copy_links=args.copy_links,
                      drive_id=args.drive_id, **_connection(args))  # the CLI draws its own bar (--no-progress)
    except PushFailed as exc:
        if close:
            close()
        if args.json:
            print(json.dumps(exc.result.to_dict(), indent=2))
        else:
            print(str(exc.result) if args.dry_run else exc.result.summary())
        for path, error in exc.result.failed[:20]:
            print(f"failed: {path}: {error}", file=sys.stderr)
        raise
    if close:
        close()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif args.dry_run:
        for line in result.plan:
            print(line)
        if not args.quiet:
            print(str(result))           # 'would push 3 files (1.2 MiB), 2 unchanged -> REMOTE'
    elif not args.quiet:
        print(f"{result.summary()} in {time.monotonic() - started:.1f} s")
    if args.error_on_no_transfer and not (result.planned if args.dry_run else result.uploaded):
        return EXIT_NO_TRANSFER
    return 0


def _watch(args) -> int:
    from .. import daemon
    from ..completion import DEFAULT_SETTLE_S
    from ..errors import UsageError
    from ..watcher import Watcher, WatchOptions

    if args.background:
        argv = _rebuild_argv(args)
        info = daemon.start_background(args.local, argv)
        print(f"watching {os.path.abspath(args.local)} in the background (pid {info.pid}); "
              f"log: {info.directory / 'log'}; 'drivesync status' shows progress, 'drivesync flush' waits, "
              "'drivesync stop' ends it")
        return 0
    live, stale = daemon.find(args.local, *daemon.scan())
    if live:
        raise UsageError(f"a watcher for {args.local} is already running (pid {live[0].pid}); "
                         f"'drivesync stop {args.local}' stops it (after flushing)")
    for info in stale:
        daemon.prune(info)
    options = WatchOptions(settle=args.settle or DEFAULT_SETTLE_S, complete_marker=args.complete_marker,
                           exclude=tuple(_excludes(args)), delete=args.delete, keep_last=args.keep_last,
                           poll=args.poll)
    directory = daemon.watch_dir(args.local)
    background = os.environ.get("DRIVESYNC_WATCH_DIR") == str(directory)
    bars, undo = _watch_output(args, background)
    watcher = Watcher(args.local, args.remote, options=options, status_path=str(directory / "status.json"),
                      subscribers=[bars] if bars else [], **_connection(args))
    signals = daemon.Signals()
    watcher.token = daemon.write_pid_file(directory)
    try:
        try:
            watcher.start()
        except BaseException:
            daemon.remove_pid_file(directory, watcher.token)
            raise
        print(f"watching {watcher.local} -> {watcher.remote or 'My Drive'} ({watcher.observer_kind}); "
              + ("'drivesync stop' flushes and stops" if background else "Ctrl-C flushes and stops (twice: stops at once)"),
              file=sys.stderr, flush=True)
        return daemon.serve_foreground(watcher, directory, watcher.token, signals)
    finally:
        undo()


def _watch_output(args, background: bool):
    """What a watcher prints: a line per checkpoint made durable (and warnings, errors) on stderr, which is
    the log file of a background watcher (with timestamps), and bars while bytes move in a terminal.
    -q: warnings and errors only; --no-progress: no bars. Returns (bars or None, undo)."""
    import logging

    from ..progress import WatchProgress, line_handler

    bars = None
    if not (args.quiet or args.no_progress or background) and sys.stderr.isatty():
        bars = WatchProgress(file=sys.stderr)
    fmt = "%(asctime)s %(message)s" if background else "%(message)s"
    handler = line_handler(write=bars.write if bars else None, stream=sys.stderr, fmt=fmt)
    logger = logging.getLogger("drivesync.watch")
    before = (logger.level, logger.propagate)
    verbose = getattr(args, "verbose", 0) or 0
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.WARNING if args.quiet else logging.INFO)
    logger.propagate = False          # -v's handler on the root logger would print every line twice
    logger.addHandler(handler)
    if background:
        for other in logging.getLogger().handlers:   # retry notices at -v: timestamped like the rest
            other.setFormatter(logging.Formatter(fmt))

    def undo():
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]
        if bars is not None:
            bars.close()

    return bars, undo


def _rebuild_argv(args) -> list[str]:
    argv = ["push", os.path.abspath(args.local)] + ([args.remote] if args.remote else []) + ["--watch"]
    for flag in ("settle", "complete_marker", "keep_last", "transfers", "chunk_size", "api_url", "credentials",
                 "impersonate", "give_up_after"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    if args.bwlimit is not None:
        argv += ["--bwlimit", f"{args.bwlimit:.0f}B"]            # bytes/s: a bare number would mean KiB/s
    if args.list_concurrency is not None:
        argv += ["--checkers", str(args.list_concurrency)]
    for pattern in _excludes(args):                              # --exclude-from's lines, read once here
        argv += ["--exclude", pattern]
    for flag in ("delete", "poll", "quiet"):
        if getattr(args, flag):
            argv.append(f"--{flag}")
    if getattr(args, "verbose", 0):
        argv.append("-" + "v" * args.verbose)
    return argv


def _fmt_status(info) -> str:
    from ..progress import human_bytes

    s = info.status
    if not s:
        return f"{info.directory.name}: pid {info.pid} running (no status yet)"
    lines = [f"{s.get('local')} -> {s.get('remote') or 'My Drive'}: running (pid {info.pid}, {s.get('observer')})"]
    queued, flight, settling = s.get("queued", []), s.get("in_flight", []), s.get("settling", [])
    lines.append(f"  queued {len(queued)}, in flight {len(flight)}, settling {len(settling)}, "
                 f"done {s.get('done', 0)} ({human_bytes(s.get('done_bytes', 0))}), failed {len(s.get('failed', {}))}")
    progress = s.get("progress") or {}
    for rel in flight[:5]:
        p = progress.get(rel)
        if not p:
            lines.append(f"  in flight: {rel}")
            continue
        pct = f" ({100 * p['bytes'] / p['total']:.0f}%)" if p.get("total") else ""
        rate = f"{human_bytes(p['rate_bps'])}/s" if p.get("rate_bps") is not None else "rate unknown"
        eta = f"ETA {_duration(p['eta_s'])}" if p.get("eta_s") is not None else "ETA unknown"
        lines.append(f"  in flight: {rel}  {human_bytes(p.get('bytes', 0))} / {human_bytes(p.get('total', 0))}"
                     f"{pct}, {rate}, {eta}")
    if len(flight) > 5:
        lines.append(f"  in flight: ... and {len(flight) - 5} more")
    if queued:
        lines.append("  queued: " + ", ".join(queued[:5]) + (" ..." if len(queued) > 5 else ""))
    lines.append(f"  behind by {s.get('behind_s', 0):.1f} s"
                 + (f"; upload lag median {s['lag_median_s']:.1f} s, worst {s['lag_max_s']:.1f} s"
                    if s.get("lag_median_s") is not None else ""))
    for path, error in list(s.get("failed", {}).items())[:5]:
        lines.append(f"  failed: {path}: {error}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _prune_stale(stale) -> int:
    """Print one line per stale entry and forget it; returns how many ended without a clean stop."""
    from .. import daemon

    crashed = 0
    for info in stale:
        print(daemon.stale_line(info), file=sys.stderr)
        if info.status.get("running") is True or not info.status:
            crashed += 1
        daemon.prune(info)
    return crashed


def run_status(args) -> int:
    import json

    from .. import daemon

    live, stale = daemon.scan()
    if args.json:
        for info in stale:
            daemon.prune(info)
        print(json.dumps([{"pid": i.pid, "alive": True, **i.status} for i in live], indent=2))
        return 0
    _prune_stale(stale)
    if not live:
        print("no watchers running (start one with 'drivesync push --watch LOCAL --background')")
        return 0
    for info in live:
        print(_fmt_status(info))
    return 0


def _chosen(args):
    """(live watchers the command acts on, stale entries it found and pruned: how many crashed)."""
    from .. import daemon
    from ..errors import UsageError

    live, stale = daemon.find(args.local, *daemon.scan())
    crashed = _prune_stale(stale)
    if args.local and not live and not stale:
        raise UsageError(f"no running watcher for {args.local}")
    return live, crashed


def run_flush(args) -> int:
    from .. import daemon

    return _signal_watchers(args, "flush", daemon.request_flush, lambda info, status: f"flushed {status.get('local')}")


def run_stop(args) -> int:
    from .. import daemon

    return _signal_watchers(args, "stop", daemon.request_stop,
                            lambda info, status: f"stopped {status.get('local') or info.name} after flushing")


def _signal_watchers(args, verb: str, request, said) -> int:
    """flush or stop the chosen watchers (only processes proven to be ours: daemon.NotOurs otherwise);
    one line each; exit 1 when an upload failed or a watcher was gone."""
    from .. import daemon
    from ..errors import UsageError

    infos, crashed = _chosen(args)
    if not infos:
        if not crashed:
            print(f"no running watchers: nothing to {verb}")
        return 1 if crashed else 0
    if verb == "stop" and args.local is None and len(infos) > 1:
        names = ", ".join(f"{i.name} (pid {i.pid})" for i in infos)
        raise UsageError(f"{len(infos)} watchers are running: {names}; say which: 'drivesync stop LOCAL'")
    failed = 0
    for info in infos:
        try:
            status = request(info, timeout=args.timeout)
        except daemon.NotOurs as exc:
            print(str(exc), file=sys.stderr)
            daemon.prune(exc.info)
            crashed += 1
            continue
        failed += len(status.get("failed", {}))
        print(f"{said(info, status)}: {status.get('done', 0)} uploads done, {len(status.get('failed', {}))} failed")
    return 1 if failed or crashed else 0
