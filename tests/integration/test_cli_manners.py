"""The flags a Drive user brings from rclone, over real sockets against the emulator: each one changes what is
transferred (checked on disk and in the emulator's request counters), push mirrors pull's --dry-run /
--include / --json, and every kind of failure has its own exit code (README "Exit codes")."""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

import pytest

from drivesync.cli import EXIT_CODES, build_parser, main

DAY = 86400.0


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("DRIVESYNC_", "GOOGLE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DRIVESYNC_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture
def project(emulator):
    """project/ with files of known sizes and ages: old.txt (10 B, 30 days old), new.bin (5000 B, an hour old),
    logs/run.log (300 B, 2 days old), keep/notes.txt (20 B, 10 days old)."""
    now = time.time()
    top = emulator.add_folder("project")
    logs = emulator.add_folder("logs", top)
    keep = emulator.add_folder("keep", top)
    emulator.add_file("old.txt", b"o" * 10, parent_id=top, modified_time=now - 30 * DAY)
    emulator.add_file("new.bin", b"n" * 5000, parent_id=top, modified_time=now - 3600)
    emulator.add_file("run.log", b"l" * 300, parent_id=logs, modified_time=now - 2 * DAY)
    emulator.add_file("notes.txt", b"k" * 20, parent_id=keep, modified_time=now - 10 * DAY)
    emulator.reset_stats()
    return emulator


def run(emu, capsys, *args, auth=True):
    extra = ["--api-url", emu.url] + (["--credentials", emu.credentials_path] if auth else [])
    try:
        code = main([*args, *extra])
    except SystemExit as exc:          # argparse's own one-line errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def files_under(root) -> set[str]:
    out = set()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            out.add(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return out


def media(emu) -> int:
    return emu.stats()["by_kind"].get("media", 0)


def uploads(emu) -> int:
    return emu.stats()["by_kind"].get("upload", 0)


# -- pull: what is transferred ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, want", [
    (["--min-size", "1K"], {"new.bin"}),
    (["--max-size", "20"], {"old.txt", "keep/notes.txt"}),
    (["--max-age", "1d"], {"new.bin"}),
    (["--min-age", "5d"], {"old.txt", "keep/notes.txt"}),
    (["--max-age", "15d", "--min-age", "1d"], {"logs/run.log", "keep/notes.txt"}),
    (["--include", "*.txt", "--exclude", "keep/**"], {"old.txt", "keep/notes.txt"}),   # first match wins
    (["--exclude", "keep/**", "--include", "*.txt"], {"old.txt"}),
])
def test_pull_filters_choose_the_files(project, capsys, tmp_path, flags, want):
    out = tmp_path / "out"
    code, _, err = run(project, capsys, "pull", "project", str(out), *flags)
    assert code == 0, err
    assert files_under(out) == want
    assert media(project) == len(want)
    assert f"{4 - len(want)} filtered out" in err


def test_pull_list_files(project, capsys, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "files").write_text("# the two I need\n./old.txt\n\nlogs/run.log\n; not this\nmissing.txt\n")
    (lists / "excludes").write_text("*.log\n# comment\n*.bin\n")
    (lists / "includes").write_text("keep/**\n")
    out = tmp_path / "a"
    code, _, err = run(project, capsys, "pull", "project", str(out), "--files-from", str(lists / "files"))
    assert code == 0, err
    assert files_under(out) == {"old.txt", "logs/run.log"}
    out = tmp_path / "b"
    code, _, err = run(project, capsys, "pull", "project", str(out), "--exclude-from", str(lists / "excludes"))
    assert code == 0 and files_under(out) == {"old.txt", "keep/notes.txt"}, err
    out = tmp_path / "c"
    code, _, err = run(project, capsys, "pull", "project", str(out), "--include-from", str(lists / "includes"))
    assert code == 0 and files_under(out) == {"keep/notes.txt"}, err
    code, _, err = run(project, capsys, "pull", "project", str(tmp_path / "d"), "--files-from", str(lists / "nope"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--files-from" in err


def test_pull_size_only_and_checksum_decide_the_skip(project, capsys, tmp_path):
    out = tmp_path / "out"
    assert run(project, capsys, "pull", "project", str(out))[0] == 0
    target = out / "old.txt"
    st = os.stat(target)
    # Same size, other bytes, mtime put back: the journal still vouches for it (size and mtime unchanged).
    target.write_bytes(b"X" * 10)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    project.reset_stats()
    assert run(project, capsys, "pull", "project", str(out))[0] == 0
    assert media(project) == 0 and target.read_bytes() == b"X" * 10         # default: the journal's word
    assert run(project, capsys, "pull", "project", str(out), "--size-only")[0] == 0
    assert media(project) == 0 and target.read_bytes() == b"X" * 10         # size only: equal, skipped
    code, _, err = run(project, capsys, "pull", "project", str(out), "--checksum")
    assert code == 0, err
    assert media(project) == 1 and target.read_bytes() == b"o" * 10         # hashed: differs, fetched again
    # Touched (new mtime) with other bytes of the same size: the default hashes it; --size-only does not.
    target.write_bytes(b"Y" * 10)
    project.reset_stats()
    assert run(project, capsys, "pull", "project", str(out), "--size-only")[0] == 0
    assert media(project) == 0 and target.read_bytes() == b"Y" * 10
    assert run(project, capsys, "pull", "project", str(out))[0] == 0
    assert media(project) == 1 and target.read_bytes() == b"o" * 10


def test_rclone_habit_flags_are_accepted_and_the_transfer_completes(project, capsys, tmp_path):
    out = tmp_path / "out"
    code, _, err = run(project, capsys, "pull", "project", str(out), "-P", "--fast-list", "--checkers", "2",
                       "--bwlimit", "50M", "-q")
    assert code == 0, err
    assert files_under(out) == {"old.txt", "new.bin", "logs/run.log", "keep/notes.txt"}
    assert (out / "new.bin").read_bytes() == b"n" * 5000
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(os.urandom(300_000))
    code, _, err = run(project, capsys, "push", str(src), "up", "--bwlimit", "20M", "--checkers", "3", "-P",
                       "--fast-list", "--no-progress")
    assert code == 0, err
    assert [c["name"] for c in project.children(project.path_id("up"), trashed=False)] == ["a.bin"]


@pytest.mark.parametrize("flag", ["--bwlimit", "--min-size", "--max-age", "--checkers"])
def test_bad_values_are_one_line(project, capsys, tmp_path, flag):
    code, out, err = run(project, capsys, "pull", "project", str(tmp_path / "o"), flag, "lots")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("loop", ["trio", "uvloop"])
def test_an_event_loop_that_cannot_be_had_is_one_line(project, capsys, tmp_path, monkeypatch, loop):
    """DRIVESYNC_EVENT_LOOP=trio (unknown), or uvloop where it cannot be imported: exit 2, one line, nothing
    written or sent."""
    monkeypatch.setenv("DRIVESYNC_EVENT_LOOP", loop)
    if loop == "uvloop":
        monkeypatch.setitem(sys.modules, "uvloop", None)
    code, out, err = run(project, capsys, "pull", "project", str(tmp_path / "o"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "DRIVESYNC_EVENT_LOOP" in err and not (tmp_path / "o").exists() and media(project) == 0


def test_checksum_and_size_only_do_not_go_together(project, capsys, tmp_path):
    code, _, err = run(project, capsys, "pull", "project", str(tmp_path / "o"), "--checksum", "--size-only")
    assert code == 2 and "not allowed with" in err


# -- push: what pull has ----------------------------------------------------------------------------------------

def make_src(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a" * 100)
    (src / "b.bin").write_bytes(b"b" * 4000)
    (src / "sub" / "c.txt").write_bytes(b"c" * 50)
    return src


def test_push_dry_run_lists_and_changes_nothing(emulator, capsys, tmp_path):
    src = make_src(tmp_path)
    emulator.reset_stats()
    code, out, err = run(emulator, capsys, "push", str(src), "up", "--dry-run")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert sorted(lines[:-1]) == ["upload   a.txt (100 bytes)  [new]", "upload   b.bin (4000 bytes)  [new]",
                                  "upload   sub/c.txt (50 bytes)  [new]"]
    assert lines[-1] == "would push 3 files (4.1 KiB), 0 unchanged -> up"       # 4150 B
    assert "MB/s" not in out and " s = " not in out                      # nothing moved: no time, no rate
    assert uploads(emulator) == 0
    assert not [c for c in emulator.children(emulator.root_id) if c["name"] == "up"]   # no folder made, even trashed

    assert run(emulator, capsys, "push", str(src), "up", "--no-progress")[0] == 0
    (src / "a.txt").write_bytes(b"A" * 101)
    emulator.reset_stats()
    code, out, err = run(emulator, capsys, "push", str(src), "up", "-n", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["dry_run"] and summary["planned"] == 1 and summary["planned_bytes"] == 101
    assert sorted(summary["skipped"]) == ["b.bin", "sub/c.txt"] and summary["uploaded"] == []
    assert summary["plan"] == ["upload   a.txt (101 bytes)  [changed]"]
    assert uploads(emulator) == 0


def test_push_include_and_json(emulator, capsys, tmp_path):
    src = make_src(tmp_path)
    code, out, err = run(emulator, capsys, "push", str(src), "up", "--include", "*.txt", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ok"] and sorted(summary["uploaded"]) == ["a.txt", "sub/c.txt"] and summary["filtered"] == 1
    up = emulator.path_id("up")
    assert sorted(c["name"] for c in emulator.children(up, trashed=False)) == ["a.txt", "sub"]
    code, out, _ = run(emulator, capsys, "push", str(src), "up", "--max-size", "60", "--json")
    assert code == 0 and json.loads(out)["skipped"] == ["sub/c.txt"] and json.loads(out)["uploaded"] == []


def test_push_files_from_and_age(emulator, capsys, tmp_path):
    src = make_src(tmp_path)
    now = time.time()
    os.utime(src / "b.bin", (now - 3 * DAY, now - 3 * DAY))
    listing = tmp_path / "list"
    listing.write_text("sub/c.txt\nb.bin\n")
    code, out, err = run(emulator, capsys, "push", str(src), "up", "--files-from", str(listing), "--max-age", "1d",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["uploaded"] == ["sub/c.txt"]
    assert [c["name"] for c in emulator.children(emulator.path_id("up/sub"), trashed=False)] == ["c.txt"]
    assert [c["name"] for c in emulator.children(emulator.path_id("up"), trashed=False)] == ["sub"]


def test_push_size_only_and_checksum(emulator, capsys, tmp_path):
    src = make_src(tmp_path)
    assert run(emulator, capsys, "push", str(src), "up", "--no-progress")[0] == 0
    (src / "a.txt").write_bytes(b"Z" * 100)            # same size, other bytes
    emulator.reset_stats()
    code, out, _ = run(emulator, capsys, "push", str(src), "up", "--size-only", "--json")
    assert code == 0 and json.loads(out)["uploaded"] == [] and uploads(emulator) == 0
    code, out, _ = run(emulator, capsys, "push", str(src), "up", "--checksum", "--json")
    assert code == 0 and json.loads(out)["uploaded"] == ["a.txt"] and uploads(emulator) == 1


def test_push_with_watch_refuses_what_a_watcher_cannot_do(emulator, capsys, tmp_path):
    src = make_src(tmp_path)
    for flag in (["--dry-run"], ["--include", "*.txt"], ["--min-size", "1K"], ["--size-only"]):
        code, _, err = run(emulator, capsys, "push", str(src), "up", "--watch", *flag)
        assert code == 2 and "--watch" in err and len(err.strip().splitlines()) == 1, (flag, err)


# -- exit codes -------------------------------------------------------------------------------------------------

def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_exit_codes_per_failure_kind(project, capsys, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run(project, capsys, "pull", "project", str(out), "--transfers", "zero")[0] == 2       # usage
    assert run(project, capsys, "pull", "nope/", str(out))[0] == 3                               # REMOTE missing
    assert run(project, capsys, "push", str(tmp_path / "missing"), "x")[0] == 3                  # LOCAL missing
    code, _, err = run(project, capsys, "pull", "project", str(out), "--credentials", str(tmp_path / "none.json"),
                       auth=False)
    assert code == 7 and "credentials file not found" in err                                     # credentials
    assert run(project, capsys, "pull", "project", str(out))[0] == 0
    assert run(project, capsys, "pull", "project", str(out), "--error-on-no-transfer")[0] == 9   # nothing new
    assert run(project, capsys, "pull", "project", str(out))[0] == 0                             # without the flag
    flagged = project.add_file("flagged.bin", b"malware?", parent_id=project.path_id("project"))
    project.set_abusive(flagged)
    code, _, err = run(project, capsys, "pull", "project", str(tmp_path / "fresh"))
    assert code == 6 and "failed: flagged.bin" in err                                            # some failed
    assert (tmp_path / "fresh" / "old.txt").exists()
    # Drive unreachable until --give-up-after: temporary (a static token: no token endpoint to reach first).
    code = main(["ls", "project", "--api-url", f"http://127.0.0.1:{closed_port()}", "--give-up-after", "1",
                 "--access-token", "tok"])
    err = capsys.readouterr().err
    assert code == 5 and "gave up" in err and len(err.strip().splitlines()) == 1, err


def test_exit_codes_are_in_every_help(capsys):
    parser = build_parser()
    for text in [parser.format_help()] + [sub.format_help() for sub in _subparsers(parser).values()]:
        flat = " ".join(text.split())
        assert "exit codes" in flat and "3 not found" in flat and "7 fatal" in flat and "130 interrupted" in flat
    assert "6 some files failed" in EXIT_CODES


# -- help: every default shown ----------------------------------------------------------------------------------

def _subparsers(parser) -> dict:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_option_that_takes_a_value_shows_its_default():
    missing = []
    for name, sub in _subparsers(build_parser()).items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0 or action.help == argparse.SUPPRESS:
                continue
            if "default" not in formatter._get_help_string(action):
                missing.append(f"{name} {'/'.join(action.option_strings)}")
    assert not missing, missing


def test_help_names_the_settings_variables_and_binary_units(capsys):
    text = " ".join(_subparsers(build_parser())["pull"].format_help().split())
    assert "(default 64, or $DRIVESYNC_TRANSFERS)" in text
    assert "(default 32.0 MiB, or $DRIVESYNC_RANGE_SIZE)" in text
    assert "--fast-list" in text and "50 folders at once" in text


# -- a static access token ---------------------------------------------------------------------------------------

def test_access_token_flag_and_variable_work_and_are_never_printed(project, capsys, tmp_path, monkeypatch, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    token = project.access_token()
    out = tmp_path / "out"
    code, stdout, err = run(project, capsys, "pull", "project", str(out), "--access-token", token, "-vv",
                            auth=False)
    assert code == 0, err
    assert files_under(out) == {"old.txt", "new.bin", "logs/run.log", "keep/notes.txt"}
    assert token not in stdout + err + caplog.text and "static access token" in caplog.text
    assert "DRIVESYNC_ACCESS_TOKEN" not in os.environ                 # the flag leaves nothing behind
    monkeypatch.setenv("DRIVESYNC_ACCESS_TOKEN", token)
    code, stdout, err = run(project, capsys, "ls", "project", "-vv", auth=False)
    assert code == 0 and "old.txt" in stdout and token not in stdout + err + caplog.text, err
    monkeypatch.setenv("DRIVESYNC_ACCESS_TOKEN", "not-a-token-the-emulator-issued")
    code, stdout, err = run(project, capsys, "ls", "project", auth=False)
    assert code == 7 and len(err.strip().splitlines()) == 1 and "not-a-token" not in err + caplog.text, err
    code, _, err = run(project, capsys, "ls", "project", "--access-token", "x", "--credentials", "f", auth=False)
    assert code == 2 and "give one" in err


# -- settings from the environment and the config file, through the CLI ------------------------------------------

def test_settings_from_env_and_config_file_reach_the_command(project, capsys, tmp_path, monkeypatch):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text('bwlimit = "40M"\ntransfers = 2\n')
    monkeypatch.setenv("DRIVESYNC_RANGE_SIZE", "1M")
    out = tmp_path / "out"
    code, _, err = run(project, capsys, "pull", "project", str(out))
    assert code == 0 and len(files_under(out)) == 4, err
    (tmp_path / "config" / "config.toml").write_text("transfers = 0\n")
    code, _, err = run(project, capsys, "pull", "project", str(tmp_path / "o2"))
    assert code == 2 and "config.toml" in err and len(err.strip().splitlines()) == 1, err
    assert run(project, capsys, "pull", "project", str(tmp_path / "o2"), "--transfers", "3")[0] == 2  # file still read
    (tmp_path / "config" / "config.toml").unlink()
    monkeypatch.setenv("DRIVESYNC_TRANSFERS", "-1")
    code, _, err = run(project, capsys, "pull", "project", str(tmp_path / "o3"), "--transfers", "4")
    assert code == 2 and "DRIVESYNC_TRANSFERS" in err


def test_bwlimit_counts_every_byte_both_ways(project, capsys, tmp_path, bwlimit_spent):
    """The limiter sits on the byte path of downloads and uploads (counted, not timed: the bucket's arithmetic
    is tested on a fake clock in tests/unit/test_bwlimit.py)."""
    seen = bwlimit_spent
    out = tmp_path / "out"
    assert run(project, capsys, "pull", "project", str(out), "--bwlimit", "100M")[0] == 0
    assert sum(seen) == 10 + 5000 + 300 + 20                      # every media byte, nothing else
    seen.clear()
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))    # resumable (above the 8 MiB multipart cutoff)
    (src / "small.txt").write_bytes(b"s" * 1000)                   # multipart
    assert run(project, capsys, "push", str(src), "up", "--bwlimit", "100M", "--no-progress")[0] == 0
    assert sum(seen) >= 9 * 1024 * 1024 + 1000
    seen.clear()
    assert run(project, capsys, "pull", "project", str(tmp_path / "o2"))[0] == 0
    assert seen == []                                               # no --bwlimit: no bucket at all


def test_push_dry_run_with_delete_lists_the_trash_and_trashes_nothing(emulator, capsys, tmp_path):
    src = make_src(tmp_path)
    assert run(emulator, capsys, "push", str(src), "up", "--no-progress")[0] == 0
    (src / "b.bin").unlink()
    emulator.reset_stats()
    code, out, err = run(emulator, capsys, "push", str(src), "up", "--delete", "--dry-run")
    assert code == 0, err
    assert out.splitlines() == ["trash    b.bin", "would push 0 files (0 B), 2 unchanged, 1 to trash -> up"]
    names = sorted(c["name"] for c in emulator.children(emulator.path_id("up"), trashed=False))
    assert names == ["a.txt", "b.bin", "sub"] and emulator.children(emulator.path_id("up"), trashed=True) == []
    code, out, err = run(emulator, capsys, "push", str(src), "up", "--delete", "--error-on-no-transfer", "-q")
    assert code == 9 and out == "", (code, out, err)          # nothing uploaded (one file trashed)
    assert sorted(c["name"] for c in emulator.children(emulator.path_id("up"), trashed=False)) == ["a.txt", "sub"]
