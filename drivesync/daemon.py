"""Background watchers: detach ``push --watch``, and find, flush and stop it later.

Each watched folder has a directory ``state_dir()/watch/<key>/`` holding ``pid``, ``log`` and
``status.json`` (written by the watcher every second, atomically), and ``flush.request`` (a token the
``flush`` command writes before sending SIGUSR1; the watcher answers by copying the token into its
status once everything complete so far is on Drive). This module owns those files, the detaching and
the signal handling of a foreground watcher; it never uploads anything itself.

Identity: the ``pid`` file is JSON written by the watcher process itself: its pid, the start time of
that process (``/proc/<pid>/stat`` field 22) and a random token that the watcher also writes into every
status file. ``flush`` and ``stop`` signal a pid only when the process still has that start time and
its status carries that token: a pid the kernel has handed to another process since (the trainer,
say: SIGUSR1 terminates by default) is never signalled. Where Linux allows, the check and the signal
go through one pidfd, so the process cannot change between them. A clean exit removes the pid file;
a pid file whose process is gone is stale and is pruned (the log is kept).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DrivesyncError, UsageError
from .state import state_dir

#: Without /proc, a status file older than this does not prove its writer is alive (it writes every second).
STATUS_FRESH_S = 30.0


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
    token: str = ""
    start_time: str | None = None
    why_stale: str = ""            # for a stale entry: one clause saying why it is not our watcher
    local: str = field(default="")

    @property
    def name(self) -> str:
        return self.status.get("local") or self.local or self.directory.name


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
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot): with the pid, it names one process. None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None


def read_status(directory: Path) -> dict:
    try:
        return json.loads((directory / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _read_pid_file(directory: Path) -> dict | None:
    try:
        text = (directory / "pid").read_text().strip()
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, int):
        return {"pid": data}         # an old plain pid file: no identity to check, so never signalled
    if not isinstance(data, dict):
        return {"pid": None}
    return data


def write_pid_file(directory: Path) -> str:
    """Called by the watcher process itself: records who it is; returns the token its status must carry."""
    token = secrets.token_hex(16)
    pid = os.getpid()
    data = {"pid": pid, "token": token, "start_time": process_start_time(pid), "argv": sys.argv[1:]}
    tmp = directory / "pid.tmp"
    tmp.write_text(json.dumps(data))
    os.replace(tmp, directory / "pid")
    return token


def remove_pid_file(directory: Path, token: str) -> None:
    """On a clean exit: remove the pid file if it is still ours."""
    data = _read_pid_file(directory) or {}
    if data.get("token") == token:
        with contextlib.suppress(OSError):
            (directory / "pid").unlink()


def _identify(directory: Path) -> WatcherInfo | None:
    data = _read_pid_file(directory)
    if data is None:
        return None
    status = read_status(directory)
    pid = data.get("pid") if isinstance(data.get("pid"), int) else None
    info = WatcherInfo(directory, pid, False, status, token=str(data.get("token") or ""),
                       start_time=data.get("start_time"), local=str(status.get("local") or ""))
    info.why_stale = _why_not_ours(info)
    info.alive = not info.why_stale
    return info


def _why_not_ours(info: WatcherInfo) -> str:
    """'' when ``info.pid`` is provably the watcher that wrote the files; else why not, as a clause."""
    pid = info.pid
    if not pid:
        return "its pid file is unreadable"
    if not _alive(pid):
        return f"pid {pid} is not running"
    if not info.token:
        return f"pid {pid} is running but its pid file does not say which process it was (an old format)"
    now = process_start_time(pid)
    if info.start_time is not None or now is not None:
        if now != info.start_time:
            return f"pid {pid} is now another process (its start time differs)"
    status = read_status(info.directory)
    info.status = status or info.status
    if status.get("token") != info.token or status.get("pid") != pid:
        return f"pid {pid} is running but the status file is not its own"
    if now is None and time.time() - float(status.get("updated_at") or 0) > STATUS_FRESH_S:
        return f"pid {pid} is running but has not written its status for {STATUS_FRESH_S:.0f} s"
    return ""


def scan() -> tuple[list[WatcherInfo], list[WatcherInfo]]:
    """(live watchers, stale entries): every directory with a pid file, checked to be our watcher."""
    root = state_dir() / "watch"
    live, stale = [], []
    if not root.is_dir():
        return live, stale
    for directory in sorted(root.iterdir()):
        if not directory.is_dir():
            continue
        info = _identify(directory)
        if info is None:
            continue
        (live if info.alive else stale).append(info)
    return live, stale


def prune(info: WatcherInfo) -> None:
    """Forget a stale entry: its pid, status and request files go, its log stays."""
    for name in ("pid", "status.json", "flush.request", "status.json.tmp", "pid.tmp"):
        with contextlib.suppress(OSError):
            (info.directory / name).unlink()


def stale_line(info: WatcherInfo) -> str:
    """One line: which entry, why it is not our watcher, that nothing was signalled, what happened to it."""
    gone = info.status.get("running") is True and not (info.pid and process_start_time(info.pid) == info.start_time)
    return (f"stale watcher entry for {info.name}: {info.why_stale}; not signalling it; "
            + ("the watcher ended without stopping cleanly, so what it had not uploaded may be missing; "
               if gone else "")
            + f"entry removed (log kept: {info.directory / 'log'})")


def watchers() -> list[WatcherInfo]:
    """Live watchers only (stale entries are left alone here; ``scan`` and ``prune`` handle them)."""
    return scan()[0]


def find(local: str | None, live: list[WatcherInfo], stale: list[WatcherInfo]):
    """The entries for ``local`` (its folder's directory), or all of them when ``local`` is None."""
    if local is None:
        return live, stale
    wanted = watch_dir(local)
    return [i for i in live if i.directory == wanted], [i for i in stale if i.directory == wanted]


def start_background(local: str, argv: list[str], *, wait_s: float = 30.0) -> WatcherInfo:
    """Start ``drivesync <argv>`` (a foreground ``push --watch``) detached; return once it is watching."""
    directory = watch_dir(local)
    live, stale = find(local, *scan())
    if live:
        raise UsageError(f"a watcher for {local} is already running (pid {live[0].pid}); "
                         f"'drivesync stop {local}' stops it (after flushing)")
    for info in stale:
        prune(info)
    for name in ("status.json", "flush.request"):
        (directory / name).unlink(missing_ok=True)
    log_path = directory / "log"
    log = open(log_path, "ab", buffering=0)
    os.chmod(log_path, 0o600)
    code = "from drivesync.cli import run; run()"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                            env={**os.environ, "DRIVESYNC_WATCH_DIR": str(directory)})
    log.close()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise DrivesyncError(f"the background watcher exited at once: {tail[0]} (log: {log_path})")
        info = _identify(directory)
        if info is not None and info.alive and info.pid == proc.pid and info.status.get("running"):
            return info
        time.sleep(0.1)
    return WatcherInfo(directory, proc.pid, True, read_status(directory))


@contextlib.contextmanager
def _pinned(info: WatcherInfo):
    """Yields a function sending a signal to ``info.pid`` if (checked now) it is still our watcher, else
    raising DrivesyncError. With a pidfd the check and the signal name the same process for sure."""
    pidfd = None
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(info.pid)

    def send(signum: int) -> None:
        why = _why_not_ours(info)
        if why:
            raise NotOurs(info, why)
        try:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signum)
            else:
                os.kill(info.pid, signum)
        except ProcessLookupError:
            raise NotOurs(info, f"pid {info.pid} exited just now") from None

    try:
        yield send
    finally:
        if pidfd is not None:
            os.close(pidfd)


class NotOurs(DrivesyncError):
    def __init__(self, info: WatcherInfo, why: str):
        info.why_stale = why
        super().__init__(stale_line(info))
        self.info = info


def request_flush(info: WatcherInfo, *, timeout: float | None = None) -> dict:
    """Ask a running watcher to flush and wait until it says everything complete so far is on Drive."""
    token = secrets.token_hex(8)
    request = info.directory / "flush.request"
    tmp = request.with_suffix(".tmp")
    tmp.write_text(token)
    os.replace(tmp, request)
    with _pinned(info) as send:
        send(signal.SIGUSR1)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = read_status(info.directory)
        if status.get("flushed_token") == token:
            return status
        if not _alive(info.pid) or process_start_time(info.pid) != info.start_time:
            raise DrivesyncError(f"the watcher (pid {info.pid}) exited before the flush finished; "
                                 f"see {info.directory / 'log'}")
        if deadline is not None and time.monotonic() > deadline:
            raise DrivesyncError(f"flush did not finish within {timeout:.0f} s; still behind: "
                                 f"{len(status.get('queued', [])) + len(status.get('in_flight', []))} item(s)")
        time.sleep(0.1)


def request_stop(info: WatcherInfo, *, timeout: float | None = None) -> dict:
    """SIGTERM a running watcher (it flushes, then exits) and wait for it to exit; returns its final status."""
    with _pinned(info) as send:
        send(signal.SIGTERM)
    deadline = None if timeout is None else time.monotonic() + timeout
    while _alive(info.pid) and process_start_time(info.pid) == info.start_time:
        if deadline is not None and time.monotonic() > deadline:
            status = read_status(info.directory)
            raise DrivesyncError(f"the watcher (pid {info.pid}) is still flushing after {timeout:.0f} s "
                                 f"({len(status.get('queued', [])) + len(status.get('in_flight', []))} item(s) "
                                 "behind); it exits once done")
        time.sleep(0.1)
    status = read_status(info.directory)
    if status.get("running", True) and status.get("token") == info.token:
        raise DrivesyncError(f"the watcher (pid {info.pid}) exited without finishing its flush; "
                             f"see {info.directory / 'log'}")
    return status


class Signals:
    """SIGTERM/SIGINT -> ``stop``, SIGUSR1 -> ``flush``. Installed before the pid file names this process,
    so that a flush request can never meet SIGUSR1's default action (terminate). Until ``serving`` (the
    watcher has started), SIGTERM/SIGINT interrupt as usual: a start stuck on an unreachable Drive can be
    stopped."""

    def __init__(self):
        self.stop = threading.Event()
        self.flush = threading.Event()
        self.serving = False
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGUSR1, lambda signum, frame: self.flush.set())

    def _on_stop(self, signum, frame):
        if not self.serving or (signum == signal.SIGINT and self.stop.is_set()):
            raise KeyboardInterrupt      # before the start, or a second Ctrl-C: do not wait for the flush
        self.stop.set()


def serve_foreground(watcher, directory: Path | None, token: str = "", signals: Signals | None = None) -> int:
    """Run a started Watcher until SIGTERM/SIGINT (flush, then exit); SIGUSR1 = flush now."""
    signals = signals or Signals()
    signals.serving = True
    stop, flush_wanted = signals.stop, signals.flush
    if directory is not None and not token:
        token = write_pid_file(directory)
        watcher.token = token
    failed_hard = False
    try:
        while not stop.is_set():
            if flush_wanted.wait(0.2):
                flush_wanted.clear()
                request = ""
                if directory is not None:
                    try:
                        request = (directory / "flush.request").read_text().strip()
                    except OSError:
                        request = ""
                watcher.flush()
                watcher.flushed_token = request
                watcher._write_status()
            if watcher._thread is not None and not watcher._thread.is_alive():
                print("drivesync: the watcher stopped unexpectedly", file=sys.stderr)
                failed_hard = True
                return 1
    finally:
        summary = watcher.stop(flush=True)
        if directory is not None and token and not failed_hard:
            remove_pid_file(directory, token)
    failed = (summary or {}).get("failed") or {}
    print(f"drivesync: watcher stopped after flushing: {(summary or {}).get('done', 0)} uploads, "
          f"{len(failed)} failed", file=sys.stderr, flush=True)
    return 1 if failed else 0
