"""The research engines end to end: offline on a corpus, and with an LLM and web search on fakes."""
from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest

from core.analysis import TopicError, clean_topic, start_analysis
from core.infra.config import load_settings
from core.research.engine import ENGINES, SOCIAL_PLATFORMS, VISUAL_PLATFORMS
from core.research.results import stored_sources
from core.corpus.importers import import_records
from core.work.jobs import COMPLETED, INSUFFICIENT_DATA
from core.infra.logs import setup_logging
from core.infra.models import LlmCall
from core.work.runs import get_run, jobs_of
from core.supervisor import Supervisor
from core.runtime import build_handlers
from tests.conftest import fast_config, wait_for
from tests.fakes.openai_server import FakeOpenAI, FakeReply
from tests.fakes.search_servers import FakeBochaServer, FakeTavilyServer

pytestmark = pytest.mark.timeout(180)

TOPIC = "新能源汽车价格战"


def corpus_records():
    """A small corpus of our own: two topics, several platforms, posts and comments, engagement."""
    rows = []
    texts = [
        ("weibo", "比亚迪宣布全系降价，新能源汽车价格战愈演愈烈，老车主纷纷表示不满。", 1200, 300, 80),
        ("weibo", "新能源汽车降价潮下，消费者持币观望，经销商库存压力巨大。", 300, 40, 12),
        ("douyin", "实拍4S店：新能源汽车价格战让门店客流翻倍，销售忙到停不下来。", 5000, 900, 300),
        ("bilibili", "深度解析新能源汽车价格战：电池成本下降是降价底气。", 2100, 350, 90),
        ("zhihu", "如何看待新能源汽车价格战？行业洗牌不可避免，小品牌压力最大。", 800, 120, 30),
        ("xhs", "刚提车就降价两万，新能源汽车价格战让人心累，保值率太低了。", 640, 210, 15),
        ("news", "多家车企跟进降价 新能源汽车价格战进入白热化阶段", 150, 20, 40),
        ("tieba", "新能源汽车价格战，二手车市场保值率普遍下跌，卖车亏不少。", 90, 60, 3),
        ("weibo", "武汉大学樱花季开放预约，游客赞叹校园美景，舆情整体正面。", 900, 100, 50),
        ("kuaishou", "武汉大学樱花大道人山人海，预约制度获得好评。", 300, 40, 10),
    ]
    for i, (platform, content, likes, comments, shares) in enumerate(texts):
        rows.append({"platform": platform, "post_id": f"p{i}", "title": content[:18] if platform == "news" else "",
                     "content": content, "author": f"user{i}", "publish_time": f"2025-03-{1 + i:02d} 10:00:00",
                     "likes": likes, "comments": comments, "shares": shares, "views": likes * 20,
                     "url": f"https://example.test/{platform}/{i}", "keyword": "新能源汽车" if i < 8 else "武汉大学"})
    rows.append({"platform": "weibo", "post_id": "c1", "kind": "comment", "parent_id": "p0",
                 "content": "新能源汽车价格战伤害了老车主，强烈要求厂家保价补偿！", "publish_time": "2025-03-02 11:00:00",
                 "likes": 50})
    return rows


@pytest.fixture
def corpus(db):
    report = import_records(db, corpus_records(), source="test")
    assert report.imported == 11
    return db


def engine_job(db, run_id, kind=None):
    """The run's one engine job (analysis runs also hold the forum monitor)."""
    (job,) = [j for j in jobs_of(db, run_id) if j.kind in (kind,) or (kind is None and j.kind in ENGINES)]
    return job


def make_sup(db, events, settings, **overrides):
    sup = Supervisor(db, events, fast_config(max_workers=4, **overrides), handlers=build_handlers())
    sup.settings = settings
    return sup.start()


def test_topics_are_validated_with_clear_messages():
    with pytest.raises(TopicError, match="Enter a topic"):
        clean_topic("   \n\t ")
    with pytest.raises(TopicError, match="50,000 characters"):
        clean_topic("舆" * 50_000)
    assert clean_topic("新能源\x00汽车\x1b价格战\u200b  ") == "新能源 汽车 价格战"


def test_offline_run_of_three_engines_completes_with_cited_reports(corpus, events, tmp_path):
    settings = load_settings()
    setup_logging(settings.log_dir, console=False)
    sup = make_sup(corpus, events, settings)
    try:
        run_id = start_analysis(sup, settings, TOPIC, paragraphs=3, reflections=1, offline=True)
        assert sup.wait_run(run_id, 120) == COMPLETED
    finally:
        sup.shutdown(5)
    run = get_run(corpus, run_id)
    assert run.mode == "offline"
    jobs = {j.name: j for j in jobs_of(corpus, run_id) if j.kind in ENGINES}
    assert set(jobs) == {"query", "media", "insight"}
    for name, job in jobs.items():
        result = job.result
        assert job.status == COMPLETED and result["mode"] == "offline"
        assert len(result["paragraphs"]) == 3
        assert "离线分析" in result["report_md"]
        cited = {n for p in result["paragraphs"] for n in p["sources"]}
        assert cited and max(cited) <= result["n_sources"]
        assert all(p["summary"] for p in result["paragraphs"])
    # Each engine reads its own slice: Media video/image platforms, Query news and web-like ones,
    # Insight social posts and comments -- so no source is cited by two engines
    srcs = {name: [r.to_dict() for r in stored_sources(corpus, job.id, job.checkpoint)] for name, job in jobs.items()}
    assert all(srcs.values()) and all("sources" not in job.checkpoint for job in jobs.values())  # stored once, apart
    assert all(len(srcs[name]) == job.result["n_sources"] for name, job in jobs.items())
    platforms = {name: {s["platform"] for s in srcs[name]} for name in jobs}
    assert platforms["media"] <= set(VISUAL_PLATFORMS) and platforms["media"]
    assert platforms["query"] <= {"news", "zhihu"} and platforms["query"]
    assert all(s["platform"] in SOCIAL_PLATFORMS or s["kind"] == "comment" for s in srcs["insight"])
    ids = [{s["doc_id"] for s in srcs[name]} for name in jobs]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    # Every engine's sources carry a sentiment from the one scorer, and only posts about the topic
    for name in jobs:
        assert all(s["sentiment"] is not None for s in srcs[name])
        assert all("武汉大学" not in s["content"] for s in srcs[name])
    # the engine log has one summary-node record per paragraph state, tagged with the run
    lines = (settings.log_dir / "insight.log").read_text(encoding="utf-8").splitlines()
    summaries = [json.loads(l.split("清理后的输出: ", 1)[1]) for l in lines
                 if "[FirstSummaryNode]" in l or "[ReflectionSummaryNode]" in l]
    ours = [s for s in summaries if s["run_id"] == run_id]
    assert len([s for s in ours if "paragraph_latest_state" in s]) == 3
    assert {s["paragraph"] for s in ours} == {0, 1, 2}


def llm_responder(req):
    """Answers each node's prompt with the JSON it asks for."""
    user = req.user
    if '"paragraphs"' in user:
        return {"paragraphs": [{"title": f"第{i + 1}段：价格战的一个侧面", "content": "覆盖降价与消费者反应"}
                               for i in range(5)]}
    if '"paragraph_latest_state"' in user:
        return {"paragraph_latest_state": "多家车企降价，消费者观望 [1]。"}
    if '"updated_paragraph_latest_state"' in user:
        return {"updated_paragraph_latest_state": "多家车企降价 [1]，二手车保值率下跌 [2]。"}
    if "still missing" in user:
        return {"search_query": "二手车 保值率", "search_tool": "basic_search_news", "reasoning": "缺少二手车", "done": False}
    if '"search_query"' in user:
        return {"search_query": "新能源汽车 降价", "search_tool": "basic_search_news", "reasoning": "先看新闻"}
    if '"overview"' in user:
        return {"title": "新能源汽车价格战观察", "overview": "价格战持续。"}
    return "{}"


def llm_settings(fake: FakeOpenAI, tavily: FakeTavilyServer, **extra):
    env = {**os.environ, **fake.env("QUERY_ENGINE"), **tavily.env, **extra}
    return load_settings(env={k: str(v) for k, v in env.items()})


def test_llm_run_parallelises_paragraphs_and_records_every_call(db, events):
    latency = 0.25
    with FakeOpenAI(responder=llm_responder, latency=latency) as fake, FakeTavilyServer() as tavily:
        settings = llm_settings(fake, tavily, SHOAL_LLM_CONCURRENCY=5)
        sup = make_sup(db, events, settings)
        try:
            run_id = start_analysis(sup, settings, TOPIC, engines="query", paragraphs=5, reflections=2)
            assert sup.wait_run(run_id, 120) == COMPLETED
        finally:
            sup.shutdown(5)
        job = engine_job(db, run_id)
        result = job.result
        assert result["mode"] == "llm" and result["provider"] == "tavily"
        assert len(result["paragraphs"]) == 5
        assert result["report_md"].startswith("# 新能源汽车价格战观察")
        calls = fake.requests
        sequential = 2 + 5 * (2 + 2 * 2)  # BettaFish's count of round trips for P=5, R=2
        assert len(calls) == sequential
        # Parallel: paragraphs overlap, bounded by the per-provider limit.
        assert 3 <= fake.max_concurrency() <= 5
        # From the calls' own timestamps: each paragraph's calls span a time window; run in sequence
        # (BettaFish) those windows would not overlap at all, run in parallel every one overlaps the
        # others. This holds however slow a loaded machine makes the work between calls.
        windows = {}
        for r in calls:
            for i in range(1, 6):
                if f"第{i}段" in r.user:
                    lo, hi = windows.get(i, (r.start, r.end))
                    windows[i] = (min(lo, r.start), max(hi, r.end))
        assert len(windows) == 5
        for i, (lo, hi) in windows.items():
            overlapping = [j for j, (lo2, hi2) in windows.items() if j != i and lo2 < hi and lo < hi2]
            assert len(overlapping) == 4, (i, windows)
        with db.session() as s:
            rows = s.query(LlmCall).filter(LlmCall.run_id == run_id).all()
        assert len(rows) == sequential
        assert all(r.role == "QUERY_ENGINE" and r.status == "ok" and r.input_tokens > 0 and r.output_tokens > 0
                   and r.trace_id.startswith(get_run(db, run_id).trace_id) and r.ttft_ms is not None for r in rows)
        assert {r.node for r in rows} >= {"ReportStructureNode", "FirstSearchNode", "FirstSummaryNode",
                                           "ReflectionNode", "ReflectionSummaryNode", "ReportFormattingNode"}


def test_an_llm_that_keeps_returning_invalid_json_falls_back_visibly(db, events, corpus):
    def responder(req):
        if '"paragraph_latest_state"' in req.user:
            return "this is not json at all"
        return llm_responder(req)

    with FakeOpenAI(responder=responder) as fake, FakeTavilyServer() as tavily:
        settings = llm_settings(fake, tavily)
        sup = make_sup(db, events, settings)
        try:
            run_id = start_analysis(sup, settings, TOPIC, engines="query", paragraphs=2, reflections=0)
            # every job completed, but two nodes fell back: the run says so (core.work.outcomes)
            assert sup.wait_run(run_id, 120) == "completed_degraded"
        finally:
            sup.shutdown(5)
    assert [d["reason"] for d in get_run(db, run_id).params["degraded"]] == ["llm_unparsable"]
    job = engine_job(db, run_id)
    assert job.result["fallbacks"] == 2 and "offline fallback" in job.result["mode"]
    assert job.result["fallback_kinds"] == {"parse": 2}
    assert all(p["summary"] for p in job.result["paragraphs"])
    fallbacks = [e for e in events.since(0, run_id=run_id, limit=10_000)[0] if e.type == "engine.fallback"]
    assert len(fallbacks) == 2 and all(e.payload["node"] == "FirstSummaryNode" for e in fallbacks)
    with db.session() as s:
        traces = [t for (t,) in s.query(LlmCall.trace_id).filter(LlmCall.run_id == run_id,
                                                                   LlmCall.error_kind == "parse")]
    # Three asks for each paragraph's summary, unless it started after the other paragraph's had
    # failed: the breaker then gives it one ask (core/llm/breaker.py). Which happens depends on timing.
    assert sorted(Counter(traces).values()) in ([3, 3], [1, 3])


def test_a_search_api_returning_garbage_is_visible_and_the_run_ends_insufficient_data(db, events):
    # With no corpus and a web search that answers garbage, nothing is known about the topic: the run
    # says so (and why) instead of writing an analysis of nothing.
    with FakeOpenAI(responder=llm_responder) as fake, FakeTavilyServer() as tavily:
        tavily.fail("garbage", times=1000)
        settings = llm_settings(fake, tavily)
        sup = make_sup(db, events, settings)
        try:
            run_id = start_analysis(sup, settings, TOPIC, engines="query", paragraphs=2, reflections=1)
            assert sup.wait_run(run_id, 120) == INSUFFICIENT_DATA
        finally:
            sup.shutdown(5)
    run = get_run(db, run_id)
    assert run.params["coverage"]["web_searched"] and run.params["coverage"]["web_errors"]
    assert "tavily" in run.error and "TAVILY_API_KEY" in run.error
    assert engine_job(db, run_id).status == "cancelled"


def test_an_interrupted_engine_resumes_without_redoing_finished_paragraphs(db, events):
    with FakeOpenAI(responder=llm_responder, latency=0.1) as fake, FakeTavilyServer() as tavily:
        settings = llm_settings(fake, tavily, SHOAL_LLM_CONCURRENCY=1)  # one paragraph at a time
        first = make_sup(db, events, settings, auto_resume=False)
        run_id = start_analysis(sup := first, settings, TOPIC, engines="query", paragraphs=4, reflections=1)
        job_id = f"{run_id}-query"

        def done_paragraphs():
            from core.work.runs import get_job
            cp = get_job(db, job_id).checkpoint or {}
            return [k for k, v in cp.get("paragraphs", {}).items() if v.get("done")]

        deadline = time.monotonic() + 60
        while len(done_paragraphs()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        sup.shutdown(5)
        finished_before = set(done_paragraphs())
        assert len(finished_before) >= 2
        calls_before = len(fake.requests)
        second = make_sup(db, events, settings)
        try:
            assert second.wait_run(run_id, 120) == COMPLETED
        finally:
            second.shutdown(5)
        job = engine_job(db, run_id)
        assert job.attempt == 2 and len(job.result["paragraphs"]) == 4
        # the finished paragraphs were not asked for again: only the rest (and formatting) were
        redone_titles = [r.user for r in fake.requests[calls_before:] if '"paragraph_latest_state"' in r.user]
        assert len(redone_titles) <= 4 - len(finished_before)


def test_cancel_stops_an_engine_mid_run(db, events, corpus):
    with FakeOpenAI(responder=llm_responder, latency=0.3) as fake, FakeTavilyServer() as tavily:
        settings = llm_settings(fake, tavily)
        sup = make_sup(db, events, settings)
        try:
            run_id = start_analysis(sup, settings, TOPIC, engines="query", paragraphs=5, reflections=2)
            wait_for(lambda: len(fake.requests) >= 3, what="the engine to be mid-run")
            # A generous timeout: what is checked is that the engine saw the cancel and stopped by itself
            # (not abandoned at the timeout), which a loaded machine cannot change.
            assert sup.cancel_run(run_id, timeout=60) == "cancelled"
        finally:
            sup.shutdown(5)
        reasons = [e.payload.get("reason", "") for e in events.since(0, run_id=run_id)[0] if e.type == "job.cancelled"]
        assert reasons and not any("cancel timeout" in r for r in reasons)
        assert len(fake.requests) < 32


def test_insight_keyword_optimiser_adds_phrasings_in_llm_mode(db, events, corpus):
    def responder(req):
        if '"keywords"' in req.user:
            return {"keywords": ["提车 降价", "二手车 保值率"]}
        return llm_responder(req)

    with FakeOpenAI(responder=responder) as fake:
        settings = load_settings(env={**os.environ, **fake.env("INSIGHT_ENGINE", "KEYWORD_OPTIMIZER")})
        setup_logging(settings.log_dir, console=False)
        sup = make_sup(db, events, settings)
        try:
            run_id = start_analysis(sup, settings, TOPIC, engines="insight", paragraphs=1, reflections=0)
            assert sup.wait_run(run_id, 120) == COMPLETED
        finally:
            sup.shutdown(5)
    with db.session() as s:
        optimiser_calls = s.query(LlmCall).filter(LlmCall.run_id == run_id, LlmCall.role == "KEYWORD_OPTIMIZER").all()
    assert optimiser_calls and all(c.node == "KeywordOptimizerNode" for c in optimiser_calls)
    searched = (settings.log_dir / "knowledge_query.log").read_text(encoding="utf-8")
    assert "二手车 保值率" in searched and "提车 降价" in searched, "each phrasing was searched too"


def test_a_checkpoint_stores_each_source_once_and_an_older_inline_checkpoint_still_resumes(corpus, events):
    """Sources go to job_items once each (the checkpoint keeps only their count); a checkpoint written
    by an older version, with the sources inline, resumes with the same numbers and is then stored
    the new way."""
    from sqlalchemy import delete, func, select, update

    from core.infra.models import Job, JobItem
    from core.work.jobs import FAILED

    settings = load_settings()
    sup = make_sup(corpus, events, settings)
    try:
        run_id = start_analysis(sup, settings, TOPIC, engines="insight", paragraphs=2, reflections=1, offline=True)
        assert sup.wait_run(run_id, 120) == COMPLETED
        job = engine_job(corpus, run_id)
        n = job.result["n_sources"]
        with corpus.session() as s:
            assert s.scalar(select(func.count()).select_from(JobItem).where(JobItem.job_id == job.id)) == n > 0
        assert "sources" not in job.checkpoint and job.checkpoint["sources_stored"] == n
        # written behind the paragraphs, and all written before the job ended: every paragraph, the report
        assert [p.get("done") for p in job.checkpoint["paragraphs"].values()] == [True, True]
        assert job.checkpoint["report_md"] == job.result["report_md"]
        stored = [r.to_dict() for r in stored_sources(corpus, job.id, job.checkpoint)]
        # Rewrite it as an older version left it: sources inline, the second paragraph unfinished.
        old_cp = {k: v for k, v in job.checkpoint.items() if k not in ("sources_stored", "report_md")}
        old_cp["sources"] = stored
        old_cp["paragraphs"]["1"] = {"summary": "", "sources": [], "searches": [], "reflections_done": 0}
        with corpus.session() as s:
            s.execute(delete(JobItem).where(JobItem.job_id == job.id))
            # failed, not interrupted: the running supervisor's auto-resume takes interrupted jobs back
            # itself, and racing it made resume_run find nothing to resume now and then
            s.execute(update(Job).where(Job.id == job.id).values(status=FAILED, checkpoint=old_cp, result=None))
        assert sup.resume_run(run_id) == [job.id]
        assert sup.wait_run(run_id, 120) == COMPLETED
    finally:
        sup.shutdown(5)
    job = engine_job(corpus, run_id)
    again = [r.to_dict() for r in stored_sources(corpus, job.id, job.checkpoint)]
    assert "sources" not in job.checkpoint and again[:len(stored)] == stored  # same numbers, now in job_items
    assert len(job.result["paragraphs"]) == 2 and all(p["summary"] for p in job.result["paragraphs"])
    assert job.attempt == 2
