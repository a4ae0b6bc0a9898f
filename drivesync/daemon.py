"""Background watchers: detach ``push --watch``, and find, flush and stop it later.

Each watched folder has a directory ``state_dir()/watch/<key>/`` holding ``pid``, ``log`` and
``status.json`` (written by the watcher every second, atomically), and ``flush.request`` (a token the
``flush`` command writes before sending SIGUSR1; the watcher answers by copying the token into its
status once everything complete so far is on Drive). This module owns those files, the detaching and
the signal handling of a foreground watcher; it never uploads anything itself.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import DrivesyncError, UsageError
from .state import state_dir


def watch_dir(local: str) -> Path:
    key = hashlib.sha1(os.path.abspath(local).encode()).hexdigest()[:12]
    path = state_dir() / "watch" / key
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@dataclass
class WatcherInfo:
    directory: Path
    pid: int | None
    alive: bool
    status: dict


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_status(directory: Path) -> dict:
    try:
        return json.loads((directory / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def watchers() -> list[WatcherInfo]:
    root = state_dir() / "watch"
    out = []
    if not root.is_dir():
        return out
    for directory in sorted(root.iterdir()):
        try:
            pid = int((directory / "pid").read_text().strip())
        except (OSError, ValueError):
            pid = None
        out.append(WatcherInfo(directory, pid, _alive(pid), read_status(directory)))
    return out


def start_background(local: str, argv: list[str], *, wait_s: float = 30.0) -> WatcherInfo:
    """Start ``drivesync <argv>`` (a foreground ``push --watch``) detached; return once it is watching."""
    directory = watch_dir(local)
    for info in watchers():
        if info.directory == directory and info.alive:
            raise UsageError(f"a watcher for {local} is already running (pid {info.pid}); "
                             "'drivesync flush' then kill it to restart")
    for name in ("status.json", "flush.request"):
        (directory / name).unlink(missing_ok=True)
    log_path = directory / "log"
    log = open(log_path, "ab", buffering=0)
    os.chmod(log_path, 0o600)
    code = "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                            env={**os.environ, "DRIVESYNC_WATCH_DIR": str(directory)})
    log.close()
    (directory / "pid").write_text(str(proc.pid))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise DrivesyncError(f"the background watcher exited at once: {tail[0]} (log: {log_path})")
        if read_status(directory).get("running"):
            return WatcherInfo(directory, proc.pid, True, read_status(directory))
        time.sleep(0.1)
    return WatcherInfo(directory, proc.pid, True, {})


def request_flush(info: WatcherInfo, *, timeout: float | None = None) -> dict:
    """Ask a running watcher to flush and wait until it says everything complete so far is on Drive."""
    token = secrets.token_hex(8)
    request = info.directory / "flush.request"
    tmp = request.with_suffix(".tmp")
    tmp.write_text(token)
    os.replace(tmp, request)
    os.kill(info.pid, signal.SIGUSR1)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = read_status(info.directory)
        if status.get("flushed_token") == token:
            return status
        if not _alive(info.pid):
            raise DrivesyncError(f"the watcher (pid {info.pid}) exited before the flush finished; "
                                 f"see {info.directory / 'log'}")
        if deadline is not None and time.monotonic() > deadline:
            raise DrivesyncError(f"flush did not finish within {timeout:.0f} s; still behind: "
                                 f"{len(status.get('queued', [])) + len(status.get('in_flight', []))} item(s)")
        time.sleep(0.1)


def serve_foreground(watcher, directory: Path | None) -> int:
    """Run a started Watcher until SIGTERM/SIGINT (flush, then exit); SIGUSR1 = flush now."""
    stop = threading.Event()
    flush_wanted = threading.Event()

    def on_stop(signum, frame):
        stop.set()

    def on_flush(signum, frame):
        flush_wanted.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, on_flush)
    if directory is not None:
        (directory / "pid").write_text(str(os.getpid()))
    try:
        while not stop.is_set():
            if flush_wanted.wait(0.2):
                flush_wanted.clear()
                token = ""
                if directory is not None:
                    try:
                        token = (directory / "flush.request").read_text().strip()
                    except OSError:
                        token = ""
                watcher.flush()
                watcher.flushed_token = token
                watcher._write_status()
            if watcher._thread is not None and not watcher._thread.is_alive():
                print("drivesync: the watcher stopped unexpectedly", file=sys.stderr)
                return 1
    finally:
        summary = watcher.stop(flush=True)
    failed = (summary or {}).get("failed") or {}
    print(f"drivesync: watcher stopped after flushing: {(summary or {}).get('done', 0)} uploads, "
          f"{len(failed)} failed", file=sys.stderr)
    return 1 if failed else 0
