"""Job states, the handler registry, and the context a running job works through.

States (after Dagster/Prefect):
  pending → running → completed | failed | cancelled
  running → cancelling → cancelled            (cancel requested; forced after a timeout)
  running | cancelling → interrupted          (the owning process died, or shut down)
  interrupted → pending                       (resumed from its checkpoint)
Every transition is a compare-and-set UPDATE in the database, so two supervisors can never
both move the same job.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from loguru import logger

if TYPE_CHECKING:  # pragma: no cover
    from core.supervisor import Supervisor

PENDING, RUNNING, CANCELLING = "pending", "running", "cancelling"
COMPLETED, FAILED, CANCELLED, INTERRUPTED = "completed", "failed", "cancelled", "interrupted"
ACTIVE_STATES = (RUNNING, CANCELLING)
TERMINAL_STATES = (COMPLETED, FAILED, CANCELLED)
JOB_STATES = (PENDING, RUNNING, CANCELLING, COMPLETED, FAILED, CANCELLED, INTERRUPTED)

# Runs: queued (waiting for a slot) → running → completed | failed | cancelled | interrupted, and
# insufficient_data: an analysis whose topic the data does not cover ends there, without a report.
QUEUED = "queued"
INSUFFICIENT_DATA = "insufficient_data"
RUN_STATES = (QUEUED, RUNNING, CANCELLING, COMPLETED, FAILED, CANCELLED, INTERRUPTED, INSUFFICIENT_DATA)
RUN_OPEN_STATES = (QUEUED, RUNNING, CANCELLING)
RUN_FINAL_STATES = (COMPLETED, FAILED, CANCELLED, INSUFFICIENT_DATA)


class JobCancelled(Exception):
    """Raised inside a handler by ctx.check_cancelled() once a cancel (or shutdown) is requested."""


class LeaseLost(Exception):
    """This process no longer owns the job (another supervisor took it over): stop, write nothing."""


@dataclass(frozen=True)
class JobSpec:
    kind: str
    name: str = ""
    params: dict = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()  # names of other jobs in the same run
    max_attempts: int | None = None


Handler = Callable[["JobContext"], Any]


@dataclass(frozen=True)
class HandlerInfo:
    kind: str
    fn: Handler
    timeout: float | None = None  # seconds a job of this kind may run before it is cancelled as failed


HANDLERS: dict[str, HandlerInfo] = {}


def register_handler(kind: str, fn: Handler, timeout: float | None = None) -> Handler:
    HANDLERS[kind] = HandlerInfo(kind, fn, timeout)
    return fn


def job_handler(kind: str, timeout: float | None = None):
    def deco(fn: Handler) -> Handler:
        return register_handler(kind, fn, timeout)
    return deco


class JobContext:
    """What a handler sees: its parameters and checkpoint, heartbeats, cancel, events."""

    def __init__(self, supervisor: "Supervisor", job_id: str, run_id: str, kind: str, name: str, params: dict,
                 checkpoint: dict, attempt: int, trace_id: str, topic: str = "", run_params: dict | None = None):
        self.supervisor = supervisor
        self.job_id = job_id
        self.run_id = run_id
        self.kind = kind
        self.name = name
        self.params = params or {}
        self.checkpoint: dict = dict(checkpoint or {})
        self.attempt = attempt
        self.trace_id = trace_id
        self.topic = topic
        self.run_params = run_params or {}
        self.cancel_event = threading.Event()
        self.cancel_reason = ""  # "user" | "shutdown" | "timeout" | "lease_lost"
        self.last_heartbeat = time.time()
        self.progress: float | None = None
        self.message: str | None = None
        self._lock = threading.Lock()
        self.log = logger.bind(sink=kind if kind in ("query", "media", "insight", "report") else "app",
                               trace_id=trace_id, run_id=run_id, job_id=job_id)

    @property
    def worker_id(self) -> str:
        return self.supervisor.worker_id

    @property
    def resumed(self) -> bool:
        return bool(self.checkpoint)

    # -- liveness -----------------------------------------------------------------------
    def heartbeat(self, progress: float | None = None, message: str | None = None) -> None:
        """Cheap: recorded in memory and written by the supervisor's heartbeat thread."""
        with self._lock:
            self.last_heartbeat = time.time()
            if progress is not None:
                self.progress = max(0.0, min(1.0, float(progress)))
            if message is not None:
                self.message = message[:500]

    # -- cancel -------------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            if self.cancel_reason == "lease_lost":
                raise LeaseLost(self.job_id)
            raise JobCancelled(self.cancel_reason or "cancelled")

    def sleep(self, seconds: float) -> None:
        """A sleep that ends early, by raising, when the job is cancelled."""
        if self.cancel_event.wait(max(0.0, seconds)):
            self.check_cancelled()

    def request_cancel(self, reason: str) -> None:
        if not self.cancel_event.is_set():
            self.cancel_reason = reason
            self.cancel_event.set()

    # -- durable progress ---------------------------------------------------------------
    def save_checkpoint(self, data: dict | None = None, **updates: Any) -> None:
        """Write the checkpoint now (per paragraph/node). Raises LeaseLost if the job was taken over."""
        if data is not None:
            self.checkpoint = dict(data)
        self.checkpoint.update(updates)
        self.heartbeat()
        self.supervisor._save_checkpoint(self)

    def emit(self, type: str, payload: dict | None = None, source: str | None = None) -> int:
        return self.supervisor.events.emit(type, run_id=self.run_id, job_id=self.job_id,
                                           source=source or self.kind, payload=payload, trace_id=self.trace_id)
