"""Report templates on the pages (AppTest): upload on the Report page (a bad file gets a clear message),
the template in the Report page's and Home's report-type lists, a report written with it, removal."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import report as rep
from core.reporting.custom_templates import list_templates
from ui.runtime import get_runtime, reload_runtime
from tests.pagetest import LOCAL, values, visit_as
from tests.test_report import add_forum, make_run
from tests.support.screen import english_leaks, untranslated_keys

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
REPORT_PAGE = ROOT / "pages" / "5_Report.py"
HOME = ROOT / "Home.py"
TEMPLATE = "# 校园周报\n写给宣传部。\n## 本周声量\n各平台的声量。\n## 师生情绪\n## 下周建议\n".encode("utf-8")


@pytest.fixture(autouse=True)
def fresh_runtime(isolated_env, monkeypatch):
    monkeypatch.setattr(rep, "WAIT_POLL", 0.05)
    visit_as(monkeypatch, LOCAL)
    reload_runtime()
    yield
    reload_runtime()


def render(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page(path: Path, lang: str = "en") -> AppTest:
    at = AppTest.from_file(str(path), default_timeout=30)
    at.session_state["shoal_lang"] = lang
    return render(at)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def upload(at: AppTest, name: str, data: bytes, add: str = "Add template") -> AppTest:
    at.get("file_uploader")[0].set_value((name, data, "text/markdown"))
    button(at, add).click()
    return render(at)


def test_a_template_is_uploaded_offered_used_and_removed():
    rt = get_runtime()
    run_id = make_run(rt.db)
    add_forum(rt.db, run_id)
    at = page(REPORT_PAGE)
    assert "No templates yet." in values(at.caption)

    # a bad file: the reason, nothing stored
    upload(at, "bad.md", "no headings at all".encode("utf-8"))
    [error] = values(at.error)
    assert "Template not added" in error and "no headings" in error
    upload(at, "gbk.md", "## 概览\n".encode("gbk"))
    assert any("not UTF-8" in e for e in values(at.error))
    assert list_templates(rt.db) == []

    # a good one: stored, listed, offered as a report type with its name
    upload(at, "campus.md", TEMPLATE)
    [view] = list_templates(rt.db)
    assert view.name == "校园周报" and view.sections == ("本周声量", "师生情绪", "下周建议")
    assert any(view.key in s and "added" in s for s in values(at.success)), values(at.success)
    table = next(df.value for df in at.dataframe if "sections" in df.value.columns)
    assert list(table["key"]) == [view.key]
    box = at.selectbox(key="report_type")
    assert box.options[-1] == "校园周报 (template)" and len(box.options) == 8  # auto, six types, the template

    # a report with it follows its sections
    box.set_value(view.key)
    button(at, "Generate").click()
    render(at)
    (rview,) = rep.list_reports(rt.db, run_id)
    done = rep.wait_report(rt.db, rview.id, 60)
    assert done.status == "completed" and done.report_type == view.key
    render(at)
    table = next(df.value for df in at.dataframe if "stage" in df.value.columns and "run" not in df.value.columns)
    assert list(table["type"]) == ["校园周报 (template)"]
    md = Path(done.md_path).read_text(encoding="utf-8")
    assert md.index("## 1. 本周声量") < md.index("## 2. 师生情绪") < md.index("## 3. 下周建议")

    # Home offers it too
    home = page(HOME)
    [types] = [s for s in home.selectbox if "校园周报 (template)" in s.options]
    assert len(types.options) == 8

    # removed
    at.selectbox(key="report_template_remove").set_value(view.key)
    button(at, "Remove").click()
    render(at)
    assert list_templates(rt.db) == [] and any("removed" in s for s in values(at.success))


def test_the_panel_in_chinese_has_no_untranslated_text():
    rt = get_runtime()
    make_run(rt.db)
    at = page(REPORT_PAGE, "zh")
    upload(at, "campus.md", TEMPLATE, "添加模板")
    assert any("已添加模板" in s for s in values(at.success))
    assert untranslated_keys(at) == []
    assert english_leaks(at, allowed=("tpl_", "campus")) == []


def test_adding_a_template_needs_the_unlock(monkeypatch):
    monkeypatch.setenv("SHOAL_ADMIN_PASSWORD", "s3cret")
    reload_runtime()
    at = page(REPORT_PAGE)
    assert button(at, "Add template").disabled
