"""What a failed or disturbed pull leaves behind (issue 14, item 5), against the emulator over real sockets.

- A download that received nothing (Drive refuses it, every body is cut before its first byte, or it never got
  its first byte before a kill -9) leaves no preallocated hidden partial: nothing, or an empty file.
- A file whose Drive revision changes while it downloads is noticed from Drive's answers (the total size of a
  Content-Range, the X-Goog-Hash md5) and planned once more from Drive's new metadata, then fetched against
  that, not fetched again against the stale md5; a second change fails the file with one line.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

import drivesync
from drivesync.names import PARTIAL_SUFFIX

KiB, MiB = 1024, 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = dict(backoff_base=0.01, backoff_cap=0.05, max_retries=2)


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DRIVESYNC_API_URL", raising=False)


def pull(emu, remote, local, **kw):
    kw.setdefault("multistream_cutoff", 4 * MiB)
    kw.setdefault("range_size", 1 * MiB)
    return drivesync.pull(remote, str(local), credentials=emu.credentials_path, api_url=emu.url, progress=False,
                          **{**FAST, **kw})


def hidden_partials(root) -> dict[str, int]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if PARTIAL_SUFFIX in f:
                st = os.stat(os.path.join(dirpath, f))
                out[f] = st.st_blocks * 512
    return out


@pytest.mark.parametrize("fault", ["refused", "cut_before_the_first_byte"])
def test_a_download_that_received_nothing_leaves_no_partial(emulator, tmp_path, fault):
    emu = emulator
    top = emu.add_folder("ds")
    big = emu.add_file("big.bin", size=40 * MiB, seed=3, parent_id=top)    # checkpointed: kept if any byte landed
    emu.add_file("ok.txt", b"fine", parent_id=top)
    if fault == "refused":
        emu.set_abusive(big)                                                   # 403 cannotDownloadAbusiveFile
    else:
        emu.configure(cut_share=1.0, cut_after_bytes=0)                       # every body cut before byte 1
    out = tmp_path / "out"
    result = pull(emu, "ds", out)
    if fault == "refused":
        assert [f.path for f in result.failed] == ["big.bin"], result.failed
        assert (out / "ok.txt").read_bytes() == b"fine"
    else:
        assert sorted(f.path for f in result.failed) == ["big.bin", "ok.txt"], result.failed
    assert not (out / "big.bin").exists()
    assert hidden_partials(out) == {}, "a partial that received nothing stayed behind"

    # Once Drive serves it, the next pull fetches it whole and leaves nothing either.
    emu.set_abusive(big, False)
    emu.configure(cut_share=0.0)
    again = pull(emu, "ds", out)
    assert again.ok, again.failed
    assert (out / "big.bin").read_bytes() == emu.content(big)
    assert hidden_partials(out) == {}


def test_a_partial_that_received_some_bytes_is_kept_for_the_next_run(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("ds")
    big = emu.add_file("big.bin", size=20 * MiB, seed=4, parent_id=top)
    emu.configure(cut_share=1.0, cut_after_bytes=3 * MiB // 2)               # 1 MiB lands, then a cut, every time
    out = tmp_path / "out"
    # Every range, staggered or not (4.5-8 MiB), needs more resumes than max_retries allows.
    result = pull(emu, "ds", out, range_size=8 * MiB)
    assert not result.ok
    kept = hidden_partials(out)
    assert len(kept) == 1, kept                                               # resumable: it stays
    emu.configure(cut_share=0.0)
    emu.reset_stats()
    again = pull(emu, "ds", out, range_size=8 * MiB)
    assert again.ok and (out / "big.bin").read_bytes() == emu.content(big)
    assert emu.stats()["bytes_sent"] < 20 * MiB                               # only what was missing
    assert hidden_partials(out) == {}


def test_kill_before_the_first_byte_leaves_no_reserved_space(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("ds")
    emu.add_file("big.bin", size=64 * MiB, seed=5, parent_id=top)
    emu.configure(media_latency_s=30.0)                    # the first byte would come in 30 s: we kill before
    out = tmp_path / "out"
    env = dict(os.environ, DRIVESYNC_STATE_DIR=str(tmp_path / "state"), PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main())",
                             "pull", "ds", str(out), "-q", "--api-url", emu.url, "--credentials",
                             emu.credentials_path], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not hidden_partials(out):                     # the partial exists: its download has begun
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.02)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert set(hidden_partials(out).values()) == {0}, hidden_partials(out)   # created, nothing reserved


# -- a revision that changes mid-download -------------------------------------------------------------------------


def new_revision(emu, file_id: str, data: bytes) -> None:
    """Upload new content for a file through Drive's API (files.update, uploadType=media), as another client."""
    r = httpx.patch(f"{emu.url}/upload/drive/v3/files/{file_id}", params={"uploadType": "media"}, content=data,
                    headers={**emu.auth_headers(), "Content-Type": "application/octet-stream"}, timeout=30)
    assert r.status_code == 200, r.text


class ChangeOnFirstBytes:
    """A transfer subscriber that uploads a new revision of a file when its first bytes arrive (``times`` times:
    once per attempt that starts receiving)."""

    def __init__(self, emu, file_id, path, revisions: list[bytes]):
        self.emu, self.file_id, self.path = emu, file_id, path
        self.revisions = list(revisions)
        self.armed = True
        self.lock = threading.Lock()

    def __call__(self, event):
        if event.path != self.path:
            return
        if event.kind == "retry":
            self.armed = True                              # the next attempt's first bytes change it again
        elif event.kind == "bytes" and event.nbytes > 0 and self.armed and self.revisions:
            self.armed = False
            new_revision(self.emu, self.file_id, self.revisions.pop(0))


@pytest.mark.parametrize("same_size", [False, True])
def test_a_revision_that_changes_mid_download_is_planned_again_once(emulator, tmp_path, same_size):
    emu = emulator
    top = emu.add_folder("ds")
    size = 12 * MiB
    fid = emu.add_file("ckpt.bin", size=size, seed=6, parent_id=top)
    new = os.urandom(size if same_size else size + 54321)
    emu.configure(download_bps_per_connection=6_000_000, download_burst_per_connection=64 * KiB)
    change = ChangeOnFirstBytes(emu, fid, "ckpt.bin", [new])
    out = tmp_path / "out"
    emu.reset_stats()
    result = pull(emu, "ds", out, streams_per_file=2, subscribers=[change])
    assert result.ok, result.failed
    assert not change.revisions, "the revision never changed mid-download"
    assert (out / "ckpt.bin").read_bytes() == new
    assert hidden_partials(out) == {}
    # The old revision was abandoned when an answer said so, the new one fetched once: well under 2 x each.
    assert emu.stats()["bytes_sent"] < size + len(new), emu.stats()["bytes_sent"]
    assert result.bytes == len(new)


def test_a_file_that_keeps_changing_fails_with_one_line_and_leaves_nothing(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("ds")
    size = 12 * MiB
    fid = emu.add_file("ckpt.bin", size=size, seed=7, parent_id=top)
    emu.configure(download_bps_per_connection=6_000_000, download_burst_per_connection=64 * KiB)
    change = ChangeOnFirstBytes(emu, fid, "ckpt.bin", [os.urandom(size + 1), os.urandom(size + 2),
                                                        os.urandom(size + 3)])
    out = tmp_path / "out"
    result = pull(emu, "ds", out, streams_per_file=2, subscribers=[change])
    assert [f.path for f in result.failed] == ["ckpt.bin"]
    reason = result.failed[0].reason
    assert "changed on Drive again" in reason and "\n" not in reason, reason
    assert len(change.revisions) == 1, "planned more than once more"
    assert not (out / "ckpt.bin").exists() and hidden_partials(out) == {}


def test_a_small_file_that_changed_since_the_listing_is_fetched_against_its_new_md5(emulator, tmp_path):
    """Changed between the listing and its (single) GET: the answer's X-Goog-Hash md5 is not the listing's."""
    emu = emulator
    top = emu.add_folder("ds")
    fid = emu.add_file("small.txt", b"version one", parent_id=top)
    changed = []

    def change_on_start(event):
        if event.kind == "start" and event.path == "small.txt" and not changed:
            new_revision(emu, fid, b"version two!")
            changed.append(1)

    out = tmp_path / "out"
    emu.reset_stats()
    result = pull(emu, "ds", out, subscribers=[change_on_start])
    assert result.ok, result.failed
    assert (out / "small.txt").read_bytes() == b"version two!"
    assert emu.stats()["by_kind"].get("media") == 2                       # the stale answer, then the new one
    assert hashlib.md5((out / "small.txt").read_bytes()).hexdigest() == emu.file(fid)["md5Checksum"]
