"""The engine-result contract (core/research/results.py): what engines write and the report and the host
read back; old runs' stored dicts, with keys missing or of the wrong type, still load."""
from __future__ import annotations

from datetime import datetime

from core.corpus.documents import Document
from core.research.results import (EngineResult, ResultParagraph, ResultSource, checkpoint_paragraphs,
                                   checkpoint_sources, sources_to_json)


def test_an_engine_result_round_trips_through_its_dict():
    r = EngineResult("query", "offline", "corpus", "# report", [ResultParagraph(0, "背景", "降价 [1]", [1, 2])],
                     n_sources=2, search_errors=[{"query": "x", "error": "timeout"}], fallbacks=1,
                     fallback_kinds={"auth": 1})
    d = r.to_dict()
    assert set(d) == {"engine", "mode", "provider", "report_md", "paragraphs", "n_sources", "search_errors",
                      "fallbacks", "fallback_kinds"}
    assert d["paragraphs"] == [{"index": 0, "title": "背景", "summary": "降价 [1]", "sources": [1, 2]}]
    assert EngineResult.from_dict(d) == r


def test_old_or_damaged_result_dicts_still_load():
    old = {"mode": "llm", "paragraphs": [{"title": "只有标题"}, "not a dict", {"index": "3", "summary": 7,
                                                                              "sources": [1, "2", "x", None, True]}]}
    r = EngineResult.from_dict(old, "media")
    assert r.engine == "media" and r.mode == "llm" and r.report_md == "" and r.n_sources == 0
    assert [(p.index, p.title, p.summary, p.sources) for p in r.paragraphs] == [(0, "只有标题", "", []),
                                                                                (3, "", "7", [1, 2])]
    assert not r.paragraphs[0].written and r.paragraphs[1].written
    assert EngineResult.from_dict(None, "insight") == EngineResult("insight")


def test_sources_are_numbered_by_position_and_unreadable_ones_are_skipped():
    docs = [Document("标题一", "内容一", url="https://a.example/1", published=datetime(2025, 3, 1, 12), likes=3),
            Document("标题二", "内容二", platform="weibo")]
    stored = sources_to_json([ResultSource(2, docs[1]), ResultSource(1, docs[0])])
    assert [d["title"] for d in stored] == ["标题一", "标题二"]
    cp = {"sources": stored + ["garbage", {"content": "只有内容", "hotness": 9, "extras": "bad", "unknown": 1}]}
    got = checkpoint_sources(cp)
    assert [s.n if s else None for s in got] == [1, 2, None, 4]
    assert got[0].document == docs[0] and got[0].document.published == datetime(2025, 3, 1, 12)
    assert got[3].document.title == "" and got[3].document.content == "只有内容" and got[3].document.extras == {}
    assert checkpoint_sources(None) == [] and checkpoint_sources({"sources": "x"}) == []


def test_checkpoint_paragraphs_are_the_written_ones_in_plan_order():
    cp = {"structure": [{"index": 0, "title": "一"}, {"index": 1, "title": "二"}, {"index": 2, "title": "三"}],
          "paragraphs": {"2": {"summary": "第三段 [1]", "sources": [1]}, "0": {"summary": "第一段"},
                         "1": {"summary": "   "}}}
    paras, planned = checkpoint_paragraphs(cp)
    assert planned == 3 and [(p.index, p.title, p.summary, p.sources) for p in paras] == [
        (0, "一", "第一段", []), (2, "三", "第三段 [1]", [1])]
    assert checkpoint_paragraphs({}) == ([], 0) and checkpoint_paragraphs({"paragraphs": []}) == ([], 0)


# -- the report document (core/reporting/types.py) ------------------------------------------------

def test_a_report_document_round_trips_and_an_old_one_still_loads():
    from core.reporting.types import ReportChart, ReportDocument, ReportSection

    sec = ReportSection(1, "facts", "overview", "事实", "ok", "offline", "- 降价 [1]", engines=["query"], sources=[1])
    doc = ReportDocument({"title": "T", "language": "zh"}, {"partial": False, "missing": [], "coverage": None}, [],
                         [sec], [{"n": 1, "doc_id": "d1", "title": "s"}],
                         [ReportChart("platform_mix", "平台", {"rows": []}, "<svg></svg>", "")], {}, {}, {},
                         claims=[{"section": "facts", "supported": True}],
                         claims_count={"total": 1, "supported": 1, "unsupported": 0})
    d = doc.to_dict()
    assert list(d) == ["schema", "report", "banner", "notices", "sections", "sources", "charts", "statistics",
                       "provenance", "files", "claims", "claims_count"]  # no "coverage" key without coverage
    assert d["charts"][0]["has_svg"] is True and d["sections"][0]["markdown"] == "- 降价 [1]"
    assert ReportDocument.from_dict(d) == doc and doc.zh and doc.title == "T"
    # a document from before claims, charts' SVG and typed sections: defaults fill in
    old = ReportDocument.from_dict({"report": {"title": "旧"}, "sections": [{"key": "a", "markdown": "x",
                                                                            "sources": [1, "2"]}, "bad"],
                                    "charts": [{"key": "c", "title": "图", "has_svg": True}],
                                    "claims": [{"supported": False}, {"supported": True}]})
    assert old.claims_count == {"total": 2, "supported": 1, "unsupported": 1}
    assert [(s.index, s.key, s.status, s.sources) for s in old.sections] == [(1, "a", "ok", [1]),
                                                                             (2, "section-2", "ok", [])]
    assert old.charts[0].svg == "" and old.banner == {"partial": False, "missing": [], "coverage": None}
    assert old.coverage is None and old.sources == [] and not old.zh
