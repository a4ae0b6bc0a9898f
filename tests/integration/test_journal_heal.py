"""The journal heals, or stops the run with one line (issue 14, item 1), against the emulator over real sockets.

- A journal that cannot be opened or read (garbage bytes, truncated to half, a folder in its place) is moved
  aside as ``journal.db.corrupt-<time>``, a new one is started, one warning line says so, and the run goes on:
  local files are hashed again, not trusted (a file changed behind the old journal's back is fetched).
- A journal that cannot be written (a full disk, a read-only file system) stops pull and push with one line and
  a non-zero exit, before any byte moves.
- A journal that fills up in the middle of a push: every upload Drive confirmed counts as uploaded, the run
  stops with one line that says how many, and Drive holds exactly those files.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import uuid

import pytest

import drivesync
from drivesync.config import Settings
from drivesync.errors import JournalUnwritable
from drivesync.state import Journal

KiB, MiB = 1024, 1024 * 1024
CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]
FAST = dict(backoff_base=0.01, backoff_cap=0.05, write_tps=1000.0, write_burst=1000, tps=1000.0, tps_burst=1000)


def env_for(tmp_path, emu, state) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "DRIVESYNC_"))}
    env.update(DRIVESYNC_STATE_DIR=str(state), DRIVESYNC_API_URL=emu.url,
               DRIVESYNC_CONFIG_DIR=str(tmp_path / "config"))
    return env


def cli(tmp_path, emu, state, *args):
    r = subprocess.run(CLI + list(args) + ["--credentials", emu.credentials_path], env=env_for(tmp_path, emu, state),
                       capture_output=True, text=True, timeout=120)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr, r.stderr
    return r, lines


def seed(emu, n=40):
    top = emu.add_folder("data")
    ids = {}
    for i in range(n):
        ids[f"f{i:03d}.bin"] = emu.add_file(f"f{i:03d}.bin", size=3 * KiB + i, seed=i, parent_id=top)
    ids["big.bin"] = emu.add_file("big.bin", size=9 * MiB + 5, seed=99, parent_id=top)
    return ids


def local_bytes(root) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in sorted(os.listdir(root))}


def damage(journal: str, how: str) -> None:
    for suffix in ("-wal", "-shm"):
        assert not os.path.exists(journal + suffix)   # closed cleanly: everything is in the main file
    if how == "garbage":
        with open(journal, "r+b") as f:
            f.write(os.urandom(4096))                  # the header and the first page, gone
    elif how == "half":
        os.truncate(journal, os.path.getsize(journal) // 2)
    elif how == "folder":
        os.unlink(journal)
        os.mkdir(journal)
        (open(os.path.join(journal, "something"), "w")).close()
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["garbage", "half", "folder"])
def test_a_damaged_journal_is_moved_aside_and_files_are_hashed_again(emulator, tmp_path, how):
    emu = emulator
    ids = seed(emu)
    state, out = tmp_path / "state", tmp_path / "out"
    r, lines = cli(tmp_path, emu, state, "pull", "data", str(out), "-q")
    assert r.returncode == 0, r.stderr
    journal = str(state / "journal.db")
    assert os.path.getsize(journal) >= 8 * 4096, "the journal is too small for 'half' to lose rows"

    # Behind the journal's back: same size, same mtime, other bytes. The old journal would vouch for it.
    victim = out / "f007.bin"
    st = victim.stat()
    victim.write_bytes(b"\0" * st.st_size)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))

    damage(journal, how)
    emu.reset_stats()
    r, lines = cli(tmp_path, emu, state, "pull", "data", str(out), "-q")
    assert r.returncode == 0, r.stderr
    assert len(lines) == 1 and "moved it to journal.db.corrupt-" in lines[0], lines
    asides = [n for n in os.listdir(state) if n.startswith("journal.db.corrupt-")]
    assert len(asides) == 1, os.listdir(state)
    assert os.path.isdir(state / asides[0]) == (how == "folder")
    assert os.path.isfile(journal)
    # Every file is right, and the one changed behind the journal's back was fetched again (hashed, not trusted).
    got = local_bytes(out)
    assert got == {name: emu.content(fid) for name, fid in ids.items()}
    assert emu.stats()["by_kind"].get("media", 0) == 1

    # The new journal works: a third run is quiet, fetches nothing, and push reads the same journal.
    emu.reset_stats()
    r, lines = cli(tmp_path, emu, state, "pull", "data", str(out), "-q")
    assert r.returncode == 0 and lines == [], r.stderr
    assert emu.stats()["by_kind"].get("media", 0) == 0


def test_push_heals_a_damaged_journal_too(emulator, tmp_path):
    emu = emulator
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.txt").write_bytes(os.urandom(1000 + i))
    state = tmp_path / "state"
    state.mkdir()
    (state / "journal.db").write_bytes(b"this is not a database" * 100)
    r, lines = cli(tmp_path, emu, state, "push", str(src), "up", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert len(lines) == 1 and "moved it to journal.db.corrupt-" in lines[0], lines
    assert "3 uploaded" in r.stdout
    folder = emu.path_id("up")
    assert sorted(c["name"] for c in emu.children(folder, trashed=False)) == ["0.txt", "1.txt", "2.txt"]


# -- a journal that cannot be written --------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MiB tmpfs for the state dir (root only: mount)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs for the state dir (CI runs as root)")
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a small tmpfs")
    mnt = tmp_path / "state"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(directory) -> str:
    """Fill the file system under ``directory`` to the last byte; returns the filler's path."""
    path = os.path.join(directory, f"filler-{uuid.uuid4().hex[:8]}")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY)
    try:
        block = b"\0" * (64 * KiB)
        while True:
            try:
                os.write(fd, block)
            except OSError:
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
    finally:
        os.close(fd)
    return path


def test_a_full_state_disk_stops_pull_and_push_before_anything_moves(emulator, tmp_path, small_disk):
    emu = emulator
    seed(emu, n=5)
    out = tmp_path / "out"
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a" * 5000)
    fill(small_disk)
    emu.reset_stats()
    for args in (["pull", "data", str(out), "-q"], ["push", str(src), "up", "--no-progress"]):
        r, lines = cli(tmp_path, emu, small_disk, *args)
        assert r.returncode == JournalUnwritable.exit_code != 0, (args, r.stderr)
        assert len(lines) == 1 and "journal" in lines[0] and "cannot be written" in lines[0], lines
    by_kind = emu.stats()["by_kind"]
    assert by_kind.get("media", 0) == 0 and by_kind.get("upload", 0) == 0, by_kind
    assert not out.exists() or os.listdir(out) == []
    assert not [c for c in emu.children(emu.root_id, trashed=False) if c["name"] == "up"]
    assert not [n for n in os.listdir(small_disk) if n.startswith("journal.db.corrupt")]  # full is not damaged


def test_a_read_only_state_dir_stops_the_run_with_one_line(emulator, tmp_path, small_disk):
    emu = emulator
    seed(emu, n=5)
    out = tmp_path / "out"
    r, _ = cli(tmp_path, emu, small_disk, "pull", "data", str(out), "-q")
    assert r.returncode == 0, r.stderr
    emu.add_file("new.bin", size=1000, seed=5, parent_id=emu.path_id("data"))
    r = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    emu.reset_stats()
    r, lines = cli(tmp_path, emu, small_disk, "pull", "data", str(out), "-q")
    assert r.returncode == JournalUnwritable.exit_code != 0, r.stderr
    assert len(lines) == 1 and "cannot be written" in lines[0], lines
    assert emu.stats()["by_kind"].get("media", 0) == 0
    assert not (out / "new.bin").exists()
    assert not [n for n in os.listdir(small_disk) if n.startswith("journal.db.corrupt")]


def test_a_journal_that_fills_up_mid_push_never_turns_confirmed_uploads_into_failures(emulator, tmp_path,
                                                                                     small_disk):
    emu = emulator
    src = tmp_path / "src"
    src.mkdir()
    for i in range(11):
        (src / f"{i:02d}.txt").write_bytes(os.urandom(2000 + i))
    filled = []

    def fill_after_first(event):
        if event.kind == "done" and not filled:
            filled.append(fill(small_disk))

    journal = Journal(small_disk / "journal.db")
    settings = Settings(**FAST, api_url=emu.url, upload_transfers=1)
    try:
        with pytest.raises(JournalUnwritable) as caught:
            drivesync.push(str(src), "up", settings=settings, credentials=emu.credentials_path, journal=journal,
                           subscribers=[fill_after_first], progress=False)
    finally:
        journal.close()
    assert filled, "the disk was never filled"
    on_drive = sorted(c["name"] for c in emu.children(emu.path_id("up"), trashed=False))
    message = str(caught.value)
    # The first upload was recorded; the second landed on Drive, then the journal failed: it counts as uploaded.
    assert len(on_drive) == 2, on_drive
    assert f"{len(on_drive)} uploaded" in message and "of 11 files" in message, message
    for name in on_drive:
        assert emu.content(emu.path_id(f"up/{name}")) == (src / name).read_bytes()

    # Space again: the next push sends only the rest, and hashes the unrecorded one instead of sending it.
    os.unlink(filled[0])
    emu.reset_stats()
    result = drivesync.push(str(src), "up", settings=settings, credentials=emu.credentials_path, progress=False,
                            journal=Journal(small_disk / "journal.db"))
    assert result.ok and len(result.uploaded) == 9 and len(result.skipped) == 2, result.summary()
    assert sorted(c["name"] for c in emu.children(emu.path_id("up"), trashed=False)) == sorted(os.listdir(src))


def test_a_journal_write_that_fails_after_the_last_file_is_one_warning_not_a_failure(emulator, tmp_path, small_disk,
                                                                                    caplog):
    emu = emulator
    src = tmp_path / "src"
    src.mkdir()
    (src / "only.txt").write_bytes(os.urandom(3000))
    journal = Journal(small_disk / "journal.db")
    fill(small_disk)
    settings = Settings(**FAST, api_url=emu.url)
    with caplog.at_level("WARNING"):
        result = drivesync.push(str(src), "up", settings=settings, credentials=emu.credentials_path,
                                journal=journal, progress=False)
        assert result.ok and result.uploaded == ["only.txt"]
        journal.close()
    warned = [r.getMessage() for r in caplog.records if "journal" in r.getMessage()]
    assert len(warned) == 1 and "not recorded" in warned[0], warned
    assert emu.content(emu.path_id("up/only.txt")) == (src / "only.txt").read_bytes()


def test_healing_keeps_nothing_of_the_damaged_file_and_a_sound_journal_is_left_alone(tmp_path, caplog):
    path = tmp_path / "journal.db"
    with Journal(path) as j:
        j.record_synced("/x/a", file_id="A", md5="m", size=1, mtime_ns=2, remote_modified=None, direction="pull")
    with caplog.at_level("WARNING"), Journal(path) as j:
        assert j.synced("/x/a") is not None and j.healed is None
    assert not caplog.records
    path.write_bytes(b"\x00" * 10000)
    with caplog.at_level("WARNING"), Journal(path) as j:
        assert j.healed and j.synced("/x/a") is None
        j.record_synced("/x/b", file_id="B", md5="m", size=1, mtime_ns=2, remote_modified=None, direction="pull")
    assert len(caplog.records) == 1
    with Journal(path) as j:
        assert j.synced("/x/b") is not None
    assert sqlite3.connect(str(path)).execute("PRAGMA integrity_check").fetchone() == ("ok",)
