"""``drivesync push``, ``drivesync status`` and ``drivesync flush``: parsing and printing only."""
from __future__ import annotations

import os
import sys
import time

from .common import add_connection_flags, positive_float, positive_int, size


def register(sub, name: str) -> None:
    if name == "push":
        p = sub.add_parser("push", help="upload a file or folder to Drive (--watch: keep uploading checkpoints)",
                           description="Upload LOCAL to REMOTE (a path under My Drive; default: LOCAL's folder "
                                       "name). Unchanged files are skipped, changed ones become new revisions.")
        p.add_argument("local", metavar="LOCAL")
        p.add_argument("remote", metavar="REMOTE", nargs="?")
        p.add_argument("--transfers", type=positive_int, help="files uploaded at once (default 4)")
        p.add_argument("--chunk-size", type=size, help="resumable chunk size, a multiple of 256K (default 16M)")
        p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                       help="never upload paths matching GLOB (rclone syntax; repeatable)")
        p.add_argument("--delete", action="store_true",
                       help="move Drive files that no longer exist locally to the trash")
        w = p.add_argument_group("watch")
        w.add_argument("--watch", action="store_true", help="keep running and upload what becomes complete")
        w.add_argument("--settle", type=positive_float, default=None,
                       help="seconds unchanged after which a file or checkpoint folder is complete (default 15)")
        w.add_argument("--complete-marker", metavar="NAME",
                       help="a checkpoint folder is complete when this file appears in it (e.g. trainer_state.json)")
        w.add_argument("--keep-last", type=positive_int, metavar="N",
                       help="keep only the N newest numbered checkpoints on Drive (others go to the trash)")
        w.add_argument("--poll", action="store_true", help="poll the folder instead of using inotify")
        w.add_argument("--background", action="store_true",
                       help="detach; see 'drivesync status', wait with 'drivesync flush'")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        add_connection_flags(p)
        p.set_defaults(func=run_push)
    elif name == "status":
        p = sub.add_parser("status", help="what background watchers have queued, in flight and done")
        p.add_argument("--json", action="store_true", help="print the raw status")
        p.set_defaults(func=run_status)
    elif name == "flush":
        p = sub.add_parser("flush", help="wait until background watchers have put everything complete on Drive")
        p.add_argument("local", metavar="LOCAL", nargs="?", help="only the watcher of this folder")
        p.add_argument("--timeout", type=positive_float, help="give up after this many seconds")
        p.set_defaults(func=run_flush)


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
    return _watch(args)


def _connection(args) -> dict:
    from ..config import from_environment

    return dict(credentials=args.credentials, impersonate=args.impersonate, api_url=args.api_url,
                transfers=args.transfers, chunk_size=args.chunk_size,
                settings=from_environment(give_up_after=args.give_up_after))


def _push_once(args) -> int:
    from ..pusher import PushFailed, push

    close, subscribers = _progress_subscriber(not args.no_progress and sys.stderr.isatty())
    started = time.monotonic()
    try:
        result = push(args.local, args.remote, exclude=args.exclude, delete=args.delete, subscribers=subscribers,
                      **_connection(args))
    except PushFailed as exc:
        if close:
            close()
        print(exc.result.summary())
        for path, error in exc.result.failed[:20]:
            print(f"failed: {path}: {error}", file=sys.stderr)
        raise
    if close:
        close()
    print(f"{result.summary()} in {time.monotonic() - started:.1f} s")
    return 0


def _watch(args) -> int:
    from .. import daemon
    from ..completion import DEFAULT_SETTLE_S
    from ..watcher import Watcher, WatchOptions

    if args.background:
        argv = _rebuild_argv(args)
        info = daemon.start_background(args.local, argv)
        print(f"watching {os.path.abspath(args.local)} in the background (pid {info.pid}); "
              f"log: {info.directory / 'log'}; 'drivesync status' shows progress, 'drivesync flush' waits")
        return 0
    options = WatchOptions(settle=args.settle or DEFAULT_SETTLE_S, complete_marker=args.complete_marker,
                           exclude=tuple(args.exclude), delete=args.delete, keep_last=args.keep_last, poll=args.poll)
    directory = daemon.watch_dir(args.local)
    watcher = Watcher(args.local, args.remote, options=options, status_path=str(directory / "status.json"),
                      **_connection(args))
    watcher.start()
    print(f"watching {watcher.local} -> {watcher.remote or 'My Drive'} ({watcher.observer_kind}); "
          "Ctrl-C flushes and stops", file=sys.stderr, flush=True)
    return daemon.serve_foreground(watcher, directory)


def _rebuild_argv(args) -> list[str]:
    argv = ["push", os.path.abspath(args.local)] + ([args.remote] if args.remote else []) + ["--watch"]
    for flag in ("settle", "complete_marker", "keep_last", "transfers", "chunk_size", "api_url", "credentials",
                 "impersonate", "give_up_after"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    for pattern in args.exclude:
        argv += ["--exclude", pattern]
    for flag in ("delete", "poll"):
        if getattr(args, flag):
            argv.append(f"--{flag}")
    return argv


def _fmt_status(info) -> str:
    s = info.status
    state = "running" if info.alive else "stopped"
    if not s:
        return f"{info.directory.name}: pid {info.pid} {state} (no status yet)"
    lines = [f"{s.get('local')} -> {s.get('remote') or 'My Drive'}: {state} (pid {info.pid}, {s.get('observer')})"]
    queued, flight, settling = s.get("queued", []), s.get("in_flight", []), s.get("settling", [])
    lines.append(f"  queued {len(queued)}, in flight {len(flight)}, settling {len(settling)}, "
                 f"done {s.get('done', 0)} ({s.get('done_bytes', 0) / 1e6:.1f} MB), failed {len(s.get('failed', {}))}")
    if flight:
        lines.append("  in flight: " + ", ".join(flight[:5]) + (" ..." if len(flight) > 5 else ""))
    if queued:
        lines.append("  queued: " + ", ".join(queued[:5]) + (" ..." if len(queued) > 5 else ""))
    lines.append(f"  behind by {s.get('behind_s', 0):.1f} s"
                 + (f"; upload lag median {s['lag_median_s']:.1f} s, worst {s['lag_max_s']:.1f} s"
                    if s.get("lag_median_s") is not None else ""))
    for path, error in list(s.get("failed", {}).items())[:5]:
        lines.append(f"  failed: {path}: {error}")
    return "\n".join(lines)


def run_status(args) -> int:
    import json

    from .. import daemon

    infos = daemon.watchers()
    if args.json:
        print(json.dumps([{"pid": i.pid, "alive": i.alive, **i.status} for i in infos], indent=2))
        return 0
    if not infos:
        print("no watchers (start one with 'drivesync push --watch LOCAL --background')")
        return 0
    for info in infos:
        print(_fmt_status(info))
    return 0


def run_flush(args) -> int:
    from .. import daemon
    from ..errors import UsageError

    infos = [i for i in daemon.watchers() if i.alive]
    if args.local:
        wanted = daemon.watch_dir(args.local)
        infos = [i for i in infos if i.directory == wanted]
        if not infos:
            raise UsageError(f"no running watcher for {args.local}")
    if not infos:
        print("no running watchers: nothing to flush")
        return 0
    failed = 0
    for info in infos:
        status = daemon.request_flush(info, timeout=args.timeout)
        failed += len(status.get("failed", {}))
        print(f"flushed {status.get('local')}: {status.get('done', 0)} uploads done, "
              f"{len(status.get('failed', {}))} failed")
    return 1 if failed else 0
