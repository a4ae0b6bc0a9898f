"""``drivesync pull REMOTE [LOCAL]`` and ``drivesync ls REMOTE [-R] [--long]``: parsing and printing only."""
from __future__ import annotations

import argparse
import json
import sys

from .common import (REMOTE_FORMS, add_connection_flags, add_remote_flags, add_transfer_flags, local_path,
                     positive_float, positive_int, selection, setting_default, size)


def register(subparsers, name: str) -> None:
    if name == "ls":
        p = subparsers.add_parser("ls", help="list a Drive folder", description="List what is on Drive at REMOTE.")
        p.add_argument("remote", metavar="REMOTE", nargs="?", default="",
                       help=f"{REMOTE_FORMS} (default: My Drive itself); 'shared-with-me:' lists what is "
                            "shared with you, 'shared-drive:' your shared drives")
        p.add_argument("-R", "--recursive", action="store_true", help="list everything below, not just one level")
        p.add_argument("-l", "--long", action="store_true", help="show size, modified time, md5 and id")
        add_remote_flags(p)
        add_connection_flags(p)
        p.set_defaults(func=run_ls)
        return
    p = subparsers.add_parser("pull", help="download a Drive folder or file (parallel, resumable, verified)",
                              description=f"Download REMOTE ({REMOTE_FORMS}) to LOCAL "
                                          "(default ./<last part of REMOTE>; a trailing '/' makes LOCAL a folder "
                                          "to put a file in). Re-running resumes and skips what is already there "
                                          "and verified.")
    p.add_argument("remote", metavar="REMOTE")
    p.add_argument("local", metavar="LOCAL", nargs="?", type=local_path)
    add_remote_flags(p)
    p.add_argument("--transfers", type=positive_int, metavar="N",
                   help="files downloaded at once " + setting_default("transfers"))
    p.add_argument("--streams", type=positive_int, metavar="N", dest="streams_per_file",
                   help="parallel byte ranges for one large file " + setting_default("streams_per_file"))
    p.add_argument("--max-streams", type=positive_int, metavar="N",
                   help="open download streams in all " + setting_default("max_streams"))
    p.add_argument("--range-size", type=size, metavar="SIZE",
                   help="bytes per ranged request (e.g. 64M; binary units) " + setting_default("range_size"))
    p.add_argument("--multistream-cutoff", type=size, metavar="SIZE",
                   help="files at least this large are fetched as parallel ranges "
                        + setting_default("multistream_cutoff"))
    p.add_argument("--tps", type=positive_float, metavar="N",
                   help="requests per second at most " + setting_default("tps"))
    p.add_argument("--latest", action="store_true",
                   help="REMOTE is a folder of checkpoints: bring the newest one (by step) and the files "
                        "that carry no step, nothing older")
    p.add_argument("--delete", action="store_true", help="remove local files under LOCAL that are gone from Drive")
    p.add_argument("--skip-gdocs", action="store_true", help="leave Google Docs/Sheets/Slides out")
    p.add_argument("--extract", action="store_true",
                   help="REMOTE is a zip or tar (.tar.gz, .tar.bz2, .tar.xz, .tar.zst): extract its members into "
                        "LOCAL as they download (as unzip -d LOCAL would; default ./<name without extension>), "
                        "each verified before it takes its name; the archive is not kept")
    p.add_argument("--keep-archive", action="store_true", help="with --extract: keep the archive beside LOCAL too")
    p.add_argument("--shard", metavar="RANK/WORLD",
                   help="pull only this node's share of the tree (0-based; WORLD nodes together pull one copy, "
                        "split by bytes); 'auto' reads RANK/WORLD_SIZE (torchrun) or SLURM_PROCID/SLURM_NTASKS; "
                        "paced at --tps / WORLD unless --tps is given (default: the whole tree)")
    p.add_argument("--export-formats", metavar="LIST",
                   help="export Docs as the first of these that fits (default docx,xlsx,pptx,svg)")
    add_transfer_flags(p, verb="downloaded")
    add_connection_flags(p)
    p.set_defaults(func=run_pull, filter_rules=[])


def _range_size(value):
    return value if value is None or value >= 1 else None


def run_pull(args) -> int:
    from ..config import from_environment
    from ..errors import EXIT_NO_TRANSFER, EXIT_SOME_FAILED, UsageError
    from ..puller import pull

    if args.range_size is not None and args.range_size < 1:
        raise UsageError("--range-size must be at least 1 byte")
    settings = from_environment(api_url=args.api_url, transfers=args.transfers,
                                streams_per_file=args.streams_per_file, max_streams=args.max_streams,
                                range_size=args.range_size, multistream_cutoff=args.multistream_cutoff,
                                tps=args.tps, give_up_after=args.give_up_after, bwlimit=args.bwlimit,
                                list_concurrency=args.list_concurrency)
    filt, compare = selection(args)
    bars = False if (args.quiet or args.json or args.dry_run) else (True if args.progress else None)
    result = pull(args.remote, args.local, settings=settings, credentials=args.credentials,
                  impersonate=args.impersonate, compare=compare,
                  filter=filt, dry_run=args.dry_run, delete=args.delete,
                  skip_gdocs=args.skip_gdocs, export_formats=args.export_formats, latest=args.latest,
                  drive_id=args.drive_id,
                  extract=args.extract, keep_archive=args.keep_archive, shard=args.shard,
                  progress=bars)  # None: on a terminal
    if args.dry_run and not args.json:
        for line in result.plan:
            print(line)
    for warning in result.warnings:
        if not args.quiet:
            print(f"warning: {warning}", file=sys.stderr)
    if args.latest and not args.json and not args.quiet:
        print(f"latest: {', '.join(result.latest) or 'no numbered checkpoint on Drive'}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif not args.quiet or result.failed:
        print(str(result), file=sys.stderr)      # the summary, and where the files went (-> LOCAL)
    for failure in result.failed:
        print(f"failed: {failure.path}: {failure.reason}", file=sys.stderr)
    if not result.ok:
        return EXIT_SOME_FAILED
    if args.error_on_no_transfer and not (result.planned if args.dry_run else result.done):
        return EXIT_NO_TRANSFER
    return 0


def run_ls(args) -> int:
    from ..config import from_environment
    from ..listing import PLACES, ls

    settings = from_environment(api_url=args.api_url, give_up_after=args.give_up_after)
    entries = ls(args.remote, recursive=args.recursive, settings=settings, credentials=args.credentials,
                 impersonate=args.impersonate, drive_id=args.drive_id)
    place = args.remote.strip() in PLACES and not args.drive_id
    for e in entries:
        path = e.path + ("/" if e.is_folder else "")
        if not args.long:
            print(path)
        elif place:                       # shared-with-me: / shared-drive: rows
            kind = "drive" if e.kind == "drive" else "dir" if e.is_folder else "file"
            print(f"{kind:<5} {e.shortcut_id or e.id}  {path}")
        else:
            size_text = "-" if e.size is None else str(e.size)
            kind = {"folder": "dir", "doc": "doc"}.get(e.kind, "file") + ("@" if e.shortcut_id else "")
            print(f"{size_text:>14}  {e.modified or '-':<24}  {kind:<5} {e.md5 or '-':<32}  {e.id}  {path}")
    return 0
