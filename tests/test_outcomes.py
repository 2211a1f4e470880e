"""Truthful outcomes (issue 12 item 4): a run that fell back or found nothing ends completed_degraded
with its reasons, a failed report leaves the engines' work usable and the report retryable
(report_failed), and `python -m core run` exits with one code per outcome (core/work/outcomes.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from core import report as rep
from core.analysis import start_analysis
from core.cli import main as cli_main
from core.infra.config import load_settings
from core.work import outcomes
from core.work.runs import get_run, jobs_of
from core.work.states import JobState, RunState
from tests.conftest import wait_for
from tests.fakes.openai_server import FakeOpenAI, FakeReply
from tests.fakes.search_servers import FakeTavilyServer
from tests.research.test_engine import corpus, corpus_records, llm_responder, make_sup  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "新能源汽车价格战"


# ---------------------------------------------------------------------------------------- the rules


def job(name: str, status: str, kind: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(name=name, kind=kind or name.split("#")[0].split("-")[0], status=status)


def test_every_final_status_has_its_own_exit_code():
    finals = list(RunState.FINAL) + [RunState.INTERRUPTED]
    codes = {status: outcomes.exit_code(status) for status in finals}
    assert codes[RunState.COMPLETED] == 0
    assert len(set(codes.values())) == len(codes), codes  # one code per outcome
    assert outcomes.EXIT_USAGE not in codes.values()      # usage errors have their own
    assert outcomes.exit_code("running") == outcomes.EXIT_FAILED  # never 0 for a run that did not end
    assert set(RunState.SUCCEEDED) < set(RunState.USABLE) <= set(RunState.FINAL)
    assert RunState.REPORT_FAILED in RunState.RESUMABLE and RunState.COMPLETED_DEGRADED not in RunState.RESUMABLE


def test_the_final_status_follows_the_decisive_jobs():
    C, F, X, P = JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.PENDING
    engines = [job("coverage", C), job("query", C), job("host-1", C, "host")]
    final = outcomes.final_status
    assert final(engines + [job("report", C)], cancelling=False) == RunState.COMPLETED
    assert final(engines + [job("report", F)], cancelling=False) == RunState.REPORT_FAILED
    # a retried report supersedes the failed one; a failed engine is a failed run, report or not
    assert final(engines + [job("report", F), job("report#2", C)], cancelling=False) == RunState.COMPLETED
    assert final([job("query", F), job("report", F)], cancelling=False) == RunState.FAILED
    assert final([job("query", F), job("query#2", C), job("report", C)], cancelling=False) == RunState.COMPLETED
    assert final(engines + [job("report", X)], cancelling=False) == RunState.CANCELLED
    assert final(engines + [job("report", F)], cancelling=True) == RunState.CANCELLED
    assert final(engines + [job("report", P)], cancelling=False) is None
    assert final(engines + [job("report", JobState.INTERRUPTED)], cancelling=False) == RunState.INTERRUPTED


def test_every_reason_reads_as_a_sentence_with_its_fix():
    said = outcomes.describe({"reason": "llm_unauthorized", "engine": "query", "role": "QUERY_ENGINE", "count": 4})
    assert "QUERY_ENGINE key was rejected" in said and "QUERY_ENGINE_API_KEY" in said and "4 calls" in said
    assert "TAVILY_API_KEY" in outcomes.describe({"reason": "search_failed", "engine": "query", "count": 2})
    # an offline engine searched the corpus, not Bocha: the web search's keys are not the fix
    said = outcomes.describe({"reason": "search_failed", "engine": "media", "count": 1, "provider": "corpus"})
    assert "BOCHA" not in said and "database" in said
    assert "BOCHA_WEB_SEARCH_API_KEY" in outcomes.describe({"reason": "search_failed", "engine": "media", "count": 1,
                                                            "provider": "bocha"})
    for reason in outcomes.REASONS:
        text = outcomes.describe({"reason": reason, "engine": "media", "role": "MEDIA_ENGINE", "count": 1})
        assert text.endswith(".") and reason not in text, (reason, text)  # plain words, not the code
    problems = outcomes.run_problems(RunState.REPORT_FAILED, {}, "RuntimeError: disk full", "abc123")
    assert "disk full" in problems[0] and "python -m core report abc123" in problems[0]
    assert outcomes.run_problems(RunState.COMPLETED, {"degraded": "garbage"}) == []


def test_reasons_come_from_the_recorded_calls_and_the_engines_results(db):
    from core.infra.models import Job, LlmCall, Run

    def result(**kw):
        return {"engine": "x", "paragraphs": [], "n_sources": 5, "search_errors": [], "fallbacks": 0, **kw}

    with db.session() as s:
        s.add(Run(id="r1", trace_id="t", status="running"))
        s.flush()
        for i, (name, kind, res) in enumerate((
                ("query", "query", result(search_errors=["a", "b"], fallback_kinds={"parse": 1, "auth": 2})),
                ("media", "media", result(n_sources=0)),
                ("insight", "insight", result()),
                ("report", "report", None), ("report#2", "report", {"report_id": "x"}))):
            s.add(Job(id=f"r1-{name}", run_id="r1", kind=kind, name=name, status="completed", result=res,
                      created_at=datetime(2025, 1, 1, 0, 0, i)))
        for job_id, role, kind in (("r1-query", "QUERY_ENGINE", "auth"), ("r1-query", "QUERY_ENGINE", "auth"),
                                   ("r1-query", "QUERY_ENGINE", "parse"),  # asked again: not a fallback
                                   ("r1-query", "KEYWORD_OPTIMIZER", "rate_limit"),
                                   ("r1-media", "MEDIA_ENGINE", "timeout"), ("r1-media", "MEDIA_ENGINE", "server_error"),
                                   ("r1-insight", "INSIGHT_ENGINE", "bad_request"),
                                   (None, "FORUM_HOST", "connection"),
                                   ("r1-report", "REPORT_ENGINE", "auth"),   # superseded by report#2
                                   ("r1-report#2", "REPORT_ENGINE", "error")):
            s.add(LlmCall(run_id="r1", job_id=job_id, role=role, status="error", error_kind=kind))
        s.add(LlmCall(run_id="r1", job_id="r1-insight", role="INSIGHT_ENGINE", status="ok"))
    with db.session() as s:
        got = outcomes.degraded_reasons(s, "r1")
    assert got == [
        {"reason": "llm_unauthorized", "engine": "query", "count": 2, "role": "QUERY_ENGINE"},
        {"reason": "llm_rate_limited", "engine": "query", "count": 1, "role": "KEYWORD_OPTIMIZER"},
        {"reason": "llm_unavailable", "engine": "host", "count": 1, "role": "FORUM_HOST"},
        {"reason": "llm_unavailable", "engine": "media", "count": 2, "role": "MEDIA_ENGINE"},
        {"reason": "llm_rejected", "engine": "insight", "count": 1, "role": "INSIGHT_ENGINE"},
        {"reason": "llm_unparsable", "engine": "query", "count": 1, "role": "QUERY_ENGINE"},
        {"reason": "llm_failed", "engine": "report", "count": 1, "role": "REPORT_ENGINE"},
        {"reason": "search_failed", "engine": "query", "count": 2},
        {"reason": "no_sources", "engine": "media", "count": 1},
    ]


# ---------------------------------------------------------------------------------------- real runs


def settings_for(fake: FakeOpenAI, tavily: FakeTavilyServer, **extra):
    env = {**os.environ, **fake.env("QUERY_ENGINE"), **tavily.env, "RETRY_MAX_SECONDS": "2", **extra}
    return load_settings(env={k: str(v) for k, v in env.items()})


def run_to_end(db, events, settings, **kw) -> str:
    sup = make_sup(db, events, settings)
    try:
        run_id = start_analysis(sup, settings, TOPIC, **kw)
        assert sup.wait_run(run_id, 180) in RunState.FINAL
    finally:
        sup.shutdown(5)
    return run_id


def reasons(run) -> dict[tuple[str, str], dict]:
    return {(d["reason"], d["engine"]): d for d in run.params.get("degraded", [])}


def test_a_rejected_key_ends_the_run_completed_degraded_with_llm_unauthorized(corpus, events):
    with FakeOpenAI(default=FakeReply.unauthorized()) as fake, FakeTavilyServer() as tavily:
        run_id = run_to_end(corpus, events, settings_for(fake, tavily), engines="query", paragraphs=2, reflections=0)
    run = get_run(corpus, run_id)
    assert run.status == RunState.COMPLETED_DEGRADED, (run.status, run.error)
    found = reasons(run)
    unauthorized = found[("llm_unauthorized", "query")]
    assert unauthorized["role"] == "QUERY_ENGINE" and unauthorized["count"] >= 3  # structure, 2 summaries, format
    assert set(found) == {("llm_unauthorized", "query")}
    assert "llm_unauthorized" in run.error
    query = next(j for j in jobs_of(corpus, run_id) if j.kind == "query")
    assert query.status == JobState.COMPLETED and query.result["fallback_kinds"] == {"auth": query.result["fallbacks"]}
    # the reason was stored with the run and announced with its final event
    final = [e for e in events.since(0, run_id=run_id, limit=10_000)[0] if e.type == "run.completed_degraded"]
    assert len(final) == 1 and final[0].payload["degraded"] == run.params["degraded"]


def test_a_search_api_failing_throughout_ends_completed_degraded_with_search_failed(corpus, events):
    with FakeOpenAI(responder=llm_responder) as fake, FakeTavilyServer() as tavily:
        tavily.fail("server_error", times=10_000)
        run_id = run_to_end(corpus, events, settings_for(fake, tavily), engines="query", paragraphs=2, reflections=0)
    run = get_run(corpus, run_id)
    assert run.status == RunState.COMPLETED_DEGRADED, (run.status, run.error)
    found = reasons(run)
    assert found[("search_failed", "query")]["count"] >= 1
    assert found[("search_failed", "query")]["provider"] == "tavily"
    assert "TAVILY_API_KEY" in outcomes.describe(found[("search_failed", "query")])
    assert ("no_sources", "query") in found  # every search failed, so the engine found nothing
    assert not any(reason.startswith("llm_") for reason, _ in found)  # the LLM answered every call


def test_invalid_json_fallbacks_are_llm_unparsable_but_json_asked_again_is_not(corpus, events):
    def responder(req):
        if '"paragraph_latest_state"' in req.user:
            return "this is not json at all"
        return llm_responder(req)

    with FakeOpenAI(responder=responder) as fake, FakeTavilyServer() as tavily:
        run_id = run_to_end(corpus, events, settings_for(fake, tavily), engines="query", paragraphs=2, reflections=0)
    run = get_run(corpus, run_id)
    assert run.status == RunState.COMPLETED_DEGRADED
    assert run.params["degraded"] == [{"reason": "llm_unparsable", "engine": "query", "count": 2,
                                       "role": "QUERY_ENGINE"}]  # 2 fallbacks, not the 6 rejected replies

    with FakeOpenAI(responder=llm_responder) as fake, FakeTavilyServer() as tavily:
        clean = run_to_end(corpus, events, settings_for(fake, tavily), engines="query", paragraphs=2, reflections=0)
    assert get_run(corpus, clean).status == RunState.COMPLETED and "degraded" not in get_run(corpus, clean).params


# ---------------------------------------------------------------------------------------- the command line


def cli_json(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = cli_main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, json.loads(out)


@pytest.fixture
def demo(isolated_env, capsys):
    assert cli_main(["data", "demo", "--posts", "400"]) == 0
    capsys.readouterr()
    return isolated_env


QUICK = ("--engines", "insight", "--paragraphs", "1", "--reflections", "0", "--json")


def test_a_failing_report_leaves_the_run_report_failed_and_a_retry_completes_it(demo, capsys, monkeypatch):
    def boom(self, inputs, t_start):
        raise RuntimeError("the disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(rep._Writer, "_write", boom)
        code, summary = cli_json(capsys, "run", TOPIC, "--offline", *QUICK)
    assert code == outcomes.EXIT_REPORT_FAILED, summary
    assert summary["status"] == "report_failed" and summary["report"] is None
    assert "the disk is full" in summary["error"] and "python -m core report" in summary["message"]
    # the engines' work is intact
    assert summary["engines"]["insight"]["status"] == "completed" and summary["engines"]["insight"]["paragraphs"] == 1
    run_id = summary["run_id"]
    (failed,) = rep.list_reports(_db(), run_id)
    assert failed.status == rep.R_ERROR and "the disk is full" in failed.error

    code = cli_main(["report", run_id])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert json.loads(out)["status"] == "completed"
    db = _db()
    wait_for(lambda: get_run(db, run_id).status in RunState.FINAL, what="the run ends after the retried report")
    assert get_run(db, run_id).status == RunState.COMPLETED and get_run(db, run_id).error is None


def _db():
    from core.infra.db import open_database

    return open_database(load_settings().database_url)


def test_each_outcome_of_core_run_has_its_exit_code(demo, capsys, monkeypatch):
    code, summary = cli_json(capsys, "run", TOPIC, "--offline", *QUICK)
    assert (code, summary["status"]) == (0, "completed"), summary
    assert summary["degraded"] == [] and summary["error"] is None

    code, summary = cli_json(capsys, "run", "量子纠缠对撞机", "--offline", *QUICK)
    assert (code, summary["status"]) == (outcomes.EXIT_INSUFFICIENT_DATA, "insufficient_data"), summary

    from core.research import engine

    def until_cancelled(ctx):  # a quick offline run could otherwise end before the timeout is looked at
        ctx.cancel_event.wait(60)
        ctx.check_cancelled()

    with monkeypatch.context() as patch:
        patch.setattr(engine, "run_engine_job", until_cancelled)
        code, summary = cli_json(capsys, "run", TOPIC, "--offline", "--timeout", "0.01", *QUICK)
    assert (code, summary["status"]) == (outcomes.EXIT_CANCELLED, "cancelled"), summary

    def broken(ctx):
        raise RuntimeError("engine bug")

    monkeypatch.setattr(engine, "run_engine_job", broken)
    code, summary = cli_json(capsys, "run", TOPIC, "--offline", *QUICK)
    assert (code, summary["status"]) == (outcomes.EXIT_FAILED, "failed"), summary

    assert cli_main(["run", "", "--offline"]) == outcomes.EXIT_USAGE
    assert cli_main(["run", TOPIC, "--engines", "telepathy"]) == outcomes.EXIT_USAGE


def test_the_process_exits_with_the_degraded_code_when_the_key_is_rejected(demo):
    with FakeOpenAI(default=FakeReply.unauthorized()) as fake:
        env = {**os.environ, **fake.env("INSIGHT_ENGINE"), "RETRY_MAX_SECONDS": "2"}
        proc = subprocess.run([sys.executable, "-m", "core", "run", TOPIC, *QUICK], cwd=ROOT, env=env,
                              capture_output=True, text=True, encoding="utf-8", timeout=240)
    assert proc.returncode == outcomes.EXIT_DEGRADED, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "completed_degraded"
    assert {"reason": "llm_unauthorized", "engine": "insight", "role": "INSIGHT_ENGINE"}.items() <= \
        summary["degraded"][0].items() and summary["degraded"][0]["count"] >= 1
    assert "INSIGHT_ENGINE key was rejected" in summary["message"]
    assert fake.env("INSIGHT_ENGINE")["INSIGHT_ENGINE_API_KEY"] not in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------- cancel


def test_a_cancel_reaches_the_jobs_added_while_it_runs(db, events, make_supervisor, job_handlers, monkeypatch):
    """A post that completes a forum round while the run is being cancelled adds a host job: it is
    cancelled without running, and the run ends cancelled, not stuck `cancelling`."""
    from core.forum import HOST_KIND
    from core.work.jobs import HandlerInfo, JobCancelled, JobSpec

    hosts_run: list[str] = []

    def engine(ctx):
        ctx.cancel_event.wait(60)  # until the cancel reaches it
        ctx.runs.add_jobs(ctx.run_id, [JobSpec(HOST_KIND, "host-1", {"round": 1, "upto": 1})])
        raise JobCancelled("user")

    monkeypatch.setitem(job_handlers, "media", HandlerInfo("media", engine))
    monkeypatch.setitem(job_handlers, HOST_KIND, HandlerInfo(HOST_KIND, lambda ctx: hosts_run.append(ctx.job_id)))
    sup = make_supervisor()
    run_id = sup.submit_run([JobSpec("media")], topic="x")
    wait_for(lambda: get_run(db, run_id) and jobs_of(db, run_id)[0].status == JobState.RUNNING, what="the engine runs")
    assert sup.cancel_run(run_id, timeout=5) == RunState.CANCELLED
    jobs = {j.name: j for j in jobs_of(db, run_id)}
    assert jobs["host-1"].status == JobState.CANCELLED and jobs["host-1"].attempt == 0
    assert "cancelled" in jobs["host-1"].error and hosts_run == []
    assert jobs["media"].status == JobState.CANCELLED


def test_a_host_job_cancelled_while_it_speaks_posts_nothing(db, events, make_supervisor, monkeypatch):
    """The cancel arrives from elsewhere (another process forced it) while the host's LLM call is
    still out: the speech that comes back afterwards is not posted."""
    import core.discussion.host as host_mod
    from sqlalchemy import update

    from core.forum import HOST_KIND, transcript
    from core.infra.models import Job
    from core.work.jobs import JobSpec

    class Host:
        mode = "llm"

        def speak(self, topic, messages, previous):
            with db.session() as s:  # what a forced cancel by another process leaves in the database
                s.execute(update(Job).where(Job.kind == HOST_KIND).values(status=JobState.CANCELLED))
            return "主持人：这段发言不应出现在论坛上。"

    monkeypatch.setattr(host_mod, "make_host", lambda *a, **k: Host())
    sup = make_supervisor()
    sup.settings = load_settings()
    run_id = sup.submit_run([JobSpec(HOST_KIND, "host-1", {"round": 1, "upto": 0})], topic="价格战")
    assert sup.wait_run(run_id, 60) == RunState.CANCELLED
    assert [m for m in transcript(db, run_id) if m.type == "host"] == []
