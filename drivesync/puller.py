"""``drivesync pull``: stage a Drive folder (or one file) on local disk, verified and resumable.

``pull(remote, local, **options)`` / ``await pull_async(...)`` resolve the remote path once, list the tree
in batched queries (remote.py), compare it with local files and the journal (plan.py), and run the
downloads through transfer.Transfers (download.py does one file). A folder's downloads start as soon as
its first level is listed, while deeper levels still list (largest known file first); only --delete,
--latest, --shard and --dry-run, which need the whole tree, list it all first. It returns a PullResult; it raises
a DrivesyncError (one line) for bad input, before writing anything.

Works in a notebook: when an event loop is already running in this thread (Jupyter), ``pull`` runs
the coroutine on a worker thread, and interrupting the cell cancels it (transfer.run_sync). Progress bars
(tqdm.auto: widgets in a notebook) are drawn by default in a notebook or on a terminal, never into a
pipe or a CI log; ``progress=False`` silences them, ``progress=True`` forces them (progress.wanted).
The result prints as one summary line (``PullResult.__str__``, ``_repr_html_`` in a notebook).

``extract=True``: REMOTE is a zip or tar archive; its members land in LOCAL (default ./<name without its
extension>) as they download, each verified before it takes its name (extract.py); ``keep_archive=True``
also keeps the archive beside LOCAL. ``shard='RANK/WORLD'`` (or 'auto', or a (rank, world) tuple): this node
pulls its share of the tree's files (shard.py), or with ``extract`` of a zip's members, paced at tps / WORLD
unless tps is given.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable

from . import names, progress as bars_, restore, shard as shard_
from .config import Settings, settings_with
from .download import Counters, Downloader, Exporter
from .errors import EMPTY_LOCAL, DriveError, DrivesyncError, UsageError
from .filters import Filter
from .plan import Action, LocalFolders, Plan, make_plan
from .locator import Locator, parse as parse_remote
from .remote import Entry, Listing, Tree, TreeBuilder, fetch_listing, locate, parse_export_formats, walk
from .session import open_drive
from .state import Journal
from .transfer import Job, Transfers, run_sync


@dataclass
class Failure:
    path: str
    reason: str


@dataclass
class PullResult:
    """What a pull did. ``ok`` is True only when every wanted file arrived (or was already there)."""

    remote: str
    local: str
    done: int = 0                    # files downloaded (or exported) this run
    skipped: int = 0                 # already present and verified
    failed: list[Failure] = field(default_factory=list)
    exported: int = 0                # Docs files exported (included in done)
    gdocs_skipped: int = 0           # Docs files left out (--skip-gdocs or no export format)
    deleted: int = 0
    filtered: int = 0                # left out by --include/--exclude
    bytes: int = 0                   # content bytes received
    bytes_received: int = 0          # media bytes read from the network (more than bytes when some were not kept)
    seconds: float = 0.0
    retries: int = 0                 # request-level and mid-stream retries
    requests: int = 0
    list_rechecks: int = 0           # listing requests spent confirming empty batched answers
    verified_by_goog_hash: int = 0   # files without md5Checksum, checked by X-Goog-Hash
    verified_by_size_only: int = 0   # files with no hash at all, checked by size only
    range_ignored: int = 0           # files whose server ignored Range (fetched as one stream)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False
    plan: list[str] = field(default_factory=list)   # with dry_run: what would happen
    latest: list[str] = field(default_factory=list)  # with latest=True: the checkpoints restored
    planned: int = 0                 # with dry_run: files that would be downloaded (or exported)
    planned_bytes: int = 0           # with dry_run: their bytes (Docs exports count 0: their size is unknown)
    download_disabled: int = 0       # files whose owner disabled downloading for this account (also in failed)
    extract: bool = False            # extract=True: REMOTE was an archive, done/skipped/failed count its members
    extracted_bytes: int = 0         # with extract: bytes written to members this run (bytes: of the archive)
    shard: str = ""                  # with shard: the RANK/WORLD share of the tree this node pulled

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        """Decimal MB/s (10^6 bytes), kept for scripts that read it; everything printed is binary (MiB/s)."""
        return self.bytes_per_s / 1e6

    def to_dict(self) -> dict:
        d = asdict(self)
        d["failed"] = [asdict(f) for f in self.failed]
        d["ok"] = self.ok
        d["mb_per_s"] = round(self.mb_per_s, 3)
        d["bytes_per_s"] = round(self.bytes_per_s, 1)
        return d

    def __str__(self) -> str:
        """'pulled 12 files (3 skipped, 0 failed), 1.2 GiB in 8.1 s = 150.2 MiB/s, 2 retries -> /content/data'."""
        text = bars_.summary_line(self, 'would pull' if self.dry_run else ('extracted' if self.extract else 'pulled'))
        if self.download_disabled:
            text += (f"; {self.download_disabled} {'file' if self.download_disabled == 1 else 'files'} "
                     "not downloadable (the owner disabled downloading)")
        return f"{text} -> {self.local or self.remote}"

    def __repr__(self) -> str:
        return f"PullResult({self})"

    def _repr_html_(self) -> str:
        return bars_.result_html(str(self), self.ok, [f"{f.path}: {f.reason}" for f in self.failed],
                                 self.warnings)


#: Why a file is not downloaded when its owner turned downloading off (Drive: copyRequiresWriterPermission).
DOWNLOAD_DISABLED = ("the owner has disabled downloading of this file for viewers "
                     "(copyRequiresWriterPermission); ask the owner for a copy or for edit access")


def default_local(remote: str | Locator, item_name: str | None = None) -> str:
    """``./<last name REMOTE spells>``; for an id, a link or a shared drive's root: the item's name."""
    loc = remote if isinstance(remote, Locator) else parse_remote(remote)
    base = loc.name if (loc.name and not loc.bare_id) else (item_name or "drive")
    return os.path.join(".", names.safe_name(base))


def local_means_folder(local: str | None) -> bool:
    """A trailing '/' on LOCAL always means a folder (``pull FILE dir/`` writes ``dir/FILE``)."""
    return bool(local) and local.endswith(("/", os.sep))


def check_writable(directory: str) -> None:
    """Can ``directory`` be created (or written, if it exists)? Raises UsageError, writes nothing."""
    probe = os.path.abspath(directory)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise UsageError(f"cannot write to {directory}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to {directory}: {probe} is not writable")


async def pull_async(remote: str, local: str | None = None, *, settings: Settings | None = None,
                     credentials: str | None = None, impersonate: str | None = None,
                     include: Iterable[str] = (), exclude: Iterable[str] = (),
                     filter: Filter | None = None, dry_run: bool = False, delete: bool = False,
                     skip_gdocs: bool = False, export_formats: str | Iterable[str] | None = None,
                     progress: bool | None = None, subscribers: Iterable = (), journal: Journal | None = None,
                     extract: bool = False, keep_archive: bool = False, shard: str | tuple | None = None,
                     authorizer=None, latest: bool = False, drive_id: str | None = None,
                     compare: str = "default", **setting_overrides) -> PullResult:
    """The coroutine behind ``pull``; see the module docstring. ``setting_overrides`` are Settings fields
    (``transfers=16``, ``api_url=...``). ``latest=True``: REMOTE is a folder of checkpoints; bring only
    the newest checkpoint of each numbered series and what carries no step (restore.py). ``progress``:
    None (default) draws bars in a notebook or on a terminal only, True/False forces them on/off.
    ``remote``: any form locator.py reads (a My Drive path, id:ID, a Drive link, shared-with-me:NAME/...,
    shared-drive:NAME/...); ``drive_id``: REMOTE is a path inside that shared drive. ``compare``: what makes a
    local file the same as Drive's, 'default', 'checksum' or 'size' (plan.py; --checksum, --size-only)."""
    if local == "":
        raise UsageError(EMPTY_LOCAL)
    if latest and delete:
        raise UsageError("--latest and --delete do not go together (older checkpoints are not gone from Drive)")
    started = time.monotonic()
    progress = bars_.wanted(progress) and not dry_run
    settings = settings_with(settings, setting_overrides)
    if extract and (latest or delete or dry_run):
        raise UsageError("--extract pulls one archive: it does not go with --latest, --delete or --dry-run")
    if keep_archive and not extract:
        raise UsageError("--keep-archive goes with --extract")
    if shard is not None:
        rank, world = shard_.parse(shard)
        if delete:
            raise UsageError("--shard and --delete do not go together (each node holds only its share of the tree)")
        given = settings.tps != Settings.__dataclass_fields__["tps"].default
        settings = settings.with_(tps=shard_.share_of_quota(settings.tps, world, tps_given=given))
    formats = parse_export_formats(export_formats)
    filt = filter or Filter.from_lists(include, exclude)
    loc = parse_remote(remote, drive_id=drive_id)      # bad REMOTE: one line, before any request
    counters = Counters()
    own_journal = journal is None
    result = PullResult(remote=remote, local="", dry_run=dry_run)

    async with open_drive(settings, credentials=credentials, subject=impersonate, authorizer=authorizer) as drive:
        item, loc = await locate(drive, loc)
        if extract:
            return await _extract(drive, item, local, settings, journal, result, progress, subscribers,
                                  keep_archive, started, (rank, world) if shard is not None else None,
                                  filt if filt.active else None)
        target = os.path.abspath(local if local else default_local(loc, item.name))
        if item.is_folder and not (latest or shard is not None or delete or dry_run):
            # The usual pull: downloads start while the listing is still arriving.
            if os.path.lexists(target) and not os.path.isdir(target):
                raise UsageError(f"{local or target} exists and is not a folder (the remote is a folder)")
            check_writable(target)
            result.local = target
            if own_journal:
                journal = Journal()
            try:
                records = journal.synced_under(target) if os.path.isdir(target) else {}
                with journal.batched():   # a commit per few hundred files, not two per file (state.py)
                    tree = await _execute_streaming(drive, item, target, journal, settings, counters, result,
                                                    progress, subscribers, records=records, filt=filt,
                                                    compare=compare, formats=formats, skip_gdocs=skip_gdocs)
            finally:
                if own_journal:
                    journal.close()
            result.warnings = list(tree.warnings) + result.warnings
            result.gdocs_skipped = len(tree.skipped_docs)
            return _finish(result, drive, counters, tree, started)
        tree = await walk(drive, item, settings, export_formats=formats, skip_gdocs=skip_gdocs)
        if latest:
            if not item.is_folder:
                raise UsageError(f"--latest needs a folder of checkpoints; {remote} is a file")
            result.latest = _keep_latest(tree)
        if shard is not None:
            result.shard = f"{rank}/{world}"
            tree.entries = _my_shard(tree.entries, rank, world)
        if item.is_folder:
            root = target
            if os.path.lexists(root) and not os.path.isdir(root):
                raise UsageError(f"{local or root} exists and is not a folder (the remote is a folder)")
        else:
            if os.path.isdir(target) or local_means_folder(local):
                root = target
            else:
                root, name = os.path.dirname(target), os.path.basename(target)
                if tree.entries:
                    tree.entries[0].path = names.safe_name(name)
        check_writable(root)
        result.local = root
        result.warnings = list(tree.warnings)
        result.gdocs_skipped = len(tree.skipped_docs)
        if own_journal:
            journal = Journal()
        try:
            protect = frozenset(str(journal.path) + s for s in ("", "-wal", "-shm"))
            records = journal.synced_under(root) if os.path.isdir(root) else {}
            plan = make_plan(tree, root, records=records, filter=filt, delete=delete, protect=protect,
                             compare=compare)
            blocked = _not_downloadable(plan)
            result.download_disabled = len(blocked)
            result.filtered = plan.filtered
            result.skipped = len(plan.skips)
            if dry_run:
                result.plan = plan.lines()
                result.failed = [Failure(a.rel, a.reason) for a in plan.conflicts]
                result.failed += [Failure(a.rel, DOWNLOAD_DISABLED) for a in blocked]
                result.planned, result.planned_bytes = len(plan.transfers), plan.bytes_to_transfer
            else:
                # Reported first: with files missing, --delete removes nothing (as after a failed transfer).
                result.failed += [Failure(a.rel, DOWNLOAD_DISABLED) for a in blocked]
                with journal.batched():   # a commit per few hundred files, not two per file (state.py)
                    await _execute(drive, plan, journal, settings, counters, result, progress, subscribers)
        finally:
            if own_journal:
                journal.close()
        return _finish(result, drive, counters, tree, started)


def _finish(result: PullResult, drive, counters: Counters, tree: Tree, started: float) -> PullResult:
    """The run's counters into ``result`` (called inside the Drive session: its stats are still there)."""
    result.retries = counters.retries + drive.t.stats.retries
    result.requests = drive.t.stats.requests
    result.list_rechecks = tree.recheck_requests
    result.verified_by_goog_hash = counters.by_goog_hash
    result.verified_by_size_only = counters.size_only
    result.range_ignored = counters.range_ignored
    result.bytes = counters.bytes
    result.bytes_received = counters.received
    result.seconds = time.monotonic() - started
    return result


def _not_downloadable(plan: Plan) -> list[Action]:
    """Take out of ``plan`` the downloads and exports Drive says this account may not make (the owner
    disabled downloading: capabilities.canDownload=false). They are reported, never tried or retried."""
    blocked = [a for a in plan.transfers if a.kind in ("download", "export") and not a.entry.item.downloadable]
    if blocked:
        plan.transfers = [a for a in plan.transfers if a not in blocked]
    return blocked


def _keep_latest(tree) -> list[str]:
    """Cut ``tree`` down to what ``--latest`` restores; returns the numbered checkpoints kept."""
    top = lambda path: path.split("/", 1)[0]   # noqa: E731
    names = {top(e.path) for e in tree.entries + tree.skipped_docs}
    keep = restore.latest(names)
    tree.entries = [e for e in tree.entries if top(e.path) in keep]
    tree.skipped_docs = [e for e in tree.skipped_docs if top(e.path) in keep]
    return sorted((n for n in keep if restore.step_of(n) is not None), key=restore.natural_key)


async def latest_checkpoint_async(remote: str, *, settings: Settings | None = None, credentials: str | None = None,
                                  impersonate: str | None = None, authorizer=None, drive_id: str | None = None,
                                  **setting_overrides) -> str | None:
    """The Drive path of the newest checkpoint in the folder ``remote`` (``run42/ckpt/checkpoint-1500``),
    or None when it holds no numbered checkpoint. For a link or an id the answer is ``id:ID/checkpoint-1500``
    (with the link's ``?resourcekey=`` when it had one), for ``shared-drive:``/``shared-with-me:`` the same
    form with the checkpoint's name added, and with ``drive_id`` a path inside that drive (pass ``drive_id``
    again): always a REMOTE that pull takes back."""
    settings = settings_with(settings, setting_overrides)
    loc = parse_remote(remote, drive_id=drive_id)
    async with open_drive(settings, credentials=credentials, subject=impersonate, authorizer=authorizer) as drive:
        item, loc = await locate(drive, loc)
        if not item.is_folder:
            raise UsageError(f"{remote} is a file, not a folder of checkpoints")
        tree = await walk(drive, item, settings, recursive=False)
    name = restore.newest(e.path for e in tree.entries + tree.skipped_docs)
    if name is None:
        return None
    if loc.anchor == "my-drive":
        return f"{remote.strip().rstrip('/')}/{name}" if remote.strip("/") else name
    return loc.child(name).canonical()


def latest_checkpoint(remote: str, **options) -> str | None:
    """``drivesync.latest_checkpoint("run42/checkpoints")`` -> 'run42/checkpoints/checkpoint-1500' or None."""
    return run_sync(latest_checkpoint_async(remote, **options))


def _job_maker(drive, journal: Journal, settings: Settings, counters: Counters):
    """Action -> Job: what one planned transfer does (download, export, or hash-and-maybe-skip)."""
    downloader = Downloader(drive, journal, settings, counters)
    exporter = Exporter(drive, journal, settings, counters)

    def job_for(action: Action) -> Job:
        entry: Entry = action.entry

        async def run(ctx) -> str:
            if action.kind == "export":
                return await exporter.fetch(ctx, entry.item, entry.export_mime, action.local)
            if action.kind == "check":
                from .upload import file_md5        # imported when needed: a plain pull starts 20 ms sooner
                local_md5 = await asyncio.to_thread(file_md5, action.local)
                if local_md5 == entry.item.md5:
                    st = await asyncio.to_thread(os.stat, action.local)
                    journal.record_synced(action.local, file_id=entry.item.id, md5=local_md5, size=st.st_size,
                                          mtime_ns=st.st_mtime_ns, remote_modified=entry.item.modified_time,
                                          direction="pull")
                    return "skip"
            return await downloader.fetch(ctx, entry.item, action.local)

        size = entry.size if action.kind != "export" else 0
        return Job(path=entry.path, size=size, run=run)

    return job_for


@contextlib.contextmanager
def _transfers(drive, settings: Settings, progress: bool, subscribers: Iterable, total_bytes: int, total_files: int):
    """Transfers with the progress bars (when wanted) subscribed; the bars are closed after."""
    subs = list(subscribers)
    bars = None
    if progress:
        bars = bars_.Progress(total_bytes=total_bytes, total_files=total_files,
                              big_file=settings.multistream_cutoff, unit_files="files",
                              disable=False)  # decided by progress.wanted
        subs.append(bars)
        drive.t.on_retry = bars.waiting
    try:
        yield Transfers(transfers=settings.transfers, max_streams=settings.max_streams, subscribers=subs), bars
    finally:
        if bars is not None:
            drive.t.on_retry = None
            bars.close()


#: Up to this many of a plan's folders are made on the event loop; more go to one worker-thread call.
_INLINE_MKDIRS = 32


async def _make_folders(plan: Plan) -> None:
    """The plan's local folders, parents first. A listing answer names a folder or a few, and a mkdir is
    one short syscall, as the create of a small file that download.py makes on the loop too: a thread
    hop each cost more than the mkdir (`deep`: 2,526 folders, one hop per listing answer). A plan with
    many (a whole tree planned at once) makes them in one worker-thread call."""
    paths = [a.local for a in plan.mkdirs]
    if len(paths) > _INLINE_MKDIRS:
        await asyncio.to_thread(_makedirs, paths)
    else:
        _makedirs(paths)


def _makedirs(paths: list[str]) -> None:
    for path in paths:
        os.makedirs(path, exist_ok=True)


async def _execute(drive, plan: Plan, journal: Journal, settings: Settings, counters: Counters,
                   result: PullResult, progress: bool, subscribers: Iterable) -> None:
    await _make_folders(plan)
    job_for = _job_maker(drive, journal, settings, counters)
    with _transfers(drive, settings, progress, subscribers, plan.bytes_to_transfer, len(plan.transfers)) as (t, _):
        outcomes = await t.run([job_for(a) for a in plan.transfers])
    _tally(outcomes, plan.conflicts, result)
    if plan.deletes:
        if result.failed:
            result.warnings.append(f"not deleting {len(plan.deletes)} local files: some transfers failed")
        else:
            for action in plan.deletes:
                try:
                    await asyncio.to_thread(os.unlink, action.local)
                    journal.forget_synced(action.local)
                    result.deleted += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    result.failed.append(Failure(action.local, f"could not delete: {exc.strerror}"))


async def _execute_streaming(drive, item, root: str, journal: Journal, settings: Settings, counters: Counters,
                             result: PullResult, progress: bool, subscribers: Iterable, *, records: dict,
                             filt: Filter, compare: str, formats, skip_gdocs: bool) -> Tree:
    """List the folder ``item`` level by level and start each batch of folders' transfers as soon as that
    batch is listed (remote.TreeBuilder places its entries; plan.make_plan plans them). Returns the whole tree."""
    job_for = _job_maker(drive, journal, settings, counters)
    listing = Listing()
    builder = TreeBuilder(item, listing, export_formats=formats, skip_gdocs=skip_gdocs)
    conflicts: list[Action] = []
    folders = LocalFolders(root)        # each folder checked once for the whole pull, not once per level
    with _transfers(drive, settings, progress, subscribers, 0, 0) as (transfers, bars):
        async def produce(submit) -> None:
            async def on_level(folder_ids: list[str]) -> None:
                entries = builder.expand(folder_ids)
                plan = make_plan(Tree(root=item, entries=entries), root, records=records, filter=filt,
                                 compare=compare, folders=folders)
                blocked = _not_downloadable(plan)
                result.download_disabled += len(blocked)
                result.failed += [Failure(a.rel, DOWNLOAD_DISABLED) for a in blocked]
                result.filtered += plan.filtered
                result.skipped += len(plan.skips)
                conflicts.extend(plan.conflicts)
                await _make_folders(plan)
                folders.made(plan)
                if bars is not None and plan.transfers:
                    bars.grow(plan.bytes_to_transfer, len(plan.transfers))
                submit([job_for(a) for a in plan.transfers])

            await fetch_listing(drive, item.id, settings, on_level=on_level, into=listing)

        outcomes = await transfers.run_fed(produce)
    _tally(outcomes, conflicts, result)
    tree = builder.tree
    tree.entries.sort(key=lambda e: e.path)
    tree.requests, tree.recheck_requests = listing.requests, listing.recheck_requests
    tree.recovered_folders = listing.recovered_folders
    return tree


def _tally(outcomes, conflicts: Iterable[Action], result: PullResult) -> None:
    for action in conflicts:
        result.failed.append(Failure(action.rel, action.reason))
    for outcome in outcomes:
        if outcome.result == "fail" and _download_refused(outcome.error):
            result.failed.append(Failure(outcome.path, DOWNLOAD_DISABLED))
            result.download_disabled += 1
        elif outcome.result == "fail":
            result.failed.append(Failure(outcome.path, _reason(outcome.error)))
        elif outcome.result == "skip":
            result.skipped += 1
        else:
            result.done += 1
            if outcome.result == "exported":
                result.exported += 1


def _download_refused(error: BaseException | None) -> bool:
    """Drive's 403 for a file whose owner disabled downloading (the listing did not say so)."""
    return isinstance(error, DriveError) and error.status == 403 and error.reason == "cannotDownloadFile"


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    if isinstance(error, DrivesyncError):
        return str(error)
    if isinstance(error, OSError):
        return f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
    return f"{type(error).__name__}: {error}"


def pull(remote: str, local: str | None = None, **options) -> PullResult:
    """Pull a Drive folder or file to local disk; see ``pull_async`` for the options.

    Safe to call from a notebook cell: with an event loop already running here, the pull runs on a
    worker thread (its own loop) and this call waits for it; interrupting the cell stops the pull
    (partial files stay resumable: the next pull fetches only the missing bytes) and raises
    KeyboardInterrupt. Shows progress bars in a notebook or on a terminal unless ``progress=False``.
    """
    return run_sync(pull_async(remote, local, **options))


def _my_shard(entries: list[Entry], rank: int, world: int) -> list[Entry]:
    """This node's files of the tree (shard.split over every file's path and size); every folder stays."""
    files = [(e.path, e.size) for e in entries if e.kind != "folder"]
    mine = set(shard_.split(files, world)[rank])
    return [e for e in entries if e.kind == "folder" or e.path in mine]


async def _extract(drive, item, local: str | None, settings: Settings, journal: Journal | None, result: PullResult,
                   progress: bool, subscribers: Iterable, keep_archive: bool, started: float,
                   shard: tuple[int, int] | None = None, filt: Filter | None = None) -> PullResult:
    """``pull ARCHIVE DIR --extract``: the members of ``item`` into DIR (extract.py), as a PullResult."""
    from . import extract as extract_     # imported when needed: a plain pull starts 60 ms sooner
    if item.is_folder:
        raise UsageError(f"--extract needs an archive; {result.remote} is a folder")
    extract_.kind_of(item.name, item.mime_type)        # not an archive: one line, nothing written
    dest = os.path.abspath(local if local else extract_.default_dir(item.name))
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise UsageError(f"{local or dest} exists and is not a folder (--extract writes the members into it)")
    check_writable(dest)
    keep = None
    if keep_archive:
        keep = os.path.join(os.path.dirname(dest), names.safe_name(item.name))
        if keep == dest:
            raise UsageError(f"--keep-archive would put {item.name} where its members go; name another DIR")
    result.local, result.extract = dest, True
    if shard is not None:
        result.shard = f"{shard[0]}/{shard[1]}"
    own_journal = journal is None
    if own_journal:
        journal = Journal()
    counters = Counters()
    factory = None
    if progress:
        def factory(total_bytes: int, members: int):
            bars = bars_.Progress(total_bytes=total_bytes, total_files=members, unit_files="members",
                                  desc="extract", big_file=1 << 62, disable=False)
            drive.t.on_retry = bars.waiting
            return bars
    try:
        out = await extract_.extract(drive, item, dest, journal, settings, keep_archive=keep, counters=counters,
                                     subscribers=subscribers, progress_factory=factory, shard=shard, filter=filt)
    finally:
        drive.t.on_retry = None
        if own_journal:
            journal.close()
    result.done, result.skipped, result.filtered = out.done, out.skipped, out.filtered
    result.failed = [Failure(name, reason) for name, reason in out.refused]
    result.warnings = list(out.warnings)
    result.bytes = out.archive_bytes + counters.bytes
    result.bytes_received = out.received + counters.received
    result.extracted_bytes = out.extracted_bytes
    result.range_ignored = out.range_ignored + counters.range_ignored
    result.retries = out.retries + counters.retries + drive.t.stats.retries
    result.requests = drive.t.stats.requests
    result.seconds = time.monotonic() - started
    return result
