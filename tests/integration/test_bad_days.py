"""A Drive that is down, failing for good, or flapping: bounded waits, visible retries, one line at the end.

All over real sockets: a port nobody listens on, the emulator answering 5xx to every call, and an
emulator that comes up only seconds after the command started.
"""
from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from drivesync.cli import main
from drivesync.emulator import Emulator


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_pull_from_a_drive_nobody_answers_gives_up_in_bounded_time_naming_host(emulator, capsys, tmp_path):
    port = free_port()   # nothing listens here: every API call is refused
    code = main(["pull", "data/", str(tmp_path / "out"), "-q", "--api-url", f"http://127.0.0.1:{port}",
                 "--credentials", emulator.credentials_path, "--give-up-after", "3"])
    line = one_line(capsys.readouterr().err)
    assert code != 0
    assert "gave up on 127.0.0.1 after 3 s without progress" in line, line
    assert "connection refused" in line and "--give-up-after" in line, line
    assert not (tmp_path / "out").exists()


def test_a_server_that_hangs_up_on_every_call_gets_a_bounded_number_of_tries(emulator, capsys, tmp_path):
    """Every connection is accepted and closed at once: counted, so the bound is on tries, not on a clock."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        code = main(["pull", "data/", str(tmp_path / "out"), "-q", "--api-url",
                     f"http://127.0.0.1:{listener.getsockname()[1]}", "--credentials", emulator.credentials_path,
                     "--give-up-after", "3"])
    finally:
        stop.set()
        thread.join()
        listener.close()
    line = one_line(capsys.readouterr().err)
    assert code != 0 and "gave up on 127.0.0.1 after 3 s" in line, line
    # Backoff 1 s, 2 s, then the rest of the 3 s: a handful of tries, not a retry storm.
    assert 2 <= len(accepted) <= 6, len(accepted)


def test_all_5xx_drive_gives_up_and_shows_each_retry_at_v(emulator, capsys, caplog, tmp_path):
    top = emulator.add_folder("data")
    for i in range(20):
        emulator.add_file(f"f{i}.bin", b"x" * 100, parent_id=top)
    emulator.configure(error_rate=1.0)
    emulator.reset_stats()
    with caplog.at_level(logging.INFO, logger="drivesync"):
        code = main(["pull", "data/", str(tmp_path / "out"), "-q", "-v", "--api-url", emulator.url,
                     "--credentials", emulator.credentials_path, "--give-up-after", "4"])
    line = one_line(capsys.readouterr().err)
    assert code != 0
    # the call named: the lookup of the path's first name below My Drive's root (files.list)
    assert "gave up on 127.0.0.1 after 4 s without progress" in line and "(files.list)" in line, line
    assert "last error: Drive answered 50" in line and "backendError" in line, line
    notices = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert notices and all(" from 127.0.0.1, retry " in n for n in notices), notices
    assert "retry 1 in 1 s" in notices[0] or "retry 1 in 2 s" in notices[0], notices[0]
    # Bounded: one call backing off 1, 2, then the rest of 4 s: a handful of requests, not hundreds.
    assert emulator.stats()["requests"] <= 6, emulator.stats()


def test_a_drive_that_fails_midway_stops_the_whole_run_once(emulator, capsys, tmp_path):
    top = emulator.add_folder("data")
    for i in range(40):
        emulator.add_file(f"f{i:02}.bin", bytes([i]) * 2000, parent_id=top)
    # The listing succeeds; then every media request fails for good.
    from drivesync.config import Settings
    from drivesync.errors import DriveUnreachable
    from drivesync.puller import pull

    class Breaker:
        def __call__(self, event):
            if event.kind == "start":
                emulator.configure(error_rate=1.0)

    # The run stops once, with one error for all, instead of reporting 40 failures one by one.
    with pytest.raises(DriveUnreachable, match="gave up on 127.0.0.1 after 3 s"):
        pull("data/", str(tmp_path / "out"), settings=Settings(api_url=emulator.url, give_up_after=3.0),
             credentials=emulator.credentials_path, subscribers=[Breaker()])
    leftovers = list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else []
    assert all(p.name.startswith("f") and p.stat().st_size == 2000 for p in leftovers), leftovers


def test_token_endpoint_blip_at_start_is_ridden_out(tmp_path, capsys):
    """The emulator (token endpoint and API) is down for the first 3 s of the command."""
    port = free_port()
    data = tmp_path / "drive"
    with Emulator(data, port=port) as emu:
        top = emu.add_folder("data")
        emu.add_file("a.txt", b"hello", parent_id=top)
        creds = emu.credentials_path
        url = emu.url
    later = {}

    def start_later():
        time.sleep(3)
        later["emu"] = Emulator(data, port=port).start()

    thread = threading.Thread(target=start_later)
    thread.start()
    try:
        code = main(["pull", "data/", str(tmp_path / "out"), "-q", "--api-url", url, "--credentials", creds])
    finally:
        thread.join()
        later["emu"].close()
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"hello"
