"""push --watch --background: detach, status, flush, and SIGTERM (flush, then exit), as a user runs them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from test_push import local_tree, tree

Emulator = pytest.importorskip("drivesync.emulator.testing").Emulator

CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]


def run(args, env, timeout=60):
    return subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=timeout)


def test_background_status_flush_and_sigterm(tmp_path):
    root = tmp_path / "ckpt"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "DRIVESYNC_"))}
    env["DRIVESYNC_STATE_DIR"] = str(tmp_path / "state")
    with Emulator(tmp_path / "emu") as emu:
        r = run(["push", str(root), "run/bg", "--watch", "--background", "--settle", "60", "--api-url", emu.url,
                 "--credentials", emu.credentials_path, "--chunk-size", "256K"], env)
        assert r.returncode == 0, r.stderr
        assert "background" in r.stdout
        pid_file = next((tmp_path / "state" / "watch").iterdir()) / "pid"
        pid = int(pid_file.read_text())
        try:
            with open(root / "epoch=1.ckpt", "wb") as fh:       # closed: complete at once
                fh.write(os.urandom(300_000))
            with open(root / "metrics.csv", "w") as fh:         # never closed before flush: settle is 60 s
                fh.write("step,loss\n1,0.5\n")
                fh.flush()
                s = run(["status"], env)
                assert s.returncode == 0 and "running" in s.stdout, s.stdout + s.stderr
                # flush: everything complete so far (and what is still settling) is on Drive.
                f = run(["flush", "--timeout", "30"], env)
                assert f.returncode == 0, f.stdout + f.stderr
                assert tree(emu, emu.path_id("run/bg")) == local_tree(root)
            (root / "last.ckpt").write_bytes(os.urandom(2_000_000))
        finally:
            os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the watcher did not exit after SIGTERM")
        assert tree(emu, emu.path_id("run/bg")) == local_tree(root)
        s = run(["status"], env)
        assert "stopped" in s.stdout
        assert "Traceback" not in (pid_file.parent / "log").read_text()
