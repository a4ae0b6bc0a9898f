"""rclone's selection flags as pure rules: Filter.wants_file / wants_folder, list files, and plan.py's skip
decision under --checksum and --size-only (fake lstat, no I/O)."""
from __future__ import annotations

import os

import pytest

from drivesync.drive import RemoteFile
from drivesync.errors import UsageError
from drivesync.filters import Filter, read_list
from drivesync.plan import make_plan, modified_epoch
from drivesync.remote import Entry, Tree
from drivesync.state import SyncedRecord


def test_size_bounds_are_inclusive_and_unknown_sizes_pass():
    f = Filter(min_size=10, max_size=20)
    assert [f.wants_file("x", n) for n in (9, 10, 20, 21)] == [False, True, True, False]
    assert f.wants_file("doc", None)                 # a Google Doc has no size: not judged by it
    with pytest.raises(UsageError):
        Filter(min_size=5, max_size=4)


def test_age_bounds():
    f = Filter(newer_than=100.0, older_than=200.0)
    assert [f.wants_file("x", 1, t) for t in (99.0, 100.0, 200.0, 201.0)] == [False, True, True, False]
    assert f.wants_file("x", 1, None)


def test_files_from_and_rules_both_apply():
    f = Filter([(False, "*.tmp")], files_from=["./a/b.txt", "a/c.tmp", "d//e.bin"])
    assert f.wants_file("a/b.txt") and f.wants_file("d/e.bin")
    assert not f.wants_file("a/c.tmp")               # listed, but excluded by a rule
    assert not f.wants_file("a/other.txt")           # not listed
    assert f.wants_folder("a") and f.wants_folder("d") and not f.wants_folder("z")
    assert f.active and not Filter().active


def test_folders_are_pruned_by_excludes_only():
    f = Filter([(True, "*.txt")])
    assert f.wants_folder("sub") and not f.wants_file("sub/x.bin") and f.wants_file("sub/x.txt")
    g = Filter([(False, "tmp/"), (False, "node_modules")])
    assert not g.wants_folder("tmp") and not g.wants_folder("a/node_modules") and g.wants_folder("src")
    h = Filter([(True, "keep/**"), (False, "**")])
    assert h.wants_folder("keep") and not h.wants_folder("other")


def test_read_list_skips_comments_and_blanks():
    assert read_list("a\n\n# no\n ; no\n  b/c  \r\n*.log\n") == ["a", "b/c", "*.log"]


def test_modified_epoch():
    assert modified_epoch("1970-01-02T00:00:00.000Z") == 86400.0
    assert modified_epoch(None) is None and modified_epoch("garbage") is None


# -- the skip rule ---------------------------------------------------------------------------------------------

class Stat:
    def __init__(self, size: int, mtime_ns: int = 1):
        import stat

        self.st_size, self.st_mtime_ns, self.st_mtime = size, mtime_ns, mtime_ns / 1e9
        self.st_mode = stat.S_IFREG | 0o644


def tree_of(md5: str | None = "m" * 32, size: int = 5) -> Tree:
    item = RemoteFile(id="F1", name="a.bin", mime_type="application/octet-stream", size=size, md5=md5,
                      modified_time="2024-01-01T00:00:00.000Z", parents=["root"])
    return Tree(root=item, entries=[Entry(path="a.bin", item=item, kind="file")])


def plan(tmp_path, tree, *, local_size=5, record=True, compare="default"):
    root = str(tmp_path)
    local = os.path.join(root, "a.bin")
    records = {local: SyncedRecord(local, "F1", tree.entries[0].item.md5, local_size, 1,
                                   "2024-01-01T00:00:00.000Z", "pull")} if record else {}
    return make_plan(tree, root, records=records, lstat=lambda p: Stat(local_size), compare=compare)


def kinds(p) -> list[str]:
    return [a.kind for a in p.transfers] + [a.kind for a in p.skips]


def test_default_trusts_the_journal_checksum_does_not(tmp_path):
    assert kinds(plan(tmp_path, tree_of())) == ["skip"]
    assert kinds(plan(tmp_path, tree_of(), compare="checksum")) == ["check"]    # hashed again
    assert kinds(plan(tmp_path, tree_of(), record=False)) == ["check"]


def test_size_only_skips_equal_sizes_without_hashing(tmp_path):
    assert kinds(plan(tmp_path, tree_of(), record=False, compare="size")) == ["skip"]
    assert kinds(plan(tmp_path, tree_of(), local_size=6, record=False, compare="size")) == ["download"]


def test_checksum_without_a_drive_hash_falls_back_to_size(tmp_path):
    assert kinds(plan(tmp_path, tree_of(md5=None), record=False, compare="checksum")) == ["skip"]
    assert kinds(plan(tmp_path, tree_of(md5=None), record=False)) == ["download"]    # default: no hash, fetch


def test_an_unknown_compare_mode_is_refused(tmp_path):
    with pytest.raises(UsageError):
        plan(tmp_path, tree_of(), compare="mtime")
