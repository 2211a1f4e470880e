"""A job running in one of this process's threads, and the threads of jobs given up on.

A job that ignores its cancel (shutdown, a cancel timeout) is abandoned: its row is ended for it and
whatever its thread returns is ignored. The thread itself cannot be stopped, and the interpreter
waits at exit for every worker thread (concurrent.futures joins them, then threading joins every
non-daemon thread), so one such job would keep a stopped app or a finished command alive for as
long as it runs, perhaps for ever. `exit_if_stuck` ends such a process once its runtime has closed:
the work is already handed back or ended in the database.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from concurrent.futures import Future
from dataclasses import dataclass

from loguru import logger

from core.work.jobs import HandlerInfo, JobContext

__all__ = ["ActiveJob", "exit_if_stuck", "stuck_threads"]

_abandoned: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()
_abandoned_lock = threading.Lock()


@dataclass
class ActiveJob:
    ctx: JobContext
    handler: HandlerInfo
    started: float
    future: Future | None = None
    thread: threading.Thread | None = None  # set when the job starts running
    abandoned: bool = False  # force-cancelled or lease lost: whatever the thread returns is ignored

    returned: bool = False  # the job's function has returned: its thread is a free worker again

    def abandon(self) -> None:
        self.abandoned = True
        with _abandoned_lock:  # a job that has just returned (shutdown saw it a moment before) is not stuck
            if self.thread is not None and self.thread is not threading.current_thread() and not self.returned:
                _abandoned.add(self.thread)

    def ended(self) -> None:
        """The job's thread returned (late, if it was abandoned): it is a free worker again."""
        with _abandoned_lock:
            self.returned = True
            if self.thread is not None:
                _abandoned.discard(self.thread)


def stuck_threads() -> list[threading.Thread]:
    """The threads of abandoned jobs that are still running."""
    with _abandoned_lock:
        return [t for t in _abandoned if t.is_alive()]


def exit_if_stuck(code: int, grace: float = 2.0) -> None:
    """End the process with `code` (os._exit) when threads of abandoned jobs still run after `grace`
    seconds; return otherwise. Call it once the runtime is closed: nothing is left to write."""
    deadline = time.monotonic() + grace
    for thread in stuck_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = stuck_threads()
    if not stuck:
        return
    message = (f"{len(stuck)} job thread(s) ignored their cancel and still run "
               f"({', '.join(t.name for t in stuck)}); exiting without waiting for them")
    logger.error(message)
    logger.complete()
    try:  # also where whoever started the process looks (the log may go to a file only)
        print(f"shoal: {message}", file=sys.stderr)
    except Exception:  # noqa: BLE001 - a closed stream
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream: nothing to flush
            pass
    os._exit(code)
