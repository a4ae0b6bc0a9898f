"""The fault campaign's short version (tests/faults/campaign.py): pull, push and push --watch through
kill -9, the emulator killed and restarted, server faults, rate-limit storms, expiring tokens and upload
sessions, a damaged journal, files changed underneath, and full disks, with every invariant checked."""
from __future__ import annotations

import pytest

from tests.faults import campaign


@pytest.mark.timeout(900)
def test_short_campaign_keeps_every_invariant(tmp_path):
    lines = []
    results = campaign.run_campaign(seed=1, plan=campaign.SHORT, workdir=str(tmp_path), echo=lines.append)
    table = campaign.table(results)
    print(table)
    ran = [r for r in results if not r.skipped]
    assert len(ran) >= len(campaign.SHORT) - 2, "\n".join(lines)    # at most the two root-only faults skip
    assert all(r.kills for r in ran if r.fault.endswith("kill9")), "a kill -9 landed after the run had ended"
    bad = [line for line, r in zip(lines, results) if r.bad]
    assert not bad, table + "\n" + "\n".join(bad)
