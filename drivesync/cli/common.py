"""Flags shared by every command that talks to Drive."""
from __future__ import annotations

import argparse

from ..config import parse_size
from ..errors import EMPTY_LOCAL, UsageError


def add_connection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--api-url", metavar="URL", help="Drive API root " + setting_default("api_url"))
    g.add_argument("--credentials", metavar="FILE",
                   help="authorized-user JSON, service-account key or drivesync token file (default: "
                        "$DRIVESYNC_ACCESS_TOKEN, then application default credentials, Colab's sign-in, the "
                        "token 'drivesync login' saved)")
    g.add_argument("--access-token", metavar="TOKEN",
                   help="a bare OAuth access token, used as is and never refreshed (CI, tests); prefer "
                        "$DRIVESYNC_ACCESS_TOKEN, since other users can read a flag in ps (default: none)")
    g.add_argument("--impersonate", metavar="USER",
                   help="with a service-account key: act as USER (domain-wide delegation; default: nobody)")
    g.add_argument("--give-up-after", type=positive_float, metavar="SECONDS",
                   help="stop when Drive has failed every request for this long " + setting_default("give_up_after"))
    g.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv for debug)")


#: What REMOTE may be, for every command's help.
REMOTE_FORMS = ("a path under My Drive (data/train), id:ID, a bare Drive id, a Drive or Docs link, "
                "shared-with-me:NAME/path or shared-drive:DRIVE NAME/path")


def add_remote_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--drive-id", metavar="ID",
                   help="REMOTE is a path inside the shared drive with this id (default: REMOTE says where it is)")


def local_path(text: str) -> str:
    """LOCAL / DIR: any path but an empty one, which os.path.abspath would take for the current folder
    (``push ""`` uploaded the working directory, ``pull X ""`` wrote into it)."""
    if text == "":
        raise argparse.ArgumentTypeError(EMPTY_LOCAL)
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


class FilterRule(argparse.Action):
    """--include / --exclude / --include-from / --exclude-from keep their command-line order in one list
    (first match wins, like rclone); a *-from file is read where it stands, when the command runs."""

    def __call__(self, parser, namespace, values, option_string=None):
        rules = list(getattr(namespace, "filter_rules", None) or [])
        rules.append((self.const, values))
        namespace.filter_rules = rules


def setting_default(field: str, shown: str | None = None) -> str:
    """'(default 32, or $DRIVESYNC_TRANSFERS)': a flag's built-in default and the variable that changes it."""
    from ..config import Settings, env_name
    from ..progress import human_bytes

    if shown is None:
        value = getattr(Settings, field)
        shown = human_bytes(value) if field in ("range_size", "multistream_cutoff", "upload_cutoff",
                                                 "upload_chunk_size", "io_buffer") else f"{value:g}" \
            if isinstance(value, float) else str(value)
    return f"(default {shown}, or ${env_name(field)})"


def add_transfer_flags(p: argparse.ArgumentParser, *, verb: str) -> None:
    """The flags pull and push share, with rclone's meanings (``verb``: 'downloaded' or 'uploaded')."""
    g = p.add_argument_group("what is transferred (rclone's filter flags; all of them must pass)")
    g.add_argument("--include", action=FilterRule, const=(True, "glob"), metavar="GLOB", dest="filter_rules",
                   help="only files matching GLOB (rclone syntax; repeatable; rules apply in the order given, "
                        "the first match decides; default: every file)")
    g.add_argument("--exclude", action=FilterRule, const=(False, "glob"), metavar="GLOB", dest="filter_rules",
                   help="leave out files matching GLOB (repeatable; default: none left out)")
    g.add_argument("--include-from", action=FilterRule, const=(True, "file"), metavar="FILE", dest="filter_rules",
                   help="--include each line of FILE (blank lines and lines starting with # or ; are skipped; "
                        "default: none)")
    g.add_argument("--exclude-from", action=FilterRule, const=(False, "file"), metavar="FILE", dest="filter_rules",
                   help="--exclude each line of FILE (default: none)")
    g.add_argument("--files-from", metavar="FILE", action="append",
                   help="only the paths FILE lists, one per line, relative to the root of the transfer "
                        "(repeatable; the other filters still apply; default: every file)")
    g.add_argument("--min-size", type=size, metavar="SIZE",
                   help="only files of at least SIZE (binary units: 1M = 1 MiB; default: no minimum)")
    g.add_argument("--max-size", type=size, metavar="SIZE", help="only files of at most SIZE (default: no maximum)")
    g.add_argument("--max-age", metavar="AGE",
                   help="only files modified within AGE (a duration: 90s, 30m, 12h, 7d, 2w, 1M, 1y, combinable "
                        "as 1h30m; or a date: 2024-05-01, UTC; default: any age)")
    g.add_argument("--min-age", metavar="AGE", help="only files modified at least AGE ago (default: any age)")
    c = g.add_mutually_exclusive_group()
    c.add_argument("-c", "--checksum", action="store_true",
                   help="a file is unchanged when size and md5 are equal, always hashed (the journal's record of "
                        "an earlier hash is not trusted); Drive gives no md5: size only. Default: size and md5, "
                        "the local md5 taken from the journal when the file is untouched since it was hashed")
    c.add_argument("--size-only", action="store_true",
                   help="a file is unchanged when its size is equal; nothing is hashed (default: size and md5)")
    o = p.add_argument_group("output")
    o.add_argument("-n", "--dry-run", action="store_true",
                   help=f"print what would be {verb} (one line each) and a summary; transfer and change nothing")
    o.add_argument("--json", action="store_true", help="print the summary as JSON on stdout, nothing else")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bars, no summary unless something failed")
    o.add_argument("-P", "--progress", action="store_true",
                   help="draw progress bars even when stderr is not a terminal (default: bars on a terminal or "
                        "in a notebook only)")
    o.add_argument("--error-on-no-transfer", action="store_true",
                   help=f"exit 9 when the run succeeded but nothing was {verb} (rclone's flag; default: exit 0)")
    r = p.add_argument_group("speed")
    r.add_argument("--bwlimit", type=rate, metavar="RATE",
                   help="at most RATE bytes/s across all transfers of the run (10M = 10 MiB/s; a bare number is "
                        "KiB/s, as rclone's) " + setting_default("bwlimit", "off"))
    r.add_argument("--checkers", type=positive_int, metavar="N", dest="list_concurrency",
                   help="listing queries in flight (rclone's checkers compare files; drivesync compares while "
                        "listing) " + setting_default("list_concurrency"))
    r.add_argument("--fast-list", action="store_true",
                   help="accepted for rclone habits; drivesync always lists fast: one query asks for the "
                        "children of 50 folders at once")


def rate(text: str) -> float:
    from ..config import parse_rate

    try:
        return parse_rate(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def selection(args, *, now: float | None = None):
    """(filters.Filter, compare mode) from the flags add_transfer_flags added; files are read here, and a
    file that cannot be read is one UsageError line."""
    import time

    from ..config import parse_age
    from ..filters import Filter, read_list

    rules: list[tuple[bool, str]] = []
    for (include, kind), value in getattr(args, "filter_rules", None) or []:
        if kind == "glob":
            rules.append((include, value))
        else:
            rules += [(include, line) for line in read_list(_read_text(value, "--include-from" if include
                                                                       else "--exclude-from"))]
    files_from = None
    if args.files_from:
        files_from = [line for path in args.files_from for line in read_list(_read_text(path, "--files-from"))]
    now = time.time() if now is None else now
    newer = parse_age(args.max_age, now) if args.max_age else None
    older = parse_age(args.min_age, now) if args.min_age else None
    filt = Filter(rules, files_from=files_from, min_size=args.min_size, max_size=args.max_size,
                  newer_than=newer, older_than=older)
    compare = "checksum" if args.checksum else "size" if args.size_only else "default"
    return filt, compare


def _read_text(path: str, flag: str) -> str:
    import sys

    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise UsageError(f"{flag} {path}: no such file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{flag} {path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{flag} {path}: {exc.strerror or exc}") from None
