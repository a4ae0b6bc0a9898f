"""The one owner of concurrency: how many files and byte streams are in flight, and progress events.

Pull and push describe work as jobs (a coroutine per file); ``Transfers.run`` runs them with at most
``transfers`` at once, gives each job's byte streams a slot out of ``max_streams`` shared by all, and
turns outcomes into events that progress.py (or a caller's own subscriber) consumes. A job failing
never stops the others; cancellation (Ctrl-C) stops all of them and leaves resumable state behind.
It never does HTTP or file I/O itself.
"""
from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

from .errors import AuthError, StopsTheRun


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


class JobContext:
    """What a running job may use: stream slots and progress reporting."""

    def __init__(self, transfers: "Transfers", path: str):
        self._t = transfers
        self.path = path

    def stream_slot(self):
        return self._t.stream_slot()

    def progress(self, nbytes: int) -> None:
        self._t.emit(Event("bytes", self.path, nbytes))

    def emit(self, kind: str, message: str = "", **kw) -> None:
        self._t.emit(Event(kind, self.path, message=message, **kw))


class Transfers:
    def __init__(self, *, transfers: int, max_streams: int, subscribers: Iterable[Subscriber] = ()):
        self._files = asyncio.Semaphore(transfers)
        self._streams = asyncio.Semaphore(max_streams)
        self.subscribers: list[Subscriber] = list(subscribers)

    def emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            subscriber(event)

    @contextlib.asynccontextmanager
    async def stream_slot(self):
        async with self._streams:
            yield

    async def _one(self, job: Job) -> Outcome:
        async with self._files:
            self.emit(Event("start", job.path, total=job.size))
            try:
                result = await job.run(JobContext(self, job.path))
            except (asyncio.CancelledError, AuthError, StopsTheRun):
                raise  # credentials or a Drive that fail for one file fail for all: stop the run with one message
            except Exception as exc:  # one file's failure is reported, the rest go on
                self.emit(Event("fail", job.path, total=job.size, message=str(exc)))
                return Outcome(job.path, "fail", exc)
            self.emit(Event("done" if result != "skip" else "skip", job.path, total=job.size, message=result))
            return Outcome(job.path, result)

    async def run(self, jobs: Iterable[Job]) -> list[Outcome]:
        """Run every job; outcomes come back in the order the jobs were given.

        Largest files start first: a big file's ranges then overlap with the many small files instead
        of trailing alone at the end (longest-processing-time-first scheduling)."""
        jobs = list(jobs)
        order = sorted(range(len(jobs)), key=lambda i: -jobs[i].size)
        for job in jobs:
            self.emit(Event("queued", job.path, total=job.size))
        started = {i: asyncio.ensure_future(self._one(jobs[i])) for i in order}  # semaphores are FIFO
        tasks = [started[i] for i in range(len(jobs))]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


def run_sync(coro):
    """Run a coroutine to completion from synchronous code, even inside a notebook's running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}

    def runner():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name="drivesync-worker", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
