"""Full provenance (issue 15, part 5): each report section → the engine paragraphs it was fed → the
forum messages and host rounds that shaped them → their LLM calls and trace ids, as ids in the JSON
that resolve to real rows, and as anchors in the HTML whose every in-document link lands."""
from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select

from core import report as rep
from core.analysis import start_analysis
from core.corpus.importers import import_records
from core.forum import transcript
from core.infra.config import load_settings
from core.infra.db import open_database
from core.infra.events import EventLog
from core.infra.models import ForumMessage, Job, LlmCall
from core.reporting.provenance import ProvenanceGraph, monitor_base, provenance_view, trace_link
from core.reporting.render import preview_parts
from core.reporting.sanitise import sanitize_html
from core.reporting.types import ReportDocument
from core.work.jobs import COMPLETED
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.search_servers import FakeTavilyServer
from core.runtime import build_handlers
from core.supervisor import Supervisor
from tests.conftest import fast_config
from tests.research.test_engine import TOPIC, corpus_records, llm_responder

pytestmark = pytest.mark.timeout(240)

ENGINE_NODES = {"ReportStructureNode", "FirstSearchNode", "FirstSummaryNode", "ReflectionNode",
                "ReflectionSummaryNode", "ReportFormattingNode"}


def make_sup(db, events, settings) -> Supervisor:
    sup = Supervisor(db, events, fast_config(max_workers=6), handlers=build_handlers())  # engines, host, report
    sup.settings = settings
    return sup.start()


@pytest.fixture
def sqlite_db(tmp_path):
    database = open_database(f"sqlite:///{tmp_path / 'prov.db'}")
    assert database.ok, database.error
    import_records(database, corpus_records(), source="test")
    yield database
    database.dispose()


class Anchors(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"])
        if tag == "a" and a.get("href") is not None:
            self.hrefs.append(a["href"])

    handle_startendtag = handle_starttag


def anchors(html_text: str) -> Anchors:
    p = Anchors()
    p.feed(html_text)
    p.close()
    return p


def assert_links_land(html_text: str) -> Anchors:
    a = anchors(html_text)
    ids = set(a.ids)
    assert len(ids) == len(a.ids), "duplicate ids"
    dangling = [h for h in a.hrefs if h.startswith("#") and h[1:] not in ids]
    assert dangling == []
    return a


def report_of(db, run_id: str) -> tuple[rep.ReportView, dict, str]:
    (view,) = rep.list_reports(db, run_id)
    assert view.status == "completed", view.error
    text = Path(view.json_path).read_text(encoding="utf-8")
    return view, ReportDocument.from_json(text).to_dict(), Path(view.html_path).read_text(encoding="utf-8")


def assert_graph_resolves(db, run_id: str, d: dict) -> ProvenanceGraph:
    """Every id in the document's provenance graph is a real row of this run, and they agree."""
    graph = ProvenanceGraph.from_dict(d["provenance"]["graph"])
    by_ref = graph.by_ref
    with db.session() as s:
        jobs = {j.id: j for j in s.scalars(select(Job).where(Job.run_id == run_id))}
        rows = {m.id: m for m in s.scalars(select(ForumMessage).where(ForumMessage.run_id == run_id))}
        calls = {c.id: c for c in s.scalars(select(LlmCall).where(LlmCall.run_id == run_id))}
    # sections: what each was fed names real paragraphs and messages; keys match the written sections
    assert [sp.key for sp in graph.sections] == [sec["key"] for sec in d["sections"]]
    for sp in graph.sections:
        assert set(sp.paragraphs) <= set(by_ref), sp
        assert set(sp.forum_ids) <= set(rows), sp
        assert sp.trace_id.startswith(d["report"]["trace_id"])
        for cid in sp.llm_call_ids:
            assert calls[cid].node == "ReportSectionNode" and calls[cid].trace_id == sp.trace_id
    # paragraphs: their job is this run's engine job, whose result holds a paragraph of that index and title
    for p in graph.paragraphs:
        job = jobs[p.job_id]
        assert job.kind == p.engine
        stored = {x["index"]: x["title"] for x in job.result["paragraphs"]}
        assert p.index in stored and stored[p.index].startswith(p.title[:20])
        for fid in p.forum_ids:
            m = rows[fid]
            assert m.type == "agent" and m.paragraph == p.index and m.source == p.engine.upper()
            assert m.trace_id in p.trace_ids and m.trace_id.startswith(job.trace_id + ".")
        for hid in p.host_ids:  # a host speech the engine recorded reading (it may post after it, or its
            # summary may have been skipped as a duplicate: no order with its own messages is implied)
            assert rows[hid].type == "host" and rows[hid].run_id == run_id
        for cid in p.llm_call_ids:
            assert calls[cid].job_id == job.id and any(calls[cid].trace_id.startswith(t) for t in p.trace_ids)
        for k in p.used_by:
            assert p.ref in graph.section(k).paragraphs
    # forum messages and LLM calls: real rows, with their trace ids and rounds as stored
    for f in graph.forum:
        row = rows[f.id]
        assert (f.type, f.round, f.trace_id, f.llm_call_id) == (row.type, row.round, row.trace_id, row.llm_call_id)
        if f.host_speech_id is not None:
            assert rows[f.host_speech_id].type == "host" and rows[f.host_speech_id].round == f.round
    for c in graph.llm_calls:
        assert c.id in calls and c.trace_id == calls[c.id].trace_id and c.trace_id
    return graph


def assert_html_links(graph: ProvenanceGraph, html_text: str) -> None:
    a = assert_links_land(html_text)
    ids = set(a.ids)
    assert {sp.anchor for sp in graph.sections} <= ids
    assert {p.anchor for p in graph.paragraphs} <= ids and {f.anchor for f in graph.forum} <= ids
    assert {c.anchor for c in graph.llm_calls} <= ids
    monitor = [h for h in a.hrefs if h.startswith("/Monitor?trace=")]
    traced = {h.split("=", 1)[1] for h in monitor}
    assert {sp.trace_id for sp in graph.sections} <= traced
    assert {t for p in graph.paragraphs for t in p.trace_ids} <= traced
    assert {f.trace_id for f in graph.forum if f.trace_id} <= traced and {c.trace_id for c in graph.llm_calls} <= traced


def test_an_offline_run_links_sections_to_paragraphs_forum_and_traces(sqlite_db, monkeypatch):
    db = sqlite_db
    monkeypatch.setenv("FORUM_HOST_EVERY", "2")
    settings = load_settings()
    events = EventLog(db)
    sup = make_sup(db, events, settings)
    try:
        run_id = start_analysis(sup, settings, TOPIC, paragraphs=2, reflections=1, offline=True, force_report=True)
        assert sup.wait_run(run_id, 150) == COMPLETED
    finally:
        sup.shutdown(5)
        events.close()
    view, d, html_text = report_of(db, run_id)
    graph = assert_graph_resolves(db, run_id, d)
    # the engines' paragraphs are all there, each with the summaries it posted and its trace
    results = {f"{p['engine']}-{p['index']}": p for p in _engine_results(db, run_id)}
    assert len(results) >= 4 and set(graph.by_ref) == set(results)
    assert all(p.forum_ids and p.trace_ids for p in graph.paragraphs)
    assert all(not p.llm_call_ids for p in graph.paragraphs) and graph.llm_calls == []  # offline: no calls
    # the host spoke (every 2 agent messages) and the report waited for it: the summaries of a round
    # the host closed point at its speech (which summaries came after a speech is timing: see below)
    assert any(f.host_speech_id for f in graph.forum if f.type == "agent")
    # the sections name what they were written from: each offline finding is a line of a paragraph it names
    kinds = {s["key"]: s["kind"] for s in d["sections"]}
    fed = [sp for sp in graph.sections if sp.paragraphs]
    assert len(fed) >= 3
    (forum_sec,) = [sp for sp in graph.sections if kinds[sp.key] == "forum"]
    assert forum_sec.forum_ids and not forum_sec.paragraphs
    plain = lambda t: re.sub(r"\[\d+\]|[*_`]", "", t).strip()  # noqa: E731
    checked = 0
    for sp in fed:
        (sec,) = [s for s in d["sections"] if s["key"] == sp.key]
        texts = [plain(results[ref]["summary"]) for ref in sp.paragraphs]
        findings = re.split(r"\*\*(?:引擎发现|Engine findings)\*\*[:：]", sec["markdown"])[-1]
        for line in findings.splitlines():
            if line.startswith("- "):
                head = plain(line[2:])[:12]
                assert any(head in t for t in texts), (sp.key, head)
                checked += 1
    assert checked >= 3
    assert_html_links(graph, html_text)
    # the Report page's preview (through the one sanitiser) keeps the anchors and the trace links
    body = preview_parts(ReportDocument.from_dict(d)).body
    assert_links_land(body)
    assert 'id="para-' in body and 'id="forum-' in body and 'href="/Monitor?trace=' in body


def _engine_results(db, run_id: str) -> list[dict]:
    with db.session() as s:
        jobs = s.scalars(select(Job).where(Job.run_id == run_id, Job.kind.in_(("query", "media", "insight")))).all()
        return [{"engine": j.kind, **p} for j in jobs for p in (j.result or {}).get("paragraphs", [])]


def report_responder(req):
    """The engines' nodes (tests.research.test_engine), the host, and the report's type, outline and sections."""
    user = req.user
    if '"report_type"' in user:
        return {"report_type": "market_competition", "reason": "price war"}
    if '"sections"' in user and '"title"' in user and "Sections (keep every key" in user:
        return {"title": "价格战观察", "sections": []}
    if "Section to write:" in user:
        return "多家车企降价 [1]。"
    return llm_responder(req)


def test_an_llm_run_links_every_paragraph_and_section_to_its_calls(sqlite_db):
    db = sqlite_db
    with FakeOpenAI(responder=report_responder) as fake, FakeTavilyServer() as tavily:
        env = {**os.environ, **fake.env("QUERY_ENGINE"), **fake.env("FORUM_HOST"), **fake.env("REPORT_ENGINE"),
               **tavily.env, "FORUM_HOST_EVERY": "2", "SHOAL_PUBLIC_URL": "https://shoal.example.org/"}
        settings = load_settings(env={k: str(v) for k, v in env.items()})
        events = EventLog(db)
        sup = make_sup(db, events, settings)
        try:
            run_id = start_analysis(sup, settings, TOPIC, engines="query", paragraphs=2, reflections=1,
                                    force_report=True)
            assert sup.wait_run(run_id, 150) == COMPLETED
        finally:
            sup.shutdown(5)
            events.close()
        section_prompts = {re.search(r"Section to write: (.*)", r.user).group(1): r.user
                           for r in fake.requests if "Section to write:" in r.user}
    view, d, html_text = report_of(db, run_id)
    assert d["report"]["mode"] == "llm"
    graph = assert_graph_resolves(db, run_id, d)
    assert graph.monitor == "https://shoal.example.org/Monitor"
    # each paragraph: its summary calls and the search-planning calls made under its trace
    with db.session() as s:
        calls = {c.id: c for c in s.scalars(select(LlmCall).where(LlmCall.run_id == run_id))}
    assert len(graph.paragraphs) == 2
    for p in graph.paragraphs:
        nodes = [calls[c].node for c in p.llm_call_ids]
        assert nodes.count("FirstSummaryNode") == 1 and nodes.count("ReflectionSummaryNode") == 1
        assert {"FirstSearchNode", "ReflectionNode"} <= set(nodes) and set(nodes) <= ENGINE_NODES
        assert {m.llm_call_id for m in transcript(db, run_id) if m.id in p.forum_ids} <= set(p.llm_call_ids)
    # the host's speeches are listed with the call that wrote them
    speeches = [f for f in graph.forum if f.type == "host"]
    assert speeches and all(calls[f.llm_call_id].node == "ForumHostNode" for f in speeches)
    assert {f.llm_call_id for f in speeches} <= {c.id for c in graph.llm_calls}
    # each section: its own REPORT_ENGINE call, and exactly the paragraphs its prompt held
    titles = {s["key"]: s["title"] for s in d["sections"]}
    by_ref = graph.by_ref
    for sp in graph.sections:
        assert [calls[c].node for c in sp.llm_call_ids] == ["ReportSectionNode"]
        prompt = section_prompts[titles[sp.key]]
        fed = {ref for ref, p in by_ref.items() if f"engine — {p.title}\n" in prompt}
        assert set(sp.paragraphs) == fed, (sp.key, sp.paragraphs)
    assert any(sp.paragraphs for sp in graph.sections)
    a = assert_links_land(html_text)
    assert any(h.startswith("https://shoal.example.org/Monitor?trace=") for h in a.hrefs)
    assert {c.anchor for c in graph.llm_calls} <= set(a.ids)


def test_trace_links_and_the_graph_round_trip():
    assert monitor_base("") == "/Monitor" and monitor_base(None) == "/Monitor"
    assert monitor_base("https://x.org/app/") == "https://x.org/app/Monitor"
    assert monitor_base("javascript:alert(1)") == "/Monitor"
    assert trace_link("/Monitor", "ab12cd34.ef56") == "/Monitor?trace=ab12cd34.ef56"
    assert trace_link("/Monitor", "a\"><script>") is None and trace_link("/Monitor", "") is None
    # the sanitiser keeps the app's trace links and in-document anchors, and drops other relative links
    out = sanitize_html('<a href="/Monitor?trace=ab12.cd" id="forum-1">t</a><a href="/Data?x=1">d</a>'
                        '<a href="/Monitor?trace=x%22">bad</a><a href="#para-query-0">p</a>')
    assert 'href="/Monitor?trace=ab12.cd"' in out and 'id="forum-1"' in out and 'href="#para-query-0"' in out
    assert "/Data" not in out and "%22" not in out
    # an older document without a graph still loads and renders (no provenance links, nothing dangling)
    assert ProvenanceGraph.from_dict(None).sections == [] and ProvenanceGraph.from_dict({"sections": [1]}).sections == []


def test_a_paragraph_links_the_host_speech_it_read_its_round_and_the_calls_under_its_trace(tmp_path):
    """build_provenance on a hand-made forum: which host speech preceded each summary, the round's
    speech, and the LLM calls by trace prefix (its own and deeper), never another paragraph's."""
    from core.forum import post_message
    from core.reporting.provenance import build_provenance
    from core.reporting.types import ReportSection

    db = open_database(f"sqlite:///{tmp_path / 'g.db'}")
    run, job, t0, t1 = "r1", "r1-query", "aaaa1111.job1.p0", "aaaa1111.job1.p1"
    with db.session() as s:
        for i, (trace, node) in enumerate([(t0, "FirstSummaryNode"), (t0 + ".x", "FirstSearchNode"),
                                            (t1, "FirstSummaryNode"), ("aaaa1111.job1.p00", "FirstSummaryNode"),
                                            ("aaaa1111.rep.s1", "ReportSectionNode"), ("aaaa1111.host", "ForumHostNode")],
                                           start=1):
            s.add(LlmCall(id=i, run_id=run, job_id="r1-report" if node.startswith("Report") else
                          "r1-host" if "Host" in node else job, trace_id=trace, role="X", node=node))
    ev = EventLog(db)
    a = post_message(db, ev, run, type="agent", source="QUERY", content="第一段摘要：价格战。", paragraph=0,
                     trace_id=t0, round_no=1, llm_call_id=1)
    h = post_message(db, ev, run, type="host", source="HOST", content="主持人：请关注老车主。", round_no=1,
                     llm_call_id=6, trace_id="aaaa1111.host")
    b = post_message(db, ev, run, type="agent", source="QUERY", content="第二段摘要：老车主不满，要求补偿。",
                     paragraph=1, trace_id=t1, round_no=2, llm_call_id=3)
    ev.close()
    sec = ReportSection(1, "overview", "overview", "概览", "ok", "llm", "…", trace_id="aaaa1111.rep.s1",
                        paragraphs=["query-1"], forum_ids=[])
    graph = build_provenance(db, run, [{"engine": "query", "index": 0, "title": "一"},
                                       {"engine": "query", "index": 1, "title": "二"}], {"query": job},
                             transcript(db, run), [sec], report_job_id="r1-report")
    p0, p1 = graph.paragraphs
    assert (p0.forum_ids, p0.host_ids, p0.rounds, p0.llm_call_ids) == ([a.id], [], [1], [1, 2])  # not p00's call 4
    assert (p1.forum_ids, p1.host_ids, p1.rounds, p1.llm_call_ids) == ([b.id], [h.id], [2], [3])
    assert p1.used_by == ["overview"] and p0.used_by == []
    forum = graph.forum_by_id
    assert forum[a.id].host_speech_id == h.id and forum[b.id].host_speech_id is None  # round 2: no speech yet
    assert graph.sections[0].llm_call_ids == [5]
    assert sorted(graph.calls_by_id) == [1, 2, 3, 5, 6]  # the host speech's call comes with its message
    view = provenance_view(graph.to_dict(), "en")
    assert [h.id for h in view.round_speeches(p0)] == [h.id] and view.round_speeches(p1) == []
    again = ProvenanceGraph.from_dict(graph.to_dict())
    assert again == graph and graph.to_dict()["paragraphs"][1]["anchor"] == "para-query-1"
    db.dispose()


def test_a_paragraph_names_exactly_the_forum_messages_its_nodes_read_when_the_engine_recorded_them(tmp_path):
    """The engine records the ids of the host speech and analyst messages each paragraph's nodes read
    (ResultParagraph.read): the graph lists those, not the latest message stored before each summary."""
    from core.forum import post_message
    from core.reporting.provenance import build_provenance

    db = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    run = "r2"
    ev = EventLog(db)
    h = post_message(db, ev, run, type="host", source="HOST", content="主持人：请关注老车主。", round_no=1)
    q = post_message(db, ev, run, type="human", source="HUMAN", content="经销商的压力有多大？")
    b = post_message(db, ev, run, type="agent", source="QUERY", content="第二段摘要：老车主不满，经销商承压。",
                     paragraph=1, trace_id="bbbb.job.p1", round_no=2)
    ev.close()
    paragraphs = [{"engine": "query", "index": 1, "title": "二", "read": [h.id, q.id, 999_999]},
                  {"engine": "query", "index": 1, "title": "二"}]  # the second: a result from before the record
    graph = build_provenance(db, run, paragraphs[:1], {"query": "r2-query"}, transcript(db, run), [],
                             report_job_id=None)
    older = build_provenance(db, run, paragraphs[1:], {"query": "r2-query"}, transcript(db, run), [],
                             report_job_id=None)
    assert graph.paragraphs[0].forum_ids == [b.id]
    assert graph.paragraphs[0].host_ids == [h.id, q.id]   # both it read; an id no longer stored is dropped
    assert older.paragraphs[0].host_ids == [q.id]         # the latest stored before the summary only
    assert {h.id, q.id} <= set(graph.forum_by_id)
    db.dispose()
