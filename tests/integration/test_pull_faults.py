"""The same pull under injected faults (5xx, connections cut mid-body, 403/429 storms, tokens that
expire every few seconds) ends byte-identical, and the retries are counted."""
import os

import pytest

import drivesync

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))


def seed(emu):
    top = emu.add_folder("ds")
    sub = emu.add_folder("sub", top)
    ids = {"big.bin": emu.add_file("big.bin", size=12 * MiB + 333, seed=5, parent_id=top)}
    for i in range(30):
        ids[f"sub/f{i}.bin"] = emu.add_file(f"f{i}.bin", size=40_000 + i, seed=i, parent_id=sub)
    emu.add_doc("Notes", top, text="exported under faults")
    return ids


def pull(emu, out, **kw):
    return drivesync.pull("ds", str(out), credentials=emu.credentials_path, api_url=emu.url,
                          multistream_cutoff=4 * MiB, range_size=1 * MiB, backoff_base=0.02, backoff_cap=0.3,
                          max_retries=12, **kw)


def check_identical(emu, ids, out):
    for rel, fid in ids.items():
        assert (out / rel).read_bytes() == emu.content(fid), rel
    assert (out / "Notes.docx").read_bytes()[:2] == b"PK"
    leftovers = [n for _, _, files in os.walk(out) for n in files if n.endswith(".drivesync-partial")]
    assert leftovers == []


def test_server_errors_and_cut_connections(emulator, tmp_path):
    ids = seed(emulator)
    emulator.configure(error_rate=0.2, cut_share=0.3, cut_next=3, cut_after_bytes=20_000, seed=3)
    result = pull(emulator, tmp_path / "out")
    assert result.ok, result.failed
    check_identical(emulator, ids, tmp_path / "out")
    stats = emulator.stats()
    assert stats["injected_errors"] > 0 and stats["cut_connections"] > 0
    assert result.retries >= stats["injected_errors"]


def test_rate_limit_storms_and_short_lived_tokens(emulator, tmp_path):
    ids = seed(emulator)
    emulator.configure(requests_per_s=40, request_burst=5, rate_limit_429_share=0.5, token_lifetime_s=2)
    result = pull(emulator, tmp_path / "out", tps=400)  # deliberately faster than the quota
    assert result.ok, result.failed
    check_identical(emulator, ids, tmp_path / "out")
    stats = emulator.stats()
    assert stats["rate_limited"] > 0
    assert result.retries > 0


def test_expired_tokens_mid_run_are_refreshed(emulator, tmp_path):
    ids = seed(emulator)
    # Tokens live 2 s, and on top every token is revoked each time another 4 MiB arrived (~0.5 s).
    emulator.configure(download_bps_per_connection=1_000_000, download_burst_per_connection=64 * 1024,
                       token_lifetime_s=2)
    seen = {"bytes": 0, "next": 1 * MiB, "expired": 0}

    def expire_as_bytes_arrive(event):
        if event.kind == "bytes":
            seen["bytes"] += event.nbytes
            if seen["bytes"] >= seen["next"]:
                seen["next"] += 4 * MiB
                seen["expired"] += 1
                emulator.expire_tokens()

    result = pull(emulator, tmp_path / "out", subscribers=[expire_as_bytes_arrive])
    assert result.ok, result.failed
    check_identical(emulator, ids, tmp_path / "out")
    stats = emulator.stats()
    assert seen["expired"] >= 3
    assert stats["by_status"].get("401", 0) > 0 and stats["token_grants"] >= 2
