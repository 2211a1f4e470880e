"""A run with a token cap, against the fake endpoint: five paragraphs race in parallel for the last of
the budget; the spend ends at most one node past the cap (reservations, core.llm.run_budget); the
engine stops between nodes and keeps what it wrote; the host and the report go offline after the cap;
the run ends completed_degraded (budget_reached) and the report says after how many paragraphs."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest
from sqlalchemy import select

from core.analysis import start_analysis
from core.infra.models import Event, Job, LlmCall
from core.llm.run_budget import BUDGET_REACHED, BUDGET_WARNING, ENGINE_STOPPED, budgets
from core.report import latest_report
from core.work import outcomes
from core.work.runs import get_run
from core.work.states import RunState
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.search_servers import FakeTavilyServer
from tests.research.test_engine import TOPIC, engine_job, llm_responder, llm_settings, make_sup

pytestmark = pytest.mark.timeout(240)

CAP = 10_000  # about the structure, four first searches and a summary (each call ~1,600 tokens at the fake)


def responder(req):
    if "host" in req.system.lower() or "主持" in req.system:
        return "主持人：请各位补充二手车市场的数据。"
    return llm_responder(req)


def test_parallel_paragraphs_racing_for_the_last_budget_overshoot_by_at_most_one_node(db, events):
    budgets.forget()
    with FakeOpenAI(responder=responder, latency=0.3) as fake, FakeTavilyServer() as tavily:
        env = {**fake.env("FORUM_HOST"), **fake.env("REPORT_ENGINE")}
        settings = llm_settings(fake, tavily, SHOAL_LLM_CONCURRENCY=8, FORUM_HOST_EVERY=1, **env)
        sup = make_sup(db, events, settings)
        try:
            run_id = start_analysis(sup, settings, TOPIC, engines="query", paragraphs=5, reflections=1,
                                    max_tokens=CAP)
            status = sup.wait_run(run_id, 180)
        finally:
            sup.shutdown(5)
        raced = fake.max_concurrency()
    run = get_run(db, run_id)
    assert run.params["budget"] == {"max_tokens": CAP, "max_cost_usd": 0.0}
    assert raced >= 2  # paragraphs were in flight together: they did race
    with db.session() as s:
        calls = list(s.scalars(select(LlmCall).where(LlmCall.run_id == run_id).order_by(LlmCall.id)))
        kinds = {e.type: e for e in s.scalars(select(Event).where(Event.run_id == run_id).order_by(Event.id))}
        hosts = list(s.scalars(select(Job).where(Job.run_id == run_id, Job.kind == "host")))
    spent = sum(c.input_tokens + c.output_tokens for c in calls)
    per_node = defaultdict(int)  # a node's calls: its JSON asks
    for c in calls:
        per_node[(c.job_id, c.node, c.trace_id)] += c.input_tokens + c.output_tokens
    # The bound: the last node admitted while spent + reserved was under the cap, nothing more.
    state = budgets.state(db, run_id)
    assert spent <= CAP + max(per_node.values()) + state.unreserved, (spent, sorted(per_node.values()))
    assert state.unreserved == 0  # here every call's bound was within its node's reservation: no slack
    assert spent + state.reserved_tokens >= CAP * 0.75  # it was the cap, not something else, that stopped it
    assert state.reserved_tokens == 0
    # One warning, one refusal event, and the engine says what it wrote.
    assert BUDGET_WARNING in kinds
    with db.session() as s:
        assert len(list(s.scalars(select(Event.id).where(Event.run_id == run_id,
                                                         Event.type == BUDGET_WARNING)))) == 1
    stopped = kinds[ENGINE_STOPPED].payload
    assert stopped["engine"] == "query" and stopped["planned"] == 5 and 1 <= stopped["written"] < 5
    job = engine_job(db, run_id)
    assert job.status == "completed" and len(job.result["paragraphs"]) == stopped["written"]
    assert all(p["summary"] for p in job.result["paragraphs"])
    assert job.result["report_md"]  # formatted by the offline analyst after the cap
    # The host and the report spoke offline after the cap.
    reached_at = kinds[BUDGET_REACHED].ts
    late = [h for h in hosts if h.started_at and h.started_at > reached_at]
    assert late and all(h.result.get("mode") == "offline" for h in late if h.result and h.result.get("spoke"))
    assert not [c for c in calls if c.role == "REPORT_ENGINE"]
    # The outcome: completed, degraded by the budget, in plain words.
    assert status == RunState.COMPLETED_DEGRADED
    [reason] = [d for d in outcomes.degraded_of(run.params) if d["reason"] == "budget_reached"]
    assert reason["written"] == stopped["written"] and reason["planned"] == 5
    assert f"after {stopped['written']} of 5 paragraphs" in outcomes.describe(reason)
    # The report: written offline, its notes say where the budget ended.
    report = latest_report(db, run_id, completed=True)
    doc = json.loads(open(report.json_path, encoding="utf-8").read())
    notes = " ".join(doc["notices"])
    assert f"预算在完成 5 个段落中的 {stopped['written']} 个后用尽" in notes and "离线写作" in notes
    assert doc["report"]["mode"] == "offline"
