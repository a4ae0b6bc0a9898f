"""`drivesync ls` and the batched tree walk: what is listed, and how few requests it takes."""
import asyncio
import dataclasses

import pytest

import drivesync
from drivesync.cli import main
from drivesync.config import Settings
from drivesync.errors import RemoteNotFound, UsageError
from drivesync.remote import Listing, fetch_listing, resolve, walk
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
    # resolve (1) + the root's children (1) + 1000 folders / 50 per query (20), plus a few extra pages.
    print("listing requests:", metadata)
    assert metadata <= 36, emu.stats()


def test_a_path_below_my_drive_is_found_from_the_root_alias_one_request_per_name(emulator):
    top = emulator.add_folder("top")
    emulator.add_folder("inner", top)
    settings = Settings(api_url=emulator.url)

    async def go(path):
        async with open_drive(settings, credentials=emulator.credentials_path) as drive:
            item = await resolve(drive, path)
            return item, drive.t.stats.requests

    item, requests = asyncio.run(go("top"))
    assert item.id == top and requests == 1         # no files.get('root') before the name
    item, requests = asyncio.run(go("top/inner/"))
    assert item.name == "inner" and requests == 2


def test_a_level_of_few_folders_is_spread_over_the_query_slots_each_batch_handed_on_when_complete(emulator):
    """Eight folders on one level are four queries of two folders (list_concurrency 4), not one batch whose
    pages would come one after another, and each batch reaches on_level as soon as its own children are all
    known, with the rest of the level still listing or not."""
    top = emulator.add_folder("level")
    folders = [emulator.add_folder(f"d{i}", top) for i in range(8)]
    for i, folder in enumerate(folders):
        for j in range(3):
            emulator.add_file(f"f{j}.txt", f"{i}{j}".encode(), parent_id=folder)
    settings = Settings(api_url=emulator.url, list_concurrency=4, list_batch=50)
    calls = []

    async def go():
        async with open_drive(settings, credentials=emulator.credentials_path) as drive:
            item = await resolve(drive, "level")
            listing = Listing()

            async def on_level(ids):
                calls.append((list(ids), {fid: len(listing.children[fid]) for fid in ids}))

            await fetch_listing(drive, item.id, settings, on_level=on_level, into=listing)
            return item, listing

    item, listing = asyncio.run(go())
    assert calls[0] == ([item.id], {item.id: 8})
    batches = [ids for ids, _ in calls[1:]]
    assert sorted(len(ids) for ids in batches) == [2, 2, 2, 2]
    assert sorted(fid for ids in batches for fid in ids) == sorted(folders)
    assert all(counts == {fid: 3 for fid in ids} for ids, counts in calls[1:])   # complete when handed on
    assert listing.requests == 1 + 4


# -- drivesync.ls: the public API the command prints ---------------------------------------------------


def api_ls(emu, remote="", **options):
    return drivesync.ls(remote, api_url=emu.url, credentials=emu.credentials_path, **options)


def test_ls_api_returns_frozen_entries_with_drive_metadata(emulator):
    emu = emulator
    top = emu.add_folder("data")
    sub = emu.add_folder("train", top)
    x = emu.add_file("x.bin", b"12345", parent_id=sub)
    readme = emu.add_file("readme.txt", b"hi", parent_id=top)
    plan = emu.add_doc("Plan", top, kind="document")
    emu.trash(emu.add_file("old.txt", b"old", parent_id=top))

    entries = api_ls(emu, "data")
    assert [e.path for e in entries] == ["Plan.docx", "readme.txt", "train"]
    assert all(isinstance(e, drivesync.ListEntry) for e in entries)
    doc, text, folder = entries
    assert (doc.kind, doc.name, doc.id, doc.size, doc.is_folder) == ("doc", "Plan", plan, None, False)
    assert (folder.kind, folder.id, folder.size, folder.md5, folder.is_folder) == ("folder", sub, None, None, True)
    meta = emu.file(readme)
    assert (text.kind, text.name, text.id, text.size, text.md5, text.modified) == (
        "file", "readme.txt", readme, 2, meta["md5Checksum"], meta["modifiedTime"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        text.size = 3

    deep = api_ls(emu, "data", recursive=True)
    assert [e.path for e in deep] == ["Plan.docx", "readme.txt", "train", "train/x.bin"]
    assert deep[-1].id == x and deep[-1].size == 5 and deep[-1].md5 == emu.file(x)["md5Checksum"]
    # a file is a one-entry list; id:ID names the same thing as its path
    assert [(e.path, e.id) for e in api_ls(emu, "data/train/x.bin")] == [("x.bin", x)]
    assert api_ls(emu, f"id:{sub}") == api_ls(emu, "data/train")


def test_ls_api_natural_order_and_shortcuts(emulator):
    emu = emulator
    top = emu.add_folder("runs")
    for step in (10, 2, 1):
        emu.add_file(f"step{step}.ckpt", b"w", parent_id=top)
    target = emu.add_file("weights.bin", b"abc")
    link = emu.add_shortcut("best.bin", target, top)
    entries = api_ls(emu, "runs")
    assert [e.path for e in entries] == ["best.bin", "step1.ckpt", "step2.ckpt", "step10.ckpt"]
    best = entries[0]
    assert (best.id, best.shortcut_id, best.size, best.kind) == (target, link, 3, "file")


def test_ls_api_errors_are_drivesync_errors_and_bad_text_costs_no_request(emulator):
    emu = emulator
    emu.add_folder("data")
    with pytest.raises(RemoteNotFound) as caught:
        api_ls(emu, "data/nowhere")
    assert caught.value.exit_code == 3 and "nowhere" in str(caught.value)
    emu.reset_stats()
    with pytest.raises(UsageError):
        api_ls(emu, "id:!!!")
    assert emu.stats()["by_kind"].get("metadata", 0) == 0, emu.stats()
    with pytest.raises(UsageError):
        api_ls(emu, "data", no_such_setting=1)


def test_ls_api_lists_shared_places(emulator, tmp_path):
    emu = emulator
    student = emu.write_account_credentials("student@example.edu", tmp_path / "student.json")
    course = emu.add_folder("course")
    emu.share(course, "student@example.edu", "reader")
    paper = emu.add_file("paper.pdf", b"%PDF")
    emu.share(paper, "student@example.edu", "commenter")
    emu.add_folder("not shared")
    lab = emu.add_drive("Lab Data", members={"student@example.edu": "reader"})
    emu.add_drive("Owners Only")
    shared = drivesync.ls("shared-with-me:", api_url=emu.url, credentials=student)
    assert [(e.path, e.kind, e.id) for e in shared] == [("course", "folder", course), ("paper.pdf", "file", paper)]
    assert shared[1].size == 4
    drives = drivesync.ls("shared-drive:", api_url=emu.url, credentials=student)
    assert [(e.path, e.kind, e.id, e.is_folder) for e in drives] == [("Lab Data", "drive", lab, True)]


def test_ls_command_prints_what_the_api_returns(emulator, capsys):
    emu = emulator
    top = emu.add_folder("data")
    emu.add_file("a.txt", b"1", parent_id=emu.add_folder("sub", top))
    emu.add_file("b.txt", b"22", parent_id=top)
    code, lines, _ = ls(emu, capsys, "data", "-R", "--long")
    entries = api_ls(emu, "data", recursive=True)
    assert code == 0 and len(lines) == len(entries) == 3
    for line, e in zip(lines, entries):
        assert line.endswith(e.path + ("/" if e.is_folder else "")) and e.id in line
        assert line.split()[0] == ("-" if e.size is None else str(e.size))
