"""remote.build_tree (the local shape of a remote listing) and plan.make_plan (what to do), pure."""
import os

import pytest

from drivesync.drive import FOLDER, SHORTCUT, RemoteFile
from drivesync.filters import Filter
from drivesync.plan import LocalFolders, make_plan
from drivesync.remote import Listing, Tree, build_tree, export_choice, parse_export_formats
from drivesync.errors import UsageError
from drivesync.state import SyncedRecord

DOC = "application/vnd.google-apps.document"


def f(fid, name, parent, size=1, md5=None, mime="application/octet-stream", **kw):
    return RemoteFile(id=fid, name=name, mime_type=mime, size=size, md5=md5 or f"md5-{fid}", parents=(parent,),
                      modified_time="2024-01-01T00:00:00.000Z", **kw)


def folder(fid, name, parent):
    return RemoteFile(id=fid, name=name, mime_type=FOLDER, parents=(parent,))


ROOT = RemoteFile(id="root", name="project", mime_type=FOLDER)


def tree_of(children, targets=None, **kw):
    listing = Listing(children=children, targets=targets or {})
    return build_tree(ROOT, listing, **kw)


def test_tree_paths_duplicates_docs_and_loops():
    children = {
        "root": [f("b2", "dup.txt", "root"), f("a1", "dup.txt", "root"), folder("sub", "sub", "root"),
                 RemoteFile(id="d1", name="Notes", mime_type=DOC, parents=("root",)),
                 f("x", "../x", "root")],
        "sub": [RemoteFile(id="s1", name="up", mime_type=SHORTCUT, parents=("sub",), shortcut_target="root",
                           shortcut_target_mime=FOLDER),
                f("y", "y.bin", "sub")],
    }
    tree = tree_of(children, targets={"root": ROOT})
    paths = [e.path for e in tree.entries]
    assert paths == sorted(["dup.txt", "dup (b2).txt", "sub", "Notes.docx", "..\uff0fx", "sub/y.bin"])
    assert {e.path: e.item.id for e in tree.entries}["dup.txt"] == "a1"
    assert any("loop" in w for w in tree.warnings)
    doc = [e for e in tree.entries if e.kind == "doc"][0]
    assert doc.export_ext == "docx"
    assert tree_of(children, targets={"root": ROOT}).entries == tree.entries  # deterministic


def test_skip_gdocs_and_missing_shortcut_targets():
    children = {"root": [RemoteFile(id="d1", name="Notes", mime_type=DOC, parents=("root",)),
                         RemoteFile(id="s", name="dangling", mime_type=SHORTCUT, parents=("root",),
                                    shortcut_target="gone", shortcut_target_mime="text/plain")]}
    tree = tree_of(children, targets={"gone": None}, skip_gdocs=True)
    assert tree.entries == [] and len(tree.skipped_docs) == 1
    assert any("dangling" in w for w in tree.warnings)


def test_export_format_choice():
    assert export_choice(DOC, ("pdf", "docx")) == ("pdf", "application/pdf")
    assert export_choice(DOC, ("xlsx",)) is None
    assert parse_export_formats("docx, .pdf") == ("docx", "pdf")
    with pytest.raises(UsageError):
        parse_export_formats("docx,exe")


def stat_of(size, mtime_ns=1, mode=0o100644):
    return os.stat_result((mode, 0, 0, 1, 0, 0, size, 0, 0, 0, 0.0, 0.0, 0.0, 0, mtime_ns, 0))


def plan_for(tmp_path, local_files, records=None, **kw):
    children = {"root": [f("a", "a.bin", "root", size=10, md5="m-a"), f("b", "b.bin", "root", size=10, md5="m-b"),
                         f("c", "c.bin", "root", size=10, md5="m-c"), f("d", "d.bin", "root", size=10, md5="m-d"),
                         f("e", "e.bin", "root", size=10, md5="m-e")]}
    tree = tree_of(children)
    root = str(tmp_path)

    def lstat(path):
        name = os.path.basename(path)
        if name not in local_files:
            raise FileNotFoundError(path)
        return local_files[name]

    recs = {os.path.join(root, k): v for k, v in (records or {}).items()}
    return make_plan(tree, root, records=recs, lstat=lstat, **kw)


def rec(fid, md5, size=10, mtime_ns=1):
    return SyncedRecord("", fid, md5, size, mtime_ns, "2024-01-01T00:00:00.000Z", "pull")


def test_plan_decides_per_file(tmp_path):
    local = {
        "a.bin": stat_of(10),               # journal vouches: skip, no hash
        "b.bin": stat_of(10, mtime_ns=2),   # touched since: hash it
        "c.bin": stat_of(7),                # wrong size: download
        "d.bin": stat_of(10),               # ours, but Drive's content changed: download without hashing
        # e.bin missing: download
    }
    records = {"a.bin": rec("a", "m-a"), "b.bin": rec("b", "m-b"), "d.bin": rec("d", "old")}
    plan = plan_for(tmp_path, local, records)
    kinds = {os.path.basename(a.local): a.kind for a in plan.transfers + plan.skips}
    assert kinds == {"a.bin": "skip", "b.bin": "check", "c.bin": "download", "d.bin": "download", "e.bin": "download"}
    assert plan.bytes_to_transfer == 30


def test_plan_reports_a_folder_in_the_way(tmp_path):
    plan = plan_for(tmp_path, {"a.bin": stat_of(0, mode=0o040755)})
    assert [os.path.basename(a.local) for a in plan.conflicts] == ["a.bin"]


def test_plan_filters(tmp_path):
    plan = plan_for(tmp_path, {}, filter=Filter([(True, "[ab].bin")]))
    assert sorted(os.path.basename(a.local) for a in plan.transfers) == ["a.bin", "b.bin"]
    assert plan.filtered == 3


def test_plan_deletes_only_unknown_files_never_partials(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x")
    (tmp_path / "stray.txt").write_bytes(b"x")
    (tmp_path / ".a.bin.abcdefgh.drivesync-partial").write_bytes(b"x")
    (tmp_path / "journal.db").write_bytes(b"x")
    plan = plan_for(tmp_path, {}, delete=True, protect=frozenset({str(tmp_path / "journal.db")}))
    assert [os.path.basename(a.local) for a in plan.deletes] == ["stray.txt"]


def nested_tree():
    """root/sub/inner/x.bin, root/sub/y.bin, root/top.bin."""
    return tree_of({"root": [folder("s", "sub", "root"), f("t", "top.bin", "root")],
                    "s": [folder("i", "inner", "s"), f("y", "y.bin", "s")],
                    "i": [f("x", "x.bin", "i")]})


def no_lstat(path):
    raise AssertionError(f"lstat({path}) under a folder known to be absent")


def test_a_fresh_root_is_planned_without_looking_at_its_files(tmp_path):
    root = tmp_path / "fresh"
    plan = make_plan(nested_tree(), str(root), records={}, lstat=no_lstat)
    assert sorted(os.path.relpath(a.local, root) for a in plan.transfers) == ["sub/inner/x.bin", "sub/y.bin", "top.bin"]
    assert {a.kind for a in plan.transfers} == {"download"}
    assert [os.path.relpath(a.local, tmp_path) for a in plan.mkdirs] == ["fresh", "fresh/sub", "fresh/sub/inner"]


def test_folders_this_pull_made_need_no_lstat_but_folders_that_were_there_do(tmp_path):
    """A pull planning level by level: the folders the first plan made are empty but for what is planned
    into them later; a folder that was already there is looked into file by file (a file there may be
    a verified copy to skip, or a folder in the way)."""
    children = {"root": [folder("s", "sub", "root"), folder("o", "old", "root")],
                "s": [f("y", "y.bin", "s")], "o": [f("z", "z.bin", "o", size=10)]}
    tree = tree_of(children)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "z.bin").mkdir()              # a folder where Drive has a file
    folders = LocalFolders(str(tmp_path))
    level1 = Tree(root=ROOT, entries=[e for e in tree.entries if "/" not in e.path])
    plan = make_plan(level1, str(tmp_path), records={}, folders=folders, lstat=no_lstat)
    assert [os.path.basename(a.local) for a in plan.mkdirs] == ["sub"]
    for action in plan.mkdirs:
        os.mkdir(action.local)
    folders.made(plan)
    seen = []
    level2 = Tree(root=ROOT, entries=[e for e in tree.entries if "/" in e.path])
    plan = make_plan(level2, str(tmp_path), records={}, folders=folders,
                     lstat=lambda p: (seen.append(os.path.relpath(p, tmp_path)), os.lstat(p))[1])
    assert seen == ["old/z.bin"]
    assert [os.path.relpath(a.local, tmp_path) for a in plan.transfers] == ["sub/y.bin"]
    assert [os.path.relpath(a.local, tmp_path) for a in plan.conflicts] == ["old/z.bin"]
    assert plan.mkdirs == []


def test_a_symlinked_folder_is_followed_inside_root_and_refused_out_of_it(tmp_path):
    root = tmp_path / "out"
    (root / "real").mkdir(parents=True)
    (root / "real" / "inner").mkdir()
    (root / "sub").symlink_to(root / "real")
    plan = make_plan(nested_tree(), str(root), records={})
    assert sorted(os.path.relpath(a.local, root) for a in plan.transfers) == ["sub/inner/x.bin", "sub/y.bin", "top.bin"]
    assert plan.mkdirs == []                           # sub leads to a folder, inner is there
    (root / "sub").unlink()
    (root / "sub").symlink_to(tmp_path)                # leads out of root (to its parent)
    with pytest.raises(UsageError, match="outside"):
        make_plan(nested_tree(), str(root), records={})
    (root / "sub").unlink()
    (root / "real" / "inner").rmdir()
    (root / "real" / "inner").symlink_to(tmp_path)     # one level further down, through a link inside root
    (root / "sub").symlink_to(root / "real")
    with pytest.raises(UsageError, match="outside"):
        make_plan(nested_tree(), str(root), records={})


def test_a_file_in_the_way_of_a_folder_makes_its_files_conflicts(tmp_path):
    (tmp_path / "sub").write_bytes(b"a file where Drive has a folder")
    plan = make_plan(nested_tree(), str(tmp_path), records={})
    assert sorted(os.path.relpath(a.local, tmp_path) for a in plan.conflicts) == ["sub/inner/x.bin", "sub/y.bin"]
    assert [os.path.relpath(a.local, tmp_path) for a in plan.transfers] == ["top.bin"]
