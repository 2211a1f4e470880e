"""An engine run's bookkeeping, written behind its paragraphs: checkpoints and node log records.

A paragraph's next LLM call does not need its last checkpoint on disk nor its node record in the
log file; with five paragraphs in parallel, each checkpoint write queued on SQLite's one writer
(beside the llm_calls rows, events and forum posts) and each log line waited for the file sink, on
every paragraph's chain of calls. Here they go to one thread per engine run, in the order given:

- `save(data, items)`: the latest checkpoint wins (each is the whole state); the append-only items
  (the sources first found since the last save) are never dropped: a write takes the items of every
  save it replaces, in order, so what the stored checkpoint counts is always stored beside it.
- `log(fn, ...)`: a record, written in the caller's context (its trace id), after what came before.
- the writer starts a batch DELAY seconds after it is given work: the paragraphs that just ended a call
  put their next requests on the wire first (five paragraphs end their calls together, and a checkpoint
  write beside them took the interpreter and SQLite's one writer from the llm_calls rows and requests
  on their chains); the batch then runs while they wait for the LLM.
- `flush()`: waits until everything given is written, without the delay; the engine flushes before its job ends (the
  supervisor stores the job's checkpoint from its context), so nothing is lost on success, failure
  or cancel. A failed write (LeaseLost: the job was taken over; a database that stays down) is
  raised to the engine at its next `save` or `flush`, and nothing is written after it.
"""
from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from loguru import logger

__all__ = ["WriteBehind", "Posts"]

IDLE_EXIT = 1.0  # seconds a writer with nothing to write waits before it ends
DELAY = 0.05  # seconds between the first work given to an idle writer and its batch


class WriteBehind:
    def __init__(self, write: Callable[[dict, list], None], name: str = "engine"):
        """`write(data, items)` stores one checkpoint and the items first referred to by it."""
        self._write = write
        self._name = name
        self._cond = threading.Condition()
        self._tasks: deque[Callable[[], None]] = deque()
        self._checkpoint: tuple[dict, list] | None = None  # the latest save not written yet
        self._busy = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._hurry = 0  # flushes waiting: the writer starts its batch at once

    # -- the engine's side ----------------------------------------------------------------------
    def save(self, data: dict, items: list) -> None:
        """Queue a checkpoint (and its new items); raises the error of an earlier write. The caller
        orders its saves (the engine builds and queues each under one lock)."""
        with self._cond:
            self._raise()
            if self._checkpoint is None:
                self._checkpoint = (data, list(items))
                self._tasks.append(self._write_checkpoint)
            else:
                self._checkpoint = (data, self._checkpoint[1] + list(items))  # one write for both
            self._start()

    def log(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run `fn(*args, **kwargs)` behind, in the caller's context; a failure is logged, never raised."""
        ctx = contextvars.copy_context()

        def task() -> None:
            try:
                ctx.run(fn, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a log record is best effort
                logger.warning("{}: a record written behind failed: {}: {}", self._name, type(exc).__name__, exc)

        with self._cond:
            self._tasks.append(task)
            self._start()

    def flush(self) -> None:
        """Wait until every save and record given so far is written; raise a write's error."""
        with self._cond:
            self._hurry += 1
            self._cond.notify_all()
            try:
                while self._tasks or self._busy:
                    self._cond.wait()
            finally:
                self._hurry -= 1
            self._raise()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._tasks) + int(self._busy)

    # -- the writer -------------------------------------------------------------------------------
    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"{self._name}-behind", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    def _run(self) -> None:
        """Write what is queued, in order, in batches begun DELAY seconds after the first work (at once
        when flushed); end after IDLE_EXIT seconds with nothing to do (the next save or record starts a
        writer again), so a finished engine leaves no thread behind."""
        while True:
            with self._cond:
                if not self._tasks:
                    self._cond.wait(IDLE_EXIT)
                if not self._tasks:
                    self._thread = None
                    return
                until = time.monotonic() + DELAY
                while not self._hurry and (left := until - time.monotonic()) > 0:
                    self._cond.wait(left)
            self._batch()

    def _batch(self) -> None:
        """Run the queued tasks, and those given meanwhile, until none is left."""
        while True:
            with self._cond:
                if not self._tasks:
                    return
                task = self._tasks.popleft()
                self._busy = True
            try:
                task()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write_checkpoint(self) -> None:
        with self._cond:
            pending, self._checkpoint = self._checkpoint, None
            failed = self._error is not None
        if pending is None or failed:
            return  # nothing is written after a failed write: the job is ending with its error
        try:
            self._write(*pending)
        except BaseException as exc:  # noqa: BLE001 - handed to the engine at its next save or flush
            with self._cond:
                self._error = self._error or exc


class Posts:
    """An engine run's forum posts: on one thread, in order, each begun DELAY seconds after it was given
    (as a WriteBehind batch, and for the same reason: a post, its de-duplication and its rows are not
    what the paragraphs' next requests need). `drain()` ends the delays, waits for every post and
    raises the first failure; the engine drains before the job ends, so the report and the host rounds
    see every post."""

    def __init__(self, name: str = "engine"):
        self._name = name
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._posts: list[Future] = []
        self._hurry = threading.Event()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        due = time.monotonic() + DELAY

        def post() -> Any:
            left = due - time.monotonic()
            if left > 0:
                self._hurry.wait(left)
            return fn(*args, **kwargs)

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self._name}-forum")
            self._posts.append(self._pool.submit(post))

    def drain(self) -> None:
        with self._lock:
            pool, posts, self._pool, self._posts = self._pool, self._posts, None, []
        if pool is None:
            return
        self._hurry.set()
        try:
            pool.shutdown(wait=True)
        finally:
            self._hurry.clear()
        errors = [exc for f in posts if (exc := f.exception()) is not None]
        if errors:
            raise errors[0]
