"""A checkpoint folder appears on Drive under its name only when complete, with a reader polling Drive
the whole time: through kill -9 mid-upload and the resume after it, when an older version is replaced,
and when a stage left by a crash is found (real sockets, the emulator's store read directly)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import drivesync
from drivesync.config import Settings
from drivesync.emulator import Emulator

KiB, MiB = 1024, 1024 * 1024
CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]
FAST = dict(backoff_base=0.01, backoff_cap=0.05, write_tps=1000.0, write_burst=1000, tps=1000.0, tps_burst=1000)


def settings(emu, **kw):
    return Settings(**{**FAST, "api_url": emu.url, "upload_cutoff": 512 * KiB, "upload_chunk_size": 256 * KiB, **kw})


def folder_files(emu, folder_id) -> dict[str, bytes]:
    return {c["name"]: emu.content(c["id"]) for c in emu.children(folder_id, trashed=False)
            if c["mimeType"] != "application/vnd.google-apps.folder"}


class Reader(threading.Thread):
    """Polls Drive: every time `NAME` is visible under the remote root, its files must be one whole
    version (one of `versions`). Records what it saw."""

    def __init__(self, emu, root_path: str, name: str, versions: list[dict[str, bytes]]):
        super().__init__(daemon=True)
        self.emu, self.root_path, self.name, self.versions = emu, root_path, name, versions
        self.stop = threading.Event()
        self.mixed: list = []
        self.seen: set[int] = set()
        self.polls = 0

    def run(self):
        while not self.stop.is_set():
            self.polls += 1
            try:
                root = self.emu.path_id(self.root_path)
                finals = [c for c in self.emu.children(root, trashed=False) if c["name"] == self.name]
            except Exception:
                finals = []
            for final in finals:
                got = folder_files(self.emu, final["id"])
                matches = [i for i, v in enumerate(self.versions) if got == v]
                if matches:
                    self.seen.add(matches[0])
                elif got:   # an empty folder listed in the instant between create and first file never happens
                    self.mixed.append(sorted(got))
            time.sleep(0.005)

    def finish(self) -> None:
        """Stop after a whole poll that began after this call (the thread may be mid-poll of the state
        before the last change now, and would not see it), then join."""
        after, deadline = self.polls, time.monotonic() + 30
        while self.polls < after + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stop.set()
        self.join()


def hf_folder(root, name, files: dict[str, bytes]):
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        (path / fname).write_bytes(data)


def shards(tag: str, n=4, size=1 * MiB) -> dict[str, bytes]:
    out = {f"model-{i:05}-of-{n:05}.safetensors": os.urandom(size) for i in range(1, n + 1)}
    out["trainer_state.json"] = f'{{"version": "{tag}"}}'.encode()
    return out


def test_kill_minus_9_mid_folder_upload_never_shows_a_half_checkpoint(tmp_path):
    root = tmp_path / "ckpt"
    version = shards("v1")
    hf_folder(root, "checkpoint-500", version)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "DRIVESYNC_"))}
    env["DRIVESYNC_STATE_DIR"] = str(tmp_path / "state")
    with Emulator(tmp_path / "emu", upload_bps_per_connection=2 * MiB, upload_burst_per_connection=64 * KiB) as emu:
        emu.add_folder("run")
        reader = Reader(emu, "run", "checkpoint-500", [version])
        reader.start()
        proc = subprocess.Popen(CLI + ["push", "--watch", str(root), "run", "--api-url", emu.url, "--credentials",
                                       emu.credentials_path, "--settle", "0.3", "--chunk-size", "256K",
                                       "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        run_id = emu.path_id("run")

        def staged() -> dict[str, bytes]:
            stage = [c for c in emu.children(run_id, trashed=False) if c["name"] == ".drivesync-stage-checkpoint-500"]
            return folder_files(emu, stage[0]["id"]) if stage else {}

        deadline = time.time() + 60
        # Kill it once some files are in the stage and some are not.
        while not any(n.startswith("model-") for n in staged()) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        names = {c["name"] for c in emu.children(run_id, trashed=False)}
        assert names == {".drivesync-stage-checkpoint-500"}, names      # staged, not shown
        done_before = staged()
        assert 0 < len(done_before) < len(version), sorted(done_before)
        # What the dead process's sockets still held arrives for a moment: count from when it stops.
        first, settled = -1, emu.stats()["bytes_received"]
        while first != settled:
            first = settled
            time.sleep(0.3)
            settled = emu.stats()["bytes_received"]

        # The next runtime's watcher resumes into the stage and publishes the folder.
        emu.configure(upload_bps_per_connection=None)
        with drivesync.watch(str(root), "run", settings=settings(emu), credentials=emu.credentials_path, settle=0.3):
            pass
        reader.finish()     # a whole poll after the publish (it may be mid-poll of the stage now)
        names = {c["name"] for c in emu.children(run_id, trashed=False)}
        assert names == {"checkpoint-500"}, names
        assert folder_files(emu, emu.path_id("run/checkpoint-500")) == version
        assert reader.mixed == [] and reader.seen == {0} and reader.polls > 10
        # Files completed in the stage before the kill were not sent again.
        missing = sum(len(data) for name, data in version.items() if name not in done_before)
        assert emu.stats()["bytes_received"] - first <= missing + 128 * KiB, (missing, sorted(done_before))


def test_an_older_version_is_replaced_without_a_mix(emulator_profile, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    root = tmp_path / "ckpt"
    old, new = shards("old", size=300 * KiB), shards("new", size=300 * KiB)
    with Emulator(tmp_path / "emu", profile=emulator_profile) as emu:
        hf_folder(root, "checkpoint-9", old)
        with drivesync.watch(str(root), "run", settings=settings(emu), credentials=emu.credentials_path, settle=0.3):
            pass
        assert folder_files(emu, emu.path_id("run/checkpoint-9")) == old
        reader = Reader(emu, "run", "checkpoint-9", [old, new])
        reader.start()
        with drivesync.watch(str(root), "run", settings=settings(emu), credentials=emu.credentials_path,
                             settle=0.3) as w:
            hf_folder(root, "checkpoint-9", new)
        reader.finish()     # a whole poll after the swap (it may be mid-poll of the old state now)
        assert not w.status()["failed"], w.status()
        run_id = emu.path_id("run")
        assert [c["name"] for c in emu.children(run_id, trashed=False)] == ["checkpoint-9"]
        assert folder_files(emu, emu.path_id("run/checkpoint-9")) == new
        assert reader.mixed == [] and 1 in reader.seen


def test_a_stage_left_by_a_crash_is_reused_and_cleaned(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    root = tmp_path / "ckpt"
    a, b = os.urandom(200 * KiB), os.urandom(200 * KiB)
    hf_folder(root, "checkpoint-7", {"a.bin": a, "b.bin": b})
    run = emulator.add_folder("run")
    stage = emulator.add_folder(".drivesync-stage-checkpoint-7", run)
    emulator.add_file("a.bin", a, parent_id=stage)              # made it before the crash
    emulator.add_file("stale.bin", b"from an older attempt", parent_id=stage)
    emulator.reset_stats()
    with drivesync.watch(str(root), "run", settings=settings(emulator), credentials=emulator.credentials_path,
                         settle=0.3) as w:
        pass
    assert not w.status()["failed"], w.status()
    assert [c["name"] for c in emulator.children(run, trashed=False)] == ["checkpoint-7"]
    final = emulator.path_id("run/checkpoint-7")
    assert final == stage and folder_files(emulator, final) == {"a.bin": a, "b.bin": b}
    assert emulator.stats()["bytes_received"] < 300 * KiB         # a.bin was not sent again


def test_keep_last_and_latest_never_see_a_stage(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    run = emulator.add_folder("run")
    for step in (1, 2):
        f = emulator.add_folder(f"checkpoint-{step}", run)
        emulator.add_file("w.bin", bytes([step]), parent_id=f)
    stage = emulator.add_folder(".drivesync-stage-checkpoint-3", run)
    emulator.add_file("w.bin", b"half", parent_id=stage)
    assert drivesync.latest_checkpoint("run", api_url=emulator.url,
                                       credentials=emulator.credentials_path) == "run/checkpoint-2"
    root = tmp_path / "ckpt"
    hf_folder(root, "checkpoint-4", {"w.bin": b"4"})
    with drivesync.watch(str(root), "run", settings=settings(emulator), credentials=emulator.credentials_path,
                         settle=0.3, keep_last=1):
        pass
    names = sorted(c["name"] for c in emulator.children(run, trashed=False))
    assert names == [".drivesync-stage-checkpoint-3", "checkpoint-4"], names


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "polling"])
def test_a_folder_renamed_into_place_goes_up_once(emulator, tmp_path, monkeypatch, poll):
    """Trainer's tmp-checkpoint-N -> checkpoint-N, reported complete more than once (watchdog did so for 4 x
    100 MB shards). The same bytes reported again must not supersede the upload in flight: each superseded
    start costs Drive writes, paced at 3/s, and delayed every shard of a sharded folder by a second."""
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    root = tmp_path / "ckpt"
    root.mkdir()
    version = shards("v1", n=3, size=600 * KiB)               # above the 512 KiB cutoff: resumable sessions
    emulator.configure(upload_bps_per_connection=1 * MiB, upload_burst_per_connection=64 * KiB)
    with drivesync.watch(str(root), "run", settings=settings(emulator), credentials=emulator.credentials_path,
                         settle=0.3, poll=poll, poll_interval=0.1) as w:
        hf_folder(root, "tmp-checkpoint-5", version)
        os.rename(root / "tmp-checkpoint-5", root / "checkpoint-5")
        # The same rename reported again while the shards are going up (as inotify did), and once more
        # after they are on Drive.
        for _ in range(2):
            time.sleep(0.2)
            w._from_observer("moved_to", "checkpoint-5", True)
        w.flush()
        w._from_observer("moved_to", "checkpoint-5", True)
        time.sleep(0.3)
    assert not w.status()["failed"], w.status()
    assert folder_files(emulator, emulator.path_id("run/checkpoint-5")) == version
    assert [d["rel"] for d in w.durable] == ["checkpoint-5"]
    sessions = [row["metadata"] for row in emulator.store.execute("SELECT metadata FROM upload_sessions")]
    assert len(sessions) == 3, sessions                       # one session per shard, none started twice
