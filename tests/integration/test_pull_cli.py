"""`drivesync pull` / `ls` bad input: one clear line on stderr, a non-zero exit, nothing written."""
import contextlib
import os
import subprocess

import pytest

from drivesync.cli import main


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def drive(emulator):
    top = emulator.add_folder("project")
    emulator.add_file("file.txt", b"x", parent_id=top)
    emulator.add_folder("twin", top)
    emulator.add_folder("twin", top)
    return emulator


def run(emu, capsys, *args):
    code = main([*args, "--api-url", emu.url, "--credentials", emu.credentials_path])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("remote, words", [
    ("nope/", "not found"),
    ("project/missing.txt", "not found"),
    ("project/file.txt/x", "not a folder"),
    ("project/file.txt/", "not a folder"),
    ("project/twin", "ambiguous"),
    ("id:doesnotexist", "no file or folder"),
])
def test_bad_remote_paths(drive, capsys, tmp_path, remote, words):
    out = tmp_path / "out"
    code, _, err = run(drive, capsys, "pull", remote, str(out), "-q")
    assert code != 0
    assert words in one_line_error(err).lower()
    assert not out.exists()


def test_ambiguous_path_lists_the_ids(drive, capsys, tmp_path):
    ids = sorted(c["id"] for c in drive.children(drive.path_id("project")) if c["name"] == "twin")
    code, _, err = run(drive, capsys, "pull", "project/twin", str(tmp_path / "o"))
    line = one_line_error(err)
    assert code != 0 and all(f"id:{i}" in line for i in ids)


@contextlib.contextmanager
def unwritable_folder(path):
    """`path` made unwritable for this process: mode 0500, and for root (CI runs as root, which mode
    bits do not stop) a read-only bind mount of the folder onto itself."""
    path.mkdir()
    path.chmod(0o500)
    mounted = False
    try:
        if os.access(path, os.W_OK):
            for cmd in (["mount", "--bind", str(path), str(path)],
                        ["mount", "-o", "remount,bind,ro", str(path)]):
                got = subprocess.run(cmd, capture_output=True, text=True)
                mounted = mounted or cmd[1] == "--bind" and got.returncode == 0
                if got.returncode != 0:
                    pytest.fail(f"as root this test needs a read-only bind mount, and {' '.join(cmd)} failed: "
                                f"{got.stderr.strip()} (run it with CAP_SYS_ADMIN, or as a normal user)")
        assert not os.access(path, os.W_OK), "the folder is still writable"
        yield path
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=True)
        path.chmod(0o700)


def test_unwritable_local(drive, capsys, tmp_path):
    with unwritable_folder(tmp_path / "locked") as locked:
        code, _, err = run(drive, capsys, "pull", "project", str(locked / "out"))
        assert code != 0 and "not writable" in one_line_error(err)
        assert os.listdir(locked) == []


def test_local_is_a_file_where_a_folder_is_needed(drive, capsys, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"mine")
    code, _, err = run(drive, capsys, "pull", "project", str(blocker))
    assert code != 0 and "not a folder" in one_line_error(err)
    assert blocker.read_bytes() == b"mine"
    code, _, err = run(drive, capsys, "pull", "project", str(blocker / "sub"))
    assert code != 0 and "is a file" in one_line_error(err)


@pytest.mark.parametrize("flags", [
    ["--transfers", "0"], ["--transfers", "many"], ["--range-size", "12Q"], ["--tps", "-1"],
    ["--export-formats", "docx,exe"], ["--include", "[abc"],
])
def test_bad_flag_values(drive, capsys, tmp_path, flags):
    out = tmp_path / "out"
    try:
        code, _, err = run(drive, capsys, "pull", "project", str(out), *flags)
    except SystemExit as exc:  # argparse's own one-line error
        code, err = exc.code, capsys.readouterr().err
    assert code != 0
    one_line_error(err)
    assert not out.exists()


def test_cli_pull_success_json_and_exit_code(drive, capsys, tmp_path):
    import json

    out = tmp_path / "out"
    code, stdout, err = run(drive, capsys, "pull", "project/file.txt", str(out / "f.txt"), "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["ok"] and summary["done"] == 1 and summary["failed"] == []
    assert (out / "f.txt").read_bytes() == b"x"


def test_cli_reports_failures_and_exits_non_zero(emulator, capsys, tmp_path):
    top = emulator.add_folder("p")
    emulator.add_file("ok.txt", b"fine", parent_id=top)
    bad = emulator.add_file("flagged.bin", b"malware?", parent_id=top)
    emulator.set_abusive(bad)
    out = tmp_path / "out"
    code, _, err = run(emulator, capsys, "pull", "p", str(out), "-q")
    assert code == 6                 # some files failed, the rest arrived
    assert "flagged.bin" in err and "Traceback" not in err
    assert (out / "ok.txt").read_bytes() == b"fine"
    assert not (out / "flagged.bin").exists()
    assert not any(n.endswith(".drivesync-partial") for n in os.listdir(out))
