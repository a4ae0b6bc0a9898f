"""Remote paths and trees: resolve REMOTE in any form (``deeplearning/data``, ``id:FILEID``, a Drive link,
``shared-with-me:NAME/...``, ``shared-drive:NAME/...``; parsed by locator.py) to one item, find or create
the folder a push writes into, and list a whole tree in few requests.

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
from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable, Iterable

from . import locator, names
from .drive import ACCESS_FIELDS, FOLDER, Drive, RemoteFile, parents_query, quote
from .errors import AmbiguousPath, DriveError, NoAccess, NotAFolder, NoWriteAccess, RemoteNotFound, UsageError
from .locator import Locator

#: Fields a walk needs (smaller answers than drive.LIST_FIELDS: no exportLinks, no trashed).
WALK_FIELDS = ("nextPageToken,files(id,name,mimeType,size,md5Checksum,parents,modifiedTime,"
               f"shortcutDetails(targetId,targetMimeType),{ACCESS_FIELDS})")
ITEM_FIELDS = ("id,name,mimeType,size,md5Checksum,parents,modifiedTime,trashed,shortcutDetails(targetId,targetMimeType),"
               f"{ACCESS_FIELDS}")

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
#
# REMOTE's forms are parsed by locator.py; here each anchor becomes an item, then the path below it is
# walked one name at a time (listing inside the folder: in a shared drive with corpora=drive, with the
# resource keys of link-shared folders). The rules, in one place:
#   - My Drive path: from files.get('root').
#   - id:ID / a link: files.get(ID) (the link's resourcekey is sent as X-Goog-Drive-Resource-Keys); a 404 is
#     "this account cannot see it" (NoAccess), naming the account and suggesting to ask the owner.
#   - a bare id-shaped token: an item of that name at the top of My Drive wins; else it is an id.
#   - shared-with-me:NAME: files.list(q="sharedWithMe = true and name = 'NAME'"); none is NoAccess, several are
#     ambiguous (unless exactly one is a folder where a folder is needed), as a path is.
#   - shared-drive:NAME: drives.list, matched by exact name (several: AmbiguousPath, use --drive-id);
#     --drive-id ID: drives.get(ID). The drive's root is the folder whose id is the drive's id.
#   - shortcuts are followed wherever they point (a shared drive, an item shared with this account).


async def _follow(drive: Drive, item: RemoteFile) -> RemoteFile:
    if not item.is_shortcut:
        return item
    if not item.shortcut_target:
        raise RemoteNotFound(f"shortcut {item.name!r} (id:{item.id}) has no target")
    try:
        target = await drive.get(item.shortcut_target, ITEM_FIELDS)
    except DriveError as exc:
        if exc.status == 404:
            who = await drive.account()
            raise NoAccess(f"shortcut {item.name!r} points to an item {who} cannot see (id:{item.shortcut_target}): "
                           f"it was deleted, or its owner has not shared it with {who}") from None
        raise
    if target.trashed:
        raise RemoteNotFound(f"shortcut {item.name!r} points to a trashed item (id:{target.id})")
    return target


def _is_folderish(item: RemoteFile) -> bool:
    return item.is_folder or (item.is_shortcut and item.shortcut_target_mime == FOLDER)


def _choose(matches: list[RemoteFile], where: str, *, folder_needed: bool) -> RemoteFile:
    """The one item of ``matches`` a name means; folders win over files only where a folder is needed."""
    if len(matches) > 1 and folder_needed:
        folders = [m for m in matches if _is_folderish(m)]
        if len(folders) == 1:
            return folders[0]
    if len(matches) > 1:
        ids = ", ".join(f"id:{m.id}" + (" (folder)" if _is_folderish(m) else "")
                        for m in sorted(matches, key=lambda m: m.id))
        raise AmbiguousPath(f"{where} is ambiguous: {len(matches)} items have that name ({ids}); "
                            "pass one of them as id:FILEID")
    return matches[0]


def _where(loc: Locator, parts: tuple[str, ...]) -> str:
    return replace(loc, parts=parts, wants_folder=False).describe()


async def _decide_bare(drive: Drive, loc: Locator) -> Locator:
    """A bare id-shaped token: a name at the top of My Drive wins (what worked before still means the
    same), else it is an id."""
    if not loc.bare_id:
        return loc
    named = await drive.list(f"name = {quote(loc.parts[0])} and 'root' in parents and trashed = false",
                             fields=WALK_FIELDS)
    return loc.as_path() if named else loc.as_id()


async def _anchor(drive: Drive, loc: Locator, original: Locator) -> tuple[RemoteFile, tuple[str, ...], int]:
    """The item a locator starts from, the names still to walk below it, and how many of ``loc.parts``
    the anchor itself used (shared-with-me's NAME)."""
    if loc.anchor == locator.MY_DRIVE:
        return await drive.get("root", ITEM_FIELDS), loc.parts, 0
    if loc.anchor == locator.ID:
        if loc.resource_key:
            drive.add_resource_key(loc.file_id, loc.resource_key)
        try:
            item = await drive.get(loc.file_id, ITEM_FIELDS)
        except DriveError as exc:
            if exc.status != 404:
                raise
            who = await drive.account()
            if original.bare_id:
                raise NoAccess(f"not found on Drive: {original.parts[0]} (nothing of that name at the top of My Drive, "
                               f"and no file or folder with that id is visible to {who}; if it is someone else's, "
                               f"ask its owner to share it with {who})") from None
            what = (f"this link (id:{loc.file_id})" if locator.is_url(original.text.strip())
                    else f"id:{loc.file_id}")
            raise NoAccess(f"{who} cannot see {what}: no file or folder with that id exists or is shared with "
                           f"{who}; ask its owner to share it with {who}") from None
        if item.trashed:
            raise RemoteNotFound(f"id:{loc.file_id} ({item.name!r}) is in the trash")
        return await _follow(drive, item), loc.parts, 0
    if loc.anchor == locator.SHARED_WITH_ME:
        if not loc.parts:
            raise UsageError("shared-with-me: needs the name of an item shared with you: shared-with-me:NAME/path")
        name = loc.parts[0]
        matches = await drive.list(f"sharedWithMe = true and name = {quote(name)} and trashed = false", fields=WALK_FIELDS)
        if not matches:
            who = await drive.account()
            raise NoAccess(f"nothing named {name!r} is shared with {who} (see Drive's 'Shared with me'); "
                           f"ask its owner to share it with {who}")
        chosen = _choose(matches, _where(loc, (name,)), folder_needed=len(loc.parts) > 1 or loc.wants_folder)
        return await _follow(drive, chosen), loc.parts[1:], 1
    # a shared drive
    if loc.drive_id is not None:
        try:
            found = await drive.shared_drive(loc.drive_id)
        except DriveError as exc:
            if exc.status != 404:
                raise
            who = await drive.account()
            raise NoAccess(f"no shared drive with id {loc.drive_id} is visible to {who}; ask one of its managers "
                           f"to add {who} as a member") from None
        return found.as_folder(), loc.parts, 0
    drives = await drive.shared_drives()
    named = [d for d in drives if d.name == loc.drive_name]
    if not named:
        who = await drive.account()
        near = [d.name for d in drives if d.name.casefold() == (loc.drive_name or "").casefold()]
        hint = f" (did you mean {near[0]!r}?)" if near else (
            f" (its shared drives: {', '.join(sorted(d.name for d in drives)[:10])})" if drives else "")
        raise NoAccess(f"{who} is not a member of a shared drive named {loc.drive_name!r}{hint}; "
                       f"ask one of its managers to add {who}")
    if len(named) > 1:
        ids = ", ".join(sorted(d.id for d in named))
        raise AmbiguousPath(f"{len(named)} shared drives are named {loc.drive_name!r} ({ids}); "
                            "pass one of them with --drive-id ID")
    return named[0].as_folder(), loc.parts, 0


async def shared_with_me(drive: Drive) -> list[RemoteFile]:
    """Every item others shared with this account (Drive's 'Shared with me'), not trashed."""
    return await drive.list("sharedWithMe = true and trashed = false", fields=WALK_FIELDS)


#: My Drive's root by its alias, for looking names up below it (never returned: locate walks at least one name).
MY_DRIVE_ROOT = RemoteFile(id="root", name="My Drive", mime_type=FOLDER)


async def _children_named(drive: Drive, folder: RemoteFile, name: str) -> list[RemoteFile]:
    return await drive.list(f"name = {quote(name)} and {quote(folder.id)} in parents and trashed = false",
                            fields=WALK_FIELDS, within=[folder.id])


async def locate(drive: Drive, remote: str | Locator, *, drive_id: str | None = None) -> tuple[RemoteFile, Locator]:
    """The one item REMOTE names (shortcuts followed), and the locator it was found by (a bare id
    decided as a path or an id). Raises RemoteNotFound (NoAccess: not visible to this account),
    NotAFolder, AmbiguousPath or UsageError, one line each."""
    original = remote if isinstance(remote, Locator) else locator.parse(remote, drive_id=drive_id)
    loc = await _decide_bare(drive, original)
    if loc.anchor == locator.MY_DRIVE and loc.parts:
        # A path below My Drive's root is looked up from the 'root' alias, which Drive's queries accept
        # ("'root' in parents"): no files.get('root') round trip before the first name.
        current, below, used = MY_DRIVE_ROOT, loc.parts, 0
    else:
        current, below, used = await _anchor(drive, loc, original)
    walked = loc.parts[:used]
    for i, part in enumerate(below):
        if not current.is_folder:
            raise NotAFolder(f"{_where(loc, walked)} is a file, not a folder (so {loc.describe()!r} does not exist)")
        matches = await _children_named(drive, current, part)
        walked = walked + (part,)
        if not matches:
            raise RemoteNotFound(f"not found on Drive: {_where(loc, walked)}")
        last = i == len(below) - 1
        current = await _follow(drive, _choose(matches, _where(loc, walked), folder_needed=not last or loc.wants_folder))
    if loc.wants_folder and not current.is_folder:
        raise NotAFolder(f"{loc.describe().rstrip('/')} is a file, not a folder")
    return current, loc


async def resolve(drive: Drive, remote: str | Locator, *, drive_id: str | None = None) -> RemoteFile:
    """The one item a remote names (any form locator.py reads); see ``locate``."""
    return (await locate(drive, remote, drive_id=drive_id))[0]


# -- where a push writes ----------------------------------------------------------------------------


async def _check_writable(drive: Drive, folder: RemoteFile, where: str) -> None:
    if folder.can_add_children is False:
        who = await drive.account()
        raise NoWriteAccess(f"cannot push into {where}: {who} may only read that folder; "
                            f"ask its owner for writer (Editor) access")


async def _create_folder(drive: Drive, name: str, parent: RemoteFile, where: str) -> RemoteFile:
    await _check_writable(drive, parent, where)
    try:
        return await drive.create_folder(name, parent.id)
    except DriveError as exc:
        if exc.status == 403 and exc.reason in ("insufficientFilePermissions", "insufficientPermissions"):
            who = await drive.account()
            raise NoWriteAccess(f"cannot push into {where}: {who} may only read that folder; "
                                f"ask its owner for writer (Editor) access") from None
        raise


async def resolve_folder(drive: Drive, remote: str | Locator, *, create: bool = True,
                         drive_id: str | None = None) -> RemoteFile:
    """The folder a push writes into: the anchor, then each name below it, which must be one folder
    (two folders of one name: AmbiguousPath with their ids, as pull refuses them) or is created
    (``create``). A folder this account may only read raises NoWriteAccess."""
    original = remote if isinstance(remote, Locator) else locator.parse(remote, drive_id=drive_id)
    loc = await _decide_bare(drive, original)
    current, below, used = await _anchor(drive, loc, original)
    walked = loc.parts[:used]
    for part in below:
        if not current.is_folder:
            raise NotAFolder(f"{_where(loc, walked)} is a file on Drive, not a folder")
        matches = await _children_named(drive, current, part)
        walked = walked + (part,)
        folders = [m for m in matches if _is_folderish(m)]
        if len(folders) > 1:
            _choose(folders, _where(loc, walked), folder_needed=False)    # raises AmbiguousPath with the ids
        if folders:
            current = await _follow(drive, folders[0])
        elif matches:
            raise NotAFolder(f"{_where(loc, walked)} is a file on Drive, not a folder")
        elif create:
            current = await _create_folder(drive, part, current, _where(loc, walked[:-1]))
        else:
            raise RemoteNotFound(f"not found on Drive: {_where(loc, walked)}")
    if not current.is_folder:
        raise NotAFolder(f"{loc.describe().rstrip('/')} is a file on Drive, not a folder")
    await _check_writable(drive, current, loc.describe())
    return current


async def push_target(drive: Drive, remote: str | Locator, filename: str, *,
                      drive_id: str | None = None, create: bool = True) -> tuple[RemoteFile, str]:
    """Where one local file goes: (the Drive folder, the name on Drive). REMOTE is a folder to put it in
    (a trailing '/', an existing folder, an id or a link) or the file's new path (its last name is not a
    folder on Drive). ``create=False`` (a dry run): a missing folder raises RemoteNotFound instead."""
    original = remote if isinstance(remote, Locator) else locator.parse(remote, drive_id=drive_id)
    loc = await _decide_bare(drive, original)
    single_shared = loc.anchor == locator.SHARED_WITH_ME and len(loc.parts) == 1
    if loc.parts and not loc.wants_folder and not single_shared:
        parent = await resolve_folder(drive, loc.parent(), create=create)
        name = loc.parts[-1]
        matches = await _children_named(drive, parent, name)
        folders = [m for m in matches if _is_folderish(m)]
        if len(folders) > 1:
            _choose(folders, loc.describe(), folder_needed=False)         # raises AmbiguousPath
        if not folders:
            return parent, name
        folder = await _follow(drive, folders[0])
        await _check_writable(drive, folder, loc.describe())
        return folder, filename
    return await resolve_folder(drive, loc, create=create), filename


# -- walking a tree ---------------------------------------------------------------------------------


async def fetch_listing(drive: Drive, root_id: str, settings, *, recursive: bool = True,
                        on_level: Callable[[list[str]], Awaitable[None]] | None = None,
                        into: Listing | None = None) -> Listing:
    """Every non-trashed item under ``root_id``, fetched breadth-first with batched parent queries.
    Each folder id is listed at most once (however many shortcuts lead to it). ``recursive=False``:
    the root's children only.

    An empty answer to a batched query is never trusted: Drive sometimes answers a ``q`` that ORs
    several parents with nothing although the folders have children (rclone issues #3114, #4289). Such
    a batch is asked once more, and if it is still empty each of its folders is listed on its own
    (single-parent queries are exact); the requests this costs are counted in ``recheck_requests``.

    ``on_level(ids)``: awaited for each batch of folders ``ids`` as soon as their children (and the targets
    of the shortcuts among them) are all known, so a caller can start on them while the rest of their level
    and deeper levels list. A level of few folders is spread over ``list_concurrency`` queries.
    ``into``: fill this Listing (the one a TreeBuilder reads) instead of a new one."""
    listing = into if into is not None else Listing()
    listed: set[str] = set()
    sem = asyncio.Semaphore(settings.list_concurrency)
    batch_size = settings.list_batch

    async def query(ids: list[str]) -> tuple[list[RemoteFile], int]:
        async with sem:
            out: list[RemoteFile] = []
            pages = 0
            async for page in drive.list_pages(parents_query(ids), fields=WALK_FIELDS, page_size=1000, within=ids):
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

    fetching: dict[str, asyncio.Future] = {}

    async def list_chunk(ids: list[str]) -> list[str]:
        """List the folders ``ids`` (and the shortcut targets among their children), hand them to on_level as
        soon as they are complete, whatever the rest of their level is doing; returns the subfolders found."""
        items = await list_batch(ids)
        mine = set(ids)
        subfolders: list[str] = []
        targets: list[asyncio.Future] = []
        for item in items:
            # An item with parents in two chunks comes back from both: each places it under its own.
            for parent in item.parents:
                if parent in mine:
                    listing.children[parent].append(item)
            if item.is_folder and recursive:
                subfolders.append(item.id)
            elif item.is_shortcut and item.shortcut_target:
                if item.shortcut_target not in fetching:     # each target fetched once, awaited by all
                    fetching[item.shortcut_target] = asyncio.ensure_future(get_target(item.shortcut_target))
                targets.append(fetching[item.shortcut_target])
        if targets:
            await asyncio.gather(*targets)
        for item in items:
            if item.is_shortcut and recursive:
                target = listing.targets.get(item.shortcut_target or "")
                if target is not None and target.is_folder:
                    subfolders.append(target.id)
        if on_level is not None:
            await on_level(ids)
        return subfolders

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
        # One query lists folders of one place only: a shared drive's folders are listed with corpora=drive.
        groups: dict[str | None, list[str]] = {}
        for fid in batch_ids:
            groups.setdefault(drive.drive_of(fid), []).append(fid)
        # A level of few folders is spread over every query slot, not put in one batch of up to list_batch
        # whose pages (1000 items each) would come one after another: 20 folders of 100 images are 4
        # queries of one page in parallel, not one query of two pages in a row.
        size = max(1, min(batch_size, -(-len(batch_ids) // settings.list_concurrency)))
        chunks = [ids[i:i + size] for ids in groups.values() for i in range(0, len(ids), size)]
        found = await asyncio.gather(*(list_chunk(c) for c in chunks))
        pending = [fid for sub in found for fid in sub]
    return listing


class TreeBuilder:
    """Turns listed folders into entries, a folder at a time, as their children become known (pure,
    deterministic: children ordered by name, then id). ``expand(folder_id)`` places the children of
    every spot the folder stands at (the root, a subfolder, each shortcut to it) and returns the new
    entries; a subfolder whose children are already known is expanded at once, the others wait for
    their own ``expand``. ``build_tree`` is every folder expanded, depth-first."""

    def __init__(self, root: RemoteFile, listing: Listing, *, export_formats: Iterable[str] = DEFAULT_EXPORT_FORMATS,
                 skip_gdocs: bool = False, max_depth: int = 256):
        self.listing = listing
        self.formats = tuple(export_formats)
        self.skip_gdocs = skip_gdocs
        self.max_depth = max_depth
        self.tree = Tree(root=root, entries=[])
        #: folder id -> the spots (local prefix, ancestor ids) waiting for its children.
        self.waiting: dict[str, list[tuple[str, tuple[str, ...]]]] = {root.id: [("", (root.id,))]}
        self.known: set[str] = set()

    def expand(self, folder_ids: Iterable[str]) -> list[Entry]:
        """The entries under ``folder_ids``, whose children ``listing`` now holds in full."""
        out: list[Entry] = []
        stack: list[tuple[str, str, tuple[str, ...]]] = []
        for fid in folder_ids:
            self.known.add(fid)
            stack.extend((fid, prefix, anc) for prefix, anc in reversed(self.waiting.pop(fid, [])))
        while stack:
            folder_id, prefix, ancestors = stack.pop()
            subfolders = self._place(folder_id, prefix, ancestors, out)
            for sub_id, sub_prefix, sub_anc in reversed(subfolders):
                if sub_id in self.known:
                    stack.append((sub_id, sub_prefix, sub_anc))
                else:
                    self.waiting.setdefault(sub_id, []).append((sub_prefix, sub_anc))
        return out

    def _place(self, folder_id: str, prefix: str, ancestors: tuple[str, ...],
               out: list[Entry]) -> list[tuple[str, str, tuple[str, ...]]]:
        tree, listing = self.tree, self.listing
        wanted: list[tuple[str, str]] = []
        staged: dict[str, Entry] = {}
        for child in sorted(listing.children.get(folder_id, []), key=lambda c: (c.name, c.id)):
            where = f"{prefix}{names.safe_name(child.name)}"
            item, shortcut_id = child, None
            if child.is_shortcut:
                shortcut_id = child.id
                item = listing.targets.get(child.shortcut_target or "")
                if item is None:
                    tree.warnings.append(f"skipping shortcut {where}: its target is missing, trashed or not shared "
                                         "with this account")
                    continue
            if item.trashed:
                continue
            if item.is_folder:
                if item.id in ancestors:
                    tree.warnings.append(f"skipping shortcut {where}: it leads back into a folder above it (a loop)")
                    continue
                if len(ancestors) > self.max_depth:
                    tree.warnings.append(f"skipping {where}: deeper than {self.max_depth} folders")
                    continue
                entry = Entry("", item, "folder", shortcut_id=shortcut_id)
                local = names.safe_name(child.name)
            elif item.is_google_doc:
                choice = export_choice(item.mime_type, self.formats)
                local = names.safe_name(child.name)
                if choice is None or self.skip_gdocs:
                    why = "--skip-gdocs" if self.skip_gdocs else f"no export format for {item.mime_type}"
                    tree.skipped_docs.append(Entry(f"{prefix}{local}", item, "doc", shortcut_id=shortcut_id))
                    if not self.skip_gdocs:
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
            out.append(entry)
            if entry.kind == "folder":
                subfolders.append((entry.item.id, entry.path + "/", ancestors + (entry.item.id,)))
        return subfolders


def build_tree(root: RemoteFile, listing: Listing, *, export_formats: Iterable[str] = DEFAULT_EXPORT_FORMATS,
               skip_gdocs: bool = False, max_depth: int = 256) -> Tree:
    """The local shape of a remote tree: pure, deterministic (children ordered by name, then id)."""
    builder = TreeBuilder(root, listing, export_formats=export_formats, skip_gdocs=skip_gdocs, max_depth=max_depth)
    builder.known.update(listing.children)
    builder.expand([root.id])
    tree = builder.tree
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
