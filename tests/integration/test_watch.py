"""push --watch against the emulator: a simulated trainer saves checkpoints the ways frameworks really do,
and at the end Drive holds exactly the complete files, byte-identical, no duplicates, no temporaries."""
from __future__ import annotations

import hashlib
import os
import shutil
import time

import httpx
import pytest

import drivesync
from drivesync.config import Settings

from test_push import FAST, KiB, MiB, local_tree, tree

from drivesync.emulator.testing import Emulator  # an import error fails these tests, never skips them


@pytest.fixture
def emu(tmp_path, monkeypatch, emulator_profile):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    with Emulator(tmp_path / "emu", profile=emulator_profile) as e:
        yield e


def settings(emu, **kw):
    return Settings(**{**FAST, "api_url": emu.url, "upload_cutoff": 512 * KiB, "upload_chunk_size": 256 * KiB, **kw})


def write_in_place(path, data, pieces=4, pause=0.01):
    """torch.save(obj, path): open, write in pieces, close."""
    step = max(1, len(data) // pieces)
    with open(path, "wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i:i + step])
            fh.flush()
            time.sleep(pause)


def write_then_replace(path, data):
    tmp = str(path) + ".tmp"
    write_in_place(tmp, data, pieces=2, pause=0.0)
    os.replace(tmp, path)


def hf_checkpoint(root, step, files, marker=None, rename=True):
    """Hugging Face Trainer: files written one by one into tmp-checkpoint-N, then renamed (or not)."""
    final = root / f"checkpoint-{step}"
    target = root / f"tmp-checkpoint-{step}" if rename else final
    target.mkdir()
    for name, data in files.items():
        write_in_place(target / name, data, pieces=2, pause=0.005)
    if marker:
        write_in_place(target / marker, b'{"global_step": %d}' % step, pieces=1, pause=0)
    if rename:
        os.rename(target, final)
    return final


def expected_drive(local_root):
    from drivesync.completion import is_temporary

    return {k: v for k, v in local_tree(local_root).items() if not any(is_temporary(p) for p in k.split("/"))}


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "polling"])
def test_trainer_patterns_end_exactly_on_drive(emu, tmp_path, poll):
    root = tmp_path / "ckpt"
    root.mkdir()
    (root / "existing.bin").write_bytes(b"already here")     # the initial push
    os.utime(root / "existing.bin", (time.time() - 3600,) * 2)
    # Slow enough that overwrites overtake uploads in flight.
    emu.configure(upload_bps_per_connection=12 * MiB, upload_burst_per_connection=256 * KiB)
    with drivesync.watch(str(root), "run42/ckpt", settings=settings(emu), credentials=emu.credentials_path,
                         settle=0.6, poll=poll, poll_interval=0.2, delete=True) as w:
        # Lightning's last.ckpt, overwritten again and again while its upload runs.
        for i in range(4):
            write_in_place(root / "last.ckpt", os.urandom(1 * MiB + i * 1000), pieces=4, pause=0.02)
            time.sleep(0.05)
        # torch.save in place, and tmp + os.replace.
        write_in_place(root / "model_step10.pt", os.urandom(700 * KiB))
        for i in range(3):
            write_then_replace(root / "best.pt", os.urandom(300 * KiB + i))
        # Hugging Face folders, with rotation (save_total_limit=2) mirrored by --delete.
        for step in (100, 200, 300):
            hf_checkpoint(root, step, {"model.safetensors": os.urandom(600 * KiB), "optimizer.pt": os.urandom(90 * KiB)},
                          marker="trainer_state.json")
            old = root / f"checkpoint-{step - 200}"
            if old.exists():
                shutil.rmtree(old)
        # A log that keeps growing.
        with open(root / "train.log", "a") as log:
            for i in range(5):
                log.write(f"step {i} loss {1 / (i + 1):.3f}\n")
                log.flush()
                time.sleep(0.1)
        # Editor swap file and a partial download never go up.
        (root / ".notes.swp").write_bytes(b"swap")
        (root / "data.part").write_bytes(b"partial")
    status = w.status()
    assert not status["failed"], status["failed"]
    drive_root = emu.path_id("run42/ckpt")
    assert tree(emu, drive_root) == expected_drive(root)
    names = {c["name"] for c in emu.children(drive_root, trashed=False)}
    assert "checkpoint-100" not in names and {"checkpoint-200", "checkpoint-300"} <= names


def test_superseded_upload_never_makes_a_mixed_revision(emu, tmp_path):
    """Every revision Drive ever held of last.ckpt is one complete version the trainer wrote, and uploads
    really were overtaken: each new version is written while the last one's upload is on its way."""
    root = tmp_path / "l"
    root.mkdir()
    versions = [bytes([i]) * (2 * MiB) for i in range(1, 6)]
    md5s = {hashlib.md5(v).hexdigest() for v in versions}
    # 2 MiB at 2 MiB/s: an upload is in flight for about a second, its 256 KiB chunks committed one by one.
    emu.configure(upload_bps_per_connection=2 * MiB, upload_burst_per_connection=256 * KiB)

    def sessions():
        return emu.store.execute("SELECT id, committed, done_file_id FROM upload_sessions")

    with drivesync.watch(str(root), "l", settings=settings(emu), credentials=emu.credentials_path, settle=0.5) as w:
        for n, v in enumerate(versions):
            before = {r["id"] for r in sessions()}
            write_in_place(root / "last.ckpt", v, pieces=8, pause=0.01)
            if n == len(versions) - 1:
                break
            # The next version comes only once this one's upload has had bytes committed on Drive.
            deadline = time.time() + 60
            while not any(r["id"] not in before and r["committed"] > 0 for r in sessions()):
                assert time.time() < deadline, f"version {n + 1} was never uploaded: {w.status()}"
                time.sleep(0.02)
    assert not w.status()["failed"], w.status()["failed"]
    fid = emu.path_id("l/last.ckpt")
    assert len(emu.children(emu.path_id("l"))) == 1
    # Read back every revision Drive keeps, with the front end's oddities off (this is the verdict, not the test).
    emu.configure(html_error_rate=0.0, html_5xx_share=0.0, json_cut_rate=0.0, range_ignored_rate=0.0,
                  md5_missing_rate=0.0)
    with httpx.Client(base_url=emu.url, headers=emu.auth_headers(), timeout=30) as api:
        revisions, page = [], None
        while True:
            params = {"fields": "nextPageToken,revisions(id,md5Checksum,size)", "pageSize": 200,
                      **({"pageToken": page} if page else {})}
            r = api.get(f"/drive/v3/files/{fid}/revisions", params=params)
            assert r.status_code == 200, r.text
            revisions += r.json()["revisions"]
            page = r.json().get("nextPageToken")
            if not page:
                break
        head = api.get(f"/drive/v3/files/{fid}/revisions/{revisions[-1]['id']}", params={"alt": "media"})
        assert head.status_code == 200 and head.content == versions[-1]
    stored = emu.store.execute("SELECT id, md5 FROM revisions WHERE file_id = ?", (fid,))
    assert [x["id"] for x in revisions] == [x["id"] for x in stored], "revisions.list must list every revision"
    for rev in revisions:
        assert rev["md5Checksum"] in md5s and int(rev["size"]) == 2 * MiB, f"a Drive revision mixes versions: {rev}"
    # Superseded for real: an upload that had bytes on Drive was abandoned, never finished, and it stopped
    # early (at a chunk boundary once the newer version was complete), not after sending all but its last
    # chunk (which is where an upload that merely noticed the file change would stop).
    overtaken = [r for r in sessions() if r["committed"] > 0 and r["done_file_id"] is None]
    assert overtaken, f"no upload was ever overtaken: {sessions()}"
    chunk = settings(emu).upload_chunk_size
    assert min(r["committed"] for r in overtaken) <= 2 * MiB - 2 * chunk, f"no upload stopped early: {overtaken}"
    assert {rev["md5Checksum"] for rev in revisions} < md5s, "every version reached Drive: nothing was superseded"
    assert w.status()["done"] >= 1


def test_keep_last_and_complete_marker_without_rename(emu, tmp_path):
    root = tmp_path / "hf"
    root.mkdir()
    with drivesync.watch(str(root), "hf", settings=settings(emu), credentials=emu.credentials_path,
                         settle=30, complete_marker="trainer_state.json", keep_last=2) as w:
        for step in (10, 20, 30):
            hf_checkpoint(root, step, {"model.bin": os.urandom(50 * KiB)}, marker="trainer_state.json", rename=False)
            deadline = time.time() + 10
            while time.time() < deadline:      # the marker, not the 30 s settle, makes it go up
                try:
                    emu.path_id(f"hf/checkpoint-{step}/trainer_state.json")
                    break
                except KeyError:
                    time.sleep(0.05)
            else:
                pytest.fail(f"checkpoint-{step} was not uploaded after its marker appeared")
    names = sorted(c["name"] for c in emu.children(emu.path_id("hf"), trashed=False))
    assert names == ["checkpoint-20", "checkpoint-30"]
    assert tree(emu, emu.path_id("hf/checkpoint-30")) == local_tree(root / "checkpoint-30")


def test_faults_during_watch_change_nothing(emu, tmp_path):
    root = tmp_path / "f"
    root.mkdir()
    # Random 5xx, plus two HTML 502/503 pages from the front end for certain (under google-like's
    # write quota few calls get as far as the random draw).
    emu.configure(error_rate=0.2, seed=3, rate_limit_429_share=0.5, token_lifetime_s=1.5, html_error_next=2)
    with drivesync.watch(str(root), "f", settings=settings(emu, max_retries=12), credentials=emu.credentials_path,
                         settle=0.3) as w:
        for i in range(6):
            write_then_replace(root / f"epoch={i}.ckpt", os.urandom(400 * KiB + i))
            if i == 3:
                emu.expire_upload_sessions()
                emu.expire_tokens()
    emu.configure(error_rate=0.0)
    assert not w.status()["failed"], w.status()
    got, want = tree(emu, emu.path_id("f")), expected_drive(root)
    assert sorted(got) == sorted(want), (sorted(got), sorted(want), emu.stats()["by_status"])
    assert got == want
    stats = emu.stats()
    assert stats["frontend"].get("html_502", 0) + stats["frontend"].get("html_503", 0) == 2, stats
