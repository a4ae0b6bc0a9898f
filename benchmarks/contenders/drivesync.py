"""drivesync with its defaults: the `drivesync pull` / `drivesync push` CLI as a child process.

Runs ``drivesync.cli.main`` from this checkout, with a fresh ``DRIVESYNC_STATE_DIR`` per run
(so nothing is skipped as already synced), pointed at the emulator's plain HTTP port with
``--api-url`` and the emulator's authorized-user credentials. No tuning flags: the defaults are
what is measured.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .base import Child, Contender, Measured, RunContext, clean_env

REPO = Path(__file__).resolve().parents[2]
#: The CLI entry point, run from this checkout (drivesync.cli is a package without __main__).
CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]


def _help(command: str) -> str | None:
    """`drivesync <command> --help`, or None when the command is not built yet."""
    try:
        got = subprocess.run([*CLI, command, "--help"], capture_output=True,
                             text=True, timeout=60, cwd=str(REPO), env=clean_env())
    except (OSError, subprocess.SubprocessError):
        return None
    return got.stdout if got.returncode == 0 else None


class Drivesync(Contender):
    name = "drivesync"
    label = "drivesync (defaults)"

    def __init__(self) -> None:
        self._helps: dict[str, str | None] = {}

    def help(self, command: str) -> str | None:
        if command not in self._helps:
            self._helps[command] = _help(command)
        return self._helps[command]

    def unavailable(self, direction: str) -> str | None:
        if self.help(direction) is None:
            return f"not available: `drivesync {direction}` is not in this checkout yet"
        return super().unavailable(direction)

    def _env(self, ctx: RunContext) -> dict[str, str]:
        env = clean_env()
        state = ctx.work / "state"
        state.mkdir(parents=True, exist_ok=True)
        env["DRIVESYNC_STATE_DIR"] = str(state)
        env["PYTHONPATH"] = str(REPO)
        env.pop("DRIVESYNC_API_URL", None)
        return env

    def _common(self, ctx: RunContext) -> list[str]:
        return ["--api-url", ctx.emu.url, "--credentials", ctx.emu.credentials_path]

    def pull_argv(self, ctx: RunContext, dest: Path) -> list[str]:
        return [*CLI, "pull", ctx.remote_root + "/", str(dest), *self._common(ctx)]

    def push_argv(self, ctx: RunContext, src: Path) -> list[str]:
        return [*CLI, "push", str(src), ctx.remote_root + "/", *self._common(ctx)]

    def pull(self, ctx: RunContext, dest: Path) -> Measured:
        return Child(self.pull_argv(ctx, dest), env=self._env(ctx), cwd=str(REPO), log=ctx.log).wait(ctx.timeout)

    def push(self, ctx: RunContext, src: Path) -> Measured:
        return Child(self.push_argv(ctx, src), env=self._env(ctx), cwd=str(REPO), log=ctx.log).wait(ctx.timeout)
