"""drivesync from a notebook cell, against the emulator over real sockets: interrupting a pull or a push
(the cell's stop button: SIGINT to the thread that runs the cell, while an event loop runs there) stops the
transfer for real and leaves resumable state; progress bars only where someone looks; results print as one
summary line."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import threading
import time

import pytest

import drivesync
from drivesync import progress as progress_mod
from drivesync.config import Settings

MiB = 1024 * 1024
BIG = 24 * MiB


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DRIVESYNC_API_URL", raising=False)


@pytest.fixture
def sigint_to_main():
    """SIGINT raises KeyboardInterrupt in the main thread (as in a Jupyter kernel) for the test's duration."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def done_bytes(journal_path) -> int:
    if not os.path.exists(journal_path):
        return 0
    db = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT done FROM partial_download").fetchall()
    except sqlite3.Error:        # not created yet, or busy
        return 0
    finally:
        db.close()
    return sum(b - a for (done,) in rows for a, b in json.loads(done))


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "drivesync-worker" and t.is_alive()]


def interrupt_when(ready, counter, seen: dict) -> threading.Thread:
    """A thread that sends SIGINT to the main thread once ``ready()``; ``seen['at_signal']``: ``counter()`` then."""
    main = threading.main_thread().ident

    def run():
        deadline = time.monotonic() + 60
        while not ready():
            if time.monotonic() > deadline:
                seen["timeout"] = True
                return
            time.sleep(0.01)
        seen["at_signal"] = counter()
        signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=run, name="test-interrupter", daemon=True)
    thread.start()
    return thread


def in_a_cell(call):
    """Run ``call()`` the way Jupyter runs a cell: synchronously, in a coroutine on the thread's running loop
    (a plain loop, without asyncio.run's own SIGINT handler: ipykernel installs none)."""
    async def cell():
        return call()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(cell())
    finally:
        loop.close()


def pull(emu, remote, local, **kw):
    kw.setdefault("multistream_cutoff", 4 * MiB)
    kw.setdefault("range_size", 2 * MiB)
    return drivesync.pull(remote, str(local), credentials=emu.credentials_path, api_url=emu.url, **kw)


@pytest.mark.parametrize("where", ["notebook", "script"])
def test_interrupting_a_pull_stops_it_and_a_rerun_fetches_only_the_missing_bytes(emulator, tmp_path, where,
                                                                                  sigint_to_main):
    emu = emulator
    top = emu.add_folder("ds")
    big = emu.add_file("big.bin", size=BIG, seed=5, parent_id=top)
    out = tmp_path / "out"
    journal = tmp_path / "state" / "journal.db"
    # 4 streams x 1 MB/s: the whole file would take about 6 s; the interrupt lands once 2 MiB are on disk
    # and in the journal (each stream holds up to io_buffer = 1 MiB in memory before writing it).
    emu.configure(download_bps_per_connection=1_000_000, download_burst_per_connection=64 * 1024)
    sent = lambda: emu.stats()["bytes_sent"]   # noqa: E731
    seen: dict = {}
    interrupter = interrupt_when(lambda: done_bytes(journal) >= 2 * MiB, sent, seen)
    call = lambda: pull(emu, "ds", out, streams_per_file=4, progress=False)   # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        if where == "notebook":
            in_a_cell(call)
        else:
            call()   # no loop running: asyncio.run's own Ctrl-C handling
    at_raise = sent()
    interrupter.join()
    assert "timeout" not in seen and "at_signal" in seen
    # Stopped promptly: well under what 4 streams would still have fetched, and nothing moves afterwards.
    assert at_raise - seen["at_signal"] < 4 * MiB, (seen, at_raise)
    assert not workers(), "the pull goes on in the background"
    time.sleep(1.0)          # a pull still running would fetch about 4 MB in this second
    assert sent() - at_raise < 256 * 1024, (at_raise, sent())
    # Resumable state: a partial file under a hidden name, done ranges in the journal.
    assert not (out / "big.bin").exists()
    assert [n for n in os.listdir(out) if n.endswith(".drivesync-partial")]
    kept = done_bytes(journal)
    assert 0 < kept < BIG

    emu.configure(download_bps_per_connection=None)
    emu.reset_stats()
    result = pull(emu, "ds", out, streams_per_file=4, progress=False)
    assert result.ok, result.failed
    assert (out / "big.bin").read_bytes() == emu.content(big)
    missing = BIG - kept
    assert result.bytes <= missing + 100, (result.bytes, missing)
    assert emu.stats()["bytes_sent"] <= missing + 64 * 1024, (emu.stats()["bytes_sent"], missing)


def test_interrupting_a_push_in_a_cell_stops_it_and_a_rerun_sends_the_rest(emulator, tmp_path, sigint_to_main):
    emu = emulator
    src = tmp_path / "ckpt"
    src.mkdir()
    data = os.urandom(12 * MiB)
    (src / "model.bin").write_bytes(data)
    emu.configure(upload_bps_per_connection=2_000_000, upload_burst_per_connection=64 * 1024)
    received = lambda: emu.stats()["bytes_received"]   # noqa: E731
    settings = Settings(api_url=emu.url, upload_cutoff=1 * MiB, upload_chunk_size=1 * MiB, backoff_base=0.01,
                        backoff_cap=0.05, write_tps=1000.0, write_burst=1000, tps=1000.0, tps_burst=1000)
    push = lambda: drivesync.push(str(src), "run/ckpt", settings=settings,   # noqa: E731
                                  credentials=emu.credentials_path, progress=False)
    seen: dict = {}
    interrupter = interrupt_when(lambda: received() >= 3 * MiB, received, seen)
    with pytest.raises(KeyboardInterrupt):
        in_a_cell(push)
    at_raise = received()
    interrupter.join()
    assert "at_signal" in seen
    assert at_raise - seen["at_signal"] < 4 * MiB
    assert not workers()
    time.sleep(1.0)
    assert received() - at_raise < 1 * MiB + 64 * 1024   # at most the chunk already on the wire
    with pytest.raises(KeyError):
        emu.path_id("run/ckpt/model.bin")     # not on Drive: the upload stopped half way

    emu.configure(upload_bps_per_connection=None)
    before = received()
    result = drivesync.push(str(src), "run/ckpt", settings=settings, credentials=emu.credentials_path,
                            progress=False)
    assert result.uploaded == ["model.bin"]
    assert emu.content(emu.path_id("run/ckpt/model.bin")) == data
    assert received() - before < len(data) - 2 * MiB, "the rerun started the upload over"


def test_results_print_one_summary_line(emulator, tmp_path):
    emu = emulator
    top = emu.add_folder("ds")
    for i in range(3):
        emu.add_file(f"f{i}.bin", size=1000 + i, seed=i, parent_id=top)
    out = tmp_path / "out"
    first = pull(emu, "ds", out)
    again = pull(emu, "ds", out)
    text = repr(first)
    assert text.startswith("PullResult(pulled 3 files (0 skipped, 0 failed), ") and text.endswith(f"-> {out})")
    assert " in " in text and "iB/s" in text          # binary units (KiB/s, MiB/s), as everywhere
    assert str(again).startswith("pulled 0 files (3 skipped, 0 failed)")
    html = first._repr_html_()
    assert "pulled 3 files" in html and "<code" in html
    assert first.to_dict()["done"] == 3 and first.done == 3     # still a dataclass underneath

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"hello")
    pushed = drivesync.push(str(src), "up", api_url=emu.url, credentials=emu.credentials_path)
    assert repr(pushed).startswith("PushResult(pushed 1 file (0 unchanged, 0 failed), 5 B in ")
    assert repr(pushed).endswith("-> up)") and "pushed 1 file (" in pushed._repr_html_()
    assert pushed.uploaded == ["a.txt"]


def test_progress_is_drawn_where_someone_looks(emulator, tmp_path, capfd, monkeypatch):
    class Tty:
        def isatty(self):
            return True

    assert progress_mod.wanted(True) and not progress_mod.wanted(False)
    assert progress_mod.wanted(None, Tty()) and not progress_mod.wanted(None, open(os.devnull, "w"))
    monkeypatch.setattr(progress_mod, "in_notebook", lambda: True)
    assert progress_mod.wanted(None, open(os.devnull, "w")) and not progress_mod.wanted(False)
    monkeypatch.undo()
    assert not progress_mod.in_notebook()

    emu = emulator
    top = emu.add_folder("ds")
    emu.add_file("a.bin", size=300_000, seed=1, parent_id=top)
    pull(emu, "ds", tmp_path / "quiet")                # stderr is not a terminal here: silent
    assert "pull" not in capfd.readouterr().err
    pull(emu, "ds", tmp_path / "loud", progress=True)
    assert "pull" in capfd.readouterr().err
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"x" * 1000)
    drivesync.push(str(src), "up", api_url=emu.url, credentials=emu.credentials_path)
    assert "push" not in capfd.readouterr().err
    (src / "b.txt").write_bytes(b"y" * 1000)
    drivesync.push(str(src), "up", api_url=emu.url, credentials=emu.credentials_path, progress=True)
    err = capfd.readouterr().err
    assert "push" in err and "2/2 files" in err


def test_watch_shows_its_durable_lines_when_asked_and_nothing_when_not(emulator, tmp_path, capfd):
    root = tmp_path / "ckpt"
    root.mkdir()
    fast = dict(api_url=emulator.url, credentials=emulator.credentials_path, settle=0.3)
    with drivesync.watch(str(root), "run", progress=True, **fast):
        (root / "a.ckpt").write_bytes(b"a" * 5000)
    err = capfd.readouterr().err
    assert "durable: a.ckpt" in err, err
    with drivesync.watch(str(root), "run", **fast):     # not a terminal, not a notebook: silent
        (root / "b.ckpt").write_bytes(b"b" * 5000)
    assert "durable" not in capfd.readouterr().err
    assert emulator.content(emulator.path_id("run/b.ckpt")) == b"b" * 5000
