"""A whole analysis against a model that never answers in JSON, served like a small local model
(one request at a time, no usage, replies cut at max_tokens): the run ends, each engine's role is
switched off by the circuit breaker after a few nodes, and the run's outcome and report say so."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from core.analysis import start_analysis
from core.infra.config import load_settings
from core.infra.models import LlmCall
from core.llm.breaker import BREAKER_EVENT, breakers
from core.reporting.store import latest_report
from core.work.runs import get_run
from core.work.states import RunState
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.search_servers import FakeTavilyServer
from tests.research.test_engine import TOPIC, corpus, make_sup  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(300)

ENGINE_ROLES = ("QUERY_ENGINE", "INSIGHT_ENGINE")
JSON_ROLES = ENGINE_ROLES + ("KEYWORD_OPTIMIZER",)  # the Insight engine's keyword optimiser asks for JSON too


def test_a_run_against_a_model_that_never_answers_json_ends_with_its_roles_switched_off(corpus, events):
    breakers.reset()
    with FakeOpenAI(local=True) as fake, FakeTavilyServer() as tavily:
        env = {**os.environ, **fake.env(), **tavily.env, "RETRY_MAX_SECONDS": "0", "LLM_BREAKER_FAILURES": "3"}
        settings = load_settings(env={k: str(v) for k, v in env.items()})
        sup = make_sup(corpus, events, settings)
        try:
            run_id = start_analysis(sup, settings, TOPIC, engines="query,insight", paragraphs=2, reflections=1)
            status = sup.wait_run(run_id, 240)
        finally:
            sup.shutdown(5)
    assert status == RunState.COMPLETED_DEGRADED, status
    assert fake.max_concurrency() == 1  # the server really took one request at a time

    opened = [e for e in events.since(0, run_id=run_id, limit=10_000)[0] if e.type == BREAKER_EVENT]
    roles = {e.payload["role"]: e.payload for e in opened}
    # The model is what fails: the role that failed 3 nodes first opened the breaker, and every other
    # role calling the same model (engines, keyword optimiser, host, report) was switched off with it.
    # (Engines interleave, so more than one role may reach its own third failure first.)
    first = {r for r, p in roles.items() if not p["via"]}
    assert first and first <= set(JSON_ROLES) and all(roles[r]["failures"] == 3 for r in first), roles
    assert set(JSON_ROLES) <= set(roles) and all(p["via"] in first for p in roles.values() if p["via"]), roles

    with corpus.session() as s:
        calls = list(s.scalars(select(LlmCall).where(LlmCall.run_id == run_id)))
    for role in first:
        mine = [c for c in calls if c.role == role]
        # 3 failed nodes open the breaker, of 3 + 1 + 1 asks (one ask after a failed node); asks already in
        # flight in the other paragraph may finish, but no node starts after it: far below the run's
        # 2 + 2×(2+2) nodes × 3 asks.
        assert 5 <= len(mine) <= 5 + 2 * 3, (role, len(mine))
    assert all(c.status == "error" and c.error_kind == "parse" for c in calls if c.role in JSON_ROLES)
    # the roles switched off by the model stopped at once: what they had in flight at most
    assert sum(c.role not in first for c in calls) <= 2 * 3 * len(JSON_ROLES), [c.role for c in calls]
    # Nothing came with usage: every call was counted by estimate, failed ones included, and marked.
    assert calls and all(c.tokens_estimated and c.input_tokens > 0 and c.output_tokens > 0 for c in calls)

    run = get_run(corpus, run_id)
    switched = {d["role"]: d for d in run.params["degraded"] if d["reason"] == "llm_switched_off"}
    assert set(JSON_ROLES) <= set(switched) and switched["QUERY_ENGINE"]["engine"] == "query"

    report = latest_report(corpus, run_id)
    assert report is not None and report.json_path
    notices = json.loads(Path(report.json_path).read_text(encoding="utf-8"))["notices"]
    assert all(any(role in n for n in notices) for role in JSON_ROLES), notices
