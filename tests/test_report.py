"""The report engine: states, gating on this run, partial reports, types, parallel LLM sections,
failures, XSS, atomic files, self-containment, history."""
from __future__ import annotations

import html
import json
import os
import re
import secrets
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core import report as rep
from core.reporting import material as report_material
from core.reporting import store as report_store
from core.infra.config import load_settings
from core.infra.db import open_database
from core.corpus.documents import Document
from core.infra.events import EventLog
from core.forum import post_message
from core.work.jobs import CANCELLED, COMPLETED, FAILED, RUNNING
from core.infra.models import Event, Job, LlmCall, Report, Run, utcnow
from core.reporting.types import REPORT_TYPES, choose_type_by_rules, normalise_type, trending_spike
from core.research.coverage import Coverage
from core.work.runs import get_job, get_run
from core.supervisor import Supervisor
from core.runtime import build_handlers
from core.infra.tracing import child_trace_id, new_trace_id
from tests.conftest import fast_config, wait_for
from tests.fakes.openai_server import FakeOpenAI, FakeReply

pytestmark = pytest.mark.timeout(120)

TOPIC = "新能源汽车价格战"
CORPUS = Path(__file__).parent / "data" / "xss_corpus.txt"
CSS = (Path(rep.TEMPLATES_DIR) / "report.css").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Fixtures: runs written straight into the database (no engine runs), supervisors, the LLM fake

@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(rep, "WAIT_POLL", 0.05)


@pytest.fixture
def sqlite_db(tmp_path):
    """For tests where the database does not matter."""
    database = open_database(f"sqlite:///{tmp_path / 'report.db'}")
    assert database.ok, database.error
    yield database
    database.dispose()


@pytest.fixture
def supervisors():
    started: list[Supervisor] = []

    def make(db, settings=None, start=True, **overrides) -> Supervisor:
        sup = Supervisor(db, EventLog(db), fast_config(**overrides), handlers=build_handlers())
        sup.settings = settings or load_settings()
        if start:
            sup.start()
        started.append(sup)
        return sup

    yield make
    for sup in started:
        sup.shutdown(timeout=3)


def doc(n: int, text: str, *, platform: str = "weibo", day: int = 1, url: str | None = None,
        sentiment: float | None = None, title: str = "", author: str = "", likes: int = 10) -> dict:
    return Document(title=title, content=text, url=f"https://example.test/{platform}/{n}" if url is None else url,
                    published=datetime(2025, 3, day, 10), platform=platform, author=author or f"user{n}",
                    likes=likes, comments=likes // 10, shares=likes // 20, views=likes * 10, sentiment=sentiment,
                    source="corpus", doc_id=f"{platform}:{n}").as_dict()


def paragraph(i: int, title: str, lines: list[str], sources: list[int]) -> dict:
    return {"index": i, "title": title, "summary": "\n".join(lines), "sources": sources}


def result(engine: str, paragraphs: list[dict], n_sources: int) -> dict:
    return {"engine": engine, "mode": "offline", "provider": "corpus", "report_md": f"# {engine}",
            "paragraphs": paragraphs, "n_sources": n_sources, "search_errors": [], "fallbacks": 0}


def standard_engines(marker: str = "", *, url_prefix: str = "https://example.test") -> dict:
    """Three engines with findings about the price war; `marker` tags every text (to tell runs apart)."""
    q_docs = [doc(1, f"比亚迪宣布全系降价，价格战愈演愈烈{marker}", day=1, sentiment=0.2, likes=1200,
                  url=f"{url_prefix}/q/1"),
              doc(2, f"多家车企跟进降价，市场份额争夺激烈{marker}", platform="news", day=2, sentiment=0.6,
                  url=f"{url_prefix}/q/2"),
              doc(3, f"经销商库存压力巨大，消费者持币观望{marker}", platform="zhihu", day=3, sentiment=0.3,
                  url=f"{url_prefix}/q/3")]
    m_docs = [doc(4, f"实拍4S店客流翻倍，销售忙到停不下来{marker}", platform="douyin", day=2, sentiment=0.9, likes=5000,
                  url=f"{url_prefix}/m/4"),
              doc(5, f"深度解析价格战：电池成本下降是降价底气{marker}", platform="bilibili", day=3, sentiment=0.7,
                  url=f"{url_prefix}/m/5")]
    i_docs = [doc(6, f"刚提车就降价两万，老车主强烈不满要求补偿{marker}", platform="xhs", day=3, sentiment=0.1,
                  url=f"{url_prefix}/i/6"),
              doc(7, f"二手车保值率普遍下跌，卖车亏不少{marker}", platform="tieba", day=4, sentiment=0.2,
                  url=f"{url_prefix}/i/7")]
    return {
        "query": (COMPLETED, result("query", [
            paragraph(0, "事件概览", [f"- 比亚迪宣布全系降价，价格战愈演愈烈{marker} [1]",
                                   f"- 多家车企跟进降价，市场份额争夺激烈{marker} [2]"], [1, 2]),
            paragraph(1, "后续走向与展望", [f"- 经销商库存压力巨大，消费者持币观望{marker} [3]"], [3])], 3), q_docs),
        "media": (COMPLETED, result("media", [
            paragraph(0, "多媒体传播概览", [f"- 实拍4S店客流翻倍，销售忙到停不下来{marker} [1]",
                                      f"- 深度解析价格战：电池成本下降是降价底气{marker} [2]"], [1, 2])], 2), m_docs),
        "insight": (COMPLETED, result("insight", [
            paragraph(0, "舆情概览与情感", [f"- 刚提车就降价两万，老车主强烈不满要求补偿{marker} [1]",
                                      f"- 二手车保值率普遍下跌，卖车亏不少{marker} [2]"], [1, 2])], 2), i_docs),
    }


def make_run(db, topic: str = TOPIC, engines: dict | None = None, *, params: dict | None = None,
             run_status: str = "completed", created_at: datetime | None = None) -> str:
    """A run with engine jobs in the given states, written directly (the supervisor never runs them:
    'running' jobs have no lease, so no one takes them over)."""
    engines = standard_engines() if engines is None else engines
    run_id = secrets.token_hex(6)
    trace = new_trace_id()
    now = created_at or utcnow()
    with db.session() as s:
        s.add(Run(id=run_id, kind="analysis", topic=topic, status=run_status, mode="offline", trace_id=trace,
                  params={"engines": list(engines), "offline": True, "report_type": "auto", **(params or {})},
                  created_at=now, started_at=now, finished_at=now))
        s.flush()
        for name, spec in engines.items():
            status, res, sources = spec[:3]
            extra = spec[3] if len(spec) > 3 else {}
            s.add(Job(id=f"{run_id}-{name}", run_id=run_id, kind=name, name=name, status=status, depends_on=[],
                      params={}, checkpoint={"sources": sources, **extra}, result=res, trace_id=child_trace_id(trace),
                      error="boom: the search API was down" if status == FAILED else None, created_at=now,
                      max_attempts=3))
    return run_id


def add_forum(db, run_id: str, host: str = "主持人：各引擎对价格战的影响判断不一，请关注老车主的补偿诉求。") -> None:
    ev = EventLog(db)
    post_message(db, ev, run_id, type="agent", source="QUERY", content="Query：价格战已蔓延到多家车企。")
    post_message(db, ev, run_id, type="agent", source="INSIGHT", content="Insight：老车主负面情绪集中。")
    post_message(db, ev, run_id, type="host", source="HOST", content=host)


def events_of(db, run_id: str) -> list:
    return rep.report_events(EventLog(db), run_id, 0, limit=5000)[0]


def llm_settings(fake: FakeOpenAI, **extra) -> object:
    env = {**os.environ, **fake.env("REPORT_ENGINE"), "SHOAL_LLM_CONCURRENCY": "8", "RETRY_MAX_SECONDS": "2", **extra}
    return load_settings(env={k: str(v) for k, v in env.items()})


def section_responder(fail_title: str | None = None, body: str | None = None, type_key: str = "crisis_response"):
    def respond(req):
        user = req.user
        if '"report_type"' in user:
            return {"report_type": type_key, "reason": "keywords"}
        if '"sections"' in user:
            return {"title": "新能源汽车价格战：竞争态势", "sections": []}
        if "Section to write:" in user:
            if fail_title and f"Section to write: {fail_title}" in user:
                return FakeReply.error(400, "this section is not allowed")
            return body or "价格战持续，多家车企跟进 [1]。老车主不满 [2]，编号不存在的引用 [99]。"
        return "{}"
    return respond


# ---------------------------------------------------------------------------------------------
# HTML checks

class HtmlAudit(HTMLParser):
    DANGEROUS_TAGS = {"script", "iframe", "object", "embed", "frame", "frameset", "applet", "base", "form", "link",
                      "img", "image", "video", "audio", "source", "input", "button", "textarea", "math", "isindex"}
    URL_ATTRS = {"href", "src", "xlink:href", "action", "formaction", "data", "srcdoc", "poster", "background"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.tags: list[str] = []
        self.styles: list[str] = []
        self.hrefs: list[tuple[str, str]] = []  # (href, id of the enclosing <li>)
        self._in_style = False
        self._li_id = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in self.DANGEROUS_TAGS:
            self.problems.append(f"<{tag}>")
        if tag == "style":
            self._in_style = True
            self.styles.append("")
        if tag == "li":
            self._li_id = dict(attrs).get("id") or ""
        for name, value in attrs:
            v = "".join((value or "").split()).lower()
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}>")
            if name == "style":
                self.problems.append(f"<{tag} style=…>")
            if name in self.URL_ATTRS:
                if v.startswith(("javascript:", "data:", "vbscript:")):
                    self.problems.append(f"<{tag} {name}={value!r}>")
                if name != "href":
                    self.problems.append(f"<{tag} {name}>")
                else:
                    self.hrefs.append((value or "", self._li_id))
            if tag == "meta" and name == "http-equiv" and v == "refresh":
                self.problems.append("meta refresh")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles[-1] += data


def audit(html_text: str) -> HtmlAudit:
    a = HtmlAudit()
    a.feed(html_text)
    a.close()
    return a


def assert_safe(html_text: str, source_urls: set[str] | None = None) -> HtmlAudit:
    a = audit(html_text)
    assert not a.problems, a.problems[:10]
    assert "script" not in a.tags
    # one <style>: ours, unchanged
    assert len(a.styles) == 1 and a.styles[0].strip() == CSS.strip()
    low = html_text.lower()
    assert "@import" not in a.styles[0] and "expression(" not in a.styles[0] and "url(" not in a.styles[0]
    assert "<link" not in low
    for href, li in a.hrefs:
        if href.startswith("#") or re.fullmatch(r"/Monitor\?trace=[A-Za-z0-9._-]{4,80}", href):
            continue  # in-document anchors, and the provenance links to the app's trace view
        # the only external links: each source's own URL, in its entry of the sources list
        assert href.startswith(("http://", "https://")), href
        assert li.startswith("src-"), (href, li)
        if source_urls is not None:
            assert href in source_urls, href
    return a


def load_doc(view: rep.ReportView) -> dict:
    return json.loads(Path(view.json_path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# States, stages, events

def test_an_offline_report_goes_through_every_state_and_stage(db, supervisors):
    run_id = make_run(db)
    add_forum(db, run_id)
    sup = supervisors(db, start=False)
    rid = rep.request_report(sup, db, run_id)
    view = rep.get_report(db, rid)
    assert (view.status, view.stage, view.progress, view.partial) == ("pending", "waiting", 0.0, False)
    with pytest.raises(rep.ReportError, match="already pending"):
        rep.request_report(sup, db, run_id)  # one automatic report at a time
    sup.start()
    view = rep.wait_report(db, rid, 60)
    assert view.status == "completed", view.error
    assert view.stage == "done" and view.progress == 1.0
    assert view.report_type == "market_competition" and "市场竞争" in view.title
    for p in (view.html_path, view.md_path, view.json_path):
        assert Path(p).is_file() and Path(p).parent == Path(load_settings().data_dir) / "reports" / run_id
    assert Path(view.html_path).name == f"report-{rid}.html"

    evs = events_of(db, run_id)
    assert all(e.payload.get("report_id") == rid for e in evs)
    ids = [e.id for e in evs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    types = [e.type for e in evs]
    assert types[:2] == ["report.queued", "report.started"] and types[-1] == "report.completed"
    stages = [e.payload["stage"] for e in evs if e.type == "report.stage"]
    assert stages == list(rep.STAGES)
    sections = [e for e in evs if e.type == "report.section"]
    assert len(sections) == 6 and sorted(e.payload["done"] for e in sections) == [1, 2, 3, 4, 5, 6]
    typ = next(e for e in evs if e.type == "report.type")
    assert typ.payload["by"] == "rules" and "价格战" in typ.payload["reason"]

    # The report row completes a moment before its job and then its run record it: wait for them.
    job = wait_for(lambda: (j := get_job(db, rep.report_job_id(db, rid))).status == COMPLETED and j,
                   what="the report job to complete")
    assert job.kind == "report"
    assert job.result["html_path"] == view.html_path and job.result["failed_sections"] == 0
    assert view.trace_id == job.trace_id and job.trace_id.startswith(get_run(db, run_id).trace_id)
    assert wait_for(lambda: get_run(db, run_id).status == COMPLETED, what="the run to complete")

    d = load_doc(view)
    assert d["report"]["run_id"] == run_id and d["report"]["mode"] == "offline" and not d["banner"]["partial"]
    assert [s["status"] for s in d["sections"]] == ["ok"] * 6
    for s in d["sections"]:
        assert s["run_id"] == run_id and s["trace_id"].startswith(job.trace_id + ".")
    forum = next(s for s in d["sections"] if s["key"] == "forum")
    assert "老车主的补偿诉求" in forum["markdown"] and forum["engines"] == ["forum"]
    assert {c["key"] for c in d["charts"]} == {"sentiment_over_time", "platform_mix", "engine_coverage",
                                               "forum_activity"}
    assert all(c["has_svg"] for c in d["charts"])
    # the document carries each chart's SVG, the same the HTML file shows (the Report page draws from it)
    html_file = Path(view.html_path).read_text(encoding="utf-8")
    assert all(c["svg"].startswith("<svg") and c["svg"] in html_file for c in d["charts"])
    assert d["provenance"]["engines"]["media"]["job_id"] == f"{run_id}-media"
    # citations: renumbered report-wide, each source once, every engine's sources present
    assert [s["n"] for s in d["sources"]] == list(range(1, 8))
    assert {s["url"] for s in d["sources"]} >= {"https://example.test/i/6", "https://example.test/m/4"}

    html_text = Path(view.html_path).read_text(encoding="utf-8")
    a = assert_safe(html_text, {s["url"] for s in d["sources"]})
    assert html_text.count("<svg") == 4
    cites = {h for h, _ in a.hrefs if h.startswith("#src-")}
    assert cites and all(f'id="{c[1:]}"' in html_text for c in cites)
    assert f"运行 {run_id}" in html_text and job.trace_id in html_text
    md = Path(view.md_path).read_text(encoding="utf-8")
    assert md.startswith("# ") and "## 来源" in md and "<https://example.test/q/1>" in md


def test_the_automatic_report_waits_for_this_runs_engines_and_ignores_an_earlier_run(db, supervisors):
    stale = make_run(db, engines=standard_engines("【旧运行】", url_prefix="https://stale.example"),
                     created_at=utcnow() - timedelta(hours=1))
    add_forum(db, stale, host="旧运行主持人的发言")
    engines = standard_engines("【本次】")
    waiting = {name: (RUNNING, None, []) for name in ("media", "insight")}
    run_id = make_run(db, engines={"query": engines["query"], **waiting}, run_status="running")
    sup = supervisors(db)
    rid = rep.request_report(sup, db, run_id)
    ev = wait_for(lambda: next((e for e in events_of(db, run_id) if e.type == "report.waiting"), None),
                  what="report.waiting")
    assert ev.payload["engines"] == ["media", "insight"]
    sup.schedule_once()  # a scheduler pass: the report's dependencies have not ended, so it is not claimed
    view = rep.get_report(db, rid)
    assert (view.status, view.stage) == ("pending", "waiting")
    # it waits as a pending job that depends on the engines: it holds no worker slot
    assert get_job(db, rep.report_job_id(db, rid)).status == "pending" and sup.status().active_jobs == 0
    assert not rep.inputs_ready(rep.report_inputs(db, run_id))
    # the engines finish: their results go into the job rows, as the supervisor would write them
    with db.session() as s:
        for name in ("media", "insight"):
            status, res, sources = engines[name]
            s.execute(update(Job).where(Job.id == f"{run_id}-{name}").values(
                status=COMPLETED, result=res, checkpoint={"sources": sources}, finished_at=utcnow()))
    view = rep.wait_report(db, rid, 60)
    assert view.status == "completed", view.error
    inputs = rep.report_inputs(db, run_id)
    assert rep.inputs_ready(inputs) and not inputs.forum
    for path in (view.html_path, view.md_path, view.json_path):
        text = Path(path).read_text(encoding="utf-8")
        assert "【本次】" in text
        assert "旧运行" not in text and "stale.example" not in text
    d = load_doc(view)
    assert all(s["url"].startswith("https://example.test") for s in d["sources"])
    assert "论坛：没有任何发言" in d["notices"]


def test_the_automatic_report_errors_clearly_when_an_engine_failed(db, supervisors):
    engines = standard_engines()
    engines["media"] = (FAILED, None, [])
    run_id = make_run(db, engines=engines, run_status="failed")
    sup = supervisors(db)
    rid = rep.request_report(sup, db, run_id)
    view = rep.wait_report(db, rid, 30)
    assert view.status == "error"
    assert "Media 引擎" in view.error and "失败" in view.error and "partial report" in view.error
    assert view.html_path is None and not (Path(load_settings().data_dir) / "reports" / run_id).exists()
    types = [e.type for e in events_of(db, run_id)]
    assert "report.error" in types and "report.completed" not in types
    assert get_job(db, rep.report_job_id(db, rid)).status == FAILED


def test_a_partial_report_opens_with_a_banner_naming_what_is_missing(db, supervisors):
    engines = standard_engines()
    status, res, sources = engines["media"]
    # media is still running with one of three paragraphs finished; insight failed; no forum
    checkpoint = {"structure": [{"index": i, "title": f"媒体段落{i}", "brief": ""} for i in range(3)],
                  "paragraphs": {"0": {"summary": "- 媒体检查点中的发现：实拍4S店客流翻倍 [1]", "sources": [1],
                                       "done": True}}}
    engines["media"] = (RUNNING, None, sources, checkpoint)
    engines["insight"] = (FAILED, None, [])
    run_id = make_run(db, engines=engines, run_status="running", params={"report_type": "brand_reputation"})
    sup = supervisors(db, start=False)
    rid = rep.request_report(sup, db, run_id, partial=True)
    auto = rep.request_report(sup, db, run_id)  # a partial and an automatic report may coexist
    assert rep.get_report(db, rid).partial and not rep.get_report(db, auto).partial
    sup.start()
    view = rep.wait_report(db, rid, 60)
    assert view.status == "completed", view.error
    assert view.report_type == "brand_reputation"  # the user's choice wins over the rules
    d = load_doc(view)
    assert d["banner"]["partial"] and d["report"]["type_by"] == "user"
    missing = " | ".join(d["banner"]["missing"])
    assert "Media 引擎：仍在运行，共 3 段中完成了 1 段，已采用这 1 段" in missing
    assert "Insight 引擎：失败" in missing and "论坛：没有任何发言" in missing
    html_text = Path(view.html_path).read_text(encoding="utf-8")
    assert 'id="partial-banner"' in html_text and "部分报告" in html_text
    assert html_text.index('id="partial-banner"') < html_text.index('id="sec-')
    assert "媒体检查点中的发现" in html_text
    assert d["provenance"]["engines"]["media"]["from_checkpoint"] is True
    assert_safe(html_text)
    # the automatic one is still waiting for media; cancel it while it waits
    waiting = [e for e in events_of(db, run_id) if e.type == "report.waiting" and e.payload["report_id"] == auto]
    assert waiting and waiting[0].payload["engines"] == ["media"]  # insight failed: only media is awaited
    assert (rep.get_report(db, auto).status, rep.get_report(db, auto).stage) == ("pending", "waiting")
    assert get_job(db, rep.report_job_id(db, auto)).status == "pending"
    assert rep.cancel_report(sup, auto, timeout=5) == "cancelled"
    assert get_job(db, rep.report_job_id(db, auto)).status == CANCELLED
    assert "report.cancelled" in [e.type for e in events_of(db, run_id) if e.payload.get("report_id") == auto]


def test_a_pending_report_can_be_cancelled_before_it_starts(db, supervisors):
    run_id = make_run(db)
    sup = supervisors(db, start=False)
    rid = rep.request_report(sup, db, run_id)
    assert rep.cancel_report(sup, rid, timeout=1) == "cancelled"
    assert rep.get_report(db, rid).status == "cancelled"
    assert get_job(db, rep.report_job_id(db, rid)).status == CANCELLED
    assert rep.cancel_report(sup, rid) == "cancelled"  # idempotent
    with pytest.raises(rep.ReportError, match="no run"):
        rep.request_report(sup, db, "nosuchrun")
    with pytest.raises(rep.ReportError, match="unknown report type"):
        rep.request_report(sup, db, run_id, report_type="horoscope")


def test_cancel_mid_sections_stops_the_report_and_writes_no_file(db, supervisors):
    run_id = make_run(db, params={"offline": False, "report_type": "crisis_response"})
    with FakeOpenAI(responder=section_responder(), latency=0.8) as fake:
        sup = supervisors(db, llm_settings(fake))
        rid = rep.request_report(sup, db, run_id)
        wait_for(lambda: rep.get_report(db, rid).stage == "sections", what="the sections stage")
        wait_for(lambda: any("Section to write:" in r.user for r in fake.requests), what="a section call")
        # A generous timeout: what is checked is that the report job saw the cancel and stopped by itself
        # (not abandoned at the timeout), which a loaded machine cannot change.
        assert rep.cancel_report(sup, rid, timeout=60) == "cancelled"
    view = rep.get_report(db, rid)
    assert view.status == "cancelled" and view.stage == "sections" and view.html_path is None
    assert not list((Path(load_settings().data_dir) / "reports").glob(f"{run_id}/*"))
    job = get_job(db, rep.report_job_id(db, rid))
    assert job.status == CANCELLED
    with db.session() as s:
        reasons = [(p or {}).get("reason", "") for p in s.scalars(
            select(Event.payload).where(Event.job_id == job.id, Event.type == "job.cancelled"))]
    assert reasons and not any("cancel timeout" in r for r in reasons)
    types = [e.type for e in events_of(db, run_id)]
    assert types[-1] == "report.cancelled" and "report.completed" not in types


def test_an_interrupted_report_resumes_without_rewriting_finished_sections(sqlite_db, supervisors):
    db = sqlite_db
    run_id = make_run(db, params={"offline": False, "report_type": "crisis_response", "report_concurrency": 2})
    with FakeOpenAI(responder=section_responder(), latency=0.3) as fake:
        settings = llm_settings(fake)
        first = supervisors(db, settings, auto_resume=False)
        rid = rep.request_report(sup := first, db, run_id)
        wait_for(lambda: sum(e.type == "report.section" for e in events_of(db, run_id)) >= 2, what="two sections")
        sup.shutdown(timeout=3)
        view = rep.get_report(db, rid)
        assert (view.status, view.stage) == ("pending", "sections")  # interrupted: it will resume
        assert get_job(db, rep.report_job_id(db, rid)).status == "interrupted"
        done_before = {e.payload["title"] for e in events_of(db, run_id) if e.type == "report.section"}
        calls_before = len(fake.requests)
        second = supervisors(db, settings)
        view = rep.wait_report(db, rid, 60)
        assert view.status == "completed", view.error
        later = [r.user for r in fake.requests[calls_before:]]
    assert not any("ReportOutline" in u or '"sections"' in u for u in later)  # the outline came from the checkpoint
    assert not any(f"Section to write: {t}\n" in u for t in done_before for u in later)
    assert len(later) <= 6 - len(done_before)
    job = get_job(db, rep.report_job_id(db, rid))
    assert job.attempt == 2 and job.status == COMPLETED
    assert [e.type for e in events_of(db, run_id)].count("report.interrupted") == 1
    assert len(load_doc(view)["sections"]) == 6 and second.running


# ---------------------------------------------------------------------------------------------
# Writing: types, parallel LLM sections, failures, empty inputs

def test_report_type_rules():
    assert choose_type_by_rules("某品牌食品安全事件")[0] == "crisis_response"
    assert choose_type_by_rules("汽车召回")[0] == "crisis_response"
    assert choose_type_by_rules("新能源汽车价格战")[0] == "market_competition"
    assert choose_type_by_rules("手机市场竞争格局")[0] == "market_competition"
    assert choose_type_by_rules("瑞幸咖啡品牌口碑")[0] == "brand_reputation"
    assert choose_type_by_rules("数据安全监管政策")[0] == "policy_industry"
    assert choose_type_by_rules("光伏行业")[0] == "policy_industry"
    assert choose_type_by_rules("武汉大学樱花季")[0] == "routine_monitoring"
    # one generic word in the findings is not enough; several are
    assert choose_type_by_rules("武汉大学樱花季", "事件概览")[0] == "routine_monitoring"
    assert choose_type_by_rules("某奶茶店", "网友维权，商家道歉，监管介入，多人中毒")[0] == "crisis_response"
    # a burst in the sources' dates makes it a hot event
    spike = {"2025-03-01": 1, "2025-03-02": 2, "2025-03-03": 14, "2025-03-04": 2}
    flat = {"2025-03-01": 4, "2025-03-02": 5, "2025-03-03": 4, "2025-03-04": 5}
    assert trending_spike(spike) and not trending_spike(flat)
    assert choose_type_by_rules("武汉大学樱花季", "", spike)[0] == "social_hot_event"
    assert choose_type_by_rules("武汉大学樱花季", "", flat)[0] == "routine_monitoring"
    assert choose_type_by_rules("樱花季热搜")[0] == "social_hot_event"
    # the user's choice: keys, names, auto
    assert normalise_type("auto") == normalise_type("") == "auto"
    assert normalise_type("危机应对") == normalise_type("Crisis response") == "crisis_response"
    with pytest.raises(ValueError):
        normalise_type("horoscope")
    assert len(REPORT_TYPES) == 6 and all(len(t.sections) == 6 for t in REPORT_TYPES.values())


def test_llm_sections_are_written_in_parallel_with_citations_kept(sqlite_db, supervisors):
    db = sqlite_db
    run_id = make_run(db, params={"offline": False})
    add_forum(db, run_id)
    latency = 0.3
    with FakeOpenAI(responder=section_responder(), latency=latency) as fake:
        sup = supervisors(db, llm_settings(fake))
        rid = rep.request_report(sup, db, run_id)
        view = rep.wait_report(db, rid, 60)
        assert view.status == "completed", view.error
        calls = [r for r in fake.requests if "Section to write:" in r.user]
        assert len(calls) == 6
        # parallel: the fake server saw section calls overlap (a wall-clock bound would fail on a loaded CI)
        assert fake.max_concurrency() > 1
    job = get_job(db, rep.report_job_id(db, rid))
    assert job.result["mode"] == "llm" and view.report_type == "crisis_response"
    d = load_doc(view)
    assert d["report"]["type_by"] == "llm" and d["report"]["title"] == "新能源汽车价格战：竞争态势"
    assert all(s["mode"] == "llm" and s["status"] == "ok" for s in d["sections"])
    assert all(s["sources"] == [1, 2] for s in d["sections"])  # [99] is not a source: not counted
    html_text = Path(view.html_path).read_text(encoding="utf-8")
    assert '<a href="#src-1" rel="noopener noreferrer">[1]</a>' in html_text
    assert "[99]" in html_text and 'href="#src-99"' not in html_text
    # each call carried the relevant findings, host speech and numbered sources
    prompt = calls[0].user
    assert "Sources:" in prompt and "[1] " in prompt
    assert any("补偿诉求" in r.user for r in calls)
    with db.session() as s:
        rows = s.scalars(select(LlmCall).where(LlmCall.run_id == run_id)).all()
    assert {r.node for r in rows} == {"ReportTypeNode", "ReportOutlineNode", "ReportSectionNode"}
    assert all(r.role == "REPORT_ENGINE" and r.job_id == job.id for r in rows)


def test_each_section_is_announced_only_once_its_checkpoint_holds_it(sqlite_db, supervisors, monkeypatch):
    """Sections that end together are saved in one checkpoint write; a reader woken by a report.section
    event (a page, a resumed job) always finds that section in the stored checkpoint."""
    db = sqlite_db
    run_id = make_run(db, params={"offline": False})
    seen: list[tuple[str, bool]] = []
    real_emit = rep._Writer.emit

    def emit(self, type_, payload=None):
        if type_ == "report.section":
            stored = get_job(db, self.ctx.job_id).checkpoint.get("sections") or {}
            seen.append((payload["key"], payload["key"] in stored))
        return real_emit(self, type_, payload)

    monkeypatch.setattr(rep._Writer, "emit", emit)
    with FakeOpenAI(responder=section_responder(), latency=0.2) as fake:
        sup = supervisors(db, llm_settings(fake))
        view = rep.wait_report(db, rep.request_report(sup, db, run_id), 60)
    assert view.status == "completed", view.error
    assert len(seen) == 6 and all(stored for _, stored in seen), seen
    dones = sorted(e.payload["done"] for e in events_of(db, run_id) if e.type == "report.section")
    assert dones == [1, 2, 3, 4, 5, 6]


def test_one_failing_llm_section_is_marked_and_the_rest_complete(sqlite_db, supervisors):
    db = sqlite_db
    run_id = make_run(db, params={"offline": False, "report_type": "crisis_response"})
    failing = REPORT_TYPES["crisis_response"].sections[2].title_zh
    with FakeOpenAI(responder=section_responder(fail_title=failing)) as fake:
        sup = supervisors(db, llm_settings(fake))
        rid = rep.request_report(sup, db, run_id)
        view = rep.wait_report(db, rid, 60)
    assert view.status == "completed", view.error
    d = load_doc(view)
    statuses = {s["title"]: (s["status"], s["mode"]) for s in d["sections"]}
    assert statuses.pop(failing) == ("failed", "offline")
    assert set(statuses.values()) == {("ok", "llm")}
    failed = next(s for s in d["sections"] if s["status"] == "failed")
    assert "this section is not allowed" in failed["error"] and failed["markdown"]  # an offline extract instead
    html_text = Path(view.html_path).read_text(encoding="utf-8")
    assert html_text.count('data-status="failed"') == 1 and "本节未能由模型写成" in html_text
    assert get_job(db, rep.report_job_id(db, rid)).result["failed_sections"] == 1
    assert any("1 个章节未能由模型写成" in n for n in d["notices"])


def test_engines_that_produced_nothing_and_an_empty_forum_still_give_a_report(sqlite_db, supervisors):
    db = sqlite_db
    empty = {name: (COMPLETED, result(name, [], 0), []) for name in ("query", "media", "insight")}
    run_id = make_run(db, topic="Wuhan University cherry blossoms", engines=empty)
    sup = supervisors(db)
    rid = rep.request_report(sup, db, run_id)
    view = rep.wait_report(db, rid, 60)
    assert view.status == "completed", view.error
    d = load_doc(view)
    assert d["report"]["language"] == "en" and view.report_type == "routine_monitoring"
    assert d["sources"] == [] and all(s["status"] == "empty" for s in d["sections"])
    notices = " | ".join(d["notices"])
    assert "Query engine: completed but produced nothing" in notices and "forum: no messages" in notices
    html_text = Path(view.html_path).read_text(encoding="utf-8")
    assert "The forum of this run has no messages" in html_text
    assert "No engine findings are available for this section" in html_text
    assert "No sources were cited." in html_text and "The engines produced nothing." in html_text
    assert_safe(html_text)


# ---------------------------------------------------------------------------------------------
# Untrusted content, files, history, inputs

def xss_payloads() -> list[str]:
    lines = [l for l in CORPUS.read_text(encoding="utf-8").splitlines() if l.strip() and not l.startswith("# ")]
    assert len(lines) >= 30
    return lines


def xss_engines(payloads: list[str]) -> dict:
    docs = []
    for i, p in enumerate(payloads, 1):
        url = p if i % 3 == 0 else ("javascript:alert(1)" if i % 3 == 1 else f"https://example.test/x/{i}")
        docs.append(doc(i, f"正文 {p}", title=p, author=p[:40], url=url, platform=p[:20] if i % 4 == 0 else "weibo",
                        day=1 + i % 5, sentiment=(i % 10) / 10))
    lines = [f"- 发现 {p} [{i}]" for i, p in enumerate(payloads, 1)]
    paragraphs = [paragraph(0, payloads[0], lines[:20], list(range(1, 21))),
                  paragraph(1, payloads[1], lines[20:] + [payloads[5], f"**{payloads[6]}**：{payloads[7]}"],
                            list(range(21, len(payloads) + 1)))]
    return {name: (COMPLETED, result(name, paragraphs, len(docs)), docs) for name in ("query", "media", "insight")}


def xss_forum(db, run_id: str, payloads: list[str]) -> None:
    ev = EventLog(db)
    for i, p in enumerate(payloads):
        post_message(db, ev, run_id, type="host" if i % 4 == 0 else "agent",
                     source="HOST" if i % 4 == 0 else "QUERY", content=p)


@pytest.mark.parametrize("mode", ["offline", "llm"])
def test_the_xss_corpus_never_yields_executable_script(sqlite_db, supervisors, mode):
    db = sqlite_db
    payloads = xss_payloads()
    run_id = make_run(db, topic=f"价格战 {payloads[0]}", engines=xss_engines(payloads),
                      params={"offline": mode == "offline"})
    xss_forum(db, run_id, payloads)
    body = "\n".join(f"{p} [1]" if i % 2 else f"- {p}" for i, p in enumerate(payloads))

    def respond(req):
        if '"sections"' in req.user:
            return {"title": payloads[0] + payloads[13], "sections": [{"key": "facts", "title": payloads[4]}]}
        return body

    with FakeOpenAI(responder=respond) as fake:
        sup = supervisors(db, llm_settings(fake) if mode == "llm" else None)
        rid = rep.request_report(sup, db, run_id, report_type="crisis_response")
        view = rep.wait_report(db, rid, 90)
    assert view.status == "completed", view.error
    d = load_doc(view)
    html_text = Path(view.html_path).read_text(encoding="utf-8")
    links = {s["link"] for s in d["sources"] if s["link"]}
    assert links and all(l.startswith("https://example.test/x/") for l in links)
    assert_safe(html_text, links)
    assert "&lt;script&gt;" in html_text  # shown as text, never as markup
    md = Path(view.md_path).read_text(encoding="utf-8")
    low = md.lower()
    assert "<script" not in low and "<img" not in low and "](javascript:" not in low and "](data:" not in low
    # the renderer on its own, payload by payload
    for p in payloads:
        fragment = str(rep.markdown_to_html(p, cite=lambda n: True, link=lambda u: None))
        a = audit(fragment)
        assert not a.problems and "script" not in a.tags and not a.styles, (p, fragment)
        assert all(h.startswith("#src-") for h, _ in a.hrefs), (p, fragment)


def test_files_are_written_atomically(sqlite_db, supervisors, monkeypatch, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    paths = {folder / "a.html": "NEW html", folder / "a.md": "NEW md"}
    for p in paths:
        p.write_text("OLD good", encoding="utf-8")
    calls = {"n": 0}
    real_fsync = os.fsync

    def failing_fsync(fd):
        calls["n"] += 1
        if calls["n"] == 2:  # the second file, after the first was fully written to its temp file
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        rep.write_outputs(paths)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert all(p.read_text(encoding="utf-8") == "OLD good" for p in paths)
    assert sorted(x.name for x in folder.iterdir()) == ["a.html", "a.md"]  # no temporary file left
    rep.write_outputs(paths)
    assert [p.read_text(encoding="utf-8") for p in paths] == ["NEW html", "NEW md"]

    # end to end: a report whose rendering fails leaves the previous report's files as they were
    db = sqlite_db
    run_id = make_run(db)
    sup = supervisors(db)
    good = rep.wait_report(db, rep.request_report(sup, db, run_id), 60)
    assert good.status == "completed"
    before = {p: Path(p).read_bytes() for p in (good.html_path, good.md_path, good.json_path)}

    def broken_render(doc):
        raise RuntimeError("render exploded halfway")

    monkeypatch.setattr(rep, "render_html", broken_render)
    bad = rep.wait_report(db, rep.request_report(sup, db, run_id), 60)
    assert bad.status == "error" and "render exploded halfway" in bad.error and bad.stage == "render"
    assert {p: Path(p).read_bytes() for p in before} == before
    folder = Path(good.html_path).parent
    assert not [x for x in folder.iterdir() if bad.id in x.name or x.name.endswith(".tmp")]


def test_history_is_bounded(db, supervisors, monkeypatch):
    run_id = make_run(db)
    folder = Path(load_settings().data_dir) / "reports" / run_id
    folder.mkdir(parents=True)
    base = utcnow() - timedelta(hours=1)
    ids = []
    with db.session() as s:
        for i, status in enumerate(["completed", "running", "error", "completed", "completed"]):
            rid = f"old{i}"
            html_path = folder / f"report-{rid}.html"
            html_path.write_text("x", encoding="utf-8")
            s.add(Report(id=rid, run_id=run_id, status=status, stage="done", partial=True,
                         html_path=str(html_path), created_at=base + timedelta(minutes=i),
                         updated_at=base + timedelta(minutes=i)))
            ids.append(rid)
    # keep 2: the three older ones go, except the running one
    assert rep.prune_reports(db, run_id, keep=2) == 2
    left = {v.id for v in rep.list_reports(db, run_id)}
    assert left == {"old1", "old3", "old4"}
    assert sorted(p.name for p in folder.iterdir()) == ["report-old1.html", "report-old3.html", "report-old4.html"]
    # a new report prunes too
    monkeypatch.setattr(rep, "KEEP_REPORTS", 2)
    monkeypatch.setattr(report_store, "KEEP_REPORTS", 2)  # pruning reads it where it lives
    sup = supervisors(db)
    rid = rep.request_report(sup, db, run_id)
    assert rep.wait_report(db, rid, 60).status == "completed"
    views = rep.list_reports(db, run_id)
    assert [v.id for v in views] == [rid, "old4", "old1"]  # the running one is never deleted
    assert rep.latest_report(db, run_id, completed=True).id == rid


def test_inputs_are_the_latest_jobs_of_this_run_only(db):
    engines = standard_engines("【新】")
    run_id = make_run(db, engines=engines)
    other = make_run(db, engines=standard_engines("【别的运行】"))
    add_forum(db, other)
    # an earlier, failed query job in the same run: the latest one wins
    with db.session() as s:
        s.add(Job(id=f"{run_id}-query-old", run_id=run_id, kind="query", name="query-old", status=FAILED,
                  checkpoint={}, result=None, params={}, depends_on=[], error="old failure",
                  created_at=utcnow() - timedelta(minutes=5)))
    inputs = rep.report_inputs(db, run_id)
    assert inputs.run_id == run_id and inputs.topic == TOPIC
    assert [e.engine for e in inputs.engine_list()] == ["query", "media", "insight"]
    assert inputs.engines["query"].job_id == f"{run_id}-query" and inputs.engines["query"].completed
    assert rep.inputs_ready(inputs) and inputs.forum == []
    text = json.dumps([[p.to_dict() for p in e.paragraphs] for e in inputs.engine_list()], ensure_ascii=False)
    assert "【新】" in text and "别的运行" not in text
    assert rep.missing_inputs(inputs) == ["论坛：没有任何发言"]
    with pytest.raises(rep.ReportError):
        rep.report_inputs(db, "nosuchrun")


def test_offline_engines_end_to_end_give_a_real_report(sqlite_db, supervisors):
    """The real offline engines on a small corpus, then the automatic report, in one run."""
    from core.analysis import start_analysis
    from core.corpus.importers import import_records
    from tests.research.test_engine import corpus_records

    db = sqlite_db
    import_records(db, corpus_records(), source="test")
    settings = load_settings()
    sup = supervisors(db, settings, max_workers=6)  # three engines, the forum monitor, the report
    # the test corpus is small: the analyst asks for the report whatever the coverage
    run_id = start_analysis(sup, settings, TOPIC, paragraphs=2, reflections=0, offline=True, force_report=True)
    assert sup.wait_run(run_id, 120) == COMPLETED
    (view,) = rep.list_reports(db, run_id)
    assert view.status == "completed", view.error
    d = load_doc(view)
    # the run's coverage is carried, and an insufficient one opens the report with its banner
    assert d["coverage"]["matching_posts"] > 0
    assert bool(d["banner"]["coverage"]) == (not d["coverage"]["sufficient"])
    assert view.report_type == "market_competition" and len(d["sources"]) >= 5
    assert sum(len(s["sources"]) for s in d["sections"]) >= 6
    html_text = Path(view.html_path).read_text(encoding="utf-8")
    assert "比亚迪宣布全系降价" in html_text and 'href="#src-1"' in html_text
    assert_safe(html_text, {s["link"] for s in d["sources"] if s["link"]})


# ---------------------------------------------------------------------------------------------
# Trust: one sentiment, figures with their base, actors, forum kept apart, claims, coverage, dedup

def run_report(db, supervisors, run_id: str, settings=None, **kwargs) -> tuple[rep.ReportView, dict, str, str]:
    sup = supervisors(db, settings)
    view = rep.wait_report(db, rep.request_report(sup, db, run_id, **kwargs), 60)
    assert view.status == "completed", view.error
    return (view, load_doc(view), Path(view.html_path).read_text(encoding="utf-8"),
            Path(view.md_path).read_text(encoding="utf-8"))


def test_the_report_uses_the_sentiment_stored_on_each_source_and_scores_only_the_rest(sqlite_db, monkeypatch):
    db = sqlite_db
    engines = standard_engines()
    status, res, docs = engines["insight"]
    long_text = "老车主强烈不满，" * 80 + "结尾的关键句子"  # longer than the report's 400-character snippet
    docs = [dict(docs[0], sentiment=0.95),  # negative words, but the engine stored "positive": it wins
            dict(docs[1], sentiment=None, content=long_text, title="二手车标题")]
    engines["insight"] = (status, res, docs)
    run_id = make_run(db, engines=engines)
    seen: list[str] = []

    def fake_score(documents):
        for d in documents:
            seen.append(d.text)
            d.sentiment = 0.5  # neutral
    monkeypatch.setattr(report_material, "score_documents", fake_score)
    m = rep.build_material(rep.report_inputs(db, run_id))
    by_url = {s["url"]: s for s in m.sources}
    stored, scored = by_url["https://example.test/i/6"], by_url["https://example.test/i/7"]
    assert (stored["sentiment"], stored["sentiment_label"], stored["sentiment_by"]) == (0.95, "positive", "engine")
    assert (scored["sentiment_label"], scored["sentiment_by"]) == ("neutral", "report")
    assert seen == ["二手车标题\n" + long_text]  # only the unscored source, with the engines' text
    se = m.stats["sentiment"]
    # the classes come from the one scorer's calibrated band, whatever it is
    from core.text.sentiment import shares
    want = shares(s["sentiment"] for s in m.sources)
    assert (se["positive"], se["neutral"], se["negative"], se["scored"], se["unscored"]) == \
        (want.positive, want.neutral, want.negative, 7, 0)
    assert se["pct"] == {k: round(100 * want.count(k) / 7, 1) for k in ("positive", "neutral", "negative")}
    assert (se["stored"], se["scored_by_report"]) == (6, 1)
    assert sum(d["neutral"] for d in m.stats["days"]) == want.neutral  # three classes per day too


def test_figures_risk_and_recommendations_show_their_base(db, supervisors):
    run_id = make_run(db, params={"report_type": "crisis_response"})
    add_forum(db, run_id)
    view, d, html_text, md = run_report(db, supervisors, run_id)
    sections = {s["key"]: s["markdown"] for s in d["sections"]}
    # 7 scored sources: 4 negative (0.1, 0.2, 0.2, 0.3), 3 positive (0.6, 0.7, 0.9)
    assert "负面 57.1%（4/7 条可判定来源）" in sections["facts"]
    assert "风险等级：**高** — 依据：负面 57.1%（4/7 条可判定来源）" in sections["risks"]
    assert "评级规则" in sections["risks"]
    assert "综合风险等级" not in md and "负面占比 57%" not in md
    advice = [line for line in sections["response"].split("**引擎发现**")[0].splitlines() if line.startswith("- ")]
    assert advice and all("依据" in line for line in advice), advice
    # percentages in the sections always come with their base (n/N) or a stated total
    for key, text in sections.items():
        for line in text.splitlines():
            if "%" in line:
                assert re.search(r"\d+/\d+ 条|共 \d+ 条", line), (key, line)
    # "56.1%", not "56.1": the report's random ids (trace and span hex) can hold those four characters
    assert "56.1%" not in html_text and 'id="tile-negative"' in html_text and "4/7 条可判定来源" in html_text
    assert d["statistics"]["risk"]["level"] == "high" and d["claims_count"]["unsupported"] == 0


def test_main_actors_are_accounts_and_sites_never_keywords(sqlite_db):
    db = sqlite_db
    engines = standard_engines()
    status, res, docs = engines["query"]
    docs = [dict(docs[0], author="比亚迪汽车"), dict(docs[1], author="比亚迪汽车", likes=10),
            dict(docs[2], author="", kind="news", source="tavily", extras={"site": "www.autohome.com.cn"})]
    engines["query"] = (status, res, docs)
    run_id = make_run(db, engines=engines)
    m = rep.build_material(rep.report_inputs(db, run_id))
    actors = m.stats["actors"]
    assert (actors[0]["name"], actors[0]["type"], actors[0]["sources"]) == ("比亚迪汽车", "account", 2)
    assert {"name": "www.autohome.com.cn", "type": "site"}.items() <= next(
        a for a in actors if a["type"] == "site").items()
    names = {a["name"] for a in actors}
    assert not names & {k["word"] for k in m.stats["keywords"]}
    sec = next(s for s in rep.template_outline(REPORT_TYPES["market_competition"], True) if s.key == "moves")
    md, status, _ = rep.write_offline_section(sec, [], m)
    assert md.startswith("主要参与者（") and "比亚迪汽车（微博账号，2 条来源，热度" in md
    assert "www.autohome.com.cn（网站/媒体，1 条来源" in md
    assert "关键词" not in md and "讨论焦点" not in md


def test_answers_to_the_host_are_never_findings(db, supervisors):
    engines = standard_engines()
    status, res, docs = engines["insight"]
    res = json.loads(json.dumps(res))
    res["paragraphs"][0]["summary"] += ("\n**回应主持人**：关于「补偿是否合理」，来源中的相关关键词为 补偿，例如：“老车主不满” [1]"
                                        "\n- 回应主持人：各引擎都认为价格战会持续 [2]"
                                        "\n- Responding to the host: the engines agree [1]")
    engines["insight"] = (status, res, docs)
    run_id = make_run(db, engines=engines, params={"offline": False})
    add_forum(db, run_id, host="主持人：各方分歧明显。**引导问题**：\n1. Insight Engine：补偿诉求是否普遍？")
    m = rep.build_material(rep.report_inputs(db, run_id))
    assert m.units and not any("主持人" in u.text or "the host" in u.text for u in m.units)
    sec = rep.template_outline(REPORT_TYPES["crisis_response"], True)[2]
    _, prompt, engines_used = rep.section_prompt(sec, m, REPORT_TYPES["crisis_response"], "t")
    assert "回应主持人" not in prompt and "引导问题" not in prompt and "forum" not in engines_used

    view, d, html_text, md = run_report(db, supervisors, run_id)  # offline: no LLM configured
    for s in d["sections"]:
        if s["kind"] != "forum":
            assert "主持人" not in s["markdown"] and "the host" not in s["markdown"], s["markdown"]
    forum = next(s for s in d["sections"] if s["kind"] == "forum")
    assert "不是本报告的结论" in forum["markdown"] and "主持人提出的问题" in forum["markdown"]
    assert "1. Insight Engine：补偿诉求是否普遍？" in forum["markdown"]
    assert "QUERY 1 条、INSIGHT 1 条、HOST 1 条" in forum["markdown"]


def test_an_unsupported_number_in_a_section_is_marked_and_counted(sqlite_db, supervisors):
    db = sqlite_db
    run_id = make_run(db, params={"offline": False, "report_type": "crisis_response"})
    body = ("负面情绪占比 57.1%（4/7 条可判定来源）。老车主要求补偿 [6]。\n\n"
            "- 据统计已有 3,456 名车主参与维权 [6]。\n- 比亚迪宣布全系降价 [1]。")
    with FakeOpenAI(responder=section_responder(body=body)) as fake:
        view, d, html_text, md = run_report(db, supervisors, run_id, llm_settings(fake))
    assert d["report"]["mode"] == "llm"
    wrong = [c for c in d["claims"] if not c["supported"]]
    assert len(wrong) == 6 and all("3,456" in c["text"] and c["sources"] == [6] for c in wrong)
    assert all("3,456" in c["reason"] and "[6]" in c["reason"] for c in wrong)
    right = [c for c in d["claims"] if "57.1%" in c["text"]]
    assert len(right) == 6 and all(c["supported"] for c in right)
    counts = d["claims_count"]
    assert counts["unsupported"] == 6 and counts["total"] == len(d["claims"]) >= 12
    summary = f"{counts['total']} 条论断，{counts['supported']} 条有来源支持"
    assert summary in html_text and html_text.index(summary) < html_text.index('id="sec-')
    assert html_text.count('<mark class="unsupported" title="') == 6
    assert html_text.count('<span class="tag">未核实</span></mark>') == 6
    assert_safe(html_text)
    assert md.count("3,456 名车主参与维权 [6]。 ⚠") == 6 and summary in md
    assert get_job(db, rep.report_job_id(db, view.id)).result["claims"] == counts


def coverage_dict(matching: int, threshold: int = 20) -> dict:
    return {"matching_posts": matching, "by_platform": {"weibo": matching}, "web_results": 0, "threshold": threshold,
            "sufficient": matching >= threshold, "corpus_total": 500, "web_searched": False}


def test_an_insufficient_run_opens_with_the_coverage_banner(db, supervisors):
    run_id = make_run(db, params={"coverage": coverage_dict(7), "force_report": True})
    view, d, html_text, md = run_report(db, supervisors, run_id)
    text = Coverage.from_dict(coverage_dict(7)).banner(True)
    assert text.startswith("数据覆盖不足") and "7 条" in text
    assert d["banner"]["coverage"] == text
    assert (d["coverage"]["matching_posts"], d["coverage"]["threshold"], d["coverage"]["sufficient"]) == (7, 20, False)
    assert d["report"]["forced"] is True and not d["banner"]["partial"]
    assert 'id="coverage-banner"' in html_text and html.escape(text, quote=False) in html_text
    assert html_text.index('id="coverage-banner"') < html_text.index('id="overview"')
    assert md.splitlines()[4] == f"> **⚠ {rep.markdown_for_file(text)}**"
    assert_safe(html_text)
    # enough coverage: the dict is carried, no banner
    ok = make_run(db, params={"coverage": coverage_dict(30)})
    view, d, html_text, md = run_report(db, supervisors, ok)
    assert d["banner"]["coverage"] is None and d["coverage"]["sufficient"] is True
    assert 'id="coverage-banner"' not in html_text and "数据覆盖不足" not in md


def test_near_duplicate_negative_posts_are_shown_once_with_a_distinct_count(sqlite_db):
    db = sqlite_db
    repost = "刚提车就降价两万，老车主强烈不满，要求厂家给出补偿方案"
    docs = [doc(1, repost, sentiment=0.05, title=""),
            doc(2, repost + "！！", sentiment=0.06, title="", author="搬运号"),
            doc(3, "转发：" + repost, sentiment=0.07, title="", author="搬运号2"),
            doc(4, "二手车保值率普遍下跌，卖车亏不少", sentiment=0.1, day=2),
            doc(5, "4S店客流翻倍，销售忙到停不下来", sentiment=0.9, day=3),
            doc(6, "电池成本下降是降价的底气", sentiment=0.8, day=3)]
    para = [paragraph(0, "舆情概览与情感", [f"- {x['content']} [{i}]" for i, x in enumerate(docs, 1)], list(range(1, 7)))]
    for topic, zh in (("新能源汽车价格战", True), ("EV price war", False)):
        run_id = make_run(db, topic=topic, engines={"insight": (COMPLETED, result("insight", para, 6), docs)})
        m = rep.build_material(rep.report_inputs(db, run_id))
        assert [s["duplicate_of"] for s in m.sources] == [None, 1, 1, None, None, None]
        assert m.stats["negative_posts"] == [1, 4] and m.stats["sentiment"]["distinct"]["negative"] == 2
        assert m.stats["n_distinct"] == 4
        sec = next(s for s in rep.template_outline(REPORT_TYPES["crisis_response"], zh) if s.kind == "sentiment")
        md, _, _ = rep.write_offline_section(sec, [], m)
        line = next(x for x in md.splitlines() if x.startswith(("典型负面声音", "Typical negative voices")))
        assert ("负面来源 4 条（2 条不重复）" if zh else "(4 negative sources (2 distinct))") in line
        assert line.count("刚提车就降价两万") == 1 and "[2]" not in line and "[3]" not in line
        top = next(s for s in rep.template_outline(REPORT_TYPES["social_hot_event"], zh) if s.kind == "voices")
        md, _, _ = rep.write_offline_section(top, [], m)
        assert md.count("刚提车就降价两万") == 1
        assert ("（6 条（4 条不重复）有互动数据的来源" if zh else "(6 sources (4 distinct) with engagement data") in md


def test_a_pending_automatic_report_also_waits_for_an_engine_re_run(db, supervisors):
    """The report is requested after media failed; media is re-run before the report is claimed: the
    report depends on the re-run too, and is written from it (complete, not an error)."""
    from core.analysis import rerun_engine
    from core.work.jobs import HandlerInfo

    engines = standard_engines()
    status, media_result, media_sources = engines["media"]
    engines["media"] = (FAILED, None, [])
    run_id = make_run(db, engines=engines, run_status="failed")
    add_forum(db, run_id)
    sup = supervisors(db, start=False)

    def media_again(ctx):
        ctx.save_checkpoint(sources=media_sources)
        return media_result

    sup.handlers["media"] = HandlerInfo("media", media_again)
    rid = rep.request_report(sup, db, run_id)
    report_job = rep.report_job_id(db, rid)
    new_media = rerun_engine(sup, run_id, "media")
    with db.session() as s:
        assert {"job": new_media, "until": "final"} in s.get(Job, report_job).depends_on
    sup.start()
    view = rep.wait_report(db, rid, 60)
    assert view.status == "completed", view.error
    media, report = get_job(db, new_media), get_job(db, report_job)
    assert media.status == COMPLETED and report.started_at >= media.finished_at
    assert load_doc(view)["provenance"]["engines"]["media"]["job_id"] == new_media
