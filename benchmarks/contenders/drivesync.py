"""drivesync: the `drivesync pull` / `drivesync push` CLI as a child process.

Runs ``drivesync.cli.main`` from this checkout, with a fresh ``DRIVESYNC_STATE_DIR`` per run
(so nothing is skipped as already synced) and the emulator's authorized-user credentials.
It reaches the emulator as rclone does: with the "tls" transport (the default) it talks to its
default https://www.googleapis.com through the emulator's TLS proxy, by ``HTTPS_PROXY`` and the CA
bundle variables, as a user behind a corporate proxy would; with "plain" it uses ``--api-url``.
No tuning flags but the pacing budget every contender gets (``DRIVESYNC_TPS`` and its burst, see
base.pacing_budget; on drive-like that is drivesync's default 195/s, burst 20, and with no quota
pacing is off).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .base import Child, Contender, Measured, RunContext, clean_env, compile_bytecode, pacing_budget

#: --tps for "pacing off" (the CLI needs a positive rate).
UNPACED_TPS = 1_000_000

REPO = Path(__file__).resolve().parents[2]
#: The CLI entry point, run from this checkout (drivesync.cli is a package without __main__).
CLI = [sys.executable, "-c", "from drivesync.cli import run; run()"]


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
    label = "drivesync (defaults, shared pacing)"

    def __init__(self) -> None:
        self._helps: dict[str, str | None] = {}

    def help(self, command: str) -> str | None:
        if not self._helps:
            compile_bytecode(REPO)      # before the first command: every row starts as an installed one
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
        for name in ("NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            env.pop(name, None)
        if ctx.emu.transport == "tls":
            if not ctx.emu.proxy_url or not ctx.emu.ca_cert_path:
                raise RuntimeError("the emulator was started without its proxy")
            env["HTTPS_PROXY"] = ctx.emu.proxy_url
            env["NO_PROXY"] = "127.0.0.1,localhost,::1"  # the token endpoint: the emulator's plain port, as rclone's
            for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
                env[name] = ctx.emu.ca_cert_path
        # The pacing budget through the settings' environment variables (push has no --tps flag).
        budget = pacing_budget(dict(ctx.emu.profile))
        env["DRIVESYNC_TPS"] = f"{budget[0]:g}" if budget else str(UNPACED_TPS)
        env["DRIVESYNC_TPS_BURST"] = str(budget[1] if budget else 1000)
        return env

    def _common(self, ctx: RunContext) -> list[str]:
        where = [] if ctx.emu.transport == "tls" else ["--api-url", ctx.emu.url]
        return [*where, "--credentials", ctx.emu.credentials_path]

    def pull_argv(self, ctx: RunContext, dest: Path) -> list[str]:
        return [*CLI, "pull", ctx.remote_root + "/", str(dest), *self._common(ctx)]

    def push_argv(self, ctx: RunContext, src: Path) -> list[str]:
        return [*CLI, "push", str(src), ctx.remote_root + "/", *self._common(ctx)]

    def pull(self, ctx: RunContext, dest: Path) -> Measured:
        return Child(self.pull_argv(ctx, dest), env=self._env(ctx), cwd=str(REPO), log=ctx.log).wait(ctx.timeout)

    def push(self, ctx: RunContext, src: Path) -> Measured:
        return Child(self.push_argv(ctx, src), env=self._env(ctx), cwd=str(REPO), log=ctx.log).wait(ctx.timeout)
