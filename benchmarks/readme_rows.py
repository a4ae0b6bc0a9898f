"""The README's benchmark table rows (drive-like), printed from a results.json with the report's own formatting.

    python benchmarks/readme_rows.py                       # benchmarks/results/results.json
    python benchmarks/readme_rows.py path/to/results.json

Paste the output over the rows of README.md's "Benchmarks" table; the figures then match results.md.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402

#: The README's order of contenders within a scenario.
ORDER = ("drivesync", "rclone-tuned", "rclone-default", "rclone-latest-tuned", "rclone-latest-default",
         "fuse-mount", "official")


def rows(data: dict, profile: str = "drive-like") -> list[str]:
    found = [r for r in harness.load_rows(data) if r.profile == profile and r.status != "unavailable" and r.contender in ORDER]
    found.sort(key=lambda r: (harness.SCENARIOS.index(r.scenario), ORDER.index(r.contender)))
    return [f"| {r.scenario} | {r.label} | {harness._fmt_wall(r)} | {harness._fmt_ratio(r)} | {harness._num(r.requests)} | "
            f"{harness._num(r.rate_limited)} | {harness._num(r.cpu_s_per_gb, '{:.1f}')} | "
            f"{harness._num(r.peak_rss_mib, '{:.0f} MiB')} |" for r in found]


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else ROOT / "benchmarks" / "results" / "results.json"
    print("\n".join(rows(json.loads(path.read_text()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
