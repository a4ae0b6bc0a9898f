"""Progress bars and the end-of-run summary, fed by transfer.Event (pull and push share it).

One bar for bytes and files (rate, ETA), one bar per large file in flight (at most ``max_file_bars``,
so thousands of small files never make thousands of bars), and ``summary_line`` for the end.
One unit system everywhere, binary as rclone prints it: sizes in B, KiB, MiB, GiB (``human_bytes``), rates in
the same units per second (``human_rate``), bars in tqdm's 1024-based units ('MiB', 'MiB/s'). Uses
``tqdm.auto`` so it renders as widgets in a notebook. It never decides anything about transfers.
"""
from __future__ import annotations

import sys
from typing import Iterable

from .transfer import Event


class Progress:
    """A transfer.Transfers subscriber: ``Transfers(..., subscribers=[Progress(...)])``; call ``close()``."""

    def __init__(self, *, total_bytes: int, total_files: int, big_file: int = 32 * 1024 * 1024,
                 unit_files: str = "files", desc: str = "pull", max_file_bars: int = 4, file=None,
                 disable: bool | None = None):
        from tqdm.auto import tqdm

        self.file = file or sys.stderr
        self.total_files = total_files
        self.unit_files = unit_files
        self.big_file = big_file
        self.max_file_bars = max_file_bars
        self.files_done = 0
        self.failed = 0
        self.retries = 0
        self.waiting_for = ""
        self._file_bars = FileBars(positions=range(1, max_file_bars + 1), file=self.file, disable=disable)
        self.main = tqdm(total=total_bytes, unit="iB", unit_scale=True, unit_divisor=1024, desc=desc,
                         file=self.file, disable=disable, dynamic_ncols=True, position=0)
        self._postfix()

    def _postfix(self) -> None:
        text = f"{self.files_done}/{self.total_files} {self.unit_files}"
        if self.failed:
            text += f", {self.failed} failed"
        if self.retries:
            text += f", {self.retries} retries"
        if self.waiting_for:
            text += f" | {self.waiting_for}"
        self.main.set_postfix_str(text, refresh=False)

    def grow(self, nbytes: int, files: int) -> None:
        """More work became known (a pull that starts while its listing is still arriving)."""
        self.total_files += files
        self.main.total = (self.main.total or 0) + nbytes
        self._postfix()
        self.main.refresh()

    def waiting(self, notice: str) -> None:
        """A transport retry notice ('503 from www.googleapis.com, retry 3 in 4 s'), shown until the next file ends."""
        self.waiting_for = notice
        self._postfix()
        self.main.refresh()

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind == "bytes":
            self.main.update(event.nbytes)
            self._file_bars.update(event.path, event.nbytes)
        elif kind == "start":
            if (event.total or 0) >= self.big_file:
                self._file_bars.open(event.path, event.total)
        elif kind in ("done", "skip", "fail"):
            self.files_done += 1
            if kind == "skip" and event.total and self.main.total:
                self.main.total = max(self.main.n, self.main.total - event.total)  # nothing to send after all
            self.waiting_for = ""
            if kind == "fail":
                self.failed += 1
                self._file_bars.write(f"failed: {event.path}: {event.message}")
            self._file_bars.close(event.path)
            self._postfix()
            self.main.refresh()
        elif kind == "retry":
            self.retries += 1
            self._postfix()

    def close(self) -> None:
        self._file_bars.close_all()
        self.main.close()


class FileBars:
    """One tqdm bar per file in flight, on a fixed set of screen positions (a file with none free gets
    no bar, so thousands of files never make thousands of bars). Shared by pull/push and the watcher."""

    def __init__(self, *, positions: Iterable[int], file=None, disable: bool | None = None):
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self.file = file or sys.stderr
        self.disable = disable
        self._bars: dict[str, object] = {}
        self._free = sorted(positions, reverse=True)

    def open(self, path: str, total: int | None) -> None:
        self.close(path)
        if not self._free:
            return
        position = self._free.pop()
        name = path if len(path) <= 40 else "..." + path[-37:]
        bar = self._tqdm(total=total or None, unit="iB", unit_scale=True, unit_divisor=1024, desc=name,
                         file=self.file, disable=self.disable, leave=False, position=position, dynamic_ncols=True)
        bar.drivesync_position = position
        self._bars[path] = bar

    def update(self, path: str, nbytes: int) -> None:
        bar = self._bars.get(path)
        if bar is not None:
            bar.update(nbytes)

    def close(self, path: str) -> None:
        bar = self._bars.pop(path, None)
        if bar is not None:
            self._free.append(bar.drivesync_position)
            bar.close()

    def close_all(self) -> None:
        for path in list(self._bars):
            self.close(path)

    def write(self, line: str) -> None:
        """A line above the bars, without tearing them."""
        self._tqdm.write(line, file=self.file)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def human_rate(bytes_per_s: float) -> str:
    """'150.2 MiB/s': a rate in human_bytes' units."""
    return f"{human_bytes(bytes_per_s)}/s"


def plural(n: int, word: str) -> str:
    """'1 file', '2 files', '0 files'."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary_line(result, verb: str = "pulled") -> str:
    """'pulled 12 files (3 skipped, 0 failed), 1.2 GiB in 8.1 s = 150.2 MiB/s, 2 retries'."""
    if getattr(result, "dry_run", False):
        # What it would do, counted from the plan it listed; nothing moved, so no time or rate.
        text = (f"{verb} {plural(result.planned, 'file')} ({human_bytes(result.planned_bytes)}), "
                f"{result.skipped} already there, {len(result.failed)} in conflict")
        return text + (f", {result.filtered} filtered out" if getattr(result, "filtered", 0) else "")
    parts = [f"{verb} {plural(result.done, 'file')}"]
    extra = [f"{result.skipped} skipped", f"{len(result.failed)} failed"]
    if getattr(result, "exported", 0):
        extra.append(f"{result.exported} Docs exported")
    if getattr(result, "gdocs_skipped", 0):
        extra.append(f"{result.gdocs_skipped} Docs skipped")
    if getattr(result, "deleted", 0):
        extra.append(f"{result.deleted} deleted")
    if getattr(result, "filtered", 0):
        extra.append(f"{result.filtered} filtered out")
    parts[0] += f" ({', '.join(extra)})"
    rate = result.bytes / result.seconds if result.seconds > 0 else 0.0
    parts.append(f"{human_bytes(result.bytes)} in {result.seconds:.1f} s = {human_rate(rate)}")
    parts.append(f"{result.retries} retries")
    return "; ".join([", ".join(parts)] + odd_answer_notes(result))


#: What a summary says about a server's odd answers: (result attribute, what it counts).
_ODD_ANSWERS = (
    ("verified_by_goog_hash", "verified by X-Goog-Hash (Drive gave no md5Checksum)"),
    ("verified_by_size_only", "verified by size only (Drive gave no checksum)"),
    ("list_rechecks", "extra listing requests to confirm empty batched answers"),
    ("range_ignored", "files fetched as one stream (the server ignored Range)"),
)


def odd_answer_notes(result) -> list[str]:
    """'2 verified by size only (Drive gave no checksum)', ... for the counts a pull or push result has."""
    return [f"{getattr(result, name)} {what}" for name, what in _ODD_ANSWERS if getattr(result, name, 0)]


def in_notebook() -> bool:
    """Is this code running under a Jupyter kernel (Jupyter, Colab, VS Code notebooks)?"""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def wanted(progress: bool | None, stream=None) -> bool:
    """Should pull/push draw bars? An explicit True/False wins; None (auto) means yes in a notebook or
    when ``stream`` (stderr) is a terminal, no in CI logs, pipes and files."""
    if progress is not None:
        return bool(progress)
    if in_notebook():
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def result_html(line: str, ok: bool, failures: list[str] = (), warnings: list[str] = (), limit: int = 10) -> str:
    """A result as a notebook shows it: the summary line, then the first failures and warnings."""
    from html import escape

    colour = "" if ok else ' style="color:#b00020"'
    parts = [f"<div><code{colour}>{escape(line)}</code>"]
    for title, lines in (("failed", list(failures)), ("warning", list(warnings))):
        if lines:
            items = "".join(f"<li>{escape(text)}</li>" for text in lines[:limit])
            more = f"<li>... and {len(lines) - limit} more</li>" if len(lines) > limit else ""
            label = title + ("s" if title == "warning" and len(lines) > 1 else "")
            parts.append(f"<details{' open' if title == 'failed' else ''}><summary>{len(lines)} {label}"
                         f"</summary><ul>{items}{more}</ul></details>")
    return "".join(parts) + "</div>"


class WatchProgress:
    """Bars for ``push --watch`` in a terminal: one per upload in flight (at most ``max_bars``), fed by the
    Watcher's events ('start' with the item's total, 'bytes', 'done' / 'skip' / 'fail'); lines written
    through ``write`` (the durable lines) appear above the bars without tearing them."""

    def __init__(self, *, file=None, max_bars: int = 4, disable: bool | None = None):
        self.file = file or sys.stderr
        self._bars = FileBars(positions=range(max_bars), file=self.file, disable=disable)

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind == "start":
            self._bars.open(event.path, event.total)
        elif kind == "bytes":
            self._bars.update(event.path, event.nbytes)
        elif kind in ("done", "skip", "fail"):
            self._bars.close(event.path)

    def write(self, line: str) -> None:
        self._bars.write(line)

    def close(self) -> None:
        self._bars.close_all()


def line_handler(write=None, stream=None, fmt: str = "%(message)s"):
    """A logging.Handler writing each record as one line with ``write(line)``, or onto ``stream``."""
    import logging

    class _Handler(logging.Handler):
        def emit(self, record):
            try:
                line = self.format(record)
                if write is not None:
                    write(line)
                else:
                    target = stream or sys.stderr
                    target.write(line + "\n")
                    target.flush()
            except Exception:
                self.handleError(record)

    handler = _Handler()
    handler.setFormatter(logging.Formatter(fmt))
    return handler
