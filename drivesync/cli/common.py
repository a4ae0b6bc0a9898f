"""Flags shared by every command that talks to Drive."""
from __future__ import annotations

import argparse

from ..config import parse_size
from ..errors import UsageError


def add_connection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--api-url", metavar="URL", help="Drive API root (default https://www.googleapis.com, or $DRIVESYNC_API_URL)")
    g.add_argument("--credentials", metavar="FILE", help="authorized-user JSON, service-account key or drivesync token file")
    g.add_argument("--impersonate", metavar="USER", help="with a service-account key: act as USER (domain-wide delegation)")
    g.add_argument("--give-up-after", type=positive_float, metavar="SECONDS",
                   help="stop when Drive has failed every request for this long (default 120)")
    g.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv for debug)")


#: What REMOTE may be, for every command's help.
REMOTE_FORMS = ("a path under My Drive (data/train), id:ID, a bare Drive id, a Drive or Docs link, "
                "shared-with-me:NAME/path or shared-drive:DRIVE NAME/path")


def add_remote_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--drive-id", metavar="ID", help="REMOTE is a path inside the shared drive with this id")


def local_path(text: str) -> str:
    """LOCAL / DIR: any path but an empty one, which os.path.abspath would take for the current folder
    (``push ""`` uploaded the working directory, ``pull X ""`` wrote into it)."""
    if text == "":
        raise argparse.ArgumentTypeError("an empty path names no file or folder (write . for this folder)")
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def size(text: str) -> int:
    try:
        return parse_size(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
