"""benchmarks/extract_bench.py on a tiny archive, so the script cannot rot: every contender's members check out
against the zip's CRC-32s, and --extract's peak disk is about the members' size, pull-then-unzip's about twice."""
import json
import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


@pytest.mark.skipif(not shutil.which("unzip"), reason="the pull-then-unzip contender needs Info-ZIP's unzip")
def test_extract_bench_quick(tmp_path, monkeypatch):
    from benchmarks import extract_bench

    monkeypatch.delenv("DRIVESYNC_API_URL", raising=False)
    out = tmp_path / "rows.json"
    rc = extract_bench.main(["--images", "40", "--image-kb", "20", "--profile", "unthrottled",
                             "--work", str(tmp_path / "work"), "--out", str(out)])
    summary = json.loads(out.read_text())
    assert rc == 0 and all(r["ok"] for r in summary["rows"]), summary
    by = {r["contender"]: r for r in summary["rows"]}
    assert set(by) == {"pull+unzip", "extract", "extract-nofsync"}
    assert 1.8 < by["pull+unzip"]["peak_disk_x_archive"] < 2.3
    assert 0.9 < by["extract"]["peak_disk_x_archive"] < 1.3
    assert summary["peak_disk_ratio"] < 0.7
