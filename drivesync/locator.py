"""REMOTE as a user writes it -> a typed ``Locator``: where on Drive an item is. Pure: no I/O.

The forms (``parse``), and what each means:

- a path under My Drive: ``deeplearning/data``; ``''`` or ``/`` is My Drive itself. A trailing ``/``
  means "this must be a folder". A leading ``/`` always means a My Drive path, never an id, a link or a
  prefix below (``/id:x`` is the folder named ``id:x``). ``.`` and ``..`` are refused.
- ``id:ID`` and ``id:ID/rest/of/path`` (a path below the item with that id); an optional
  ``?resourcekey=KEY`` at the end gives the item's resource key (the form ``Locator.child`` writes for
  link-shared folders).
- a bare Drive id (``1AbC...``): one token, no ``/`` but an optional trailing one, id-shaped (19 or more
  of ``A-Z a-z 0-9 _ -``, with at least one digit and one letter). Such a token could also be a name in My
  Drive, so it is a ``Locator`` with ``bare_id=True`` and remote.py decides, conservatively: an item of
  that name at the top of My Drive wins (what worked before keeps its meaning), else it is the id.
- a Drive or Docs link: ``drive.google.com/drive/folders/ID``, ``/drive/u/N/folders/ID``,
  ``/file/d/ID/view``, ``open?id=ID``, ``uc?id=ID&export=download``, ``drive.usercontent.google.com/
  download?id=ID``, ``docs.google.com/<kind>/d/ID/...``, with or without ``https://``, ``usp=``, ``/a/DOMAIN``
  or ``#fragment``; ``resourcekey=KEY`` in the query is kept as the item's resource key.
- ``shared-with-me:NAME/rest/of/path``: NAME is an item others shared with this account.
- ``shared-drive:DRIVE NAME/rest/of/path``: a shared drive by name; with ``drive_id`` (``--drive-id``)
  the text is a path inside that shared drive.

Every refusal is a ``UsageError`` with one line that says what was wrong and what to write instead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import UsageError

MY_DRIVE = "my-drive"
ID = "id"
SHARED_WITH_ME = "shared-with-me"
SHARED_DRIVE = "shared-drive"

ID_PREFIX = "id:"
SHARED_WITH_ME_PREFIX = "shared-with-me:"
SHARED_DRIVE_PREFIX = "shared-drive:"

#: What a Drive id (file, folder or shared drive) is made of.
_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")
#: A resource key: "0-AbC..." (also older shapes); the same alphabet.
_KEY_CHARS = _ID_CHARS
#: How long an id (from id: or a link) may be; Drive's are 19 (shared drives) to 44 (old Docs) characters.
_ID_MIN, _ID_MAX = 10, 200
#: A bare token is taken for an id only when it is at least this long (shared drive ids are 19).
BARE_ID_MIN = 19

DRIVE_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")
#: Drive web views that are not one item (searching, recent files ...).
_VIEWS = {"search", "recent", "starred", "trash", "computers", "home", "quota", "spam", "shared-drives",
          "blocked", "priority", "settings"}


@dataclass(frozen=True)
class Locator:
    """Where an item is: an anchor (My Drive's root, an id, an item shared with me, a shared drive) and
    a path of names below it. ``text`` is what the user wrote, for messages."""

    anchor: str                          # MY_DRIVE | ID | SHARED_WITH_ME | SHARED_DRIVE
    parts: tuple[str, ...] = ()          # names below the anchor (SHARED_WITH_ME: the first is the shared item)
    wants_folder: bool = False           # a trailing '/': the item must be a folder
    file_id: str | None = None           # ID (and a bare id's token)
    resource_key: str | None = None      # ID: the resource key a link carried
    drive_name: str | None = None        # SHARED_DRIVE by name
    drive_id: str | None = None          # SHARED_DRIVE by id (--drive-id)
    bare_id: bool = False                # MY_DRIVE path of one id-shaped name: remote.py tries the name, then the id
    text: str = ""

    # -- reading it -------------------------------------------------------------------------------

    @property
    def is_root(self) -> bool:
        """My Drive itself (nothing below the root)."""
        return self.anchor == MY_DRIVE and not self.parts

    @property
    def name(self) -> str | None:
        """The last name the locator spells (None when it spells none: an id, a link, a drive's root)."""
        return self.parts[-1] if self.parts else None

    def describe(self) -> str:
        """A short form for messages: 'data/train', 'id:1AbC.../train', 'shared-drive:Lab/x', 'My Drive'.
        Characters that would break the one line (newlines, controls) are written as escapes."""
        text = self.canonical() or "My Drive"
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)

    def canonical(self) -> str:
        """A REMOTE that parses back to this locator (less ``text`` and ``bare_id``)."""
        rest = "/".join(self.parts)
        if self.anchor == MY_DRIVE:
            out = rest
            if not self.bare_id and out and _looks_special(out):
                out = "/" + out          # a leading '/' keeps a path a path
        elif self.anchor == ID:
            out = ID_PREFIX + self.file_id + (f"/{rest}" if rest else "")
        elif self.anchor == SHARED_WITH_ME:
            out = SHARED_WITH_ME_PREFIX + rest
        elif self.drive_id is not None:
            out = rest                   # with --drive-id, a path inside that drive
        else:
            out = SHARED_DRIVE_PREFIX + (self.drive_name or "") + (f"/{rest}" if rest else "")
        if self.wants_folder and out and not out.endswith("/") and (self.parts or self.anchor != MY_DRIVE):
            out += "/"
        if self.anchor == ID and self.resource_key:
            out += f"?resourcekey={self.resource_key}"
        return out

    # -- deriving others --------------------------------------------------------------------------

    def child(self, name: str) -> "Locator":
        """The item called ``name`` inside this one."""
        if self.bare_id:
            raise ValueError("a bare id must be decided (as_path / as_id) before naming a child")
        return replace(self, parts=self.parts + (name,), wants_folder=False, text="")

    def parent(self) -> "Locator":
        """The folder that holds the last part (a locator with no parts has no parent here)."""
        if not self.parts:
            raise ValueError("no parent: the locator names no part")
        return replace(self, parts=self.parts[:-1], wants_folder=True, bare_id=False, text="")

    def as_path(self) -> "Locator":
        """A bare id decided as a name in My Drive."""
        return replace(self, bare_id=False, file_id=None)

    def as_id(self) -> "Locator":
        """A bare id decided as an id."""
        return Locator(ID, (), self.wants_folder, file_id=self.file_id, text=self.text)


# -- parsing ---------------------------------------------------------------------------------------


def _looks_special(text: str) -> bool:
    return (text.startswith((ID_PREFIX, SHARED_WITH_ME_PREFIX, SHARED_DRIVE_PREFIX)) or is_url(text)
            or is_bare_id(text.rstrip("/")))


def is_id(text: str) -> bool:
    """Made of Drive's id alphabet and of a plausible length (ids from id: and links)."""
    return _ID_MIN <= len(text) <= _ID_MAX and bool(_ID_CHARS.fullmatch(text))


def is_bare_id(token: str) -> bool:
    """The conservative rule for a bare token: 19+ id characters, with a digit and a letter in it."""
    return (BARE_ID_MIN <= len(token) <= _ID_MAX and bool(_ID_CHARS.fullmatch(token))
            and any(c.isdigit() for c in token) and any(c.isalpha() for c in token))


def _parts(text: str, whole: str) -> tuple[tuple[str, ...], bool]:
    wants_folder = text.endswith("/")
    parts = tuple(p for p in text.split("/") if p)
    for p in parts:
        if p in (".", ".."):
            raise UsageError(f"remote path {whole!r}: '.' and '..' are not allowed; name the folder, or use id:FILEID")
        if "\x00" in p:
            raise UsageError(f"remote path {whole!r}: a name cannot contain a NUL character")
    return parts, wants_folder


def _check_id(value: str, whole: str, what: str = "id") -> str:
    if not is_id(value):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise UsageError(f"{whole[:120]!r}: {shown!r} is not a Drive {what} (letters, digits, '-' and '_', "
                         f"{_ID_MIN} to {_ID_MAX} of them)")
    return value


def _check_key(value: str, whole: str) -> str:
    if not value or len(value) > _ID_MAX or not _KEY_CHARS.fullmatch(value):
        raise UsageError(f"{whole[:120]!r}: {value[:60]!r} is not a Drive resource key")
    return value


def parse(text: str, *, drive_id: str | None = None) -> Locator:
    """REMOTE text -> Locator; raises UsageError (one line) for anything it cannot mean."""
    if not isinstance(text, str):
        raise UsageError("REMOTE must be text: a path under My Drive, id:ID, a Drive link, "
                         "shared-with-me:NAME or shared-drive:NAME")
    whole = text
    text = text.strip()
    if drive_id is not None:
        drive_id = _check_id(str(drive_id).strip(), f"--drive-id {drive_id}", "shared drive id")
        if text.startswith((ID_PREFIX, SHARED_WITH_ME_PREFIX, SHARED_DRIVE_PREFIX)) or is_url(text):
            raise UsageError(f"--drive-id takes a path inside that shared drive, not {text[:80]!r}")
        parts, wants_folder = _parts(text, whole)
        return Locator(SHARED_DRIVE, parts, wants_folder, drive_id=drive_id, text=whole)
    if text.startswith("/"):
        parts, wants_folder = _parts(text, whole)
        return Locator(MY_DRIVE, parts, wants_folder and bool(parts), text=whole)
    if text.startswith(ID_PREFIX):
        return _parse_id(text[len(ID_PREFIX):], whole)
    if text.startswith(SHARED_WITH_ME_PREFIX):
        parts, wants_folder = _parts(text[len(SHARED_WITH_ME_PREFIX):], whole)
        return Locator(SHARED_WITH_ME, parts, wants_folder and bool(parts), text=whole)
    if text.startswith(SHARED_DRIVE_PREFIX):
        rest = text[len(SHARED_DRIVE_PREFIX):]
        name, _, below = rest.partition("/")
        name = name.strip()
        if not name:
            raise UsageError(f"{whole!r}: name the shared drive (shared-drive:DRIVE NAME/path), or pass --drive-id ID")
        parts, wants_folder = _parts(below, whole)
        return Locator(SHARED_DRIVE, parts, wants_folder or (rest.endswith("/")), drive_name=name, text=whole)
    if is_url(text):
        return parse_url(text, whole)
    parts, wants_folder = _parts(text, whole)
    if len(parts) == 1 and is_bare_id(parts[0]):
        return Locator(MY_DRIVE, parts, wants_folder, file_id=parts[0], bare_id=True, text=whole)
    return Locator(MY_DRIVE, parts, wants_folder and bool(parts), text=whole)


def _parse_id(rest: str, whole: str) -> Locator:
    key = None
    m = re.search(r"\?resourcekey=([^/?&#]*)$", rest, flags=re.IGNORECASE)
    if m:
        key = _check_key(m.group(1), whole)
        rest = rest[:m.start()]
    file_id, slash, below = rest.partition("/")
    file_id = file_id.strip()
    if not file_id:
        raise UsageError(f"{whole!r}: no id after 'id:' (write id:FILEID)")
    _check_id(file_id, whole)
    parts, wants_folder = _parts(below, whole)
    return Locator(ID, parts, wants_folder or (bool(slash) and not parts), file_id=file_id, resource_key=key,
                   text=whole)


def is_url(text: str) -> bool:
    """Does REMOTE look like a web link (a scheme, or a Drive host first)?"""
    low = text.lower()
    if low.startswith(("http://", "https://")):
        return True
    host = low.split("/", 1)[0].split("?", 1)[0]
    return host in DRIVE_HOSTS or host in tuple("www." + h for h in DRIVE_HOSTS)


def parse_url(text: str, whole: str | None = None) -> Locator:
    """A Drive or Docs link -> an ID locator (with its resource key), My Drive or shared-with-me."""
    whole = whole if whole is not None else text
    url = text if "://" in text[:10] else "https://" + text
    try:
        split = urlsplit(url)
        host = (split.hostname or "").lower()
    except ValueError:
        raise UsageError(f"{whole[:120]!r} is not a link drivesync can read") from None
    if host.startswith("www."):
        host = host[4:]
    if host not in DRIVE_HOSTS:
        raise UsageError(f"{whole[:120]!r} is not a Google Drive link (the host is {host or 'missing'}); "
                         "pass a drive.google.com or docs.google.com link, id:ID or a path under My Drive")
    query = parse_qs(split.query, keep_blank_values=True)
    lowered = {k.lower(): v for k, v in query.items()}
    key = None
    if lowered.get("resourcekey"):
        key = _check_key(lowered["resourcekey"][0].strip(), whole)
    segs = [unquote(s) for s in split.path.split("/") if s]
    # /a/DOMAIN/... (Workspace) and /u/N/ (which signed-in account) say nothing about the item.
    if len(segs) >= 2 and segs[0] == "a":
        segs = segs[2:]
    cleaned = []
    i = 0
    while i < len(segs):
        if segs[i] == "u" and i + 1 < len(segs) and segs[i + 1].isdigit():
            i += 2
            continue
        cleaned.append(segs[i])
        i += 1
    segs = cleaned
    file_id = None
    wants_folder = False
    if "folders" in segs:
        at = segs.index("folders")
        if at + 1 < len(segs):
            file_id, wants_folder = segs[at + 1], True
    elif "d" in segs:
        at = segs.index("d")
        if at + 1 < len(segs):
            if segs[at + 1] == "e":
                raise UsageError(f"{whole[:120]!r} is a published copy (/d/e/...), which does not carry the Drive id; "
                                 "open the file itself and copy its address")
            file_id = segs[at + 1]
    elif lowered.get("id"):
        file_id = lowered["id"][0].strip()
    elif segs[:2] == ["drive", "my-drive"] or segs == ["drive"]:
        return Locator(MY_DRIVE, (), text=whole)
    elif segs[:2] == ["drive", "shared-with-me"]:
        raise UsageError(f"{whole[:120]!r} is the 'Shared with me' page, not one item; "
                         "write shared-with-me:NAME (the shared item's name)")
    elif len(segs) >= 2 and segs[0] == "drive" and segs[1] in _VIEWS:
        raise UsageError(f"{whole[:120]!r} is a Drive page ({segs[1]}), not one item; "
                         "open the file or folder and copy its address")
    if not file_id:
        raise UsageError(f"{whole[:120]!r}: found no file or folder id in this link; "
                         "copy the address of the file or folder itself (it has /d/ID or /folders/ID in it)")
    _check_id(file_id, whole)
    return Locator(ID, (), wants_folder, file_id=file_id, resource_key=key, text=whole)
