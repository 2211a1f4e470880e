"""How a run ended, truthfully: the reasons a completed run is degraded, what each means in plain
words, and the command line's exit code for every final status.

A run whose jobs all completed ends ``completed_degraded`` instead of ``completed`` when

    llm_unauthorized    an LLM call was refused (401/403) and its agent fell back to the offline analyst
    llm_rate_limited    an LLM call stayed rate-limited (429) through every retry and fell back
    llm_unavailable     an LLM call timed out, could not connect, or got 5xx / no chat completion, and fell back
    llm_rejected        the endpoint refused the request itself (400/404/422: unknown model...) and it fell back
    llm_unparsable      an engine's model never answered in the JSON asked for, and the node fell back
    llm_switched_off    a role's model failed to answer in JSON node after node: the circuit breaker
                        (core.llm.breaker) switched it to the offline analyst for the rest of the run
    llm_failed          any other LLM failure that fell back
    search_failed       a web (or corpus) search of an engine failed
    no_sources          an engine completed without a single source about the topic
    budget_reached      the run's cap on tokens or cost (core.llm.run_budget) stopped its engines before
                        every paragraph was written; the report says after how many

The reasons come from typed records, never from log text: the run's ``llm_calls`` rows whose status
is ``error`` (each one a call that raised to its caller, which fell back; a JSON reply that is
rejected and asked again is recorded with ``error_kind`` 'parse' and is not a fallback by itself),
the engine jobs' results (``fallback_kinds``, ``search_errors``, ``n_sources``) and the run's
``llm.breaker_open`` events (``count``: the nodes in a row that failed before it opened). Only a run's
decisive jobs count: a job added again under the same name (``report#2``, ``media#2``) supersedes
the earlier one.

Each reason is a dict ``{"reason", "engine", "count"}`` (plus ``"role"`` for LLM reasons: the
settings prefix of the agent's endpoint, e.g. QUERY_ENGINE; and ``"provider"`` for search_failed: the
engine's search provider, "tavily", "bocha", "corpus"...), stored in ``Run.params["degraded"]``.
``describe_msg`` turns one into a sentence with the fix (a core.i18n.Msg the pages render in the
reader's language); ``describe`` is the same in English, for the command line.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from sqlalchemy import select

from core.i18n import Msg
from core.infra.models import Job, LlmCall
from core.work.states import JobState, RunState

__all__ = ["LLM_UNAUTHORIZED", "LLM_RATE_LIMITED", "LLM_UNAVAILABLE", "LLM_REJECTED", "LLM_UNPARSABLE",
           "LLM_FAILED", "LLM_SWITCHED_OFF", "SEARCH_FAILED", "NO_SOURCES", "BUDGET_REACHED", "REASONS",
           "EXIT_CODES", "EXIT_OK", "EXIT_FAILED",
           "EXIT_USAGE", "EXIT_DEGRADED", "EXIT_INSUFFICIENT_DATA", "EXIT_REPORT_FAILED", "EXIT_CANCELLED",
           "EXIT_INTERRUPTED", "exit_code", "decisive_jobs", "final_status", "degraded_reasons", "describe",
           "describe_msg", "run_problems", "problem_msgs", "degraded_of"]

LLM_UNAUTHORIZED = "llm_unauthorized"
LLM_RATE_LIMITED = "llm_rate_limited"
LLM_UNAVAILABLE = "llm_unavailable"
LLM_REJECTED = "llm_rejected"
LLM_UNPARSABLE = "llm_unparsable"
LLM_FAILED = "llm_failed"
LLM_SWITCHED_OFF = "llm_switched_off"
SEARCH_FAILED = "search_failed"
NO_SOURCES = "no_sources"
BUDGET_REACHED = "budget_reached"
REASONS = (LLM_UNAUTHORIZED, LLM_RATE_LIMITED, LLM_UNAVAILABLE, LLM_REJECTED, LLM_UNPARSABLE, LLM_SWITCHED_OFF,
           LLM_FAILED, SEARCH_FAILED, NO_SOURCES, BUDGET_REACHED)

# The LLM client's error kinds (core.llm.errors: LlmCall.error_kind) → reason.
_LLM_KIND_REASONS = {"auth": LLM_UNAUTHORIZED, "rate_limit": LLM_RATE_LIMITED, "timeout": LLM_UNAVAILABLE,
                     "connection": LLM_UNAVAILABLE, "server_error": LLM_UNAVAILABLE, "bad_request": LLM_REJECTED,
                     "parse": LLM_UNPARSABLE}
# The agent an LLM role works for, when its call names no job (the forum host's).
_ROLE_AGENTS = {"QUERY_ENGINE": "query", "MEDIA_ENGINE": "media", "INSIGHT_ENGINE": "insight",
                "REPORT_ENGINE": "report", "FORUM_HOST": "host", "KEYWORD_OPTIMIZER": "keywords"}
_ENGINE_KINDS = ("query", "media", "insight")
_SEARCH_KEYS = {"query": ("TAVILY_API_KEY", "TAVILY_BASE_URL"), "media": ("BOCHA_WEB_SEARCH_API_KEY", "BOCHA_BASE_URL")}
_ORDER = {r: i for i, r in enumerate(REASONS)}

# -- exit codes of `python -m core run` ----------------------------------------------------------------
EXIT_OK = 0                 # completed
EXIT_FAILED = 1             # failed (and any error before the run could start: database, empty corpus)
EXIT_USAGE = 2              # bad arguments or topic (argparse uses 2 too)
EXIT_DEGRADED = 3           # completed_degraded
EXIT_INSUFFICIENT_DATA = 4  # insufficient_data
EXIT_REPORT_FAILED = 5      # report_failed
EXIT_CANCELLED = 6          # cancelled (Ctrl-C, `core cancel`, --timeout)
EXIT_INTERRUPTED = 7        # interrupted (the process stopped before the run ended; `core resume RUN`)

EXIT_CODES: dict[str, int] = {
    RunState.COMPLETED: EXIT_OK, RunState.COMPLETED_DEGRADED: EXIT_DEGRADED,
    RunState.INSUFFICIENT_DATA: EXIT_INSUFFICIENT_DATA, RunState.REPORT_FAILED: EXIT_REPORT_FAILED,
    RunState.FAILED: EXIT_FAILED, RunState.CANCELLED: EXIT_CANCELLED, RunState.INTERRUPTED: EXIT_INTERRUPTED,
}


def exit_code(status: str | None) -> int:
    """The exit code for a run's final status (anything else, e.g. still running: EXIT_FAILED)."""
    return EXIT_CODES.get(str(status or ""), EXIT_FAILED)


# -- the final status ----------------------------------------------------------------------------------

def _base_name(name: str) -> str:
    return (name or "").split("#", 1)[0]


def decisive_jobs(rows: Sequence[Any]) -> list[Any]:
    """The jobs that decide a run's outcome: the latest of each name (rows oldest first, each with
    ``.name``). A job added again under the same name (``report#2``) supersedes the earlier one."""
    latest: dict[str, Any] = {}
    for row in rows:
        latest[_base_name(row.name)] = row
    return list(latest.values())


def final_status(rows: Sequence[Any], *, cancelling: bool, report_kind: str = "report") -> str | None:
    """A run's final status from its jobs (oldest first; each with .name, .kind, .status), before
    degradation is looked at; None while a job is still open.

    completed when every decisive job completed; report_failed when the only decisive jobs that did
    not complete are failed report jobs; then interrupted, cancelled (a cancel was asked for, or
    nothing failed) and failed, as before."""
    statuses = [r.status for r in rows]
    if any(st in JobState.OPEN for st in statuses):
        return None
    if JobState.INTERRUPTED in statuses:
        return RunState.INTERRUPTED  # it will come back (or be failed by the supervisor when it will not)
    decisive = decisive_jobs(rows)
    if all(r.status == JobState.COMPLETED for r in decisive):
        return RunState.COMPLETED
    if cancelling:
        return RunState.CANCELLED
    unfinished = [r for r in decisive if r.status != JobState.COMPLETED]
    if all(r.kind == report_kind and r.status == JobState.FAILED for r in unfinished):
        return RunState.REPORT_FAILED
    if any(r.status == JobState.FAILED for r in decisive):
        return RunState.FAILED
    return RunState.CANCELLED


# -- degradation ---------------------------------------------------------------------------------------

def _add(out: dict, reason: str, engine: str, count: int, role: str | None = None) -> None:
    if count <= 0:
        return
    key = (reason, engine, role)
    out[key] = out.get(key, 0) + int(count)


def degraded_reasons(session, run_id: str, jobs: Sequence[Any] | None = None) -> list[dict]:
    """Why a run whose jobs all completed is degraded: a list of {"reason", "engine", "count"[, "role"]},
    empty when nothing fell back. ``jobs``: the run's decisive jobs (with .id, .name, .kind, .status),
    read here when not given; only the completed engines' results are loaded (they are large)."""
    if jobs is None:
        rows = session.execute(select(Job.id, Job.name, Job.kind, Job.status)
                               .where(Job.run_id == run_id).order_by(Job.created_at, Job.id)).all()
        jobs = decisive_jobs(rows)
    kinds = {j.id: j.kind for j in jobs}
    all_ids = set(session.scalars(select(Job.id).where(Job.run_id == run_id)))
    superseded = all_ids - set(kinds)
    found: dict[tuple, int] = {}
    calls = session.execute(select(LlmCall.job_id, LlmCall.role, LlmCall.error_kind)
                            .where(LlmCall.run_id == run_id, LlmCall.status != "ok")).all()
    for job_id, role, kind in calls:
        if kind in ("parse", "budget") or job_id in superseded:
            continue  # a rejected JSON reply is asked again; a superseded job's work is not in the results
        engine = kinds.get(job_id) or _ROLE_AGENTS.get(role, (role or "llm").lower())
        _add(found, _LLM_KIND_REASONS.get(kind or "", LLM_FAILED), engine, 1, role)
    extra: dict[tuple, dict] = {}  # what an item says beyond its count (the search provider, the budget's figures)
    engines = [j for j in jobs if j.kind in _ENGINE_KINDS and j.status == JobState.COMPLETED]
    results = dict(session.execute(select(Job.id, Job.result).where(Job.id.in_([j.id for j in engines])))
                   .all()) if engines else {}
    for job in engines:
        result = results.get(job.id)
        if not isinstance(result, dict):
            continue
        fallback_kinds = result.get("fallback_kinds") if isinstance(result.get("fallback_kinds"), dict) else {}
        role = result.get("llm_role") or f"{job.kind.upper()}_ENGINE"
        _add(found, LLM_UNPARSABLE, job.kind, _int(fallback_kinds.get("parse")), role)
        errors = result.get("search_errors")
        _add(found, SEARCH_FAILED, job.kind, len(errors) if isinstance(errors, list) else 0)
        if isinstance(result.get("provider"), str):  # which search failed: the fix differs (describe_msg)
            extra[(SEARCH_FAILED, job.kind, None)] = {"provider": result["provider"]}
        if "n_sources" in result and _int(result.get("n_sources")) == 0:
            _add(found, NO_SOURCES, job.kind, 1)
    from core.llm.breaker import switched_off  # the breaker's events (a read; core.llm never imports us)

    for item in switched_off(session, run_id):
        _add(found, LLM_SWITCHED_OFF, _ROLE_AGENTS.get(item.role, item.role.lower()), max(1, item.failures), item.role)
    from core.llm.run_budget import progress  # the budget's events (a read, like the breaker's)

    budget = progress(session, run_id)
    if budget is not None:
        _add(found, BUDGET_REACHED, "run", max(1, budget.written), None)
        extra[(BUDGET_REACHED, "run", None)] = {"written": budget.written, "planned": budget.planned}
    items = [{"reason": reason, "engine": engine, "count": count, **({"role": role} if role else {}),
              **extra.get((reason, engine, role), {})}
             for (reason, engine, role), count in found.items()]
    return sorted(items, key=lambda d: (_ORDER.get(d["reason"], 99), d["engine"], d.get("role") or ""))


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def degraded_of(params: Mapping | None) -> list[dict]:
    """The reasons stored with a run (Run.params["degraded"]), [] when none."""
    items = (params or {}).get("degraded") if isinstance(params, Mapping) else None
    return [d for d in items if isinstance(d, dict) and d.get("reason")] if isinstance(items, list) else []


# -- plain words -----------------------------------------------------------------------------------------
# Each reason becomes a core.i18n.Msg (a catalogue key under [outcome] and its arguments): pages render
# it in the reader's language, the command line in English (describe, run_problems).

_AGENTS = ("query", "media", "insight", "report", "host", "keywords", "coverage")
_REASON_KEYS = {LLM_UNAUTHORIZED: "outcome.llm_unauthorized", LLM_RATE_LIMITED: "outcome.llm_rate_limited",
                LLM_UNAVAILABLE: "outcome.llm_unavailable", LLM_REJECTED: "outcome.llm_rejected",
                LLM_UNPARSABLE: "outcome.llm_unparsable", LLM_SWITCHED_OFF: "outcome.llm_switched_off",
                LLM_FAILED: "outcome.llm_failed"}


def _agent(engine: str) -> Msg | str:
    return Msg(f"outcome.agent_{engine}") if engine in _AGENTS else (engine or Msg("outcome.agent_unknown"))


def _count(kind: str, n: int) -> Msg:
    return Msg(f"outcome.{kind}_one" if n == 1 else f"outcome.{kind}_many", {"n": n})


def describe_msg(item: Mapping) -> Msg:
    """One degradation reason: what happened and how to fix it."""
    reason, count = str(item.get("reason") or ""), _int(item.get("count")) or 1
    engine = str(item.get("engine") or "")
    args = {"agent": _agent(engine), "role": str(item.get("role") or "") or f"{engine.upper()}_ENGINE",
            "calls": _count("calls", count), "times": _count("times", count), "n": count}
    if reason in _REASON_KEYS:
        return Msg(_REASON_KEYS[reason], args)
    if reason == SEARCH_FAILED:
        # the web search's keys are the fix only when the engine searched the web, not its corpus
        key = _SEARCH_KEYS.get(engine) if item.get("provider") != "corpus" else None
        if key:
            return Msg("outcome.search_failed_keys", {**args, "key": key[0], "base": key[1]})
        return Msg("outcome.search_failed", args)
    if reason == NO_SOURCES:
        return Msg("outcome.no_sources", args)
    if reason == BUDGET_REACHED:
        return Msg("budget.outcome", {"n": _int(item.get("written")), "m": _int(item.get("planned"))})
    return Msg("outcome.other", {**args, "reason": reason})


def describe(item: Mapping) -> str:
    """One degradation reason as a sentence, in English (the command line)."""
    return describe_msg(item).render("en")


def problem_msgs(status: str, params: Mapping | None, error: str | None = None, run_id: str = "RUN") -> list[Msg]:
    """What a page says about a run's outcome, one Msg each: the reasons of a degraded run, and for a
    run whose report failed, that the engines' work is intact and how to retry."""
    out = [describe_msg(d) for d in degraded_of(params)]
    if status == RunState.REPORT_FAILED:
        why = error.strip()[:300] if error and error.strip() else ""
        out.insert(0, Msg("outcome.report_failed_why" if why else "outcome.report_failed",
                          {"why": why, "run_id": run_id}))
    return out


def run_problems(status: str, params: Mapping | None, error: str | None = None, run_id: str = "RUN") -> list[str]:
    """problem_msgs in English, one sentence each (the command line's summary)."""
    return [m.render("en") for m in problem_msgs(status, params, error, run_id)]
