"""What every contender shares: the run context, and measuring a child process.

A contender is a way a user could stage the data (drivesync, rclone, a FUSE mount, the official
client). Each one runs as child processes so its CPU time and peak memory are its own:
`os.wait4` hands back the child's rusage (user+sys), which on Linux also includes the descendants
that child waited for. Peak memory needs care: a child's ru_maxrss also counts the memory of the
process it was forked from (Linux keeps the old mm's high-water mark across exec), so measured
straight from here every contender would "use" the harness's own RSS. So the command runs under
GNU time (`/usr/bin/time -f %M`, a ~2 MiB process), whose report is the command's own peak; where
GNU time is missing, under a tiny `python -S` launcher that forks, execs and reports its child's
ru_maxrss the same way (then the figure may include up to ~10 MiB of the launcher's own pages).
Never imports the drivesync client or the emulator.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence


@dataclass
class Measured:
    """One or more child processes, measured: wall seconds, CPU seconds, peak RSS (KiB)."""

    wall_s: float
    cpu_s: float
    maxrss_kib: int
    returncode: int | None
    timed_out: bool = False
    tail: str = ""

    def plus(self, other: "Measured") -> "Measured":
        """Two processes that ran side by side (e.g. `rclone mount` and `cp`): wall is the caller's."""
        return Measured(
            wall_s=self.wall_s,
            cpu_s=self.cpu_s + other.cpu_s,
            maxrss_kib=max(self.maxrss_kib, other.maxrss_kib),
            returncode=self.returncode if self.returncode else other.returncode,
            timed_out=self.timed_out or other.timed_out,
            tail=(self.tail + "\n" + other.tail).strip(),
        )


def _tail(path: Path, limit: int = 1500) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace").strip()


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else shutil.which("gtime")


def _read_gnu_time(path: str) -> int | None:
    """The %M (peak RSS, KiB) that GNU time wrote; its file may start with 'Command exited ...'."""
    try:
        lines = Path(path).read_text().split()
    except OSError:
        return None
    for word in reversed(lines):
        if word.isdigit():
            return int(word)
    return None


#: Fallback for GNU time: fork, exec argv[2:], write the child's ru_maxrss (KiB) to argv[1], pass on its status.
_LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(ru.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def _measuring_argv(rss_file: str, argv: list[str]) -> list[str]:
    if GNU_TIME:
        return [GNU_TIME, "-f", "%M", "-o", rss_file, *argv]
    return [sys.executable, "-S", "-c", _LAUNCHER, rss_file, *argv]


def _exit_fd(pid: int) -> int | None:
    """A descriptor that turns readable when process ``pid`` exits (Linux 5.3+ pidfd), or None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class Child:
    """A child process we can measure with wait4 (its own session, so a timeout kills its whole group)."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
                 log: Path | None = None):
        self.argv = list(argv)
        self.log = log
        fd, self.rss_file = tempfile.mkstemp(prefix="bench-rss-")
        os.close(fd)
        run_argv = _measuring_argv(self.rss_file, self.argv)
        out = open(log, "ab") if log else subprocess.DEVNULL
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(run_argv, env=dict(env) if env is not None else None, cwd=cwd,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        finally:
            if log:
                out.close()
        self.result: Measured | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> Measured | None:
        """The measurement if the child has exited (reaping it), else None."""
        if self.result is not None:
            return self.result
        pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return None
        return self._done(status, ru, timed_out=False)

    def _done(self, status: int, ru: Any, *, timed_out: bool) -> Measured:
        rc = os.waitstatus_to_exitcode(status)
        self.proc.returncode = rc  # tell Popen it is reaped
        peak = _read_gnu_time(self.rss_file) or 0  # none if the measurer itself was killed
        try:
            os.unlink(self.rss_file)
        except OSError:
            pass
        self.result = Measured(
            wall_s=time.monotonic() - self.started,
            cpu_s=ru.ru_utime + ru.ru_stime,
            maxrss_kib=int(peak),
            returncode=rc,
            timed_out=timed_out,
            tail=_tail(self.log) if self.log else "",
        )
        return self.result

    def wait(self, timeout: float | None, *, from_start: bool = True) -> Measured:
        """Wait for exit; past `timeout` seconds (counted from the start, or from now) kill the group
        and mark it timed out.

        The wait wakes when the child exits, not at the next poll: on Linux it blocks on a pidfd
        (readable at the exit). Polling every 50 ms, as this did, put every wall time on a 50 ms grid,
        0-50 ms late (a tiny pull read 0.680 s or 0.730 s and nothing between), which is 0.5 % of an
        11 s row and as much as the gaps the report compares. Elsewhere: polling, 5 ms at first, 50 ms later."""
        origin = self.started if from_start else time.monotonic()
        deadline = None if timeout is None else origin + timeout
        exit_fd = _exit_fd(self.proc.pid)
        delay = 0.005
        try:
            while True:
                got = self.poll()
                if got is not None:
                    return got
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    wall = now - self.started
                    self.kill()
                    m = self.result
                    assert m is not None
                    m.timed_out = True
                    m.wall_s = wall
                    return m
                if exit_fd is not None:
                    select.select([exit_fd], [], [], None if deadline is None else deadline - now)
                else:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
        finally:
            if exit_fd is not None:
                os.close(exit_fd)

    def kill(self, grace: float = 5.0) -> Measured:
        """SIGTERM the command (its measurer, the group leader, stays to report the peak RSS), then SIGKILL all."""
        if self.result is not None:
            return self.result
        steps = [(None, grace), (signal.SIGTERM, grace), (signal.SIGKILL, 30.0)]
        for sig, wait_s in steps:
            try:
                if sig is None:
                    for pid in _group_members(self.proc.pid):
                        if pid != self.proc.pid:
                            os.kill(pid, signal.SIGTERM)
                else:
                    os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            end = time.monotonic() + wait_s
            while time.monotonic() < end:
                got = self.poll()
                if got is not None:
                    return got
                time.sleep(0.05)
        pid, status, ru = os.wait4(self.proc.pid, 0)
        return self._done(status, ru, timed_out=False)


def _group_members(pgid: int) -> list[int]:
    """Processes in process group `pgid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


def run_measured(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None,
                 cwd: str | None = None, log: Path | None = None) -> Measured:
    return Child(argv, env=env, cwd=cwd, log=log).wait(timeout)


def compile_bytecode(tree: str | os.PathLike) -> None:
    """Write the bytecode of ``tree``'s drivesync package, as ``pip install`` does for an installed package,
    so a timed command does not compile its own modules first. An editable checkout only gets it when the
    first import may write it, and a machine with PYTHONDONTWRITEBYTECODE=1 (this one) never does: every
    drivesync row then compiled 25 modules before its first request (30-60 ms of each start-up, measured
    with benchmarks/profile_pull.py --files 1)."""
    import compileall

    compileall.compile_dir(str(Path(tree) / "drivesync"), quiet=1)


def clean_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without proxy settings (the emulator's plain port is reached directly)."""
    env = dict(os.environ if base is None else base)
    for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    return env


#: The burst every paced contender gets (drivesync's default --tps burst; well inside the quota's 100).
PACE_BURST = 20
#: The share of the profile's request quota every paced contender may use (200/s -> 195/s: drivesync's
#: default, measured free of 403 storms on drive-like).
PACE_SHARE = 0.975


def pacing_budget(profile: Mapping[str, Any]) -> tuple[float, int] | None:
    """(requests per second, burst) that every tuned contender is held to under `profile`, or None
    when the profile has no request quota (then every contender's pacing is off)."""
    rps = profile.get("requests_per_s")
    if not rps:
        return None
    return round(PACE_SHARE * float(rps), 3), PACE_BURST


def describe_budget(budget: tuple[float, int] | None) -> str:
    return "pacing off" if budget is None else f"{budget[0]:g}/s, burst {budget[1]}"


@dataclass
class Emu:
    """What a contender needs to know about the running emulator (no emulator import).

    `transport`: "tls" (every contender reaches https://www.googleapis.com through the TLS proxy at
    `proxy_url`, trusting `ca_cert_path`) or "plain" (the emulator's plain port at `url`; only tools
    with a base-URL option can run)."""

    url: str
    token_uri: str
    credentials_path: str
    proxy_url: str | None = None
    ca_cert_path: str | None = None
    profile: Mapping[str, Any] = field(default_factory=dict)
    transport: str = "tls"


@dataclass
class RunContext:
    emu: Emu
    work: Path          # scratch directory for this contender's run (configs, logs, state)
    timeout: float      # seconds
    remote_root: str    # the Drive folder under My Drive: pulled from, or pushed into
    profile_name: str

    @property
    def log(self) -> Path:
        return self.work / "contender.log"


class Contender:
    """A way to stage data. Subclasses set name/label and implement pull and/or push."""

    name = "?"
    label = "?"
    directions: tuple[str, ...] = ("pull", "push")

    def pacing(self, profile: Mapping[str, Any]) -> str:
        """What pacing this contender ran with under `profile` (shown beside its row)."""
        return describe_budget(pacing_budget(profile))

    def unavailable(self, direction: str) -> str | None:
        """None when this contender can run `direction` here, else the reason (shown in the table)."""
        if direction not in self.directions:
            return f"no {direction} mode"
        return None

    def pull(self, ctx: RunContext, dest: Path) -> Measured:  # pragma: no cover - abstract
        raise NotImplementedError

    def push(self, ctx: RunContext, src: Path) -> Measured:  # pragma: no cover - abstract
        raise NotImplementedError
