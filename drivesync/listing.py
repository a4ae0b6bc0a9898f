"""``ls()``: what is on Drive at REMOTE, as a list of ``ListEntry`` (the ``drivesync ls`` command prints them).

REMOTE takes every form pull and push take (locator.py); two more name places rather than items:
``shared-with-me:`` (what others shared with this account) and ``shared-drive:`` (this account's shared
drives). A folder is listed one level deep, or everything below it with ``recursive=True`` (remote.py's
batched walk: a few dozen requests for 10,000 files); a file is a one-entry list. Entries come in natural
order of their paths (``step2`` before ``step10``), folders included, trashed items never.

This module reads Drive metadata only; it owns no HTTP (session.py, remote.py) and prints nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import Settings, settings_with
from .drive import FOLDER
from .locator import parse as parse_remote
from .remote import resolve, shared_with_me, walk
from .restore import natural_key
from .session import open_drive
from .transfer import run_sync

#: REMOTE texts that name a place to list rather than one item.
PLACES = ("shared-with-me:", "shared-drive:")


@dataclass(frozen=True)
class ListEntry:
    """One item ``ls`` found.

    ``path``: where it sits below REMOTE, '/'-separated, each part the local-safe name a pull would give it
    (a Docs file with its export extension, ``Plan.docx``); a folder's path has no trailing '/'.
    ``name``: its name on Drive. ``kind``: 'folder', 'file', 'doc' (a Docs editor file, exported by a pull)
    or 'drive' (a shared drive, from ``ls('shared-drive:')``). ``size`` (bytes) and ``md5`` are None where
    Drive keeps none (folders, Docs files); ``modified`` is Drive's RFC 3339 modifiedTime.
    ``shortcut_id``: the shortcut's own id when the entry was reached through one (the rest describes its target).
    """

    path: str
    name: str
    kind: str
    id: str
    size: int | None = None
    md5: str | None = None
    modified: str | None = None
    mime_type: str | None = None
    shortcut_id: str | None = None

    @property
    def is_folder(self) -> bool:
        return self.kind in ("folder", "drive")


async def ls_async(remote: str = "", *, recursive: bool = False, settings: Settings | None = None,
                   credentials: str | None = None, impersonate: str | None = None, drive_id: str | None = None,
                   authorizer=None, **setting_overrides) -> list[ListEntry]:
    """The coroutine behind ``ls``; see the module docstring. ``setting_overrides`` are Settings fields
    (``api_url=...``, ``give_up_after=60``)."""
    settings = settings_with(settings, setting_overrides)
    place = remote.strip() if remote.strip() in PLACES and not drive_id else None
    loc = None if place else parse_remote(remote, drive_id=drive_id)   # bad REMOTE: one line, before any request
    async with open_drive(settings, credentials=credentials, subject=impersonate, authorizer=authorizer) as drive:
        if place == "shared-drive:":
            entries = [ListEntry(path=d.name, name=d.name, kind="drive", id=d.id) for d in await drive.shared_drives()]
        elif place == "shared-with-me:":
            entries = [_shared(item) for item in await shared_with_me(drive)]
        else:
            tree = await walk(drive, await resolve(drive, loc), settings, recursive=recursive)
            entries = [_entry(e) for e in tree.entries + tree.skipped_docs]
    return sorted(entries, key=_order)


def ls(remote: str = "", recursive: bool = False, **options) -> list[ListEntry]:
    """What is on Drive at REMOTE (My Drive itself by default); see ``ls_async`` for the options.
    Safe to call from a notebook cell (as ``pull`` is)."""
    return run_sync(ls_async(remote, recursive=recursive, **options))


def _entry(e) -> ListEntry:
    item = e.item
    return ListEntry(path=e.path, name=item.name, kind=e.kind, id=item.id,
                     size=None if e.kind != "file" else item.size, md5=item.md5, modified=item.modified_time,
                     mime_type=item.mime_type, shortcut_id=e.shortcut_id)


def _shared(item) -> ListEntry:
    folder = item.is_folder or item.shortcut_target_mime == FOLDER
    if item.is_shortcut:      # described by its target's id and type; Drive's listing carries no more of it
        return ListEntry(path=item.name, name=item.name, kind="folder" if folder else "file",
                         id=item.shortcut_target or item.id, modified=item.modified_time,
                         mime_type=item.shortcut_target_mime, shortcut_id=item.id)
    return ListEntry(path=item.name, name=item.name, kind="folder" if folder else "file", id=item.id,
                     size=item.size, md5=item.md5, modified=item.modified_time, mime_type=item.mime_type)


def _order(entry: ListEntry):
    return [natural_key(part) for part in entry.path.split("/")], entry.id
