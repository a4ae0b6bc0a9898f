"""push against the emulator over real sockets: create, skip, revision, resume, faults, bad input."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import pytest

import drivesync
from drivesync.config import Settings
from drivesync.errors import DrivesyncError, NotAFolder, UsageError
from drivesync.state import Journal

from drivesync.emulator.testing import Emulator  # an import error fails these tests, never skips them

KiB, MiB = 1024, 1024 * 1024
CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]
FAST = dict(backoff_base=0.01, backoff_cap=0.05, write_tps=1000.0, write_burst=1000, tps=1000.0, tps_burst=1000)


@pytest.fixture
def emu(tmp_path, monkeypatch, emulator_profile):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    with Emulator(tmp_path / "emu", profile=emulator_profile) as e:
        yield e


def settings(emu, **kw) -> Settings:
    base = dict(FAST, api_url=emu.url, upload_cutoff=1 * MiB, upload_chunk_size=256 * KiB)
    base.update(kw)
    return Settings(**base)


def push(emu, local, remote=None, **kw):
    s = kw.pop("settings", None) or settings(emu)
    return drivesync.push(str(local), remote, settings=s, credentials=emu.credentials_path, **kw)


def tree(emu, folder_id, prefix="") -> dict[str, bytes]:
    """Drive's content under a folder: path -> bytes (folders recurse; duplicates would collide -> asserted)."""
    out = {}
    names = []
    for child in emu.children(folder_id, trashed=False):
        names.append(child["name"])
        path = prefix + child["name"]
        if child["mimeType"] == "application/vnd.google-apps.folder":
            out.update(tree(emu, child["id"], path + "/"))
        else:
            out[path] = emu.content(child["id"])
    assert len(names) == len(set(names)), f"duplicate names on Drive: {sorted(names)}"
    return out


def local_tree(root) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            full = os.path.join(dirpath, f)
            out[os.path.relpath(full, root).replace(os.sep, "/")] = open(full, "rb").read()
    return out


def make_tree(root):
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "small.txt").write_bytes(b"hello")
    (root / "empty.bin").write_bytes(b"")
    (root / "sub" / "big.bin").write_bytes(os.urandom(3 * MiB + 123))   # resumable, 13 chunks
    (root / "sub" / "deeper" / "w.pt").write_bytes(os.urandom(700 * KiB))  # multipart
    (root / "sub" / "x.part").write_bytes(b"never uploaded")            # temporary name


def test_push_tree_then_skip_then_revision(emu, tmp_path):
    src = tmp_path / "ckpts"
    make_tree(src)
    r = push(emu, src)
    assert r.ok and len(r.uploaded) == 4 and not r.skipped
    root = emu.path_id("ckpts")
    expected = {k: v for k, v in local_tree(src).items() if not k.endswith(".part")}
    assert tree(emu, root) == expected

    # Unchanged: nothing sent again.
    emu.reset_stats()
    r = push(emu, src)
    assert r.uploaded == [] and len(r.skipped) == 4
    assert emu.stats()["bytes_received"] < 10 * KiB

    # Changed: a new revision of the same file id, not a second file.
    big_id = emu.path_id("ckpts/sub/big.bin")
    (src / "sub" / "big.bin").write_bytes(os.urandom(2 * MiB))
    r = push(emu, src)
    assert r.uploaded == ["sub/big.bin"]
    assert emu.path_id("ckpts/sub/big.bin") == big_id
    assert tree(emu, root) == expected | {"sub/big.bin": (src / "sub" / "big.bin").read_bytes()}


def test_skip_needs_equal_md5_not_just_size(emu, tmp_path):
    src = tmp_path / "d"
    src.mkdir()
    (src / "a.bin").write_bytes(b"A" * 1000)
    push(emu, src, "run/d")
    (src / "a.bin").write_bytes(b"B" * 1000)        # same size, new content
    r = push(emu, src, "run/d")
    assert r.uploaded == ["a.bin"]
    assert emu.content(emu.path_id("run/d/a.bin")) == b"B" * 1000


def test_single_file_to_a_path_and_into_a_folder(emu, tmp_path):
    f = tmp_path / "model.pt"
    f.write_bytes(os.urandom(5000))
    push(emu, f, "runs/r1/final.pt")
    assert emu.content(emu.path_id("runs/r1/final.pt")) == f.read_bytes()
    push(emu, f, "runs/r1/")
    assert emu.content(emu.path_id("runs/r1/model.pt")) == f.read_bytes()


def test_resume_after_the_process_died(emu, tmp_path):
    """A session left in the journal is resumed from Drive's committed offset, not restarted."""
    src = tmp_path / "r"
    src.mkdir()
    data = os.urandom(4 * MiB)
    (src / "big.bin").write_bytes(data)
    s = settings(emu)
    # Simulate the dead process: open the session and send the first half, as the driver would.
    import asyncio

    from drivesync.pusher import resolve_root
    from drivesync.session import open_drive
    from drivesync.state import UploadSession
    from drivesync.upload import file_md5

    path = str(src / "big.bin")
    st = os.stat(path)

    async def half():
        async with open_drive(s, credentials=emu.credentials_path) as drive:
            root = await resolve_root(drive, "r")
            uri = await drive.start_resumable({"name": "big.bin", "parents": [root]}, len(data))
            await drive.send_chunk(uri, 0, data[: 2 * MiB], len(data))
            with Journal() as j:
                j.save_upload_session(UploadSession(path, uri, None, root, "big.bin", len(data), st.st_mtime_ns,
                                                    file_md5(path), time.time()))

    asyncio.run(half())
    emu.reset_stats()
    r = push(emu, src, "r")
    assert r.uploaded == ["big.bin"]
    assert emu.content(emu.path_id("r/big.bin")) == data
    received = emu.stats()["bytes_received"]
    assert 2 * MiB <= received < 2 * MiB + 64 * KiB, received
    with Journal() as j:
        assert j.upload_session(path) is None
    assert len(emu.children(emu.path_id("r"))) == 1


def test_changed_file_or_expired_session_starts_over_cleanly(emu, tmp_path):
    import asyncio

    from drivesync.pusher import resolve_root
    from drivesync.session import open_drive
    from drivesync.state import UploadSession

    src = tmp_path / "c"
    src.mkdir()
    path = str(src / "f.bin")
    old = os.urandom(2 * MiB)
    open(path, "wb").write(old)
    s = settings(emu)

    async def half():
        async with open_drive(s, credentials=emu.credentials_path) as drive:
            root = await resolve_root(drive, "c")
            uri = await drive.start_resumable({"name": "f.bin", "parents": [root]}, len(old))
            await drive.send_chunk(uri, 0, old[:MiB], len(old))
            with Journal() as j:
                j.save_upload_session(UploadSession(path, uri, None, root, "f.bin", len(old),
                                                    os.stat(path).st_mtime_ns, hashlib.md5(old).hexdigest(),
                                                    time.time()))

    asyncio.run(half())
    new = os.urandom(2 * MiB)       # same size, different content and mtime
    time.sleep(0.01)
    open(path, "wb").write(new)
    push(emu, src, "c")
    assert emu.content(emu.path_id("c/f.bin")) == new

    # Expired session: the journal points at a session Drive forgot.
    asyncio.run(half())
    emu.expire_upload_sessions()
    push(emu, src, "c")
    assert emu.content(emu.path_id("c/f.bin")) == new
    assert [c["name"] for c in emu.children(emu.path_id("c"), trashed=False)] == ["f.bin"]


def test_faults_change_nothing_in_the_end_state(emu, tmp_path):
    src = tmp_path / "f"
    make_tree(src)
    for i in range(8):
        (src / f"s{i}.bin").write_bytes(os.urandom(20 * KiB + i))
    emu.configure(error_rate=0.15, seed=7, writes_per_s=20.0, write_burst=2, rate_limit_429_share=0.5,
                  token_lifetime_s=2.0)
    r = push(emu, src, "f", settings=settings(emu, max_retries=12))
    assert r.ok
    emu.expire_tokens()
    emu.expire_upload_sessions()
    (src / "sub" / "big.bin").write_bytes(os.urandom(2 * MiB + 7))
    push(emu, src, "f", settings=settings(emu, max_retries=12))
    emu.configure(error_rate=0.0)
    expected = {k: v for k, v in local_tree(src).items() if not k.endswith(".part")}
    assert tree(emu, emu.path_id("f")) == expected
    by_status = emu.stats()["by_status"]
    assert any(k.startswith("5") for k in by_status), by_status   # the faults did happen


def test_delete_mirrors_removals_to_trash(emu, tmp_path):
    src = tmp_path / "m"
    make_tree(src)
    push(emu, src)
    os.remove(src / "small.txt")
    r = push(emu, src, delete=False)
    assert "small.txt" in tree(emu, emu.path_id("m"))
    r = push(emu, src, delete=True)
    assert r.deleted == ["small.txt"]
    assert "small.txt" not in tree(emu, emu.path_id("m"))


def test_bad_input_is_one_clear_error(emu, tmp_path):
    with pytest.raises(UsageError):
        push(emu, tmp_path / "missing")
    (tmp_path / "d").mkdir()
    with pytest.raises(UsageError):
        push(emu, tmp_path / "d", "a/../b")
    emu.add_file("afile", b"x")
    with pytest.raises(NotAFolder):
        push(emu, tmp_path / "d", "afile/sub")


def cli_env(tmp_path, emu):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "DRIVESYNC_"))}
    env.update(DRIVESYNC_STATE_DIR=str(tmp_path / "state"), DRIVESYNC_API_URL=emu.url)
    return env


def test_cli_push_and_its_errors(emu, tmp_path):
    src = tmp_path / "cli"
    make_tree(src)
    env = cli_env(tmp_path, emu)
    r = subprocess.run(CLI + ["push", str(src), "x/cli", "--credentials", emu.credentials_path,
                              "--chunk-size", "256K", "--no-progress"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "4 uploaded" in r.stdout
    for args, code in ([["push", str(tmp_path / "nope")], 3], [["push", str(src), "--transfers", "0"], 2],
                       [["push", str(src), "--chunk-size", "100K"], 2]):
        r = subprocess.run(CLI + args + ["--credentials", emu.credentials_path], env=env, capture_output=True,
                           text=True, timeout=60)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert r.returncode == code and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
