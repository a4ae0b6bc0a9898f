"""``push --watch``'s eyes: OS file-system events -> observations, handed to a callback.

``FileSystemObserver`` runs watchdog's InotifyObserver, or its PollingObserver where inotify is
missing, where the folder is on a network/FUSE file system (``network_filesystem``: inotify does not
see writes made elsewhere there), or when asked to poll. Each event becomes one or two observations in
completion.py's vocabulary (``created``, ``modified``, ``closed``, ``moved_from``/``moved_to``,
``deleted``) with a '/'-separated path relative to the watched folder, passed to
``callback(kind, rel, is_dir)`` on the observer's own thread.

What it must never do: decide whether anything is complete (completion.py does), upload, or touch the
watcher's loop (the callback hands observations over).
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Callable

from .completion import CLOSED, CREATED, DELETED, MODIFIED, MOVED_FROM, MOVED_TO

log = logging.getLogger("drivesync.watch")

#: File systems where inotify misses writes made elsewhere (or sees nothing at all): poll instead.
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse", "fuse.", "ceph", "glusterfs", "lustre",
              "gcsfuse", "afs", "davfs")


def network_filesystem(path: str, mounts_file: str = "/proc/mounts") -> str | None:
    """The type of the file system holding ``path`` if it is a network/FUSE one (e.g. a Drive mount)."""
    try:
        with open(mounts_file, encoding="utf-8") as fh:
            mounts = [line.split()[1:3] for line in fh if len(line.split()) >= 3]
    except OSError:
        return None
    path = os.path.realpath(path)
    best, best_type = "", None
    for mount_point, fs_type in mounts:
        mount_point = mount_point.replace("\\040", " ")
        if (path == mount_point or path.startswith(mount_point.rstrip("/") + "/")) and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    if best_type and any(best_type == t or (t.endswith(".") and best_type.startswith(t)) for t in NETWORK_FS):
        return best_type
    return None


class FileSystemObserver:
    """Observes ``root`` recursively; ``start()`` (then ``kind`` is 'inotify' or 'polling'), ``stop()``."""

    def __init__(self, root: str, callback: Callable[[str, str, bool], None], *, poll: bool = False,
                 poll_interval: float = 1.0):
        self.root = root
        self.callback = callback
        self.poll = poll
        self.poll_interval = poll_interval
        self.kind = ""
        self._observer = None

    def start(self) -> "FileSystemObserver":
        from watchdog.events import FileSystemEventHandler

        me = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                me._on_fs_event(event)

        observer = None
        network = network_filesystem(self.root)
        if network:
            log.info("%s is on a %s file system: inotify does not see remote writes there; polling", self.root, network)
        if not self.poll and not network:
            try:
                from watchdog.observers.inotify import InotifyObserver

                observer = InotifyObserver()
                observer.schedule(Handler(), self.root, recursive=True)
                observer.start()
                self.kind = "inotify"
            except Exception as exc:  # not Linux, or inotify limits/network file systems
                log.info("inotify unavailable (%s); polling instead", exc)
                observer = None
        if observer is None:
            from watchdog.observers.polling import PollingObserver

            observer = PollingObserver(timeout=self.poll_interval)
            observer.schedule(Handler(), self.root, recursive=True)
            observer.start()
            self.kind = "polling"
        self._observer = observer
        return self

    def stop(self) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.stop()
                self._observer.join(5)
            self._observer = None

    # -- events (observer thread) -> observations ----------------------------------------------------

    def _rel(self, path) -> str | None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not path:
            return None
        rel = os.path.relpath(path, self.root)
        if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
            return None
        return rel.replace(os.sep, "/")

    def _on_fs_event(self, event) -> None:
        kind = event.event_type
        observations = []
        src = self._rel(event.src_path)
        if kind == "moved":
            dest = self._rel(getattr(event, "dest_path", ""))
            if src:
                observations.append((MOVED_FROM, src))
            if dest:
                observations.append((MOVED_TO, dest))
        elif kind == "closed":
            observations.append((CLOSED, src))
        elif kind in ("created", "modified", "deleted"):
            if kind == "modified" and event.is_directory:
                return  # a folder's own mtime: its files report themselves
            observations.append(({"created": CREATED, "modified": MODIFIED, "deleted": DELETED}[kind], src))
        else:
            return      # opened, closed_no_write, attrib
        for obs_kind, rel in observations:
            if rel:
                self.callback(obs_kind, rel, event.is_directory)
