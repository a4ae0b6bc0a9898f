"""The progress bar shows what a retrying transport waits for, and the summary names odd answers."""
from __future__ import annotations

import io
from types import SimpleNamespace

from drivesync.progress import Progress, summary_line
from drivesync.transfer import Event


def test_the_bar_shows_the_retry_notice_until_the_next_file_ends():
    out = io.StringIO()
    bars = Progress(total_bytes=100, total_files=2, file=out, disable=False)
    bars.waiting("503 from www.googleapis.com, retry 3 in 4 s (files.list)")
    assert "503 from www.googleapis.com, retry 3 in 4 s" in bars.main.postfix
    bars(Event("done", "a.bin", total=10))
    assert "retry 3" not in bars.main.postfix and "1/2 files" in bars.main.postfix
    bars.close()
    assert "503 from www.googleapis.com" in out.getvalue()


def test_work_found_while_the_pull_runs_grows_the_totals():
    out = io.StringIO()
    bars = Progress(total_bytes=0, total_files=0, file=out, disable=False)
    bars.grow(100, 2)
    bars(Event("bytes", "a.bin", nbytes=60))
    bars(Event("done", "a.bin", total=60))
    bars.grow(50, 1)                     # the next level of the listing arrived
    assert bars.main.total == 150 and "1/3 files" in bars.main.postfix
    bars.close()


def test_summary_names_files_checked_without_md5_and_listing_rechecks():
    result = SimpleNamespace(done=3, skipped=0, failed=[], bytes=3000, seconds=1.0, mb_per_s=0.003, retries=0,
                             verified_by_goog_hash=2, verified_by_size_only=1, list_rechecks=5, range_ignored=0)
    line = summary_line(result)
    assert "2 verified by X-Goog-Hash (Drive gave no md5Checksum)" in line
    assert "1 verified by size only (Drive gave no checksum)" in line
    assert "5 extra listing requests" in line and "ignored Range" not in line
