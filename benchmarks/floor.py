"""The physical floor of a staging job: the least wall time any client could reach under a profile.

Owns one pure calculation from the emulator's `Profile.as_dict()` numbers (the same numbers the
server enforces) and a description of a job (its files, folders, direction). Never does I/O, never
imports the emulator or the client: the harness passes the profile dict in.

The formula (also in docs/benchmarks.md)::

    floor = latency_chain + max(bytes_time, per_file_time, requests_time, writes_time)

- ``bytes_time`` = max(0, bytes - burst_total) / total_bw. A download may split a file into
  parallel ranges, so with ideal parallelism only the total bandwidth bounds it.
- ``per_file_time`` (uploads only) = max over files of max(0, size - burst_per_conn) / per_conn_bw:
  one resumable session is sequential, so one file cannot go faster than one connection.
  (Downloads: 0, since ranges can be fetched in parallel.)
- ``requests_time`` = max(0, requests - request_burst) / requests_per_s, where requests is the
  least number of API calls the job needs: one per path component to resolve the remote folder,
  the listing pages (folders batched ``LIST_BATCH`` per query, ``PAGE_SIZE`` items per page, at least
  one query per tree level), and one media request per non-empty file (download) or one upload
  request per file (upload, a multipart upload) plus one create per remote folder.
- ``writes_time`` (uploads only) = max(0, writes - write_burst) / writes_per_s, writes = files
  uploaded + folders created.
- ``latency_chain``: round trips that cannot overlap: resolving the path (one metadata round trip
  per component), listing the tree level by level (one per level) and the first byte of the first
  media response (downloads) or one metadata round trip for the upload (uploads).

A limit that the profile leaves unset (None) contributes nothing; under `unthrottled` the floor is
0 and a ratio to it is undefined (the report says "n/a").

``paced_floor`` is the same formula with the request quota replaced by the pacing budget the harness
holds every paced contender to (below the quota, so that none meets 403s): where requests bind, it is
the least any paced row can reach, and the report prints it beside the floor.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping

#: Folders one batched listing query can name ('a' in parents or 'b' in parents ...), as rclone --fast-list.
LIST_BATCH = 50
#: files.list pageSize maximum.
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Job:
    """What a scenario moves, as the floor sees it.

    ``sizes``: size of every file. ``folders_per_level``: folders inside the job's root at each depth
    (level 1 = the root's subfolders). ``root_depth``: path components from My Drive to the job's root
    (``deeplearning/`` = 1). ``direction``: "pull" or "push".
    """

    direction: str
    sizes: tuple[int, ...]
    folders_per_level: tuple[int, ...] = ()
    root_depth: int = 1

    def __post_init__(self) -> None:
        if self.direction not in ("pull", "push"):
            raise ValueError(f"direction must be pull or push, not {self.direction!r}")
        if any(s < 0 for s in self.sizes):
            raise ValueError("sizes must be >= 0")

    @property
    def bytes(self) -> int:
        return sum(self.sizes)

    @property
    def folders(self) -> int:
        return sum(self.folders_per_level)


@dataclass(frozen=True)
class Floor:
    seconds: float
    latency_s: float
    bytes_s: float
    per_file_s: float
    requests_s: float
    writes_s: float
    requests: int
    writes: int
    bound_by: str
    terms: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _rate_time(amount: float, rate: float | None, burst: float) -> float:
    if not rate:
        return 0.0
    return max(0.0, amount - burst) / rate


def listing_requests(job: Job) -> tuple[int, int]:
    """(queries, levels): the least files.list calls to walk the tree, and the tree's depth in levels.

    Level 0 is the root folder itself; level k lists the children of the folders at depth k-1,
    batched LIST_BATCH folders per query, and the items of the whole job need at least
    ceil(items / PAGE_SIZE) pages in total."""
    parents = [1] + list(job.folders_per_level)  # folders whose children are listed, level by level
    # The deepest level's folders still have to be listed (to learn they hold the files).
    queries = sum(math.ceil(n / LIST_BATCH) for n in parents if n)
    items = len(job.sizes) + job.folders
    queries = max(queries, math.ceil(items / PAGE_SIZE))
    return queries, len([n for n in parents if n])


def compute_floor(profile: Mapping, job: Job) -> Floor:
    """The floor of `job` under `profile` (a `Profile.as_dict()`)."""
    p = dict(profile)
    meta_lat = float(p.get("metadata_latency_s") or 0.0)
    media_lat = float(p.get("media_latency_s") or 0.0)
    list_queries, levels = listing_requests(job)
    resolve = job.root_depth

    if job.direction == "pull":
        media = sum(1 for s in job.sizes if s > 0)
        requests = resolve + list_queries + media
        writes = 0
        bytes_s = _rate_time(job.bytes, p.get("download_bps_total"), p.get("download_burst_total", 0))
        # Ranges in parallel: one file is not bound by one connection. Without a total cap, though,
        # every stream is per-connection capped and ideal parallelism makes that vanish too.
        per_file_s = 0.0
        latency = meta_lat * (resolve + levels) + (media_lat if media else 0.0)
    else:
        # Pushing into a new remote folder tree: resolve the parent, create each folder, upload each file.
        creates = job.folders + 1  # the job's root folder too
        requests = resolve + creates + len(job.sizes)
        writes = creates + len(job.sizes)
        bytes_s = _rate_time(job.bytes, p.get("upload_bps_total"), p.get("upload_burst_total", 0))
        per_conn = p.get("upload_bps_per_connection")
        burst_conn = p.get("upload_burst_per_connection", 0)
        per_file_s = max((_rate_time(s, per_conn, burst_conn) for s in job.sizes), default=0.0)
        # resolve chain, create the root folder, then one upload round trip.
        latency = meta_lat * (resolve + 1 + 1)

    requests_s = _rate_time(requests, p.get("requests_per_s"), p.get("request_burst", 0))
    writes_s = _rate_time(writes, p.get("writes_per_s"), p.get("write_burst", 0))
    terms = {"bytes": bytes_s, "per-file stream": per_file_s, "request quota": requests_s, "write quota": writes_s}
    bound_by, bound = max(terms.items(), key=lambda kv: kv[1])
    if bound == 0.0:
        bound_by = "latency" if latency else "nothing (no limits)"
    return Floor(
        seconds=latency + bound,
        latency_s=latency,
        bytes_s=bytes_s,
        per_file_s=per_file_s,
        requests_s=requests_s,
        writes_s=writes_s,
        requests=requests,
        writes=writes,
        bound_by=bound_by,
        terms=terms,
    )


def paced_floor(profile: Mapping, job: Job, budget: tuple[float, int] | None) -> Floor | None:
    """The floor again with the profile's request quota replaced by a pacing budget (requests per second,
    burst) that a contender is held to below it: the least wall time a row paced within that budget can
    reach. None without a budget or without a quota (nothing to replace)."""
    if budget is None or not profile.get("requests_per_s"):
        return None
    rate, burst = budget
    return compute_floor({**dict(profile), "requests_per_s": rate, "request_burst": burst}, job)


def ratio(wall_s: float, floor_s: float) -> float | None:
    """wall / floor, or None when the floor is 0 (no limits: a ratio would mean nothing)."""
    if floor_s <= 0:
        return None
    return wall_s / floor_s


def job_from_tree(direction: str, files: Iterable[tuple[str, int]], root_depth: int = 1) -> Job:
    """A Job from (relative path, size) pairs: folder levels are read off the paths."""
    files = list(files)
    folders: set[str] = set()
    for rel, _ in files:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folders.add("/".join(parts[:i]))
    depth = max((f.count("/") + 1 for f in folders), default=0)
    per_level = tuple(sum(1 for f in folders if f.count("/") + 1 == lvl) for lvl in range(1, depth + 1))
    return Job(direction=direction, sizes=tuple(s for _, s in files), folders_per_level=per_level,
               root_depth=root_depth)
