"""``pull --shard RANK/WORLD``: which of a tree's files this node pulls, so that WORLD nodes pull one copy.

``split(files, world)`` is deterministic and balanced by bytes: files taken largest first (ties by path),
each into the shard with the fewest bytes so far (ties by the lowest rank), the classic greedy
longest-processing-time split. Every node lists the same tree, so every node computes the same split and
the shards are disjoint and complete; no shard ends more than the largest file above the lightest one.
``parse`` reads RANK/WORLD (0-based) or ``auto`` (torchrun's RANK/WORLD_SIZE, else SLURM_PROCID/SLURM_NTASKS).
Pure: no I/O (``parse`` reads the environment it is given).
"""
from __future__ import annotations

import heapq
import os
import re
from typing import Iterable, Mapping

from .errors import UsageError

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse(spec: str | tuple[int, int], environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """'1/4' -> (1, 4); 'auto' -> from the launcher's environment; one UsageError line otherwise."""
    if isinstance(spec, tuple):
        rank, world = spec
        return _checked(rank, world, f"{rank}/{world}")
    text = str(spec)
    if text.strip().lower() == "auto":
        env = os.environ if environ is None else environ
        for r, w, who in (("RANK", "WORLD_SIZE", "torchrun"), ("SLURM_PROCID", "SLURM_NTASKS", "SLURM")):
            if env.get(r) is not None and env.get(w) is not None:
                rv, wv = env[r].strip(), env[w].strip()
                if not (rv.isdigit() and wv.isdigit()):
                    raise UsageError(f"--shard auto: {r}={rv!r} and {w}={wv!r} ({who}) are not whole numbers")
                return _checked(int(rv), int(wv), f"{r}={rv} {w}={wv} ({who})")
        raise UsageError("--shard auto: neither RANK/WORLD_SIZE (torchrun) nor SLURM_PROCID/SLURM_NTASKS (SLURM) "
                         "is set; give --shard RANK/WORLD")
    m = _SPEC.match(text)
    if not m:
        raise UsageError(f"--shard {text!r}: expected RANK/WORLD (0-based, e.g. 0/4) or auto")
    return _checked(int(m.group(1)), int(m.group(2)), text.strip())


def _checked(rank: int, world: int, text: str) -> tuple[int, int]:
    if not isinstance(rank, int) or not isinstance(world, int) or isinstance(rank, bool) or isinstance(world, bool):
        raise UsageError(f"--shard {text}: RANK and WORLD must be whole numbers")
    if world < 1:
        raise UsageError(f"--shard {text}: WORLD must be at least 1")
    if not 0 <= rank < world:
        raise UsageError(f"--shard {text}: RANK must be from 0 to {world - 1} (0-based)")
    return rank, world


def split(files: Iterable[tuple[str, int]], world: int) -> list[list[str]]:
    """(path, size) pairs -> ``world`` lists of paths: disjoint, complete, the same for any input order."""
    if world < 1:
        raise ValueError("world must be at least 1")
    shards: list[list[str]] = [[] for _ in range(world)]
    heap = [(0, rank) for rank in range(world)]
    for path, size in sorted(files, key=lambda f: (-max(0, f[1]), f[0])):
        load, rank = heapq.heappop(heap)
        shards[rank].append(path)
        heapq.heappush(heap, (load + max(0, size), rank))
    return shards


def loads(files: Iterable[tuple[str, int]], world: int) -> list[int]:
    """Bytes per shard of ``split``."""
    files = list(files)
    size = dict(files)
    return [sum(size[p] for p in shard) for shard in split(files, world)]


def share_of_quota(tps: float, world: int, *, tps_given: bool) -> float:
    """Requests per second for one of ``world`` nodes that share one account's quota: its share of ``tps``,
    unless the user set the rate for this node themselves (``tps_given``)."""
    return tps if tps_given else tps / world
