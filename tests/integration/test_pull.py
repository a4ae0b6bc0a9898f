"""drivesync.pull against the emulator over real sockets: the shape of the local tree, verification,
a second run that transfers nothing, --delete, filters, --dry-run, single files."""
import hashlib
import os

import pytest

import drivesync
from drivesync.download import parse_time_ns
from drivesync.names import PARTIAL_SUFFIX

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DRIVESYNC_API_URL", raising=False)


def pull(emu, remote, local, **kw):
    kw.setdefault("multistream_cutoff", 4 * MiB)
    kw.setdefault("range_size", 1 * MiB)
    return drivesync.pull(remote, str(local), credentials=emu.credentials_path, api_url=emu.url, **kw)


def local_tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


@pytest.fixture
def project(emulator):
    """A tree with everything Drive can throw at a client."""
    emu = emulator
    ids = {}
    top = emu.add_folder("project")
    ids["readme"] = emu.add_file("README.md", b"# hello\n", parent_id=top)
    ids["empty"] = emu.add_file("empty.txt", b"", parent_id=top)
    ids["big"] = emu.add_file("big.bin", size=10 * MiB + 12345, seed=7, parent_id=top)
    uni = emu.add_folder("Caf\u00e9 \u65e5\u672c", top)
    ids["naive"] = emu.add_file("na\u00efve \U0001f600.txt", "\u00fcber".encode(), parent_id=uni)
    ids["dotdot_x"] = emu.add_file("../x", b"not outside", parent_id=top)
    ids["slash"] = emu.add_file("a/b", b"slash", parent_id=top)
    dots = emu.add_folder("..", top)
    ids["inner"] = emu.add_file("inner.txt", b"inner", parent_id=dots)
    ids["long"] = emu.add_file("L" * 300 + ".txt", b"long", parent_id=top)
    ids["dup1"] = emu.add_file("dup.txt", b"first", parent_id=top)
    ids["dup2"] = emu.add_file("dup.txt", b"second", parent_id=top)
    emu.add_doc("Notes", top, kind="document", text="some notes")
    emu.add_doc("Budget", top, kind="spreadsheet", text="a,b\n1,2")
    gone = emu.add_file("trashed.txt", b"gone", parent_id=top)
    emu.trash(gone)
    elsewhere = emu.add_folder("elsewhere")
    ids["shared"] = emu.add_file("s.txt", b"shared content", parent_id=elsewhere)
    emu.add_shortcut("shared-link", elsewhere, parent_id=top)
    emu.add_shortcut("readme-link", ids["readme"], parent_id=top)
    sub = emu.add_folder("sub", top)
    emu.add_shortcut("up", top, parent_id=sub)  # a loop
    ids["subfile"] = emu.add_file("deep.txt", b"deep", parent_id=sub)
    return ids


def test_pull_builds_the_expected_tree_and_a_second_run_transfers_nothing(emulator, project, tmp_path):
    emu = emulator
    out = tmp_path / "out"
    result = pull(emu, "project/", out)
    assert result.ok, result.failed
    got = local_tree(out)
    dup1, dup2 = sorted([project["dup1"], project["dup2"]])
    long_name = [k for k in got if k.startswith("LLLL")]
    assert len(long_name) == 1 and len(long_name[0].encode()) <= 255 and long_name[0].endswith(".txt")
    expected_files = {
        "README.md": emu.content(project["readme"]),
        "empty.txt": b"",
        "big.bin": emu.content(project["big"]),
        "Caf\u00e9 \u65e5\u672c/na\u00efve \U0001f600.txt": "\u00fcber".encode(),
        "..\uff0fx": b"not outside",
        "a\uff0fb": b"slash",
        "\uff0e\uff0e/inner.txt": b"inner",
        long_name[0]: b"long",
        "dup.txt": emu.content(dup1),
        f"dup ({dup2[:8]}).txt": emu.content(dup2),
        "shared-link/s.txt": b"shared content",
        "readme-link": b"# hello\n",
        "sub/deep.txt": b"deep",
    }
    for path, data in expected_files.items():
        assert got[path] == data, path
    assert got["Notes.docx"][:2] == b"PK" and got["Budget.xlsx"][:2] == b"PK"  # real OOXML zips
    files = {k for k, v in got.items() if v is not None}
    assert files == set(expected_files) | {"Notes.docx", "Budget.xlsx"}
    assert set(k for k, v in got.items() if v is None) == {
        "Caf\u00e9 \u65e5\u672c/", "\uff0e\uff0e/", "shared-link/", "sub/"}
    assert not any(PARTIAL_SUFFIX in k for k in got)
    # Nothing escaped LOCAL: only the output, the state dir and the emulator's data ("drive", the
    # conftest fixture's) live in tmp_path; a "../x" or ".." written through would add an entry here.
    assert sorted(os.listdir(tmp_path)) == ["drive", "out", "state"]
    assert not (tmp_path / "x").exists() and not (out.parent / "x").exists()
    assert result.exported == 2
    assert result.done == len(files)
    assert result.bytes >= 10 * MiB
    assert any("loop" in w for w in result.warnings)
    assert any("dup.txt" in w for w in result.warnings)

    emu.reset_stats()
    again = pull(emu, "project/", out)
    assert again.ok and again.done == 0 and again.skipped == len(files) and again.bytes == 0
    stats = emu.stats()
    assert stats["by_kind"].get("media", 0) == 0 and stats["by_kind"].get("export", 0) == 0
    assert local_tree(out) == got


def test_existing_local_files_are_hashed_not_fetched_and_wrong_ones_replaced(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("p")
    same = emu.add_file("same.bin", size=300_000, seed=1, parent_id=top)
    wrong = emu.add_file("wrong.bin", size=300_000, seed=2, parent_id=top)
    out = tmp_path / "out"
    out.mkdir()
    (out / "same.bin").write_bytes(emu.content(same))
    (out / "wrong.bin").write_bytes(b"\0" * 300_000)  # same size, other bytes
    emu.reset_stats()
    result = pull(emu, "p", out)
    assert result.ok and result.skipped == 1 and result.done == 1
    assert (out / "wrong.bin").read_bytes() == emu.content(wrong)
    assert emu.stats()["bytes_sent"] < 300_000 + 100_000  # only wrong.bin came over the wire
    emu.reset_stats()
    assert pull(emu, "p", out).skipped == 2
    assert emu.stats()["by_kind"].get("media", 0) == 0


def test_a_changed_remote_file_is_fetched_again(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("p")
    fid = emu.add_file("a.txt", b"version one", parent_id=top)
    out = tmp_path / "out"
    assert pull(emu, "p", out).done == 1
    emu.delete(fid)
    emu.add_file("a.txt", b"version two!", parent_id=top)
    result = pull(emu, "p", out)
    assert result.ok and result.done == 1
    assert (out / "a.txt").read_bytes() == b"version two!"


def test_delete_removes_only_files_gone_from_drive(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("p")
    emu.add_file("keep.txt", b"keep", parent_id=top)
    gone = emu.add_file("gone.txt", b"gone", parent_id=top)
    out = tmp_path / "out"
    assert pull(emu, "p", out).ok
    emu.delete(gone)
    (out / "local-only.txt").write_bytes(b"mine")
    (out / "notes.log").write_bytes(b"excluded, so kept")
    partial = out / f".big.bin.abcdefgh{PARTIAL_SUFFIX}"
    partial.write_bytes(b"partial")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"never")
    (out / "link").symlink_to(outside)
    result = pull(emu, "p", out, delete=True, exclude=["*.log"])
    assert result.ok, result.failed
    assert sorted(os.listdir(out)) == sorted(["keep.txt", "notes.log", partial.name])
    assert outside.read_bytes() == b"never"
    assert result.deleted == 3  # gone.txt, local-only.txt, the symlink (not its target)


def test_without_delete_nothing_local_is_removed(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("p")
    emu.add_file("a.txt", b"a", parent_id=top)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_bytes(b"mine")
    assert pull(emu, "p", out).ok
    assert (out / "mine.txt").read_bytes() == b"mine"


def test_filters_and_dry_run(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("p")
    imgs = emu.add_folder("images", top)
    emu.add_file("a.png", b"png", parent_id=imgs)
    emu.add_file("b.jpg", b"jpg", parent_id=imgs)
    emu.add_file("train.py", b"code", parent_id=top)
    out = tmp_path / "out"
    dry = pull(emu, "p", out, dry_run=True)
    assert dry.ok and dry.dry_run and not out.exists()
    assert any("images/a.png" in line for line in dry.plan) and any("train.py" in line for line in dry.plan)
    from drivesync.progress import summary_line

    assert dry.planned == 3 and dry.planned_bytes == 10
    line = summary_line(dry, "would pull")     # counts what it listed, and says no rate: nothing moved
    assert line.startswith("would pull 3 files (10 B), 0 already there") and "MB/s" not in line, line
    result = pull(emu, "p", out, include=["*.png", "/train.py"])
    assert result.ok and result.filtered == 1
    assert local_tree(out) == {"images/": None, "images/a.png": b"png", "train.py": b"code"}


def test_single_file_by_path_and_by_id(emulator, tmp_path, monkeypatch):
    emu = emulator
    top = emu.add_folder("p")
    data = emu.add_folder("data", top)
    fid = emu.add_file("train.zip", size=6 * MiB, seed=3, parent_id=data)
    monkeypatch.chdir(tmp_path)
    result = drivesync.pull("p/data/train.zip", credentials=emu.credentials_path, api_url=emu.url)
    assert result.ok and (tmp_path / "train.zip").read_bytes() == emu.content(fid)
    target = tmp_path / "dir"
    target.mkdir()
    assert pull(emu, f"id:{fid}", target).ok
    assert (target / "train.zip").read_bytes() == emu.content(fid)
    assert pull(emu, f"id:{fid}", tmp_path / "renamed.zip").ok
    assert (tmp_path / "renamed.zip").read_bytes() == emu.content(fid)


def test_docs_can_be_skipped_or_exported_as_chosen(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("p")
    emu.add_doc("Report", top, kind="document", text="hello")
    out = tmp_path / "skip"
    r = pull(emu, "p", out, skip_gdocs=True)
    assert r.ok and r.gdocs_skipped == 1 and not (out / "Report.docx").exists()
    out2 = tmp_path / "pdf"
    r = pull(emu, "p", out2, export_formats="pdf")
    assert r.ok and r.exported == 1 and (out2 / "Report.pdf").read_bytes().startswith(b"%PDF")


def test_pull_works_inside_a_running_event_loop(emulator, tmp_path):
    """What a notebook cell does: drivesync.pull() while a loop is running in this thread."""
    import asyncio

    emu = emulator
    top = emu.add_folder("p")
    emu.add_file("a.txt", b"a", parent_id=top)

    async def cell():
        return pull(emu, "p", tmp_path / "out")

    assert asyncio.run(cell()).ok
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"a"


def test_downloads_start_while_deeper_levels_are_still_listing(emulator, tmp_path):
    """A folder's first level is downloading before its deepest level is even listed (issue 13), and the
    tree that lands is the same as a pull that lists everything first (--dry-run plans from the whole tree)."""
    top = emulator.add_folder("deep")
    emulator.add_file("top.bin", b"top level", parent_id=top)
    parent = top
    for depth in range(1, 4):
        parent = emulator.add_folder(f"level{depth}", parent)
        emulator.add_file(f"f{depth}.txt", f"at depth {depth}".encode(), parent_id=parent)
        emulator.add_file(f"F{depth}.txt", f"same name, other case {depth}".encode(), parent_id=parent)
    emulator.add_file("twin.txt", b"one", parent_id=parent)
    emulator.add_file("twin.txt", b"two", parent_id=parent)     # a duplicate name at the deepest level
    events = []
    planned = pull(emulator, "deep", tmp_path / "plan", dry_run=True, progress=False)
    result = pull(emulator, "deep", tmp_path / "out", subscribers=[lambda e: events.append((e.kind, e.path))],
                  progress=False)
    assert result.ok, result.failed
    order = [e for e in events if e[0] in ("queued", "start")]
    deepest = "level1/level2/level3/f3.txt"
    assert order.index(("start", "top.bin")) < order.index(("queued", deepest))
    got = local_tree(tmp_path / "out")
    assert sorted(k for k in got if not k.endswith("/")) == sorted(line.split(" ", 1)[1].rsplit(" (", 1)[0]
                                                                   for line in planned.plan
                                                                   if line.startswith("download "))
    assert result.done == planned.planned == 9


def test_a_folder_made_where_a_file_goes_after_the_plan_fails_that_file_only(emulator, tmp_path):
    """rename(2) refuses to put a file over a folder: the file fails with one line, the folder and what is
    in it stay, a small file leaves no partial behind (a large one keeps its journalled partial), and the
    other files arrive with Drive's mtime."""
    top = emulator.add_folder("blocked")
    emulator.add_file("small.bin", os.urandom(1000), parent_id=top)
    emulator.add_file("large.bin", os.urandom(3 * MiB), parent_id=top)       # above io_buffer: the ranged path
    ok_id = emulator.add_file("fine.bin", os.urandom(2000), parent_id=top)
    out = tmp_path / "out"

    def block(event):
        if event.kind == "start" and event.path in ("small.bin", "large.bin"):
            (out / event.path).mkdir()
            (out / event.path / "keep.txt").write_bytes(b"mine")

    result = pull(emulator, "blocked", out, subscribers=[block], progress=False)
    failed = {f.path: f.reason for f in result.failed}
    assert sorted(failed) == ["large.bin", "small.bin"], result.failed
    assert all("a local folder is in the way" in message for message in failed.values()), failed
    for name in ("small.bin", "large.bin"):
        assert (out / name / "keep.txt").read_bytes() == b"mine"
    assert (out / "fine.bin").read_bytes() == emulator.content(ok_id)
    leftovers = sorted(p for p in os.listdir(out) if p.endswith(PARTIAL_SUFFIX))
    assert len(leftovers) == 1 and leftovers[0].startswith(".large.bin."), leftovers
    stamped = parse_time_ns(emulator.file(ok_id)["modifiedTime"])
    assert stamped is not None and os.stat(out / "fine.bin").st_mtime_ns == stamped
