"""The one owner of concurrency: how many files and byte streams are in flight, and progress events.

Pull and push describe work as jobs (a coroutine per file); ``Transfers.run`` runs them with at most
``transfers`` at once, gives each job's byte streams a slot out of ``max_streams`` shared by all, and
turns outcomes into events that progress.py (or a caller's own subscriber) consumes. A job whose bytes
are all in may hand its file slot on while it ends (``JobContext.ending``: fsync, rename, journal), so
a disk slow to sync never idles the network; at most ``transfers`` jobs are ending at once. A job failing
never stops the others; cancellation (Ctrl-C) stops all of them and leaves resumable state behind.
It never does HTTP or file I/O itself.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

from .errors import AuthError, StopsTheRun, UsageError


@dataclass
class Event:
    """Something that happened to one file. ``bytes`` may be negative when a retry throws bytes away."""

    kind: str                # 'queued' | 'start' | 'bytes' | 'done' | 'skip' | 'fail' | 'retry'
    path: str = ""
    nbytes: int = 0
    total: int | None = None
    message: str = ""


Subscriber = Callable[[Event], None]


@dataclass
class Job:
    """One file's work. ``run(ctx)`` returns a short outcome word ('done', 'skip', ...) or raises."""

    path: str
    size: int
    run: Callable[["JobContext"], Awaitable[str]]


@dataclass
class Outcome:
    path: str
    result: str                      # 'done', 'skip', 'exported', ..., or 'fail'
    error: BaseException | None = None


class _Slots:
    """The slots one running job holds: its file slot, then (after ``ending``) an ending slot instead."""

    def __init__(self, transfers: "Transfers"):
        self._t = transfers
        self.file = True
        self.ending = False

    async def to_ending(self) -> None:
        if not self.file:
            return
        await self._t._endings.acquire()     # bounded: while it waits, the job keeps its file slot
        self.ending = True
        self.file = False
        self._t._files.release()

    def release(self) -> None:
        if self.file:
            self.file = False
            self._t._files.release()
        if self.ending:
            self.ending = False
            self._t._endings.release()


class JobContext:
    """What a running job may use: stream slots, progress reporting, and handing its file slot on."""

    def __init__(self, transfers: "Transfers", path: str, slots: _Slots | None = None):
        self._t = transfers
        self.path = path
        self._slots = slots

    def stream_slot(self):
        return self._t.stream_slot()

    async def ending(self) -> None:
        """This job's transfer is over (every byte is in, verified and written) and only its ending is
        left (fsync, rename, journal): its file slot goes to the next job now. Waits while ``transfers``
        jobs are already ending. The job still reports done (or failed) only when it returns."""
        if self._slots is not None:
            await self._slots.to_ending()

    def progress(self, nbytes: int) -> None:
        self._t.emit(Event("bytes", self.path, nbytes))

    def emit(self, kind: str, message: str = "", **kw) -> None:
        self._t.emit(Event(kind, self.path, message=message, **kw))


class Transfers:
    def __init__(self, *, transfers: int, max_streams: int, subscribers: Iterable[Subscriber] = ()):
        self.transfers = transfers
        self._files = asyncio.Semaphore(transfers)
        self._endings = asyncio.Semaphore(transfers)
        self._streams = asyncio.Semaphore(max_streams)
        self.subscribers: list[Subscriber] = list(subscribers)

    def emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            subscriber(event)

    def stream_slot(self) -> asyncio.Semaphore:
        """``async with`` it around one byte stream (the semaphore itself: no generator per request)."""
        return self._streams

    async def _one(self, job: Job, *, holding: bool = False) -> Outcome:
        """Run one job in a file slot (taken here, or already taken by the caller: ``holding``)."""
        if not holding:
            await self._files.acquire()
        slots = _Slots(self)
        try:
            self.emit(Event("start", job.path, total=job.size))
            try:
                result = await job.run(JobContext(self, job.path, slots))
            except (asyncio.CancelledError, AuthError, StopsTheRun):
                raise  # credentials or a Drive that fail for one file fail for all: stop the run with one message
            except Exception as exc:  # one file's failure is reported, the rest go on
                self.emit(Event("fail", job.path, total=job.size, message=str(exc)))
                return Outcome(job.path, "fail", exc)
            self.emit(Event("done" if result != "skip" else "skip", job.path, total=job.size, message=result))
            return Outcome(job.path, result)
        finally:
            slots.release()

    async def run(self, jobs: Iterable[Job]) -> list[Outcome]:
        """Run every job; outcomes come back in the order the jobs were given.

        Largest files start first: a big file's ranges then overlap with the many small files instead
        of trailing alone at the end (longest-processing-time-first scheduling)."""
        jobs = list(jobs)
        order = sorted(range(len(jobs)), key=lambda i: -jobs[i].size)
        for job in jobs:
            self.emit(Event("queued", job.path, total=job.size))
        started = {i: asyncio.ensure_future(self._one(jobs[i])) for i in order}  # semaphores are FIFO
        return await gather_or_cancel([started[i] for i in range(len(jobs))])


    async def run_fed(self, produce: Callable[[Callable[[Iterable[Job]], None]], Awaitable[None]]) -> list[Outcome]:
        """Like ``run``, for jobs that become known while the first ones already run: ``produce(submit)``
        calls ``submit(jobs)`` as it learns of them and returns when there are no more. Of the jobs waiting,
        the largest starts first (what is known so far is enough for that). Outcomes come back in the
        order the jobs were submitted. The producer failing stops the run, as a job raising
        AuthError/StopsTheRun does."""
        waiting: list[tuple[int, int, Job]] = []
        outcomes: dict[int, Outcome] = {}
        arrived = asyncio.Event()
        seq = 0
        producing = True

        def submit(jobs: Iterable[Job]) -> None:
            nonlocal seq
            for job in jobs:
                heapq.heappush(waiting, (-job.size, seq, job))
                seq += 1
                self.emit(Event("queued", job.path, total=job.size))
            arrived.set()

        async def worker() -> None:
            # A file slot first, then the largest job waiting at that moment. Workers outnumber file
            # slots by the ending slots: a job handing its slot on (JobContext.ending) keeps its worker.
            while True:
                await self._files.acquire()
                try:
                    while not waiting:
                        if not producing:
                            self._files.release()
                            return
                        arrived.clear()
                        await arrived.wait()
                except BaseException:
                    self._files.release()
                    raise
                _, i, job = heapq.heappop(waiting)
                outcomes[i] = await self._one(job, holding=True)

        async def producer() -> None:
            nonlocal producing
            try:
                await produce(submit)
            finally:
                producing = False
                arrived.set()

        await gather_or_cancel([asyncio.ensure_future(producer())]
                               + [asyncio.ensure_future(worker()) for _ in range(2 * max(1, self.transfers))])
        return [outcomes[i] for i in sorted(outcomes)]


async def gather_or_cancel(tasks: list[asyncio.Future]) -> list:
    """Wait for all ``tasks`` (their results, in order); when one fails (or this is cancelled), cancel the
    others and let them end before the error goes on, so no stream or job outlives the work that started it."""
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


#: How long an interrupted run_sync waits for the worker's transfers to unwind (journal written, files closed).
CANCEL_WAIT_S = 10.0

#: Which event loop runs drivesync's coroutines: 'uvloop' (where it is installed: Linux and macOS) or
#: 'asyncio' (the standard loop); unset or empty: uvloop if it can be imported, else asyncio.
EVENT_LOOP_VARIABLE = "DRIVESYNC_EVENT_LOOP"


def loop_factory(environ=None):
    """uvloop.new_event_loop, or None for the standard loop (see EVENT_LOOP_VARIABLE). uvloop runs the same
    aiohttp client with about a tenth less CPU where the loop is the bottleneck (TLS bodies, unpaced small
    files; benchmarks/results, issue 13); nothing else changes. A value it cannot honour is a UsageError."""
    env = os.environ if environ is None else environ
    wanted = (env.get(EVENT_LOOP_VARIABLE) or "").strip().lower()
    if wanted not in ("", "uvloop", "asyncio"):
        raise UsageError(f"{EVENT_LOOP_VARIABLE}={env.get(EVENT_LOOP_VARIABLE)} is not an event loop "
                         "drivesync knows: use uvloop or asyncio")
    if wanted == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if wanted == "uvloop":
            raise UsageError(f"{EVENT_LOOP_VARIABLE}=uvloop, but uvloop is not installed here "
                             "(pip install uvloop, or unset it for the standard loop)") from None
        return None
    return uvloop.new_event_loop


def run_loop(coro):
    """``asyncio.run(coro)`` on the loop loop_factory() picks (Ctrl-C handling as asyncio.run's)."""
    try:
        factory = loop_factory()
    except BaseException:
        coro.close()            # never started: no 'never awaited' warning
        raise
    if factory is None:
        return asyncio.run(coro)
    import uvloop

    return uvloop.run(coro, loop_factory=factory)


def run_sync(coro, *, cancel_wait: float | None = None):
    """Run a coroutine to completion from synchronous code, even inside a notebook's running loop.

    With no loop running here this is ``run_loop`` (asyncio.run; Ctrl-C cancels the coroutine, then
    KeyboardInterrupt). With one running (a Jupyter cell), the coroutine runs on a worker thread with
    its own loop; a KeyboardInterrupt while this thread waits (interrupting the cell) cancels the
    coroutine on the worker's loop, waits up to ``cancel_wait`` seconds for it to unwind (partial
    downloads stay resumable in the journal), then re-raises KeyboardInterrupt: nothing keeps running
    in the background, and a re-run resumes instead of racing a second transfer on the same journal.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_loop(coro)
    box: dict = {}
    ready, finished = threading.Event(), threading.Event()

    async def main():
        box["loop"] = asyncio.get_running_loop()
        box["task"] = asyncio.current_task()
        ready.set()
        return await coro

    def runner():
        try:
            box["value"] = run_loop(main())
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            ready.set()
            coro.close()  # never started (cancelled first): no 'never awaited' warning
            finished.set()

    thread = threading.Thread(target=runner, name="drivesync-worker", daemon=True)
    # Wait on an Event, not thread.join(): a join interrupted by KeyboardInterrupt marks the thread as
    # stopped while it still runs (CPython's bpo-45274 handling), and later joins return at once.
    # start() is inside the try too: an interrupt can land while it returns, with the work already running.
    try:
        thread.start()
        finished.wait()
    except KeyboardInterrupt:
        if _cancel_worker(box, ready, finished, CANCEL_WAIT_S if cancel_wait is None else cancel_wait):
            thread.join(1.0)
        raise
    thread.join()  # the runner has returned: only the thread's own exit is left
    if "error" in box:
        raise box["error"]
    return box["value"]


def _cancel_worker(box: dict, ready: threading.Event, finished: threading.Event, wait: float) -> bool:
    """Cancel the worker's task from the waiting thread and wait (bounded) for the worker to end; True if it did."""
    deadline = time.monotonic() + wait
    try:
        ready.wait(wait)
        loop, task = box.get("loop"), box.get("task")
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:
                pass  # the loop already closed: the work has ended
        if finished.wait(max(0.0, deadline - time.monotonic())):
            return True
        logging.getLogger("drivesync").warning("the interrupted transfer is still unwinding after %.0f s", wait)
    except KeyboardInterrupt:
        pass  # interrupted again while unwinding: stop waiting
    return False
