"""A report's inputs: this run's engines (their results, or their checkpoints for a partial report)
and this run's forum transcript; never files, never another run."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from sqlalchemy import select

from core.forum import ForumMessage, transcript
from core.i18n import Msg, text_language
from core.infra.models import Job, Run
from core.infra.redact import redact
from core.reporting.errors import ReportError
from core.reporting.text import ENGINE_LABELS
from core.research.names import ENGINE_NAMES as ENGINES
from core.research.names import ENGINE_ORDER
from core.research.results import (EngineResult, ResultParagraph, ResultSource, checkpoint_paragraphs,
                                   stored_sources)
from core.work.jobs import CANCELLED, CANCELLING, COMPLETED, FAILED, INTERRUPTED, PENDING, RUNNING
from core.work.states import JobState

KIND = "report"
OPEN_JOB_STATES = JobState.OPEN


@dataclass
class EngineInput:
    engine: str
    job_id: str | None
    status: str  # a job status, or "absent" when the run has no job of this engine
    trace_id: str = ""
    mode: str = ""
    error: str | None = None
    paragraphs: list[ResultParagraph] = field(default_factory=list)
    sources: list[ResultSource | None] = field(default_factory=list)  # number n = position + 1; None: unreadable
    report_md: str = ""
    from_checkpoint: bool = False  # paragraphs taken from an unfinished job's checkpoint (partial reports)
    total_paragraphs: int = 0      # planned paragraphs, when known

    @property
    def label(self) -> str:
        return ENGINE_LABELS.get(self.engine, self.engine.title())

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def produced(self) -> bool:
        return any(p.written for p in self.paragraphs) or bool(self.sources)


FORUM_LIMIT = 5000  # forum messages a report reads


@dataclass
class ReportInputs:
    run_id: str
    topic: str
    run_trace_id: str
    run_status: str
    run_params: dict
    engines: dict[str, EngineInput]
    forum: list[ForumMessage]
    other_open_jobs: list[str] = field(default_factory=list)
    language: str = ""  # the report's language (core.reporting.language); empty: the topic's

    @property
    def lang(self) -> str:
        return self.language or text_language(self.topic)

    @property
    def zh(self) -> bool:
        return self.lang == "zh"

    def engine_list(self) -> list[EngineInput]:
        return [self.engines[e] for e in self.engines]

    def host_speeches(self) -> list[ForumMessage]:
        return [m for m in self.forum if m.type == "host"]


def expected_engines(params: dict, present: Iterable[str]) -> list[str]:
    chosen = [e for e in (params.get("engines") or []) if e in ENGINES]
    present = set(present)
    expected = [e for e in ENGINE_ORDER if e in chosen or e in present]
    return expected or list(ENGINE_ORDER)


def report_inputs(db, run_id: str, *, include_unfinished: bool = False) -> ReportInputs:
    """This run's inputs: the latest job of each engine kind of THIS run and this run's forum transcript.

    With include_unfinished, an engine that has not completed contributes the paragraphs its
    checkpoint already holds (for partial reports)."""
    with db.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise ReportError(f"no run {run_id}")
        topic, trace, status, params = run.topic or "", run.trace_id or "", run.status, dict(run.params or {})
        jobs = s.scalars(select(Job).where(Job.run_id == run_id).order_by(Job.created_at, Job.id)).all()
        latest: dict[str, Job] = {}
        others = []
        for j in jobs:
            if j.kind in ENGINES:
                latest[j.kind] = j  # ascending order: the last one of a kind is the latest
            elif j.kind != KIND and j.status in OPEN_JOB_STATES:
                others.append(j.name or j.kind)
        engines: dict[str, EngineInput] = {}
        for e in expected_engines(params, latest):
            job = latest.get(e)
            if job is None:
                engines[e] = EngineInput(e, None, "absent")
                continue
            cp = job.checkpoint if isinstance(job.checkpoint, dict) else {}
            ei = EngineInput(e, job.id, job.status, trace_id=job.trace_id or "", error=job.error,
                             sources=stored_sources(s, job.id, cp))
            if job.status == COMPLETED and isinstance(job.result, dict):
                r = EngineResult.from_dict(job.result, e)
                ei.mode, ei.report_md, ei.paragraphs = r.mode, r.report_md, r.paragraphs
                ei.total_paragraphs = len(ei.paragraphs)
            elif include_unfinished:
                ei.paragraphs, ei.total_paragraphs = checkpoint_paragraphs(cp)
                ei.from_checkpoint = bool(ei.paragraphs)
            else:
                ei.sources = []
            engines[e] = ei
    forum = transcript(db, run_id, limit=FORUM_LIMIT)
    return ReportInputs(run_id, topic, trace, status, params, engines, forum, others)


# --- what a report waits for (cheap status reads, while it waits) ---------------------------------

def engine_states(db, run_id: str) -> tuple[dict[str, str], list[str], dict]:
    """Cheap status look-up while waiting: latest status per engine kind, open other jobs, run params."""
    with db.session() as s:
        params = s.scalar(select(Run.params).where(Run.id == run_id)) or {}
        rows = s.execute(select(Job.kind, Job.name, Job.status).where(Job.run_id == run_id)
                         .order_by(Job.created_at, Job.id)).all()
    latest: dict[str, str] = {}
    others = []
    for kind, name, status in rows:
        if kind in ENGINES:
            latest[kind] = status
        elif kind != KIND and status in OPEN_JOB_STATES:
            others.append(name or kind)
    return latest, others, dict(params)


def jobs_to_wait_for(db, run_id: str) -> tuple[list[str], list[str], list[str]]:
    """What the automatic report waits for: the latest job of each engine of the run and the run's
    other open jobs (the forum, the coverage check). Returns (job names, open engines, open others)."""
    with db.session() as s:
        rows = s.execute(select(Job.kind, Job.name, Job.status).where(Job.run_id == run_id)
                         .order_by(Job.created_at, Job.id)).all()
    latest: dict[str, tuple[str, str]] = {}
    names, others = [], []
    for kind, name, status in rows:
        if kind in ENGINES:
            latest[kind] = (name, status)
        elif kind != KIND and status in OPEN_JOB_STATES + (INTERRUPTED,):
            names.append(name)
            others.append(name or kind)
    names += [name for name, _ in latest.values()]
    engines = [e for e in ENGINE_ORDER if e in latest and latest[e][1] in OPEN_JOB_STATES + (INTERRUPTED,)]
    return names, engines, others


def inputs_ready(inputs: ReportInputs) -> bool:
    """True when every engine of the run completed: the automatic report may be written."""
    return bool(inputs.engines) and all(e.completed for e in inputs.engines.values())


_ENGINE_STATES = (RUNNING, PENDING, CANCELLING, FAILED, CANCELLED, INTERRUPTED)


def _state(status: str, error: str | None) -> Msg | str:
    state: Msg | str = Msg(f"report.engine_{status}") if status in _ENGINE_STATES else status
    return Msg("report.state_with_error", {"state": state, "error": redact(error)[:160]}) if error else state


def missing_msgs(inputs: ReportInputs) -> list[Msg]:
    """What a report of these inputs lacks (the partial report's banner), as typed messages: the
    document renders them in its language, the Report page in its reader's. Keys `report.missing_*`;
    the forum's start with `report.missing_forum`."""
    out: list[Msg] = []
    for e in inputs.engine_list():
        engine = e.label
        if e.status == "absent":
            out.append(Msg("report.missing_absent", {"engine": engine}))
        elif not e.completed:
            args = {"engine": engine, "state": _state(e.status, e.error), "done": len(e.paragraphs),
                    "total": e.total_paragraphs}
            if not e.from_checkpoint:
                out.append(Msg("report.missing_unfinished", args))
            elif e.total_paragraphs and len(e.paragraphs) >= e.total_paragraphs:
                out.append(Msg("report.missing_all_used", args))
            elif e.total_paragraphs:
                out.append(Msg("report.missing_some_used", args))
            else:
                out.append(Msg("report.missing_used_of_unknown", args))
        elif not e.produced:
            out.append(Msg("report.missing_empty", {"engine": engine}))
    if not inputs.forum:
        out.append(Msg("report.missing_forum_none"))
    elif not inputs.host_speeches():
        out.append(Msg("report.missing_forum_no_host"))
    return out


def is_forum_gap(msg: Msg) -> bool:
    return msg.key.startswith("report.missing_forum")


def missing_inputs(inputs: ReportInputs, lang: str | None = None) -> list[str]:
    """What a report of these inputs lacks, in words, in `lang` (default: the report's language)."""
    return [m.render(lang or inputs.lang) for m in missing_msgs(inputs)]
