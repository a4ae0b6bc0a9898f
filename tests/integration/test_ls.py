"""`drivesync ls` and the batched tree walk: what is listed, and how few requests it takes."""
import asyncio

import pytest

from drivesync.cli import main
from drivesync.config import Settings
from drivesync.remote import resolve, walk
from drivesync.session import open_drive


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))


def ls(emu, capsys, *args):
    code = main(["ls", *args, "--api-url", emu.url, "--credentials", emu.credentials_path])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def test_ls_one_level_recursive_and_long(emulator, capsys):
    emu = emulator
    top = emu.add_folder("data")
    sub = emu.add_folder("train", top)
    emu.add_file("x.bin", b"12345", parent_id=sub)
    emu.add_file("readme.txt", b"hi", parent_id=top)
    emu.add_doc("Plan", top, kind="document")
    gone = emu.add_file("old.txt", b"old", parent_id=top)
    emu.trash(gone)
    code, lines, _ = ls(emu, capsys, "data")
    assert code == 0 and lines == ["Plan.docx", "readme.txt", "train/"]
    code, lines, _ = ls(emu, capsys, "data/", "-R")
    assert code == 0 and lines == ["Plan.docx", "readme.txt", "train/", "train/x.bin"]
    code, lines, _ = ls(emu, capsys, "data", "-R", "--long")
    row = [l for l in lines if l.endswith("train/x.bin")][0]
    assert row.split()[0] == "5" and emu.file(emu.path_id("data/train/x.bin"))["md5Checksum"] in row
    code, lines, _ = ls(emu, capsys, "data/readme.txt")
    assert code == 0 and lines == ["readme.txt"]


def test_ls_unknown_path_is_one_line(emulator, capsys):
    code, lines, err = ls(emulator, capsys, "nowhere")
    assert code != 0 and lines == [] and len(err.strip().splitlines()) == 1 and "not found" in err


def test_ten_thousand_files_in_a_thousand_folders_take_a_few_dozen_requests(emulator):
    emu = emulator
    top = emu.add_folder("big")
    for i in range(1000):
        folder = emu.add_folder(f"d{i:04d}", top)
        for j in range(10):
            emu.add_file(f"f{j}.txt", parent_id=folder)
    settings = Settings(api_url=emu.url)
    emu.reset_stats()

    async def go():
        async with open_drive(settings, credentials=emu.credentials_path) as drive:
            return await walk(drive, await resolve(drive, "big"), settings)

    tree = asyncio.run(go())
    assert len(tree.files) == 10_000 and len(tree.folders) == 1000
    metadata = emu.stats()["by_kind"].get("metadata", 0)
    # resolve (2) + the root's children (1) + 1000 folders / 50 per query (20), plus a few extra pages.
    print("listing requests:", metadata)
    assert metadata <= 36, emu.stats()
