"""A run whose LLM trickles its answers: each call is cut at LLM_TIMEOUT and the engine falls back
to the offline analyst for that node, visibly, instead of holding the node for the whole stream."""
from __future__ import annotations

import pytest

from core.analysis import start_analysis
from core.infra.models import LlmCall
from core.work.states import RunState
from tests.fakes.openai_server import FakeOpenAI, FakeReply
from tests.fakes.search_servers import FakeTavilyServer
from tests.research.test_engine import TOPIC, engine_job, llm_responder, llm_settings, make_sup

pytestmark = pytest.mark.timeout(180)

SLOW = "多家车企降价" * 100  # 600 characters, 4 every 0.3 s: 45 s per call if nothing cuts it


def test_trickling_summaries_are_cut_at_llm_timeout_and_fall_back(db, events):
    def responder(req):
        if '"paragraph_latest_state"' in req.user:  # FirstSummaryNode
            return FakeReply.trickle(SLOW, chars=4, every=0.3)
        return llm_responder(req)

    with FakeOpenAI(responder=responder) as fake, FakeTavilyServer() as tavily:
        settings = llm_settings(fake, tavily, LLM_TIMEOUT="1", RETRY_MAX_SECONDS="0")  # one attempt per call
        sup = make_sup(db, events, settings)
        try:
            run_id = start_analysis(sup, settings, TOPIC, engines="query", paragraphs=2, reflections=0)
            status = sup.wait_run(run_id, 120)
        finally:
            sup.shutdown(5)
        trickled = [r for r in fake.requests if r.reply is not None and r.reply.chunk_delay == 0.3]
    # The run ends (a degraded completion where the states know one), not failed.
    assert status in {RunState.COMPLETED, getattr(RunState, "COMPLETED_DEGRADED", RunState.COMPLETED)}
    job = engine_job(db, run_id)
    assert job.result["fallbacks"] == 2 and "offline fallback" in job.result["mode"]
    assert all(p["summary"] for p in job.result["paragraphs"])
    fallbacks = [e for e in events.since(0, run_id=run_id, limit=10_000)[0] if e.type == "engine.fallback"]
    assert len(fallbacks) == 2
    assert all(e.payload["node"] == "FirstSummaryNode" and "[timeout]" in e.payload["error"]
               and "LLM_TIMEOUT" in e.payload["error"] for e in fallbacks)
    # The server never finished a trickled answer: every one was cut short.
    assert len(trickled) == 2 and all(r.sent_chars < len(SLOW) for r in trickled)
    with db.session() as s:
        timeouts = s.query(LlmCall).filter(LlmCall.run_id == run_id, LlmCall.error_kind == "timeout").all()
    assert len(timeouts) == 2 and all(r.status == "error" for r in timeouts)
