"""The report engine: one run's engine findings and forum discussion → one report (HTML, Markdown, JSON).

A report is a supervisor job of kind "report" (leases, heartbeats, cancel and resume come from
the supervisor) plus a Report row that pages read:

    status   pending → running → completed | error | cancelled
    stage    waiting → choosing type → outline → sections → assemble → render   (then "done")

Events (ctx.emit, source "report", read by cursor from the event log; every payload carries
`report_id`): report.queued, report.started, report.waiting, report.stage, report.type,
report.outline, report.section, report.completed, report.error, report.cancelled,
report.interrupted.

Inputs are ONLY this run's: the latest job of each engine kind of the run (its result and the
numbered sources in its checkpoint) and the run's forum transcript. Never files, never another
run. The automatic report waits until every engine job of the run has ended and errors if one
did not complete; a partial report (asked for by the user) starts at once, uses what is there
(finished paragraphs of unfinished engines included) and opens with a banner naming what is
missing.

A report job that fails (an error while writing, a timeout) marks its Report row ``error`` and the
job failed; when the run's engines all completed, the run then ends ``report_failed``, not
``failed`` (core.work.outcomes): the engines' results stay usable, and a new report
(request_report: Generate on the Report page, ``python -m core report RUN``) or ``resume`` retries it.

Sections are written in parallel (a bounded thread pool): by the REPORT_ENGINE LLM, one call per
section with the relevant engine paragraphs, host speeches and numbered sources; or offline, by
extractive assembly of the engines' findings with statistics. A section whose LLM call fails is
marked failed, shows a visible note and an offline extract, and the rest completes.

This module is the report job's public face: request, cancel, status, and the job's steps in
order. The parts live in core/reporting/, one concept each:

    inputs.py    what a report reads: this run's engines (core.research.results) and forum
    material.py  report-wide source numbers, findings, statistics, charts, the claims check
    writers.py   outline, offline and LLM section writing
    types.py     report types; the report document (ReportDocument, ReportSection, ReportChart)
    markdown.py  section Markdown → HTML (markdown-it-py, raw HTML off)
    sanitise.py  the one sanitiser (nh3) and URL check, for the files and the Report page
    render.py    the HTML and Markdown files and the page's preview, all from the document
    files.py     file names, atomic writes;  store.py  Report rows, history, pruning
    charts.py, claims.py, text.py, quotes.py   inline SVG charts, claims check, wording, quotes
    provenance.py  section → engine paragraphs → forum messages, host rounds → LLM calls, trace ids

Files: <data_dir>/reports/<run_id>/<slug>-<report_id>.{html,md,json}, each written to a temporary
file first and then os.replace'd, so a failure never leaves a half-written file in place of a good one.
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import replace
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.infra.clock import display_zone
from core.infra.models import Job, Report, Run, utcnow
from core.infra.redact import redact
from core.infra.tracing import child_trace_id
from core.llm.breaker import switched_off_notes
from core.llm import run_budget
from core.reporting import charts, claims as claimcheck
from core.reporting.custom_templates import is_custom, load_type, resolve_type
from core.reporting.errors import ReportError, ReportSkipped
from core.reporting.files import RUN_ID_RE as _RUN_ID_RE, output_paths, reports_dir, slugify, write_outputs
from core.forum import transcript
from core.reporting.inputs import (ENGINE_ORDER, FORUM_LIMIT, KIND, EngineInput,
                                   ReportInputs, engine_states as _engine_states,
                                   inputs_ready, is_forum_gap, jobs_to_wait_for as _jobs_to_wait_for, missing_inputs,
                                   missing_msgs, report_inputs)
from core.reporting.language import (AUTO_LANGUAGE, LANGUAGE_CHOICES, format_date, normalise_language,
                                     language_source, quoted_language_notice, report_language)
from core.reporting.markdown import markdown_for_file, markdown_to_html
from core.reporting.material import (Material, Unit, build_charts, build_material, findings_text, known_names,
                                     renumber, verify_claims, with_forum)
from core.reporting.provenance import build_provenance
from core.reporting.quotes import drop_repeated_quotes
from core.reporting.render import LABELS, TEMPLATES_DIR, render_html, render_markdown
from core.reporting.sanitise import safe_url, sanitize_html
from core.reporting.store import (KEEP_REPORTS, R_CANCELLED, R_COMPLETED, R_ERROR, R_PENDING, R_RUNNING,
                                  REPORT_EVENT_TYPES, REPORT_OPEN, REPORT_STATUSES, REPORT_TERMINAL, ReportView,
                                  get_report, latest_report, list_reports, prune_reports, report_events,
                                  report_job_id, update_row as _update_row, wait_report)
from core.reporting.text import ENGINE_LABELS, cited, plain as _plain
from core.reporting.waiting import wait_for_jobs
from core.reporting.types import (AUTO, REPORT_TYPES, ReportDocument, ReportSection, ReportType, choose_type_by_rules,
                                  normalise_type)
from core.reporting.writers import (OutlineSection, assign_units, choose_type_llm, clean_llm_markdown,
                                    outline_llm, section_prompt, template_outline, write_offline_section,
                                    write_section)
from core.research.coverage import Coverage
from core.work.jobs import PENDING, JobCancelled, JobContext, JobSpec, LeaseLost
from core.i18n import Msg  # job messages (heartbeats) are shown later in the reader's language

__all__ = [  # the report's public face; the parts live in core/reporting/
    "KIND", "STAGES", "STAGE_DONE", "STAGE_PROGRESS", "KEEP_REPORTS", "R_PENDING", "R_RUNNING", "R_COMPLETED",
    "R_ERROR", "R_CANCELLED", "REPORT_STATUSES", "REPORT_OPEN", "REPORT_TERMINAL", "REPORT_EVENT_TYPES",
    "ReportError", "ReportSkipped", "ReportView", "request_report", "cancel_report", "report_job_spec",
    "get_report", "list_reports", "latest_report", "wait_report", "report_events", "report_job_id",
    "prune_reports", "report_inputs", "inputs_ready", "missing_inputs", "missing_msgs", "is_forum_gap",
    "run_report_job", "wait_also_for", "LANGUAGE_CHOICES", "report_language",
    # parts re-exported for callers and tests that knew them here
    "EngineInput", "ReportInputs", "Material", "Unit", "OutlineSection", "ReportSection", "ReportDocument", "build_material",
    "build_charts", "findings_text", "known_names", "renumber", "verify_claims", "assign_units",
    "template_outline", "write_offline_section", "section_prompt", "clean_llm_markdown", "markdown_to_html",
    "markdown_for_file", "sanitize_html", "safe_url", "render_html", "render_markdown", "LABELS",
    "TEMPLATES_DIR", "output_paths", "reports_dir", "slugify", "write_outputs", "ENGINE_ORDER", "ENGINE_LABELS",
]

STAGES = ("waiting", "choosing type", "outline", "sections", "assemble", "render")
STAGE_DONE = "done"
STAGE_PROGRESS = {"waiting": 0.0, "choosing type": 0.05, "outline": 0.1, "sections": 0.15, "assemble": 0.88,
                  "render": 0.94, STAGE_DONE: 1.0}
SECTION_CONCURRENCY = 6    # sections written at once (the per-provider LLM limit also applies)
WAIT_POLL = 0.1            # seconds between looks at the engines and the host's jobs while waiting (cheap reads)
OTHER_JOBS_GRACE = 240.0   # after the engines end, how long to wait at most for other jobs (the forum monitor)


# =============================================================================================
# Public API: request, cancel
# =============================================================================================

def report_job_spec(report_id: str | None = None, *, partial: bool = False, report_type: str | None = None,
                    after: tuple[str, ...] = (), language: str | None = None) -> JobSpec:
    """The job that writes a report. Without report_id the job creates its own Report row.
    `language`: zh or en, the reader's explicit choice (auto or None: SHOAL_REPORT_LANGUAGE, else the topic's).

    `after`: names of the run's jobs to wait for. The job stays pending (holding no worker) until
    each has ended, whatever its outcome; then it is claimed and says what did not complete."""
    params: dict[str, Any] = {"partial": bool(partial)}
    if report_id:
        params["report_id"] = report_id
    if report_type and normalise_type(report_type) != AUTO:
        params["report_type"] = normalise_type(report_type)
    if language and normalise_language(language) != AUTO_LANGUAGE:
        params["language"] = normalise_language(language)
    return JobSpec(kind=KIND, name=KIND, params=params, max_attempts=2, depends_on=tuple(after),
                   after_any_outcome=True)


def wait_also_for(supervisor, db, run_id: str, job_id: str) -> None:
    """A job added to a run (an engine re-run) that a pending automatic report must wait for too."""
    with db.session() as s:
        waiting = list(s.scalars(select(Job.id).where(Job.run_id == run_id, Job.kind == KIND,
                                                      Job.status == PENDING)))
    for report_job in waiting:
        # False when the report was claimed meanwhile: it then sees the open engine and waits for it itself.
        supervisor.ledger.add_dependencies(report_job, [job_id])


def request_report(supervisor, db, run_id: str, *, partial: bool = False, report_type: str | None = None,
                   language: str | None = None) -> str:
    """Add a report job to a run; returns the report id.

    Not partial (the automatic report): it waits until every engine job of this run has ended,
    then errors unless all completed. Partial: written at once from what the run has, with a
    banner naming what is missing. `report_type` overrides the run's choice ('auto' = choose);
    `language` (zh, en) the report's language (auto or None: SHOAL_REPORT_LANGUAGE, else the topic's)."""
    if not _RUN_ID_RE.match(run_id or ""):
        raise ReportError(f"invalid run id {run_id!r}")
    try:
        rtype = normalise_type(report_type) if report_type else None
        language = normalise_language(language)
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    with db.session() as s:
        if s.get(Run, run_id) is None:
            raise ReportError(f"no run {run_id}")
    if is_custom(rtype) and load_type(db, rtype) is None:  # a user's template (core/reporting/custom_templates.py)
        raise ReportError(f"no report template {rtype}; see `python -m core report template list`")
    for v in list_reports(db, run_id, limit=KEEP_REPORTS):
        if v.status in REPORT_OPEN and v.partial == bool(partial):
            raise ReportError(f"a {'partial ' if partial else ''}report of run {run_id} is already {v.status} "
                              f"({v.id}); wait for it or cancel it first")
    report_id = secrets.token_hex(8)
    now = utcnow()
    with db.session() as s:
        s.add(Report(id=report_id, run_id=run_id, status=R_PENDING, stage="waiting", progress=0.0,
                     partial=bool(partial), title="", created_at=now, updated_at=now))
    after, engines, others = ([], [], []) if partial else _jobs_to_wait_for(db, run_id)
    try:
        (job_id,) = supervisor.add_jobs(run_id, [report_job_spec(report_id, partial=partial, report_type=rtype,
                                                                 after=tuple(after), language=language)])
    except Exception as exc:
        _update_row(db, report_id, status=R_ERROR, error=redact(f"could not queue the report: {exc}")[:2000])
        raise
    with db.session() as s:
        trace = s.scalar(select(Job.trace_id).where(Job.id == job_id)) or ""
    _update_row(db, report_id, trace_id=trace)
    supervisor.events.emit("report.queued", run_id=run_id, job_id=job_id, source=KIND, trace_id=trace,
                           payload={"report_id": report_id, "partial": bool(partial), "report_type": rtype or AUTO,
                                    "language": language})
    if engines or others:
        supervisor.events.emit("report.waiting", run_id=run_id, job_id=job_id, source=KIND, trace_id=trace,
                               payload={"report_id": report_id, "engines": engines, "other_jobs": others})
    prune_reports(db, run_id)
    return report_id


def cancel_report(supervisor, report_id: str, timeout: float | None = None) -> str:
    """Cancel a report (waiting, pending or mid-sections); returns its final status."""
    db = supervisor.db
    view = get_report(db, report_id)
    if view is None:
        raise ReportError(f"no report {report_id}")
    if view.done:
        return view.status
    job_id = report_job_id(db, report_id)
    if job_id is not None:
        supervisor.cancel_job(job_id, timeout=timeout)
    view = get_report(db, report_id, reconcile=False)
    if view is not None and not view.done:
        # never claimed, or abandoned after the cancel timeout: the handler will not mark it
        _update_row(db, report_id, status=R_CANCELLED)
        supervisor.events.emit("report.cancelled", run_id=view.run_id, job_id=job_id, source=KIND,
                               trace_id=view.trace_id, payload={"report_id": report_id, "stage": view.stage})
        view = get_report(db, report_id, reconcile=False)
    return view.status if view else R_CANCELLED


# =============================================================================================
# The job
# =============================================================================================

class _Writer:
    """One report job: waiting, type, outline, parallel sections, assembly, rendering."""
    budget_spent = False  # set when the run's budget was spent before the report: it is written offline

    def __init__(self, ctx: JobContext, report_id: str, settings):
        self.ctx = ctx
        self.db = ctx.db
        self.settings = settings
        self.report_id = report_id
        self.partial = bool(ctx.params.get("partial"))
        self.llm = None
        self.timings: dict[str, float] = {}
        self._cp_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------
    def emit(self, type_: str, payload: dict | None = None) -> int:
        return self.ctx.emit(type_, {"report_id": self.report_id, **(payload or {})}, source=KIND)

    def stage(self, stage: str, progress: float | None = None) -> None:
        progress = STAGE_PROGRESS.get(stage, 0.0) if progress is None else progress
        self.ctx.check_cancelled()
        _update_row(self.db, self.report_id, stage=stage, progress=round(progress, 4))
        self.ctx.heartbeat(progress=progress, message=Msg(f"job.report_stage_{stage.replace(' ', '_')}"))
        self.emit("report.stage", {"stage": stage, "progress": round(progress, 4)})

    def progress(self, progress: float, message: "Msg | str") -> None:
        _update_row(self.db, self.report_id, progress=round(progress, 4))
        self.ctx.heartbeat(progress=progress, message=message)

    def save(self, **updates: Any) -> None:
        with self._cp_lock:
            self.ctx.save_checkpoint(None, report_id=self.report_id, **updates)

    # -- steps ------------------------------------------------------------------------------
    def language(self, topic: str) -> str:
        """zh or en: kept in the checkpoint, so a resumed report goes on in the language it began in."""
        cp = self.ctx.checkpoint
        if cp.get("language") in ("zh", "en"):
            return cp["language"]
        lang = report_language(topic, self.settings.get("SHOAL_REPORT_LANGUAGE", AUTO_LANGUAGE),
                               self.ctx.params.get("language"))
        self.save(language=lang)
        return lang

    def wait_for_engines(self, others: bool = True) -> None:
        """The job is claimed once the jobs it depends on have ended (request_report): normally the
        engines have. Only a job added to the run after the report was requested and missed by
        wait_also_for (claimed meanwhile), or a report job added without dependencies, waits here
        for an engine. ``others``: wait too for the run's other open jobs (the forum host's last
        speeches, added while the engines ran), woken as a job ends (core.reporting.waiting)."""
        wait_for_jobs(self.ctx, self.emit, others=others, poll=WAIT_POLL, grace=OTHER_JOBS_GRACE,
                      auto_resume=bool(self.settings.get("SHOAL_AUTO_RESUME", True)))

    def choose_type(self, inputs: ReportInputs, material: Material) -> tuple[str, str, str]:
        cp = self.ctx.checkpoint
        if cp.get("report_type") in REPORT_TYPES or is_custom(cp.get("report_type")):
            return cp["report_type"], cp.get("type_by", "checkpoint"), cp.get("type_reason", "")
        requested = self.ctx.params.get("report_type") or inputs.run_params.get("report_type") or AUTO
        try:
            requested = normalise_type(str(requested))
        except ValueError:
            self.ctx.log.warning("unknown report type {!r} in the run's parameters: choosing", requested)
            requested = AUTO
        if requested != AUTO:
            return requested, "user", "chosen by the user"
        rule_key, rule_reason, _ = choose_type_by_rules(
            inputs.topic, findings_text(material), {d["day"]: d["n"] for d in material.stats["days"]})
        if self.llm is not None:
            from core.llm.client import LlmError

            try:
                return choose_type_llm(self.llm, material, rule_key, run_id=self.ctx.run_id,
                                       job_id=self.ctx.job_id)
            except LlmError as exc:
                self.ctx.log.warning("report type by LLM failed, using the rules: {}", exc)
                return rule_key, "rules", f"{rule_reason} (the LLM failed: {redact(str(exc))[:160]})"
        return rule_key, "rules", rule_reason

    def outline(self, rtype: ReportType, material: Material) -> tuple[str, list[OutlineSection]]:
        zh = material.zh
        cp = self.ctx.checkpoint
        base = template_outline(rtype, zh)
        title = rtype.title(_plain(material.topic, 80) or ("未命名主题" if zh else "untitled"), zh)
        if cp.get("outline") and cp.get("title"):
            saved = {o["key"]: o for o in cp["outline"]}
            return cp["title"], [OutlineSection(**{**b.as_dict(), "title": saved.get(b.key, {}).get("title", b.title)})
                                 for b in base]
        if self.llm is not None and not rtype.custom:  # a user's template keeps its headings as written
            title, base = outline_llm(self.llm, rtype, material, base, title, run_id=self.ctx.run_id,
                                      job_id=self.ctx.job_id, log=self.ctx.log)
        return title, base

    def write_sections(self, outline: list[OutlineSection], assigned: dict[str, list[Unit]], material: Material,
                       rtype: ReportType, title: str) -> list[ReportSection]:
        done: dict[str, dict] = dict(self.ctx.checkpoint.get("sections") or {})
        results: dict[str, ReportSection] = {k: ReportSection.from_dict(v) for k, v in done.items()
                                             if k in {o.key for o in outline}}
        todo = [(i, sec) for i, sec in enumerate(outline, 1) if sec.key not in results]
        total = len(outline)
        if not todo:
            return [results[o.key] for o in outline]
        workers = max(1, min(len(todo), int(self.ctx.run_params.get("report_concurrency") or SECTION_CONCURRENCY)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report-section")
        futures = {pool.submit(self._section, i, sec, assigned.get(sec.key, []), material, rtype, title): sec
                   for i, sec in todo}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                self.ctx.check_cancelled()
                if not finished:
                    self.ctx.heartbeat()
                    continue
                # Sections that end together (their calls began together) are saved in one checkpoint
                # write and one progress update, then announced: each event still follows its save.
                ended = [f.result() for f in finished]  # _section turns every writing failure into a failed section
                for res in ended:
                    results[res.key] = res
                    done[res.key] = res.as_dict()
                self.save(sections=done)
                frac = len(results) / total
                self.progress(STAGE_PROGRESS["sections"] + frac * (STAGE_PROGRESS["assemble"] -
                                                                  STAGE_PROGRESS["sections"]),
                              Msg("job.report_sections", {"done": len(results), "total": total}))
                for n, res in enumerate(ended, len(results) - len(ended) + 1):
                    self.emit("report.section", {"key": res.key, "title": res.title, "index": res.index,
                                                 "total": total, "done": n, "status": res.status,
                                                 "mode": res.mode, "ms": res.ms, "error": res.error})
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return [results[o.key] for o in outline]

    def _section(self, index: int, sec: OutlineSection, units: list[Unit], material: Material, rtype: ReportType,
                 title: str) -> ReportSection:
        return write_section(index, sec, units, material, rtype, title, self.llm, run_id=self.ctx.run_id,
                             job_id=self.ctx.job_id, trace_id=child_trace_id(self.ctx.trace_id), log=self.ctx.log,
                             check_cancelled=self.ctx.check_cancelled)

    # -- the whole job ----------------------------------------------------------------------
    def run(self) -> dict:
        ctx = self.ctx
        t_start = time.perf_counter()
        _update_row(self.db, self.report_id, status=R_RUNNING, error=None, trace_id=ctx.trace_id,
                    partial=self.partial)
        self.emit("report.started", {"partial": self.partial, "resumed": ctx.resumed, "attempt": ctx.attempt})
        self.stage("waiting")
        if not self.partial:
            # The engines only: the type and outline do not read the forum, so they are chosen while
            # the host's last speeches are written; the sections wait for those (_write).
            self.wait_for_engines(others=False)
        inputs = report_inputs(self.db, ctx.run_id, include_unfinished=self.partial)
        inputs = replace(inputs, language=self.language(inputs.topic))
        if not self.partial and not inputs_ready(inputs):
            problems = [m.render(inputs.lang) for m in missing_msgs(inputs) if not is_forum_gap(m)]
            states = _engine_states(self.db, ctx.run_id)[0]
            if "cancelled" in states.values() and "failed" not in states.values():
                # Someone stopped an engine: the automatic report steps aside (cancelled, not failed),
                # so the run reads as stopped by a person rather than broken.
                raise ReportSkipped("an engine of this run was stopped, so no automatic report was written: "
                                    + "; ".join(problems) + ". Ask for a partial report to write one from what "
                                    "is there.")
            raise ReportError("not every engine of this run completed, so the report was not written: "
                              + "; ".join(problems) + ". Ask for a partial report to write one from what is there.")
        self.timings["wait_s"] = round(time.perf_counter() - t_start, 3)
        offline = bool(inputs.run_params.get("offline")) or not self.settings.llm_configured("REPORT_ENGINE")
        self.budget_spent = not offline and run_budget.exhausted(self.db, ctx.run_id, self.settings)
        offline = offline or self.budget_spent  # the run's budget is spent: the offline writer
        if not offline:
            from core.llm.client import LlmClient

            self.llm = LlmClient("REPORT_ENGINE", self.settings, db=self.db, events=ctx.events, limiter=ctx.limits)
        try:
            return self._write(inputs, t_start)
        finally:
            if self.llm is not None:
                self.llm.close()

    def _write(self, inputs: ReportInputs, t_start: float) -> dict:
        ctx = self.ctx
        material = build_material(inputs)
        zh = material.zh

        self.stage("choosing type")
        type_key, type_by, type_reason = self.choose_type(inputs, material)
        try:
            rtype = resolve_type(self.db, type_key)  # a built-in type or a user's stored template
        except KeyError as exc:
            raise ReportError(str(exc.args[0])) from None
        _update_row(self.db, self.report_id, report_type=type_key)
        self.save(report_type=type_key, type_by=type_by, type_reason=type_reason)
        self.emit("report.type", {"report_type": type_key, "by": type_by, "reason": type_reason[:300]})

        self.stage("outline")
        # Which findings each section takes depends on the template's keys and words, never on the
        # headings the model gives them: they are assigned while the outline call is in flight.
        base = template_outline(rtype, zh)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-assign") as pool:
            assigning = pool.submit(assign_units, base, material.units)
            title, outline = self.outline(rtype, material)
            assigned = assigning.result()
        if [(o.key, o.kind, o.words) for o in outline] != [(b.key, b.kind, b.words) for b in base]:
            assigned = assign_units(outline, material.units)  # not expected: outline() keeps them
        _update_row(self.db, self.report_id, title=title[:500])
        self.save(title=title, outline=[o.as_dict() for o in outline])
        self.emit("report.outline", {"title": title[:200], "sections": [o.title for o in outline]})

        if not self.partial:
            t0 = time.perf_counter()
            self.wait_for_engines()  # the forum's other jobs: the sections quote its last speeches
            inputs = replace(inputs, forum=transcript(self.db, ctx.run_id, limit=FORUM_LIMIT))
            material = with_forum(material, inputs.forum)
            self.timings["wait_forum_s"] = round(time.perf_counter() - t0, 3)

        self.stage("sections")
        t0 = time.perf_counter()
        sections = self.write_sections(outline, assigned, material, rtype, title)
        self.timings["sections_s"] = round(time.perf_counter() - t0, 3)

        self.stage("assemble")
        missing = missing_inputs(inputs)
        coverage = Coverage.from_dict(inputs.run_params.get("coverage"))
        thin = coverage is not None and not coverage.sufficient
        banner = {"partial": self.partial, "missing": missing if self.partial else [],
                  "coverage": coverage.banner(zh) if thin else None}
        notices = ([] if self.partial else missing) + quoted_language_notice(material, sections)
        failed = [s for s in sections if s.status == "failed"]
        if failed:
            notices = notices + [(f"{len(failed)} 个章节未能由模型写成，已在文中标出。" if zh else
                                  f"{len(failed)} section(s) could not be written by the LLM; they are marked.")]
        # roles the circuit breaker switched off (core.llm.breaker); the budget reached after N of M paragraphs
        notes = switched_off_notes(self.db, ctx.run_id) + run_budget.budget_notes(
            self.db, ctx.run_id, report_offline=self.budget_spent)
        notices = notices + [m.render("zh" if zh else "en") for m in notes]
        for s, text in zip(sections, drop_repeated_quotes([s.markdown for s in sections])):
            s.markdown = claimcheck.strip_marks(text)
            still = set(cited(s.markdown))
            s.sources = [n for n in s.sources if n in still]
        claims = verify_claims(material, sections)
        chart_list = build_charts(inputs, material)
        paths = output_paths(self.settings, ctx.run_id, inputs.topic, self.report_id)
        doc = self._document(inputs, material, rtype, type_by, type_reason, title, sections, banner, notices,
                             chart_list, paths)
        doc.claims = [c.as_dict() for c in claims]
        doc.claims_count = claimcheck.summary(claims)
        doc.coverage = coverage.as_dict() if coverage is not None else None

        self.stage("render")
        html_text = render_html(doc)
        md_text = render_markdown(doc)
        json_text = doc.to_json()
        ctx.check_cancelled()
        write_outputs({paths["html"]: html_text, paths["md"]: md_text, paths["json"]: json_text})
        self.timings["total_s"] = round(time.perf_counter() - t_start, 3)

        _update_row(self.db, self.report_id, status=R_COMPLETED, stage=STAGE_DONE, progress=1.0, error=None,
                    html_path=str(paths["html"]), md_path=str(paths["md"]), json_path=str(paths["json"]))
        ctx.heartbeat(progress=1.0, message=Msg(f"job.report_stage_{STAGE_DONE}"))
        result = {"report_id": self.report_id, "report_type": type_key, "type_by": type_by, "title": title,
                  "partial": self.partial, "mode": "llm" if self.llm is not None else "offline",
                  "language": inputs.lang,
                  "html_path": str(paths["html"]), "md_path": str(paths["md"]), "json_path": str(paths["json"]),
                  "sections": [{"key": s.key, "title": s.title, "status": s.status, "mode": s.mode} for s in sections],
                  "failed_sections": len(failed), "n_sources": len(material.sources), "missing": missing,
                  "claims": doc.claims_count, "coverage_banner": bool(banner["coverage"]),
                  "timings": dict(self.timings)}
        self.emit("report.completed", {k: result[k] for k in ("title", "report_type", "html_path", "md_path",
                                                               "json_path", "failed_sections", "partial", "claims",
                                                               "language")})
        try:
            prune_reports(self.db, ctx.run_id)
        except Exception as exc:  # noqa: BLE001 - history clean-up never fails a report
            ctx.log.warning("pruning old reports failed: {}", exc)
        return result

    def _document(self, inputs: ReportInputs, m: Material, rtype: ReportType, type_by: str, type_reason: str,
                  title: str, sections: list[ReportSection], banner: dict, notices: list[str],
                  chart_list: list[charts.Chart], paths: dict[str, Path]) -> ReportDocument:
        ctx, zh = self.ctx, m.zh
        now = utcnow().replace(microsecond=0)
        zone = display_zone(str(self.settings.get("SHOAL_TIMEZONE", "UTC") or "UTC"))
        return ReportDocument(
            report={"id": self.report_id, "run_id": ctx.run_id, "job_id": ctx.job_id, "title": title,
                       "topic": inputs.topic, "type": rtype.key, "type_name": rtype.name(zh), "type_by": type_by,
                       "type_reason": type_reason, "partial": self.partial,
                       "forced": bool(inputs.run_params.get("force_report")),
                       "mode": "llm" if self.llm is not None else "offline", "language": inputs.lang,
                       "language_by": language_source(self.settings.get("SHOAL_REPORT_LANGUAGE"),
                                                      ctx.params.get("language")),
                       "generated_at": now.isoformat() + "Z", "generated_label": format_date(now, inputs.lang, zone),
                       "trace_id": ctx.trace_id, "run_trace_id": inputs.run_trace_id},
            banner=banner,
            notices=notices,
            sections=list(sections),
            sources=m.sources,
            charts=list(chart_list),
            statistics=m.stats,
            provenance={
                "run_id": ctx.run_id, "run_trace_id": inputs.run_trace_id, "report_trace_id": ctx.trace_id,
                "job_id": ctx.job_id,
                "engines": {e.engine: {"job_id": e.job_id, "status": e.status, "trace_id": e.trace_id,
                                       "mode": e.mode, "paragraphs": len(e.paragraphs), "sources": len(e.sources),
                                       "from_checkpoint": e.from_checkpoint, "error": redact(e.error or "")[:300] or None}
                            for e in inputs.engine_list()},
                "forum": m.stats["forum"],
                # section → paragraphs → forum → LLM calls and traces (core.reporting.provenance)
                "graph": build_provenance(self.db, ctx.run_id, m.paragraphs,
                                          {e.engine: e.job_id for e in inputs.engine_list()}, m.forum, sections,
                                          report_job_id=ctx.job_id,
                                          public_url=self.settings.get("SHOAL_PUBLIC_URL", "")).to_dict(),
            },
            files={k: p.name for k, p in paths.items()},
        )


def _ensure_row(ctx: JobContext) -> str:
    """The report id of this job: from its params, its checkpoint, or a new row (a job added
    directly with report_job_spec() and no id)."""
    rid = ctx.params.get("report_id") or ctx.checkpoint.get("report_id")
    db = ctx.db
    if rid:
        with db.session() as s:
            exists = s.get(Report, rid) is not None
        if exists:
            return rid
    rid = rid if rid and re.fullmatch(r"[A-Za-z0-9]{1,32}", rid) else secrets.token_hex(8)
    now = utcnow()
    with db.session() as s:
        s.add(Report(id=rid, run_id=ctx.run_id, status=R_PENDING, stage="waiting", progress=0.0,
                     partial=bool(ctx.params.get("partial")), title="", trace_id=ctx.trace_id, created_at=now,
                     updated_at=now))
    ctx.save_checkpoint(None, report_id=rid)
    return rid


def run_report_job(ctx: JobContext) -> dict:
    report_id = _ensure_row(ctx)
    writer = _Writer(ctx, report_id, ctx.settings)
    db = ctx.db
    try:
        return writer.run()
    except LeaseLost:
        raise  # another worker owns the job now: write nothing
    except JobCancelled:
        if ctx.cancel_reason == "lease_lost":
            raise
        if ctx.cancel_reason == "shutdown":
            _update_row(db, report_id, status=R_PENDING)
            writer.emit("report.interrupted", {"reason": "shutdown"})
        elif ctx.cancel_reason == "timeout":
            _update_row(db, report_id, status=R_ERROR, error="the report job timed out")
            writer.emit("report.error", {"error": "the report job timed out"})
        else:
            _update_row(db, report_id, status=R_CANCELLED)
            writer.emit("report.cancelled", {})
        raise
    except ReportSkipped as exc:
        _update_row(db, report_id, status=R_CANCELLED, error=str(exc))
        writer.emit("report.cancelled", {"reason": str(exc)})
        raise JobCancelled("skipped") from None
    except Exception as exc:
        error = redact(str(exc) if isinstance(exc, ReportError) else f"{exc.__class__.__name__}: {exc}")[:2000]
        _update_row(db, report_id, status=R_ERROR, error=error)
        writer.emit("report.error", {"error": error})
        raise
