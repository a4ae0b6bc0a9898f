"""transfer.Transfers: scheduling order, failure isolation, and credentials errors stopping a run."""
import asyncio

import pytest

from drivesync.errors import AuthError
from drivesync.transfer import Job, Transfers, run_sync


def _job(path, size, log, *, fail=None):
    async def run(ctx):
        log.append(path)
        await asyncio.sleep(0)
        if fail is not None:
            raise fail
        return "done"

    return Job(path=path, size=size, run=run)


def test_largest_files_start_first_and_outcomes_keep_the_given_order():
    started = []
    jobs = [_job("small", 10, started), _job("big", 1000, started), _job("mid", 100, started)]
    outcomes = asyncio.run(Transfers(transfers=1, max_streams=1).run(jobs))
    assert started == ["big", "mid", "small"]
    assert [o.path for o in outcomes] == ["small", "big", "mid"]
    assert all(o.result == "done" for o in outcomes)


def test_one_failure_does_not_stop_the_others_and_is_reported():
    started, events = [], []
    jobs = [_job("a", 1, started), _job("b", 1, started, fail=OSError("disk full")), _job("c", 1, started)]
    outcomes = asyncio.run(Transfers(transfers=2, max_streams=2, subscribers=[events.append]).run(jobs))
    assert {o.path: o.result for o in outcomes} == {"a": "done", "b": "fail", "c": "done"}
    assert [e.path for e in events if e.kind == "fail"] == ["b"]


def test_credentials_failing_for_good_stop_the_whole_run():
    started = []
    jobs = [_job("first", 5, started, fail=AuthError("sign in again"))]
    jobs += [_job(f"queued{i}", 1, started) for i in range(20)]
    with pytest.raises(AuthError):
        asyncio.run(Transfers(transfers=1, max_streams=1).run(jobs))
    assert started[0] == "first"
    assert len(started) <= 2  # at most the job already woken when the error surfaced; the queue is cancelled


def test_run_sync_works_inside_a_running_loop():
    async def answer():
        return 42

    async def notebook_cell():  # a notebook's loop is already running when the user calls pull()
        return run_sync(answer())

    assert run_sync(answer()) == 42
    assert asyncio.run(notebook_cell()) == 42
