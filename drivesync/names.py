"""Turning Drive names into local names that can exist, are distinct, and stay inside LOCAL.

Drive allows names a local filesystem cannot hold (``/``, NUL, ``.``, ``..``, more than 255 bytes) and
several items with the same name in one folder. This module owns the one deterministic mapping from
Drive names to local names (the same remote tree always gives the same local tree) and the check that a
path stays under the target directory. It is pure: no I/O except ``inside`` resolving existing paths.
"""
from __future__ import annotations

import hashlib
import os
from typing import Iterable

from .errors import UsageError

#: Longest file name most local filesystems accept, in bytes of UTF-8.
NAME_MAX = 255

#: Suffix of a download in progress; never a final name, ignored by --delete.
PARTIAL_SUFFIX = ".drivesync-partial"

# rclone's choice: visually similar full-width characters instead of the impossible ones.
_REPLACE = {
    "/": "\uff0f",   # FULLWIDTH SOLIDUS
    "\x00": "\u2400",  # SYMBOL FOR NULL
}
_TRANSLATE = str.maketrans(_REPLACE)


def _truncate_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that is at most ``limit`` bytes of UTF-8 (never splits a character)."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")


def split_ext(name: str) -> tuple[str, str]:
    """'model.tar' -> ('model', '.tar'); '.bashrc' -> ('.bashrc', ''); extensions longer than 16 bytes
    are not treated as extensions (so truncation keeps something readable)."""
    stem, ext = os.path.splitext(name)
    if not stem or len(ext.encode("utf-8")) > 16:
        return name, ""
    return stem, ext


def fit(name: str, limit: int = NAME_MAX, *, tag: str | None = None) -> str:
    """Shorten ``name`` to ``limit`` bytes keeping its extension; a too-long name gets a short hash of
    the full name (or ``tag``) so two long names that share a prefix stay distinct."""
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, ext = split_ext(name)
    mark = "~" + (tag or hashlib.sha1(name.encode("utf-8")).hexdigest()[:8])
    room = limit - len((mark + ext).encode("utf-8"))
    return _truncate_utf8(stem, max(room, 1)) + mark + ext


def safe_name(name: str) -> str:
    """A local file name for a Drive name: impossible characters replaced, ``.``/``..``/empty made
    ordinary, at most NAME_MAX bytes. Deterministic; an already-safe name is returned unchanged."""
    # Called a few times per file pulled: the common name with nothing to replace costs two scans.
    out = name if "/" not in name and "\x00" not in name else name.translate(_TRANSLATE)
    if out == "":
        out = "_"
    elif out in (".", ".."):
        out = "\uff0e" * len(out)  # FULLWIDTH FULL STOP
    if out.endswith(PARTIAL_SUFFIX):
        # A remote file must never look like one of our partials (they are skipped and cleaned up).
        out = out + "_"
    return fit(out)


def with_suffix_id(name: str, file_id: str, length: int = 8) -> str:
    """'name.ext' -> 'name (id8).ext', for one of several same-named items."""
    stem, ext = split_ext(name)
    tag = f" ({safe_name(file_id[:length])})"
    room = NAME_MAX - len((tag + ext).encode("utf-8"))
    return _truncate_utf8(stem, max(room, 1)) + tag + ext


def assign_names(items: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Local names for the children of one folder.

    ``items`` are (file_id, wanted_name) pairs, wanted_name already safe (see safe_name; exported
    Docs carry their extension). Returns ({file_id: local_name}, warnings). Items whose names collide
    are ordered by id: the first keeps the name, the others become 'name (id8).ext' (longer id prefixes
    if that is taken too). The result does not depend on the order of ``items``.
    """
    by_name: dict[str, list[str]] = {}
    for file_id, wanted in items:
        by_name.setdefault(wanted, []).append(file_id)
    taken = set(by_name)
    names: dict[str, str] = {}
    warnings: list[str] = []
    for wanted in sorted(by_name):
        ids = sorted(set(by_name[wanted]))
        names[ids[0]] = wanted
        for file_id in ids[1:]:
            length = 8
            candidate = with_suffix_id(wanted, file_id, length)
            while candidate in taken and length < len(file_id):
                length += 4
                candidate = with_suffix_id(wanted, file_id, length)
            n = 2
            while candidate in taken:  # ids that share every character we show: count instead
                candidate = with_suffix_id(wanted, f"{file_id}-{n}", len(file_id) + 4)
                n += 1
            taken.add(candidate)
            names[file_id] = candidate
        if len(ids) > 1:
            warnings.append(f"{len(ids)} items named {wanted!r} in one folder: kept as "
                            + ", ".join(repr(names[i]) for i in ids))
    return names, warnings


def partial_name(final_name: str, file_id: str) -> str:
    """The hidden temporary name beside a final file: '.<name>.<id8>.drivesync-partial' (<= NAME_MAX)."""
    tail = f".{safe_name(file_id[:8])}{PARTIAL_SUFFIX}"
    return "." + fit(final_name, NAME_MAX - 1 - len(tail.encode("utf-8"))) + tail


def is_partial(name: str) -> bool:
    return name.endswith(PARTIAL_SUFFIX) and name.startswith(".")


def join_inside(root: str, rel_parts: Iterable[str]) -> str:
    """``root`` joined with already-safe name parts, refusing anything that would leave ``root``."""
    parts = list(rel_parts)
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\x00" in part or (os.sep != "/" and os.sep in part):
            raise UsageError(f"refusing unsafe local name {part!r}")
    path = os.path.join(root, *parts) if parts else root
    if not inside(root, path):
        raise UsageError(f"refusing to write outside {root}: {path}")
    return path


def inside(root: str, path: str) -> bool:
    """Is ``path`` at or under ``root``, also after resolving symlinks of the parts that exist?"""
    root_abs = os.path.abspath(root)
    path_abs = os.path.abspath(path)
    if os.path.commonpath([root_abs, path_abs]) != root_abs:
        return False
    # realpath resolves the parts that exist (a symlinked folder under root must not lead out of it)
    # and keeps the rest as written.
    root_real = os.path.realpath(root_abs)
    real = os.path.realpath(path_abs)
    try:
        return os.path.commonpath([root_real, real]) == root_real
    except ValueError:
        return False
