"""What a pull must do: compare the remote tree, the local files and the journal -> actions.

For each remote file at its local path:
- ``skip``: the journal says we verified this exact content at this path and the local file's size and
  mtime_ns are unchanged since (no re-hash);
- ``check``: a local file of the right size that the journal does not vouch for: hash it; equal md5 ->
  record and skip, else download and replace it atomically;
- ``download`` / ``export``: missing or different;
- ``conflict``: a local folder stands where a file must go (reported as a failure, nothing removed).
``compare`` says what makes a local file the same as Drive's (rclone's flags): 'default' (the journal's word,
else size and md5), 'checksum' (--checksum: size and md5, always hashed, the journal not trusted),
'size' (--size-only: equal size is enough, nothing hashed).
With ``delete``: local files under LOCAL that Drive no longer has (and that the filters do not exclude)
are removed, never partials, never anything outside LOCAL, never through a symlink.

``make_plan`` only reads (lstat, listdir); it never writes, downloads or hashes.
"""
from __future__ import annotations

import datetime as _dt
import os
import stat as _stat
from dataclasses import dataclass, field
from typing import Callable

from . import names
from .errors import UsageError
from .filters import Filter
from .remote import Entry, Tree
from .state import SyncedRecord


@dataclass
class Action:
    kind: str            # 'download' | 'export' | 'check' | 'skip' | 'conflict' | 'delete' | 'mkdir'
    local: str           # absolute local path
    entry: Entry | None = None
    reason: str = ""

    @property
    def rel(self) -> str:
        return self.entry.path if self.entry is not None else self.local


@dataclass
class Plan:
    root: str
    mkdirs: list[Action] = field(default_factory=list)
    transfers: list[Action] = field(default_factory=list)     # download / export / check
    skips: list[Action] = field(default_factory=list)
    conflicts: list[Action] = field(default_factory=list)
    deletes: list[Action] = field(default_factory=list)
    filtered: int = 0

    @property
    def bytes_to_transfer(self) -> int:
        return sum(a.entry.size for a in self.transfers if a.entry is not None and a.kind != "check")

    def lines(self) -> list[str]:
        """Human-readable plan, one action per line (what --dry-run prints)."""
        out = [f"mkdir    {a.local}" for a in self.mkdirs]
        for a in self.transfers:
            size = f" ({a.entry.size} bytes)" if a.entry and a.entry.kind == "file" else ""
            out.append(f"{a.kind:<8} {a.rel}{size}" + (f"  [{a.reason}]" if a.reason else ""))
        out += [f"conflict {a.rel}  [{a.reason}]" for a in self.conflicts]
        out += [f"delete   {a.local}" for a in self.deletes]
        return out


def unchanged(record: SyncedRecord | None, entry: Entry, st: os.stat_result) -> bool:
    """Does the journal vouch for this local file as a copy of this remote item, untouched since?"""
    if record is None or record.file_id != entry.item.id:
        return False
    if record.size != st.st_size or record.mtime_ns != st.st_mtime_ns:
        return False
    if entry.kind == "doc":
        return record.remote_modified == entry.item.modified_time
    if entry.item.size is not None and entry.item.size != st.st_size:
        return False
    if entry.item.md5:
        return record.md5 == entry.item.md5
    return record.remote_modified == entry.item.modified_time


def modified_epoch(text: str | None) -> float | None:
    """Drive's modifiedTime ('2024-05-01T12:00:00.000Z') -> epoch seconds, or None."""
    if not text:
        return None
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=_dt.timezone.utc)).timestamp()


COMPARE_MODES = ("default", "checksum", "size")


#: What a plan knows of a local folder (``LocalFolders``).
ABSENT = "absent"      # nothing is there, so nothing under it either: its files need no lstat
MADE = "made"          # this pull made it, empty, after planning it: nothing planned into it exists yet
PRESENT = "present"    # something is there (a folder, or a file in the way): each file under it is lstat'ed


@dataclass
class LocalFolder:
    local: str      # where it is (root joined with its names)
    real: str       # where that leads (symlinks resolved): always inside the root's real path
    state: str      # ABSENT | MADE | PRESENT
    is_dir: bool


class LocalFolders:
    """The local folders a pull plans into, each checked once instead of once per file: its path, that it
    stays inside ``root`` (a symlinked folder that leads out is refused with UsageError, as
    names.join_inside refuses it), and whether anything is there. A folder's check starts from its parent's
    (one lstat; a realpath only for a symlink), and under an absent folder nothing is looked at: a fresh
    pull's files cost no syscall to plan. A pull that plans level by level keeps one for all its plans and
    calls ``made`` once a plan's folders exist: a folder it made holds nothing it has not planned yet (every
    folder's children are planned once, at distinct paths), so the next level's files need no lstat either."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.root_real = os.path.realpath(self.root)
        self._known: dict[tuple[str, ...], LocalFolder] = {}
        self._by_local: dict[str, LocalFolder] = {}

    def folder(self, parts: tuple[str, ...]) -> LocalFolder:
        known = self._known.get(parts)
        if known is None:
            known = self._known[parts] = self._check(parts)
            self._by_local[known.local] = known
        return known

    def _check(self, parts: tuple[str, ...]) -> LocalFolder:
        if not parts:
            return self._look(self.root, self.root_real, None)
        parent = self.folder(parts[:-1])
        name = _checked_name(parts[-1])
        local = os.path.join(parent.local, name)
        real = os.path.join(parent.real, name)
        if parent.state != PRESENT:
            return LocalFolder(local, real, ABSENT, False)
        return self._look(local, real, parent)

    def _look(self, local: str, real: str, parent: LocalFolder | None) -> LocalFolder:
        try:
            st = os.lstat(local)
        except FileNotFoundError:
            return LocalFolder(local, real, ABSENT, False)
        except NotADirectoryError:      # a file in the way on the way: each file under it is a conflict
            return LocalFolder(local, real, PRESENT, False)
        if _stat.S_ISLNK(st.st_mode):
            real = os.path.realpath(local)
            if parent is not None and not _under(real, self.root_real):
                raise UsageError(f"refusing to write outside {self.root}: {local}")
            return LocalFolder(local, real, PRESENT, os.path.isdir(real))
        return LocalFolder(local, real, PRESENT, _stat.S_ISDIR(st.st_mode))

    def is_dir(self, local: str) -> bool:
        known = self._by_local.get(local)
        return os.path.isdir(local) if known is None else known.is_dir

    def made(self, plan: "Plan") -> None:
        """``plan``'s mkdirs were made: the folders are there, empty but for what later plans put in them."""
        for action in plan.mkdirs:
            known = self._by_local.get(action.local)
            if known is not None and known.state == ABSENT:
                known.state, known.is_dir = MADE, True


def _checked_name(name: str) -> str:
    if name in ("", ".", "..") or "/" in name or "\x00" in name or (os.sep != "/" and os.sep in name):
        raise UsageError(f"refusing unsafe local name {name!r}")
    return name


def _under(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([root, path]) == root
    except ValueError:
        return False


def make_plan(tree: Tree, root: str, *, records: dict[str, SyncedRecord], filter: Filter | None = None,
              delete: bool = False, lstat: Callable[[str], os.stat_result] = os.lstat,
              protect: frozenset[str] = frozenset(), compare: str = "default",
              folders: LocalFolders | None = None) -> Plan:
    """Actions that make ``root`` a verified copy of ``tree`` (``records``: journal rows under root;
    ``protect``: absolute paths --delete must never remove, e.g. the journal if it lives under root;
    ``folders``: what earlier plans of this pull learnt of root's folders, see LocalFolders)."""
    if compare not in COMPARE_MODES:
        raise UsageError(f"unknown compare mode {compare!r}")
    root = os.path.abspath(root)
    filter = filter or Filter()
    plan = Plan(root=root)
    wanted_files: set[str] = set()
    needed_dirs: set[str] = set()
    remote_dirs: set[str] = set()
    if folders is None or folders.root != root:
        folders = LocalFolders(root)

    for entry in tree.entries:
        parts = tuple(entry.path.split("/"))
        if entry.kind == "folder":
            remote_dirs.add(folders.folder(parts).local)
            continue
        parent = folders.folder(parts[:-1])
        # The file's own name may be a symlink, even one that leads out: the download replaces the link
        # itself and never writes through it, so only the folders on the way are checked.
        local = os.path.join(parent.local, _checked_name(parts[-1]))
        if filter.active and not filter.wants_file(entry.path, entry.item.size,
                                                   modified_epoch(entry.item.modified_time)):
            plan.filtered += 1
            continue
        wanted_files.add(local)
        needed_dirs.add(parent.local)
        if parent.state != PRESENT:
            plan.transfers.append(Action("export" if entry.kind == "doc" else "download", local, entry))
            continue
        try:
            st = lstat(local)
        except FileNotFoundError:
            plan.transfers.append(Action("export" if entry.kind == "doc" else "download", local, entry))
            continue
        except NotADirectoryError:
            plan.conflicts.append(Action("conflict", local, entry, "a local file is in the way of its folder"))
            continue
        if _stat.S_ISDIR(st.st_mode):
            plan.conflicts.append(Action("conflict", local, entry, "a local folder is in the way"))
            continue
        record = records.get(local)
        if _stat.S_ISREG(st.st_mode) and compare != "checksum" and unchanged(record, entry, st):
            plan.skips.append(Action("skip", local, entry))
            continue
        if ((compare == "size" or (compare == "checksum" and not entry.item.md5))   # rclone: no hash, size only
                and _stat.S_ISREG(st.st_mode) and entry.kind != "doc"
                and entry.item.size is not None and entry.item.size == st.st_size):
            plan.skips.append(Action("skip", local, entry, "same size (--size-only)"))
            continue
        if entry.kind == "doc":
            plan.transfers.append(Action("export", local, entry, "changed on Drive or not from us"))
            continue
        known_different = (
            not _stat.S_ISREG(st.st_mode)                                # a symlink or special file: replace
            or (entry.item.size is not None and st.st_size != entry.item.size)
            or (compare != "checksum" and record is not None and record.file_id == entry.item.id
                and record.size == st.st_size and record.mtime_ns == st.st_mtime_ns
                and record.md5 != entry.item.md5)  # ours, content changed
        )
        if known_different or not entry.item.md5:
            plan.transfers.append(Action("download", local, entry, "differs"))
        else:
            plan.transfers.append(Action("check", local, entry, "not in the journal: hash it"))

    if not filter.active:
        needed_dirs |= remote_dirs  # empty remote folders arrive too (not when filtering: rclone does the same)
    if needed_dirs or not filter.active:
        needed_dirs.add(root)
    for directory in sorted(needed_dirs):
        probe = directory
        missing_dirs = []
        while not folders.is_dir(probe) and probe != os.path.dirname(probe):
            missing_dirs.append(probe)
            probe = os.path.dirname(probe)
        for d in reversed(missing_dirs):
            plan.mkdirs.append(Action("mkdir", d))
    seen = set()
    plan.mkdirs = [a for a in plan.mkdirs if not (a.local in seen or seen.add(a.local))]

    if delete:
        plan.deletes = _deletions(root, wanted_files | set(protect), remote_dirs, filter)
    return plan


def _deletions(root: str, wanted: set[str], remote_dirs: set[str], filter: Filter) -> list[Action]:
    out: list[Action] = []
    if not os.path.isdir(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        # Symlinked folders are not entered (os.walk does not follow them); the link itself is a file here.
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(filenames + links):
            path = os.path.join(dirpath, name)
            if names.is_partial(name) or path in wanted:
                continue
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if filter.active and not _local_wanted(filter, rel, path):
                continue  # excluded files are left alone (rclone: only --delete-excluded removes them)
            if names.inside(root, os.path.dirname(path)):
                out.append(Action("delete", path, None, "gone from Drive"))
    return out


def _local_wanted(filter: Filter, rel: str, path: str) -> bool:
    """The filters applied to a local file (its own size and mtime), as rclone applies them to the destination."""
    try:
        st = os.lstat(path)
    except OSError:
        return filter.wants_file(rel)
    return filter.wants_file(rel, st.st_size, st.st_mtime)
