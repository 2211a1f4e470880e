"""The analyst's plan review: the preview of each engine's paragraphs (core.research.plan_preview), a run
started with an edited plan (core.analysis.start_analysis(plan=...)), and plans that are refused."""
from __future__ import annotations

import json

import pytest

from core.analysis import start_analysis
from core.infra.config import load_settings
from core.infra.models import Run
from core.research import plan_preview
from core.research.plan import (MAX_BRIEF_CHARS, MAX_TITLE_CHARS, EnginePlan, PlanError, RunPlan, parse_plan,
                                planned_paragraphs)
from core.research.reasoning import Paragraph
from core.work.jobs import COMPLETED
from core.work.runs import get_job, get_run
from tests.research.test_engine import TOPIC, corpus, make_sup  # noqa: F401 - corpus is a fixture

pytestmark = pytest.mark.timeout(180)
ENGINES = ("query", "media", "insight")


def structure(db, run_id: str, engine: str) -> list[tuple[str, str]]:
    cp = get_job(db, f"{run_id}-{engine}").checkpoint
    return [(p["title"], p["brief"]) for p in cp["structure"]]


def test_the_preview_is_the_plan_the_engines_make_offline(corpus, events):
    settings = load_settings()
    preview = plan_preview.preview_plan(corpus, settings, f"  {TOPIC} ", ENGINES, paragraphs=3, offline=True)
    assert preview.topic == TOPIC and [e.engine for e in preview.engines] == list(ENGINES)
    for e in preview.engines:
        assert e.error == "" and e.mode == "offline" and e.sources > 0 and len(e.paragraphs) == 3, e
        assert [p.index for p in e.paragraphs] == [0, 1, 2] and all(p.title and p.brief for p in e.paragraphs)
    sup = make_sup(corpus, events, settings)
    try:
        run_id = start_analysis(sup, settings, TOPIC, ENGINES, paragraphs=3, reflections=0, offline=True)
        assert sup.wait_run(run_id, 120) == COMPLETED
    finally:
        sup.shutdown(5)
    for e in preview.engines:
        assert structure(corpus, run_id, e.engine) == [(p.title, p.brief) for p in e.paragraphs], e.engine
    assert "plan" not in get_run(corpus, run_id).params  # no review: nothing stored, nothing waited for


def test_a_run_started_with_an_edited_plan_writes_exactly_those_paragraphs(corpus, events):
    settings = load_settings()
    preview = plan_preview.preview_plan(corpus, settings, TOPIC, "query,insight", paragraphs=3, offline=True)
    query = preview.engine("query")
    # the analyst renames the first paragraph, rewrites its intent, drops the second and adds one
    edited = (Paragraph(0, "老车主的维权诉求", "车主要求保价补偿的声音有多大，平台之间有何不同"),
              query.paragraphs[2],
              Paragraph(9, "二手车保值率", "价格战对二手车残值的影响"))
    plan = RunPlan(TOPIC, (EnginePlan("query", edited),))  # insight is left to plan itself
    sup = make_sup(corpus, events, settings)
    try:
        run_id = start_analysis(sup, settings, TOPIC, "query,insight", paragraphs=3, reflections=1, offline=True,
                                plan=plan)
        assert sup.wait_run(run_id, 120) == COMPLETED
    finally:
        sup.shutdown(5)
    want = [(p.title, p.brief) for p in edited]
    assert get_run(corpus, run_id).params["plan"] == {
        "query": [{"index": i, "title": t, "brief": b} for i, (t, b) in enumerate(want)]}
    assert structure(corpus, run_id, "query") == want
    job = get_job(corpus, f"{run_id}-query")
    assert sorted(job.checkpoint["paragraphs"]) == ["0", "1", "2"]
    assert all(s["done"] and s["summary"] for s in job.checkpoint["paragraphs"].values())
    assert [(p["index"], p["title"]) for p in job.result["paragraphs"]] == [(i, t) for i, (t, _) in enumerate(want)]
    for title, _ in want:
        assert title in job.result["report_md"]
    # the engine the plan left out planned its own paragraphs, as the preview showed
    assert structure(corpus, run_id, "insight") == [(p.title, p.brief) for p in preview.engine("insight").paragraphs]


def test_a_plan_in_its_json_form_round_trips():
    plan = RunPlan(TOPIC, (EnginePlan("media", (Paragraph(0, "短视频热度", "抖音和B站上的讨论"),), "offline", "corpus", 4),
                           EnginePlan("query", (), "llm", "tavily", 0, error="the LLM timed out")))
    data = json.loads(json.dumps(plan.to_json(), ensure_ascii=False))
    assert data["engines"] == {"media": [{"title": "短视频热度", "brief": "抖音和B站上的讨论"}]}
    assert data["planned_by"]["query"] == {"mode": "llm", "provider": "tavily", "sources": 0,
                                           "error": "the LLM timed out"}
    back = parse_plan(data, TOPIC, ENGINES)
    assert back.planned == (EnginePlan("media", (Paragraph(0, "短视频热度", "抖音和B站上的讨论"),)),)
    # the bare mapping, "intent" for "brief", spaces collapsed, empty editor rows left out
    bare = parse_plan({"insight": [{"title": "  情绪 \n走势 ", "intent": "正负面"}, {"title": "", "intent": None},
                                   ["平台差异", ""]]}, TOPIC, ENGINES)
    assert bare.to_params() == {"insight": [{"index": 0, "title": "情绪 走势", "brief": "正负面"},
                                            {"index": 1, "title": "平台差异", "brief": ""}]}
    assert planned_paragraphs({"plan": bare.to_params()}, "insight")[1] == Paragraph(1, "平台差异", "")
    assert planned_paragraphs({"plan": bare.to_params()}, "query") is None and planned_paragraphs({}, "query") is None


@pytest.mark.parametrize("raw, engines, message", [
    ({"search": [{"title": "x"}]}, ENGINES, "unknown engine 'search'"),
    ({"media": [{"title": "x"}]}, ("query",), "media engine, which this run does not include"),
    ({"query": []}, ENGINES, "query: the plan has no paragraphs"),
    ({"query": [{"title": " ", "brief": ""}]}, ENGINES, "query: the plan has no paragraphs"),
    ({"query": [{"title": "a"}, {"title": "", "brief": "why"}]}, ENGINES, "paragraph 2 has an intent but no title"),
    ({"query": [{"title": "长" * (MAX_TITLE_CHARS + 1)}]}, ENGINES, f"keep it under {MAX_TITLE_CHARS}"),
    ({"query": [{"title": "a", "brief": "b" * (MAX_BRIEF_CHARS + 1)}]}, ENGINES, f"keep it under {MAX_BRIEF_CHARS}"),
    ({"query": [{"title": f"t{i}"} for i in range(13)]}, ENGINES, "13 paragraphs; an engine writes at most 12"),
    ({"query": "title"}, ENGINES, "not a list"),
    ({"query": [42]}, ENGINES, "paragraph 1 is not a title and an intent"),
    ({"topic": "武汉大学", "engines": {"query": [{"title": "a"}]}}, ENGINES, "made for the topic '武汉大学'"),
    (["query"], ENGINES, "a plan is a JSON object"),
])
def test_an_invalid_plan_is_refused_with_a_clear_message(raw, engines, message):
    with pytest.raises(PlanError) as err:
        parse_plan(raw, TOPIC, engines)
    assert message in str(err.value)


def test_start_analysis_refuses_an_invalid_plan_before_queueing_anything(corpus, events):
    settings = load_settings()
    sup = make_sup(corpus, events, settings)
    try:
        with pytest.raises(ValueError, match="paragraph 1 has an intent but no title"):
            start_analysis(sup, settings, TOPIC, "query", offline=True, plan={"query": [{"title": "", "brief": "x"}]})
    finally:
        sup.shutdown(5)
    with corpus.session() as s:
        assert s.query(Run).count() == 0


def test_a_failing_engine_is_said_in_the_preview_and_the_others_still_plan(corpus, monkeypatch):
    from core.research import offline

    real = offline.OfflineReasoner.plan_structure

    def flaky(self, ctx, overview):
        if ctx.engine == "media":
            raise RuntimeError("the structure call failed (api_key=sk-secret123456789)")
        return real(self, ctx, overview)

    monkeypatch.setattr(offline.OfflineReasoner, "plan_structure", flaky)
    preview = plan_preview.preview_plan(corpus, load_settings(), TOPIC, ENGINES, paragraphs=2, offline=True)
    media = preview.engine("media")
    assert media.paragraphs == () and "structure call failed" in media.error and "sk-secret" not in media.error
    assert [len(preview.engine(e).paragraphs) for e in ("query", "insight")] == [2, 2]
    assert [e.engine for e in preview.planned] == ["query", "insight"]


def test_nothing_on_topic_is_a_plan_of_no_paragraphs(corpus):
    preview = plan_preview.preview_plan(corpus, load_settings(), "量子计算机芯片", "query", paragraphs=2, offline=True)
    (query,) = preview.engines
    assert query.paragraphs == () and query.sources == 0 and query.error == "" and query.nothing_on_topic
    assert not EnginePlan("query", (), error="the LLM timed out").nothing_on_topic


def test_in_llm_mode_each_engine_makes_one_structure_call_and_a_failure_is_said(corpus):
    import os

    from tests.fakes.openai_server import FakeOpenAI, FakeReply
    from tests.research.test_engine import llm_responder

    def responder(req):
        if "Insight engine" in req.system:
            return FakeReply.error(400, "this model does not exist")
        return llm_responder(req)

    with FakeOpenAI(responder=responder) as fake:
        env = {**os.environ, **fake.env("QUERY_ENGINE", "INSIGHT_ENGINE")}
        settings = load_settings(env={k: str(v) for k, v in env.items()})
        preview = plan_preview.preview_plan(corpus, settings, TOPIC, "query,insight", paragraphs=3)
        requests = fake.requests
    query, insight = preview.engines
    assert (query.mode, query.provider, query.error) == ("llm", "corpus", "")
    assert [p.title for p in query.paragraphs] == [f"第{i}段：价格战的一个侧面" for i in (1, 2, 3)]
    assert insight.mode == "llm" and insight.paragraphs == () and "does not exist" in insight.error
    assert "sk-fake" not in insight.error
    # one structure call per engine (an error a retry cannot fix is not retried)
    assert sorted("Insight engine" in r.system for r in requests) == [False, True]
    assert all('"paragraphs"' in r.user for r in requests)
