"""Starting an analysis: validating the topic, choosing the mode, measuring coverage, and the run's jobs.

An analysis run is: ``coverage`` first (how many sources are about the topic), then the engines,
which depend on it, and the report, which the coverage job requests only when the data can support
an analysis (or the analyst asked for one anyway). The engines post to the forum themselves; the
forum adds a short "host" job per round (core.forum). With FORUM_BETTAFISH_LOG_DIR set, the run also
follows that BettaFish logs folder (core.discussion.log_monitor). Below the threshold the run ends
``insufficient_data`` with a message saying what matched and how to get more.
"""
from __future__ import annotations

import contextvars
import re
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor

from loguru import logger
from sqlalchemy import update

from core.discussion.log_monitor import tail_job
from core.console import telemetry
from core.infra.config import Settings
from core.llm.run_budget import budget_params
from core.research.engine import ENGINES
from core.research.plan import PLAN_PARAM, parse_plan
from core.work.jobs import INSUFFICIENT_DATA, JobContext, JobSpec
from core.infra.models import Run
from core.research.coverage import Coverage
from core.text.clean import has_cjk
from core.text.warmup import hurry_warmup

MAX_TOPIC_CHARS = 200
ENGINE_NAMES = tuple(ENGINES)


class TopicError(ValueError):
    """A topic that cannot be analysed; the message says why and what to do."""


def clean_topic(raw: str | None) -> str:
    """Strip control characters and surrounding space; refuse empty and oversized topics."""
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch not in "\u200d" else ch
                   for ch in (raw or ""))
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise TopicError("Enter a topic to analyse, e.g. 武汉大学舆情 or 新能源汽车价格战.")
    if len(text) > MAX_TOPIC_CHARS:
        raise TopicError(f"The topic is {len(text):,} characters long; keep it under {MAX_TOPIC_CHARS} "
                         "(a few keywords or a short phrase work best).")
    return text


def parse_engines(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None or value == "":
        return ENGINE_NAMES
    items = value.split(",") if isinstance(value, str) else list(value)
    engines = tuple(dict.fromkeys(e.strip().lower() for e in items if e.strip()))
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise ValueError(f"unknown engine(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(ENGINE_NAMES)}")
    return engines


def run_mode(settings: Settings, engines: tuple[str, ...], offline: bool) -> str:
    if offline or settings["SHOAL_MODE"] == "offline":
        return "offline"
    return "llm" if any(settings.llm_configured(ENGINES[e].llm_role) for e in engines) else "offline"


COVERAGE = "coverage"


def analysis_jobs(engines: tuple[str, ...], bettafish_logs: str = "") -> list[JobSpec]:
    """Coverage first; then one job per engine, and the live tail of a BettaFish logs folder beside
    them when ``bettafish_logs`` names one (FORUM_BETTAFISH_LOG_DIR; it ends when the engines have)."""
    after = (COVERAGE,)
    return ([JobSpec(kind=COVERAGE, name=COVERAGE)] + [JobSpec(kind=e, name=e, depends_on=after) for e in engines]
            + ([tail_job(bettafish_logs, after)] if str(bettafish_logs or "").strip() else []))


def analysis_params(settings: Settings, engines: tuple[str, ...], *, paragraphs: int | None = None,
                    reflections: int | None = None, report_type: str = "auto", offline: bool = False,
                    force_report: bool = False, max_tokens: int | None = None,
                    max_cost: float | None = None) -> dict:
    p = int(paragraphs or settings["SHOAL_PARAGRAPHS"])
    r = int(settings["SHOAL_REFLECTIONS"] if reflections is None else reflections)
    if not 1 <= p <= 12:
        raise ValueError("paragraphs must be between 1 and 12")
    if not 0 <= r <= 5:
        raise ValueError("reflections must be between 0 and 5")
    return {"engines": list(engines), "paragraphs": p, "reflections": r, "report_type": report_type,
            "offline": run_mode(settings, engines, offline) == "offline", "force_report": bool(force_report),
            "budget": budget_params(settings, max_tokens, max_cost)}  # caps on tokens and cost (core.llm.run_budget)


def start_analysis(supervisor, settings: Settings, topic: str, engines=None, *, paragraphs: int | None = None,
                   reflections: int | None = None, report_type: str = "auto", offline: bool = False,
                   force_report: bool = False, plan=None, max_tokens: int | None = None,
                   max_cost: float | None = None) -> str:
    """Validate and queue an analysis; returns the run id. Raises TopicError/ValueError with a clear message.

    ``plan``: the analyst's reviewed paragraphs (a core.research.plan.RunPlan or its JSON form), stored
    in the run's parameters; each engine it names writes exactly those paragraphs (PlanError if invalid).

    ``force_report``: write the report even when coverage is below SHOAL_MIN_SOURCES (it then opens
    with a coverage banner); a topic nothing matches still ends insufficient_data."""
    topic = clean_topic(topic)
    engines = parse_engines(engines)
    params = analysis_params(settings, engines, paragraphs=paragraphs, reflections=reflections,
                             report_type=report_type, offline=offline, force_report=force_report,
                             max_tokens=max_tokens, max_cost=max_cost)
    if plan is not None:
        params[PLAN_PARAM] = parse_plan(plan, topic, engines).to_params()
    jobs = analysis_jobs(engines, settings["FORUM_BETTAFISH_LOG_DIR"])
    hurry_warmup()  # the engines will need jieba and the sentiment model: load them now, once
    run_id = supervisor.submit_run(jobs, kind="analysis", topic=topic, params=params,
                                   mode="offline" if params["offline"] else "llm")
    telemetry.record("run.submitted", run_id=run_id, payload={"engines": list(engines), "topic_chars": len(topic),
                                                              "paragraphs": params["paragraphs"],
                                                              "reflections": params["reflections"],
                                                              "offline": params["offline"]})
    return run_id


def _report_engine():
    """core.report, imported when a report is asked for: Home imports this module, and the report
    engine (Jinja, Markdown, the report's text tools) is a fifth of Home's imports on a cold start."""
    from core import report

    return report


def rerun_engine(supervisor, run_id: str, engine: str) -> str:
    """Run one engine again (or for the first time) within an existing run; returns the new job id."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine}")
    hurry_warmup()
    (job_id,) = supervisor.add_jobs(run_id, [JobSpec(kind=engine, name=engine)])
    _report_engine().wait_also_for(supervisor, supervisor.db, run_id, job_id)  # a pending report waits for it too
    return job_id


# -- coverage ------------------------------------------------------------------------------------

def measure_coverage(db, settings: Settings, topic: str, engines, *, offline: bool) -> Coverage:
    """Count what is about the topic before anything is written: corpus posts per platform, and in
    LLM mode the web results of each configured web search (one search per engine)."""
    from core.corpus.search import corpus_stats
    from core.research.scope import admits_text, build_scope, matching_counts

    web_results, searched, errors = 0, False, []
    searches: list[tuple[str, str, Future]] = []  # (engine, provider name, its search's docs)
    pool = None
    try:
        if not offline and settings["SHOAL_MODE"] != "offline":
            from core.research.web_search import web_provider_for

            # The web searches (one per engine) run at once, and while the corpus is counted.
            for engine in (e for e in engines if e in ("query", "media")):
                provider = web_provider_for(engine, settings)
                if provider is None:
                    continue
                searched = True
                pool = pool or ThreadPoolExecutor(max_workers=2, thread_name_prefix="coverage-search")
                searches.append((engine, provider.name, pool.submit(contextvars.copy_context().run,
                                                                    _web_search, provider, topic)))
        scope = build_scope(db, topic, floor=float(settings["SHOAL_RELEVANCE_FLOOR"]))
        matching, by_platform = matching_counts(db, scope)
        corpus_total = corpus_stats(db).total
        for engine, name, future in searches:
            try:
                docs = future.result()
            except Exception as exc:
                from core.research.web_search import SearchError

                if not isinstance(exc, SearchError):
                    raise
                logger.warning("coverage: {} web search failed: {}", engine, exc)
                errors.append(f"{name}: {str(exc)[:160]}")
                continue
            web_results += sum(1 for d in docs if admits_text(scope, d.title, d.content))
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return Coverage(matching, by_platform, web_results, int(settings["SHOAL_MIN_SOURCES"]),
                    corpus_total, searched, tuple(errors))


def _web_search(provider, topic: str) -> list:
    """One engine's coverage search: its first tool on the topic (the provider is closed after)."""
    try:
        return provider.run_tool(provider.tools[0].name, topic)
    finally:
        provider.close()


def _save_run_params(db, run_id: str, **values) -> dict:
    with db.session() as s:
        run = s.get(Run, run_id)
        params = {**dict(run.params or {}), **values}
        s.execute(update(Run).where(Run.id == run_id).values(params=params))
    return params


def run_coverage_job(ctx: JobContext) -> dict:
    params = ctx.run_params
    engines = tuple(params.get("engines") or ENGINE_NAMES)
    coverage = measure_coverage(ctx.db, ctx.settings, ctx.topic, engines, offline=bool(params.get("offline")))
    _save_run_params(ctx.db, ctx.run_id, coverage=coverage.as_dict())
    ctx.emit("coverage.measured", coverage.as_dict())
    forced = bool(params.get("force_report")) and coverage.sources > 0
    if not coverage.sufficient and not forced:
        message = coverage.message(has_cjk(ctx.topic))
        ctx.runs.end_run(ctx.run_id, INSUFFICIENT_DATA, message, payload=coverage.as_dict())
        return {"coverage": coverage.as_dict(), "message": message}
    # The automatic report: its job depends on this run's engines and host jobs (it is claimed once
    # they have ended, holding no worker while it waits) and never reads another run's outputs.
    _report_engine().request_report(ctx.runs, ctx.db, ctx.run_id)
    return {"coverage": coverage.as_dict(), "forced": not coverage.sufficient}


def analyse_anyway(supervisor, run_id: str) -> str:
    """The analyst's "write it anyway" for a run that ended insufficient_data: run its engines on what
    matched, and a report that opens with the coverage banner. Returns the report id."""
    from core.work.runs import get_run

    run = get_run(supervisor.db, run_id)
    if run is None:
        raise KeyError(f"no run {run_id}")
    if run.status != INSUFFICIENT_DATA:
        raise ValueError(f"run {run_id} is {run.status}, not {INSUFFICIENT_DATA}")
    coverage = Coverage.from_dict(run.params.get("coverage"))
    if coverage is None or coverage.sources == 0:
        raise ValueError("nothing in the data is about this topic, so there is nothing to write a report from")
    _save_run_params(supervisor.db, run_id, force_report=True)
    # The engines were skipped (cancelled while pending): they come back as they were.
    supervisor.resume_run(run_id)
    return _report_engine().request_report(supervisor, supervisor.db, run_id)
