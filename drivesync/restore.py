"""Which checkpoint is the newest: step numbers in names, natural order, and the ``--latest`` pick.

Training writes checkpoints named by step or epoch (``checkpoint-1500/``, ``epoch=3-step=1500.ckpt``,
``model_step10.pt``, ``ckpt_000100.pt``) beside files that carry no step (``last.ckpt``, ``config.json``,
``runs/``). ``pull --latest`` restores the newest numbered checkpoint of each series plus everything
without a step, and nothing older. A series is the name with its numbers blanked
(``checkpoint-#``, ``epoch=#-step=#.ckpt``), so ``best-epoch=#.ckpt`` and ``epoch=#.ckpt`` each keep
their newest. Hidden names (a leading '.') are never checkpoints: that is where uploads are staged.
Shard names (``model-00001-of-00004.safetensors``) are parts of one checkpoint, not steps.

``to_prune`` is the same rule the other way round: what ``push --watch --keep-last N`` trashes on Drive.
Pure: names in, names out; puller.py and watcher.py apply it.
"""
from __future__ import annotations

import re
from typing import Iterable

_DIGITS = re.compile(r"\d+")
_STEP = re.compile(r"(?:^|[^a-z])(?:global_?)?step[=_\-]?(\d+)", re.I)
_EPOCH = re.compile(r"(?:^|[^a-z])epoch[=_\-]?(\d+)", re.I)
_SHARD = re.compile(r"\d+-of-\d+", re.I)


def natural_key(name: str) -> tuple:
    """Sort key that puts 'checkpoint-1500' before 'checkpoint-10000' (numbers compare as numbers)."""
    parts = _DIGITS.split(name)
    numbers = _DIGITS.findall(name)
    key: list = []
    for i, text in enumerate(parts):
        key.append((0, text.casefold()))
        if i < len(numbers):
            key.append((1, int(numbers[i]), len(numbers[i])))
    return tuple(key)


def step_of(name: str) -> tuple[int, ...] | None:
    """The training position a name carries, comparable within a series, or None (no step).

    ``step=N`` wins (with the epoch before it when there is one), then ``epoch=N``, then the numbers
    in the name from left to right. Hidden names and shard names have none."""
    if not name or name.startswith("."):
        return None
    if _SHARD.search(name):
        return None
    step = _STEP.search(name)
    epoch = _EPOCH.search(name)
    if step:
        return (int(epoch.group(1)) if epoch else 0, int(step.group(1)))
    if epoch:
        return (int(epoch.group(1)), 0)
    numbers = _DIGITS.findall(name)
    if not numbers:
        return None
    return tuple(int(n) for n in numbers)


def series_of(name: str) -> str:
    """The name with its numbers blanked: checkpoints of one series share it."""
    return _DIGITS.sub("#", name)


def latest(names: Iterable[str]) -> set[str]:
    """The names ``pull --latest`` keeps: the newest of each numbered series, and every name without a
    step (hidden names are dropped)."""
    keep: set[str] = set()
    newest: dict[str, tuple[tuple[int, ...], str]] = {}
    for name in names:
        if name.startswith("."):
            continue
        step = step_of(name)
        if step is None:
            keep.add(name)
            continue
        series = series_of(name)
        best = newest.get(series)
        if best is None or (step, natural_key(name)) > (best[0], natural_key(best[1])):
            newest[series] = (step, name)
    keep.update(name for _, name in newest.values())
    return keep


def _position(name: str) -> int:
    """One number to compare checkpoints of different series by: the step, else the epoch, else the
    last number in the name."""
    step, epoch = _STEP.search(name), _EPOCH.search(name)
    if step:
        return int(step.group(1))
    if epoch:
        return int(epoch.group(1))
    return int(_DIGITS.findall(name)[-1])


def to_prune(names: Iterable[str], keep_last: int) -> list[str]:
    """What ``push --watch --keep-last N`` trashes: in each numbered series, all but the N newest.
    Names without a step (``last.ckpt``, logs, shards) and hidden names are never pruned."""
    by_series: dict[str, list[tuple[tuple[int, ...], tuple, str]]] = {}
    for name in names:
        step = step_of(name)
        if step is not None:
            by_series.setdefault(series_of(name), []).append((step, natural_key(name), name))
    out = []
    for members in by_series.values():
        members.sort(reverse=True)
        out.extend(name for _, _, name in members[keep_last:])
    return sorted(out, key=natural_key)


def newest(names: Iterable[str]) -> str | None:
    """The single newest numbered checkpoint among ``names`` (across series: the highest step), or None."""
    best: tuple[int, tuple, tuple, str] | None = None
    for name in names:
        step = step_of(name)
        if step is None:
            continue
        candidate = (_position(name), step, natural_key(name), name)
        if best is None or candidate[:3] > best[:3]:
            best = candidate
    return best[3] if best else None
