"""push --watch in the foreground and --background, as a user runs them: the durable lines (terminal and
log), status with bytes/rate/ETA, flush, stop, and never signalling a process that is not our watcher."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from test_push import local_tree, tree

from drivesync.emulator.testing import Emulator  # an import error fails these tests, never skips them

CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]
KiB, MiB = 1024, 1024 * 1024
DURABLE = re.compile(r"durable: (\S+) ([\d.]+ (?:B|KiB|MiB|GiB)) in ([\d.]+) s, ([\d.]+) s after it was complete")


def run(args, env, timeout=60):
    return subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "DRIVESYNC_"))}
    env["DRIVESYNC_STATE_DIR"] = str(tmp_path / "state")
    return env


def connection(emu):
    return ["--api-url", emu.url, "--credentials", emu.credentials_path, "--chunk-size", "256K"]


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[-1].split()[0] == "Z"


def watch_dirs(tmp_path):
    return sorted((tmp_path / "state" / "watch").iterdir())


def pid_of(directory):
    return json.loads((directory / "pid").read_text())["pid"]


def save_checkpoints(root):
    (root / "epoch=1.ckpt").write_bytes(os.urandom(300 * KiB))            # closed: complete at once
    (root / "tmp-checkpoint-5").mkdir()
    (root / "tmp-checkpoint-5" / "model.safetensors").write_bytes(os.urandom(200 * KiB))
    (root / "tmp-checkpoint-5" / "trainer_state.json").write_text('{"global_step": 5}')
    os.rename(root / "tmp-checkpoint-5", root / "checkpoint-5")           # renamed into place


def test_background_status_flush_and_stop(tmp_path, env):
    root = tmp_path / "ckpt"
    root.mkdir()
    with Emulator(tmp_path / "emu") as emu:
        r = run(["push", str(root), "run/bg", "--watch", "--background", "--settle", "60", *connection(emu)], env)
        assert r.returncode == 0, r.stderr
        assert "background" in r.stdout
        directory, = watch_dirs(tmp_path)
        pid = pid_of(directory)
        try:
            save_checkpoints(root)
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
            # stop: flushes (last.ckpt reaches Drive), then the process exits and its entry goes.
            s = run(["stop", "--timeout", "30"], env)
            assert s.returncode == 0, s.stdout + s.stderr
            assert "stopped" in s.stdout and "after flushing" in s.stdout
        finally:
            if not gone(pid):
                os.kill(pid, signal.SIGTERM)
        assert gone(pid)
        assert tree(emu, emu.path_id("run/bg")) == local_tree(root)
        assert not (directory / "pid").exists()
        s = run(["status"], env)
        assert s.returncode == 0 and "no watchers running" in s.stdout, s.stdout + s.stderr
        log = (directory / "log").read_text()
        assert "Traceback" not in log
        durable = {m.group(1): m for m in DURABLE.finditer(log)}
        assert {"epoch=1.ckpt", "checkpoint-5/", "last.ckpt"} <= set(durable), log
        assert durable["epoch=1.ckpt"].group(2) == "300.0 KiB"
        # The background log is timestamped.
        line = next(x for x in log.splitlines() if "durable: last.ckpt" in x)
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line), line
        # Stopped: nothing left to flush or stop.
        assert run(["flush"], env).stdout.startswith("no running watchers")
        assert run(["stop"], env).stdout.startswith("no running watchers")


def test_status_shows_bytes_rate_and_eta_of_an_upload_in_flight(tmp_path, env):
    root = tmp_path / "slow"
    root.mkdir()
    with Emulator(tmp_path / "emu") as emu:
        # Larger than the 8 MiB upload cutoff: a resumable upload, whose chunks report progress.
        emu.configure(upload_bps_per_connection=2 * MiB, upload_burst_per_connection=64 * KiB)
        r = run(["push", str(root), "slow", "--watch", "--background", "--settle", "60", *connection(emu)], env)
        assert r.returncode == 0, r.stderr
        directory, = watch_dirs(tmp_path)
        pid = pid_of(directory)
        try:
            (root / "big.ckpt").write_bytes(os.urandom(10 * MiB))

            def moving():
                s = json.loads(run(["status", "--json"], env).stdout)[0]
                p = s.get("progress", {}).get("big.ckpt")
                return s if p and p["bytes"] > 0 and p["rate_bps"] and p["eta_s"] and p["elapsed_s"] >= 1 else None

            s = wait_for(moving, what="bytes moving in the status")
            received = emu.stats()["bytes_received"]
            p = s["progress"]["big.ckpt"]
            assert p["total"] == 10 * MiB and 0 < p["bytes"] < 10 * MiB
            # Counted, not timed: the status claims no byte Drive has not received, its rate is its bytes
            # over its own elapsed time (a unit slip, bits or ms, is off by 8x or 1000x), and its ETA is
            # what is left at that rate. A slow machine changes the numbers, never these relations.
            assert p["bytes"] <= received, (p, received)
            assert 0.5 < p["rate_bps"] / (p["bytes"] / p["elapsed_s"]) < 2, p
            assert p["eta_s"] == pytest.approx((p["total"] - p["bytes"]) / p["rate_bps"], rel=0.01, abs=0.1), p
            text = run(["status"], env).stdout
            line = next(x for x in text.splitlines() if "in flight: big.ckpt" in x)
            assert re.search(r"[\d.]+ (KiB|MiB) / 10\.0 MiB \(\d+%\), [\d.]+ (KiB|MiB)/s, ETA \d+", line), line
            emu.configure(upload_bps_per_connection=None)
            assert run(["stop", str(root), "--timeout", "60"], env).returncode == 0
        finally:
            if not gone(pid):
                os.kill(pid, signal.SIGTERM)
        assert tree(emu, emu.path_id("slow")) == local_tree(root)


def test_stop_with_several_watchers_says_which(tmp_path, env):
    with Emulator(tmp_path / "emu") as emu:
        pids = []
        try:
            for name in ("a", "b"):
                (tmp_path / name).mkdir()
                r = run(["push", str(tmp_path / name), name, "--watch", "--background", *connection(emu)], env)
                assert r.returncode == 0, r.stderr
            pids = [pid_of(d) for d in watch_dirs(tmp_path)]
            s = run(["stop"], env)
            assert s.returncode == 2
            assert str(tmp_path / "a") in s.stderr and str(tmp_path / "b") in s.stderr and "stop LOCAL" in s.stderr
            assert not any(gone(pid) for pid in pids)
            s = run(["stop", str(tmp_path / "a")], env)
            assert s.returncode == 0, s.stderr
            assert run(["stop"], env).returncode == 0          # now only b: that one
            wait_for(lambda: all(gone(pid) for pid in pids), what="both watchers to exit")
        finally:
            for pid in pids:
                if not gone(pid):
                    os.kill(pid, signal.SIGTERM)


@pytest.mark.parametrize("pid_file", ["json", "plain"])
@pytest.mark.parametrize("command", ["flush", "stop", "status"])
def test_a_reused_pid_is_never_signalled(tmp_path, env, command, pid_file):
    """The watcher died; the kernel gave its pid to another process (here `sleep`, standing in for the
    trainer, which SIGUSR1 would kill). flush/stop/status say so in one line, signal nothing, prune it."""
    local = tmp_path / "ckpt"
    local.mkdir()
    other = subprocess.Popen(["sleep", "30"])
    try:
        env_here = {**os.environ, "DRIVESYNC_STATE_DIR": env["DRIVESYNC_STATE_DIR"]}
        directory = subprocess.run([sys.executable, "-c", "import sys; from drivesync import daemon; "
                                    "print(daemon.watch_dir(sys.argv[1]))", str(local)],
                                   env=env_here, capture_output=True, text=True, check=True).stdout.strip()
        directory = os.path.abspath(directory)
        if pid_file == "json":     # what a watcher writes, but of a process that started at another time
            (open(os.path.join(directory, "pid"), "w")
             .write(json.dumps({"pid": other.pid, "token": "ab" * 16, "start_time": "1"})))
        else:                      # an old plain pid file
            open(os.path.join(directory, "pid"), "w").write(str(other.pid))
        status = {"local": str(local), "remote": "ckpt", "pid": other.pid, "token": "ab" * 16, "running": True,
                  "updated_at": time.time(), "queued": [], "in_flight": [], "failed": {}}
        open(os.path.join(directory, "status.json"), "w").write(json.dumps(status))
        r = run([command] + ([str(local)] if command != "status" else []), env)
        assert other.poll() is None, "the unrelated process was signalled"
        assert f"pid {other.pid}" in r.stderr and "not signalling it" in r.stderr, r.stderr
        assert len([x for x in r.stderr.splitlines() if "stale" in x]) == 1, r.stderr
        assert "Traceback" not in r.stderr
        if command == "status":
            assert r.returncode == 0 and "no watchers running" in r.stdout
        else:
            assert r.returncode == 1      # it cannot promise that everything is on Drive
        assert not os.path.exists(os.path.join(directory, "pid"))       # pruned
        assert "no watchers running" in run(["status"], env).stdout
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def _foreground(emu, root, env, *flags, stderr=subprocess.PIPE):
    return subprocess.Popen(CLI + ["push", str(root), "fg", "--watch", "--settle", "0.5", *flags, *connection(emu)],
                            env=env, stderr=stderr, text=stderr is subprocess.PIPE)


def test_foreground_prints_a_line_per_durable_checkpoint(tmp_path, env):
    with Emulator(tmp_path / "emu") as emu:
        for flags in (["--no-progress"], ["-q"]):
            root = tmp_path / flags[0].strip("-")
            root.mkdir()
            proc = _foreground(emu, root, env, *flags)
            try:
                wait_for(lambda: (root.parent / "state" / "watch").is_dir() and any(
                    json.loads(open(d / "status.json").read() or "{}").get("running")
                    for d in watch_dirs(tmp_path) if (d / "status.json").exists() and (d / "pid").exists()),
                    what="the watcher to start")
                save_checkpoints(root)
                wait_for(lambda: emu_has(emu, "fg/checkpoint-5/trainer_state.json") and emu_has(emu, "fg/epoch=1.ckpt"),
                         what="the uploads")
            finally:
                proc.send_signal(signal.SIGINT)          # Ctrl-C: flush, then exit
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            lines = {m.group(1): m for m in DURABLE.finditer(err)}
            if flags == ["-q"]:
                assert not lines, err
                continue
            assert set(lines) == {"epoch=1.ckpt", "checkpoint-5/"}, err
            assert lines["checkpoint-5/"].group(2) == "200.0 KiB"
            assert float(lines["epoch=1.ckpt"].group(3)) <= float(lines["epoch=1.ckpt"].group(4)) + 0.05
            assert "\r" not in err       # --no-progress: no bars
            emu_root = emu.path_id("fg")
            for c in emu.children(emu_root, trashed=False):
                emu.trash(c["id"])


def emu_has(emu, path):
    try:
        emu.path_id(path)
        return True
    except KeyError:
        return False


def test_foreground_in_a_terminal_draws_bars(tmp_path, env):
    root = tmp_path / "tty"
    root.mkdir()
    with Emulator(tmp_path / "emu") as emu:
        emu.configure(upload_bps_per_connection=4 * MiB, upload_burst_per_connection=64 * KiB)
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))   # a 120-column terminal
        proc = _foreground(emu, root, env, stderr=slave)
        os.close(slave)
        out = b""

        def read(timeout=0.1):
            nonlocal out
            while select.select([master], [], [], timeout)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                out += chunk

        try:
            wait_for(lambda: read() or b"watching" in out, what="the watcher to start")
            (root / "big.ckpt").write_bytes(os.urandom(9 * MiB))
            wait_for(lambda: read() or b"durable: big.ckpt" in out, what="the durable line")
        finally:
            proc.send_signal(signal.SIGINT)
        proc.wait(60)
        read()
        os.close(master)
        text = out.decode(errors="replace")
        assert re.search(r"big\.ckpt:\s+\d+%\|", text), text          # a tqdm bar for the upload in flight
        assert "MB/s" in text or "kB/s" in text or "B/s" in text
        assert re.search(r"durable: big\.ckpt 9\.0 MiB in [\d.]+ s", text), text
