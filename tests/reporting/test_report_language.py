"""The report's language: the topic's by default, SHOAL_REPORT_LANGUAGE, or an explicit choice; the
whole document follows it (headings, notes, the offline writer's sentences, charts, banner, dates)."""
from __future__ import annotations

import html
import os
import re
from dataclasses import replace

import pytest

from core import report as rep
from core.i18n import Msg
from core.infra.config import load_settings
from core.infra.events import EventLog
from core.forum import post_message
from core.reporting.inputs import EngineInput, ReportInputs, missing_inputs, missing_msgs, report_inputs
from core.reporting.language import format_date, normalise_language, report_language
from core.reporting.material import build_material
from core.reporting.types import REPORT_TYPES
from core.reporting.writers import section_prompt, template_outline
from core.work.jobs import CANCELLED, COMPLETED, FAILED, RUNNING
from tests.test_report import (doc, make_run, paragraph, result, run_report, supervisors,  # noqa: F401
                               sqlite_db, quick_polls)

pytestmark = pytest.mark.timeout(120)

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def english_engines() -> dict:
    q = [doc(1, "BYD cuts prices across its whole range as the price war deepens", day=1, sentiment=0.2, likes=1200,
             url="https://example.test/q/1"),
         doc(2, "More carmakers follow with cuts; the fight for market share is fierce", platform="news", day=2,
             sentiment=0.6, url="https://example.test/q/2"),
         doc(3, "Dealers hold large stocks while buyers wait for lower prices", platform="zhihu", day=3,
             sentiment=0.3, url="https://example.test/q/3")]
    m = [doc(4, "Showrooms report twice the usual visitors this weekend", platform="douyin", day=2, sentiment=0.9,
             likes=5000, url="https://example.test/m/4"),
         doc(5, "Explainer: cheaper batteries make the cuts possible", platform="bilibili", day=3, sentiment=0.7,
             url="https://example.test/m/5")]
    i = [doc(6, "Bought last month and now it is 20,000 cheaper: owners demand compensation", platform="xhs",
             day=3, sentiment=0.1, url="https://example.test/i/6"),
         doc(7, "Used-car values fall across the board", platform="tieba", day=4, sentiment=0.2,
             url="https://example.test/i/7")]
    return {
        "query": (COMPLETED, result("query", [
            paragraph(0, "Overview", ["- BYD cuts prices across its whole range [1]",
                                      "- More carmakers follow with cuts [2]"], [1, 2]),
            paragraph(1, "Outlook", ["- Dealers hold large stocks while buyers wait [3]"], [3])], 3), q),
        "media": (COMPLETED, result("media", [
            paragraph(0, "Media coverage", ["- Showrooms report twice the usual visitors [1]",
                                            "- Cheaper batteries make the cuts possible [2]"], [1, 2])], 2), m),
        "insight": (COMPLETED, result("insight", [
            paragraph(0, "Mood", ["- Owners who just bought demand compensation [1]",
                                  "- Used-car values fall [2]"], [1, 2])], 2), i),
    }


def add_english_forum(db, run_id: str) -> None:
    ev = EventLog(db)
    post_message(db, ev, run_id, type="agent", source="QUERY", content="Query: the price war has spread.")
    post_message(db, ev, run_id, type="host", source="HOST",
                 content="Host: the engines disagree on the impact. What do the owners who lost money demand?")


def visible_text(html_text: str) -> str:
    body = re.sub(r"(?s)<(style|script)\b.*?</\1>", " ", html_text)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def cjk_in(text: str) -> list[str]:
    return sorted({m.group(0) for m in CJK.finditer(text)})


def test_report_language_is_the_choice_else_the_setting_else_the_topic():
    assert report_language("新能源汽车价格战") == "zh"
    assert report_language("EV price war") == "en"
    assert report_language("武汉大学 AI") == "zh"
    assert report_language("EV price war", setting="zh") == "zh"
    assert report_language("新能源汽车价格战", setting="auto") == "zh"
    assert report_language("新能源汽车价格战", setting="zh", explicit="en") == "en"
    assert report_language("EV price war", setting="bogus", explicit="auto") == "en"
    assert normalise_language(" ZH ") == "zh" and normalise_language(None) == "auto"
    with pytest.raises(ValueError):
        normalise_language("fr")
    assert format_date("2026-12-04T03:05:00Z", "zh") == "2026年12月4日 03:05（UTC）"
    assert format_date("2026-12-04T03:05:00Z", "en") == "4 Dec 2026, 03:05 (UTC)"


def test_an_english_topic_gives_an_english_report_throughout(sqlite_db, supervisors):
    run_id = make_run(sqlite_db, topic="EV price war", engines=english_engines())
    add_english_forum(sqlite_db, run_id)
    view, d, html_text, md = run_report(sqlite_db, supervisors, run_id)
    assert d["report"]["language"] == "en" and view.title.endswith("EV price war")
    assert d["report"]["language_by"] == "topic"
    assert cjk_in(visible_text(html_text)) == [], visible_text(html_text)
    assert d["notices"] == []  # nothing quoted in Chinese, so no note about it
    assert cjk_in(md) == []
    for chart in d["charts"]:
        assert cjk_in(chart["title"] + chart["svg"] + chart["note"]) == []
    assert cjk_in(" ".join(s["title"] + s["markdown"] + s["note"] for s in d["sections"])) == []
    assert "Generated: " in html_text and "Language: English" in html_text
    assert "## Sources" in md and "*From: Query, Media, Insight · run" in md and "*From: forum · run" in md


def test_a_chinese_topic_gives_a_chinese_report(sqlite_db, supervisors):
    run_id = make_run(sqlite_db)
    view, d, html_text, md = run_report(sqlite_db, supervisors, run_id)
    assert d["report"]["language"] == "zh"
    assert "生成时间" in html_text and "报告语言: 中文" in html_text and "## 来源" in md
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", html_text)
    assert "Sources" not in visible_text(html_text)


def test_the_explicit_choice_wins_over_the_topic_and_the_setting(sqlite_db, supervisors):
    settings = load_settings(env={**os.environ, "SHOAL_REPORT_LANGUAGE": "zh"})
    english = make_run(sqlite_db, topic="EV price war", engines=english_engines())
    view, d, html_text, _ = run_report(sqlite_db, supervisors, english, settings)  # the setting: Chinese
    assert d["report"]["language"] == "zh" and "目录" in html_text and d["report"]["language_by"] == "setting"
    chinese = make_run(sqlite_db)
    view, d, html_text, md = run_report(sqlite_db, supervisors, chinese, settings, language="en")  # the choice
    assert d["report"]["language"] == "en" and d["report"]["language_by"] == "user"
    from tests.test_report import events_of
    done = next(e for e in events_of(sqlite_db, chinese) if e.type == "report.completed")
    assert done.payload["language"] == "en"  # the job's result and its event record it too
    assert "Contents" in html_text and "## Sources" in md and "目录" not in html_text
    # quoted source text stays as it was written, and the report says so; its own words are English
    assert "比亚迪宣布全系降价" in html_text
    assert d["notices"][-1] == "Some engine findings below are quoted in Chinese, as the engines wrote them."
    with pytest.raises(rep.ReportError, match="unknown report language"):
        rep.request_report(supervisors(sqlite_db, start=False), sqlite_db, chinese, language="fr")


def _inputs(topic: str, engines: dict[str, EngineInput]) -> ReportInputs:
    return ReportInputs("r1", topic, "", "running", {}, engines, forum=[])


def test_the_partial_banner_says_plainly_what_was_used():
    def cancelled(done: int, total: int) -> EngineInput:
        e = EngineInput("media", "j", CANCELLED, from_checkpoint=bool(done), total_paragraphs=total)
        e.paragraphs = [object()] * done  # only counted here
        return e

    all_done = _inputs("EV price war", {"media": cancelled(12, 12)})
    assert missing_inputs(all_done)[0] == "Media engine: cancelled after finishing all 12 paragraphs; all used"
    assert missing_inputs(all_done, "zh")[0] == "Media 引擎：已取消，但全部 12 段已完成，均已采用"
    some = _inputs("新能源汽车价格战", {"media": cancelled(3, 12)})
    assert missing_inputs(some)[0] == "Media 引擎：已取消，共 12 段中完成了 3 段，已采用这 3 段"
    assert missing_inputs(some, "en")[0] == "Media engine: cancelled; used the 3 of 12 paragraphs it had finished"
    failed = _inputs("EV", {"insight": EngineInput("insight", "j", FAILED, error="boom")})
    assert missing_inputs(failed) == ["Insight engine: failed (boom)", "forum: no messages"]
    msgs = missing_msgs(failed)
    assert all(isinstance(m, Msg) for m in msgs) and msgs[-1].key == "report.missing_forum_none"
    running = _inputs("EV", {"query": EngineInput("query", "j", RUNNING)})
    assert missing_inputs(running, "zh")[0] == "Query 引擎：仍在运行"


def test_llm_prompts_ask_for_the_reports_language(sqlite_db):
    run_id = make_run(sqlite_db)  # a Chinese topic
    for language, want in (("en", "English"), ("zh", "Simplified Chinese")):
        m = build_material(replace(report_inputs(sqlite_db, run_id), language=language))
        rtype = REPORT_TYPES["crisis_response"]
        sec = template_outline(rtype, m.zh)[0]
        system, _, _ = section_prompt(sec, m, rtype, "t")
        assert f"in {want}." in system and f"Write in {want} even where the material is in another" in system
        assert sec.title == rtype.sections[0].title(language == "zh")


def test_the_cli_takes_a_report_language():
    from core.cli import build_parser

    args = build_parser().parse_args(["report", "abc123", "--language", "en"])
    assert args.language == "en"
    assert build_parser().parse_args(["report", "abc123"]).language is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["report", "abc123", "--language", "fr"])


@pytest.mark.parametrize("topic, want", [
    ("EV price war", "Media engine: cancelled after finishing all 2 paragraphs; all used"),
    ("新能源汽车价格战", "Media 引擎：已取消，但全部 2 段已完成，均已采用")])
def test_a_cancelled_engine_that_finished_every_paragraph_says_so_in_the_report(sqlite_db, supervisors, topic,
                                                                                 want):
    engines = english_engines()
    docs = engines["media"][2]
    checkpoint = {"structure": [{"index": i, "title": f"Part {i}", "brief": ""} for i in range(2)],
                  "paragraphs": {str(i): {"summary": f"- Finished media paragraph {i} [1]", "sources": [1],
                                          "done": True} for i in range(2)}}
    engines["media"] = (CANCELLED, None, docs, checkpoint)
    run_id = make_run(sqlite_db, topic=topic, engines=engines, run_status="cancelled")
    add_english_forum(sqlite_db, run_id)
    view, d, html_text, md = run_report(sqlite_db, supervisors, run_id, partial=True)
    assert d["banner"]["missing"] == [want]
    assert want in html.unescape(html_text) and want in md.replace("\\", "")
    if topic.isascii():
        assert cjk_in(visible_text(html_text)) == [] and "Partial report" in html_text
