"""kill -9 in the middle of a large upload, then run again: it resumes from Drive's committed offset."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

from drivesync.state import Journal

from drivesync.emulator.testing import Emulator  # an import error fails these tests, never skips them

MiB = 1024 * 1024
CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]


def test_kill_minus_9_then_resume_resends_at_most_two_chunks(tmp_path):
    chunk = 1 * MiB
    size = 24 * MiB + 12345
    src = tmp_path / "ckpt"
    src.mkdir()
    data = os.urandom(size)
    (src / "model.pt").write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "DRIVESYNC_"))}
    env["DRIVESYNC_STATE_DIR"] = str(tmp_path / "state")
    with Emulator(tmp_path / "emu", upload_bps_per_connection=8 * MiB, upload_burst_per_connection=256 * 1024) as emu:
        args = CLI + ["push", str(src), "run/ckpt", "--api-url", emu.url, "--credentials", emu.credentials_path,
                      "--chunk-size", "1M", "--no-progress"]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while emu.stats()["bytes_received"] < 9 * MiB and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        first = emu.stats()["bytes_received"]
        assert first < size          # really killed in the middle
        with Journal(tmp_path / "state" / "journal.db") as j:
            assert j.upload_session(str(src / "model.pt")) is not None
        emu.configure(upload_bps_per_connection=None)
        r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        second = emu.stats()["bytes_received"]
        resent = first + (second - first) - size
        # Metadata bodies are a few hundred bytes; everything else re-sent is chunk data.
        print(f"re-sent {resent} bytes after kill -9 (chunk {chunk})")
        assert resent <= 2 * chunk + 64 * 1024, f"re-sent {resent} bytes"
        file_id = emu.path_id("run/ckpt/model.pt")
        assert hashlib.md5(emu.content(file_id)).hexdigest() == hashlib.md5(data).hexdigest()
        assert len(emu.children(emu.path_id("run/ckpt"))) == 1
        with Journal(tmp_path / "state" / "journal.db") as j:
            assert j.upload_session(str(src / "model.pt")) is None
