"""``push``: upload a local file or folder tree to Drive, skipping what Drive already holds.

What it owns: mapping a local tree onto a Drive folder (creating missing folders, one at a time per
path so concurrent jobs never create twins), deciding per file between skip (size and md5 equal),
new revision (PATCH the same file id: a changed file never becomes a second file with the same name)
and create, recording verified files in the journal, and the optional mirror delete (to the trash).
``Pusher`` is the reusable part: watcher.py drives the same object file by file.

What it must never do: retry requests (transport.py), run its own concurrency (transfer.py does),
speak the resumable protocol (upload.py), or upload a temporary or excluded name.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Iterable

from .completion import is_temporary
from .config import Settings, from_environment
from .drive import Drive, RemoteFile, quote
from .errors import (EMPTY_LOCAL, EXIT_SOME_FAILED, DriveError, DrivesyncError, JournalError, LocalNotFound, NotAFolder,
                     UsageError)
from .filters import Filter
from .locator import parse as parse_remote
from .remote import push_target, resolve_folder
from .state import Journal
from .transfer import Job, JobContext, Transfers, run_sync
from .upload import LocalStat, UploadStats, UploadTarget, file_md5, upload_file

log = logging.getLogger("drivesync.push")

#: Hidden names beside a checkpoint folder while it is uploaded, and while an older version is replaced.
#: restore.py never takes a hidden name, so neither pull --latest nor --keep-last sees them.
STAGE_PREFIX = ".drivesync-stage-"
OLD_PREFIX = ".drivesync-old-"
ITEM_FIELDS = "id,name,mimeType,size,md5Checksum,parents,modifiedTime,trashed"
LIST_FIELDS = f"nextPageToken,files({ITEM_FIELDS})"


class PushFailed(DrivesyncError):
    """Some files could not be uploaded (the others were). ``result`` says which."""

    exit_code = EXIT_SOME_FAILED

    def __init__(self, result: "PushResult"):
        self.result = result
        first_path, first_error = result.failed[0]
        more = f" (and {len(result.failed) - 1} more)" if len(result.failed) > 1 else ""
        super().__init__(f"{len(result.failed)} file(s) not uploaded: {first_path}: {first_error}{more}")


@dataclass
class PushResult:
    local: str
    remote: str
    remote_id: str = ""
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0
    #: Uploads Drive reported no md5Checksum for: checked by X-Goog-Hash, or by size alone.
    verified_by_goog_hash: int = 0
    verified_by_size_only: int = 0
    seconds: float = 0.0             # wall time of push()/push_async()
    filtered: int = 0                # left out by --include/--exclude/--files-from/--min-size/... (counted, never sent)
    dry_run: bool = False
    plan: list[str] = field(default_factory=list)   # with dry_run: what would happen, one line each
    planned: int = 0                 # with dry_run: files that would be uploaded
    planned_bytes: int = 0           # with dry_run: their bytes

    def to_dict(self) -> dict:
        """What ``push --json`` prints."""
        from dataclasses import asdict

        d = asdict(self)
        d["failed"] = [{"path": path, "reason": reason} for path, reason in self.failed]
        d["ok"] = self.ok
        d["bytes_per_s"] = round(self.bytes_uploaded / self.seconds, 1) if self.seconds > 0 else 0.0
        return d

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        """'pushed 3 files (2 unchanged, 0 failed), 1.2 GiB in 8.1 s = 150.2 MiB/s -> run42/checkpoints'."""
        from .progress import human_bytes, human_rate, odd_answer_notes, plural

        filtered = f", {self.filtered} filtered out" if self.filtered else ""
        if self.dry_run:
            # What it would do, counted from the plan it listed; nothing moved, so no time or rate.
            trash = f", {len(self.deleted)} to trash" if self.deleted else ""
            return (f"would push {plural(self.planned, 'file')} ({human_bytes(self.planned_bytes)}), "
                    f"{len(self.skipped)} unchanged{trash}{filtered} -> {self.remote}")
        extra = [f"{len(self.skipped)} unchanged", f"{len(self.failed)} failed"]
        if self.deleted:
            extra.append(f"{len(self.deleted)} trashed")
        if self.filtered:
            extra.append(f"{self.filtered} filtered out")
        rate = self.bytes_uploaded / self.seconds if self.seconds > 0 else 0.0
        text = (f"pushed {plural(len(self.uploaded), 'file')} ({', '.join(extra)}), {human_bytes(self.bytes_uploaded)} "
                f"in {self.seconds:.1f} s = {human_rate(rate)}")
        return "; ".join([text] + odd_answer_notes(self)) + f" -> {self.remote}"

    def __repr__(self) -> str:
        return f"PushResult({self})"

    def _repr_html_(self) -> str:
        from .progress import result_html

        return result_html(str(self), self.ok, [f"{path}: {error}" for path, error in self.failed])

    def summary(self) -> str:
        from .progress import human_bytes

        text = (f"pushed {self.local} -> {self.remote}: {len(self.uploaded)} uploaded "
                f"({human_bytes(self.bytes_uploaded)}), {len(self.skipped)} unchanged")
        if self.deleted:
            text += f", {len(self.deleted)} trashed"
        if self.failed:
            text += f", {len(self.failed)} failed"
        from .progress import odd_answer_notes

        return "; ".join([text] + odd_answer_notes(self))


def default_remote(local: str) -> str:
    """REMOTE when none is given: the local folder's name under My Drive (a file goes to My Drive's root)."""
    path = os.path.abspath(local)
    if os.path.isdir(path):
        name = os.path.basename(path.rstrip(os.sep))
        if not name:
            raise UsageError(f"cannot name a Drive folder after {local!r}: pass REMOTE")
        return name
    return ""


def _under(root_real: str, real: str) -> bool:
    """Is the resolved path ``real`` at or under the resolved folder ``root_real``?"""
    try:
        return os.path.commonpath([root_real, real]) == root_real
    except ValueError:
        return False


class Pusher:
    """One local root mapped onto one Drive folder; uploads files by their path relative to the root.

    Remote folders are found or created lazily and cached; each folder's listing is fetched once and
    kept up to date with what this object uploads.
    """

    def __init__(self, drive: Drive, journal: Journal, local_root: str, remote_root_id: str, *,
                 exclude: Iterable[str] = (), chunk_size: int | None = None, copy_links: bool = False,
                 filter: Filter | None = None, compare: str = "default"):
        self.drive = drive
        self.journal = journal
        self.local_root = os.path.abspath(local_root)
        #: Follow symlinks that lead out of local_root (--copy-links); links inside it are always followed.
        self.copy_links = copy_links
        #: What the last local_files() left out: symlinks leading out of the root, broken ones, loops.
        self.links_skipped: dict[str, int] = {}
        #: Paths, sizes and ages that are part of the push (--include/--exclude/--files-from/--min-size/...).
        self.filter = filter if filter is not None else Filter.from_lists(exclude=exclude)
        #: What makes Drive's file the same as ours: 'default' (size and md5; the journal's md5 for a file
        #: unchanged since it was hashed), 'checksum' (size and md5, always hashed), 'size' (size only).
        self.compare = compare
        #: Files local_files() left out by the size and age filters.
        self.filtered = 0
        self.chunk_size = chunk_size
        self._folders: dict[str, str] = {"": remote_root_id}
        self._listings: dict[str, dict[str, list[RemoteFile]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def remote_root_id(self) -> str:
        return self._folders[""]

    # -- rules -------------------------------------------------------------------------------------

    def wanted(self, rel: str) -> bool:
        """Is this path (relative, '/'-separated) ever uploaded? Temporary names and excludes are not."""
        if any(is_temporary(part) for part in rel.split("/")):
            return False
        return self.filter.wants(rel)

    def local_path(self, rel: str) -> str:
        return os.path.join(self.local_root, *rel.split("/")) if rel else self.local_root

    # -- remote folders ----------------------------------------------------------------------------

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _remember(self, parent_id: str, item: RemoteFile) -> None:
        """Put a file or folder we just made (or gave a new revision) into the parent's cached listing.

        The cache at this moment, not the one read before the upload began: a failure elsewhere may have
        dropped it meanwhile (and a re-list may not have seen this item yet), and a stale copy would make
        the next push of the same name create a twin."""
        current = self._listings.get(parent_id)
        if current is None:
            return          # not cached: the next listing reads it from Drive
        same = current.setdefault(item.name, [])
        for i, c in enumerate(same):
            if c.id == item.id:
                same[i] = item
                return
        same.append(item)

    async def listing(self, folder_id: str, *, refresh: bool = False) -> dict[str, list[RemoteFile]]:
        async with self._lock("list:" + folder_id):
            if refresh or folder_id not in self._listings:
                items = await self.drive.list(f"{quote(folder_id)} in parents and trashed = false", fields=LIST_FIELDS,
                                              within=[folder_id])
                by_name: dict[str, list[RemoteFile]] = {}
                for item in items:
                    by_name.setdefault(item.name, []).append(item)
                self._listings[folder_id] = by_name
            return self._listings[folder_id]

    async def folder(self, rel_dir: str, *, create: bool = True) -> str | None:
        """The Drive folder id for a local directory (relative path), created with its parents if missing."""
        rel_dir = rel_dir.strip("/")
        if rel_dir in self._folders:
            return self._folders[rel_dir]
        parent_rel, _, name = rel_dir.rpartition("/")
        parent_id = await self.folder(parent_rel, create=create)
        if parent_id is None:
            return None
        async with self._lock("folder:" + rel_dir):
            if rel_dir in self._folders:
                return self._folders[rel_dir]
            children = await self.listing(parent_id)
            folders = [c for c in children.get(name, []) if c.is_folder]
            if folders:
                if len(folders) > 1:
                    log.warning("%d Drive folders are named %s; using id:%s", len(folders), rel_dir, folders[0].id)
                folder_id = folders[0].id
            elif children.get(name):
                raise NotAFolder(f"{rel_dir} is a file on Drive, not a folder")
            elif not create:
                return None
            else:
                created = await self.drive.create_folder(name, parent_id)
                self._remember(parent_id, created)
                self._listings[created.id] = {}
                folder_id = created.id
            self._folders[rel_dir] = folder_id
            return folder_id

    async def find(self, rel: str) -> RemoteFile | None:
        """The Drive item at a relative path, or None (without creating anything)."""
        parent_rel, _, name = rel.strip("/").rpartition("/")
        parent_id = await self.folder(parent_rel, create=False)
        if parent_id is None:
            return None
        items = (await self.listing(parent_id)).get(name, [])
        return items[0] if items else None

    # -- one file ----------------------------------------------------------------------------------

    async def push_file(self, rel: str, *, path: str | None = None, progress=None,
                        stats: UploadStats | None = None, abandon=None) -> tuple[str, RemoteFile]:
        """Upload one file (``rel`` is its Drive path under the root; ``path`` its local path when that is
        not the same) unless Drive already holds it; returns ('done' | 'skip', the Drive file)."""
        self.journal.check()   # a journal that failed stops the run before the next file
        path = path or self.local_path(rel)
        stats = stats if stats is not None else UploadStats()
        st = LocalStat.of(path)
        if not os.path.isfile(path):
            raise UsageError(f"{path} is not a regular file")
        parent_rel, _, name = rel.rpartition("/")
        parent_id = await self.folder(parent_rel)
        children = await self.listing(parent_id)
        same_name = children.get(name, [])
        if any(c.is_folder for c in same_name):
            raise NotAFolder(f"{rel}: Drive has a folder with that name; not replacing it with a file")
        existing = self._pick(path, [c for c in same_name if not c.is_google_doc])
        same, local_md5, _why = await self.same_on_drive(path, st, existing)
        if same:
            return "skip", existing
        target = UploadTarget(name=name, parent_id=parent_id, file_id=existing.id if existing else None)
        try:
            remote = await upload_file(self.drive, path, target, journal=self.journal, chunk_size=self.chunk_size,
                                       md5=local_md5, progress=progress, stats=stats, abandon=abandon)
        except BaseException:
            if existing is None:
                # The create may have landed on Drive without our hearing of it: list again next time.
                self._listings.pop(parent_id, None)
            raise
        self._remember(parent_id, remote)
        # Without Drive's md5 the journal keeps ours (the upload's, verified by integrity's rule), for the next skip.
        self._record(path, remote, remote.md5 or stats.md5 or None, st)
        return "done", remote

    async def same_on_drive(self, path: str, st: LocalStat, existing: RemoteFile | None,
                            *, record: bool = True) -> tuple[bool, str | None, str]:
        """Is ``existing`` (Drive's file of this name, or None) the same as the local file, per ``compare``?
        Returns (same, the local md5 when it was computed, why it is sent: 'new' or 'changed'). A file found
        the same by its md5 is journaled (``record``) so the next push need not hash it again."""
        if existing is None:
            return False, None, "new"
        if existing.size != st.size:
            return False, None, "changed"
        if self.compare == "size":
            return True, None, ""
        if existing.md5:
            local_md5 = await self._md5(path, st)
            if local_md5 == existing.md5:
                if record:
                    self._record(path, existing, local_md5, st)
                return True, local_md5, ""
            return False, local_md5, "changed"
        if self.compare == "checksum":
            return True, None, ""          # Drive has no hash: size only (as rclone's --checksum falls back)
        # Drive gives no md5 for this file: the journal vouches that we put these very bytes there and
        # that Drive's file has not changed since (same id, size and modifiedTime).
        return self._unchanged_without_md5(path, existing, st), None, "changed"

    def _unchanged_without_md5(self, path: str, existing: RemoteFile, st: LocalStat) -> bool:
        record = self.journal.synced(path)
        return bool(record and record.file_id == existing.id and record.md5 and record.size == st.size
                    and record.mtime_ns == st.mtime_ns and existing.modified_time
                    and record.remote_modified == existing.modified_time)

    def _pick(self, path: str, candidates: list[RemoteFile]) -> RemoteFile | None:
        if not candidates:
            return None
        if len(candidates) > 1:
            record = self.journal.synced(path)
            for c in candidates:
                if record and c.id == record.file_id:
                    return c
            log.warning("%d Drive files are named like %s; updating id:%s", len(candidates), path, candidates[0].id)
        return candidates[0]

    async def _md5(self, path: str, st: LocalStat) -> str:
        record = self.journal.synced(path) if self.compare != "checksum" else None
        if record and record.md5 and record.size == st.size and record.mtime_ns == st.mtime_ns:
            return record.md5
        return await asyncio.to_thread(file_md5, path)

    def _record(self, path: str, remote: RemoteFile, md5: str | None, st: LocalStat) -> None:
        self.journal.record_synced(path, file_id=remote.id, md5=md5, size=st.size, mtime_ns=st.mtime_ns,
                                   remote_modified=remote.modified_time, direction="push")

    # -- removal (mirror mode) ---------------------------------------------------------------------

    async def trash(self, rel: str) -> bool:
        """Move the Drive item at a relative path to the trash (a file or a whole folder)."""
        rel = rel.strip("/")
        parent_rel, _, name = rel.rpartition("/")
        parent_id = await self.folder(parent_rel, create=False)
        if parent_id is None:
            return False
        children = await self.listing(parent_id)
        items = children.pop(name, [])
        # A checkpoint that was still being staged when it was removed locally leaves no stage behind.
        staged = children.pop(STAGE_PREFIX + name, [])
        if staged:
            self._forget_folder(f"{parent_rel}/{STAGE_PREFIX}{name}".lstrip("/"))
        for item in items + staged:
            try:
                await self.drive.trash(item.id)
            except DriveError as exc:
                if exc.status != 404:
                    raise
            if item.is_folder:
                self._forget_folder(rel)
        prefix = self.local_path(rel)
        self.journal.forget_synced(prefix)
        for key in self.journal.synced_under(prefix):
            self.journal.forget_synced(key)
        return bool(items)

    # -- a checkpoint folder, all or nothing ------------------------------------------------------

    async def push_checkpoint(self, rel: str, files: list[str], *, abandon=None, slot=None,
                              progress=None) -> int:
        """Upload the local folder ``rel`` so that Drive shows it under its name only when complete.

        1. Nothing to do when Drive's folder already holds every file with the same size and md5.
        2. Else every file goes, in parallel (each holding one of ``slot``'s upload slots), into a hidden
           stage folder beside it, ``.drivesync-stage-NAME``. A stage left by a crash is reused: files
           already there and verified are skipped, files no longer local are trashed from it.
        3. Then one rename makes the stage the folder. An earlier version is first renamed away
           (``.drivesync-old-NAME-...``) and trashed after: a reader sees the old folder, then briefly
           none, then the new one, never a mix. Returns the bytes sent."""
        parent_rel, _, name = rel.strip("/").rpartition("/")
        stage_rel = f"{parent_rel}/{STAGE_PREFIX}{name}".lstrip("/")
        inner = [f[len(rel) + 1:] for f in files]
        if await self._holds_all(rel, inner):
            return 0
        known = stage_rel in self._folders
        stage_id = await self.folder(stage_rel)
        # A stage this run just made is known empty; one found on Drive (a crash's) is listed afresh.
        stage_children = await self.listing(stage_id, refresh=known or stage_id not in self._listings)

        async def one(part: str) -> int:
            async with (slot or contextlib.nullcontext()):
                outcome, remote = await self.push_file(f"{stage_rel}/{part}", path=self.local_path(f"{rel}/{part}"),
                                                       abandon=abandon, progress=progress)
            return (remote.size or 0) if outcome == "done" else 0

        results = await asyncio.gather(*(one(part) for part in inner), return_exceptions=True)
        for outcome in results:   # every upload ran to its own end (none cancelled mid-commit); then judge
            if isinstance(outcome, BaseException):
                raise outcome
        top_level = {part.split("/", 1)[0] for part in inner}
        for stale, items in list(stage_children.items()):
            if stale not in top_level:
                for item in items:
                    await self.drive.trash(item.id)
                stage_children.pop(stale, None)
        await self._swap(parent_rel, name, stage_rel, stage_id)
        return sum(results)

    async def _holds_all(self, rel: str, inner: list[str]) -> bool:
        """Does Drive's folder ``rel`` hold exactly these files (same size and md5), nothing more at its top?"""
        folder_id = await self.folder(rel, create=False)
        if folder_id is None:
            return False
        top = await self.listing(folder_id)
        if set(top) - {part.split("/", 1)[0] for part in inner}:
            return False
        for part in inner:
            path = self.local_path(f"{rel}/{part}")
            remote = await self.find(f"{rel}/{part}")
            st = LocalStat.of(path)
            if remote is None or remote.size != st.size:
                return False
            if not remote.md5:
                if not self._unchanged_without_md5(path, remote, st):
                    return False
            elif await self._md5(path, st) != remote.md5:
                return False
        return True

    async def _swap(self, parent_rel: str, name: str, stage_rel: str, stage_id: str) -> None:
        parent_id = await self.folder(parent_rel)
        siblings = await self.listing(parent_id, refresh=True)
        old = [item for item in siblings.get(name, []) if item.is_folder and item.id != stage_id]
        for item in old:
            await self.drive.update(item.id, {"name": f"{OLD_PREFIX}{name}-{item.id[:8]}"})
        await self.drive.update(stage_id, {"name": name})
        for item in old + [item for key, items in siblings.items() if key.startswith(f"{OLD_PREFIX}{name}-")
                           for item in items]:
            try:
                await self.drive.trash(item.id)
            except DriveError as exc:
                if exc.status != 404:
                    raise
        final_rel = f"{parent_rel}/{name}".lstrip("/")
        self._forget_folder(final_rel)
        self._forget_folder(stage_rel)
        self._listings.pop(parent_id, None)
        self._folders[final_rel] = stage_id

    def _forget_folder(self, rel: str) -> None:
        for key in [k for k in self._folders if k == rel or k.startswith(rel + "/")]:
            self._listings.pop(self._folders.pop(key), None)

    # -- a whole tree ------------------------------------------------------------------------------

    def local_files(self, rel_dir: str = "") -> list[tuple[str, int]]:
        """(relative path, size) of every wanted regular file under a local directory, sorted.

        Symlinks (to files or folders) are followed when they lead to a place inside the local root, or
        anywhere with ``copy_links``; others are left out and counted in ``links_skipped`` ('outside',
        'broken', 'loop': a folder link to a folder it is already inside)."""
        out = []
        self.filtered = 0
        skipped = {"outside": 0, "broken": 0, "loop": 0}
        root_real = os.path.realpath(self.local_root)
        base = self.local_path(rel_dir)
        stack = [(base, rel_dir.strip("/"), frozenset({os.path.realpath(base)}))]
        while stack:
            dirpath, rel_here, chain = stack.pop()
            try:
                entries = sorted(os.scandir(dirpath), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                rel = f"{rel_here}/{entry.name}".lstrip("/")
                real = None
                try:
                    if entry.is_symlink():
                        real = os.path.realpath(entry.path)
                        if not os.path.exists(real):
                            skipped["broken"] += 1
                            continue
                        if not self.copy_links and not _under(root_real, real):
                            skipped["outside"] += 1
                            continue
                    is_dir = entry.is_dir()       # follows a link that passed the rule above
                    if is_dir:
                        if any(is_temporary(p) for p in rel.split("/")) or not self.filter.wants_folder(rel):
                            continue
                        real = real or os.path.realpath(entry.path)
                        if real in chain:
                            skipped["loop"] += 1
                            continue
                        stack.append((entry.path, rel, chain | {real}))
                    elif entry.is_file() and not any(is_temporary(part) for part in rel.split("/")):
                        st = entry.stat()
                        if self.filter.wants_file(rel, st.st_size, st.st_mtime):
                            out.append((rel, st.st_size))
                        else:
                            self.filtered += 1
                except FileNotFoundError:
                    continue
        self.links_skipped = {k: v for k, v in skipped.items() if v}
        return sorted(out)

    def links_warning(self) -> str | None:
        """One line about the symlinks the last local_files() left out, or None."""
        s = self.links_skipped
        if not s:
            return None
        parts = []
        if s.get("outside"):
            parts.append(f"{s['outside']} leading out of {self.local_root} (--copy-links / -L follows them)")
        if s.get("broken"):
            parts.append(f"{s['broken']} broken")
        if s.get("loop"):
            parts.append(f"{s['loop']} looping back into a folder above them")
        total = sum(s.values())
        return f"skipped {total} symlink{'s' if total != 1 else ''}: " + "; ".join(parts)

    async def extra_remote(self, rel_dir: str, local_names: set[str]) -> list[str]:
        """Relative paths of Drive items in a mirrored folder that have no local counterpart."""
        folder_id = await self.folder(rel_dir, create=False)
        if folder_id is None:
            return []
        out = []
        for name, items in (await self.listing(folder_id)).items():
            rel = f"{rel_dir}/{name}".lstrip("/")
            if name not in local_names and items:
                out.append(rel)
            elif any(i.is_folder for i in items) and os.path.isdir(self.local_path(rel)):
                sub = set(os.listdir(self.local_path(rel)))
                out.extend(await self.extra_remote(rel, sub))
        return out


async def resolve_root(drive: Drive, remote: str, *, create: bool = True, drive_id: str | None = None) -> str:
    """The Drive folder id for REMOTE (any form; remote.resolve_folder), creating missing folders below it.
    Two Drive folders of one name on the way are refused with their ids, as pull refuses them."""
    return (await resolve_folder(drive, remote, create=create, drive_id=drive_id)).id


def _check_local(local: str) -> str:
    if local == "":     # os.path.abspath would take it for the current folder and push all of it
        raise UsageError(EMPTY_LOCAL)
    path = os.path.abspath(os.path.expanduser(local))
    if not os.path.exists(path):
        raise LocalNotFound(f"no such file or folder: {local}")
    if not (os.path.isdir(path) or os.path.isfile(path)):
        raise UsageError(f"{local} is neither a regular file nor a folder")
    if not os.access(path, os.R_OK):
        raise UsageError(f"cannot read {local}")
    return path


def make_settings(settings: Settings | None = None, *, api_url: str | None = None, transfers: int | None = None,
                  chunk_size: int | None = None, upload_cutoff: int | None = None) -> Settings:
    base = settings or from_environment()
    return base.with_(api_url=api_url, upload_transfers=transfers, upload_chunk_size=chunk_size,
                      upload_cutoff=upload_cutoff)


async def push_async(local: str, remote: str | None = None, *, settings: Settings | None = None,
                     credentials: str | None = None, impersonate: str | None = None, api_url: str | None = None,
                     transfers: int | None = None, chunk_size: int | None = None, upload_cutoff: int | None = None,
                     exclude: Iterable[str] = (), delete: bool = False, subscribers=(), journal: Journal | None = None,
                     drive: Drive | None = None, progress: bool | None = None, copy_links: bool = False,
                     drive_id: str | None = None, include: Iterable[str] = (), filter: Filter | None = None,
                     compare: str = "default", dry_run: bool = False) -> PushResult:
    """Upload ``local`` (a file or a folder) to ``remote`` (any REMOTE form locator.py reads: a path under
    My Drive, id:ID, a link, shared-with-me:NAME/..., shared-drive:NAME/...; ``drive_id``: a path inside
    that shared drive). ``filter`` (filters.Filter) or ``include``/``exclude`` choose the files; ``compare``
    is 'default', 'checksum' or 'size' (see Pusher.compare); ``dry_run`` lists what would be uploaded (and
    trashed) in ``result.plan`` and changes nothing on Drive. See ``push``."""
    from .plan import COMPARE_MODES
    from .progress import wanted

    if compare not in COMPARE_MODES:
        raise UsageError(f"unknown compare mode {compare!r} (one of {', '.join(COMPARE_MODES)})")
    filter = filter if filter is not None else Filter.from_lists(include, exclude)
    started = time.monotonic()
    subscribers = list(subscribers)
    progress = wanted(progress)
    path = _check_local(local)
    remote = default_remote(path) if remote is None else remote
    parse_remote(remote, drive_id=drive_id)     # a bad REMOTE is one line, before any request
    settings = make_settings(settings, api_url=api_url, transfers=transfers, chunk_size=chunk_size,
                             upload_cutoff=upload_cutoff)
    own_journal = journal is None
    journal = journal or Journal()
    try:
        if drive is not None:
            result = await _push(drive, journal, path, remote, settings, filter, delete, subscribers, progress,
                                 copy_links, drive_id=drive_id, compare=compare, dry_run=dry_run)
        else:
            from .session import open_drive

            async with open_drive(settings, credentials=credentials, subject=impersonate) as opened:
                result = await _push(opened, journal, path, remote, settings, filter, delete, subscribers, progress,
                                     copy_links, drive_id=drive_id, compare=compare, dry_run=dry_run)
        result.seconds = time.monotonic() - started
        return result
    finally:
        if own_journal:
            journal.close()


async def _push(drive: Drive, journal: Journal, path: str, remote: str, settings: Settings, filter: Filter,
                delete: bool, subscribers, progress: bool = False, copy_links: bool = False,
                drive_id: str | None = None, compare: str = "default", dry_run: bool = False) -> PushResult:
    from .errors import RemoteNotFound

    result = PushResult(local=path, remote=remote or "/", dry_run=dry_run)
    single: str | None = None
    create = not dry_run        # a dry run creates no folder: a missing one means every file in it is new
    if os.path.isdir(path):
        try:
            root_id = await resolve_root(drive, remote, drive_id=drive_id, create=create)
        except RemoteNotFound:
            if create:
                raise
            root_id = None
        pusher = Pusher(drive, journal, path, root_id, chunk_size=settings.upload_chunk_size,
                        copy_links=copy_links, filter=filter, compare=compare)
        files = pusher.local_files()
        result.filtered = pusher.filtered
        if pusher.links_warning():
            log.warning("%s", pusher.links_warning())
    else:
        # A file: REMOTE is a folder to put it in (trailing '/', or an existing folder) or its new path.
        try:
            folder, name = await push_target(drive, remote, os.path.basename(path), drive_id=drive_id,
                                             create=create)
            root_id = folder.id
        except RemoteNotFound:
            if create:
                raise
            root_id, name = None, os.path.basename(path)
        pusher = Pusher(drive, journal, os.path.dirname(path), root_id, chunk_size=settings.upload_chunk_size,
                        filter=filter, compare=compare)
        single = path      # one file, perhaps under another name on Drive
        files = [(name, os.path.getsize(path))]
    result.remote_id = root_id or ""
    if dry_run:
        await _plan_push(pusher, result, files, single, delete and os.path.isdir(path))
        return result

    def job_for(rel: str, size: int) -> Job:
        async def run(ctx: JobContext) -> str:
            stats = UploadStats()
            outcome, _ = await pusher.push_file(rel, path=single, progress=ctx.progress, stats=stats)
            if outcome == "done":
                result.uploaded.append(rel)
                result.bytes_uploaded += stats.bytes_sent
                if stats.verified_by == "X-Goog-Hash":
                    result.verified_by_goog_hash += 1
                elif stats.verified_by == "size":
                    result.verified_by_size_only += 1
            else:
                result.skipped.append(rel)
            return outcome
        return Job(single or pusher.local_path(rel), size, run)

    bars = None
    if progress:
        from .progress import Progress

        bars = Progress(total_bytes=sum(size for _, size in files), total_files=len(files), desc="push",
                        big_file=settings.multistream_cutoff, disable=False)  # decided by progress.wanted
        subscribers = [*subscribers, bars]
        drive.t.on_retry = bars.waiting
    transfers = Transfers(transfers=settings.upload_transfers, max_streams=settings.max_streams,
                          subscribers=subscribers)
    try:
        outcomes = await transfers.run(job_for(rel, size) for rel, size in files)
    except JournalError as exc:
        # The uploads Drive confirmed stay uploads: the line says how many there were before the run stopped.
        done = len(result.uploaded) + len(result.skipped)
        raise type(exc)(f"{exc}; {done} of {len(files)} files were on Drive and verified "
                        f"({len(result.uploaded)} uploaded) before the run stopped") from None
    finally:
        if bars is not None:
            drive.t.on_retry = None
            bars.close()
    for outcome in outcomes:
        if outcome.result == "fail":
            result.failed.append((outcome.path, str(outcome.error)))
    if delete and os.path.isdir(path):
        if result.failed:
            log.warning("not deleting anything on Drive: some uploads failed")
        else:
            for rel in await pusher.extra_remote("", set(os.listdir(path))):
                if pusher.wanted(rel) or not os.path.exists(pusher.local_path(rel)):
                    await pusher.trash(rel)
                    result.deleted.append(rel)
    return result


async def _plan_push(pusher: Pusher, result: PushResult, files: list[tuple[str, int]], single: str | None,
                     delete: bool) -> None:
    """--dry-run: decide each file as the push would (same comparison), upload nothing, change nothing."""
    for rel, size in files:
        path = single or pusher.local_path(rel)
        existing = await pusher.find(rel)
        if existing is not None and existing.is_folder:
            result.failed.append((rel, "Drive has a folder with that name; not replacing it with a file"))
            continue
        same, _md5, why = await pusher.same_on_drive(path, LocalStat.of(path), existing, record=False)
        if same:
            result.skipped.append(rel)
            continue
        result.plan.append(f"upload   {rel} ({size} bytes)  [{why}]")
        result.planned += 1
        result.planned_bytes += size
    if delete and pusher.remote_root_id is not None:
        for rel in await pusher.extra_remote("", set(os.listdir(pusher.local_root))):
            if pusher.wanted(rel) or not os.path.exists(pusher.local_path(rel)):
                result.plan.append(f"trash    {rel}")
                result.deleted.append(rel)


def push(local: str, remote: str | None = None, **options) -> PushResult:
    """Upload a local file or folder to Drive; return what happened.

    ``remote`` is a path under My Drive (default: the local folder's name); missing folders are
    created. Unchanged files (same size and md5 as on Drive) are skipped, a changed file becomes a
    new revision of the same Drive file. Options: ``credentials``, ``api_url``, ``settings``,
    ``transfers``, ``chunk_size``, ``exclude`` (globs), ``delete`` (trash Drive files that are gone
    locally), ``subscribers`` (transfer.Event callbacks), ``progress`` (None: bars in a notebook or on
    a terminal only; True/False forces them). Raises PushFailed if any file failed. Interrupting it
    (Ctrl-C, a notebook's stop button) cancels the uploads and raises KeyboardInterrupt; uploads are
    resumable, the next push sends only what Drive has not committed.
    """
    result = run_sync(push_async(local, remote, **options))
    if result.failed:
        raise PushFailed(result)
    return result
