"""A report's inputs: this run's engines (their results, or their checkpoints for a partial report)
and this run's forum transcript; never files, never another run."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from sqlalchemy import select

from core.forum import ForumMessage, transcript
from core.infra.models import Job, Run
from core.infra.redact import redact
from core.reporting.errors import ReportError
from core.reporting.text import ENGINE_LABELS
from core.research.names import ENGINE_NAMES as ENGINES
from core.research.names import ENGINE_ORDER
from core.research.results import (EngineResult, ResultParagraph, ResultSource, checkpoint_paragraphs,
                                   stored_sources)
from core.text.clean import has_cjk
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

    @property
    def zh(self) -> bool:
        return has_cjk(self.topic) or not self.topic.strip()

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


def inputs_ready(inputs: ReportInputs) -> bool:
    """True when every engine of the run completed: the automatic report may be written."""
    return bool(inputs.engines) and all(e.completed for e in inputs.engines.values())


def missing_inputs(inputs: ReportInputs) -> list[str]:
    """What a report of these inputs lacks, in words (the partial report's banner)."""
    zh = inputs.zh
    out = []
    for e in inputs.engine_list():
        name = f"{e.label} 引擎" if zh else f"{e.label} engine"
        if e.status == "absent":
            out.append(f"{name}：本次运行没有该引擎的任务" if zh else f"{name}: this run has no job for it")
        elif not e.completed:
            state = {RUNNING: "仍在运行", PENDING: "尚未开始", CANCELLING: "正在取消", FAILED: "失败",
                     CANCELLED: "已取消", INTERRUPTED: "已中断"}.get(e.status, e.status) if zh else e.status
            got = ""
            if e.from_checkpoint:
                got = (f"（已采用已完成的 {len(e.paragraphs)}/{e.total_paragraphs or '?'} 段）" if zh else
                       f" (using the {len(e.paragraphs)} of {e.total_paragraphs or '?'} paragraphs finished so far)")
            err = f"：{redact(e.error)[:160]}" if zh and e.error else (f": {redact(e.error)[:160]}" if e.error else "")
            out.append(f"{name}：{state}{err}{got}" if zh else f"{name}: {state}{err}{got}")
        elif not e.produced:
            out.append(f"{name}：已完成但没有产出任何内容" if zh else f"{name}: completed but produced nothing")
    if not inputs.forum:
        out.append("论坛：没有任何发言" if zh else "forum: no messages")
    elif not inputs.host_speeches():
        out.append("论坛：没有主持人发言" if zh else "forum: no host speech")
    return out
