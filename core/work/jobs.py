"""Job specs, the handler registry, and the context a running job works through.

States live in core.work.states (one enum with named groups); the names below are kept for the
modules that import them from here. Every transition is a compare-and-set UPDATE in the
database, so two supervisors can never both move the same job.

A handler sees a JobContext: its parameters and checkpoint, heartbeats and cancel, and the
services it may use — db, events, settings, forum, LLM limits — handed over explicitly by the
supervisor that claimed it. Checkpoints are written through a `CheckpointWriter` (the
supervisor implements it), never through the supervisor's internals.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from loguru import logger

from core.i18n import Msg
from core.work.states import JobState, RunState

if TYPE_CHECKING:  # pragma: no cover - types only
    from core.infra.config import Settings
    from core.infra.db import Database
    from core.infra.events import EventLog
    from core.llm.limits import ProviderLimiter

PENDING, RUNNING, CANCELLING = JobState.PENDING, JobState.RUNNING, JobState.CANCELLING
COMPLETED, FAILED, CANCELLED = JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED
INTERRUPTED = JobState.INTERRUPTED
ACTIVE_STATES = JobState.ACTIVE
TERMINAL_STATES = JobState.FINAL
JOB_STATES = tuple(JobState)

QUEUED = RunState.QUEUED
INSUFFICIENT_DATA = RunState.INSUFFICIENT_DATA
RUN_STATES = tuple(RunState)
RUN_OPEN_STATES = RunState.OPEN
RUN_FINAL_STATES = RunState.FINAL


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
    # False: the job runs once every dependency completed, and is cancelled when one fails or is
    # cancelled. True: it runs once every dependency has ended, whatever the outcome (the report,
    # which says what is missing); an interrupted dependency that will be resumed has not ended.
    after_any_outcome: bool = False


Handler = Callable[["JobContext"], Any]


@dataclass(frozen=True)
class HandlerInfo:
    kind: str
    fn: Handler
    timeout: float | None = None  # seconds a job of this kind may run before it is cancelled as failed


class HandlerRegistry(dict):
    """kind → HandlerInfo. Built by the composition root (core.runtime.build_handlers) and handed
    to each Supervisor; nothing registers itself on import."""

    def register(self, kind: str, fn: Handler, timeout: float | None = None) -> Handler:
        self[kind] = HandlerInfo(kind, fn, timeout)
        return fn

    def copy(self) -> "HandlerRegistry":
        return HandlerRegistry(self)


class CheckpointWriter(Protocol):
    """Writes a job's checkpoint durably; raises LeaseLost when this worker no longer owns the job."""

    def write_checkpoint(self, ctx: "JobContext") -> None: ...


class RunControl(Protocol):
    """What a handler may do to its run besides its own job (the coverage job ends a run that the
    data cannot support, or adds the report job). The supervisor implements it."""

    events: "EventLog"

    def add_jobs(self, run_id: str, jobs: Any) -> list[str]: ...

    def end_run(self, run_id: str, status: str, error: str, payload: dict | None = None) -> bool: ...


@dataclass(frozen=True)
class JobServices:
    """What handlers may use, given explicitly (no digging in the supervisor)."""
    db: "Database"
    events: "EventLog"
    settings: "Settings"
    forum: Any = None                        # the forum handlers post to and read (core.forum), or None
    limits: "ProviderLimiter | None" = None  # the per-provider LLM concurrency limits


class JobContext:
    """What a handler sees: its parameters and checkpoint, heartbeats, cancel, events, services."""

    def __init__(self, services: JobServices, checkpoints: CheckpointWriter, runs: RunControl | None, job_id: str,
                 run_id: str, kind: str, name: str, params: dict, checkpoint: dict, attempt: int, trace_id: str,
                 topic: str = "", run_params: dict | None = None, worker_id: str = ""):
        self.services = services
        self.checkpoints = checkpoints
        self.runs = runs
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
        self.worker_id = worker_id
        self.cancel_event = threading.Event()
        self.cancel_reason = ""  # "user" | "shutdown" | "timeout" | "lease_lost"
        self.last_heartbeat = time.time()
        self.progress: float | None = None
        # the stored message (encode_message); "" clears, at the first lease renewal, what a resumed job
        # said while it waited ("waiting to resume from its checkpoint") until it says something itself
        self.message: str | None = ""
        self.pending_items: dict = {}  # appended by the checkpoint being written (save_checkpoint)
        self._lock = threading.Lock()
        self.log = logger.bind(sink=kind if kind in ("query", "media", "insight", "report") else "app",
                               trace_id=trace_id, run_id=run_id, job_id=job_id)

    # -- services -----------------------------------------------------------------------
    @property
    def db(self) -> "Database":
        return self.services.db

    @property
    def events(self) -> "EventLog":
        return self.services.events

    @property
    def settings(self) -> "Settings":
        return self.services.settings

    @property
    def forum(self) -> Any:
        return self.services.forum

    @property
    def limits(self) -> "ProviderLimiter | None":
        return self.services.limits

    @property
    def resumed(self) -> bool:
        return bool(self.checkpoint)

    # -- liveness -----------------------------------------------------------------------
    def heartbeat(self, progress: float | None = None, message: "Msg | str | None" = None) -> None:
        """Cheap: recorded in memory and written by the supervisor's heartbeat thread. `message`: what
        the job is doing, as a Msg (shown in the reader's language; stored with encode_message)."""
        with self._lock:
            self.last_heartbeat = time.time()
            if progress is not None:
                self.progress = max(0.0, min(1.0, float(progress)))
            if message is not None:
                self.message = encode_message(message)

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
    def save_checkpoint(self, data: dict | None = None, *, append: dict | None = None, **updates: Any) -> None:
        """Write the checkpoint now (per paragraph/node). Raises LeaseLost if the job was taken over.

        `append` ({list name: [(n, item), …]}) adds items to the job's append-only lists in the same
        transaction (core.work.checkpoints): what is written once, not with every checkpoint."""
        if data is not None:
            self.checkpoint = dict(data)
        self.checkpoint.update(updates)
        self.heartbeat()
        self.pending_items = append or {}
        try:
            self.checkpoints.write_checkpoint(self)
        finally:
            self.pending_items = {}

    def emit(self, type: str, payload: dict | None = None, source: str | None = None) -> int | None:
        return self.events.emit(type, run_id=self.run_id, job_id=self.job_id, source=source or self.kind,
                                payload=payload, trace_id=self.trace_id)


# -- job messages ---------------------------------------------------------------------------------
# Job.message holds what a job is doing (its heartbeats) and, once it ended, how it ended. Text a page
# shows later is a core.i18n.Msg, stored in the same column as its JSON (`{"key": …, "args": …}`):
# runs.py reads it back as a Msg, and a plain string (older rows) stays a string.

_ARG_CHARS = 300


def encode_message(message: "Msg | str | None") -> str:
    """The stored form of a job message: a Msg as JSON, a plain string cut to 500 characters."""
    if message is None:
        return ""
    if isinstance(message, Msg):
        args = {k: (v[:_ARG_CHARS] if isinstance(v, str) else v) for k, v in message.args.items()}
        return json.dumps(Msg(message.key, args).to_json(), ensure_ascii=False, default=str)
    return str(message)[:500]


def decode_message(stored: str | None) -> "Msg | str":
    """A stored job message back as a Msg (or the plain string it was)."""
    if not stored:
        return ""
    if stored.startswith('{"key"'):
        try:
            msg = Msg.from_json(json.loads(stored))
        except (ValueError, TypeError):
            msg = None
        if msg is not None:
            return msg
    return stored


def paragraphs_done(checkpoint: Any) -> tuple[int, int] | None:
    """(paragraphs written, paragraphs planned) of a job whose checkpoint has a plan, as the research
    engines' has (core/research/results.py: "structure" and "paragraphs" with each one's "summary");
    None for any other job."""
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("structure"), list):
        return None
    structure = [p for p in checkpoint["structure"] if isinstance(p, Mapping)]
    if not structure:
        return None
    states = checkpoint.get("paragraphs") if isinstance(checkpoint.get("paragraphs"), Mapping) else {}
    done = 0
    for i, p in enumerate(structure):
        state = states.get(str(p.get("index", i)))
        done += bool(isinstance(state, Mapping) and state.get("summary"))
    return done, len(structure)


# why a job was cancelled (the reason a transition gives) → its message
_CANCEL_REASONS = {"an upstream job did not complete": "job.msg_skipped_upstream",
                   "lease expired": "job.msg_cancelled_lease"}


def ended_message(status: str, *, error: str | None = None, reason: str | None = None,
                  checkpoint: Any = None, attempts: int | None = None) -> Msg:
    """How a job ended, for its message: set where it reaches that state (core.work.ledger), so a job
    that ended never keeps saying what it was doing ("waiting for the host's last speech")."""
    reason = str(reason or "")
    if status == JobState.COMPLETED:
        return Msg("job.msg_completed")
    if status == JobState.FAILED:
        if reason.startswith("gave up after"):  # auto-resume's "gave up after N attempts"
            n = attempts or next((int(w) for w in reason.split() if w.isdigit()), 0)
            return Msg("job.msg_gave_up", {"attempts": n})
        if not error:
            return Msg("job.msg_failed_plain")
        return Msg("job.msg_failed", {"error": error.strip()[:_ARG_CHARS]})
    if status == JobState.INTERRUPTED:
        return Msg("job.msg_interrupted")
    if status == JobState.PENDING:
        return Msg("job.msg_resumed")
    if status != JobState.CANCELLED:
        return Msg("job.msg_status", {"status": Msg(f"status.{status}")})
    if reason in _CANCEL_REASONS:
        return Msg(_CANCEL_REASONS[reason])
    if reason.startswith("cancel timeout"):
        return Msg("job.msg_cancel_timeout")
    if reason in RunState.FINAL:
        return Msg("job.msg_skipped_run_ended", {"status": Msg(f"status.{reason}")})
    if error and "being cancelled" in error:
        return Msg("job.msg_skipped_cancelling")
    counts = paragraphs_done(checkpoint)
    if counts is not None:
        done, total = counts
        if done >= total:
            return Msg("job.msg_cancelled_all", {"total": total})
        return Msg("job.msg_cancelled_some", {"done": done, "total": total})
    return Msg("job.msg_cancelled")
