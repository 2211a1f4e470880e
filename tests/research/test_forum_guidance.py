"""Engines read the forum (ForumGuidance: the host's latest speech, the analyst's latest messages) into
their next search plans and summaries: the offline analyst searches an analyst's question and answers
it, the LLM reasoner puts it in its prompts, and a question posted mid-run changes the next paragraph."""
from __future__ import annotations

import pytest

from core.analysis import start_analysis
from core.forum import Forum, transcript
from core.infra.config import load_settings
from core.research import engine as engine_mod
from core.research.llm_reasoner import LlmReasoner
from core.research.offline import OfflineReasoner
from core.research.offline_forum import question_terms
from core.research.reasoning import NO_GUIDANCE, ForumGuidance, Paragraph
from core.work.jobs import COMPLETED
from core.work.runs import jobs_of
from tests.research.test_engine import TOPIC, make_sup
from tests.research.test_offline import CAR_DOCS, FakeSearch, ctx_for, quoted_sentences, run_paragraph, sources_of

pytestmark = pytest.mark.timeout(180)

QUESTION = "电池成本下降了吗？"
ABSENT = "芯片供应有问题吗？"
MID_RUN_QUESTION = "经销商的压力有多大？"


@pytest.fixture(scope="module")
def reasoner():
    return OfflineReasoner(use_default_classifier=False)


def _paragraph(reasoner, guidance):
    ctx = ctx_for("新能源汽车价格战")
    para = reasoner.plan_structure(ctx, sources_of(CAR_DOCS))[1]
    return run_paragraph(reasoner, ctx, para, FakeSearch(CAR_DOCS, "新能源汽车价格战"), host=guidance)


# --- the offline analyst ------------------------------------------------------------------------

def test_question_terms_drop_the_topic_and_the_asking_words():
    assert question_terms("二手车的保值率怎么样？", ["新能源汽车价格战", "价格战"]) == ["二手车", "保值"]
    assert question_terms("充电桩够不够？是不是太贵", []) == ["充电", "太贵"]
    assert question_terms("新能源汽车价格战怎么样？", ["新能源汽车价格战", "新能源", "汽车", "价格战"]) == []
    assert question_terms("What do dealers think about resale value?", []) == ["dealers", "resale", "value"]


def test_an_analysts_question_is_the_next_search_and_is_answered_from_the_sources(reasoner):
    plain = _paragraph(reasoner, NO_GUIDANCE)
    asked = _paragraph(reasoner, ForumGuidance(human=(QUESTION,)))
    # the same first search (the paragraph's own), then the question's terms instead of the paragraph's gap
    assert asked.searches[0] == plain.searches[0]
    assert asked.searches[1].query == "新能源汽车价格战 电池 成本 下降" != plain.searches[1].query
    assert asked.searches[1].tool == "search_topic_globally" and "分析师" in asked.searches[1].reasoning
    assert asked.searches[2] == plain.searches[1]  # then the paragraph's own gap, as before
    assert "电池" not in plain.summary
    [answer] = [line for line in asked.summary.splitlines() if line.startswith("**回应分析师**")]
    assert "关于「电池成本下降了吗？」，来源中涉及 电池、成本、下降 的说法" in answer
    # the answer quotes a source that says it, with its citation, and the paragraph covers it too
    (quote, n), = [(q, n) for q, n in quoted_sentences(answer)]
    assert "电池成本下降" in quote and any(s.n == n and quote in s.doc.text for s in asked.sources)
    assert "电池" in asked.summary.replace(answer, "")


def test_a_question_the_sources_cannot_answer_is_searched_once_and_said_so(reasoner):
    asked = _paragraph(reasoner, ForumGuidance(human=(ABSENT,)))
    queries = [p.query for p in asked.searches]
    assert queries.count("新能源汽车价格战 芯片 供应") == 1  # searched, found nothing, not searched again
    assert "*补充检索「芯片 供应」：新来源中未发现相关内容。*" in asked.summary
    assert "**回应分析师**：关于「芯片供应有问题吗？」，本段检索到的来源没有涉及 芯片、供应，无法据此回答。" in asked.summary


def test_no_sources_still_answers_the_analyst(reasoner):
    ctx = ctx_for("新能源汽车价格战")
    para = Paragraph(0, "概览", "")
    text = reasoner.first_summary(ctx, para, [], ForumGuidance(host_speech="问题？", human=(QUESTION,)))
    assert "本段没有可用来源，无法回答「电池成本下降了吗？」" in text and "回应主持人" in text


# --- the LLM reasoner ---------------------------------------------------------------------------

class RecordingClient:
    """A fake LLM client: records every prompt, answers each node with the JSON it asks for."""

    role = "INSIGHT_ENGINE"

    def __init__(self):
        self.prompts: dict[str, list[str]] = {}

    def complete_json(self, system, user, *, required_keys, node, run_id=None, job_id=None):
        self.prompts.setdefault(node, []).append(user)
        return {"search_query": "二手车 保值率", "search_tool": "search_topic_globally", "done": False,
                "paragraph_latest_state": "段落 [1]", "updated_paragraph_latest_state": "段落 [1]"}


def test_the_llm_reasoner_puts_the_analysts_messages_in_every_prompt():
    client = RecordingClient()
    r = LlmReasoner(client)
    ctx = ctx_for("新能源汽车价格战")
    para = Paragraph(0, "舆情概览", "讨论规模")
    srcs = sources_of(CAR_DOCS[:3])
    g = ForumGuidance(host_speech="**主持人**：请 Insight Engine 补充情绪数据？", human=(QUESTION, "车主维权的诉求？"))
    r.plan_first_search(ctx, para, g)
    r.first_summary(ctx, para, srcs, g)
    r.plan_reflection(ctx, para, "段落 [1]", srcs, g)
    r.reflection_summary(ctx, para, "段落 [1]", srcs, srcs, g)
    r.first_summary(ctx, para, srcs, NO_GUIDANCE)
    for node in ("FirstSearchNode", "FirstSummaryNode", "ReflectionNode", "ReflectionSummaryNode"):
        prompt = client.prompts[node][0]
        assert QUESTION in prompt and "车主维权的诉求？" in prompt, node
        assert "human analyst" in prompt
    for node in ("FirstSummaryNode", "ReflectionSummaryNode"):  # summaries answer them, and the host
        assert "Answer them explicitly" in client.prompts[node][0] and "say so plainly" in client.prompts[node][0]
        assert "请 Insight Engine 补充情绪数据" in client.prompts[node][0]
    assert "请 Insight Engine 补充情绪数据" not in client.prompts["FirstSearchNode"][0]
    assert QUESTION not in client.prompts["FirstSummaryNode"][1] and "human analyst" not in client.prompts["FirstSummaryNode"][1]


# --- mid-run: a question posted between paragraphs changes the next one ----------------------------

def _run_with_question(db, events, monkeypatch, question: str | None) -> dict:
    """An offline Insight run of 2 paragraphs on the demo corpus, one at a time; ``question`` is posted by the analyst
    when paragraph 1 starts (after paragraph 0 is done), through the forum as the page does."""
    posted: list[int] = []

    class Hooked(OfflineReasoner):
        def plan_first_search(self, ctx, paragraph, guidance=NO_GUIDANCE):
            if question and paragraph.index == 1 and not posted:
                posted.append(Forum(db, events, None).post_human(ctx.run_id, question).id)
            return super().plan_first_search(ctx, paragraph, guidance)

    real = engine_mod.services_for

    def services_for(ctx, engine):
        s = real(ctx, engine)
        s.reasoner, s.max_parallel = Hooked(), 1  # paragraphs in order: 0 is done before 1 starts
        return s

    monkeypatch.setattr(engine_mod, "services_for", services_for)
    settings = load_settings()
    sup = make_sup(db, events, settings)
    try:
        run_id = start_analysis(sup, settings, TOPIC, engines="insight", paragraphs=2, reflections=1, offline=True)
        assert sup.wait_run(run_id, 150) == COMPLETED
    finally:
        sup.shutdown(5)
    assert len(posted) == (1 if question else 0)
    [job] = [j for j in jobs_of(db, run_id) if j.kind == "insight"]
    return {"run_id": run_id, "paragraphs": job.checkpoint["paragraphs"], "report": job.result["report_md"]}


def test_a_question_posted_mid_run_changes_the_next_paragraphs_searches_and_text(db, events, monkeypatch):
    from core.corpus.demo import generate_demo_corpus

    generate_demo_corpus(db, posts=600)
    without = _run_with_question(db, events, monkeypatch, None)
    asked = _run_with_question(db, events, monkeypatch, MID_RUN_QUESTION)
    # paragraph 0 ended before the question: the same searches and text
    assert asked["paragraphs"]["0"]["searches"] == without["paragraphs"]["0"]["searches"]
    assert asked["paragraphs"]["0"]["summary"] == without["paragraphs"]["0"]["summary"]
    # paragraph 1 searched the question's terms and answers it
    before, after = without["paragraphs"]["1"], asked["paragraphs"]["1"]
    queries = [s["query"] for s in after["searches"]]
    assert before["searches"] != after["searches"]
    assert "新能源汽车价格战 经销商 压力" in queries, queries
    assert not any("经销商" in s["query"] for s in before["searches"])
    assert after["summary"] != before["summary"] and "回应分析师" not in before["summary"]
    [answer] = [line for line in after["summary"].splitlines() if line.startswith("**回应分析师**")]
    assert answer.startswith("**回应分析师**：关于「经销商的压力有多大？」，来源中涉及 经销商") and answer.endswith("]")
    assert "经销商" in after["summary"].replace(answer, "")  # the paragraph itself now covers it
    assert answer in asked["report"]
    # the question is in the run's forum as the analyst's
    [h] = [m for m in transcript(db, asked["run_id"]) if m.source == "HUMAN"]
    assert (h.type, h.sender, h.content) == ("human", "Analyst", MID_RUN_QUESTION)
    # and the paragraph records that it read it (its provenance), paragraph 0 does not
    assert h.id in after["read"] and h.id not in (asked["paragraphs"]["0"].get("read") or [])


def test_an_llm_engine_gets_the_analysts_question_in_its_prompts(db, events):
    """End to end through the fake endpoint: posted while the run is queued, in every later prompt."""
    from core.runtime import build_handlers
    from core.supervisor import Supervisor
    from tests.conftest import fast_config
    from tests.fakes.openai_server import FakeOpenAI
    from tests.fakes.search_servers import FakeTavilyServer
    from tests.research.test_engine import llm_responder, llm_settings

    with FakeOpenAI(responder=llm_responder) as fake, FakeTavilyServer() as tavily:
        settings = llm_settings(fake, tavily)
        sup = Supervisor(db, events, fast_config(max_workers=4), handlers=build_handlers())
        sup.settings = settings
        run_id = start_analysis(sup, settings, TOPIC, engines="query", paragraphs=2, reflections=1)
        Forum(db, events, None).post_human(run_id, QUESTION)  # queued: no worker has started yet
        sup.start()
        try:
            assert sup.wait_run(run_id, 120) == COMPLETED
        finally:
            sup.shutdown(5)
        by_node: dict[str, list[str]] = {}
        for r in fake.requests:
            node = ("summary" if "paragraph_latest_state" in r.user else "reflection" if "still missing" in r.user
                    else "search" if '"search_query"' in r.user else "other")
            by_node.setdefault(node, []).append(r.user)
    for node in ("search", "summary", "reflection"):
        assert by_node[node] and all(QUESTION in u for u in by_node[node]), node
    assert not any(QUESTION in u for u in by_node["other"])  # structure and formatting: not steered
