"""Real rclone against the emulator, as the rclone conformance tests run it: the marks that skip them without
rclone on PATH, fail-fast flags, and `Rclone`, one config (benchmarks/rclone_setup.py writes it) with its
own HOME, called like the command and failing the test with rclone's stderr."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from rclone_setup import rclone_args, write_rclone_config  # noqa: E402

MARKS = [
    pytest.mark.rclone,
    pytest.mark.skipif(
        shutil.which("rclone") is None,
        reason="rclone is not on PATH (Debian: apt-get install rclone fuse3; .ci/run does this)",
    ),
]

# Fail fast: a fidelity gap should fail the command, not make rclone retry for minutes.
FAST = ("--retries", "1", "--low-level-retries", "2", "--contimeout", "10s", "--timeout", "30s")


class Rclone:
    def __init__(self, emu, workdir: Path) -> None:
        self.emu = emu
        self.ca = emu.ca_cert_path
        self.env = write_rclone_config(
            workdir / "rclone.conf",
            emulator_token_uri=emu.token_uri,
            credentials_json_path=emu.credentials_path,
            proxy_url=emu.proxy_url,
            ca_cert_path=emu.ca_cert_path,
        )
        self.env["HOME"] = str(workdir)  # rclone's cache dir and such stay in tmp

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        argv = rclone_args(*FAST, *args, ca_cert_path=self.ca)
        p = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            pytest.fail(
                f"rclone {' '.join(args)} -> exit {p.returncode}\n--- stderr (tail) ---\n{p.stderr[-4000:]}"
            )
        return p

    @property
    def version(self) -> tuple[int, ...]:
        """(1, 60, 1) for 'rclone v1.60.1-DEV': flags differ between the releases a user may have."""
        first = subprocess.run(["rclone", "version"], capture_output=True, text=True, timeout=30).stdout.split("\n")[0]
        digits = first.split(" v", 1)[-1].split("-")[0].split(".")
        return tuple(int(d) for d in digits if d.isdigit())

    def lsjson(self, *args: str) -> list[dict]:
        return json.loads(self("lsjson", *args).stdout)


__all__ = ["FAST", "MARKS", "Rclone", "rclone_args", "write_rclone_config"]
