"""Real rclone (Debian's 1.60.1), unchanged, on what others share: `--drive-shared-with-me` and
`--drive-team-drive ID`, through the emulator's TLS-terminating proxy (set up as test_rclone.py does).

The remote is the emulator's default account; a second account (`add_account`) owns the shared folder
and organizes the shared drive. Every check compares what rclone lists or copies with what was seeded,
and what rclone must not see (an unshared folder, a drive it is not a member of) stays out of sight.
"""

from __future__ import annotations

import pytest

from rclone_cli import MARKS, Rclone

pytestmark = MARKS

BOB = "bob@example.com"
ME = "emulated.user@example.com"


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    from drivesync.emulator.testing import Emulator

    with Emulator(tmp_path_factory.mktemp("rclone-sharing-emu"), proxy=True) as e:
        e.add_account(BOB)
        yield e


@pytest.fixture(scope="module")
def rclone(emu, tmp_path_factory):
    return Rclone(emu, tmp_path_factory.mktemp("rclone-sharing-home"))


def test_shared_with_me_lists_and_copies_what_was_shared(emu, rclone, tmp_path):
    course = emu.add_folder("course", owner=BOB)
    emu.add_file("syllabus.txt", b"week 1: drive\n", parent_id=course, owner=BOB)
    week = emu.add_folder("week2", course, owner=BOB)
    emu.add_file("notes.md", b"# notes\n", parent_id=week, owner=BOB)
    emu.add_folder("private", owner=BOB)                       # not shared: never listed
    emu.add_file("mine.txt", b"my own", parent_id=None)         # in My Drive: not "shared with me"
    emu.share(course, ME, "reader")

    top = {e["Path"] for e in rclone.lsjson("--drive-shared-with-me", "emu:")}
    assert top == {"course"}
    tree = {e["Path"]: e for e in rclone.lsjson("-R", "--drive-shared-with-me", "emu:course")}
    assert set(tree) == {"syllabus.txt", "week2", "week2/notes.md"}
    assert tree["syllabus.txt"]["Size"] == len(b"week 1: drive\n")
    rclone("copy", "--drive-shared-with-me", "emu:course", str(tmp_path / "out"))
    assert (tmp_path / "out" / "week2" / "notes.md").read_bytes() == b"# notes\n"
    # My Drive without the flag does not show them
    assert {e["Path"] for e in rclone.lsjson("emu:")} == {"mine.txt"}


def test_team_drive_lists_copies_and_uploads_as_a_member(emu, rclone, tmp_path):
    drive_id = emu.add_drive("Lab", organizer=BOB, members={ME: "writer"})
    runs = emu.add_folder("runs", drive_id)
    emu.add_file("log.txt", b"epoch 1 loss 0.5\n", parent_id=runs)
    emu.add_file("README", b"lab drive\n", parent_id=drive_id)
    other = emu.add_drive("Not mine", organizer=BOB)
    emu.add_file("hidden.txt", b"x", parent_id=other)

    tree = {e["Path"]: e for e in rclone.lsjson("-R", "--drive-team-drive", drive_id, "emu:")}
    assert set(tree) == {"README", "runs", "runs/log.txt"}
    rclone("copy", "--drive-team-drive", drive_id, "emu:runs", str(tmp_path / "runs"))
    assert (tmp_path / "runs" / "log.txt").read_bytes() == b"epoch 1 loss 0.5\n"

    src = tmp_path / "up"
    src.mkdir()
    (src / "result.json").write_text('{"acc": 0.9}\n')
    rclone("copy", "--drive-team-drive", drive_id, str(src), "emu:runs")
    (uploaded,) = [c for c in emu.children(runs) if c["name"] == "result.json"]
    assert emu.content(uploaded["id"]) == b'{"acc": 0.9}\n'
    assert emu.store.row(uploaded["id"])["drive_id"] == drive_id

    # a drive this account is not a member of: rclone fails, nothing is listed
    p = rclone("lsjson", "--drive-team-drive", other, "emu:", check=False)
    assert p.returncode != 0 and "hidden.txt" not in p.stdout
