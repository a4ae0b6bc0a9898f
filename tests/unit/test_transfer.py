"""transfer.Transfers: scheduling order, failure isolation, and credentials errors stopping a run."""
import asyncio
import sys

import pytest

from drivesync.errors import AuthError, UsageError
from drivesync.transfer import EVENT_LOOP_VARIABLE, Job, Transfers, loop_factory, run_loop, run_sync


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


async def _loop_type_async():
    """The package of the loop this runs on: 'uvloop' or 'asyncio'."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_run_loop_runs_on_uvloop_where_installed_unless_asyncio_is_asked_for(monkeypatch):
    pytest.importorskip("uvloop")
    monkeypatch.delenv(EVENT_LOOP_VARIABLE, raising=False)
    assert run_loop(_loop_type_async()) == "uvloop"
    assert run_sync(_loop_type_async()) == "uvloop"
    monkeypatch.setenv(EVENT_LOOP_VARIABLE, "asyncio")
    assert run_loop(_loop_type_async()) == "asyncio"
    monkeypatch.setenv(EVENT_LOOP_VARIABLE, "")            # empty counts as unset
    assert run_loop(_loop_type_async()) == "uvloop"


def test_an_event_loop_that_cannot_be_had_is_a_usage_error(monkeypatch):
    with pytest.raises(UsageError, match=f"{EVENT_LOOP_VARIABLE}=trio is not an event loop"):
        loop_factory({EVENT_LOOP_VARIABLE: "trio"})
    monkeypatch.setitem(sys.modules, "uvloop", None)      # import uvloop fails, as where it is not installed
    assert loop_factory({}) is None                     # unset: the standard loop, quietly
    with pytest.raises(UsageError, match="uvloop is not installed"):
        loop_factory({EVENT_LOOP_VARIABLE: "uvloop"})
    coro = _loop_type_async()
    monkeypatch.setenv(EVENT_LOOP_VARIABLE, "uvloop")
    with pytest.raises(UsageError):
        run_loop(coro)
    assert coro.cr_frame is None                        # closed, never started: no 'never awaited' warning


def test_run_sync_works_inside_a_running_loop():
    async def answer():
        return 42

    async def notebook_cell():  # a notebook's loop is already running when the user calls pull()
        return run_sync(answer())

    assert run_sync(answer()) == 42
    assert asyncio.run(notebook_cell()) == 42


def test_an_interrupt_while_waiting_for_the_worker_cancels_the_coroutine_there():
    """A notebook cell interrupted (SIGINT -> KeyboardInterrupt in the thread running the cell) while
    run_sync waits for its worker thread: the coroutine is cancelled on the worker's loop and unwinds
    before KeyboardInterrupt comes out, so nothing keeps running in the background."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    steps = []
    started = threading.Event()

    async def long_transfer():
        started.set()
        try:
            await asyncio.sleep(60)
            steps.append("finished")
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)    # unwinding takes a moment (journal writes, closing files)
            steps.append("cancelled")
            raise

    async def notebook_cell():
        return run_sync(long_transfer())

    def interrupt():
        started.wait(10)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    loop = asyncio.new_event_loop()   # like ipykernel's: no SIGINT handler of asyncio.run's
    try:
        threading.Thread(target=interrupt, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(notebook_cell())
    finally:
        loop.close()
        signal.signal(signal.SIGINT, previous)
    assert steps == ["cancelled"]
    assert not [t for t in threading.enumerate() if t.name == "drivesync-worker" and t.is_alive()]


# -- run_fed: jobs that arrive while the first ones run (a pull that starts before its listing ends) --

def test_fed_jobs_start_while_the_producer_still_runs_largest_waiting_first():
    log: list[str] = []
    more = asyncio.Event()

    async def produce(submit):
        submit([_job("first", 1, log)])
        await asyncio.sleep(0.01)             # the next level is being listed
        assert log == ["first"], "the first job ran while the producer was still producing"
        submit([_job("s", 1, log), _job("L", 100, log), _job("m", 10, log)])
        more.set()

    outcomes = asyncio.run(Transfers(transfers=1, max_streams=1).run_fed(produce))
    assert log == ["first", "L", "m", "s"]                       # of those waiting, the largest first
    assert [o.path for o in outcomes] == ["first", "s", "L", "m"]  # the order they were submitted in
    assert more.is_set() and all(o.result == "done" for o in outcomes)


def test_a_failing_producer_stops_the_fed_run_and_cancels_the_jobs_in_flight():
    cancelled = []

    async def slow(ctx):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise
        return "done"

    async def produce(submit):
        submit([Job(path="slow", size=1, run=slow)])
        await asyncio.sleep(0)
        raise OSError("the listing failed")

    with pytest.raises(OSError, match="the listing failed"):
        asyncio.run(Transfers(transfers=2, max_streams=2).run_fed(produce))
    assert cancelled == ["slow"]


def test_a_fed_run_with_nothing_to_do_ends():
    async def produce(submit):
        submit([])

    assert asyncio.run(Transfers(transfers=4, max_streams=4).run_fed(produce)) == []


def test_credentials_failing_stop_a_fed_run_too():
    async def produce(submit):
        submit([_job("a", 1, [], fail=AuthError("sign in again")), _job("b", 1, [])])

    with pytest.raises(AuthError):
        asyncio.run(Transfers(transfers=1, max_streams=1).run_fed(produce))


# -- ending: a job whose bytes are in hands its file slot on while it ends (fsync, rename) --------------

def _ending_jobs(n, log, gate, ending_now):
    def job(path):
        async def run(ctx):
            log.append(("start", path))
            await asyncio.sleep(0)
            await ctx.ending()
            ending_now.add(path)
            log.append(("ending", path, len(ending_now)))
            await gate.wait()             # the disk: nothing ends until the test says so
            ending_now.discard(path)
            return "done"
        return Job(path=path, size=1, run=run)
    return [job(f"j{i}") for i in range(n)]


async def _until(predicate, what):
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(what)


@pytest.mark.parametrize("fed", [False, True], ids=["run", "run_fed"])
def test_an_ending_job_gives_its_file_slot_to_the_next_and_endings_are_bounded(fed):
    log, events, ending_now = [], [], set()

    async def main():
        gate = asyncio.Event()
        t = Transfers(transfers=2, max_streams=2, subscribers=[events.append])
        jobs = _ending_jobs(6, log, gate, ending_now)
        if fed:
            async def produce(submit):
                submit(jobs)
            task = asyncio.ensure_future(t.run_fed(produce))
        else:
            task = asyncio.ensure_future(t.run(jobs))
        started = lambda: [e for e in log if e[0] == "start"]      # noqa: E731
        # 2 in their transfer, then ending; 2 more take the freed slots and wait for an ending slot.
        await _until(lambda: len(started()) == 4, f"4 jobs should have started: {log}")
        await asyncio.sleep(0.01)
        assert len(started()) == 4, "a 5th job started while 2 were ending and 2 were waiting to"
        assert max(e[2] for e in log if e[0] == "ending") <= 2, "more than `transfers` jobs were ending"
        assert not [e for e in events if e.kind == "done"], "a job reported done before it ended"
        gate.set()
        return await task

    outcomes = asyncio.run(main())
    assert [o.result for o in outcomes] == ["done"] * 6
    assert len([e for e in events if e.kind == "done"]) == 6


def test_an_ending_job_failing_still_reports_and_frees_its_slot():
    async def failing(ctx):
        await ctx.ending()
        raise OSError("fsync: input/output error")

    log = []
    jobs = [Job(path="bad", size=9, run=failing)] + [_job(f"ok{i}", 1, log) for i in range(3)]
    outcomes = asyncio.run(Transfers(transfers=1, max_streams=1).run(jobs))
    assert [o.result for o in outcomes] == ["fail", "done", "done", "done"]
    assert "input/output error" in str(outcomes[0].error)
