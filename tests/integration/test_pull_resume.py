"""A pull killed with SIGKILL in the middle of a large file, then resumed: nothing corrupt, completed
files not fetched again, only the missing ranges fetched."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

MiB = 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def done_bytes(journal_path):
    if not os.path.exists(journal_path):
        return 0
    try:
        db = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True, timeout=1)
        rows = db.execute("SELECT done FROM partial_download").fetchall()
        db.close()
    except sqlite3.Error:
        return 0
    return sum(b - a for (done,) in rows for a, b in json.loads(done))


def cli(emu, *args):
    return [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main())", *args,
            "--api-url", emu.url, "--credentials", emu.credentials_path]


def test_sigkill_mid_file_then_resume(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("ds")
    big = emu.add_file("big.bin", size=24 * MiB, seed=11, parent_id=top)
    small = [emu.add_file(f"s{i}.txt", f"small {i}".encode(), parent_id=top) for i in range(5)]
    out = tmp_path / "out"
    state = tmp_path / "state"
    env = dict(os.environ, DRIVESYNC_STATE_DIR=str(state), PYTHONPATH=ROOT)
    # Slow enough that the kill lands mid-file: 4 streams x 1 MB/s.
    emu.configure(download_bps_per_connection=1_000_000, download_burst_per_connection=64 * 1024)
    proc = subprocess.Popen(cli(emu, "pull", "ds", str(out), "-q", "--multistream-cutoff", "4M",
                                "--range-size", "2M", "--streams", "4"),
                            env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = str(state / "journal.db")
    deadline = time.monotonic() + 60
    try:
        while done_bytes(journal) < 3 * MiB:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the pull made no progress"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    kept = done_bytes(journal)
    assert 0 < kept < 24 * MiB
    # The final name never holds a partial file.
    assert not (out / "big.bin").exists()
    partials = [n for n in os.listdir(out) if n.endswith(".drivesync-partial")]
    assert len(partials) == 1 and partials[0].startswith(".big.bin.")
    finished_before = {n for n in os.listdir(out) if n.startswith("s")}
    for name in finished_before:
        assert (out / name).read_bytes() == emu.content(emu.path_id(f"ds/{name}"))

    emu.configure(download_bps_per_connection=None)
    emu.reset_stats()
    resumed = subprocess.run(cli(emu, "pull", "ds", str(out), "--json", "--multistream-cutoff", "4M",
                                 "--range-size", "2M", "--streams", "4"),
                             env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["ok"] and summary["skipped"] == len(finished_before)
    assert (out / "big.bin").read_bytes() == emu.content(big)
    for i, fid in enumerate(small):
        assert (out / f"s{i}.txt").read_bytes() == emu.content(fid)
    assert not [n for n in os.listdir(out) if n.endswith(".drivesync-partial")]
    stats = emu.stats()
    missing = 24 * MiB - kept
    # Only what was missing came over the wire (plus listing JSON and the unfinished small files),
    # except where the server ignored Range (google-like): such an answer carries the file from byte 0,
    # and the streams already under way may have been sent their range too.
    ignored = stats.get("frontend", {}).get("range_ignored", 0)
    allowance = ignored * (24 + 4 * 2) * MiB
    assert stats["bytes_sent"] <= missing + 64 * 1024 + allowance, (stats["bytes_sent"], missing, ignored)
    assert summary["bytes"] <= missing + 100
    media = stats["by_kind"].get("media", 0)
    assert media <= -(-missing // (2 * MiB)) + 4 + (5 - len(finished_before)) + ignored
