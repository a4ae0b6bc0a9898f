"""Remote paths and trees: resolve ``deeplearning/data`` (or ``id:FILEID``) to one item, and list a
whole tree in few requests.

Listing asks for many folders per query (``trashed=false and ('a' in parents or 'b' in parents ...)``,
``settings.list_batch`` ids, ``pageSize=1000``, a partial ``fields`` selection) with
``settings.list_concurrency`` queries in flight, so a tree of 10,000 files in 1,000 folders costs a few
dozen requests. Shortcuts are followed (to files and folders) with loop detection; trashed items are
ignored; Docs editor files get their export type and extension; names are made local-safe and distinct
(names.py). ``build_tree`` is pure, so the shape of a tree is unit-tested without a server.

This module reads Drive metadata only: it never downloads content and never touches local files.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Iterable

from . import names
from .drive import FOLDER, Drive, RemoteFile, parents_query, quote
from .errors import AmbiguousPath, DriveError, NotAFolder, RemoteNotFound, UsageError

#: Fields a walk needs (smaller answers than drive.LIST_FIELDS: no exportLinks, no trashed).
WALK_FIELDS = ("nextPageToken,files(id,name,mimeType,size,md5Checksum,parents,modifiedTime,"
               "shortcutDetails(targetId,targetMimeType))")
ITEM_FIELDS = "id,name,mimeType,size,md5Checksum,parents,modifiedTime,trashed,shortcutDetails(targetId,targetMimeType)"

DOCUMENT = "application/vnd.google-apps.document"
SPREADSHEET = "application/vnd.google-apps.spreadsheet"
PRESENTATION = "application/vnd.google-apps.presentation"
DRAWING = "application/vnd.google-apps.drawing"
SCRIPT = "application/vnd.google-apps.script"

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

#: extension -> export mime type (the names --export-formats accepts).
EXPORT_TYPES = {
    "docx": DOCX, "xlsx": XLSX, "pptx": PPTX, "pdf": "application/pdf",
    "odt": "application/vnd.oasis.opendocument.text", "ods": "application/x-vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation", "rtf": "application/rtf",
    "txt": "text/plain", "html": "text/html", "csv": "text/csv", "tsv": "text/tab-separated-values",
    "epub": "application/epub+zip", "md": "text/markdown", "svg": "image/svg+xml", "png": "image/png",
    "jpg": "image/jpeg", "json": "application/vnd.google-apps.script+json",
}
#: What each Docs kind can be exported as (Drive's about.exportFormats, abridged).
EXPORTABLE = {
    DOCUMENT: {"docx", "odt", "pdf", "rtf", "txt", "html", "epub", "md"},
    SPREADSHEET: {"xlsx", "ods", "pdf", "csv", "tsv", "html"},
    PRESENTATION: {"pptx", "odp", "pdf", "txt"},
    DRAWING: {"svg", "png", "pdf", "jpg"},
    SCRIPT: {"json"},
}
DEFAULT_EXPORT_FORMATS = ("docx", "xlsx", "pptx", "svg")


def parse_export_formats(text: str | Iterable[str] | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_EXPORT_FORMATS
    items = text.split(",") if isinstance(text, str) else list(text)
    out = tuple(i.strip().lower().lstrip(".") for i in items if i.strip())
    unknown = [i for i in out if i not in EXPORT_TYPES]
    if not out or unknown:
        raise UsageError(f"--export-formats: unknown format {', '.join(unknown) or '(none)'}; "
                         f"use some of {','.join(sorted(EXPORT_TYPES))}")
    return out


def export_choice(mime_type: str, formats: Iterable[str]) -> tuple[str, str] | None:
    """(extension, export mime) for a Docs file: the first of ``formats`` its kind supports."""
    allowed = EXPORTABLE.get(mime_type, set())
    for ext in formats:
        if ext in allowed:
            return ext, EXPORT_TYPES[ext]
    return None


@dataclass
class Entry:
    """One item of a tree, at its local relative path ('/'-separated, every part a safe name)."""

    path: str
    item: RemoteFile                 # for a shortcut: its target
    kind: str                        # 'folder' | 'file' | 'doc'
    export_ext: str | None = None
    export_mime: str | None = None
    shortcut_id: str | None = None

    @property
    def size(self) -> int:
        return self.item.size or 0


@dataclass
class Listing:
    """What a walk fetched: children of each listed folder, and the targets of shortcuts."""

    children: dict[str, list[RemoteFile]] = field(default_factory=dict)
    targets: dict[str, RemoteFile | None] = field(default_factory=dict)   # None: gone or trashed
    requests: int = 0
    #: Requests spent confirming batched answers that came back empty (see fetch_listing).
    recheck_requests: int = 0
    #: Of the folders in such batches, how many did have children after all.
    recovered_folders: int = 0


@dataclass
class Tree:
    root: RemoteFile
    entries: list[Entry]
    warnings: list[str] = field(default_factory=list)
    skipped_docs: list[Entry] = field(default_factory=list)
    requests: int = 0
    recheck_requests: int = 0
    recovered_folders: int = 0

    @property
    def files(self) -> list[Entry]:
        return [e for e in self.entries if e.kind != "folder"]

    @property
    def folders(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "folder"]


# -- resolving a path -------------------------------------------------------------------------------


def split_remote(remote: str) -> tuple[list[str], bool]:
    """'a/b/' -> (['a', 'b'], True): the parts and whether a folder was asked for (trailing '/')."""
    text = remote.strip()
    wants_folder = text.endswith("/")
    parts = [p for p in text.split("/") if p not in ("",)]
    for p in parts:
        if p in (".", ".."):
            raise UsageError(f"remote path {remote!r}: '.' and '..' are not allowed; use id:FILEID")
    return parts, wants_folder


async def _follow(drive: Drive, item: RemoteFile) -> RemoteFile:
    if not item.is_shortcut:
        return item
    if not item.shortcut_target:
        raise RemoteNotFound(f"shortcut {item.name!r} (id:{item.id}) has no target")
    try:
        target = await drive.get(item.shortcut_target, ITEM_FIELDS)
    except DriveError as exc:
        if exc.status == 404:
            raise RemoteNotFound(f"shortcut {item.name!r} points to a missing item (id:{item.shortcut_target})") from None
        raise
    if target.trashed:
        raise RemoteNotFound(f"shortcut {item.name!r} points to a trashed item (id:{target.id})")
    return target


async def resolve(drive: Drive, remote: str) -> RemoteFile:
    """The one item a remote path names (shortcuts followed). ``id:FILEID`` is looked up directly;
    '' or '/' is My Drive's root. Raises RemoteNotFound, NotAFolder or AmbiguousPath (one line each)."""
    text = remote.strip()
    if text.startswith("id:"):
        file_id = text[3:].strip().rstrip("/")
        if not file_id or "'" in file_id or "/" in file_id:
            raise UsageError(f"bad id in {remote!r}")
        try:
            item = await drive.get(file_id, ITEM_FIELDS)
        except DriveError as exc:
            if exc.status == 404:
                raise RemoteNotFound(f"no file or folder with id {file_id} (or not shared with this account)") from None
            raise
        if item.trashed:
            raise RemoteNotFound(f"id:{file_id} ({item.name!r}) is in the trash")
        item = await _follow(drive, item)
        if text.endswith("/") and not item.is_folder:
            raise NotAFolder(f"id:{file_id} ({item.name!r}) is a file, not a folder")
        return item
    parts, wants_folder = split_remote(text)
    current = await drive.get("root", ITEM_FIELDS)
    walked: list[str] = []
    for i, part in enumerate(parts):
        if not current.is_folder:
            raise NotAFolder(f"{'/'.join(walked)} is a file, not a folder (so {remote!r} does not exist)")
        matches = await drive.list(f"name = {quote(part)} and {quote(current.id)} in parents and trashed = false",
                                   fields=WALK_FIELDS)
        walked.append(part)
        if not matches:
            raise RemoteNotFound(f"not found on Drive: {'/'.join(walked)}")
        if len(matches) > 1:
            last = i == len(parts) - 1
            # Folders win over files only where a folder is required; otherwise the user must choose.
            if not last or wants_folder:
                folders = [m for m in matches if m.is_folder or (m.is_shortcut and m.shortcut_target_mime == FOLDER)]
                if len(folders) == 1:
                    matches = folders
            if len(matches) > 1:
                ids = ", ".join(f"id:{m.id}" + (" (folder)" if m.is_folder else "") for m in sorted(matches, key=lambda m: m.id))
                raise AmbiguousPath(f"{'/'.join(walked)} is ambiguous: {len(matches)} items have that name ({ids}); "
                                    "pass one of them as id:FILEID")
        current = await _follow(drive, matches[0])
    if wants_folder and not current.is_folder:
        raise NotAFolder(f"{'/'.join(parts)} is a file, not a folder")
    return current


# -- walking a tree ---------------------------------------------------------------------------------


async def fetch_listing(drive: Drive, root_id: str, settings, *, recursive: bool = True) -> Listing:
    """Every non-trashed item under ``root_id``, fetched breadth-first with batched parent queries.
    Each folder id is listed at most once (however many shortcuts lead to it). ``recursive=False``:
    the root's children only.

    An empty answer to a batched query is never trusted: Drive sometimes answers a ``q`` that ORs
    several parents with nothing although the folders have children (rclone issues #3114, #4289). Such
    a batch is asked once more, and if it is still empty each of its folders is listed on its own
    (single-parent queries are exact); the requests this costs are counted in ``recheck_requests``."""
    listing = Listing()
    listed: set[str] = set()
    sem = asyncio.Semaphore(settings.list_concurrency)
    batch_size = settings.list_batch

    async def query(ids: list[str]) -> tuple[list[RemoteFile], int]:
        async with sem:
            out: list[RemoteFile] = []
            pages = 0
            async for page in drive.list_pages(parents_query(ids), fields=WALK_FIELDS, page_size=1000):
                pages += 1
                out.extend(page)
            listing.requests += pages
            return out, pages

    async def list_batch(ids: list[str]) -> list[RemoteFile]:
        out, _ = await query(ids)
        if out or len(ids) == 1:
            return out
        out, pages = await query(ids)
        listing.recheck_requests += pages
        if out:
            listing.recovered_folders += len({p for item in out for p in item.parents if p in ids})
            return out
        singles = await asyncio.gather(*(query([fid]) for fid in ids))
        for items, pages in singles:
            listing.recheck_requests += pages
            if items:
                listing.recovered_folders += 1
            out.extend(items)
        return out

    async def get_target(target_id: str) -> None:
        async with sem:
            listing.requests += 1
            try:
                item = await drive.get(target_id, ITEM_FIELDS)
            except DriveError as exc:
                if exc.status == 404:
                    listing.targets[target_id] = None
                    return
                raise
        listing.targets[target_id] = None if item.trashed else item

    pending = [root_id]
    while pending:
        batch_ids = []
        for fid in pending:
            if fid not in listed:
                listed.add(fid)
                batch_ids.append(fid)
                listing.children.setdefault(fid, [])
        pending = []
        if not batch_ids:
            break
        chunks = [batch_ids[i:i + batch_size] for i in range(0, len(batch_ids), batch_size)]
        results = await asyncio.gather(*(list_batch(c) for c in chunks))
        queried = set(batch_ids)
        new_targets: list[str] = []
        for items in results:
            for item in items:
                for parent in item.parents:
                    if parent in queried:
                        listing.children[parent].append(item)
                if item.is_folder and recursive:
                    pending.append(item.id)
                elif item.is_shortcut and item.shortcut_target and item.shortcut_target not in listing.targets:
                    listing.targets[item.shortcut_target] = None
                    new_targets.append(item.shortcut_target)
        if new_targets:
            await asyncio.gather(*(get_target(t) for t in dict.fromkeys(new_targets)))
            for t in new_targets:
                target = listing.targets.get(t)
                if target is not None and target.is_folder and recursive:
                    pending.append(target.id)
    return listing


def build_tree(root: RemoteFile, listing: Listing, *, export_formats: Iterable[str] = DEFAULT_EXPORT_FORMATS,
               skip_gdocs: bool = False, max_depth: int = 256) -> Tree:
    """The local shape of a remote tree: pure, deterministic (children ordered by name, then id)."""
    formats = tuple(export_formats)
    tree = Tree(root=root, entries=[])
    # Depth-first with an explicit stack; ancestors are folder ids on the way down (loop detection).
    stack: list[tuple[str, str, tuple[str, ...]]] = [(root.id, "", (root.id,))]
    while stack:
        folder_id, prefix, ancestors = stack.pop()
        wanted: list[tuple[str, str]] = []
        staged: dict[str, Entry] = {}
        for child in sorted(listing.children.get(folder_id, []), key=lambda c: (c.name, c.id)):
            where = f"{prefix}{names.safe_name(child.name)}"
            item, shortcut_id = child, None
            if child.is_shortcut:
                shortcut_id = child.id
                item = listing.targets.get(child.shortcut_target or "")
                if item is None:
                    tree.warnings.append(f"skipping shortcut {where}: its target is missing or trashed")
                    continue
            if item.trashed:
                continue
            if item.is_folder:
                if item.id in ancestors:
                    tree.warnings.append(f"skipping shortcut {where}: it leads back into a folder above it (a loop)")
                    continue
                if len(ancestors) > max_depth:
                    tree.warnings.append(f"skipping {where}: deeper than {max_depth} folders")
                    continue
                entry = Entry("", item, "folder", shortcut_id=shortcut_id)
                local = names.safe_name(child.name)
            elif item.is_google_doc:
                choice = export_choice(item.mime_type, formats)
                local = names.safe_name(child.name)
                if choice is None or skip_gdocs:
                    why = "--skip-gdocs" if skip_gdocs else f"no export format for {item.mime_type}"
                    tree.skipped_docs.append(Entry(f"{prefix}{local}", item, "doc", shortcut_id=shortcut_id))
                    if not skip_gdocs:
                        tree.warnings.append(f"skipping {where}: {why}")
                    continue
                ext, mime = choice
                local = names.fit(f"{names.safe_name(child.name)}.{ext}")
                entry = Entry("", item, "doc", export_ext=ext, export_mime=mime, shortcut_id=shortcut_id)
            elif item.is_shortcut:
                tree.warnings.append(f"skipping {where}: a shortcut to a shortcut")
                continue
            else:
                entry = Entry("", item, "file", shortcut_id=shortcut_id)
                local = names.safe_name(child.name)
            key = shortcut_id or item.id
            staged[key] = entry
            wanted.append((key, local))
        assigned, warnings = names.assign_names(wanted)
        tree.warnings.extend(f"{prefix or './'}: {w}" for w in warnings)
        subfolders = []
        for key, entry in staged.items():
            entry.path = prefix + assigned[key]
            tree.entries.append(entry)
            if entry.kind == "folder":
                subfolders.append((entry.item.id, entry.path + "/", ancestors + (entry.item.id,)))
        stack.extend(reversed(subfolders))
    tree.entries.sort(key=lambda e: e.path)
    return tree


async def walk(drive: Drive, root: RemoteFile, settings, *, export_formats=DEFAULT_EXPORT_FORMATS,
               skip_gdocs: bool = False, recursive: bool = True) -> Tree:
    """The tree under a folder (or a one-entry tree for a single file)."""
    if not root.is_folder:
        listing = Listing(children={"": [root]})
        fake_parent = RemoteFile(id="", name="", mime_type=FOLDER)
        tree = build_tree(fake_parent, listing, export_formats=export_formats, skip_gdocs=skip_gdocs)
        tree.root = root
        return tree
    listing = await fetch_listing(drive, root.id, settings, recursive=recursive)
    tree = build_tree(root, listing, export_formats=export_formats, skip_gdocs=skip_gdocs)
    tree.requests = listing.requests
    tree.recheck_requests = listing.recheck_requests
    tree.recovered_folders = listing.recovered_folders
    return tree
