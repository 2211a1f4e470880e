"""Users' report templates: parsing and validation, storage, and reports (offline and LLM) that follow them."""
from __future__ import annotations

import pytest

from core import report as rep
from core.reporting.custom_templates import (MAX_BYTES, MAX_SECTIONS, TemplateError, add_template, find_key,
                                             infer_kind, list_templates, load_type, parse_template, remove_template,
                                             resolve_type, type_names)
from core.reporting.types import REPORT_TYPES, normalise_type
from tests.fakes.openai_server import FakeOpenAI
from tests.test_report import (add_forum, llm_settings, make_run, quick_polls, run_report, sqlite_db,  # noqa: F401
                               supervisors)

pytestmark = pytest.mark.timeout(120)

WEEKLY = """# 新品上市舆情周报
写给市场部的周报，简洁、可操作。

## 本周声量
总声量、平台分布和变化。

### 细节
按平台列出。

## 用户情绪
正面与负面情绪的比例与原因，引用典型帖子。

## 论坛研判

## 下周建议
列出需要跟进的风险和建议措施。
"""


def err(data, **kw) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        parse_template(data, **kw)
    return info.value


def test_a_template_gives_its_sections_in_order_with_their_guidance_and_a_name():
    t = parse_template(WEEKLY.encode("utf-8"))
    assert t.name == "新品上市舆情周报"
    assert t.purpose == "写给市场部的周报，简洁、可操作。"
    assert [s.title for s in t.sections] == ["本周声量", "用户情绪", "论坛研判", "下周建议"]
    # a deeper heading belongs to its section's guidance
    assert t.sections[0].guidance == "总声量、平台分布和变化。\n\n### 细节\n按平台列出。"
    assert t.sections[2].guidance == ""
    assert [s.kind for s in t.sections] == ["channels", "sentiment", "forum", "recommendations"]


def test_without_a_single_top_heading_every_top_heading_is_a_section_and_the_file_names_it():
    t = parse_template("Overview\n========\nWhat happened.\n\n# Mood\nHow people feel.\n", filename="/x/My brief.md")
    assert t.name == "My brief"
    assert [s.title for s in t.sections] == ["Overview", "Mood"]  # setext and ATX headings alike
    assert t.sections[0].guidance == "What happened."
    assert parse_template(WEEKLY, name="  Weekly   brief ").name == "Weekly brief"


def test_a_bom_and_windows_line_ends_are_fine():
    t = parse_template("\ufeff## 一\r\n说明\r\n## 二\r\n".encode("utf-8"), name="x")
    assert [(s.title, s.guidance) for s in t.sections] == [("一", "说明"), ("二", "")]


@pytest.mark.parametrize("data, key", [
    (b"", "no_headings"),
    ("just some text\n\n- and a list", "no_headings"),
    ("```\n# not a heading, code\n```", "no_headings"),
    ("## café\n".encode("latin-1"), "bad_encoding"),
    ("## 一\n".encode("gbk") + "## 情绪".encode("gbk"), "bad_encoding"),
    (b"## a\n\x00", "bad_encoding"),
    ("\n".join(f"## 第{i}节" for i in range(MAX_SECTIONS + 1)), "too_many_sections"),
    ("## " + "长" * 81, "heading_too_long"),
    ("## 概览\n" + "说" * 1501, "guidance_too_long"),
    ("## 概览\n## 概览", "duplicate_heading"),
    (b"## a\n" + b"x" * MAX_BYTES, "too_large"),
])
def test_bad_templates_are_refused_with_a_clear_message(data, key):
    e = err(data, name="t")
    assert e.msg.key == f"report_extras.{key}"
    assert "⟦" not in str(e) and "⟦" not in e.msg.render("zh")  # both languages have the message, every field given


def test_the_messages_say_what_to_do():
    assert "UTF-8" in str(err(b"## \xff\xfe", name="t"))
    assert "## Section" in str(err("no headings here", name="t"))
    assert f"at most {MAX_SECTIONS}" in str(err("\n".join(f"# s{i}" for i in range(20)), name="t"))
    assert "name" in str(err("## a\n## b"))  # no name, no top heading, no file
    assert MAX_SECTIONS == len(parse_template("\n".join(f"## s{i}" for i in range(MAX_SECTIONS)), name="t").sections)


def test_section_kinds_follow_the_heading_first():
    assert infer_kind("舆情走势与展望", "") == "outlook"
    assert infer_kind("Risks", "what could escalate") == "risks"
    assert infer_kind("公众讨论焦点", "") != "forum"  # only a heading naming the forum itself is the forum
    assert infer_kind("Forum debate", "") == "forum"
    assert infer_kind("杂项", "") == "themes"


def test_a_template_is_a_report_type_the_writers_already_know():
    rt = parse_template(WEEKLY).report_type("tpl_0123abcd")
    assert rt.custom and rt.key == "tpl_0123abcd"
    assert [s.key for s in rt.sections] == ["s1", "s2", "s3", "s4"]
    assert rt.title("手机", True) == "手机：新品上市舆情周报"
    assert "跟进的风险" in rt.sections[3].guidance
    assert rt.sections[2].guidance  # an empty guidance still tells the writer something
    braces = parse_template("# A {weird} name\n## x").report_type("tpl_0123abcd")
    assert braces.title("t", False) == "A {weird} name: t"
    assert normalise_type("tpl_0123abcd") == "tpl_0123abcd"
    with pytest.raises(ValueError):
        normalise_type("tpl_nothex!")


def test_templates_are_stored_listed_replaced_and_removed(db):
    """On SQLite, MariaDB and PostgreSQL: Chinese names and text survive, the name is unique."""
    view, replaced = add_template(db, WEEKLY.encode("utf-8"))
    assert not replaced and view.key.startswith("tpl_") and view.sections == ("本周声量", "用户情绪", "论坛研判", "下周建议")
    again, replaced = add_template(db, WEEKLY.replace("## 下周建议", "## 风险与建议"))
    assert replaced and again.key == view.key and again.sections[-1] == "风险与建议"
    other, _ = add_template(db, "## 一\n## 二", name="另一个")
    assert [v.name for v in list_templates(db)] == ["新品上市舆情周报", "另一个"]
    assert type_names(db) == {view.key: "新品上市舆情周报", other.key: "另一个"}
    assert find_key(db, "另一个") == other.key and find_key(db, other.key) == other.key and find_key(db, "无") is None
    assert load_type(db, view.key).sections[-1].title(True) == "风险与建议"
    assert resolve_type(db, "crisis_response") is REPORT_TYPES["crisis_response"]
    assert remove_template(db, other.key) and not remove_template(db, other.key)
    with pytest.raises(KeyError):
        resolve_type(db, other.key)
    with pytest.raises(TemplateError):
        add_template(db, b"\xff\xfe")
    assert len(list_templates(db)) == 1


def test_an_offline_report_follows_the_template_sections_in_order(sqlite_db, supervisors):
    db = sqlite_db
    view, _ = add_template(db, WEEKLY)
    run_id = make_run(db)
    add_forum(db, run_id)
    rview, doc, html_text, md = run_report(db, supervisors, run_id, report_type=view.key)
    assert rview.report_type == view.key
    assert doc["report"]["type"] == view.key and doc["report"]["type_name"] == "新品上市舆情周报"
    assert [s["title"] for s in doc["sections"]] == ["本周声量", "用户情绪", "论坛研判", "下周建议"]
    assert [s["kind"] for s in doc["sections"]] == ["channels", "sentiment", "forum", "recommendations"]
    assert "平台" in doc["sections"][0]["markdown"]  # the channels statistics of the offline writer
    assert "主持人" in doc["sections"][2]["markdown"] or "host" in doc["sections"][2]["markdown"].lower()
    positions = [html_text.index(f"{i}. {t}") for i, t in enumerate(["本周声量", "用户情绪", "论坛研判", "下周建议"], 1)]
    assert positions == sorted(positions)
    assert md.index("## 1. 本周声量") < md.index("## 4. 下周建议")


def test_a_report_asks_for_a_template_that_does_not_exist(sqlite_db, supervisors):
    db = sqlite_db
    run_id = make_run(db)
    with pytest.raises(rep.ReportError, match="no report template"):
        rep.request_report(supervisors(db, start=False), db, run_id, report_type="tpl_00000000")


def test_the_llm_writes_each_template_section_with_its_guidance_and_keeps_the_headings(sqlite_db, supervisors):
    db = sqlite_db
    view, _ = add_template(db, WEEKLY)
    asked: list[str] = []
    systems: list[str] = []

    def respond(req):
        if '"sections"' in req.user:  # an outline call: a custom template must not be renamed
            asked.append("outline")
            return {"title": "renamed", "sections": [{"key": "s1", "title": "RENAMED"}]}
        if "Section to write:" in req.user:
            asked.append(req.user)
            systems.append(req.system)
            return "本节内容 [1]。"
        return "{}"

    with FakeOpenAI(responder=respond) as fake:
        run_id = make_run(db, params={"offline": False})
        _, doc, _, _ = run_report(db, supervisors, run_id, llm_settings(fake), report_type=view.key)
    assert "outline" not in asked
    assert [s["title"] for s in doc["sections"]] == ["本周声量", "用户情绪", "论坛研判", "下周建议"]
    assert [(s["mode"], s["status"], s["error"]) for s in doc["sections"]] == [("llm", "ok", None)] * 4
    prompts = {line.split("Section to write: ")[1].split("\n")[0]: line for line in asked}
    assert set(prompts) == {"本周声量", "用户情绪", "论坛研判", "下周建议"}
    assert "What to write: 正面与负面情绪的比例与原因，引用典型帖子。" in prompts["用户情绪"]
    assert "### 细节" in prompts["本周声量"]
    assert systems and all("写给市场部的周报" in s for s in systems)  # the template's purpose, for every section
