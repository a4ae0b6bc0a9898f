"""Symlinks on push and pull (issue 14, item 2), against the emulator over real sockets.

push: a symlink that leads out of LOCAL (to a file or a folder) is not followed and one warning line counts
them; ``--copy-links`` / ``-L`` follows them; a symlink inside LOCAL is followed; a link back into a folder it
is in (a loop) is skipped with the same warning, never walked forever. pull: never writes through a symlink
that leads out of LOCAL.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import drivesync
from drivesync.errors import UsageError

CLI = [sys.executable, "-c", "import sys; from drivesync.cli import main; sys.exit(main(sys.argv[1:]))"]


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DRIVESYNC_API_URL", raising=False)


def cli(tmp_path, emu, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "DRIVESYNC_"))}
    env.update(DRIVESYNC_STATE_DIR=str(tmp_path / "state"), DRIVESYNC_API_URL=emu.url,
               DRIVESYNC_CONFIG_DIR=str(tmp_path / "config"))
    r = subprocess.run(CLI + list(args) + ["--credentials", emu.credentials_path], env=env, capture_output=True,
                       text=True, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    return r, [line for line in r.stderr.splitlines() if line.strip()]


def drive_tree(emu, folder_id, prefix="") -> dict[str, bytes]:
    out = {}
    for child in emu.children(folder_id, trashed=False):
        path = prefix + child["name"]
        if child["mimeType"] == "application/vnd.google-apps.folder":
            out[path + "/"] = None
            out.update(drive_tree(emu, child["id"], path + "/"))
        else:
            out[path] = emu.content(child["id"])
    return out


@pytest.fixture
def linked_tree(tmp_path):
    """src/ with links of every kind; outside/ beside it holds what must not leak."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(b"hostname-like secret")
    (outside / "dir" / "private.bin").write_bytes(b"private folder content")
    os.symlink(outside, outside / "dir" / "up")                # a loop once -L follows it
    src = tmp_path / "src"
    (src / "ckpt-1").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"regular")
    (src / "ckpt-1" / "w.bin").write_bytes(b"weights")
    os.symlink(outside / "secret.txt", src / "secret-link.txt")  # a file outside
    os.symlink(outside / "dir", src / "dir-link")                 # a folder outside
    os.symlink("a.txt", src / "alias.txt")                        # a file inside: followed
    os.symlink("ckpt-1", src / "latest")                          # a folder inside: followed
    os.symlink("..", src / "ckpt-1" / "loop")                     # back to the root: a loop
    os.symlink("nowhere", src / "broken")
    return src, outside


INSIDE = {"a.txt": b"regular", "alias.txt": b"regular", "ckpt-1/": None, "ckpt-1/w.bin": b"weights",
          "latest/": None, "latest/w.bin": b"weights"}


def test_push_follows_links_inside_and_not_out_and_says_so_once(emulator, tmp_path, linked_tree):
    emu = emulator
    src, outside = linked_tree
    r, lines = cli(tmp_path, emu, "push", str(src), "up", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert drive_tree(emu, emu.path_id("up")) == INSIDE
    # One line: two links out of LOCAL (a file and a folder), one broken, two loops (ckpt-1/loop, latest/loop).
    assert len(lines) == 1, lines
    assert lines[0].startswith("skipped 5 symlinks: 2 leading out of") and "--copy-links" in lines[0], lines
    assert "1 broken" in lines[0] and "2 looping" in lines[0], lines


def test_copy_links_follows_links_out_of_local_and_still_stops_at_loops(emulator, tmp_path, linked_tree):
    emu = emulator
    src, outside = linked_tree
    r, lines = cli(tmp_path, emu, "push", str(src), "up", "-L", "--no-progress")
    assert r.returncode == 0, r.stderr
    want = dict(INSIDE)
    want.update({"secret-link.txt": b"hostname-like secret", "dir-link/": None,
                 "dir-link/private.bin": b"private folder content",
                 # dir-link/up -> outside is followed (outside is not above dir-link's target) ...
                 "dir-link/up/": None, "dir-link/up/secret.txt": b"hostname-like secret"})
    # ... and inside it, dir-link/up/dir is outside/dir again: a loop, skipped.
    assert drive_tree(emu, emu.path_id("up")) == want
    assert len(lines) == 1 and "leading out" not in lines[0] and "3 looping" in lines[0], lines


def test_the_library_takes_copy_links_too(emulator, tmp_path, linked_tree):
    emu = emulator
    src, _ = linked_tree
    result = drivesync.push(str(src), "lib", credentials=emu.credentials_path, api_url=emu.url, progress=False)
    assert sorted(result.uploaded) == sorted(k for k, v in INSIDE.items() if v is not None)
    result = drivesync.push(str(src), "lib", credentials=emu.credentials_path, api_url=emu.url, progress=False,
                            copy_links=True)
    assert "secret-link.txt" in result.uploaded and "dir-link/private.bin" in result.uploaded


def test_copy_links_with_watch_is_refused_in_one_line(emulator, tmp_path, linked_tree):
    src, _ = linked_tree
    r, lines = cli(tmp_path, emulator, "push", str(src), "up", "-L", "--watch")
    assert r.returncode == UsageError.exit_code != 0 and len(lines) == 1 and "--copy-links" in lines[0], r.stderr


def test_pull_never_writes_through_a_symlink_out_of_local(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("data")
    sub = emu.add_folder("sub", top)
    emu.add_file("f.txt", b"from drive", parent_id=sub)
    a_id = emu.add_file("a.txt", b"drive's a", parent_id=top)
    emu.add_file("b.txt", b"drive's b", parent_id=top)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_bytes(b"must stay")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside / "target.txt", out / "a.txt")
    os.symlink(outside, out / "sub")
    kw = dict(credentials=emu.credentials_path, api_url=emu.url, progress=False)

    # A folder link out of LOCAL where Drive has a folder: the pull refuses, with one line, writing nothing.
    with pytest.raises(UsageError, match="outside"):
        drivesync.pull("data", str(out), **kw)
    assert sorted(os.listdir(outside)) == ["target.txt"]
    assert (outside / "target.txt").read_bytes() == b"must stay"
    r, lines = cli(tmp_path, emu, "pull", "data", str(out), "-q")
    assert r.returncode == UsageError.exit_code != 0 and len(lines) == 1 and "outside" in lines[0], r.stderr
    assert sorted(os.listdir(outside)) == ["target.txt"]

    # Without the folder link: the file link is replaced by the file itself; its target is untouched.
    os.unlink(out / "sub")
    os.symlink(outside / "target.txt", out / "stale-link")       # gone from Drive: --delete removes the link only
    result = drivesync.pull("data", str(out), delete=True, **kw)
    assert result.ok, result.failed
    assert not os.path.islink(out / "a.txt") and (out / "a.txt").read_bytes() == emu.content(a_id)
    assert not os.path.lexists(out / "stale-link")
    assert (outside / "target.txt").read_bytes() == b"must stay"
    assert sorted(os.listdir(outside)) == ["target.txt"]
    assert (out / "sub" / "f.txt").read_bytes() == b"from drive" and not os.path.islink(out / "sub")
