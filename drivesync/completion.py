"""``push --watch``'s rules: when is a file or a checkpoint folder complete? Pure, fake-clock tested.

* ``is_temporary``: names that are never a finished file (``*.tmp``, ``tmp-*``, ``*.part``, editor swap
  files); pusher.py skips them too.
* ``CompletionTracker`` turns observations (created / modified / closed / moved / deleted, with a
  timestamp from the caller's clock) into items that are complete. A file directly in the watched
  folder is complete when it is closed after writing (inotify IN_CLOSE_WRITE), renamed into place, or
  unchanged for ``settle`` seconds. A file inside a sub-folder belongs to that folder (a Hugging Face
  ``checkpoint-500/`` written file by file): the folder is complete when it is renamed into place
  (``tmp-checkpoint-500`` -> ``checkpoint-500``), when its ``complete_marker`` file is closed, or when
  nothing in it changed for ``settle`` seconds. Temporary names (and whatever ``wanted`` refuses, e.g.
  ``--exclude``) never count.

What it must never do: I/O (no files, no clocks of its own, no threads), or import the observer, the
watcher or the pusher; observer.py and watcher.py feed it, pusher.py asks ``is_temporary``.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

#: Names that are never a finished file: writers' temporaries, partial downloads, editor swap files.
TEMPORARY_PATTERNS = (
    "*.tmp", "*.tmp.*", "*.temp", "tmp-*", "*.part", "*.partial", "*.crdownload", "*.drivesync-partial",
    "*.swp", "*.swo", "*.swx", ".*.sw?", "*~", ".#*", "#*#", "4913", ".~lock.*", ".nfs*",
)
_TEMPORARY_RE = re.compile("|".join(fnmatch.translate(p) for p in TEMPORARY_PATTERNS))

DEFAULT_SETTLE_S = 15.0


def is_temporary(name: str) -> bool:
    """Is this one path element a temporary name (never uploaded)?"""
    return bool(_TEMPORARY_RE.match(name.rstrip("/")))


#: The observations the tracker understands (observer.py turns OS events into these).
CREATED, MODIFIED, CLOSED, MOVED_TO, MOVED_FROM, DELETED = "created", "modified", "closed", "moved_to", "moved_from", "deleted"


@dataclass(frozen=True)
class Ready:
    """An item that became complete: a file ('file'), a checkpoint folder ('dir'), or a removal ('delete')."""

    key: str            # 'last.ckpt' or 'checkpoint-500/' (folders end with '/')
    rel: str            # path relative to the watched folder, '/'-separated, without trailing '/'
    kind: str
    since: float        # when it became complete (clock of the caller)
    reason: str = ""


@dataclass
class _Pending:
    rel: str
    kind: str
    deadline: float
    first_seen: float


class CompletionTracker:
    """Observations in, complete items out. Not thread-safe: one owner (the watcher's loop)."""

    def __init__(self, *, settle: float = DEFAULT_SETTLE_S, complete_marker: str | None = None,
                 wanted=None, mirror_deletes: bool = False):
        self.settle = settle
        self.complete_marker = complete_marker
        self.marker_settle = min(settle, 2.0)
        self._wanted = wanted or (lambda rel: not any(is_temporary(p) for p in rel.split("/")))
        self.mirror_deletes = mirror_deletes
        self._pending: dict[str, _Pending] = {}
        self._ready: dict[str, Ready] = {}
        self._renamed: dict[str, float] = {}     # folder key -> when it was renamed into place

    # -- what belongs to what ----------------------------------------------------------------------

    @staticmethod
    def item_of(rel: str, is_dir: bool = False) -> tuple[str, str, str]:
        """(key, rel, kind) of the item a path belongs to: its own file at the top level, else its folder."""
        rel = rel.strip("/")
        if is_dir:
            return rel + "/", rel, "dir"
        parent, _, _ = rel.rpartition("/")
        if parent:
            return parent + "/", parent, "dir"
        return rel, rel, "file"

    def wanted(self, rel: str, is_dir: bool = False) -> bool:
        rel = rel.strip("/")
        return bool(rel) and self._wanted(rel + ("/" if is_dir else ""))

    # -- observations ------------------------------------------------------------------------------

    def observe(self, kind: str, rel: str, now: float, *, is_dir: bool = False) -> None:
        rel = rel.strip("/")
        if not rel or not self.wanted(rel, is_dir):
            return
        if kind in (DELETED, MOVED_FROM):
            self._gone(rel, now, is_dir)
            return
        if is_dir:
            if kind == MOVED_TO:
                # A whole folder renamed into place: complete now (and any folder containing it changed).
                self._complete(rel + "/", rel, "dir", now, "renamed into place")
                self._renamed[rel + "/"] = now
                self._touch_parent(rel, now)
            elif kind == CREATED and "/" in rel:
                self._touch_parent(rel, now)
            return
        key, item_rel, item_kind = self.item_of(rel)
        name = rel.rpartition("/")[2]
        if item_kind == "file":
            if kind in (CLOSED, MOVED_TO):
                self._complete(key, item_rel, "file", now, "closed" if kind == CLOSED else "renamed into place")
            else:
                self._settle(key, item_rel, "file", now)
            return
        # A file inside a checkpoint folder.
        renamed_at = self._renamed.get(key)
        if renamed_at is not None and kind == MOVED_TO and now - renamed_at <= 2.0:
            return   # the per-file echoes of the folder's own rename
        if self.complete_marker and name == self.complete_marker:
            if kind in (CLOSED, MOVED_TO):
                self._complete(key, item_rel, "dir", now, f"{name} appeared")
                return
            self._settle(key, item_rel, "dir", now, self.marker_settle)
            return
        if key in self._ready and self._ready[key].kind == "dir":
            # More writes after it was declared complete: wait for them to settle too.
            del self._ready[key]
        self._settle(key, item_rel, "dir", now)

    def _touch_parent(self, rel: str, now: float) -> None:
        parent = rel.rpartition("/")[0]
        if parent:
            key, item_rel, _ = self.item_of(parent, is_dir=True)
            self._settle(key, item_rel, "dir", now)

    def settle_later(self, key: str, rel: str, kind: str, now: float, wait: float | None = None) -> None:
        """Let this item (``key``, ``rel``, ``kind`` as ``item_of`` gives them) settle from ``now``, for
        ``wait`` seconds (default ``settle``): it may still be being written. The watcher calls this for
        files written moments before it started, and for an upload that found its file changing."""
        self._settle(key, rel, kind, now, wait)

    def _settle(self, key: str, rel: str, kind: str, now: float, wait: float | None = None) -> None:
        wait = self.settle if wait is None else wait
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = _Pending(rel, kind, now + wait, now)
        else:
            pending.deadline = now + wait

    def _complete(self, key: str, rel: str, kind: str, now: float, reason: str) -> None:
        self._pending.pop(key, None)
        self._ready[key] = Ready(key, rel, kind, now, reason)

    def _gone(self, rel: str, now: float, is_dir: bool) -> None:
        key, item_rel, item_kind = self.item_of(rel, is_dir)
        if is_dir or item_kind == "file":
            self._pending.pop(key, None)
            self._ready.pop(key, None)
            for k in [k for k in self._pending if k.startswith(key)] if is_dir else []:
                del self._pending[k]
            if self.mirror_deletes:
                self._ready["-" + key] = Ready("-" + key, item_rel, "delete", now, "deleted locally")
            if "/" in item_rel and is_dir:
                self._touch_parent(item_rel, now)
            return
        # One file of a checkpoint folder removed: the folder changed.
        self._settle(key, item_rel, "dir", now)
        if self.mirror_deletes:
            self._ready["-" + rel] = Ready("-" + rel, rel, "delete", now, "deleted locally")

    # -- questions ---------------------------------------------------------------------------------

    def due(self, now: float) -> list[Ready]:
        """Items complete at ``now`` (each handed out once), oldest first."""
        for key, pending in list(self._pending.items()):
            if pending.deadline <= now:
                del self._pending[key]
                self._ready[key] = Ready(key, pending.rel, pending.kind, pending.deadline, "settled")
        out = sorted(self._ready.values(), key=lambda r: r.since)
        self._ready.clear()
        return out

    def next_deadline(self) -> float | None:
        if self._ready:
            return 0.0
        return min((p.deadline for p in self._pending.values()), default=None)

    def complete_all(self, now: float) -> None:
        """flush: whatever is settling is declared complete now (the caller says writing is over)."""
        for key, pending in list(self._pending.items()):
            del self._pending[key]
            self._ready[key] = Ready(key, pending.rel, pending.kind, now, "flush")

    @property
    def pending(self) -> list[str]:
        return sorted(self._pending)
